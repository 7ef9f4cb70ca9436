/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The applier (apply.h): a batch of the peer's index entries applied to
 * the share, what decide() says done on disk (all beneath the root,
 * through disk_open_parent, never following a symlink). See engine.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "sync/apply.h"
#include "sync/decide.h"
#include "sync/path.h"

_Static_assert(SYNC_FILE_MAX == BLOCKS_FILE_MAX,
	       "the decoder refuses exactly the files the block layer cannot hold");

static void quote(const char *s, char *out, size_t outlen)
{
	log_quote(s, strlen(s), out, outlen);
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* Records the stat identity and actual times of what is now on disk. */
static void entry_from_stat(struct index_entry *x, const struct stat *st)
{
	x->dev = st->st_dev;
	x->ino = st->st_ino;
	x->ctime_ns = ts_ns(&st->st_ctim);
	if (x->type != INDEX_DIR)
		x->mtime_ns = ts_ns(&st->st_mtim);
	x->mode = st->st_mode & 0777;
	if (x->type == INDEX_FILE)
		x->size = (uint64_t)st->st_size;
}

static void changed(struct applier *a, const char *path)
{
	if (a->c.changed)
		a->c.changed(a->c.ud, path);
}

/* Stores r (with vector vv) as applied, with the identity of st (or none). */
static int store(struct applier *a, const struct rentry *r, const struct vv *vv,
		 const struct stat *st)
{
	struct index_entry *x = malloc(sizeof(*x));
	int ret;

	if (!x)
		return -ENOMEM;
	rentry_to_index(r, x);
	x->vv = *vv;
	if (st && !r->deleted)
		entry_from_stat(x, st);
	ret = index_put_remote(a->c.idx, x);
	free(x);
	if (ret < 0)
		log_warn("cannot record %s in the index: %s", LOG_Q(r->path), index_errmsg(a->c.idx));
	return ret;
}

static void merged_vv(const struct vv *a, const struct vv *b, struct vv *ret)
{
	*ret = *a;
	if (vv_merge(ret, b) < 0)
		*ret = *a;
}

/*
 * The vector theirs (rv) is stored with when taken over our l (NULL: we
 * have none): the version somebody wrote, so that its writer's next
 * version, or its deletion, dominates it. Merged with ours only when ours
 * stays alive: theirs dominates it (the merge is theirs), or the two are
 * the same content (the peer merges too, DECIDE_MERGE_ONLY). A deletion of
 * ours that loses to their edit, or a version of ours that loses a
 * conflict and moved to its copy, is dropped with its counter: merged in,
 * it made theirs a version nobody wrote, concurrent with their writer's
 * next one (a conflict copy of their old content, docs/SIM.md bug 7) and
 * with their later deletion of it (the file came back; in lazy mode as a
 * placeholder nobody could serve, bug 9). The side that holds our version
 * keeps its own with a vector dominating both when it gets ours
 * (keep_local), or keeps ours as its conflict copy.
 */
static void taken_vv(enum decide_verdict v, const struct index_entry *l, const struct vv *rv,
		     struct vv *ret)
{
	if (l && !l->deleted && v != DECIDE_LOCAL_LOSES)
		merged_vv(&l->vv, rv, ret);
	else
		*ret = *rv;
}

/* Our version wins: store it with a vector that dominates theirs. */
static void keep_local(struct applier *a, const struct rentry *r, struct index_entry *l)
{
	struct vv m;

	merged_vv(&l->vv, &r->vv, &m);
	l->vv = m;
	if (index_put_remote(a->c.idx, l) < 0 || index_put_local(a->c.idx, l) < 0)
		log_warn("cannot record %s in the index: %s", LOG_Q(l->path), index_errmsg(a->c.idx));
}

/*
 * Whether the index knows cname, live or deleted: no name for a new
 * conflict copy even when nothing is on disk there. A tombstone is the
 * name's history: the peer may still hold a version there that we deleted
 * or moved away (a conflict copy renamed back to its original, which loses
 * again: the same version, the same name), and the peer's edit of it, an
 * edit winning over our deletion, would meet our new copy there: a
 * conflict copy of a conflict copy (docs/SIM.md bug 27).
 */
static bool conflict_name_known(struct applier *a, const char *cname)
{
	struct index_entry *x = malloc(sizeof(*x));
	bool yes;

	if (!x)
		return false; /* cannot tell: the disk decides, as before */
	yes = index_get(a->c.idx, cname, strlen(cname), x) == 0;
	free(x);
	return yes;
}

/* Moves our losing version of l to its conflict name (disk and index). */
static int move_to_conflict(struct applier *a, struct index_entry *l)
{
	struct conflict_version v;
	char cname[PATH_REL_MAX + 1], q[256];
	const char *name, *cn = cname;
	int dirfd, r;

	entry_to_version(l, a->c.self_dev, &v);
	dirfd = disk_open_parent(a->c.disk, l->path, false, &name);
	if (dirfd < 0)
		return dirfd;
	/* the name is taken when this version lost before and its copy stays
	 * (maybe edited since): the next free one of conflict_name_nth */
	r = -EEXIST;
	for (unsigned n = 1; r == -EEXIST && n < 100; n++) {
		r = conflict_name_nth(l->path, l->path_len, &v, n, cname, sizeof(cname));
		if (r < 0)
			break;
		if (conflict_name_known(a, cname)) {
			r = -EEXIST;
			continue;
		}
		cn = strrchr(cname, '/');
		cn = cn ? cn + 1 : cname;
		r = renameat2(dirfd, name, dirfd, cn, RENAME_NOREPLACE) < 0 ? -errno : 0;
	}
	if (r == 0) {
		r = index_rename(a->c.idx, l->path, l->path_len, cname, (size_t)(cn - cname) + strlen(cn));
		if (r < 0)
			log_warn("cannot record the conflict copy %s: %s", LOG_Q(cname),
				 index_errmsg(a->c.idx));
		struct stat st;
		struct err err;
		if (l->type == INDEX_DIR) {
			/* what it holds that no walk has seen yet moved with it, and
			 * its watch still has the old name: recorded without an
			 * identity, it is watched and walked under the new one */
			if (index_set_stat(a->c.idx, cname, strlen(cname), 0, 0, 0) < 0 ||
			    scan_path_now(a->c.scan, cname, strlen(cname), &err) < 0)
				log_debug("cannot walk the conflict copy %s", LOG_Q(cname));
		} else if (fstatat(dirfd, cn, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			   index_set_stat(a->c.idx, cname, strlen(cname), st.st_dev, st.st_ino,
					  ts_ns(&st.st_ctim)) < 0)
			log_debug("cannot record the identity of %s", LOG_Q(cname));
		r = 0;
	}
	close(dirfd);
	quote(l->path, q, sizeof(q));
	if (r == 0) {
		a->conflicts++;
		log_notice("conflict: %s was changed on both sides; ours is kept as %s", q,
			   LOG_Q(cname));
	}
	return r;
}

/*
 * Removes dirfd/name (a directory when dir, only when empty). final: a
 * directory that is not empty is about to be kept as ours; the engine's
 * temp files in it (downloads interrupted before: the connection lost, a
 * restart) do not keep it: the peer deleted what they were for, they can
 * never be put in place. Before final, the deletions of its contents may
 * still come (and drop them). 0 or -errno.
 */
static int remove_path(int dirfd, const char *name, bool dir, bool final)
{
	int rc = unlinkat(dirfd, name, dir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;

	if (dir && final && (rc == -ENOTEMPTY || rc == -EEXIST) && disk_drop_tmps(dirfd, name) > 0)
		rc = unlinkat(dirfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
	return rc;
}

/* Deletes what is at r->path on disk (r is a tombstone). may_wait: a
 * directory that is not empty is left as it is, and -EAGAIN returned (its
 * contents' deletions may still come), instead of kept as ours. */
static int apply_delete(struct applier *a, const struct rentry *r, struct index_entry *l,
			const struct vv *vv, bool may_wait)
{
	const char *name;
	int dirfd, rc;

	dirfd = disk_open_parent(a->c.disk, r->path, false, &name);
	if (dirfd < 0 && dirfd != -ENOENT)
		return dirfd;
	rc = 0;
	if (dirfd >= 0) {
		lazy_retire(a->c.lazy, r->path);
		if (r->kind == SYNC_KIND_FILE)
			fetch_forget(a->c.fetch, r, dirfd);
		rc = remove_path(dirfd, name, l->type == INDEX_DIR, !may_wait);
		close(dirfd);
	}
	if ((rc == -ENOTEMPTY || rc == -EEXIST) && may_wait)
		return -EAGAIN;
	if (rc == -ENOTEMPTY || rc == -EEXIST) {
		/* something of ours is still in there: the directory stays */
		keep_local(a, r, l);
		return 0;
	}
	if (rc < 0 && rc != -ENOENT) {
		log_warn("cannot delete %s as the peer did: %s", LOG_Q(r->path), strerror(-rc));
		return rc;
	}
	(void)store(a, r, vv, NULL);
	lazy_gone(a->c.lazy, r->path);
	changed(a, r->path);
	return 0;
}

/*
 * A FIFO, socket or device node of ours holds the peer's path: ours stays
 * (special files are local to this side, SYNC.md §1), and the peer's entry
 * is refused: logged, counted, and recorded with no identity (as
 * refuse_symlink does), so the scanner does not send its absence back as
 * a deletion. It arrives with the peer's next change once ours is gone.
 */
static mode_t special_at(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISREG(st.st_mode) ||
	    S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode))
		return 0;
	return st.st_mode & S_IFMT;
}

static bool special_in_the_way(struct applier *a, int dirfd, const char *name,
			       const struct rentry *r, const struct vv *vv)
{
	mode_t m = special_at(dirfd, name);

	if (!m)
		return false;
	log_warn("not taking the peer's %s: our %s of that name stays (special files are local "
		 "to this side; rename ours to receive the peer's)",
		 LOG_Q(r->path),
		 S_ISFIFO(m) ? "FIFO" : S_ISSOCK(m) ? "socket" : "device node");
	a->refused++;
	if (store(a, r, vv, NULL) < 0)
		log_debug("cannot record the peer's %s: %s", LOG_Q(r->path), index_errmsg(a->c.idx));
	changed(a, r->path);
	return true;
}

static int apply_dir(struct applier *a, const struct rentry *r, const struct vv *vv)
{
	struct stat st;
	const char *name;
	int dirfd, rc;

	dirfd = disk_open_parent(a->c.disk, r->path, true, &name);
	if (dirfd < 0)
		return dirfd;
	if (special_in_the_way(a, dirfd, name, r, vv)) {
		close(dirfd);
		return 0;
	}
	rc = mkdirat(dirfd, name, 0700) < 0 ? -errno : 0;
	if (rc == -EEXIST) {
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
			rc = -EEXIST; /* a file or symlink of ours is there */
		else
			rc = 0;
	}
	if (rc == 0)
		rc = disk_meta_set(dirfd, name, SYNC_KIND_DIR, disk_peer_mode(a->c.disk, r->mode), 0, &st);
	close(dirfd);
	if (rc < 0)
		return rc;
	/* Identity unknown: the scanner's next walk of the parent records it and
	 * descends once, which is when it starts watching the new directory
	 * (otherwise local edits inside it go unseen until a full rescan). */
	st.st_ino = 0;
	rc = store(a, r, vv, &st);
	changed(a, r->path);
	return rc;
}

/*
 * A symlink of the peer's that points outside the share is not made here
 * (unless --symlinks=all): whatever we had under its name goes, as the
 * peer's newer version says, and the entry is recorded with no identity,
 * so the scanner does not read its absence as a deletion (scan_off_disk).
 */
static int refuse_symlink(struct applier *a, const struct rentry *r, const struct vv *vv,
			  int dirfd, const char *name)
{
	struct stat st;
	int rc = 0;

	log_warn("not making the peer's symlink %s -> %s: it points outside the share "
		 "('tandem up --symlinks=all' makes such links)",
		 LOG_Q(r->path), LOG_Q(r->target));
	a->refused++;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode))
			rc = -EISDIR; /* as renaming a link over it would fail */
		else if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			rc = -errno;
	}
	close(dirfd);
	if (rc < 0)
		return rc;
	rc = store(a, r, vv, NULL);
	changed(a, r->path);
	return rc;
}

