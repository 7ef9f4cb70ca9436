/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One scan: walk the dirty directories (or all of them), then apply what
 * changed in three steps, so that a move is seen as a move whatever order
 * the directories were read in:
 *  1. walk: list each directory, note paths whose stat differs from the
 *     index (items) and index children missing on disk (gone); descend into
 *     new or replaced directories;
 *  2. apply the items in path order (a parent before what is beneath it):
 *     a path new on disk whose (dev, ino) is a live entry gone from disk is
 *     index_rename'd, which moves a whole directory at once and leaves its
 *     contents unchanged for the items that follow;
 *  3. after checking the root again, hold what is still gone, and record
 *     the held deletions that are due (scan_gone.c).
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "base/log.h"
#include "sync/blocks.h"
#include "sync/lazy.h"
#include "sync/scan_int.h"

struct item {
	char *path;
	size_t len;
	struct stat st;
};

struct qdir {
	char *path;
	size_t len;
	bool all; /* descend into every subdirectory */
};

struct walk {
	struct item *items;
	size_t nitems, capitems;
	char **gone;
	size_t ngone, capgone;
	struct qdir *dirs;
	size_t dhead, ndirs, capdirs;
};

/* err gets what failed, for the daemon's one log line. */
static int walk_err(struct scan *s, struct err *err, int r, const char *path)
{
	err_set(err, "cannot scan %s in %s: %s (index: %s)", *path ? LOG_Q(path) : "the top folder",
		s->root_q, strerror(-r), index_errmsg(s->idx));
	return r;
}

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	void *nv;

	if (n < *cap)
		return 0;
	nv = realloc(*v, (*cap ? *cap * 2 : 64) * size);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = *cap ? *cap * 2 : 64;
	return 0;
}

static int push_dir(struct walk *w, const char *path, size_t len, bool all)
{
	char *copy;

	if (grow((void **)&w->dirs, &w->capdirs, w->ndirs, sizeof(*w->dirs)) < 0 ||
	    !(copy = strndup(path, len)))
		return -ENOMEM;
	w->dirs[w->ndirs++] = (struct qdir){copy, len, all};
	return 0;
}

static int push_item(struct walk *w, const char *path, size_t len, const struct stat *st)
{
	char *copy;

	if (grow((void **)&w->items, &w->capitems, w->nitems, sizeof(*w->items)) < 0 ||
	    !(copy = strndup(path, len)))
		return -ENOMEM;
	w->items[w->nitems++] = (struct item){copy, len, *st};
	return 0;
}

static int push_gone(struct walk *w, const char *path)
{
	char *copy;

	if (grow((void **)&w->gone, &w->capgone, w->ngone, sizeof(*w->gone)) < 0 ||
	    !(copy = strdup(path)))
		return -ENOMEM;
	w->gone[w->ngone++] = copy;
	return 0;
}

static void walk_done(struct walk *w)
{
	for (size_t i = 0; i < w->nitems; i++)
		free(w->items[i].path);
	for (size_t i = 0; i < w->ngone; i++)
		free(w->gone[i]);
	for (size_t i = 0; i < w->ndirs; i++)
		free(w->dirs[i].path);
	free(w->items);
	free(w->gone);
	free(w->dirs);
}

/* Opens share directory path for reading, without following any symlink.
 * 0 or -errno. */
static int open_dir(struct scan *s, const char *path, size_t len, DIR **ret_dir)
{
	const char *name;
	int pfd, r;

	if (len == 0)
		return fs_opendir_nofollow(s->rootfd, ".", ret_dir);
	pfd = path_open_parent(s->rootfd, path, 0, &name);
	if (pfd < 0)
		return pfd;
	r = fs_opendir_nofollow(pfd, name, ret_dir);
	close(pfd);
	return r;
}

struct children {
	struct walk *w;
	int dirfd;
	size_t skip; /* bytes of the directory prefix */
};

/* An index child missing on disk (or now a special file) is gone. */
static int child_fn(const struct index_entry *e, void *userdata)
{
	struct children *c = userdata;
	struct stat st;

	if (fstatat(c->dirfd, e->path + c->skip, &st, AT_SYMLINK_NOFOLLOW) == 0
		    ? scan_kind(&st)
		    : (errno != ENOENT && errno != ENOTDIR))
		return 0;
	if (scan_off_disk(e))
		return 0; /* never made here: not gone */
	return push_gone(c->w, e->path);
}

