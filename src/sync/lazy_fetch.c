/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Lazy mode: fetching the blocks lazy_ensure() asked for, writing them
 * into the placeholders in place, and the cache limit. The design note is
 * in lazy.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/log.h"
#include "sync/lazy.h"
#include "sync/lazy_fetch.h"
#include "sync/lazy_int.h"

/* ---- fetching ---- */

static const struct xfer_ops lazy_xfer_ops;
static void evict(struct lazy_fetcher *lf);

static void file_failed(struct lazy_fetcher *lf, struct lazy_file *z)
{
	xfer_drop_item(lf->c.xfer, z, NULL, NULL);
	memset(z->want, 0, lazy_bits_len(z->size));
	memset(z->asked, 0, lazy_bits_len(z->size));
	z->inflight = 0;
	z->manifest_req = 0;
	lazy_persist(lf->c.lz, z);
	lazy_deactivate(lf->c.lz, z);
	lazy_wake(lf->c.lz, true, z->path);
}

static bool manifest_load(struct lazy_fetcher *lf, struct lazy_file *z)
{
	struct blocks_manifest *m = NULL;
	uint8_t *blob = NULL;
	size_t len = 0;

	if (index_manifest_get(lf->c.idx, z->hash, &blob, &len) < 0)
		return false;
	if (blocks_manifest_decode(blob, len, &m) == 0 && blocks_manifest_check(m, z->hash) == 0 &&
	    m->size == z->size)
		z->m = m;
	else
		blocks_manifest_free(m);
	free(blob);
	return z->m != NULL;
}

static bool send_req(struct lazy_fetcher *lf, struct lazy_file *z, struct xfer_req *q,
		     bool manifest, uint64_t i)
{
	struct sync_msg m;
	int n;

	memset(&m, 0, sizeof(m));
	if (manifest) {
		q->manifest = true;
		m.type = SYNC_MSG_MANIFEST_REQUEST;
		m.manifest_request.req_id = q->id;
		m.manifest_request.path = z->path;
		m.manifest_request.path_len = z->path_len;
		memcpy(m.manifest_request.hash, z->hash, SYNC_HASH_LEN);
	} else {
		q->block = (uint32_t)i; /* i < z->nblocks <= BLOCKS_COUNT_MAX */
		q->len = blocks_len(z->size, i);
		m.type = SYNC_MSG_BLOCK_REQUEST;
		m.block_request.req_id = q->id;
		m.block_request.path = z->path;
		m.block_request.path_len = z->path_len;
		memcpy(m.block_request.hash, z->hash, SYNC_HASH_LEN);
		m.block_request.index = q->block;
		m.block_request.offset = i * BLOCKS_SIZE;
		m.block_request.len = q->len;
	}
	n = msg_encode(&m, lf->c.buf, lf->c.buf_len);
	if (n < 0 || link_send(&lf->c.link, lf->c.buf, (size_t)n) < 0) {
		xfer_req_done(lf->c.xfer, q);
		return false;
	}
	xfer_req_sent(lf->c.xfer, q);
	return true;
}

void lazy_pump(struct lazy_fetcher *lf, uint64_t now_ms)
{
	lf->now_ms = now_ms;
	struct lazy_file *z, *next;

	for (z = lazy_active(lf->c.lz); z; z = next) {
		next = z->anext;
		if (z->nblocks > 1 && !z->m && !manifest_load(lf, z)) {
			if (z->manifest_req)
				continue;
			if (link_room(&lf->c.link) < 8192)
				return;
			struct xfer_req *q = xfer_req_new(lf->c.xfer, &lazy_xfer_ops, lf, z);
			if (!q || !send_req(lf, z, q, true, 0))
				return;
			z->manifest_req = q->id;
			continue;
		}
		for (uint64_t i = 0; i < z->nblocks; i++) {
			if (!lazy_bit_get(z->want, i) || lazy_bit_get(z->asked, i))
				continue;
			if (lazy_bit_get(z->have, i)) {
				lazy_bit_clear(z->want, i);
				continue;
			}
			uint32_t len = blocks_len(z->size, i);
			if (!xfer_window_fits(lf->c.xfer, len) || link_room(&lf->c.link) < 8192)
				return;
			struct xfer_req *q = xfer_req_new(lf->c.xfer, &lazy_xfer_ops, lf, z);
			if (!q || !send_req(lf, z, q, false, i))
				return;
			lazy_bit_set(z->asked, i);
			z->inflight++;
		}
	}
}