static int apply_symlink(struct applier *a, const struct rentry *r, const struct vv *vv)
{
	char tmp[64];
	struct stat st;
	const char *name;
	int dirfd, rc;

	dirfd = disk_open_parent(a->c.disk, r->path, true, &name);
	if (dirfd < 0)
		return dirfd;
	if (!a->c.symlinks_all && r->target &&
	    path_link_escapes(r->path, r->path_len, r->target, r->target_len))
		return refuse_symlink(a, r, vv, dirfd, name);
	if (special_in_the_way(a, dirfd, name, r, vv)) {
		close(dirfd);
		return 0;
	}
	snprintf(tmp, sizeof(tmp), SCAN_TMP_PREFIX "%016" PRIx64 ".lnk", r->seq);
	(void)unlinkat(dirfd, tmp, 0);
	rc = symlinkat(r->target ? r->target : "", dirfd, tmp) < 0 ? -errno : 0;
	if (rc == 0 && renameat(dirfd, tmp, dirfd, name) < 0) {
		rc = -errno;
		(void)unlinkat(dirfd, tmp, 0);
	}
	if (rc == 0)
		rc = disk_meta_set(dirfd, name, SYNC_KIND_SYMLINK, r->mode, r->mtime_ns, &st);
	close(dirfd);
	if (rc < 0)
		return rc;
	rc = store(a, r, vv, &st);
	changed(a, r->path);
	return rc;
}

