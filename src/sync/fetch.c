/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fetching file content from the peer: a manifest (files over one block),
 * then the blocks, many in flight, each verified before it is written to
 * the temp file beside the target. A temp file left by an interrupted
 * transfer is named after the path and content hash, so the next attempt
 * finds it and asks only for the blocks that do not verify.
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

#include <sodium.h>

#include "base/log.h"
#include "sync/fetch.h"
#include "sync/path.h"
#include "sync/scan.h"

#define RESUME_CHECKS_PER_PUMP 8 /* blocks of a temp file verified per pump */

/* f->r.size <= BLOCKS_FILE_MAX (fetch_queue refuses more): the count, and
 * every block index of f, fit in 32 bits. */
static uint32_t nblocks(const struct fetch *f)
{
	return (uint32_t)blocks_count(f->r.size);
}

static bool have_get(const struct fetch *f, uint32_t i)
{
	return f->have && (f->have[i / 8] >> (i % 8)) & 1;
}

static void have_set(struct fetch *f, uint32_t i)
{
	if (f->have)
		f->have[i / 8] |= (uint8_t)(1U << (i % 8));
}

/* Frees f; while workers still hold blocks of it, only its contents (the
 * struct goes with the last job's result). */
static void fetch_free(struct fetch *f)
{
	if (f->tmpfd >= 0)
		close(f->tmpfd);
	if (f->dfd >= 0)
		close(f->dfd);
	if (f->dirfd >= 0)
		close(f->dirfd);
	f->tmpfd = f->dfd = f->dirfd = -1;
	blocks_manifest_free(f->m);
	f->m = NULL;
	free(f->have);
	f->have = NULL;
	rentry_free(&f->r);
	if (f->jobs) {
		f->dead = true;
		return;
	}
	free(f);
}

/* A received block on its way through a worker: verified, then written. */
struct block_job {
	struct work_job w; /* first */
	struct fetch *f;
	uint32_t gen;
	uint32_t block;
	uint64_t off;
	uint32_t len;
	int fd;	     /* a dup of the temp file: f may close its own */
	int dfd;     /* a dup of its O_DIRECT fd, or -1 */
	bool single; /* expect is the file hash (a one-block file) */
	uint8_t expect[BLOCKS_HASH_LEN];
	int result; /* 0; -EBADMSG: does not verify; -errno of pwrite */
	uint8_t data[] __attribute__((aligned(4096))); /* O_DIRECT wants it aligned */
};

/*
 * Job buffers are kept for reuse (at most 2 x FETCH_JOBS + 1 of them, 1 MiB
 * each): a fresh 1 MiB malloc is a fresh mmap, and touching it page by page
 * cost more than the copy itself.
 */
static struct block_job *job_get(struct fetcher *fe)
{
	struct block_job *j = fe->jobs_free;

	if (j) {
		fe->jobs_free = (struct block_job *)j->w.next;
		fe->njobs_free--;
		return j;
	}
	void *p = NULL;

	if (posix_memalign(&p, 4096, sizeof(*j) + BLOCKS_SIZE) != 0)
		return NULL;
	return p;
}

static void job_put(struct fetcher *fe, struct block_job *j)
{
	if (!j)
		return;
	if (fe->njobs_free > 2 * FETCH_JOBS) {
		free(j);
		return;
	}
	j->w.next = (struct work_job *)fe->jobs_free;
	fe->jobs_free = j;
	fe->njobs_free++;
}

static void job_pool_drain(struct fetcher *fe)
{
	while (fe->jobs_free) {
		struct block_job *j = fe->jobs_free;
		fe->jobs_free = (struct block_job *)j->w.next;
		free(j);
	}
	fe->njobs_free = 0;
}

/* Verifies len bytes against the block's expected hash. */
static int block_verify(const uint8_t *data, uint32_t len, bool single, const uint8_t *expect)
{
	uint8_t h[BLOCKS_HASH_LEN];

	if (single) {
		if (blocks_hash_buf(data, len, NULL, NULL, h) < 0)
			return -EBADMSG;
	} else {
		blocks_hash_block(data, len, h);
	}
	return sodium_memcmp(h, expect, BLOCKS_HASH_LEN) == 0 ? 0 : -EBADMSG;
}