/* name (p in the share), excluded from sync: deleted if it is an engine
 * temp file untouched for SCAN_TMP_MAX_AGE_S. */
static void drop_abandoned(int dirfd, const char *name, const char *p)
{
	struct stat st;
	time_t now = time(NULL);

	if (!scan_engine_tmp(name) || fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode) || now - st.st_mtime < SCAN_TMP_MAX_AGE_S)
		return;
	if (unlinkat(dirfd, name, 0) == 0)
		log_info("removed %s: an unfinished download untouched for %lld days",
			 LOG_Q(p), (long long)((now - st.st_mtime) / 86400));
	else if (errno != ENOENT)
		log_warn("cannot remove the abandoned download %s: %s", LOG_Q(p), strerror(errno));
}

static int walk_dir(struct scan *s, struct walk *w, const struct qdir *q, struct err *err)
{
	char p[PATH_REL_MAX + 1];
	struct children c;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int r;

	r = open_dir(s, q->path, q->len, &d);
	if (r == -ENOMEM)
		return walk_err(s, err, r, q->path);
	if (r < 0) {
		/* Gone or replaced since it was queued: its parent's scan sees that. */
		log_debug("scan: cannot open %s: %s", q->len ? q->path : ".", strerror(-r));
		return 0;
	}
	scan_watch(s, dirfd(d), q->path, q->len);
	s->walked++;
	memcpy(p, q->path, q->len);
	while ((errno = 0, de = readdir(d))) {
		size_t nlen = strlen(de->d_name), len = q->len + (q->len > 0) + nlen;
		bool live, descend;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (len > PATH_REL_MAX)
			continue;
		if (q->len)
			p[q->len] = '/';
		memcpy(p + len - nlen, de->d_name, nlen + 1);
		if (path_check(p, len, NULL) < 0)
			continue;
		if (scan_excluded(p, len)) {
			drop_abandoned(dirfd(d), de->d_name, p);
			continue;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!scan_kind(&st)) {
			scan_warn_special(s, p, len);
			continue;
		}
		r = index_get(s->idx, p, len, &s->e);
		if (r < 0 && r != -ENOENT)
			goto fail;
		live = r == 0 && !s->e.deleted;
		r = 0;
		if (!live || !scan_unchanged(&s->e, &st))
			r = push_item(w, p, len, &st);
		else if (S_ISDIR(st.st_mode) && s->e.ino != (uint64_t)st.st_ino)
			r = push_item(w, p, len, &st); /* replaced: record its identity */
		if (r == 0 && S_ISDIR(st.st_mode)) {
			descend = q->all || !live || s->e.type != INDEX_DIR ||
				  s->e.ino != (uint64_t)st.st_ino;
			if (descend)
				r = push_dir(w, p, len, true);
		}
		if (r < 0)
			goto fail;
	}
	if (errno) {
		r = walk_err(s, err, -errno, q->path);
		goto cleanup;
	}
	c = (struct children){w, dirfd(d), q->len + (q->len > 0)};
	r = index_foreach_child(s->idx, q->path, q->len, child_fn, &c);
	if (r < 0)
		goto fail;
	goto cleanup;
fail:
	r = walk_err(s, err, r, q->path);
cleanup:
	closedir(d);
	return r;
}

/* Whether a or b is the other or beneath it. */
static bool nested(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen > blen)
		return nested(b, blen, a, alen);
	return memcmp(a, b, alen) == 0 && (alen == blen || b[alen] == '/');
}

/*
 * path (new on disk, or holding another inode than its entry) is a rename
 * when its (dev, ino) is a live entry of the same type whose path no longer
 * holds that inode. Returns the index changes made (0: not a rename).
 */