static void on_manifest(void *owner, struct xfer_req *q, const struct sync_manifest *m)
{
	struct lazy_fetcher *lf = owner;
	struct lazy_file *z = q->item;

	if (memcmp(m->hash, z->hash, SYNC_HASH_LEN) != 0 || m->size != z->size ||
	    (!z->m && m->first != 0)) {
		xfer_req_done(lf->c.xfer, q);
		file_failed(lf, z);
		return;
	}
	if (!z->m && blocks_manifest_new(m->size, m->block_size, &z->m) < 0) {
		xfer_req_done(lf->c.xfer, q);
		file_failed(lf, z);
		return;
	}
	if (blocks_manifest_add(z->m, m->first, m->n, m->hashes) < 0) {
		xfer_req_done(lf->c.xfer, q);
		link_fail(&lf->c.link, "MANIFEST chunks out of order for request %u", m->req_id);
		return;
	}
	if (z->m->filled < z->m->count)
		return;
	xfer_req_done(lf->c.xfer, q);
	z->manifest_req = 0;
	if (blocks_manifest_check(z->m, z->hash) < 0) {
		log_warn("the peer's block list of %s does not match its file hash; not taken",
			 LOG_Q(z->path));
		lf->refused++;
		blocks_manifest_free(z->m);
		z->m = NULL;
		file_failed(lf, z);
		return;
	}
	size_t n = blocks_manifest_encoded_len(z->m);
	uint8_t *blob = malloc(n);
	if (blob && blocks_manifest_encode(z->m, blob, n) > 0 &&
	    index_manifest_put(lf->c.idx, z->hash, blob, n) < 0)
		log_debug("cannot keep the block list of %s", LOG_Q(z->path));
	free(blob);
	lf->c.pump(lf->c.ud);
}

/*
 * The placeholder's mtime from before we wrote to it back (the user's, if
 * a touch came after the scanner looked: the scanner still sees it), and
 * its new identity in the index.
 */
