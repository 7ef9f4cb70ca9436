/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Applying a batch of the peer's index entries to the share: the version
 * decision, conflicts, and the disk operations (all beneath the root,
 * through path_open_parent, never following a symlink). See engine.h.
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

#include "log.h"
#include "sync/engine_int.h"
#include "sync/path.h"

_Static_assert(SYNC_FILE_MAX == BLOCKS_FILE_MAX,
	       "the decoder refuses exactly the files the block layer cannot hold");

enum verdict {
	V_IGNORE = 0,	/* ours is newer or the same */
	V_ACCEPT,	/* apply theirs */
	V_KEEP_LOCAL,	/* ours wins a conflict: make it dominate theirs */
	V_LOCAL_LOSES,	/* two edits, ours loses: move it to its conflict name, then accept */
	V_MERGE_ONLY,	/* identical outcome, ours keeps its metadata: merge the vectors */
};

static void quote(const char *s, char *out, size_t outlen)
{
	log_quote(s, strlen(s), out, outlen);
}

/*
 * Whether a directory on the way to rel is, in the index, a live symlink of
 * the peer's that was not made here (refuse_symlink): then nothing may be
 * created beneath its name.
 */
static bool under_refused_link(struct engine *e, const char *rel)
{
	struct index_entry *x = malloc(sizeof(*x));
	bool found = false;

	if (!x)
		return true; /* cannot tell: create nothing */
	for (const char *s = strchr(rel, '/'); s && !found; s = strchr(s + 1, '/'))
		found = index_get(e->idx, rel, (size_t)(s - rel), x) == 0 && !x->deleted &&
			x->type == INDEX_SYMLINK;
	free(x);
	return found;
}