/* Metadata only: the content is already ours. */
static int apply_meta(struct applier *a, const struct rentry *r, const struct vv *vv)
{
	struct stat st;
	const char *name;
	int dirfd, rc;

	dirfd = disk_open_parent(a->c.disk, r->path, false, &name);
	if (dirfd < 0)
		return dirfd;
	rc = disk_meta_set(dirfd, name, r->kind, disk_peer_mode(a->c.disk, r->mode), r->mtime_ns, &st);
	close(dirfd);
	if (rc < 0)
		return rc;
	rc = store(a, r, vv, &st);
	changed(a, r->path);
	return rc;
}

/*
 * Lazy mode: puts a sparse file of r's size, mode and mtime at r->path
 * (temp file and rename, like a fetch), records r as applied with its stat
 * identity, and tracks it as a placeholder (lazy.c fetches its blocks).
 */
static int apply_place(struct applier *a, const struct rentry *r)
{
	struct timespec ts[2] = {{0, UTIME_OMIT}, {r->mtime_ns / 1000000000, r->mtime_ns % 1000000000}};
	char tmp[64];
	struct stat st;
	const char *name;
	int dirfd, fd, rc = 0;

	if (r->size > BLOCKS_FILE_MAX)
		return -EFBIG; /* no placeholder a block bitmap cannot describe */
	if (ts[1].tv_nsec < 0) {
		ts[1].tv_nsec += 1000000000;
		ts[1].tv_sec -= 1;
	}
	dirfd = disk_open_parent(a->c.disk, r->path, true, &name);
	if (dirfd < 0)
		return dirfd;
	if (special_in_the_way(a, dirfd, name, r, &r->vv)) {
		close(dirfd);
		return 0;
	}
	snprintf(tmp, sizeof(tmp), SCAN_TMP_PREFIX "%016" PRIx64 ".lazy", r->seq);
	(void)unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	lazy_retire(a->c.lazy, r->path);
	if (ftruncate(fd, (off_t)r->size) < 0 || fchmod(fd, disk_peer_mode(a->c.disk, r->mode)) < 0 ||
	    futimens(fd, ts) < 0 ||
	    renameat(dirfd, tmp, dirfd, name) < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		(void)unlinkat(dirfd, tmp, 0);
		goto out;
	}
	rc = store(a, r, &r->vv, &st);
	if (rc == 0)
		rc = lazy_track(a->c.lazy, r->path, r->path_len, r->hash, r->size, (uint64_t)st.st_ino);
	changed(a, r->path);
out:
	if (fd >= 0)
		close(fd);
	close(dirfd);
	return rc;
}