/* pwrite of all len bytes at off. 0 or -errno. */
static int pwrite_all(int fd, const uint8_t *p, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Writes a block and starts its writeback at once, so the fsync before the
 * rename finds little left to flush (it overlaps the transfer instead). */
static int block_write(int fd, const uint8_t *p, size_t len, off_t off)
{
	int r = pwrite_all(fd, p, len, off);

	/* small files: the syncfs of their batch writes them; a call each would
	 * only add an I/O submission per file */
	if (r == 0 && len >= BLOCKS_SIZE / 2)
		(void)sync_file_range(fd, off, (off_t)len, SYNC_FILE_RANGE_WRITE);
	return r;
}

static void block_run(struct work_job *wj)
{
	struct block_job *j = (struct block_job *)wj;

	j->result = block_verify(j->data, j->len, j->single, j->expect);
	if (j->result != 0)
		return;
	/* O_DIRECT for a whole aligned block; anything it refuses (an
	 * unaligned short write included) is written again buffered */
	if (j->dfd >= 0 && j->len % 4096 == 0 &&
	    pwrite_all(j->dfd, j->data, j->len, (off_t)j->off) == 0)
		return;
	j->result = block_write(j->fd, j->data, j->len, (off_t)j->off);
}

static const struct xfer_ops fetch_xfer_ops;

/* Tells the peer we no longer want the answer to request id. */
static void send_cancel(void *ud, uint32_t id)
{
	struct fetcher *fe = ud;
	uint8_t b[8];
	struct sync_msg m = {.type = SYNC_MSG_CANCEL};
	int n;

	m.cancel.req_id = id;
	n = msg_encode(&m, b, sizeof(b));
	if (n > 0 && link_room(&fe->c.link) > 64)
		(void)link_send(&fe->c.link, b, (size_t)n);
}

/* Forgets the requests of f (answers still on the way are then ignored). */
static void drop_reqs(struct fetcher *fe, struct fetch *f, bool cancel)
{
	xfer_drop_item(fe->c.xfer, f, cancel && link_up(&fe->c.link) ? send_cancel : NULL, fe);
}

/*
 * A full disk (ENOSPC, EDQUOT) is not a fault of the file: the fetch keeps
 * its temp file and is retried every FETCH_RETRY_MS, and once no fetch
 * waits for space any more (one wrote a block, or was dropped) the state
 * ends. Logged once each way; status shows it (fetch_disk_full).
 */
static bool is_nospace(int r)
{
	return r == -ENOSPC || r == -EDQUOT;
}

static void nospace_update(struct fetcher *fe)
{
	if (!fe->nospace_err || fe->nospace_lazy)
		return;
	for (const struct fetch *f = fe->fetches; f; f = f->next)
		if (f->nospace)
			return;
	fe->nospace_err = 0;
	log_info("there is space on the disk holding the share again: downloads resume");
}

void fetch_nospace_set(struct fetcher *fe, const char *path, int r, bool lazy)
{
	unsigned more = fe->nfetch ? fe->nfetch - 1 : 0;
	char also[48] = "";

	if (more)
		snprintf(also, sizeof(also), ", and %u more file%s", more, more == 1 ? "" : "s");
	if (!fe->nospace_err)
		log_warn("the disk holding the share is full (%s): %s waits%s; trying again every "
			 "%d s, free space to resume",
			 strerror(-r), LOG_Q(path), also, FETCH_RETRY_MS / 1000);
	fe->nospace_err = r;
	if (lazy)
		fe->nospace_lazy = true;
}

void fetch_nospace_lazy_clear(struct fetcher *fe)
{
	if (!fe->nospace_lazy)
		return;
	fe->nospace_lazy = false;
	nospace_update(fe);
}

static void nospace_set(struct fetcher *fe, struct fetch *f, int r)
{
	f->nospace = true;
	fetch_nospace_set(fe, f->r.path, r, false);
}

json_t *fetch_disk_full(const struct fetcher *fe)
{
	if (!fe->nospace_err)
		return json_null();
	return json_pack("{s:I, s:s}", "files", (json_int_t)(fe->nfetch + fe->nospace_lazy), "error",
			 strerror(-fe->nospace_err));
}

/* Takes f out of the queue. */
static void unlink_fetch(struct fetcher *fe, struct fetch *f)
{
	struct fetch **pp = &fe->fetches, *prev = NULL;

	for (; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp != f)
			continue;
		*pp = f->next;
		if (fe->fetch_tail == f)
			fe->fetch_tail = prev;
		fe->nfetch--;
		fe->nfetch_update -= f->update;
		if (f->state != FETCH_QUEUED)
			fe->nactive--;
		f->next = NULL;
		if (f->nospace) {
			f->nospace = false;
			nospace_update(fe);
		}
		return;
	}
}

/* Ends f without a result. remove_tmp: the temp file is useless (bad data). */
static void fetch_drop(struct fetcher *fe, struct fetch *f, bool remove_tmp)
{
	drop_reqs(fe, f, true);
	unlink_fetch(fe, f);
	if (remove_tmp && f->dirfd >= 0)
		(void)unlinkat(f->dirfd, f->tmpname, 0);
	fetch_free(f);
	fe->c.ops->applied(fe->c.ud);
}

/* Puts f at the end of the queue and counts it. */
static void fetch_append(struct fetcher *fe, struct fetch *f)
{
	f->next = NULL;
	if (fe->fetch_tail)
		fe->fetch_tail->next = f;
	else
		fe->fetches = f;
	fe->fetch_tail = f;
	fe->nfetch++;
	fe->nfetch_update += f->update;
}

static int fetch_start(struct fetcher *fe, struct fetch *f);

/* Whether the index has a live file of f's content to copy (fill_local). */
static bool local_has(struct fetcher *fe, const struct fetch *f)
{
	struct index_entry *x;
	bool has;

	if (f->r.size == 0 || f->r.size > FETCH_LOCAL_MAX)
		return false;
	x = malloc(sizeof(*x));
	has = x && index_get_by_hash(fe->c.idx, f->r.hash, x) == 0 && x->size == f->r.size;
	free(x);
	return has;
}