int apply_open_parent(struct engine *e, const char *rel, bool create, const char **ret_name)
{
	char q[PATH_REL_MAX + 8];
	int fd = path_open_parent(e->rootfd, rel, false, ret_name);

	if (fd == -ENOENT && create) {
		if (under_refused_link(e, rel)) {
			quote(rel, q, sizeof(q));
			log_warn("refused the peer's path %s: a symlink is on the way (not made "
				 "here: it points outside the share)", q);
			e->refused++;
			return -ELOOP;
		}
		fd = path_open_parent(e->rootfd, rel, true, ret_name);
	}
	if (fd >= 0)
		return fd;
	if (fd == -ELOOP || fd == -EXDEV || fd == -ENOTDIR) {
		quote(rel, q, sizeof(q));
		log_warn("refused the peer's path %s: %s", q,
			 fd == -ELOOP	? "a symlink is on the way (never followed)"
			 : fd == -EXDEV ? "it leads outside the share"
					: "a file is on the way");
		e->refused++;
	}
	return fd;
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

/* Sets mode and mtime of dirfd/name (not following a symlink) and stats it. */
static int meta_set(int dirfd, const char *name, uint8_t kind, uint16_t mode, int64_t mtime_ns,
		    struct stat *ret)
{
	struct timespec ts[2] = {{0, UTIME_OMIT}, engine_ns_to_ts(mtime_ns)};
	char proc[64];
	int fd, r = 0;

	if (kind == SYNC_KIND_SYMLINK) {
		if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		return fstatat(dirfd, name, ret, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	}
	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, ret) < 0 || S_ISLNK(ret->st_mode)) {
		r = S_ISLNK(ret->st_mode) ? -ELOOP : -errno;
		goto out;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if ((ret->st_mode & 0777) != mode && chmod(proc, mode) < 0) {
		r = -errno;
		goto out;
	}
	if (kind != SYNC_KIND_DIR && utimensat(AT_FDCWD, proc, ts, 0) < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(fd, ret) < 0)
		r = -errno;
out:
	close(fd);
	return r;
}

static void changed(struct engine *e, const char *path)
{
	if (e->io.changed)
		e->io.changed(e->io.ud, path);
}

/* Stores r (with vector vv) as applied, with the identity of st (or none). */
static int store(struct engine *e, const struct rentry *r, const struct vv *vv,
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
	ret = index_put_remote(e->idx, x);
	free(x);
	if (ret < 0)
		log_warn("cannot record %s in the index: %s", LOG_Q(r->path), index_errmsg(e->idx));
	return ret;
}

static void merged_vv(const struct vv *a, const struct vv *b, struct vv *ret)
{
	*ret = *a;
	if (vv_merge(ret, b) < 0)
		*ret = *a;
}

/*
 * Decides what to do with r against our entry l (have: whether we know the
 * path at all). Both peers reach the same outcome for the same two versions.
 */
static enum verdict decide(struct engine *e, const struct rentry *r, const struct index_entry *l,
			   bool have)
{
	struct conflict_version va, vb;
	struct index_entry rx;
	enum conflict_action a;
	unsigned w;

	if (!have)
		return V_ACCEPT;
	switch (vv_compare(&r->vv, &l->vv)) {
	case VV_DOMINATES:
		return V_ACCEPT;
	case VV_EQUAL:
	case VV_DOMINATED:
		return V_IGNORE;
	case VV_CONCURRENT:
		break;
	}
	entry_to_version(l, e->self_dev, &va);
	memset(&rx, 0, offsetof(struct index_entry, target));
	rx.mtime_ns = r->mtime_ns;
	rx.size = r->size;
	memcpy(rx.hash, r->hash, INDEX_HASH_LEN);
	rx.deleted = r->deleted;
	entry_to_version(&rx, e->peer_dev, &vb);
	/* a directory has no content: two live directories are the same, and
	 * the newer metadata (its mode) wins, as for two identical files */
	if (r->kind == SYNC_KIND_DIR && l->type == INDEX_DIR && !r->deleted && !l->deleted) {
		memset(va.hash, 0, sizeof(va.hash));
		memset(vb.hash, 0, sizeof(vb.hash));
		va.size = vb.size = 0;
		if (conflict_decide(&va, &vb, &w) == CONFLICT_IDENTICAL && w == 1)
			return V_ACCEPT;
		return V_MERGE_ONLY;
	}
	if (r->kind != (uint8_t)l->type && !r->deleted && !l->deleted) {
		/* different kinds never compare as identical */
		va.hash[0] ^= 1;
	}
	a = conflict_decide(&va, &vb, &w);
	switch (a) {
	case CONFLICT_IDENTICAL:
		return w == 1 ? V_ACCEPT : V_MERGE_ONLY;
	case CONFLICT_EDIT_WINS:
		return w == 1 ? V_ACCEPT : V_KEEP_LOCAL;
	case CONFLICT_COPY:
		/*
		 * Ours wins: change nothing, and above all do not merge their
		 * vector into ours. The peer holds the losing edit and must still
		 * see our version as concurrent, so that it keeps its edit as the
		 * conflict copy before it takes ours.
		 */
		return w == 1 ? V_LOCAL_LOSES : V_IGNORE;
	}
	return V_IGNORE;
}

/* Our version wins: store it with a vector that dominates theirs. */
static void keep_local(struct engine *e, const struct rentry *r, struct index_entry *l)
{
	struct vv m;

	merged_vv(&l->vv, &r->vv, &m);
	l->vv = m;
	if (index_put_remote(e->idx, l) < 0 || index_put_local(e->idx, l) < 0)
		log_warn("cannot record %s in the index: %s", LOG_Q(l->path), index_errmsg(e->idx));
}

/* Moves our losing version of l to its conflict name (disk and index). */
static int move_to_conflict(struct engine *e, struct index_entry *l)
{
	struct conflict_version v;
	char cname[PATH_REL_MAX + 1], q[256];
	const char *name, *cn = cname;
	int dirfd, r;

	entry_to_version(l, e->self_dev, &v);
	dirfd = apply_open_parent(e, l->path, false, &name);
	if (dirfd < 0)
		return dirfd;
	/* the name is taken when this version lost before and its copy stays
	 * (maybe edited since): the next free one of conflict_name_nth */
	r = -EEXIST;
	for (unsigned n = 1; r == -EEXIST && n < 100; n++) {
		r = conflict_name_nth(l->path, l->path_len, &v, n, cname, sizeof(cname));
		if (r < 0)
			break;
		cn = strrchr(cname, '/');
		cn = cn ? cn + 1 : cname;
		r = renameat2(dirfd, name, dirfd, cn, RENAME_NOREPLACE) < 0 ? -errno : 0;
	}
	if (r == 0) {
		r = index_rename(e->idx, l->path, l->path_len, cname, (size_t)(cn - cname) + strlen(cn));
		if (r < 0)
			log_warn("cannot record the conflict copy %s: %s", LOG_Q(cname),
				 index_errmsg(e->idx));
		struct stat st;
		if (fstatat(dirfd, cn, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    index_set_stat(e->idx, cname, strlen(cname), st.st_dev, st.st_ino,
				   ts_ns(&st.st_ctim)) < 0)
			log_debug("cannot record the identity of %s", LOG_Q(cname));
		r = 0;
	}
	close(dirfd);
	quote(l->path, q, sizeof(q));
	if (r == 0) {
		e->conflicts++;
		log_notice("conflict: %s was changed on both sides; ours is kept as %s", q,
			   LOG_Q(cname));
	}
	return r;
}

/* Deletes what is at r->path on disk (r is a tombstone). may_wait: a
 * directory that is not empty is left as it is, and -EAGAIN returned (its
 * contents' deletions may still come), instead of kept as ours. */
static int apply_delete(struct engine *e, const struct rentry *r, struct index_entry *l,
			const struct vv *vv, bool may_wait)
{
	const char *name;
	int dirfd, rc;

	dirfd = apply_open_parent(e, r->path, false, &name);
	if (dirfd < 0 && dirfd != -ENOENT)
		return dirfd;
	rc = 0;
	if (dirfd >= 0) {
		lazy_retire(e, r->path);
		rc = unlinkat(dirfd, name, l->type == INDEX_DIR ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
		close(dirfd);
	}
	if ((rc == -ENOTEMPTY || rc == -EEXIST) && may_wait)
		return -EAGAIN;
	if (rc == -ENOTEMPTY || rc == -EEXIST) {
		/* something of ours is still in there: the directory stays */
		keep_local(e, r, l);
		return 0;
	}
	if (rc < 0 && rc != -ENOENT) {
		log_warn("cannot delete %s as the peer did: %s", LOG_Q(r->path), strerror(-rc));
		return rc;
	}
	(void)store(e, r, vv, NULL);
	lazy_gone(e, r->path);
	changed(e, r->path);
	return 0;
}

static int apply_dir(struct engine *e, const struct rentry *r, const struct vv *vv)
{
	struct stat st;
	const char *name;
	int dirfd, rc;

	dirfd = apply_open_parent(e, r->path, true, &name);
	if (dirfd < 0)
		return dirfd;
	rc = mkdirat(dirfd, name, 0700) < 0 ? -errno : 0;
	if (rc == -EEXIST) {
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
			rc = -EEXIST; /* a file or symlink of ours is there */
		else
			rc = 0;
	}
	if (rc == 0)
		rc = meta_set(dirfd, name, SYNC_KIND_DIR, engine_peer_mode(e, r->mode), 0, &st);
	close(dirfd);
	if (rc < 0)
		return rc;
	/* Identity unknown: the scanner's next walk of the parent records it and
	 * descends once, which is when it starts watching the new directory
	 * (otherwise local edits inside it go unseen until a full rescan). */
	st.st_ino = 0;
	rc = store(e, r, vv, &st);
	changed(e, r->path);
	return rc;
}

/*
 * A symlink of the peer's that points outside the share is not made here
 * (unless --symlinks=all): whatever we had under its name goes, as the
 * peer's newer version says, and the entry is recorded with no identity,
 * so the scanner does not read its absence as a deletion (scan_off_disk).
 */
static int refuse_symlink(struct engine *e, const struct rentry *r, const struct vv *vv,
			  int dirfd, const char *name)
{
	struct stat st;
	int rc = 0;

	log_warn("not making the peer's symlink %s -> %s: it points outside the share "
		 "('tandem up --symlinks=all' makes such links)",
		 LOG_Q(r->path), LOG_Q(r->target));
	e->refused++;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode))
			rc = -EISDIR; /* as renaming a link over it would fail */
		else if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			rc = -errno;
	}
	close(dirfd);
	if (rc < 0)
		return rc;
	rc = store(e, r, vv, NULL);
	changed(e, r->path);
	return rc;
}