/* ---- the batch ---- */

struct cand { /* a local file the batch deletes: its content can move */
	uint8_t hash[INDEX_HASH_LEN];
	struct rentry *del; /* its tombstone, or the directory or symlink replacing it */
	bool used;
};

struct batch_ctx {
	struct applier *a;
	struct cand *cands;
	size_t ncands;
	struct index_entry *l; /* scratch */
	bool final;	       /* the peer's INDEX_DONE came */
	size_t carry_bytes;    /* of the entries kept for the next batch */
	size_t max;	       /* the batch's cap in bytes: half of it may be kept */
	const struct rentry *b; /* the batch */
	size_t n;
};

/* Whether the batch has a live file of content hash (the peer has it). */
static bool batch_has(const struct batch_ctx *c, const uint8_t *hash)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->b[i].path && !c->b[i].deleted && c->b[i].kind == SYNC_KIND_FILE &&
		    memcmp(c->b[i].hash, hash, INDEX_HASH_LEN) == 0)
			return true;
	return false;
}

static size_t rentry_bytes(const struct rentry *r)
{
	return sizeof(*r) + rentry_str_bytes(r->path_len, r->target ? r->target_len : 0);
}

/*
 * Before the peer's INDEX_DONE, r waits for entries still to come (what
 * empties a directory) and is tried again with the next batch, while what
 * is kept stays within half of the batch's cap. Whether r may be kept;
 * with keep, it is.
 */
static bool carry(struct batch_ctx *c, struct rentry *r, bool keep)
{
	size_t n = rentry_bytes(r);

	if (c->final || c->carry_bytes + n > c->max / 2)
		return false;
	if (keep) {
		char q[128];
		c->carry_bytes += n;
		r->carry = true;
		log_debug("sync: %s waits for the peer's next entries",
			  log_quote(r->path, r->path_len, q, sizeof(q)));
	}
	return true;
}

