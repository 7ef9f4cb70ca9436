/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Lazy mode: fetching the blocks engine_ensure() asked for, writing them
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

#include "log.h"
#include "sync/lazy.h"
#include "sync/lazy_int.h"

/* ---- fetching ---- */

static void file_failed(struct engine *e, struct lazy_file *z)
{
	for (unsigned i = 0; i < ENGINE_REQS_MAX; i++) {
		struct req *q = &e->reqs[i];
		if (q->id && q->lz == z)
			fetch_req_done(e, q);
	}
	memset(z->want, 0, lazy_bits_len(z->size));
	memset(z->asked, 0, lazy_bits_len(z->size));
	z->inflight = 0;
	z->manifest_req = 0;
	lazy_persist(e, z);
	lazy_deactivate(e, z);
	lazy_wake(e, true, z->path);
}

static bool manifest_load(struct engine *e, struct lazy_file *z)
{
	struct blocks_manifest *m = NULL;
	uint8_t *blob = NULL;
	size_t len = 0;

	if (index_manifest_get(e->idx, z->hash, &blob, &len) < 0)
		return false;
	if (blocks_manifest_decode(blob, len, &m) == 0 && blocks_manifest_check(m, z->hash) == 0 &&
	    m->size == z->size)
		z->m = m;
	else
		blocks_manifest_free(m);
	free(blob);
	return z->m != NULL;
}

static bool send_req(struct engine *e, struct lazy_file *z, struct req *q, bool manifest,
		     uint64_t i)
{
	struct sync_msg m;
	int n;

	memset(&m, 0, sizeof(m));
	q->lz = z;
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
	n = msg_encode(&m, e->buf, ENGINE_MSG_BUF);
	if (n < 0 || engine_send(e, e->buf, (size_t)n) < 0) {
		q->len = 0;
		fetch_req_done(e, q);
		return false;
	}
	if (!manifest)
		e->window += q->len;
	return true;
}

void lazy_pump(struct engine *e)
{
	struct lazy_file *z, *next;

	for (z = e->lz_active; z; z = next) {
		next = z->anext;
		if (z->nblocks > 1 && !z->m && !manifest_load(e, z)) {
			if (z->manifest_req)
				continue;
			if (e->io.room(e->io.ud) < 8192)
				return;
			struct req *q = fetch_req_new(e);
			if (!q || !send_req(e, z, q, true, 0))
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
			if (e->window + len > ENGINE_WINDOW || e->io.room(e->io.ud) < 8192)
				return;
			struct req *q = fetch_req_new(e);
			if (!q || !send_req(e, z, q, false, i))
				return;
			lazy_bit_set(z->asked, i);
			z->inflight++;
		}
	}
}

void lazy_on_manifest(struct engine *e, struct req *q, const struct sync_manifest *m)
{
	struct lazy_file *z = q->lz;

	if (memcmp(m->hash, z->hash, SYNC_HASH_LEN) != 0 || m->size != z->size ||
	    (!z->m && m->first != 0)) {
		fetch_req_done(e, q);
		file_failed(e, z);
		return;
	}
	if (!z->m && blocks_manifest_new(m->size, m->block_size, &z->m) < 0) {
		fetch_req_done(e, q);
		file_failed(e, z);
		return;
	}
	if (blocks_manifest_add(z->m, m->first, m->n, m->hashes) < 0) {
		fetch_req_done(e, q);
		engine_protocol_error(e, "MANIFEST chunks out of order for request %u", m->req_id);
		return;
	}
	if (z->m->filled < z->m->count)
		return;
	fetch_req_done(e, q);
	z->manifest_req = 0;
	if (blocks_manifest_check(z->m, z->hash) < 0) {
		log_warn("the peer's block list of %s does not match its file hash; not taken",
			 LOG_Q(z->path));
		e->refused++;
		blocks_manifest_free(z->m);
		z->m = NULL;
		file_failed(e, z);
		return;
	}
	size_t n = blocks_manifest_encoded_len(z->m);
	uint8_t *blob = malloc(n);
	if (blob && blocks_manifest_encode(z->m, blob, n) > 0 &&
	    index_manifest_put(e->idx, z->hash, blob, n) < 0)
		log_debug("cannot keep the block list of %s", LOG_Q(z->path));
	free(blob);
	fetch_pump(e);
}