static int apply_symlink(struct engine *e, const struct rentry *r, const struct vv *vv)
{
	char tmp[64];
	struct stat st;
	const char *name;
	int dirfd, rc;

	dirfd = apply_open_parent(e, r->path, true, &name);
	if (dirfd < 0)
		return dirfd;
	if (!e->opts.symlinks_all && r->target &&
	    path_link_escapes(r->path, r->path_len, r->target, r->target_len))
		return refuse_symlink(e, r, vv, dirfd, name);
	snprintf(tmp, sizeof(tmp), SCAN_TMP_PREFIX "%016" PRIx64 ".lnk", r->seq);
	(void)unlinkat(dirfd, tmp, 0);
	rc = symlinkat(r->target ? r->target : "", dirfd, tmp) < 0 ? -errno : 0;
	if (rc == 0 && renameat(dirfd, tmp, dirfd, name) < 0) {
		rc = -errno;
		(void)unlinkat(dirfd, tmp, 0);
	}
	if (rc == 0)
		rc = meta_set(dirfd, name, SYNC_KIND_SYMLINK, r->mode, r->mtime_ns, &st);
	close(dirfd);
	if (rc < 0)
		return rc;
	rc = store(e, r, vv, &st);
	changed(e, r->path);
	return rc;
}

/* Metadata only: the content is already ours. */
static int apply_meta(struct engine *e, const struct rentry *r, const struct vv *vv)
{
	struct stat st;
	const char *name;
	int dirfd, rc;

	dirfd = apply_open_parent(e, r->path, false, &name);
	if (dirfd < 0)
		return dirfd;
	rc = meta_set(dirfd, name, r->kind, engine_peer_mode(e, r->mode), r->mtime_ns, &st);
	close(dirfd);
	if (rc < 0)
		return rc;
	rc = store(e, r, vv, &st);
	changed(e, r->path);
	return rc;
}

