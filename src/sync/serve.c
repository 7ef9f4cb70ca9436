/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Serving the peer's MANIFEST_REQUEST and BLOCK_REQUEST: in order, as
 * fast as the connection takes them (and the test rate cap allows). Only
 * what the index holds as a live file with the asked-for hash is served,
 * opened beneath the root without following symlinks; the requester
 * verifies every block anyway.
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

static void sreq_free(struct serve_req *q)
{
	free(q->path);
	free(q->manifest);
	memset(q, 0, sizeof(*q));
}

int serve_on_request(struct engine *e, const struct sync_msg *m)
{
	struct serve_req *q;

	if (e->serve_n >= ENGINE_SERVE_MAX) {
		engine_protocol_error(e, "more than %d requests outstanding", ENGINE_SERVE_MAX);
		return -EBADMSG;
	}
	q = &e->serve[(e->serve_head + e->serve_n) % ENGINE_SERVE_MAX];
	memset(q, 0, sizeof(*q));
	q->type = m->type;
	if (m->type == SYNC_MSG_BLOCK_REQUEST) {
		const struct sync_block_request *b = &m->block_request;
		q->req_id = b->req_id;
		q->path = strndup(b->path, b->path_len);
		q->path_len = b->path_len;
		memcpy(q->hash, b->hash, SYNC_HASH_LEN);
		q->block = b->index;
		q->offset = b->offset;
		q->len = b->len;
	} else {
		const struct sync_manifest_request *b = &m->manifest_request;
		q->req_id = b->req_id;
		q->path = strndup(b->path, b->path_len);
		q->path_len = b->path_len;
		memcpy(q->hash, b->hash, SYNC_HASH_LEN);
	}
	if (!q->path) {
		engine_protocol_error(e, "out of memory");
		return -EBADMSG;
	}
	e->serve_n++;
	return 0;
}

void serve_on_cancel(struct engine *e, uint32_t req_id)
{
	for (unsigned i = 0; i < e->serve_n; i++) {
		struct serve_req *q = &e->serve[(e->serve_head + i) % ENGINE_SERVE_MAX];
		if (q->req_id == req_id && q->type) {
			free(q->path);
			free(q->manifest);
			q->path = NULL;
			q->manifest = NULL;
			q->type = 0; /* skipped by the pump */
		}
	}
}

static void pop(struct engine *e)
{
	sreq_free(&e->serve[e->serve_head]);
	e->serve_head = (e->serve_head + 1) % ENGINE_SERVE_MAX;
	e->serve_n--;
}

static void send_error(struct engine *e, uint32_t req_id, uint16_t code, const char *text)
{
	struct sync_msg m = {.type = SYNC_MSG_BLOCK_ERROR};
	uint8_t b[SYNC_ERROR_TEXT_MAX + 16];
	int n;

	m.block_error.req_id = req_id;
	m.block_error.code = code;
	m.block_error.text = text;
	m.block_error.text_len = strlen(text);
	n = msg_encode(&m, b, sizeof(b));
	if (n > 0)
		(void)engine_send(e, b, (size_t)n);
}

/* Whether the index holds path as a live file with hash; 0 or a BLOCK_ERROR code. */
static uint16_t check_entry(struct engine *e, const struct serve_req *q, uint64_t *ret_size)
{
	struct index_entry *x = malloc(sizeof(*x));
	uint16_t code = 0;

	if (!x)
		return SYNC_BLOCK_ERR_REFUSED;
	if (index_get(e->idx, q->path, q->path_len, x) < 0 || x->deleted ||
	    x->type != INDEX_FILE)
		code = SYNC_BLOCK_ERR_NOT_FOUND;
	else if (!x->has_hash || memcmp(x->hash, q->hash, SYNC_HASH_LEN) != 0)
		code = SYNC_BLOCK_ERR_CHANGED;
	else
		*ret_size = x->size;
	free(x);
	return code;
}

/* Opens (or reuses) the file for q. Returns an fd or -errno. */
static int open_file(struct engine *e, const struct serve_req *q)
{
	const char *name;
	char qp[256];
	int dirfd, fd;

	if (e->srv_fd >= 0 && e->srv_path && strcmp(e->srv_path, q->path) == 0 &&
	    memcmp(e->srv_hash, q->hash, SYNC_HASH_LEN) == 0)
		return e->srv_fd;
	if (e->srv_fd >= 0)
		close(e->srv_fd);
	free(e->srv_path);
	e->srv_fd = -1;
	e->srv_path = NULL;
	dirfd = path_open_parent(e->rootfd, q->path, 0, &name);
	if (dirfd < 0) {
		fd = dirfd;
	} else {
		fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		fd = fd < 0 ? -errno : fd;
		close(dirfd);
	}
	if (fd == -ELOOP || fd == -EXDEV) {
		log_quote(q->path, q->path_len, qp, sizeof(qp));
		log_warn("refused to serve %s to the peer: a symlink is on the way", qp);
		e->refused++;
	}
	if (fd < 0)
		return fd;
	e->srv_fd = fd;
	e->srv_path = strdup(q->path);
	memcpy(e->srv_hash, q->hash, SYNC_HASH_LEN);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return fd;
}

/* Rate cap (a test knob): returns true when len bytes may go now. */
static bool rate_ok(struct engine *e, uint32_t len)
{
	uint64_t now;

	if (!e->opts.rate_bps)
		return true;
	now = e->now_ms;
	if (now > e->rate_ms) {
		e->rate_tokens += (now - e->rate_ms) * e->opts.rate_bps / 1000;
		if (e->rate_tokens > e->opts.rate_bps / 4 + SYNC_BLOCK_MAX)
			e->rate_tokens = e->opts.rate_bps / 4 + SYNC_BLOCK_MAX;
		e->rate_ms = now;
	}
	if (e->rate_tokens >= len) {
		e->rate_tokens -= len;
		return true;
	}
	e->rate_due_ms = now + (len - e->rate_tokens) * 1000 / e->opts.rate_bps + 1;
	return false;
}