static int try_rename(struct scan *s, const char *path, size_t len, const struct stat *st,
		      bool live)
{
	struct index_entry *src = &s->e2;
	struct stat sst;
	int r, n = 0;

	r = index_get_by_ino(s->idx, (uint64_t)st->st_dev, (uint64_t)st->st_ino, src);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (src->type != scan_kind(st) || nested(src->path, src->path_len, path, len) ||
	    scan_excluded(src->path, src->path_len))
		return 0;
	r = scan_lstat(s, src->path, &sst);
	if (r == 0 ? (sst.st_dev == st->st_dev && sst.st_ino == st->st_ino)
		   : (r != -ENOENT && r != -ENOTDIR))
		return 0; /* still there (a hard link), or unknown: not a move */
	/*
	 * A file written on since it was hashed, then renamed (a copy into a
	 * temp name and a rename into place): moving its entry would publish
	 * the old, shorter content under the new name until the new hash is
	 * done. It is a new file here instead (hashed before it is published);
	 * the old name goes as deleted.
	 */
	if (src->type == INDEX_FILE && (src->size != (uint64_t)st->st_size ||
					src->mtime_ns != scan_ns(&st->st_mtim)))
		return 0;
	if (live) {
		r = scan_delete_tree(s, path, len); /* moved over an existing entry */
		if (r < 0)
			return r;
		n += r;
	}
	r = index_rename(s->idx, src->path, src->path_len, path, len);
	return r < 0 ? r : n + r;
}

static int put(struct scan *s, struct index_entry *e)
{
	int r = index_put_local(s->idx, e);

	return r < 0 ? r : 1;
}

static int set_stat(struct scan *s, const char *path, size_t len, const struct stat *st)
{
	return index_set_stat(s->idx, path, len, (uint64_t)st->st_dev, (uint64_t)st->st_ino,
			      scan_ns(&st->st_ctim));
}

static int apply_symlink(struct scan *s, const char *path, size_t len, const struct stat *st,
			 bool live)
{
	struct index_entry *e = &s->e;
	char target[INDEX_TARGET_MAX + 1];
	const char *name;
	ssize_t n;
	int pfd, r;

	pfd = path_open_parent(s->rootfd, path, 0, &name);
	if (pfd < 0)
		return 0; /* gone again: a later event says so */
	n = readlinkat(pfd, name, target, sizeof(target));
	close(pfd);
	if (n <= 0 || n > INDEX_TARGET_MAX || memchr(target, 0, (size_t)n)) {
		log_debug("scan: skipping symlink %s: unreadable or target too long", LOG_Q(path));
		return 0;
	}
	if (live && e->type == INDEX_SYMLINK && e->target_len == (size_t)n &&
	    memcmp(e->target, target, (size_t)n) == 0 && e->mode == (st->st_mode & 0777) &&
	    e->mtime_ns == scan_ns(&st->st_mtim))
		return set_stat(s, path, len, st);
	scan_entry_init(e, path, len, st);
	memcpy(e->target, target, (size_t)n);
	e->target[n] = '\0';
	e->target_len = (size_t)n;
	e->has_hash = true;
	r = blocks_hash_buf(target, (size_t)n, NULL, NULL, e->hash);
	return r < 0 ? r : put(s, e);
}

/* Hashes path on this thread (scan_path_now) and records it. */
static int apply_file_now(struct scan *s, const char *path, size_t len, struct err *err)
{
	struct scan_job j = {.path = (char *)path, .len = len};
	struct index_entry *e = &s->e;
	int r;

	for (int i = 0; i < SCAN_SYNC_TRIES; i++) {
		scan_hash_job(s->rootfd, &j);
		if (j.err != -EAGAIN)
			break;
	}
	if (j.err < 0) {
		free(j.blob);
		return j.err == -ENOENT ? 0 : walk_err(s, err, j.err, path);
	}
	r = index_get(s->idx, path, len, e);
	if (r == 0 && scan_unchanged(e, &j.st)) {
		r = 0;
	} else if (r == 0 && scan_same_content(e, &j.st, j.hash)) {
		r = set_stat(s, path, len, &j.st); /* moved or chmod'ed back: nothing new */
		r = r < 0 ? r : 0;
	} else if (r == 0 && (r = scan_placeholder_meta(s, path, len, &j.st, e)) != -ENOENT) {
		/* a placeholder: its metadata, not the holes that were hashed */
	} else if (r == -ENOENT) {
		scan_entry_init(e, path, len, &j.st);
		e->has_hash = true;
		memcpy(e->hash, j.hash, INDEX_HASH_LEN);
		r = put(s, e);
		if (r > 0 && index_manifest_put(s->idx, j.hash, j.blob, j.blob_len) < 0)
			r = -EIO;
	}
	free(j.blob);
	return r;
}