/*
 * Lazy mode: puts a sparse file of r's size, mode and mtime at r->path
 * (temp file and rename, like a fetch), records r as applied with its stat
 * identity, and tracks it as a placeholder (lazy.c fetches its blocks).
 */
int apply_place(struct engine *e, const struct rentry *r)
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
	dirfd = apply_open_parent(e, r->path, true, &name);
	if (dirfd < 0)
		return dirfd;
	snprintf(tmp, sizeof(tmp), SCAN_TMP_PREFIX "%016" PRIx64 ".lazy", r->seq);
	(void)unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	lazy_retire(e, r->path);
	if (ftruncate(fd, (off_t)r->size) < 0 || fchmod(fd, engine_peer_mode(e, r->mode)) < 0 ||
	    futimens(fd, ts) < 0 ||
	    renameat(dirfd, tmp, dirfd, name) < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		(void)unlinkat(dirfd, tmp, 0);
		goto out;
	}
	rc = store(e, r, &r->vv, &st);
	if (rc == 0)
		rc = lazy_track(e, r->path, r->path_len, r->hash, r->size, (uint64_t)st.st_ino);
	changed(e, r->path);
out:
	if (fd >= 0)
		close(fd);
	close(dirfd);
	return rc;
}

/* ---- the batch ---- */