/*
 * The placeholder's mtime from before we wrote to it back (the user's, if
 * a touch came after the scanner looked: the scanner still sees it), and
 * its new identity in the index.
 */
static int restore_identity(struct engine *e, struct lazy_file *z, int fd,
			    const struct timespec *mtime)
{
	struct timespec ts[2] = {{0, UTIME_OMIT}, *mtime};
	struct stat st;

	if (futimens(fd, ts) < 0 || fstat(fd, &st) < 0)
		return -errno;
	return index_set_stat(e->idx, z->path, z->path_len, (uint64_t)st.st_dev,
			      (uint64_t)st.st_ino,
			      (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec);
}


/* z has nothing in flight: persist, maybe complete, maybe evict. */
static void burst_end(struct engine *e, struct lazy_file *z)
{
	for (uint64_t i = 0; i < z->nblocks; i++)
		if (lazy_bit_get(z->want, i) && !lazy_bit_get(z->have, i))
			return; /* more to ask for */
	/* A finished file is marked at once; an unfinished one with the others
	 * on the timer (one syncfs for all, not an fdatasync per burst: those
	 * held the loop for a second per GiB read). A block on disk but not
	 * marked is only fetched again. */
	if (z->nhave == z->nblocks)
		lazy_persist(e, z);
	else if (z->dirty && !e->lz_persist_due_ms)
		e->lz_persist_due_ms = e->now_ms + LAZY_PERSIST_MS;
	if (z->nhave == z->nblocks)
		log_debug("sync: %s is complete", LOG_Q(z->path));
	lazy_deactivate(e, z);
	if (e->opts.cache_max && e->lz_bytes > e->opts.cache_max)
		lazy_evict(e);
}

void lazy_on_block(struct engine *e, struct req *q, const struct sync_block_data *b)
{
	struct lazy_file *z = q->lz;
	uint32_t i = q->block;
	uint8_t h[BLOCKS_HASH_LEN];
	int r = 0;

	if (b->len != q->len || b->offset != (uint64_t)i * BLOCKS_SIZE) {
		fetch_req_done(e, q);
		engine_protocol_error(e, "BLOCK_DATA for request %u is not what was asked",
				      b->req_id);
		return;
	}
	fetch_req_done(e, q);
	z->inflight--;
	lazy_bit_clear(z->asked, i);
	e->bytes_received += b->len;
	if (z->m) {
		r = blocks_manifest_verify(z->m, i, b->data, b->len);
	} else if (blocks_hash_buf(b->data, b->len, NULL, NULL, h) < 0 ||
		   sodium_memcmp(h, z->hash, BLOCKS_HASH_LEN) != 0) {
		r = -EBADMSG;
	}
	if (r != 0) {
		log_warn("block %u of %s from the peer does not verify; not written", i,
			 LOG_Q(z->path));
		file_failed(e, z);
		return;
	}
	if (z->fd < 0)
		return; /* deactivated meanwhile */
	struct stat before;
	if (fstat(z->fd, &before) < 0) {
		log_warn("cannot stat %s: %s", LOG_Q(z->path), strerror(errno));
		file_failed(e, z);
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
				e->nospace_lazy = true;
				fetch_nospace_set(e, z->path, -err);
			} else {
				log_warn("cannot write %s: %s", LOG_Q(z->path), strerror(err));
			}
			/* a failed write can still have touched the placeholder
			 * (its mtime, part of the block): put its identity back
			 * as after a good write, or the scanner takes the holes
			 * for an edit of ours and sends zeros to the peer */
			r = restore_identity(e, z, z->fd, &before.st_mtim);
			if (r < 0)
				log_warn("cannot restore the placeholder %s: %s", LOG_Q(z->path),
					 strerror(-r));
			file_failed(e, z);
			return;
		}
		done += (size_t)n;
	}
	if (e->nospace_lazy) {
		e->nospace_lazy = false;
		fetch_nospace_update(e);
	}
	r = restore_identity(e, z, z->fd, &before.st_mtim);
	if (r < 0)
		log_warn("cannot restore the placeholder %s: %s", LOG_Q(z->path), strerror(-r));
	pthread_mutex_lock(&e->lz_mu);
	if (!lazy_bit_get(z->have, i)) {
		lazy_bit_set(z->have, i);
		z->nhave++;
		e->lz_bytes += b->len;
	}
	pthread_mutex_unlock(&e->lz_mu);
	lazy_bit_clear(z->want, i);
	z->dirty = true;
	lazy_wake(e, false, NULL);
	if (z->inflight == 0)
		burst_end(e, z);
}