/*
 * Whether path is a lazy file (lazy mode) not all here: its bytes on disk
 * are no content (holes), so a moved one keeps its entry's hash (hashing it
 * would publish zeros) and only records its new stat identity.
 */
static bool partial_placeholder(struct scan *s, const char *path, size_t len)
{
	struct lazy_row row;
	uint8_t *bits = NULL;
	bool partial = false;

	if (!s->placeholder || index_lazy_get(s->idx, path, len, &row, &bits) < 0)
		return false;
	for (uint64_t i = 0; !partial && i < blocks_count(row.size); i++)
		partial = i / 8 >= row.bits_len || !((bits[i / 8] >> (i % 8)) & 1);
	free(bits);
	return partial;
}

int scan_apply(struct scan *s, const char *path, size_t len, const struct stat *st, bool now,
	       struct err *err)
{
	struct index_entry *e = &s->e;
	enum index_type type = scan_kind(st);
	bool live, moved = false;
	int r, n = 0;

	r = index_get(s->idx, path, len, e);
	if (r < 0 && r != -ENOENT)
		goto fail;
	live = r == 0 && !e->deleted;
	if (!live || e->ino != (uint64_t)st->st_ino) {
		r = try_rename(s, path, len, st, live);
		if (r < 0)
			goto fail;
		if (r > 0) {
			n = r;
			r = index_get(s->idx, path, len, e);
			if (r < 0)
				goto fail;
			live = !e->deleted;
			/* A moved file keeps its entry (and hash) but is hashed again
			 * below: a rename changes its ctime, and so does a same-size
			 * edit that put the mtime back; only the hash tells them apart.
			 * A placeholder cannot be hashed: it keeps its hash. */
			if (live && e->type == INDEX_FILE && e->size == (uint64_t)st->st_size &&
			    partial_placeholder(s, path, len)) {
				if (e->mtime_ns == scan_ns(&st->st_mtim) &&
				    e->mode == (st->st_mode & 0777)) {
					e->ctime_ns = scan_ns(&st->st_ctim);
					moved = true;
				} else {
					uint8_t hash[INDEX_HASH_LEN];

					memcpy(hash, e->hash, sizeof(hash));
					scan_entry_init(e, path, len, st);
					e->has_hash = true;
					memcpy(e->hash, hash, sizeof(hash));
					r = put(s, e);
					if (r < 0)
						goto fail;
					return n + r;
				}
			}
		}
	}
	if (live && scan_unchanged(e, st)) {
		/* A directory keeps its entry; a moved or replaced one its new identity. */
		if (moved || e->ino != (uint64_t)st->st_ino ||
		    e->ctime_ns != scan_ns(&st->st_ctim) || e->dev != (uint64_t)st->st_dev)
			r = set_stat(s, path, len, st);
		return r < 0 ? walk_err(s, err, r, path) : n;
	}
	if (live && e->type == INDEX_DIR && type != INDEX_DIR) {
		r = scan_delete_tree(s, path, len);
		if (r < 0)
			goto fail;
		n += r;
		live = false;
	}
	switch (type) {
	case INDEX_DIR:
		scan_entry_init(e, path, len, st);
		r = put(s, e);
		break;
	case INDEX_SYMLINK:
		r = apply_symlink(s, path, len, st, live);
		break;
	default:
		/* A chmod is hashed too: the ctime that says so also says a
		 * same-size edit that put the mtime back. */
		if (live && (r = scan_placeholder_meta(s, path, len, st, e)) != -ENOENT) {
			/* a placeholder: only its metadata changed (or r < 0) */
		} else if (!now && scan_defer(s, path, len, st)) {
			r = 0; /* its writer is at it: published later */
		} else if ((!live || e->ino != (uint64_t)st->st_ino) &&
			   (r = scan_moved_placeholder(s, path, len, st, live)) != -ENOENT) {
			/* a placeholder moved here: its content, never its holes */
		} else if (now) {
			r = apply_file_now(s, path, len, err);
			if (r < 0)
				return r;
		} else {
			r = scan_enqueue(s, path, len, (uint64_t)st->st_size);
		}
		break;
	}
	if (r < 0)
		goto fail;
	return n + r;
fail:
	return walk_err(s, err, r, path);
}