struct cand { /* a local file the batch deletes: its content can move */
	uint8_t hash[INDEX_HASH_LEN];
	struct rentry *del;
	bool used;
};

struct batch_ctx {
	struct engine *e;
	struct cand *cands;
	size_t ncands;
	struct index_entry *l; /* scratch */
	bool final;	       /* the peer's INDEX_DONE came */
	size_t carry_bytes;    /* of the entries kept for the next batch */
};

static size_t rentry_bytes(const struct rentry *r)
{
	return sizeof(*r) + engine_rentry_str_bytes(r->path_len, r->target ? r->target_len : 0);
}

/*
 * Before the peer's INDEX_DONE, r waits for entries still to come (what
 * empties a directory) and is tried again with the next batch, while what
 * is kept stays within half of ENGINE_BATCH_BYTES. Whether r may be kept;
 * with keep, it is.
 */
static bool carry(struct batch_ctx *c, struct rentry *r, bool keep)
{
	size_t n = rentry_bytes(r);

	if (c->final || c->carry_bytes + n > ENGINE_BATCH_BYTES / 2)
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
static bool local_get(struct engine *e, const char *path, size_t len, struct index_entry *l)
{
	char err[SCAN_ERR_LEN];

	if (scan_path_now(e->scan, path, len, err) < 0)
		log_debug("cannot rescan %s: %s", LOG_Q(path), err);
	return index_get(e->idx, path, len, l) == 0;
}

/* Moves a local file the batch deletes to r's path instead of fetching it. */
static int move_local(struct batch_ctx *c, const struct rentry *r, struct cand *k,
		      const struct vv *vv)
{
	struct engine *e = c->e;
	const char *sname, *dname;
	struct stat st;
	int sfd, dfd, rc;

	sfd = apply_open_parent(e, k->del->path, false, &sname);
	if (sfd < 0)
		return sfd;
	dfd = apply_open_parent(e, r->path, true, &dname);
	if (dfd < 0) {
		close(sfd);
		return dfd;
	}
	lazy_retire(e, r->path);
	rc = renameat(sfd, sname, dfd, dname) < 0 ? -errno : 0;
	if (rc == 0 && lazy_moved(e, k->del->path, k->del->path_len, r->path, r->path_len) < 0) {
		/* a placeholder without its mark would read as zeros: fetch instead */
		log_warn("cannot move the lazy-content record of %s to %s: %s", LOG_Q(k->del->path),
			 LOG_Q(r->path), index_errmsg(e->idx));
		(void)renameat(dfd, dname, sfd, sname);
		rc = -EIO;
	}
	if (rc == 0)
		rc = meta_set(dfd, dname, SYNC_KIND_FILE, engine_peer_mode(e, r->mode), r->mtime_ns,
			      &st);
	close(sfd);
	close(dfd);
	if (rc < 0)
		return rc;
	k->used = true;
	(void)store(e, r, vv, &st);
	(void)store(e, k->del, &k->del->vv, NULL);
	changed(e, k->del->path);
	changed(e, r->path);
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

static void apply_one(struct batch_ctx *c, struct rentry *r, int pass)
{
	struct engine *e = c->e;
	struct index_entry *l = c->l;
	enum verdict v;
	struct vv vv;
	bool have;
	int rc = 0;

	have = local_get(e, r->path, r->path_len, l);
	if (have && l->deleted && r->deleted) {
		merged_vv(&l->vv, &r->vv, &vv);
		if (vv_compare(&vv, &l->vv) != VV_EQUAL)
			(void)store(e, r, &vv, NULL);
		return;
	}
	v = decide(e, r, l, have);
	if (have)
		merged_vv(&l->vv, &r->vv, &vv);
	else
		vv = r->vv;
	switch (v) {
	case V_IGNORE:
		return;
	case V_KEEP_LOCAL:
		keep_local(e, r, l);
		return;
	case V_MERGE_ONLY:
		l->vv = vv;
		if (index_put_remote(e->idx, l) < 0)
			log_warn("cannot record %s: %s", LOG_Q(l->path), index_errmsg(e->idx));
		return;
	case V_LOCAL_LOSES:
		rc = move_to_conflict(e, l);
		if (rc < 0) {
			log_warn("cannot keep our version of %s as a conflict copy (%s); keeping "
				 "ours and not taking the peer's",
				 LOG_Q(r->path), strerror(-rc));
			return;
		}
		have = false; /* the path is free now */
		break;
	case V_ACCEPT:
		break;
	}
	if (r->deleted) {
		if (have && !l->deleted) {
			if (apply_delete(e, r, l, &vv, carry(c, r, false)) == -EAGAIN)
				(void)carry(c, r, true);
		} else
			(void)store(e, r, &vv, NULL);
		return;
	}
	if (have && !l->deleted && l->type != (enum index_type)r->kind) {
		/* the kind changed: remove ours first (a directory only when empty) */
		const char *name;
		int dfd = apply_open_parent(e, r->path, false, &name);
		if (dfd >= 0) {
			lazy_retire(e, r->path);
			rc = unlinkat(dfd, name, l->type == INDEX_DIR ? AT_REMOVEDIR : 0) < 0 ? -errno
											       : 0;
			close(dfd);
		}
		if (rc < 0) {
			if (pass == 1 && rc == -ENOTEMPTY) {
				r->defer = true; /* tried again after the deletions */
				return;
			}
			if (pass == 4 && rc == -ENOTEMPTY && carry(c, r, true))
				return;
			log_warn("cannot replace %s with the peer's version: %s", LOG_Q(r->path),
				 strerror(-rc));
			return;
		}
		lazy_gone(e, r->path);
		have = false;
	}
	switch (r->kind) {
	case SYNC_KIND_DIR:
		rc = apply_dir(e, r, &vv);
		break;
	case SYNC_KIND_SYMLINK:
		rc = apply_symlink(e, r, &vv);
		break;
	case SYNC_KIND_FILE: {
		if (have && !l->deleted && l->type == INDEX_FILE && l->size == r->size &&
		    memcmp(l->hash, r->hash, INDEX_HASH_LEN) == 0) {
			rc = apply_meta(e, r, &vv);
			break;
		}
		struct cand *k = cand_find(c, r->hash);
		if (k && move_local(c, r, k, &vv) == 0)
			break;
		struct rentry q = *r;
		q.vv = vv;
		rc = e->opts.lazy && q.size > 0
			     ? apply_place(e, &q)
			     : fetch_queue(e, &q, have && !l->deleted && l->type != INDEX_DIR);
		break;
	}
	}
	if (rc < 0 && rc != -ELOOP && rc != -EXDEV && rc != -ENOTDIR)
		log_warn("cannot apply the peer's change to %s: %s", LOG_Q(r->path), strerror(-rc));
}

/* Local files that the batch deletes, by content hash. */
static void collect_cands(struct batch_ctx *c, struct rentry *b, size_t n)
{
	struct engine *e = c->e;

	c->cands = calloc(n ? n : 1, sizeof(*c->cands));
	if (!c->cands)
		return;
	for (size_t i = 0; i < n; i++) {
		struct rentry *r = &b[i];
		if (!r->path || !r->deleted || r->kind != SYNC_KIND_FILE)
			continue;
		/* rescanned: a file edited since it was scanned is no candidate (its
		 * edit now conflicts with the deletion) */
		if (!local_get(e, r->path, r->path_len, c->l) || c->l->deleted ||
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

void apply_batch(struct engine *e, bool final)
{
	struct batch_ctx c = {.e = e, .final = final};
	struct rentry *b = e->batch;
	size_t n = e->nbatch, i;

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
	if (index_begin(e->idx) < 0)
		log_warn("cannot start an index transaction: %s", index_errmsg(e->idx));
	/* 0: directories, parents first (path order) */
	for (i = 0; i < n; i++)
		if (b[i].path && !b[i].deleted && b[i].kind == SYNC_KIND_DIR)
			apply_one(&c, &b[i], 0);
	/* 1: files and symlinks */
	for (i = 0; i < n; i++)
		if (b[i].path && !b[i].deleted && b[i].kind != SYNC_KIND_DIR)
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
	if (index_commit(e->idx) < 0) {
		log_warn("cannot commit the index: %s", index_errmsg(e->idx));
		(void)index_rollback(e->idx);
	}
out:
	free(c.cands);
	free(c.l);
	/* what waits for the next batch moves to the front; the rest is freed */
	size_t kept = 0;
	e->batch_str = 0;
	for (i = 0; i < n; i++) {
		if (b[i].path && b[i].carry) {
			b[i].carry = b[i].defer = false;
			e->batch_str += rentry_bytes(&b[i]) - sizeof(b[i]);
			b[kept++] = b[i];
			continue;
		}
		rentry_free(&b[i]);
	}
	e->nbatch = kept;
	if (kept == 0) {
		free(e->batch);
		e->batch = NULL;
		e->batch_cap = 0;
	} else {
		struct rentry *nb = realloc(e->batch, kept * sizeof(*nb));
		if (nb) {
			e->batch = nb;
			e->batch_cap = kept;
		}
	}
}

/*
 * A fetched file is complete in its temp file: check once more that the
 * path holds what we decided about (an edit may have happened meanwhile),
 * set its metadata and rename it into place.
 */
int apply_commit_fetch(struct engine *e, struct fetch *f, bool synced)
{
	struct index_entry *l = malloc(sizeof(*l));
	struct stat st;
	struct vv vv = f->r.vv;
	int rc = 0;
	bool have;

	if (!l)
		return -ENOMEM;
	have = local_get(e, f->r.path, f->r.path_len, l);
	if (have) {
		enum verdict v = decide(e, &f->r, l, true);
		if (v == V_LOCAL_LOSES) {
			rc = move_to_conflict(e, l);
			if (rc < 0)
				v = V_IGNORE; /* ours stays under its name; theirs is not taken */
		}
		if (v == V_KEEP_LOCAL)
			keep_local(e, &f->r, l);
		if (v != V_ACCEPT && v != V_LOCAL_LOSES) {
			rc = -ESTALE; /* ours stays; drop the download */
			goto out;
		}
	}
	if (have)
		merged_vv(&l->vv, &f->r.vv, &vv);
	/* synced: the caller set mode and mtime before its syncfs */
	struct timespec ts[2] = {{0, UTIME_OMIT}, engine_ns_to_ts(f->r.mtime_ns)};
	if (!synced && (fchmod(f->tmpfd, engine_peer_mode(e, f->r.mode)) < 0 ||
			futimens(f->tmpfd, ts) < 0 ||
			fsync(f->tmpfd) < 0)) {
		rc = -errno;
		goto out;
	}
	if (renameat(f->dirfd, f->tmpname, f->dirfd, f->name) < 0) {
		rc = -errno;
		goto out;
	}
	if (fstat(f->tmpfd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	rc = store(e, &f->r, &vv, &st);
	if (rc == 0 && f->m) {
		/* keep the block list: we can serve this version without hashing it */
		size_t n = blocks_manifest_encoded_len(f->m);
		uint8_t *blob = malloc(n);
		if (blob && blocks_manifest_encode(f->m, blob, n) > 0 &&
		    index_manifest_put(e->idx, f->r.hash, blob, n) < 0)
			log_debug("cannot keep the block list of %s", LOG_Q(f->r.path));
		free(blob);
	}
	changed(e, f->r.path);
out:
	free(l);
	return rc;
}