int fetch_queue(struct fetcher *fe, const struct rentry *r, bool update, uint64_t now_ms)
{
	struct fetch *f, *old = NULL;

	fe->now_ms = now_ms;

	if (r->size > BLOCKS_FILE_MAX)
		return -EFBIG; /* the decoder refuses such entries; never trust one here */

	/*
	 * Complete and waiting for its commit: a newer entry with the same
	 * content only changes what the commit writes (mode, mtime, vector).
	 * A second fetch would open the same temp file (its name depends on
	 * path and content), which the commit then renames from under it.
	 */
	for (f = fe->closing; f; f = f->next) {
		if (strcmp(f->r.path, r->path) != 0 ||
		    memcmp(f->r.hash, r->hash, SYNC_HASH_LEN) != 0 || f->r.size != r->size)
			continue;
		f->r.mode = r->mode;
		f->r.mtime_ns = r->mtime_ns;
		f->r.vv = r->vv;
		return 0;
	}

	for (f = fe->fetches; f; f = f->next) {
		if (strcmp(f->r.path, r->path) != 0)
			continue;
		if (memcmp(f->r.hash, r->hash, SYNC_HASH_LEN) == 0 && f->r.size == r->size) {
			/* the same content, newer metadata */
			f->r.mode = r->mode;
			f->r.mtime_ns = r->mtime_ns;
			f->r.vv = r->vv;
			f->r.seq = r->seq > f->r.seq ? f->r.seq : r->seq;
			return 0;
		}
		/* Dropped once the new one is queued: the drop stores the peer's
		 * changes as applied up to the oldest fetch left, and in between
		 * none would be left for this path (lost with the connection). */
		old = f;
		break;
	}
	f = calloc(1, sizeof(*f));
	if (!f || rentry_copy(&f->r, r) < 0) {
		free(f);
		if (old)
			fetch_drop(fe, old, true);
		return -ENOMEM;
	}
	f->dirfd = f->tmpfd = f->dfd = -1;
	f->update = update;
	fetch_append(fe, f);
	if (old)
		fetch_drop(fe, old, true);
	/*
	 * Its content in a file of ours: started now, so the copy is made
	 * before the peer's next change (the deletion of that file, when the
	 * peer moved it) is applied; a queued fetch may wait behind others.
	 */
	if (local_has(fe, f)) {
		int rc = fetch_start(fe, f);
		if (rc < 0)
			fetch_drop(fe, f, rc == -EBADMSG);
	}
	return 0;
}

void fetch_forget(struct fetcher *fe, const struct rentry *r, int dirfd)
{
	char name[FETCH_TMP_NAME_MAX];
	struct fetch *f, *next, **pp;
	const char *base;
	int fd = dirfd;

	for (f = fe->fetches; f; f = next) {
		next = f->next;
		if (strcmp(f->r.path, r->path) == 0)
			fetch_drop(fe, f, true);
	}
	for (pp = &fe->closing; (f = *pp);) {
		if (strcmp(f->r.path, r->path) != 0) {
			pp = &f->next;
			continue;
		}
		*pp = f->next;
		(void)unlinkat(f->dirfd, f->tmpname, 0);
		fetch_free(f);
		fe->c.ops->applied(fe->c.ud);
	}
	/* left by a download interrupted before (the connection lost, a
	 * restart): no fetch knows it. Not through disk_open_parent: a path
	 * refused there was refused already, and is not counted again. */
	if (fd < 0)
		fd = path_open_parent(fe->c.disk->rootfd, r->path, false, &base);
	if (fd < 0)
		return;
	fetch_tmp_name(r->path, r->path_len, r->hash, name);
	if (unlinkat(fd, name, 0) == 0)
		log_debug("sync: removed the unfinished download of %s: the peer deleted it",
			  LOG_Q(r->path));
	if (fd != dirfd)
		close(fd);
}

/* Whether f fetches an older entry of r's path than r, of other content
 * than r (or r is no live file). */
static bool superseded(const struct fetch *f, const struct rentry *r)
{
	if (f->r.seq >= r->seq || strcmp(f->r.path, r->path) != 0)
		return false;
	return r->deleted || r->kind != SYNC_KIND_FILE || f->r.size != r->size ||
	       memcmp(f->r.hash, r->hash, SYNC_HASH_LEN) != 0;
}

void fetch_supersede(struct fetcher *fe, const struct rentry *r)
{
	struct fetch *f, *next, **pp;

	for (f = fe->fetches; f; f = next) {
		next = f->next;
		if (superseded(f, r))
			fetch_drop(fe, f, true);
	}
	for (pp = &fe->closing; (f = *pp);) {
		if (!superseded(f, r)) {
			pp = &f->next;
			continue;
		}
		*pp = f->next;
		(void)unlinkat(f->dirfd, f->tmpname, 0);
		fetch_free(f);
		fe->c.ops->applied(fe->c.ud);
	}
}

uint64_t fetch_min_pending_seq(const struct fetcher *fe)
{
	uint64_t min = 0;

	for (const struct fetch *f = fe->fetches; f; f = f->next)
		if (!min || f->r.seq < min)
			min = f->r.seq;
	for (const struct fetch *f = fe->closing; f; f = f->next)
		if (!min || f->r.seq < min)
			min = f->r.seq;
	return min;
}

static struct xfer_req *req_new(struct fetcher *fe, struct fetch *f)
{
	return xfer_req_new(fe->c.xfer, &fetch_xfer_ops, fe, f);
}

static void req_done(struct fetcher *fe, struct xfer_req *q)
{
	xfer_req_done(fe->c.xfer, q);
}

/* Every block is in the temp file: hand it to the next commit. */
static void fetch_finish(struct fetcher *fe, struct fetch *f)
{
	uint64_t ms = fe->now_ms - f->start_ms;

	if (f->r.size >= ((uint64_t)16 << 20))
		log_info("received %s: %" PRIu64 " MiB in %" PRIu64 " ms (%" PRIu64
			 " MiB reused from an interrupted transfer)",
			 LOG_Q(f->r.path), f->r.size >> 20, ms, f->bytes_reused >> 20);
	unlink_fetch(fe, f);
	f->state = FETCH_CLOSING;
	f->next = fe->closing;
	fe->closing = f;
	if (!fe->commit_due_ms)
		fe->commit_due_ms = fe->now_ms + (f->r.size > BLOCKS_SIZE ? 0 : FETCH_COMMIT_MS);
}