static int cmp_item(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->path, ((const struct item *)b)->path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* After a full scan: drop the watches of directories it no longer found. */
static void drop_stale_watches(struct scan *s)
{
	int *stale = malloc(map_count(&s->wds) * sizeof(*stale) + 1);
	struct scan_wd *d;
	size_t n = 0, pos = 0;

	if (!stale)
		return;
	while ((d = scan_wdmap_next(&s->wds, &pos)))
		if (d->gen != s->gen)
			stale[n++] = d->wd;
	for (size_t i = 0; i < n; i++) {
		struct scan_wd *w = scan_wdmap_get(&s->wds, stale[i]);

		if (w && w->dirty)
			s->ndirty--;
		(void)inotify_rm_watch(s->ifd, stale[i]);
		scan_wdmap_del(&s->wds, stale[i]);
	}
	free(stale);
}

static int queue_dirty(struct scan *s, struct walk *w)
{
	struct scan_wd *d;
	size_t pos = 0;

	while ((d = scan_wdmap_next(&s->wds, &pos))) {
		if (!d->dirty)
			continue;
		d->dirty = false;
		s->ndirty--;
		if (push_dir(w, d->path, d->len, false) < 0)
			return -ENOMEM;
	}
	return 0;
}

struct named {
	const char *path; /* the map's key */
	size_t len;
	int wd;
};

static int cmp_named(const void *a, const void *b)
{
	return strcmp(((const struct named *)a)->path, ((const struct named *)b)->path);
}

/*
 * The files events named (scan.c, name_event), each looked at alone as
 * walk_dir looks at an entry: an item when the index does not record it
 * as it is. One that is not a file or symlink any more (gone, a directory,
 * a special file) makes its directory dirty: walked, as before. Names in a
 * dirty directory (or during a full scan) are left to its walk; so are
 * those of a watch gone meanwhile (its directory went: its parent's events
 * say so). In path order, so one open of each directory serves all its
 * names. Before queue_dirty, which queues the dirty directories.
 */
static int queue_named(struct scan *s, struct walk *w, bool full, size_t *ret_checked)
{
	struct named *v = NULL;
	struct scan_wd *cur = NULL;
	const void *key;
	void *val;
	size_t pos = 0, len, n = 0;
	struct stat st;
	int r = 0, pfd = -1;

	if (!full && map_count(&s->named)) {
		v = malloc(map_count(&s->named) * sizeof(*v));
		if (!v)
			r = -ENOMEM;
	}
	while (v && map_next(&s->named, &pos, &key, &len, &val))
		v[n++] = (struct named){key, len, (int)(intptr_t)val};
	if (n)
		qsort(v, n, sizeof(*v), cmp_named);
	for (size_t i = 0; r == 0 && i < n; i++) {
		const char *path = v[i].path, *name;
		struct scan_wd *d = scan_wdmap_get(&s->wds, v[i].wd);
		bool live;

		len = v[i].len;
		if (!d || d->dirty || len <= d->len || memcmp(path, d->path, d->len) != 0 ||
		    (d->len && path[d->len] != '/') ||
		    memchr(path + d->len + (d->len > 0), '/', len - d->len - (d->len > 0)))
			continue; /* walked anyway, or its watch is not this directory's now */
		if (path_check(path, len, NULL) < 0 || scan_excluded(path, len))
			continue;
		(*ret_checked)++;
		name = path + d->len + (d->len > 0);
		if (d != cur) {
			if (pfd >= 0)
				close(pfd);
			pfd = path_open_parent(s->rootfd, path, 0, &name);
			cur = d;
		}
		if (pfd < 0 || fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))) {
			d->dirty = true;
			s->ndirty++;
			continue;
		}
		r = index_get(s->idx, path, len, &s->e);
		if (r < 0 && r != -ENOENT)
			break;
		live = r == 0 && !s->e.deleted;
		r = 0;
		if (!live || !scan_unchanged(&s->e, &st))
			r = push_item(w, path, len, &st);
	}
	if (pfd >= 0)
		close(pfd);
	free(v);
	map_done(&s->named);
	map_init(&s->named, 0);
	return r;
}