static int cmp_path_seq(const void *a, const void *b)
{
	const struct rentry *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_cand(const void *a, const void *b)
{
	return memcmp(((const struct cand *)a)->hash, ((const struct cand *)b)->hash,
		      INDEX_HASH_LEN);
}

/* Reads our current entry for path, after making sure it matches the disk. */
static bool local_get(struct applier *a, const char *path, size_t len, struct index_entry *l)
{
	struct err err;

	if (scan_path_now(a->c.scan, path, len, &err) < 0)
		log_debug("cannot rescan %s: %s", LOG_Q(path), err.msg);
	return index_get(a->c.idx, path, len, l) == 0;
}

/* Moves a local file the batch deletes to r's path instead of fetching it. */
static int move_local(struct batch_ctx *c, const struct rentry *r, struct cand *k,
		      const struct vv *vv)
{
	struct applier *a = c->a;
	const char *sname, *dname;
	struct stat st;
	int sfd, dfd, rc;

	sfd = disk_open_parent(a->c.disk, k->del->path, false, &sname);
	if (sfd < 0)
		return sfd;
	dfd = disk_open_parent(a->c.disk, r->path, true, &dname);
	if (dfd < 0) {
		close(sfd);
		return dfd;
	}
	if (special_at(dfd, dname)) {
		close(sfd);
		close(dfd);
		return -EEXIST; /* placed or fetched instead: refused there */
	}
	lazy_retire(a->c.lazy, r->path);
	rc = renameat(sfd, sname, dfd, dname) < 0 ? -errno : 0;
	if (rc == 0)
		rc = disk_meta_set(dfd, dname, SYNC_KIND_FILE, disk_peer_mode(a->c.disk, r->mode), r->mtime_ns,
			      &st);
	/*
	 * r's entry before the lazy-content record moves: storing a new
	 * content at a path drops the record there (the index's trigger),
	 * which would be the one just moved: a placeholder nobody tracks,
	 * its holes read as its content (docs/SIM.md bug 33).
	 */
	if (rc == 0)
		(void)store(a, r, vv, &st);
	if (rc == 0 &&
	    lazy_moved(a->c.lazy, k->del->path, k->del->path_len, r->path, r->path_len) < 0) {
		/* a placeholder without its mark would read as zeros: placed or
		 * fetched instead (which stores r again) */
		log_warn("cannot move the lazy-content record of %s to %s: %s", LOG_Q(k->del->path),
			 LOG_Q(r->path), index_errmsg(a->c.idx));
		(void)renameat(dfd, dname, sfd, sname);
		rc = -EIO;
	}
	close(sfd);
	close(dfd);
	if (rc < 0)
		return rc;
	k->used = true;
	if (k->del->deleted) {
		(void)store(a, k->del, &k->del->vv, NULL);
		changed(a, k->del->path);
	} /* else the kind that replaces it is applied at its path, which is free now */
	changed(a, r->path);
	return 0;
}

static struct cand *cand_find(struct batch_ctx *c, const uint8_t *hash)
{
	size_t lo = 0, hi = c->ncands;

	while (lo < hi) { /* the first with this hash */
		size_t mid = (lo + hi) / 2;
		if (memcmp(c->cands[mid].hash, hash, INDEX_HASH_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < c->ncands && memcmp(c->cands[lo].hash, hash, INDEX_HASH_LEN) == 0; lo++)
		if (!c->cands[lo].used)
			return &c->cands[lo];
	return NULL;
}

/*
 * Ours (a file, symlink or directory) wins a conflict against the peer's
 * live file r, whose content is in a file of ours that this batch
 * deletes: the peer moved (renamed) it to r's path, concurrently with our
 * change there. The peer keeps its losing version as its conflict copy,
 * but in lazy mode that copy may be only a placeholder whose content
 * nobody else has: deleting our file lost it for good (docs/SIM.md bug
 * 18). So that file moves to the name the peer's copy gets (the loser's
 * mtime and device), recorded with the peer's counter only: the copy the
 * peer then sends (a new counter of its own) dominates it, and is the
 * same content or replaces it.
 */
static void keep_losers_content(struct batch_ctx *c, const struct rentry *r,
				const struct index_entry *l)
{
	struct applier *a = c->a;
	struct conflict_version v;
	struct index_entry rx;
	struct rentry q;
	struct cand *k;
	char cname[PATH_REL_MAX + 1];
	uint64_t n = vv_get(&r->vv, a->peer_dev);
	unsigned i;

	if (n == 0 || r->deleted || r->kind != SYNC_KIND_FILE || l->deleted ||
	    vv_compare(&r->vv, &l->vv) != VV_CONCURRENT ||
	    memcmp(r->hash, l->hash, INDEX_HASH_LEN) == 0)
		return;
	k = cand_find(c, r->hash);
	if (!k)
		return;
	memset(&rx, 0, offsetof(struct index_entry, target));
	rx.deleted = false; /* after target: not cleared above */
	rx.mtime_ns = r->mtime_ns;
	rx.size = r->size;
	memcpy(rx.hash, r->hash, INDEX_HASH_LEN);
	entry_to_version(&rx, a->peer_dev, &v);
	/* the peer's rule (move_to_conflict): the first name its index does
	 * not know, as ours does not */
	for (i = 1; i < 100; i++) {
		if (conflict_name_nth(r->path, r->path_len, &v, i, cname, sizeof(cname)) < 0)
			return;
		if (!local_get(a, cname, strlen(cname), c->l))
			break;
	}
	if (i == 100)
		return;
	q = *r;
	q.path = cname;
	q.path_len = strlen(cname);
	vv_init(&q.vv);
	memcpy(q.vv.e[0].device, a->peer_dev, VV_DEVICE_LEN);
	q.vv.e[0].counter = n;
	q.vv.n = 1;
	(void)move_local(c, &q, k, &q.vv);
}

/*
 * The peer's live entry r lies beneath a file or symlink of ours: the peer
 * made a directory there (or wrote into one) that we never saw, since it
 * would have replaced ours by its directory's entry otherwise. As when
 * the two kinds meet at one path (decide.c), the directory wins the name:
 * ours moves to its conflict copy (sent to the peer as a new file), and
 * r's directories are made on the way. A link of the peer's refused here
 * is not ours to move (disk_open_parent refuses what lies beneath it).
 */
static void free_ancestor(struct applier *a, const struct rentry *r)
{
	struct index_entry *x;
	const char *name;
	int fd;

	if (!strchr(r->path, '/'))
		return;
	fd = path_open_parent(a->c.disk->rootfd, r->path, false, &name);
	if (fd >= 0)
		close(fd);
	if (fd != -ENOTDIR && fd != -ELOOP)
		return;
	x = malloc(sizeof(*x));
	if (!x)
		return;
	for (const char *s = strchr(r->path, '/'); s; s = strchr(s + 1, '/')) {
		if (!local_get(a, r->path, (size_t)(s - r->path), x) || x->deleted ||
		    x->type == INDEX_DIR)
			continue;
		if (x->ino != 0 && move_to_conflict(a, x) == 0)
			changed(a, x->path);
		break;
	}
	free(x);
}

/* Whether our version l is a placeholder whose content is not all here
 * (lazy mode): no write of content of ours, only metadata (decide.h). */
static bool local_partial(struct applier *a, const struct index_entry *l)
{
	return a->c.lazy_mode && !l->deleted && l->type == INDEX_FILE &&
	       lazy_partial(a->c.lazy, l->path, l->hash);
}

/*
 * Lazy mode: our version of r's path is a placeholder not all here (or a
 * directory holding one) that is gone from its path (the user moved it, maybe: only a walk finds it under
 * its new name, by its inode), and r is not newer: nothing changes there.
 * The rescan before deciding would record the placeholder's deletion at
 * once, sent before its new name: the peer would delete its copy of the
 * content, maybe the only one, and then ask for the new name, which
 * nobody could serve (docs/SIM.md bug 19, seed 342). The walk that the
 * same inotify event brings records the move (both names in one burst:
 * the peer moves its copy), or the deletion.
 */
static bool placeholder_gone_unchanged(struct applier *a, const struct rentry *r,
				       struct index_entry *l)
{
	enum vv_order o;
	struct stat st;

	if (!a->c.lazy_mode || index_get(a->c.idx, r->path, r->path_len, l) < 0 || l->deleted)
		return false;
	/* so is a directory holding one: the user may have moved it whole
	 * (long-run seed 3002596) */
	if (l->type == INDEX_DIR ? r->kind != SYNC_KIND_DIR ||
					   !lazy_partial_beneath(a->c.lazy, l->path, l->path_len)
				 : l->type != INDEX_FILE || !local_partial(a, l))
		return false;
	o = vv_compare(&r->vv, &l->vv);
	if (o != VV_EQUAL && o != VV_DOMINATED)
		return false;
	return fstatat(a->c.disk->rootfd, r->path, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
	       (errno == ENOENT || errno == ENOTDIR);
}

static void apply_one(struct batch_ctx *c, struct rentry *r, int pass)
{
	struct applier *a = c->a;
	struct index_entry *l = c->l;
	enum decide_verdict v;
	struct vv vv;
	bool have;
	int rc = 0;

	if (placeholder_gone_unchanged(a, r, l))
		return;
	have = local_get(a, r->path, r->path_len, l);
	if (have && l->deleted && l->type == INDEX_FILE &&
	    (r->deleted || memcmp(r->hash, l->hash, INDEX_HASH_LEN) != 0) &&
	    (vv_compare(&r->vv, &l->vv) == VV_DOMINATES ||
	     vv_compare(&r->vv, &l->vv) == VV_CONCURRENT) &&
	    !batch_has(c, l->hash)) {
		/* A placeholder the user moved (or deleted) here, whose version
		 * the peer no longer has (not moved elsewhere in this batch): its
		 * missing blocks can never come. Its file, under a new name, goes
		 * (docs/SYNC.md). */
		lazy_version_gone(a->c.lazy, r->path, l->hash);
	}
	v = decide_partial(have ? l : NULL, r, a->c.self_dev, a->peer_dev,
			   have && local_partial(a, l));
	/* the peer moved on from an older version here that we still fetch
	 * (sim bug 28): its commit would decide against our path as it is
	 * then, and could take what the peer replaced */
	fetch_supersede(a->c.fetch, r);
	if (v == DECIDE_MERGE_DELETED) {
		merged_vv(&l->vv, &r->vv, &vv);
		if (vv_compare(&vv, &l->vv) != VV_EQUAL)
			(void)store(a, r, &vv, NULL);
		return;
	}
	taken_vv(v, have ? l : NULL, &r->vv, &vv);
	switch (v) {
	case DECIDE_IGNORE:
		if (have)
			keep_losers_content(c, r, l);
		return;
	case DECIDE_MERGE_DELETED: /* done above */
		return;
	case DECIDE_KEEP_LOCAL:
		keep_local(a, r, l);
		return;
	case DECIDE_MERGE_ONLY:
		l->vv = vv;
		if (index_put_remote(a->c.idx, l) < 0)
			log_warn("cannot record %s: %s", LOG_Q(l->path), index_errmsg(a->c.idx));
		return;
	case DECIDE_LOCAL_LOSES:
		rc = move_to_conflict(a, l);
		if (rc < 0) {
			log_warn("cannot keep our version of %s as a conflict copy (%s); keeping "
				 "ours and not taking the peer's",
				 LOG_Q(r->path), strerror(-rc));
			return;
		}
		have = false; /* the path is free now */
		break;
	case DECIDE_ACCEPT:
		break;
	}
	if (r->deleted) {
		if (have && !l->deleted) {
			if (apply_delete(a, r, l, &vv, carry(c, r, false)) == -EAGAIN)
				(void)carry(c, r, true);
		} else {
			if (r->kind == SYNC_KIND_FILE)
				fetch_forget(a->c.fetch, r, -1);
			(void)store(a, r, &vv, NULL);
		}
		return;
	}
	free_ancestor(a, r);
	if (have && !l->deleted && l->type != (enum index_type)r->kind) {
		/* the kind changed: remove ours first (a directory only when empty) */
		const char *name;
		int dfd = disk_open_parent(a->c.disk, r->path, false, &name);
		if (dfd >= 0) {
			lazy_retire(a->c.lazy, r->path);
			rc = remove_path(dfd, name, l->type == INDEX_DIR,
					 pass == 4 && !carry(c, r, false));
			close(dfd);
		}
		if (rc < 0) {
			if (pass == 1 && rc == -ENOTEMPTY) {
				r->defer = true; /* tried again after the deletions */
				return;
			}
			if (pass == 4 && rc == -ENOTEMPTY && carry(c, r, true))
				return;
			if (rc == -ENOTEMPTY) {
				/* it holds what the peer never saw: the directory wins
				 * the name, the peer moves its version to a copy */
				log_notice("keeping the directory %s: it holds what the peer has "
					   "not seen; the peer's %s goes to a conflict copy there",
					   LOG_Q(r->path),
					   r->kind == SYNC_KIND_SYMLINK ? "symlink" : "file");
				return;
			}
			log_warn("cannot replace %s with the peer's version: %s", LOG_Q(r->path),
				 strerror(-rc));
			return;
		}
		lazy_gone(a->c.lazy, r->path);
		have = false;
	}
	switch (r->kind) {
	case SYNC_KIND_DIR:
		rc = apply_dir(a, r, &vv);
		break;
	case SYNC_KIND_SYMLINK:
		rc = apply_symlink(a, r, &vv);
		break;
	case SYNC_KIND_FILE: {
		if (have && !l->deleted && l->type == INDEX_FILE && l->size == r->size &&
		    memcmp(l->hash, r->hash, INDEX_HASH_LEN) == 0) {
			rc = apply_meta(a, r, &vv);
			break;
		}
		struct cand *k = cand_find(c, r->hash);
		if (k && move_local(c, r, k, &vv) == 0)
			break;
		struct rentry q = *r;
		q.vv = vv;
		rc = a->c.lazy_mode && q.size > 0
			     ? apply_place(a, &q)
			     : fetch_queue(a->c.fetch, &q,
					   have && !l->deleted && l->type != INDEX_DIR, a->now_ms);
		break;
	}
	}
	if (rc < 0 && rc != -ELOOP && rc != -EXDEV && rc != -ENOTDIR)
		log_warn("cannot apply the peer's change to %s: %s", LOG_Q(r->path), strerror(-rc));
}

/* Local files that the batch deletes (or replaces with a directory or a
 * symlink), by content hash. */
static void collect_cands(struct batch_ctx *c, struct rentry *b, size_t n)
{
	struct applier *a = c->a;

	c->cands = calloc(n ? n : 1, sizeof(*c->cands));
	if (!c->cands)
		return;
	for (size_t i = 0; i < n; i++) {
		struct rentry *r = &b[i];
		if (!r->path || (r->deleted ? r->kind != SYNC_KIND_FILE : r->kind == SYNC_KIND_FILE))
			continue;
		/* another kind: only over a file of ours (no rescan of anything
		 * else here: apply_one() decides when to) */
		if (!r->deleted && (index_get(a->c.idx, r->path, r->path_len, c->l) < 0 ||
				    c->l->deleted || c->l->type != INDEX_FILE))
			continue;
		/* rescanned: a file edited since it was scanned is no candidate (its
		 * edit now conflicts with the deletion) */
		if (!local_get(a, r->path, r->path_len, c->l) || c->l->deleted ||
		    c->l->type != INDEX_FILE || vv_compare(&r->vv, &c->l->vv) != VV_DOMINATES)
			continue;
		memcpy(c->cands[c->ncands].hash, c->l->hash, INDEX_HASH_LEN);
		c->cands[c->ncands].del = r;
		c->ncands++;
	}
	qsort(c->cands, c->ncands, sizeof(*c->cands), cmp_cand);
}

static bool used_cand(struct batch_ctx *c, const struct rentry *r)
{
	for (size_t i = 0; i < c->ncands; i++)
		if (c->cands[i].del == r)
			return c->cands[i].used;
	return false;
}

void apply_batch(struct applier *a, struct rentry **batch, size_t *nbatch, size_t *cap,
		 size_t *str, size_t max, bool final, uint64_t now_ms)
{
	struct batch_ctx c = {.a = a, .final = final, .max = max};
	struct rentry *b = *batch;
	size_t n = *nbatch, i;
	bool *early = NULL;

	a->now_ms = now_ms;
	if (n == 0)
		return;
	c.l = malloc(sizeof(*c.l));
	if (!c.l)
		goto out;
	/* the newest entry of each path only */
	qsort(b, n, sizeof(*b), cmp_path_seq);
	for (i = 0; i + 1 < n; i++)
		if (strcmp(b[i].path, b[i + 1].path) == 0)
			rentry_free(&b[i]);
	collect_cands(&c, b, n);
	c.b = b;
	c.n = n;
	if (index_begin(a->c.idx) < 0)
		log_warn("cannot start an index transaction: %s", index_errmsg(a->c.idx));
	/*
	 * -1: files whose content is in a file of ours the batch replaces with
	 * a directory or a symlink: the peer moved it and made another kind
	 * at its name. Moved before that kind takes the name (pass 0 or an
	 * earlier path of pass 1), which would remove the only copy here; in
	 * lazy mode the peer may hold only a placeholder of it (long-run seed
	 * 2002714).
	 */
	early = calloc(n, sizeof(*early));
	for (i = 0; early && i < n; i++) {
		struct cand *k;

		if (!b[i].path || b[i].deleted || b[i].kind != SYNC_KIND_FILE)
			continue;
		k = cand_find(&c, b[i].hash);
		if (k && !k->del->deleted) {
			early[i] = true;
			apply_one(&c, &b[i], 1);
		}
	}
	/* 0: directories, parents first (path order) */
	for (i = 0; i < n; i++)
		if (b[i].path && !b[i].deleted && b[i].kind == SYNC_KIND_DIR)
			apply_one(&c, &b[i], 0);
	/* 1: files and symlinks */
	for (i = 0; i < n; i++)
		if (b[i].path && !b[i].deleted && b[i].kind != SYNC_KIND_DIR && !(early && early[i]))
			apply_one(&c, &b[i], 1);
	/* 2: deleted files and symlinks (not moved) */
	for (i = 0; i < n; i++)
		if (b[i].path && b[i].deleted && b[i].kind != SYNC_KIND_DIR && !used_cand(&c, &b[i]))
			apply_one(&c, &b[i], 2);
	/* 3: deleted directories, children first */
	for (i = n; i-- > 0;)
		if (b[i].path && b[i].deleted && b[i].kind == SYNC_KIND_DIR)
			apply_one(&c, &b[i], 3);
	/* 4: what waited for a directory to empty */
	for (i = 0; i < n; i++)
		if (b[i].path && b[i].defer)
			apply_one(&c, &b[i], 4);
	if (index_commit(a->c.idx) < 0) {
		log_warn("cannot commit the index: %s", index_errmsg(a->c.idx));
		(void)index_rollback(a->c.idx);
	}
out:
	free(early);
	free(c.cands);
	free(c.l);
	/* what waits for the next batch moves to the front; the rest is freed */
	size_t kept = 0;
	*str = 0;
	for (i = 0; i < n; i++) {
		if (b[i].path && b[i].carry) {
			b[i].carry = b[i].defer = false;
			*str += rentry_bytes(&b[i]) - sizeof(b[i]);
			b[kept++] = b[i];
			continue;
		}
		rentry_free(&b[i]);
	}
	*nbatch = kept;
	if (kept == 0) {
		free(*batch);
		*batch = NULL;
		*cap = 0;
	} else {
		struct rentry *nb = realloc(*batch, kept * sizeof(*nb));
		if (nb) {
			*batch = nb;
			*cap = kept;
		}
	}
}

/*
 * Whether the directory f holds (opened when its download started) is
 * still the one at its path, opened fresh now (never following a
 * symlink), and still holds f's temp file. The user may have deleted it
 * (the temp file went with it) or moved it away, and made another
 * meanwhile: a rename through the held fd would then fail, or put the
 * file where its path is not. 0, or -EAGAIN: fetch it again.
 */
static int fetch_dir_current(struct applier *a, struct fetch *f)
{
	struct stat held, now, tmp;
	const char *name;
	int fd, rc = 0;

	fd = path_open_parent(a->c.disk->rootfd, f->r.path, false, &name);
	if (fd < 0)
		return -EAGAIN; /* the retry makes it, or refuses and logs why */
	if (fstat(fd, &now) < 0 || fstat(f->dirfd, &held) < 0 || now.st_dev != held.st_dev ||
	    now.st_ino != held.st_ino || fstat(f->tmpfd, &held) < 0 ||
	    fstatat(fd, f->tmpname, &tmp, AT_SYMLINK_NOFOLLOW) < 0 ||
	    tmp.st_dev != held.st_dev || tmp.st_ino != held.st_ino)
		rc = -EAGAIN;
	close(fd);
	return rc;
}

/*
 * A fetched file is complete in its temp file: check once more that the
 * path holds what we decided about (an edit may have happened meanwhile),
 * set its metadata and rename it into place.
 */
int apply_commit_fetch(struct applier *a, struct fetch *f, bool synced, uint64_t now_ms)
{
	struct index_entry *l;
	enum decide_verdict v = DECIDE_ACCEPT;
	struct stat st;
	struct vv vv = f->r.vv;
	int rc;
	bool have;

	a->now_ms = now_ms;
	rc = fetch_dir_current(a, f);
	if (rc < 0)
		return rc;
	l = malloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	have = local_get(a, f->r.path, f->r.path_len, l);
	if (have) {
		v = decide_partial(l, &f->r, a->c.self_dev, a->peer_dev, local_partial(a, l));
		if (v == DECIDE_LOCAL_LOSES) {
			rc = move_to_conflict(a, l);
			if (rc < 0)
				v = DECIDE_IGNORE; /* ours stays under its name; theirs is not taken */
		}
		if (v == DECIDE_KEEP_LOCAL)
			keep_local(a, &f->r, l);
		if (v != DECIDE_ACCEPT && v != DECIDE_LOCAL_LOSES) {
			rc = -ESTALE; /* ours stays; drop the download */
			goto out;
		}
	}
	taken_vv(v, have ? l : NULL, &f->r.vv, &vv);
	if (special_in_the_way(a, f->dirfd, f->name, &f->r, &vv)) {
		rc = -ESTALE; /* ours stays; drop the download */
		goto out;
	}
	/* synced: the caller set mode and mtime before its syncfs */
	struct timespec ts[2] = {{0, UTIME_OMIT}, disk_ns_to_ts(f->r.mtime_ns)};
	if (!synced && (fchmod(f->tmpfd, disk_peer_mode(a->c.disk, f->r.mode)) < 0 ||
			futimens(f->tmpfd, ts) < 0 ||
			fsync(f->tmpfd) < 0)) {
		rc = -errno;
		goto out;
	}
	if (renameat(f->dirfd, f->tmpname, f->dirfd, f->name) < 0) {
		rc = errno == ENOENT ? -EAGAIN : -errno; /* gone since the check */
		goto out;
	}
	if (fstat(f->tmpfd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	rc = store(a, &f->r, &vv, &st);
	if (rc == 0 && f->m) {
		/* keep the block list: we can serve this version without hashing it */
		size_t n = blocks_manifest_encoded_len(f->m);
		uint8_t *blob = malloc(n);
		if (blob && blocks_manifest_encode(f->m, blob, n) > 0 &&
		    index_manifest_put(a->c.idx, f->r.hash, blob, n) < 0)
			log_debug("cannot keep the block list of %s", LOG_Q(f->r.path));
		free(blob);
	}
	changed(a, f->r.path);
out:
	free(l);
	return rc;
}

void apply_set_peer(struct applier *a, const uint8_t dev[static VV_DEVICE_LEN])
{
	memcpy(a->peer_dev, dev, VV_DEVICE_LEN);
}

int applier_new(const struct apply_ctx *c, struct applier **ret)
{
	struct applier *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->c = *c;
	*ret = a;
	return 0;
}

void applier_free(struct applier *a)
{
	free(a);
}