void fetch_tmp_name(const char *path, size_t len, const uint8_t hash[static SYNC_HASH_LEN],
		    char out[static FETCH_TMP_NAME_MAX])
{
	uint8_t ph[8];

	crypto_generichash(ph, sizeof(ph), (const uint8_t *)path, len, NULL, 0);
	snprintf(out, FETCH_TMP_NAME_MAX,
		 SCAN_TMP_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x", hash[0],
		 hash[1], hash[2], hash[3], hash[4], hash[5], ph[0], ph[1], ph[2], ph[3], ph[4],
		 ph[5]);
}

/* Opens the target's directory and the temp file. Returns 0 or -errno (dropped). */
static int fetch_open(struct fetcher *fe, struct fetch *f)
{
	struct stat st;
	int r;

	f->dirfd = disk_open_parent(fe->c.disk, f->r.path, true, &f->name);
	if (f->dirfd < 0) {
		r = f->dirfd;
		if (r != -ELOOP && r != -EXDEV && r != -ENOTDIR)
			log_warn("cannot fetch %s: %s", LOG_Q(f->r.path), strerror(-r));
		return r;
	}
	fetch_tmp_name(f->r.path, f->r.path_len, f->r.hash, f->tmpname);
	f->tmpfd = openat(f->dirfd, f->tmpname, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (f->tmpfd < 0 || fstat(f->tmpfd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = -errno;
		log_warn("cannot create a temp file for %s: %s", LOG_Q(f->r.path), strerror(-r));
		return r ? r : -EIO;
	}
	/*
	 * Whole blocks of a large file go to disk with O_DIRECT from the
	 * workers: the data must reach the disk before the rename anyway, and
	 * writing it through the page cache cost both a copy into fresh pages
	 * and a writeback that competed with everything else (3x slower here).
	 * Where O_DIRECT is refused (tmpfs, some FUSE), blocks go buffered.
	 */
	if (f->r.size >= 4 * (uint64_t)BLOCKS_SIZE)
		f->dfd = openat(f->dirfd, f->tmpname, O_WRONLY | O_DIRECT | O_NOFOLLOW | O_CLOEXEC);
	if (st.st_size > 0) {
		f->resumed = true;
		if ((uint64_t)st.st_size > f->r.size && ftruncate(f->tmpfd, (off_t)f->r.size) < 0)
			return -errno;
	}
	uint32_t n = nblocks(f);
	f->have = calloc(n / 8 + 1, 1);
	if (!f->have)
		return -ENOMEM;
	f->start_ms = fe->now_ms;
	return 0;
}

static int send_manifest_request(struct fetcher *fe, struct fetch *f)
{
	struct sync_msg m = {.type = SYNC_MSG_MANIFEST_REQUEST};
	struct xfer_req *q;
	int n;

	q = req_new(fe, f);
	if (!q)
		return -EAGAIN;
	q->manifest = true;
	m.manifest_request.req_id = q->id;
	m.manifest_request.path = f->r.path;
	m.manifest_request.path_len = f->r.path_len;
	memcpy(m.manifest_request.hash, f->r.hash, SYNC_HASH_LEN);
	n = msg_encode(&m, fe->c.buf, fe->c.buf_len);
	if (n < 0 || link_send(&fe->c.link, fe->c.buf, (size_t)n) < 0) {
		req_done(fe, q);
		return -ENOTCONN;
	}
	f->manifest_req = q->id;
	f->state = FETCH_MANIFEST;
	return 0;
}

static int manifest_add_block(void *ud, uint32_t i, const uint8_t hash[BLOCKS_HASH_LEN])
{
	return blocks_manifest_add(ud, i, 1, hash);
}

/* Copies what fd holds (size bytes) into f's temp file. 0 or -errno. */
static int copy_into_tmp(struct fetcher *fe, struct fetch *f, int fd, uint64_t size)
{
	uint8_t *buf = fe->c.buf;
	uint64_t off = 0;
	int r;

	while (off < size) {
		size_t want = size - off < BLOCKS_SIZE ? (size_t)(size - off) : BLOCKS_SIZE;
		ssize_t n = pread(fd, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO; /* shorter than recorded */
		r = pwrite_all(f->tmpfd, buf, (size_t)n, (off_t)off);
		if (r < 0)
			return r;
		off += (uint64_t)n;
	}
	return ftruncate(f->tmpfd, (off_t)size) < 0 ? -errno : 0;
}

/*
 * The content f wants may be in a live file of ours under another name
 * (the peer moved its copy, or wrote the same bytes): copy it into the
 * temp file instead of asking the peer, which may not have it any more
 * (docs/SIM.md bug 19: a lazy peer's moved placeholder). The index only
 * says where to look: what was written is hashed again and taken only
 * when it is f's content, as a download's blocks are (the temp file is
 * hashed, so a file changed since it was recorded, or a placeholder's
 * holes, never pass). Up to FETCH_LOCAL_MAX bytes, on the loop. Whether
 * f is complete; otherwise what was written is checked block by block
 * as a resumed download's temp file.
 */
static bool fill_local(struct fetcher *fe, struct fetch *f)
{
	struct blocks_manifest *m = NULL;
	struct index_entry *x = NULL;
	uint8_t h[BLOCKS_HASH_LEN];
	const char *name;
	struct stat st;
	uint64_t n = 0;
	int dirfd = -1, fd = -1;
	bool ok = false;

	if (f->r.size == 0 || f->r.size > FETCH_LOCAL_MAX)
		return false;
	x = malloc(sizeof(*x));
	if (!x || index_get_by_hash(fe->c.idx, f->r.hash, x) < 0 || x->size != f->r.size)
		goto out;
	dirfd = path_open_parent(fe->c.disk->rootfd, x->path, false, &name);
	if (dirfd < 0)
		goto out;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != f->r.size)
		goto out;
	f->resumed = true; /* from here on the temp file holds something */
	if (copy_into_tmp(fe, f, fd, f->r.size) < 0)
		goto out;
	if (f->r.size > BLOCKS_SIZE && blocks_manifest_new(f->r.size, BLOCKS_SIZE, &m) < 0)
		goto out;
	if (blocks_hash_fd(f->tmpfd, m ? manifest_add_block : NULL, m, h, &n) < 0 ||
	    n != f->r.size || sodium_memcmp(h, f->r.hash, BLOCKS_HASH_LEN) != 0 ||
	    (m && blocks_manifest_check(m, f->r.hash) < 0))
		goto out;
	log_debug("sync: %s copied from %s, which holds its content", LOG_Q(f->r.path),
		  LOG_Q(x->path));
	memset(f->have, 0xff, nblocks(f) / 8 + 1);
	f->blocks_done = nblocks(f);
	f->bytes_done = f->bytes_reused = f->r.size;
	f->m = m; /* the commit keeps it in the index */
	m = NULL;
	ok = true;
out:
	blocks_manifest_free(m);
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	free(x);
	return ok;
}

/* Starts f: opens it, and asks for the manifest or goes straight to blocks. */
static int fetch_start(struct fetcher *fe, struct fetch *f)
{
	int r = fetch_open(fe, f);

	if (r < 0)
		return r; /* still queued: not counted active */
	fe->nactive++;
	f->state = FETCH_BLOCKS;
	log_debug("sync: fetching %s (%" PRIu64 " bytes%s)", LOG_Q(f->r.path), f->r.size,
		  f->resumed ? ", resuming" : "");
	if (f->r.size == 0) {
		uint8_t h[BLOCKS_HASH_LEN];
		if (blocks_hash_buf(NULL, 0, NULL, NULL, h) < 0 ||
		    memcmp(h, f->r.hash, BLOCKS_HASH_LEN) != 0) {
			log_warn("the peer's empty file %s has a wrong hash; not taken",
				 LOG_Q(f->r.path));
			return -EBADMSG;
		}
		if (ftruncate(f->tmpfd, 0) < 0)
			return -errno;
		fetch_finish(fe, f);
		return 0;
	}
	if (fill_local(fe, f)) {
		fetch_finish(fe, f);
		return 0;
	}
	if (f->r.size > BLOCKS_SIZE) {
		f->state = FETCH_MANIFEST;
		f->manifest_req = 0; /* asked for by the pump when there is room */
	}
	return 0;
}

/* Puts f back in the queue, to start again after FETCH_RETRY_MS. */
static void fetch_requeue(struct fetcher *fe, struct fetch *f)
{
	drop_reqs(fe, f, true);
	if (f->state != FETCH_QUEUED)
		fe->nactive--;
	if (f->tmpfd >= 0)
		close(f->tmpfd);
	if (f->dfd >= 0)
		close(f->dfd);
	if (f->dirfd >= 0)
		close(f->dirfd);
	f->tmpfd = f->dfd = f->dirfd = -1;
	blocks_manifest_free(f->m);
	f->m = NULL;
	free(f->have);
	f->have = NULL;
	f->state = FETCH_QUEUED;
	f->gen++;
	f->manifest_req = f->next_block = f->inflight = f->blocks_done = 0;
	f->bytes_done = f->bytes_reused = 0;
	f->resumed = false;
	f->not_before_ms = fe->now_ms + FETCH_RETRY_MS;
	if (!fe->retry_due_ms || fe->retry_due_ms > f->not_before_ms)
		fe->retry_due_ms = f->not_before_ms;
}

/*
 * A complete f (taken off the closing list) could not be put in place:
 * the directory it was fetched into is no longer the one at its path
 * (deleted, or moved away, and maybe made again), and its temp file went
 * with it. Fetched again, into what is at its path then, after
 * FETCH_RETRY_MS: dropping it would lose the file for good (the peer
 * sends that version only once).
 */
static void fetch_again(struct fetcher *fe, struct fetch *f)
{
	log_info("the directory of %s changed while it was fetched; fetching it again",
		 LOG_Q(f->r.path));
	(void)unlinkat(f->dirfd, f->tmpname, 0); /* a directory moved away keeps it */
	fetch_append(fe, f);
	f->state = FETCH_QUEUED; /* not active since fetch_finish */
	fetch_requeue(fe, f);
}

/* A block already in the temp file that verifies need not be fetched. */
static bool resume_check(struct fetcher *fe, struct fetch *f, uint32_t i)
{
	uint32_t len = blocks_len(f->r.size, i);
	uint8_t *buf = fe->c.buf;
	ssize_t n;

	n = pread(f->tmpfd, buf, len, (off_t)i * BLOCKS_SIZE);
	if (n != (ssize_t)len)
		return false;
	if (f->m) {
		if (blocks_manifest_verify(f->m, i, buf, len) != 0)
			return false;
	} else {
		uint8_t h[BLOCKS_HASH_LEN];
		if (blocks_hash_buf(buf, len, NULL, NULL, h) < 0 ||
		    memcmp(h, f->r.hash, BLOCKS_HASH_LEN) != 0)
			return false;
	}
	have_set(f, i);
	f->blocks_done++;
	f->bytes_done += len;
	f->bytes_reused += len;
	return true;
}

/* Asks for f's next blocks while the window and the connection allow. */
static void request_blocks(struct fetcher *fe, struct fetch *f, unsigned *checks)
{
	uint32_t count = nblocks(f);

	while (f->next_block < count && f->state == FETCH_BLOCKS) {
		uint32_t i = f->next_block, len = blocks_len(f->r.size, i);
		if (have_get(f, i)) {
			f->next_block++;
			continue;
		}
		if (f->resumed) {
			if (*checks == 0)
				return;
			(*checks)--;
			if (resume_check(fe, f, i)) {
				f->next_block++;
				if (f->blocks_done == count && !f->jobs)
					fetch_finish(fe, f);
				continue;
			}
		}
		if (!xfer_window_fits(fe->c.xfer, len) || link_room(&fe->c.link) < 8192)
			return;
		struct xfer_req *q = req_new(fe, f);
		if (!q)
			return;
		q->block = i;
		q->len = len;
		struct sync_msg m = {.type = SYNC_MSG_BLOCK_REQUEST};
		m.block_request.req_id = q->id;
		m.block_request.path = f->r.path;
		m.block_request.path_len = f->r.path_len;
		memcpy(m.block_request.hash, f->r.hash, SYNC_HASH_LEN);
		m.block_request.index = i;
		m.block_request.offset = (uint64_t)i * BLOCKS_SIZE;
		m.block_request.len = len;
		int n = msg_encode(&m, fe->c.buf, fe->c.buf_len);
		if (n < 0 || link_send(&fe->c.link, fe->c.buf, (size_t)n) < 0) {
			req_done(fe, q);
			return;
		}
		xfer_req_sent(fe->c.xfer, q);
		f->inflight++;
		f->next_block++;
	}
}

static void pump(struct fetcher *fe)
{
	unsigned checks = RESUME_CHECKS_PER_PUMP;
	struct fetch *f, *next;

	if (!link_up(&fe->c.link))
		return;
	for (f = fe->fetches; f; f = next) {
		next = f->next;
		if (f->state == FETCH_QUEUED) {
			if (fe->nactive >= FETCH_ACTIVE)
				break;
			if (f->not_before_ms > fe->now_ms) {
				if (!fe->retry_due_ms || fe->retry_due_ms > f->not_before_ms)
					fe->retry_due_ms = f->not_before_ms;
				continue;
			}
			int r = fetch_start(fe, f);
			if (r < 0) {
				fetch_drop(fe, f, r == -EBADMSG);
				continue;
			}
			if (f->state == FETCH_CLOSING)
				continue;
		}
		if (f->state == FETCH_MANIFEST && !f->manifest_req) {
			if (link_room(&fe->c.link) < 8192 || send_manifest_request(fe, f) < 0)
				return;
		}
		if (f->state == FETCH_BLOCKS)
			request_blocks(fe, f, &checks);
	}
	if (checks == 0)
		fe->retry_due_ms = fe->now_ms; /* more temp blocks to check: soon again */
}

void fetch_pump(struct fetcher *fe, uint64_t now_ms)
{
	fe->now_ms = now_ms;
	pump(fe);
}

static void on_manifest(void *owner, struct xfer_req *q, const struct sync_manifest *m)
{
	struct fetcher *fe = owner;
	struct fetch *f = q->item;
	int r;

	if (memcmp(m->hash, f->r.hash, SYNC_HASH_LEN) != 0 || m->size != f->r.size) {
		log_warn("the peer sent a manifest of another version of %s; fetching again later",
			 LOG_Q(f->r.path));
		req_done(fe, q);
		fetch_drop(fe, f, true);
		return;
	}
	if (!f->m) {
		if (m->first != 0) {
			req_done(fe, q);
			fetch_drop(fe, f, false);
			return;
		}
		r = blocks_manifest_new(m->size, m->block_size, &f->m);
		if (r < 0) {
			log_warn("cannot take the manifest of %s: %s", LOG_Q(f->r.path),
				 strerror(-r));
			req_done(fe, q);
			fetch_drop(fe, f, false);
			return;
		}
	}
	if (blocks_manifest_add(f->m, m->first, m->n, m->hashes) < 0) {
		req_done(fe, q);
		link_fail(&fe->c.link, "MANIFEST chunks out of order for request %u", m->req_id);
		return;
	}
	if (f->m->filled < f->m->count)
		return; /* more chunks come */
	req_done(fe, q);
	if (blocks_manifest_check(f->m, f->r.hash) < 0) {
		log_warn("the peer's block list of %s does not match its file hash; not taken",
			 LOG_Q(f->r.path));
		fe->refused++;
		fetch_drop(fe, f, true);
		return;
	}
	f->state = FETCH_BLOCKS;
	log_debug("sync: manifest of %s: %u blocks", LOG_Q(f->r.path), f->m->count);
}

/* A block was verified and written (r == 0), or not. */
static void block_done(struct fetcher *fe, struct fetch *f, uint32_t i, uint32_t len, int r)
{
	if (r == -EBADMSG) {
		log_warn("block %u of %s from the peer does not verify (its file changed, or the "
			 "data is bad); not written, fetching again when the peer sends its new "
			 "version",
			 i, LOG_Q(f->r.path));
		fetch_drop(fe, f, true);
		return;
	}
	if (is_nospace(r)) {
		nospace_set(fe, f, r);
		fetch_requeue(fe, f);
		return;
	}
	if (r < 0) {
		log_warn("cannot write %s: %s; fetching again later", LOG_Q(f->r.path),
			 strerror(-r));
		fetch_requeue(fe, f);
		return;
	}
	if (f->nospace) {
		f->nospace = false;
		nospace_update(fe);
	}
	have_set(f, i);
	f->blocks_done++;
	f->bytes_done += len;
	if (f->blocks_done == nblocks(f) && f->jobs == 0)
		fetch_finish(fe, f);
}

static void on_block(void *owner, struct xfer_req *q, const struct sync_block_data *b)
{
	struct fetcher *fe = owner;
	struct fetch *f = q->item;
	uint32_t i = q->block;
	int r;

	if (b->len != q->len || b->offset != (uint64_t)i * BLOCKS_SIZE) {
		req_done(fe, q);
		link_fail(&fe->c.link, "BLOCK_DATA for request %u has offset %" PRIu64
					 " and %zu bytes, not what was asked",
				      b->req_id, b->offset, b->len);
		return;
	}
	req_done(fe, q);
	f->inflight--;
	fe->bytes_received += b->len;
	if (f->m && (i >= f->m->count || b->len != blocks_len(f->m->size, i))) {
		link_fail(&fe->c.link, "BLOCK_DATA for a block outside the manifest");
		return;
	}
	const uint8_t *expect = f->m ? f->m->hashes + (size_t)i * BLOCKS_HASH_LEN : f->r.hash;
	if (fe->work && b->len > FETCH_INLINE_MAX) {
		/* a worker verifies and writes it; the loop goes on decrypting */
		struct block_job *j = job_get(fe);
		int fd = j ? fcntl(f->tmpfd, F_DUPFD_CLOEXEC, 0) : -1;
		int dfd = fd >= 0 && f->dfd >= 0 ? fcntl(f->dfd, F_DUPFD_CLOEXEC, 0) : -1;
		if (j && fd >= 0) {
			*j = (struct block_job){.w.run = block_run, .f = f, .gen = f->gen,
						.block = i, .off = b->offset, .len = (uint32_t)b->len,
						.fd = fd, .dfd = dfd, .single = !f->m};
			memcpy(j->expect, expect, BLOCKS_HASH_LEN);
			memcpy(j->data, b->data, b->len);
			if (work_submit(fe->work, &j->w) == 0) {
				f->jobs++;
				return;
			}
		}
		if (fd >= 0)
			close(fd);
		if (dfd >= 0)
			close(dfd);
		job_put(fe, j); /* the pool is full: do it here */
	}
	r = block_verify(b->data, (uint32_t)b->len, !f->m, expect);
	if (r == 0)
		r = block_write(f->tmpfd, b->data, b->len, (off_t)b->offset);
	block_done(fe, f, i, (uint32_t)b->len, r);
}

void fetch_on_work(struct fetcher *fe, uint64_t now_ms)
{
	struct work_job *list = fe->work ? work_take(fe->work) : NULL, *next;

	for (; list; list = next) {
		struct block_job *j = (struct block_job *)list;
		struct fetch *f = j->f;
		next = list->next;
		close(j->fd);
		if (j->dfd >= 0)
			close(j->dfd);
		f->jobs--;
		if (f->dead) {
			if (!f->jobs)
				free(f);
		} else if (j->gen != f->gen) {
			/* from before a restart of this fetch: ignored, but it may
			 * have been the last thing the fetch waited for */
			if (f->state == FETCH_BLOCKS && f->blocks_done == nblocks(f) && !f->jobs)
				fetch_finish(fe, f);
		} else {
			block_done(fe, f, j->block, j->len, j->result);
		}
		job_put(fe, j);
	}
	if (!fe->nfetch && !fe->closing && fe->work && !work_pending(fe->work))
		job_pool_drain(fe); /* idle: give the buffers back */
	fe->c.ops->pump(fe->c.ud); /* the lazy fetcher first, as always */
}

static void work_stop(struct fetcher *fe)
{
	struct work_job *left = NULL, *next;

	if (!fe->work)
		return;
	work_free(fe->work, &left);
	fe->work = NULL;
	for (; left; left = next) {
		struct block_job *j = (struct block_job *)left;
		next = left->next;
		close(j->fd);
		if (j->dfd >= 0)
			close(j->dfd);
		if (--j->f->jobs == 0 && j->f->dead)
			free(j->f);
		free(j);
	}
	job_pool_drain(fe);
}

static void on_error(void *owner, struct xfer_req *q, const struct sync_block_error *b)
{
	struct fetcher *fe = owner;
	char txt[2 * SYNC_ERROR_TEXT_MAX + 8];
	struct fetch *f = q->item;

	req_done(fe, q);
	log_quote(b->text, b->text_len, txt, sizeof(txt));
	log_info("the peer cannot send %s now (code %u: %s); it will send its current version",
		 LOG_Q(f->r.path), b->code, txt);
	if (b->code == SYNC_BLOCK_ERR_IO || b->code == SYNC_BLOCK_ERR_REFUSED)
		fetch_requeue(fe, f);
	else
		fetch_drop(fe, f, true); /* that version is gone: its temp file is useless */
}

static const struct xfer_ops fetch_xfer_ops = {
	.on_manifest = on_manifest,
	.on_block = on_block,
	.on_error = on_error,
};

static void commit_all(struct fetcher *fe)
{
	struct fetch *f, *next;
	int r;

	fe->commit_due_ms = 0;
	if (!fe->closing)
		return;
	/*
	 * Many small files done at once: make all their data durable with one
	 * syncfs instead of one fsync each (each costs a disk flush), then
	 * rename them into place. One large file keeps its own fsync.
	 */
	unsigned n = 0;
	for (f = fe->closing; f; f = f->next)
		n++;
	bool synced = false;
	if (n >= 2) {
		for (f = fe->closing; f; f = f->next) {
			struct timespec ts[2] = {{0, UTIME_OMIT}, disk_ns_to_ts(f->r.mtime_ns)};
			(void)fchmod(f->tmpfd, disk_peer_mode(fe->c.disk, f->r.mode));
			(void)futimens(f->tmpfd, ts);
		}
		synced = syncfs(fe->closing->tmpfd) == 0;
	}
	if (index_begin(fe->c.idx) < 0)
		log_warn("cannot start an index transaction: %s", index_errmsg(fe->c.idx));
	for (struct fetch **pp = &fe->closing; (f = *pp);) {
		r = fe->c.ops->commit(fe->c.ud, f, synced);
		if (r == -EAGAIN) {
			/* queued again before applied() below: its seq stays pending */
			*pp = f->next;
			fetch_again(fe, f);
			continue;
		}
		if (r < 0 && r != -ESTALE)
			log_warn("cannot put %s in place: %s", LOG_Q(f->r.path), strerror(-r));
		if (r < 0)
			(void)unlinkat(f->dirfd, f->tmpname, 0);
		pp = &f->next;
	}
	f = fe->closing;
	fe->closing = NULL;
	fe->c.ops->applied(fe->c.ud);
	log_debug("sync: committed %u downloads in one transaction%s", n,
		  synced ? " after one syncfs" : "");
	if (index_commit(fe->c.idx) < 0) {
		log_warn("cannot commit the index: %s", index_errmsg(fe->c.idx));
		(void)index_rollback(fe->c.idx);
	}
	for (; f; f = next) {
		next = f->next;
		fetch_free(f);
	}
	if (!fe->nfetch && fe->work && !work_pending(fe->work))
		job_pool_drain(fe); /* idle: give the buffers back */
	fe->c.ops->pump(fe->c.ud);
}

void fetch_tick(struct fetcher *fe, uint64_t now)
{
	fe->now_ms = now;
	if (fe->commit_due_ms && now >= fe->commit_due_ms)
		commit_all(fe);
	if (fe->retry_due_ms && now >= fe->retry_due_ms) {
		fe->retry_due_ms = 0;
		fe->c.ops->pump(fe->c.ud);
	}
}

void fetch_on_down(struct fetcher *fe, uint64_t now_ms)
{
	fe->now_ms = now_ms;
	commit_all(fe);
	fe->nospace_err = 0; /* nothing waits for space while nothing is fetched */
	fe->nospace_lazy = false;
	while (fe->fetches) {
		struct fetch *f = fe->fetches;
		drop_reqs(fe, f, false);
		unlink_fetch(fe, f);
		fetch_free(f); /* the temp file stays for the resume */
	}
	fe->nactive = 0;
}

uint64_t fetch_deadline(const struct fetcher *fe)
{
	uint64_t t = UINT64_MAX;

	if (fe->commit_due_ms)
		t = fe->commit_due_ms;
	if (fe->retry_due_ms && fe->retry_due_ms < t)
		t = fe->retry_due_ms;
	return t;
}

bool fetch_busy(const struct fetcher *fe)
{
	return fe->nfetch || fe->closing;
}

int fetch_work_fd(const struct fetcher *fe)
{
	return fe->work ? work_fd(fe->work) : -1;
}

int fetcher_new(const struct fetch_ctx *c, struct fetcher **ret)
{
	struct fetcher *fe = calloc(1, sizeof(*fe));

	if (!fe)
		return -ENOMEM;
	fe->c = *c;
	if (c->no_workers || work_new(FETCH_WORKERS, FETCH_JOBS, &fe->work) < 0)
		fe->work = NULL; /* the loop verifies and writes blocks itself */
	*ret = fe;
	return 0;
}

void fetcher_free(struct fetcher *fe)
{
	if (!fe)
		return;
	fetch_on_down(fe, fe->now_ms);
	work_stop(fe);
	fetch_on_down(fe, fe->now_ms);
	free(fe);
}

void fetch_status(const struct fetcher *fe, json_t *arr, uint64_t now)
{

	for (struct fetch *f = fe->fetches; f; f = f->next) {
		if (f->state == FETCH_QUEUED)
			continue;
		uint64_t ms = now - f->start_ms;
		uint64_t moved = f->bytes_done - f->bytes_reused;
		json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:s}", "path", f->r.path, "bytes_done",
				      (json_int_t)f->bytes_done, "bytes_total",
				      (json_int_t)f->r.size, "rate",
				      (json_int_t)(ms ? moved * 1000 / ms : 0), "direction",
				      "download");
		if (o)
			json_array_append_new(arr, o);
	}
}