/* scan_retry_held: the files left unpublished are items again. */
static int queue_deferred(struct scan *s, struct walk *w)
{
	const void *key;
	size_t pos = 0, len;
	struct stat st;
	int r = 0;

	if (!s->retry)
		return 0;
	while (r == 0 && map_next(&s->deferred, &pos, &key, &len, NULL))
		if (scan_lstat(s, key, &st) == 0 && S_ISREG(st.st_mode))
			r = push_item(w, key, len, &st); /* gone: its directory's events say so */
	if (r < 0)
		return r;
	map_done(&s->deferred);
	map_init(&s->deferred, 0);
	s->retry = false;
	return 0;
}

int scan_walk_run(struct scan *s, uint64_t now_ms, struct err *err)
{
	struct walk w = {0};
	bool full = s->full;
	uint64_t walked = s->walked;
	size_t checked = 0;
	int r, n = 0;

	r = scan_check_root(s, err);
	if (r < 0) {
		if (r == -ESTALE)
			scan_gone_drop(s);
		return r;
	}
	if (full) {
		s->gen++;
		r = push_dir(&w, "", 0, true);
	}
	if (r == 0)
		r = queue_named(s, &w, full, &checked);
	if (r == 0)
		r = queue_dirty(s, &w); /* a full scan covers them */
	if (r == 0)
		r = queue_deferred(s, &w);
	if (r < 0) {
		r = walk_err(s, err, r, "");
		goto cleanup;
	}
	if (full)
		for (size_t i = 1; i < w.ndirs; i++)
			free(w.dirs[i].path);
	if (full)
		w.ndirs = 1;
	s->full = false;
	r = index_begin(s->idx);
	if (r < 0) {
		r = walk_err(s, err, r, "");
		goto cleanup;
	}
	for (w.dhead = 0; w.dhead < w.ndirs; w.dhead++) {
		struct qdir q = w.dirs[w.dhead]; /* push_dir may move the array */

		r = walk_dir(s, &w, &q, err);
		if (r < 0)
			goto cleanup;
	}
	if (w.nitems)
		qsort(w.items, w.nitems, sizeof(*w.items), cmp_item);
	for (size_t i = 0; i < w.nitems; i++) {
		r = scan_apply(s, w.items[i].path, w.items[i].len, &w.items[i].st, false, err);
		if (r < 0)
			goto cleanup;
		n += r;
	}
	r = scan_check_root(s, err); /* nothing is deleted from a vanished share */
	if (r < 0)
		goto cleanup;
	if (w.ngone)
		qsort(w.gone, w.ngone, sizeof(*w.gone), cmp_str);
	for (size_t i = 0; i < w.ngone; i++) {
		size_t len = strlen(w.gone[i]);

		r = index_get(s->idx, w.gone[i], len, &s->e);
		if (r == 0 && !s->e.deleted)
			r = scan_gone_hold(s, &s->e, now_ms);
		else if (r == 0 || r == -ENOENT)
			r = 0;
		if (r < 0) {
			r = walk_err(s, err, r, w.gone[i]);
			goto cleanup;
		}
	}
	r = scan_gone_release(s, now_ms);
	if (r < 0) {
		r = walk_err(s, err, r, "");
		goto cleanup;
	}
	n += r;
	log_debug("scan: walked %" PRIu64 " directories%s, checked %zu named files, %d changes",
		  s->walked - walked, full ? " (full)" : "", checked, n);
	r = index_commit(s->idx);
	if (r < 0)
		r = walk_err(s, err, r, "");
cleanup:
	if (r == -ESTALE)
		scan_gone_drop(s); /* the burst ended with the root gone */
	if (r < 0) {
		(void)index_rollback(s->idx);
		s->full = true; /* what was dirty is not lost */
	} else if (full) {
		drop_stale_watches(s);
	}
	walk_done(&w);
	return r < 0 ? r : n;
}

/* ---- the scanner's entry points that walk (here, not in scan.c: scan.c is
 * below the walk, which uses its helpers) ---- */

