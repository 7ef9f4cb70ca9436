/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Local change detection: lifecycle, root safety, inotify, and turning one
 * path on disk into index changes. The walk is in scan_walk.c, the hasher
 * thread in scan_hash.c; the design note is in scan.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "base/log.h"
#include "sync/blocks.h"
#include "sync/path.h"
#include "sync/scan_int.h"

#define WATCH_MASK                                                                                 \
	(IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |        \
	 IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)
#define EVENT_BUF 65536
#define MARKER_TEXT "This directory is a tandem share. Do not remove this file.\n"

static int seterr(struct err *err, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int seterr(struct err *err, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_setv(err, fmt, ap);
	va_end(ap);
	return r;
}

bool scan_engine_tmp(const char *name)
{
	size_t plen = sizeof(SCAN_TMP_PREFIX) - 1, n = 0;

	if (strncmp(name, SCAN_TMP_PREFIX, plen) != 0)
		return false;
	name += plen;
	while (name[n] && strchr("0123456789abcdef", name[n]))
		n++;
	if (n == 24)
		return name[n] == '\0';
	return n == 16 && (!strcmp(name + n, ".lazy") || !strcmp(name + n, ".lnk"));
}

bool scan_excluded(const char *path, size_t len)
{
	size_t plen = sizeof(SCAN_TMP_PREFIX) - 1, start = 0;

	if (len == sizeof(SCAN_MARKER) - 1 && memcmp(path, SCAN_MARKER, len) == 0)
		return true;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		if (i - start >= plen && memcmp(path + start, SCAN_TMP_PREFIX, plen) == 0)
			return true;
		start = i + 1;
	}
	return false;
}

enum index_type scan_kind(const struct stat *st)
{
	if (S_ISREG(st->st_mode))
		return INDEX_FILE;
	if (S_ISDIR(st->st_mode))
		return INDEX_DIR;
	if (S_ISLNK(st->st_mode))
		return INDEX_SYMLINK;
	return 0;
}

/*
 * The engine records files it writes with index_put_remote/index_set_stat,
 * so this exact test (type, size, mtime, mode, ino, ctime) is the contract
 * that keeps them from looking changed. A directory's size and mtime change
 * with its entries and are not synced: its mode is what counts.
 */
bool scan_unchanged(const struct index_entry *e, const struct stat *st)
{
	if (e->deleted || e->type != scan_kind(st) || e->mode != (st->st_mode & 0777))
		return false;
	if (e->type == INDEX_DIR)
		return true;
	return e->size == (uint64_t)st->st_size && e->mtime_ns == scan_ns(&st->st_mtim) &&
	       e->ino == (uint64_t)st->st_ino && e->ctime_ns == scan_ns(&st->st_ctim);
}

/*
 * Whether e (a live entry) already holds a file hashed as hash with stat
 * st: same content, size, mtime and mode, only the stat identity (inode,
 * ctime) moved, as after a rename. Only a hash tells: a same-size edit that
 * puts the mtime back changes nothing but the ctime, as a chmod or a rename
 * does.
 */
bool scan_same_content(const struct index_entry *e, const struct stat *st, const uint8_t *hash)
{
	return !e->deleted && e->type == INDEX_FILE && e->has_hash &&
	       memcmp(e->hash, hash, INDEX_HASH_LEN) == 0 && e->size == (uint64_t)st->st_size &&
	       e->mtime_ns == scan_ns(&st->st_mtim) && e->mode == (st->st_mode & 0777);
}

bool scan_off_disk(const struct index_entry *e)
{
	return !e->deleted && e->type == INDEX_SYMLINK && e->ino == 0 &&
	       path_link_escapes(e->path, e->path_len, e->target, e->target_len);
}