static int restore_identity(struct lazy_fetcher *lf, struct lazy_file *z, int fd,
			    const struct timespec *mtime)
{
	struct timespec ts[2] = {{0, UTIME_OMIT}, *mtime};
	struct stat st;

	if (futimens(fd, ts) < 0 || fstat(fd, &st) < 0)
		return -errno;
	return index_set_stat(lf->c.idx, z->path, z->path_len, (uint64_t)st.st_dev,
			      (uint64_t)st.st_ino,
			      (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec);
}


/* z has nothing in flight: persist, maybe complete, maybe evict. */
static void burst_end(struct lazy_fetcher *lf, struct lazy_file *z)
{
	for (uint64_t i = 0; i < z->nblocks; i++)
		if (lazy_bit_get(z->want, i) && !lazy_bit_get(z->have, i))
			return; /* more to ask for */
	/* A finished file is marked at once; an unfinished one with the others
	 * on the timer (one syncfs for all, not an fdatasync per burst: those
	 * held the loop for a second per GiB read). A block on disk but not
	 * marked is only fetched again. */
	if (z->nhave == z->nblocks)
		lazy_persist(lf->c.lz, z);
	else if (z->dirty)
		lazy_persist_later(lf->c.lz);
	if (z->nhave == z->nblocks)
		log_debug("sync: %s is complete", LOG_Q(z->path));
	lazy_deactivate(lf->c.lz, z);
	if (lf->c.cache_max && lazy_bytes(lf->c.lz) > lf->c.cache_max)
		evict(lf);
}

static void on_block(void *owner, struct xfer_req *q, const struct sync_block_data *b)
{
	struct lazy_fetcher *lf = owner;
	struct lazy_file *z = q->item;
	uint32_t i = q->block;
	uint8_t h[BLOCKS_HASH_LEN];
	int r = 0;

	if (b->len != q->len || b->offset != (uint64_t)i * BLOCKS_SIZE) {
		xfer_req_done(lf->c.xfer, q);
		link_fail(&lf->c.link, "BLOCK_DATA for request %u is not what was asked",
				      b->req_id);
		return;
	}
	xfer_req_done(lf->c.xfer, q);
	z->inflight--;
	lazy_bit_clear(z->asked, i);
	lf->bytes_received += b->len;
	if (z->m) {
		r = blocks_manifest_verify(z->m, i, b->data, b->len);
	} else if (blocks_hash_buf(b->data, b->len, NULL, NULL, h) < 0 ||
		   sodium_memcmp(h, z->hash, BLOCKS_HASH_LEN) != 0) {
		r = -EBADMSG;
	}
	if (r != 0) {
		log_warn("block %u of %s from the peer does not verify; not written", i,
			 LOG_Q(z->path));
		file_failed(lf, z);
		return;
	}
	if (z->fd < 0)
		return; /* deactivated meanwhile */
	struct stat before;
	if (fstat(z->fd, &before) < 0) {
		log_warn("cannot stat %s: %s", LOG_Q(z->path), strerror(errno));
		file_failed(lf, z);
		return;
	}
	size_t done = 0;
	while (done < b->len) {
		ssize_t n = pwrite(z->fd, b->data + done, b->len - done, (off_t)(b->offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : EIO;
			if (err == ENOSPC || err == EDQUOT) {
				fetch_nospace_set(lf->c.fetch, z->path, -err, true);
			} else {
				log_warn("cannot write %s: %s", LOG_Q(z->path), strerror(err));
			}
			/* a failed write can still have touched the placeholder
			 * (its mtime, part of the block): put its identity back
			 * as after a good write, or the scanner takes the holes
			 * for an edit of ours and sends zeros to the peer */
			r = restore_identity(lf, z, z->fd, &before.st_mtim);
			if (r < 0)
				log_warn("cannot restore the placeholder %s: %s", LOG_Q(z->path),
					 strerror(-r));
			file_failed(lf, z);
			return;
		}
		done += (size_t)n;
	}
	fetch_nospace_lazy_clear(lf->c.fetch);
	r = restore_identity(lf, z, z->fd, &before.st_mtim);
	if (r < 0)
		log_warn("cannot restore the placeholder %s: %s", LOG_Q(z->path), strerror(-r));
	lazy_mark(lf->c.lz, z, i);
	lazy_bit_clear(z->want, i);
	z->dirty = true;
	lazy_wake(lf->c.lz, false, NULL);
	if (z->inflight == 0)
		burst_end(lf, z);
}

static void on_error(void *owner, struct xfer_req *q, const struct sync_block_error *b)
{
	struct lazy_fetcher *lf = owner;
	struct lazy_file *z = q->item;
	char txt[2 * SYNC_ERROR_TEXT_MAX + 8];

	xfer_req_done(lf->c.xfer, q);
	log_quote(b->text, b->text_len, txt, sizeof(txt));
	log_info("the peer cannot send %s now (code %u: %s)", LOG_Q(z->path), b->code, txt);
	file_failed(lf, z);
}

static const struct xfer_ops lazy_xfer_ops = {
	.on_manifest = on_manifest,
	.on_block = on_block,
	.on_error = on_error,
};

/* ---- the cache limit ---- */

/* Whether nobody has the file open for writing (a read lease needs that). */
static bool no_writers(int rdfd)
{
	if (fcntl(rdfd, F_SETLEASE, F_RDLCK) < 0)
		return errno != EAGAIN && errno != EBUSY; /* no leases here: go on */
	(void)fcntl(rdfd, F_SETLEASE, F_UNLCK);
	return true;
}

/* Empties z on disk if it is clean. Returns 0 or -errno (left as it is). */
static int evict_one(struct lazy_fetcher *lf, struct lazy_file *z)
{
	struct index_entry *x = malloc(sizeof(*x));
	const char *name;
	struct stat st;
	int dirfd, rfd = -1, wfd = -1, r = -EBUSY;

	if (!x)
		return -ENOMEM;
	if (index_get(lf->c.idx, z->path, z->path_len, x) < 0 || x->deleted ||
	    x->type != INDEX_FILE || memcmp(x->hash, z->hash, SYNC_HASH_LEN) != 0) {
		free(x);
		lazy_forget(lf->c.lz, z); /* not ours any more */
		return -ESTALE;
	}
	dirfd = disk_open_parent(lf->c.disk, z->path, false, &name);
	if (dirfd < 0)
		goto out;
	rfd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (rfd < 0 || fstat(rfd, &st) < 0 || (uint64_t)st.st_ino != x->ino ||
	    (uint64_t)st.st_size != x->size ||
	    (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != x->mtime_ns ||
	    (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec != x->ctime_ns) {
		log_debug("sync: not evicting %s: changed since it was indexed", LOG_Q(z->path));
		goto out; /* the scanner will see it */
	}
	if (!no_writers(rfd)) {
		log_debug("sync: not evicting %s: open for writing", LOG_Q(z->path));
		goto out;
	}
	wfd = openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (wfd < 0) {
		r = -errno;
		goto out;
	}
	/* Unmark first, in memory (an ensure from now on fetches) and in the
	 * index, then punch: never a mark on a hole, not even for a moment. */
	lazy_unmark_all(lf->c.lz, z);
	if (index_lazy_put(lf->c.idx, z->path, z->path_len, z->hash, z->size, z->have,
			   lazy_bits_len(z->size)) < 0) {
		log_debug("cannot record the blocks of %s: %s", LOG_Q(z->path),
			  index_errmsg(lf->c.idx));
		z->dirty = true; /* the data stays; the row is written later */
		goto out;
	}
	z->dirty = false;
	if (fallocate(wfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)z->size) < 0) {
		r = -errno; /* unmarked data: only fetched again */
		goto out;
	}
	r = restore_identity(lf, z, wfd, &st.st_mtim); /* == the index's, checked above */
	log_debug("sync: evicted %s from the cache", LOG_Q(z->path));
out:
	if (rfd >= 0)
		close(rfd);
	if (wfd >= 0)
		close(wfd);
	if (dirfd >= 0)
		close(dirfd);
	free(x);
	return r;
}

struct cand {
	struct lazy_file *z;
	uint64_t used;
};

static int cmp_used(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	return x->used < y->used ? -1 : x->used > y->used;
}

struct cands {
	struct lazy_fetcher *lf;
	struct cand *c;
	size_t n, cap;
};

/* A file that may be emptied: present blocks, not in use, not read lately. */
static int add_cand(struct lazy_file *z, void *ud)
{
	struct cands *k = ud;
	uint64_t used = lazy_used(k->lf->c.lz, z); /* FUSE threads write it */

	if (z->active || z->nhave == 0 || k->lf->now_ms - used < k->lf->c.evict_age_ms)
		return 0;
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;
		struct cand *nc = realloc(k->c, cap * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		k->c = nc;
		k->cap = cap;
	}
	k->c[k->n].z = z;
	k->c[k->n++].used = used;
	return 0;
}

static void evict(struct lazy_fetcher *lf)
{
	uint64_t now = lf->now_ms;
	struct cands k = {.lf = lf};
	struct cand *c;
	size_t n;

	if (lazy_foreach(lf->c.lz, add_cand, &k) < 0)
		goto out;
	c = k.c;
	n = k.n;
	if (n > 1) /* c is NULL when nothing qualified: qsort wants a pointer */
		qsort(c, n, sizeof(*c), cmp_used);
	for (size_t i = 0; i < n && lazy_bytes(lf->c.lz) > lf->c.cache_max; i++) {
		uint64_t before = lazy_bytes(lf->c.lz);
		if (evict_one(lf, c[i].z) == 0)
			log_debug("sync: cache %" PRIu64 " -> %" PRIu64 " bytes", before,
				  lazy_bytes(lf->c.lz));
	}
out:
	free(k.c);
	/* Still over: a file read in the last seconds, being written, or not
	 * yet rescanned after its last block was skipped. Try again soon, not
	 * only when the next fetch ends (there may be none). */
	lf->evict_due_ms = lazy_bytes(lf->c.lz) > lf->c.cache_max ? now + LAZY_EVICT_RETRY_MS : 0;
}

/* ---- a placeholder nobody can fill ---- */

int lazy_fetch_drop(struct lazy_fetcher *lf, const char *path, const uint8_t *hash)
{
	struct lazy_file *z = lazy_find(lf->c.lz, path);
	struct index_entry *x;
	const char *name;
	struct stat st;
	int dirfd = -1, rfd = -1, r = 0;

	if (!z || z->nhave == z->nblocks || memcmp(z->hash, hash, SYNC_HASH_LEN) != 0)
		return 0;
	x = malloc(sizeof(*x));
	if (!x)
		return -ENOMEM;
	if (index_get(lf->c.idx, z->path, z->path_len, x) < 0 || x->deleted ||
	    x->type != INDEX_FILE || memcmp(x->hash, z->hash, SYNC_HASH_LEN) != 0)
		goto out; /* the scanner or the applier is on it */
	dirfd = disk_open_parent(lf->c.disk, z->path, false, &name);
	if (dirfd < 0) {
		r = dirfd == -ENOENT ? 0 : dirfd;
		goto out;
	}
	if (z->active) {
		/* our own descriptor is no writer, and the blocks it waits
		 * for can never come */
		file_failed(lf, z);
		lazy_deactivate(lf->c.lz, z);
	}
	/* exactly the placeholder as indexed: a change not scanned yet (an
	 * O_TRUNC and new bytes make it the user's file) is the scanner's */
	rfd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (rfd < 0 || fstat(rfd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_ino != x->ino || (uint64_t)st.st_size != x->size ||
	    (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec != x->ctime_ns ||
	    !no_writers(rfd)) {
		log_debug("sync: not dropping %s: changed since it was indexed", LOG_Q(z->path));
		goto out;
	}
	if ((uint64_t)st.st_blocks * 512 >= (uint64_t)st.st_size) {
		/* no hole: every block was written, maybe not yet marked (a
		 * crash before the bitmap was stored); then it is complete */
		uint8_t h[SYNC_HASH_LEN];
		uint64_t n = 0;
		if (blocks_hash_fd(rfd, NULL, NULL, h, &n) == 0 && n == z->size &&
		    memcmp(h, z->hash, SYNC_HASH_LEN) == 0) {
			for (uint64_t i = 0; i < z->nblocks; i++)
				if (!lazy_bit_get(z->have, i))
					lazy_mark(lf->c.lz, z, i);
			z->dirty = true;
			lazy_persist_later(lf->c.lz);
			lazy_wake(lf->c.lz, false, NULL);
			goto out; /* served at the next request */
		}
	}
	lazy_retire(lf->c.lz, z->path); /* a reader holding it open: -EIO for what is missing */
	if (unlinkat(dirfd, name, 0) < 0) {
		r = errno == ENOENT ? 0 : -errno;
		goto out;
	}
	lazy_gone(lf->c.lz, path);
	r = 1;
out:
	if (rfd >= 0)
		close(rfd);
	if (dirfd >= 0)
		close(dirfd);
	free(x);
	return r;
}

uint64_t lazy_fetch_deadline(const struct lazy_fetcher *lf)
{
	return lf->evict_due_ms ? lf->evict_due_ms : UINT64_MAX;
}

void lazy_fetch_tick(struct lazy_fetcher *lf, uint64_t now_ms)
{
	lf->now_ms = now_ms;
	if (lf->evict_due_ms && now_ms >= lf->evict_due_ms) {
		lf->evict_due_ms = 0;
		if (lf->c.cache_max && lazy_bytes(lf->c.lz) > lf->c.cache_max)
			evict(lf);
	}
}

int lazy_fetcher_new(const struct lazy_fetch_ctx *c, struct lazy_fetcher **ret)
{
	struct lazy_fetcher *lf = calloc(1, sizeof(*lf));

	if (!lf)
		return -ENOMEM;
	lf->c = *c;
	if (!lf->c.evict_age_ms)
		lf->c.evict_age_ms = LAZY_EVICT_AGE_MS;
	*ret = lf;
	return 0;
}

void lazy_fetcher_free(struct lazy_fetcher *lf)
{
	free(lf);
}