static int now_err(struct err *err, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int now_err(struct err *err, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_setv(err, fmt, ap);
	va_end(ap);
	return r;
}

int scan_run(struct scan *s, uint64_t now_ms, struct err *err)
{
	int r = scan_walk_run(s, now_ms, err);

	scan_feed(s);
	return r;
}

static int path_now(struct scan *s, const char *path, size_t len, bool all, struct err *err);

/*
 * A directory scan_path_now() recorded as new (or replaced): the walks of
 * its parent now find it recorded and unchanged and do not go in, so it is
 * watched here, and what it already holds is brought in at once, the same
 * way, every directory beneath it too (as a walk descends into a new
 * directory, walk_dir's all): one moved here brought its tree's entries
 * along (index_rename), known at their new paths with their inodes, but
 * not what they hold that no scan recorded yet, and their watches still
 * name the old paths (sim bug 29). So is what its entries say it holds and
 * it no longer does: a directory the applier made (no identity, not
 * watched) whose contents the user moved or deleted before any walk (sim
 * bug 25). Returns 0 or -errno (err set).
 */
static int walk_recorded_dir(struct scan *s, const char *path, size_t len, struct err *err)
{
	char p[PATH_REL_MAX + 1];
	struct walk w = {0};
	struct children c;
	struct dirent *de;
	DIR *d;
	int r;

	r = open_dir(s, path, len, &d);
	if (r < 0)
		return 0; /* gone again: its parent's events say so */
	(void)scan_watch(s, dirfd(d), path, len);
	memcpy(p, path, len);
	p[len] = '/';
	while (r >= 0 && (de = readdir(d))) {
		size_t nlen = strlen(de->d_name);

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    len + 1 + nlen > PATH_REL_MAX)
			continue;
		memcpy(p + len + 1, de->d_name, nlen + 1);
		r = path_now(s, p, len + 1 + nlen, true, err);
	}
	if (r >= 0) {
		c = (struct children){&w, dirfd(d), len + 1};
		r = index_foreach_child(s->idx, path, len, child_fn, &c);
		if (r < 0)
			r = now_err(err, r, "cannot read the index of %s: %s", LOG_Q(path),
				    index_errmsg(s->idx));
	}
	closedir(d);
	for (size_t i = 0; r >= 0 && i < w.ngone; i++)
		r = scan_path_now(s, w.gone[i], strlen(w.gone[i]), err); /* records it gone */
	walk_done(&w);
	return r < 0 ? r : 0;
}

/* scan_path_now(); all: a directory is walked even when the index knows
 * it (beneath one recorded new). */
static int path_now(struct scan *s, const char *path, size_t len, bool all, struct err *err)
{
	struct err perr;
	char p[PATH_REL_MAX + 1];
	struct stat st;
	int r;

	r = path_check(path, len, &perr);
	if (r < 0)
		return now_err(err, r, "%s", perr.msg);
	if (scan_excluded(path, len))
		return 0;
	memcpy(p, path, len);
	p[len] = '\0';
	path = p;
	r = scan_lstat(s, path, &st);
	if (r == -ENOENT || r == -ENOTDIR || (r == 0 && !scan_kind(&st))) {
		/* nothing recorded there (a file about to be made, mostly): nothing
		 * to delete, so no need to check the root (three stat calls) */
		r = index_get(s->idx, path, len, &s->e);
		if (r == -ENOENT || (r == 0 && (s->e.deleted || scan_off_disk(&s->e))))
			return 0;
		if (r == 0 && (r = scan_check_root(s, err)) < 0)
			return r;
		if (r == 0)
			r = scan_delete_tree(s, path, len);
		if (r < 0)
			return now_err(err, r, "cannot record the deletion of %s: %s", LOG_Q(path),
				       index_errmsg(s->idx));
		return r > 0;
	}
	if (r < 0)
		return now_err(err, r, "cannot stat %s in %s: %s", LOG_Q(path), s->root_q,
			       strerror(-r));
	/* a directory new to the index (or replaced) is watched and walked here */
	bool known = S_ISDIR(st.st_mode) && index_get(s->idx, path, len, &s->e) == 0 &&
		     !s->e.deleted && s->e.type == INDEX_DIR && s->e.ino == (uint64_t)st.st_ino;
	r = scan_apply(s, path, len, &st, true, err);
	if (r >= 0 && S_ISDIR(st.st_mode) && (all || !known)) {
		int q = walk_recorded_dir(s, path, len, err);
		if (q < 0)
			return q;
		if (!known)
			r = 1;
	}
	return r < 0 ? r : r > 0;
}

int scan_path_now(struct scan *s, const char *path, size_t len, struct err *err)
{
	return path_now(s, path, len, false, err);
}