void scan_entry_init(struct index_entry *e, const char *path, size_t len, const struct stat *st)
{
	memset(e, 0, offsetof(struct index_entry, target));
	memcpy(e->path, path, len);
	e->path[len] = '\0';
	e->path_len = len;
	e->type = scan_kind(st);
	e->mode = st->st_mode & 0777;
	e->size = e->type == INDEX_DIR ? 0 : (uint64_t)st->st_size;
	e->mtime_ns = scan_ns(&st->st_mtim);
	e->target[0] = '\0';
	e->target_len = 0;
	e->deleted = false;
	vv_init(&e->vv);
	e->seq = 0;
	e->dev = (uint64_t)st->st_dev;
	e->ino = (uint64_t)st->st_ino;
	e->ctime_ns = scan_ns(&st->st_ctim);
}

/* lstat of a share path, resolved beneath the root without following symlinks. */
int scan_lstat(struct scan *s, const char *path, struct stat *ret)
{
	const char *name;
	int pfd, r = 0;

	pfd = path_open_parent(s->rootfd, path, 0, &name);
	if (pfd < 0)
		return pfd == -ELOOP ? -ENOENT : pfd;
	if (fstatat(pfd, name, ret, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	close(pfd);
	return r;
}

int scan_check_root(struct scan *s, struct err *err)
{
	struct stat now, held;

	if (fstat(s->rootfd, &held) < 0)
		return seterr(err, -errno, "cannot stat the share root %s: %s", s->root_q,
			      strerror(errno));
	if (stat(s->root, &now) < 0)
		return seterr(err, -ESTALE,
			      "the share root %s is gone (%s): syncing stopped so that nothing "
			      "is deleted on the peer; restore or remount it and restart",
			      s->root_q, strerror(errno));
	if (now.st_dev != s->root_dev || now.st_ino != s->root_ino || held.st_nlink == 0)
		return seterr(err, -ESTALE,
			      "the share root %s was removed, replaced or unmounted: syncing "
			      "stopped so that nothing is deleted on the peer; restore or remount "
			      "it and restart",
			      s->root_q);
	if (fstatat(s->rootfd, SCAN_MARKER, &now, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(now.st_mode))
		return seterr(err, -ESTALE,
			      "the share root %s has no %s marker file: it is not the folder "
			      "that was synced (an unmounted disk?), so syncing stopped; remount "
			      "it, or recreate the marker if this is the right folder",
			      s->root_q, SCAN_MARKER);
	return 0;
}

int scan_watch(struct scan *s, int dirfd, const char *path, size_t len)
{
	char proc[64];
	struct scan_wd *w;
	int wd;

	/* The fd is the directory opened without following symlinks: no path race.
	 * No IN_DONT_FOLLOW: it would stop at the /proc magic link itself. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
	wd = inotify_add_watch(s->ifd, proc, WATCH_MASK);
	if (wd < 0) {
		if (!s->watch_warned && (errno == ENOSPC || errno == ENOMEM)) {
			s->watch_warned = true;
			log_warn("cannot watch every folder of %s (inotify watch limit, see "
				 "fs.inotify.max_user_watches): some changes are found only by the "
				 "next full rescan",
				 s->root_q);
		}
		return -1;
	}
	if (scan_wdmap_set(&s->wds, wd, path, len, &w) < 0)
		return -1;
	w->gen = s->gen;
	if (len == 0)
		s->root_wd = wd;
	return wd;
}

void scan_warn_special(struct scan *s, const char *path, size_t len)
{
	char q[256];

	if (map_count(&s->warned) >= SCAN_WARNED_MAX ||
	    map_put(&s->warned, path, len, NULL, NULL) != 1)
		return;
	/* a FIFO or socket a program makes in the share is normal: not a warning */
	log_info("not syncing %s in %s: a FIFO, socket or device node stays local to this side",
		 log_quote(path, len, q, sizeof(q)), s->root_q);
}

uint64_t scan_special(struct scan *s, size_t max, void (*fn)(const char *path, void *ud),
		      void *ud)
{
	char *gone[64], p[PATH_REL_MAX + 1];
	const void *key;
	size_t pos = 0, len, ngone = 0;
	struct stat st;
	uint64_t n = 0;

	while (map_next(&s->warned, &pos, &key, &len, NULL)) {
		if (len > PATH_REL_MAX)
			continue;
		memcpy(p, key, len);
		p[len] = '\0';
		if (scan_lstat(s, p, &st) == 0 && !scan_kind(&st)) {
			if (n++ < max)
				fn(p, ud);
		} else if (ngone < sizeof(gone) / sizeof(gone[0])) {
			gone[ngone++] = strdup(p); /* NULL: forgotten next time */
		}
	}
	/* a special file made again at a gone name is logged again */
	for (size_t i = 0; i < ngone; i++) {
		if (gone[i])
			(void)map_del(&s->warned, gone[i], strlen(gone[i]), NULL);
		free(gone[i]);
	}
	return n;
}

struct collect {
	char **v;
	size_t n, cap;
	int err;
};

static int collect_fn(const struct index_entry *e, void *userdata)
{
	struct collect *c = userdata;
	char **v;

	if (e->deleted)
		return 0;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		v = realloc(c->v, c->cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->v = v;
	}
	c->v[c->n] = strdup(e->path);
	if (!c->v[c->n])
		return -ENOMEM;
	c->n++;
	return 0;
}

/* Tombstones path and, for a directory, every live entry beneath it (deepest
 * first). Returns the number of entries deleted or -errno. */
int scan_delete_tree(struct scan *s, const char *path, size_t len)
{
	struct collect c = {NULL, 0, 0, 0};
	int r, n = 0;

	r = index_foreach_under(s->idx, path, len, collect_fn, &c);
	for (size_t i = c.n; r >= 0 && i-- > 0;) {
		r = index_delete_local(s->idx, c.v[i], strlen(c.v[i]));
		n += r > 0;
	}
	if (r >= 0) {
		r = index_delete_local(s->idx, path, len);
		if (r == -ENOENT)
			r = 0;
		n += r > 0;
	}
	for (size_t i = 0; i < c.n; i++)
		free(c.v[i]);
	free(c.v);
	return r < 0 ? r : n;
}

int scan_enqueue(struct scan *s, const char *path, size_t len, uint64_t size)
{
	struct scan_job *j;
	int r;

	r = map_put(&s->inflight, path, len, NULL, NULL);
	if (r <= 0)
		return r; /* already queued: its result is re-checked against the disk */
	j = calloc(1, sizeof(*j));
	if (j)
		j->path = strndup(path, len);
	if (!j || !j->path) {
		free(j);
		(void)map_del(&s->inflight, path, len, NULL);
		return -ENOMEM;
	}
	j->len = len;
	j->size_hint = size;
	if (s->backlog_tail)
		s->backlog_tail->next = j;
	else
		s->backlog = j;
	s->backlog_tail = j;
	s->pend_files++;
	s->pend_bytes += size;
	return 0;
}

/* scan_set_hash_inline: hashes j here and queues its result as the hasher does. */
static void hash_here(struct scan *s, struct scan_job *j)
{
	uint64_t one = 1;

	j->next = NULL;
	scan_hash_job(s->rootfd, j);
	pthread_mutex_lock(&s->h.lock);
	if (s->h.done_tail)
		s->h.done_tail->next = j;
	else
		s->h.done = j;
	s->h.done_tail = j;
	pthread_mutex_unlock(&s->h.lock);
	(void)!write(s->h.efd, &one, sizeof(one));
}

void scan_set_hash_inline(struct scan *s, bool on)
{
	s->hash_inline = on;
}

void scan_feed(struct scan *s)
{
	while (s->backlog && s->hash_inline) {
		struct scan_job *j = s->backlog;

		s->backlog = j->next;
		if (!s->backlog)
			s->backlog_tail = NULL;
		hash_here(s, j);
	}
	while (s->backlog) {
		struct scan_job *j = s->backlog, *next = j->next;

		if (scan_hasher_push(&s->h, j) < 0)
			break;
		s->backlog = next;
		if (!next)
			s->backlog_tail = NULL;
	}
}

static void job_done(struct scan *s, struct scan_job *j)
{
	(void)map_del(&s->inflight, j->path, j->len, NULL);
	s->pend_files--;
	s->pend_bytes -= j->size_hint;
	scan_job_free(j);
}

static void requeue(struct scan *s, struct scan_job *j)
{
	j->next = NULL;
	j->err = 0;
	if (s->backlog_tail)
		s->backlog_tail->next = j;
	else
		s->backlog = j;
	s->backlog_tail = j;
}

void scan_set_placeholder_check(struct scan *s, scan_placeholder_fn fn, void *ud)
{
	s->placeholder = fn;
	s->placeholder_ud = ud;
}

void scan_set_moved_check(struct scan *s, scan_moved_fn fn, void *ud)
{
	s->moved = fn;
	s->moved_ud = ud;
}

int scan_placeholder_meta(struct scan *s, const char *path, size_t len, const struct stat *st,
			  struct index_entry *e)
{
	uint8_t hash[INDEX_HASH_LEN];

	if (!s->placeholder || e->deleted || e->type != INDEX_FILE || !e->has_hash ||
	    e->size != (uint64_t)st->st_size || !S_ISREG(st->st_mode) ||
	    !s->placeholder(s->placeholder_ud, path, (uint64_t)st->st_size))
		return -ENOENT;
	if (e->mtime_ns == scan_ns(&st->st_mtim) && e->mode == (st->st_mode & 0777)) {
		/* only the identity moved (our own write, not yet recorded) */
		int r = index_set_stat(s->idx, path, len, (uint64_t)st->st_dev,
				       (uint64_t)st->st_ino, scan_ns(&st->st_ctim));
		return r < 0 ? r : 0;
	}
	memcpy(hash, e->hash, sizeof(hash));
	scan_entry_init(e, path, len, st);
	e->has_hash = true;
	memcpy(e->hash, hash, sizeof(hash));
	int r = index_put_local(s->idx, e);
	return r < 0 ? r : 1;
}

void scan_set_held_check(struct scan *s, scan_held_fn fn, void *ud)
{
	s->held = fn;
	s->held_ud = ud;
}

bool scan_retry_held(struct scan *s)
{
	if (map_count(&s->deferred) > 0)
		s->retry = true;
	return s->retry;
}

bool scan_defer(struct scan *s, const char *path, size_t len, const struct stat *st)
{
	if (!s->held || !S_ISREG(st->st_mode) ||
	    !s->held(s->held_ud, (uint64_t)st->st_dev, (uint64_t)st->st_ino))
		return false;
	/* out of memory: published as it is rather than forgotten */
	return map_put(&s->deferred, path, len, NULL, NULL) >= 0;
}

/* The deletion is of a placeholder renamed over path's file. */
int scan_moved_placeholder(struct scan *s, const char *path, size_t len, const struct stat *st,
			   bool live)
{
	struct index_entry *e = &s->e;
	uint8_t hash[INDEX_HASH_LEN];
	int r;

	if (!s->moved || !S_ISREG(st->st_mode))
		return -ENOENT;
	r = s->moved(s->moved_ud, path, st, false, hash);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	if (r == 2)
		return live ? scan_delete_tree(s, path, len) : 0;
	scan_entry_init(e, path, len, st);
	e->has_hash = true;
	memcpy(e->hash, hash, sizeof(hash));
	r = index_put_local(s->idx, e);
	if (r < 0)
		return r;
	r = 1;
	int q = s->moved(s->moved_ud, path, st, true, NULL); /* after the entry: its trigger */
	return q < 0 ? q : r;
}

/* Stores a hashed file whose disk state is st (== j->st). Returns changes or -errno. */
static int record_hashed(struct scan *s, const struct scan_job *j, struct err *err)
{
	struct index_entry *e = &s->e;
	bool found;
	int r;

	r = index_get(s->idx, j->path, j->len, e);
	if (r < 0 && r != -ENOENT)
		goto fail;
	if (r == 0 && scan_unchanged(e, &j->st))
		return 0;
	found = r == 0;
	if (found) { /* what was hashed may be a placeholder's holes */
		r = scan_placeholder_meta(s, j->path, j->len, &j->st, e);
		if (r != -ENOENT) {
			if (r < 0)
				goto fail;
			return r;
		}
	}
	if (!found || e->deleted || e->ino != (uint64_t)j->st.st_ino) {
		/* A placeholder moved here after the walk queued the file it
		 * replaced (hashed again as its stat changed): its holes are
		 * no content. -ENOENT leaves e as it was. */
		r = scan_moved_placeholder(s, j->path, j->len, &j->st, found && !e->deleted);
		if (r != -ENOENT) {
			if (r < 0)
				goto fail;
			return r;
		}
	}
	if (found && scan_same_content(e, &j->st, j->hash)) {
		/* Same content and metadata: only the stat identity moved. */
		r = index_set_stat(s->idx, j->path, j->len, (uint64_t)j->st.st_dev,
				   (uint64_t)j->st.st_ino, scan_ns(&j->st.st_ctim));
		if (r < 0)
			goto fail;
		return 0;
	}
	scan_entry_init(e, j->path, j->len, &j->st);
	e->has_hash = true;
	memcpy(e->hash, j->hash, INDEX_HASH_LEN);
	r = index_put_local(s->idx, e);
	if (r == 0)
		r = index_manifest_put(s->idx, j->hash, j->blob, j->blob_len);
	if (r < 0)
		goto fail;
	return 1;
fail:
	return seterr(err, r, "cannot record %s in the index: %s", LOG_Q(j->path),
		      index_errmsg(s->idx));
}

/* A finished job: re-stat, then store, drop or hash again. Returns changes or -errno. */
static int hash_done_one(struct scan *s, struct scan_job *j, struct err *err)
{
	struct stat st;
	int r;

	if (j->err == -EAGAIN) { /* written on while hashed: its writer may still be at it */
		if (scan_lstat(s, j->path, &st) == 0 && scan_defer(s, j->path, j->len, &st))
			job_done(s, j);
		else
			requeue(s, j);
		return 0;
	}
	if (j->err < 0 || scan_lstat(s, j->path, &st) < 0 || !S_ISREG(st.st_mode)) {
		/* Gone or replaced: the events of that change bring a scan. */
		log_debug("hashing %s: %s", j->path, strerror(j->err < 0 ? -j->err : ENOENT));
		job_done(s, j);
		return 0;
	}
	if (st.st_ino != j->st.st_ino || st.st_size != j->st.st_size ||
	    scan_ns(&st.st_mtim) != scan_ns(&j->st.st_mtim) ||
	    scan_ns(&st.st_ctim) != scan_ns(&j->st.st_ctim)) {
		r = index_get(s->idx, j->path, j->len, &s->e);
		if (r == 0 && scan_unchanged(&s->e, &st)) {
			job_done(s, j); /* recorded meanwhile (the engine wrote it) */
			return 0;
		}
		if (scan_defer(s, j->path, j->len, &st)) {
			job_done(s, j); /* its writer is at it: published later */
			return 0;
		}
		requeue(s, j);
		return 0;
	}
	r = record_hashed(s, j, err);
	job_done(s, j);
	return r;
}

int scan_on_hash_done(struct scan *s, struct err *err)
{
	struct scan_job *list = scan_hasher_take(&s->h), *j;
	int r, n = 0;

	if (!list) {
		scan_feed(s);
		return 0;
	}
	r = index_begin(s->idx);
	if (r < 0) {
		/* Put them back for the next call. */
		pthread_mutex_lock(&s->h.lock);
		for (j = list; j->next; j = j->next)
			;
		j->next = s->h.done;
		s->h.done = list;
		if (!s->h.done_tail)
			s->h.done_tail = j;
		pthread_mutex_unlock(&s->h.lock);
		/* the hasher wakes us only for a first result: ask for the next call */
		uint64_t one = 1;
		(void)!write(s->h.efd, &one, sizeof(one));
		return seterr(err, r, "cannot store hash results: %s", index_errmsg(s->idx));
	}
	while (list) {
		j = list;
		list = j->next;
		r = hash_done_one(s, j, err);
		if (r < 0)
			break;
		n += r;
	}
	while (list) { /* after an error: hash them again */
		j = list;
		list = j->next;
		requeue(s, j);
	}
	if (r >= 0) {
		log_debug("scan: recorded %d hashed files in one transaction", n);
		r = index_commit(s->idx);
		if (r < 0)
			seterr(err, r, "cannot store hash results: %s", index_errmsg(s->idx));
	}
	if (r < 0)
		(void)index_rollback(s->idx);
	scan_feed(s);
	return r < 0 ? r : n;
}

static int open_root(struct scan *s, const char *root, struct err *err)
{
	struct stat st;

	s->rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0)
		return seterr(err, -errno, "cannot open the share folder %s: %s", s->root_q,
			      strerror(errno));
	if (fstat(s->rootfd, &st) < 0)
		return seterr(err, -errno, "cannot stat the share folder %s: %s", s->root_q,
			      strerror(errno));
	s->root_dev = st.st_dev;
	s->root_ino = st.st_ino;
	return 0;
}

/* Checks the marker, or creates it for an index that never held anything. */
static int marker_setup(struct scan *s, struct err *err)
{
	struct stat st;
	int fd, r;

	if (fstatat(s->rootfd, SCAN_MARKER, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return S_ISREG(st.st_mode) ? 0
					   : seterr(err, -ESTALE, "%s/%s is not a regular file",
						    s->root_q, SCAN_MARKER);
	if (errno != ENOENT)
		return seterr(err, -errno, "cannot stat %s/%s: %s", s->root_q, SCAN_MARKER,
			      strerror(errno));
	if (index_seq(s->idx) > 0)
		return seterr(err, -ESTALE,
			      "the share root %s has no %s marker file but the index knows it: "
			      "it is not the folder that was synced (an unmounted disk?), so "
			      "syncing does not start; mount it, or recreate the marker if this "
			      "is the right folder",
			      s->root_q, SCAN_MARKER);
	fd = openat(s->rootfd, SCAN_MARKER, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0644);
	if (fd < 0)
		return seterr(err, -errno, "cannot create the marker %s/%s: %s", s->root_q,
			      SCAN_MARKER, strerror(errno));
	r = fs_write_all(fd, MARKER_TEXT, sizeof(MARKER_TEXT) - 1);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r < 0)
		return seterr(err, r, "cannot write the marker %s/%s: %s", s->root_q, SCAN_MARKER,
			      strerror(-r));
	return 0;
}

int scan_new(const char *root, struct index *idx, struct scan **ret, struct err *err)
{
	struct scan *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s || !(s->root = strdup(root))) {
		free(s);
		return seterr(err, -ENOMEM, "out of memory");
	}
	s->idx = idx;
	map_init(&s->inflight, 0);
	map_init(&s->warned, 0);
	map_init(&s->wds, 0);
	map_init(&s->deferred, 0);
	map_init(&s->gone, 0);
	map_init(&s->named, 0);
	s->gone_due_ms = UINT64_MAX;
	s->rootfd = s->ifd = s->h.efd = -1;
	s->full = true;
	log_quote(root, strlen(root), s->root_q, sizeof(s->root_q));
	r = open_root(s, root, err);
	if (r == 0)
		r = marker_setup(s, err);
	if (r < 0)
		goto fail;
	s->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->ifd < 0) {
		r = seterr(err, -errno, "cannot start watching %s (inotify): %s", s->root_q,
			   strerror(errno));
		goto fail;
	}
	r = scan_hasher_start(&s->h, s->rootfd);
	if (r < 0) {
		seterr(err, r, "cannot start the hasher thread: %s", strerror(-r));
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	scan_free(s);
	return r;
}

void scan_free(struct scan *s)
{
	struct scan_job *j;
	void *v;

	if (!s)
		return;
	scan_hasher_stop(&s->h);
	while ((j = s->backlog)) {
		s->backlog = j->next;
		scan_job_free(j);
	}
	map_done(&s->inflight);
	map_done(&s->warned);
	map_done(&s->deferred);
	for (size_t pos = 0; map_next(&s->gone, &pos, NULL, NULL, &v);)
		free(v);
	map_done(&s->gone);
	map_done(&s->named);
	scan_wdmap_done(&s->wds);
	if (s->ifd >= 0)
		close(s->ifd);
	if (s->rootfd >= 0)
		close(s->rootfd);
	free(s->root);
	free(s);
}

int scan_root_fd(const struct scan *s)
{
	return s->rootfd;
}

int scan_inotify_fd(const struct scan *s)
{
	return s->ifd;
}

int scan_hash_fd(const struct scan *s)
{
	return s->h.efd;
}

void scan_request_full(struct scan *s)
{
	s->full = true;
}

bool scan_pending(const struct scan *s)
{
	return s->full || s->ndirty > 0 || map_count(&s->named) > 0 || s->pend_files > 0 ||
	       s->retry ||
	       map_count(&s->gone) > 0;
}

uint64_t scan_deadline(const struct scan *s)
{
	return s->gone_due_ms;
}

void scan_stats(const struct scan *s, uint64_t *ret_files, uint64_t *ret_bytes)
{
	*ret_files = s->pend_files;
	*ret_bytes = s->pend_bytes;
}

static void mark_dirty(struct scan *s, struct scan_wd *w)
{
	if (!w->dirty) {
		w->dirty = true;
		s->ndirty++;
	}
}

/*
 * An event that names a file which is there (made, moved in, written,
 * chmod'ed): the next scan looks at that path alone, not at its whole
 * directory. Most of all this spares the walks of a directory the engine
 * is renaming downloads into, one batch after another: each rename names
 * a file the index already records as it is. A deletion or a move away
 * (the walk finds what is gone), and anything about a directory, still
 * walk it. false: too many held, walk instead.
 */
static bool name_event(struct scan *s, const struct scan_wd *w, const char *name)
{
	char p[PATH_REL_MAX + 1];
	size_t nlen = strlen(name), len = w->len + (w->len > 0) + nlen;

	if (len > PATH_REL_MAX || map_count(&s->named) >= SCAN_NAMED_MAX)
		return false;
	memcpy(p, w->path, w->len);
	if (w->len)
		p[w->len] = '/';
	memcpy(p + len - nlen, name, nlen);
	return map_put(&s->named, p, len, (void *)(intptr_t)w->wd, NULL) >= 0;
}

static void on_event(struct scan *s, const struct inotify_event *ev)
{
	struct scan_wd *w;
	const char *name = ev->len ? ev->name : NULL;

	if (ev->mask & IN_Q_OVERFLOW) {
		if (!s->full)
			log_info("the inotify queue of %s overflowed: rescanning the whole share",
				 s->root_q);
		s->full = true;
		return;
	}
	w = scan_wdmap_get(&s->wds, ev->wd);
	if (!w)
		return;
	if (ev->mask & IN_IGNORED) {
		if (ev->wd == s->root_wd) {
			s->full = true;
			s->root_wd = -1;
		}
		if (w->dirty)
			s->ndirty--;
		scan_wdmap_del(&s->wds, ev->wd);
		return;
	}
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
		if (w->len == 0)
			s->full = true; /* the root itself: the scan reports it */
		return;			/* elsewhere the parent's event says it */
	}
	/* The marker is excluded from sync but its loss must be noticed. */
	if (name && w->len == 0 && strcmp(name, SCAN_MARKER) == 0) {
		mark_dirty(s, w);
		return;
	}
	if (name && strncmp(name, SCAN_TMP_PREFIX, sizeof(SCAN_TMP_PREFIX) - 1) == 0)
		return;
	if (name && !w->dirty && !(ev->mask & IN_ISDIR) &&
	    (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB | IN_MODIFY)) &&
	    !(ev->mask & ~(IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB | IN_MODIFY)) &&
	    name_event(s, w, name))
		return;
	mark_dirty(s, w);
}

int scan_on_inotify(struct scan *s)
{
	char buf[EVENT_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	for (;;) {
		n = read(s->ifd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return -errno;
		for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
			const struct inotify_event *ev = (const void *)(buf + off);

			on_event(s, ev);
			off += (ssize_t)sizeof(*ev) + ev->len;
		}
	}
	return s->full || s->ndirty > 0 || map_count(&s->named) > 0;
}