/* Serves one block. Returns 0 when done with q, -EAGAIN to wait. */
static int serve_block(struct engine *e, struct serve_req *q)
{
	uint64_t size = 0;
	uint16_t code;
	int fd, n;

	if (e->io.room(e->io.ud) < (size_t)q->len + 256)
		return -EAGAIN;
	code = check_entry(e, q, &size);
	if (code) {
		send_error(e, q->req_id, code,
			   code == SYNC_BLOCK_ERR_NOT_FOUND ? "no such file here"
							    : "the file has changed");
		return 0;
	}
	if (e->opts.lazy && lazy_partial(e, q->path, q->hash)) {
		send_error(e, q->req_id, SYNC_BLOCK_ERR_NOT_FOUND, "not all of it is here");
		return 0;
	}
	if (q->offset != (uint64_t)q->block * BLOCKS_SIZE || q->len != blocks_len(size, q->block)) {
		send_error(e, q->req_id, SYNC_BLOCK_ERR_REFUSED, "not a block of this file");
		return 0;
	}
	if (!rate_ok(e, q->len))
		return -EAGAIN;
	fd = open_file(e, q);
	if (fd < 0) {
		send_error(e, q->req_id, fd == -ENOENT ? SYNC_BLOCK_ERR_NOT_FOUND : SYNC_BLOCK_ERR_IO,
			   fd == -ENOENT ? "no such file here" : "cannot open the file");
		return 0;
	}
	n = msg_block_data_header(e->buf, ENGINE_MSG_BUF, q->req_id, q->offset, q->len);
	if (n < 0) {
		send_error(e, q->req_id, SYNC_BLOCK_ERR_REFUSED, "bad request");
		return 0;
	}
	size_t got = 0;
	while (got < q->len) {
		ssize_t r = pread(fd, e->buf + n + got, q->len - got, (off_t)(q->offset + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got != q->len) {
		send_error(e, q->req_id, SYNC_BLOCK_ERR_CHANGED, "the file has changed");
		return 0;
	}
	if (engine_send(e, e->buf, (size_t)n + q->len) == 0)
		e->bytes_sent += q->len;
	return 0;
}

/* Serves a manifest, in chunks as room allows. Returns 0 when done, -EAGAIN to wait. */
static int serve_manifest(struct engine *e, struct serve_req *q)
{
	struct blocks_manifest *bm = NULL;
	uint64_t size = 0;
	uint16_t code;
	int r;

	if (!q->manifest) {
		code = check_entry(e, q, &size);
		if (code) {
			send_error(e, q->req_id, code,
				   code == SYNC_BLOCK_ERR_NOT_FOUND ? "no such file here"
								    : "the file has changed");
			return 0;
		}
		if (e->opts.lazy && lazy_partial(e, q->path, q->hash)) {
			send_error(e, q->req_id, SYNC_BLOCK_ERR_NOT_FOUND, "not all of it is here");
			return 0;
		}
		r = index_manifest_get(e->idx, q->hash, &q->manifest, &q->manifest_len);
		if (r < 0) {
			send_error(e, q->req_id, SYNC_BLOCK_ERR_CHANGED,
				   "the file is being indexed; try again");
			return 0;
		}
	}
	r = blocks_manifest_decode(q->manifest, q->manifest_len, &bm);
	if (r < 0) {
		send_error(e, q->req_id, SYNC_BLOCK_ERR_IO, "damaged block list");
		return 0;
	}
	do {
		uint32_t n = bm->count - q->manifest_next;
		if (n > SYNC_MANIFEST_HASHES_MAX)
			n = SYNC_MANIFEST_HASHES_MAX;
		if (e->io.room(e->io.ud) < (size_t)n * SYNC_HASH_LEN + 256) {
			blocks_manifest_free(bm);
			return -EAGAIN;
		}
		struct sync_msg m = {.type = SYNC_MSG_MANIFEST};
		m.manifest.req_id = q->req_id;
		memcpy(m.manifest.hash, q->hash, SYNC_HASH_LEN);
		m.manifest.size = bm->size;
		m.manifest.block_size = BLOCKS_SIZE;
		m.manifest.block_count = bm->count;
		m.manifest.first = q->manifest_next;
		m.manifest.n = n;
		m.manifest.hashes = bm->hashes + (size_t)q->manifest_next * SYNC_HASH_LEN;
		int len = msg_encode(&m, e->buf, ENGINE_MSG_BUF);
		if (len < 0 || engine_send(e, e->buf, (size_t)len) < 0)
			break;
		q->manifest_next += n;
	} while (q->manifest_next < bm->count);
	blocks_manifest_free(bm);
	return 0;
}

void serve_pump(struct engine *e)
{
	while (e->serve_n > 0 && e->up) {
		struct serve_req *q = &e->serve[e->serve_head];
		int r = 0;

		if (q->type == SYNC_MSG_BLOCK_REQUEST)
			r = serve_block(e, q);
		else if (q->type == SYNC_MSG_MANIFEST_REQUEST)
			r = serve_manifest(e, q);
		if (r == -EAGAIN)
			return;
		pop(e);
	}
}

void serve_on_down(struct engine *e)
{
	while (e->serve_n > 0)
		pop(e);
	e->serve_head = 0;
	if (e->srv_fd >= 0)
		close(e->srv_fd);
	e->srv_fd = -1;
	free(e->srv_path);
	e->srv_path = NULL;
}