void lazy_on_error(struct engine *e, struct req *q, const struct sync_block_error *b)
{
	struct lazy_file *z = q->lz;
	char txt[2 * SYNC_ERROR_TEXT_MAX + 8];

	fetch_req_done(e, q);
	log_quote(b->text, b->text_len, txt, sizeof(txt));
	log_info("the peer cannot send %s now (code %u: %s)", LOG_Q(z->path), b->code, txt);
	file_failed(e, z);
}

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
static int evict_one(struct engine *e, struct lazy_file *z)
{
	struct index_entry *x = malloc(sizeof(*x));
	const char *name;
	struct stat st;
	int dirfd, rfd = -1, wfd = -1, r = -EBUSY;

	if (!x)
		return -ENOMEM;
	if (index_get(e->idx, z->path, z->path_len, x) < 0 || x->deleted ||
	    x->type != INDEX_FILE || memcmp(x->hash, z->hash, SYNC_HASH_LEN) != 0) {
		free(x);
		lazy_forget(e, z); /* not ours any more */
		return -ESTALE;
	}
	dirfd = apply_open_parent(e, z->path, false, &name);
	if (dirfd < 0)
		goto out;
	rfd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
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
	e->lz_bytes -= lazy_present_bytes(z);
	pthread_mutex_lock(&e->lz_mu);
	memset(z->have, 0, lazy_bits_len(z->size));
	z->nhave = 0;
	pthread_mutex_unlock(&e->lz_mu);
	if (index_lazy_put(e->idx, z->path, z->path_len, z->hash, z->size, z->have,
			   lazy_bits_len(z->size)) < 0) {
		log_debug("cannot record the blocks of %s: %s", LOG_Q(z->path),
			  index_errmsg(e->idx));
		z->dirty = true; /* the data stays; the row is written later */
		goto out;
	}
	z->dirty = false;
	if (fallocate(wfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)z->size) < 0) {
		r = -errno; /* unmarked data: only fetched again */
		goto out;
	}
	r = restore_identity(e, z, wfd, &st.st_mtim); /* == the index's, checked above */
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

void lazy_evict(struct engine *e)
{
	uint64_t now = e->now_ms;
	struct cand *c = NULL;
	size_t n = 0, cap = 0;

	for (unsigned b = 0; b < LAZY_BUCKETS; b++)
		for (struct lazy_file *z = e->lz_tab[b]; z; z = z->hnext) {
			if (z->active || z->nhave == 0 || now - z->used < lazy_evict_age_ms(e))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				struct cand *nc = realloc(c, cap * sizeof(*c));
				if (!nc)
					goto out;
				c = nc;
			}
			c[n].z = z;
			pthread_mutex_lock(&e->lz_mu);
			c[n++].used = z->used;
			pthread_mutex_unlock(&e->lz_mu);
		}
	if (n > 1) /* c is NULL when nothing qualified: qsort wants a pointer */
		qsort(c, n, sizeof(*c), cmp_used);
	for (size_t i = 0; i < n && e->lz_bytes > e->opts.cache_max; i++) {
		uint64_t before = e->lz_bytes;
		if (evict_one(e, c[i].z) == 0)
			log_debug("sync: cache %" PRIu64 " -> %" PRIu64 " bytes", before, e->lz_bytes);
	}
out:
	free(c);
	/* Still over: a file read in the last seconds, being written, or not
	 * yet rescanned after its last block was skipped. Try again soon, not
	 * only when the next fetch ends (there may be none). */
	e->lz_evict_due_ms = e->lz_bytes > e->opts.cache_max ? now + LAZY_EVICT_RETRY_MS : 0;
}

