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

#include "base/log.h"
#include "sync/blocks.h"
#include "sync/serve.h"
#include "sync/path.h"

static void sreq_free(struct serve_req *q)
{
	free(q->path);
	free(q->manifest);
	memset(q, 0, sizeof(*q));
}

int serve_on_request(struct server *s, const struct sync_msg *m)
{
	struct serve_req *q;

	if (s->n >= SERVE_MAX) {
		link_fail(&s->c.link, "more than %d requests outstanding", SERVE_MAX);
		return -EBADMSG;
	}
	q = &s->q[(s->head + s->n) % SERVE_MAX];
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
		link_fail(&s->c.link, "out of memory");
		return -EBADMSG;
	}
	s->n++;
	return 0;
}

void serve_on_cancel(struct server *s, uint32_t req_id)
{
	for (unsigned i = 0; i < s->n; i++) {
		struct serve_req *q = &s->q[(s->head + i) % SERVE_MAX];
		if (q->req_id == req_id && q->type) {
			free(q->path);
			free(q->manifest);
			q->path = NULL;
			q->manifest = NULL;
			q->type = 0; /* skipped by the pump */
		}
	}
}

static void pop(struct server *s)
{
	sreq_free(&s->q[s->head]);
	s->head = (s->head + 1) % SERVE_MAX;
	s->n--;
}

static void send_error(struct server *s, uint32_t req_id, uint16_t code, const char *text)
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
		(void)link_send(&s->c.link, b, (size_t)n);
}

/* Whether the index holds path as a live file with hash; 0 or a BLOCK_ERROR code. */
static uint16_t check_entry(struct server *s, const struct serve_req *q, uint64_t *ret_size)
{
	struct index_entry *x = malloc(sizeof(*x));
	uint16_t code = 0;

	if (!x)
		return SYNC_BLOCK_ERR_REFUSED;
	if (index_get(s->c.idx, q->path, q->path_len, x) < 0 || x->deleted ||
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
static int open_file(struct server *s, const struct serve_req *q)
{
	const char *name;
	char qp[256];
	int dirfd, fd;

	if (s->fd >= 0 && s->path && strcmp(s->path, q->path) == 0 &&
	    memcmp(s->hash, q->hash, SYNC_HASH_LEN) == 0)
		return s->fd;
	if (s->fd >= 0)
		close(s->fd);
	free(s->path);
	s->fd = -1;
	s->path = NULL;
	dirfd = path_open_parent(s->c.rootfd, q->path, 0, &name);
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
		s->refused++;
	}
	if (fd < 0)
		return fd;
	s->fd = fd;
	s->path = strdup(q->path);
	memcpy(s->hash, q->hash, SYNC_HASH_LEN);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return fd;
}

/* Rate cap (a test knob): returns true when len bytes may go now. */
static bool rate_ok(struct server *s, uint32_t len)
{
	uint64_t now;

	if (!s->c.rate_bps)
		return true;
	now = s->now_ms;
	if (now > s->rate_ms) {
		s->rate_tokens += (now - s->rate_ms) * s->c.rate_bps / 1000;
		if (s->rate_tokens > s->c.rate_bps / 4 + SYNC_BLOCK_MAX)
			s->rate_tokens = s->c.rate_bps / 4 + SYNC_BLOCK_MAX;
		s->rate_ms = now;
	}
	if (s->rate_tokens >= len) {
		s->rate_tokens -= len;
		return true;
	}
	s->rate_due_ms = now + (len - s->rate_tokens) * 1000 / s->c.rate_bps + 1;
	return false;
}

/* q asked for a placeholder not complete here: nobody has it (serve.h). */
static void unservable(struct server *s, const struct serve_req *q)
{
	if (s->c.unservable)
		s->c.unservable(s->c.ud, q->path, q->hash);
}

/* Serves one block. Returns 0 when done with q, -EAGAIN to wait. */
static int serve_block(struct server *s, struct serve_req *q)
{
	uint64_t size = 0;
	uint16_t code;
	int fd, n;

	if (link_room(&s->c.link) < (size_t)q->len + 256)
		return -EAGAIN;
	code = check_entry(s, q, &size);
	if (code) {
		send_error(s, q->req_id, code,
			   code == SYNC_BLOCK_ERR_NOT_FOUND ? "no such file here"
							    : "the file has changed");
		return 0;
	}
	if (s->c.partial && s->c.partial(s->c.ud, q->path, q->hash)) {
		send_error(s, q->req_id, SYNC_BLOCK_ERR_NOT_FOUND, "not all of it is here");
		unservable(s, q);
		return 0;
	}
	if (q->offset != (uint64_t)q->block * BLOCKS_SIZE || q->len != blocks_len(size, q->block)) {
		send_error(s, q->req_id, SYNC_BLOCK_ERR_REFUSED, "not a block of this file");
		return 0;
	}
	if (!rate_ok(s, q->len))
		return -EAGAIN;
	fd = open_file(s, q);
	if (fd < 0) {
		send_error(s, q->req_id, fd == -ENOENT ? SYNC_BLOCK_ERR_NOT_FOUND : SYNC_BLOCK_ERR_IO,
			   fd == -ENOENT ? "no such file here" : "cannot open the file");
		return 0;
	}
	n = msg_block_data_header(s->c.buf, s->c.buf_len, q->req_id, q->offset, q->len);
	if (n < 0) {
		send_error(s, q->req_id, SYNC_BLOCK_ERR_REFUSED, "bad request");
		return 0;
	}
	size_t got = 0;
	while (got < q->len) {
		ssize_t r = pread(fd, s->c.buf + n + got, q->len - got, (off_t)(q->offset + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got != q->len) {
		send_error(s, q->req_id, SYNC_BLOCK_ERR_CHANGED, "the file has changed");
		return 0;
	}
	if (link_send(&s->c.link, s->c.buf, (size_t)n + q->len) == 0)
		s->bytes_sent += q->len;
	return 0;
}

/* Serves a manifest, in chunks as room allows. Returns 0 when done, -EAGAIN to wait. */
static int serve_manifest(struct server *s, struct serve_req *q)
{
	struct blocks_manifest *bm = NULL;
	uint64_t size = 0;
	uint16_t code;
	int r;

	if (!q->manifest) {
		code = check_entry(s, q, &size);
		if (code) {
			send_error(s, q->req_id, code,
				   code == SYNC_BLOCK_ERR_NOT_FOUND ? "no such file here"
								    : "the file has changed");
			return 0;
		}
		if (s->c.partial && s->c.partial(s->c.ud, q->path, q->hash)) {
			send_error(s, q->req_id, SYNC_BLOCK_ERR_NOT_FOUND, "not all of it is here");
			unservable(s, q);
			return 0;
		}
		r = index_manifest_get(s->c.idx, q->hash, &q->manifest, &q->manifest_len);
		if (r < 0) {
			send_error(s, q->req_id, SYNC_BLOCK_ERR_CHANGED,
				   "the file is being indexed; try again");
			return 0;
		}
	}
	r = blocks_manifest_decode(q->manifest, q->manifest_len, &bm);
	if (r < 0) {
		send_error(s, q->req_id, SYNC_BLOCK_ERR_IO, "damaged block list");
		return 0;
	}
	do {
		uint32_t n = bm->count - q->manifest_next;
		if (n > SYNC_MANIFEST_HASHES_MAX)
			n = SYNC_MANIFEST_HASHES_MAX;
		if (link_room(&s->c.link) < (size_t)n * SYNC_HASH_LEN + 256) {
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
		int len = msg_encode(&m, s->c.buf, s->c.buf_len);
		if (len < 0 || link_send(&s->c.link, s->c.buf, (size_t)len) < 0)
			break;
		q->manifest_next += n;
	} while (q->manifest_next < bm->count);
	blocks_manifest_free(bm);
	return 0;
}

void serve_pump(struct server *s, uint64_t now_ms)
{
	s->now_ms = now_ms;
	while (s->n > 0 && link_up(&s->c.link)) {
		struct serve_req *q = &s->q[s->head];
		int r = 0;

		if (q->type == SYNC_MSG_BLOCK_REQUEST)
			r = serve_block(s, q);
		else if (q->type == SYNC_MSG_MANIFEST_REQUEST)
			r = serve_manifest(s, q);
		if (r == -EAGAIN)
			return;
		pop(s);
	}
}

void serve_on_down(struct server *s)
{
	while (s->n > 0)
		pop(s);
	s->head = 0;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	free(s->path);
	s->path = NULL;
}

uint64_t serve_deadline(const struct server *s)
{
	return s->rate_due_ms ? s->rate_due_ms : UINT64_MAX;
}

void serve_tick(struct server *s, uint64_t now_ms)
{
	if (s->rate_due_ms && now_ms >= s->rate_due_ms) {
		s->rate_due_ms = 0;
		serve_pump(s, now_ms);
	}
}

int server_new(const struct serve_ctx *c, struct server **ret)
{
	struct server *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->c = *c;
	s->fd = -1;
	*ret = s;
	return 0;
}

void server_free(struct server *s)
{
	if (!s)
		return;
	serve_on_down(s);
	free(s);
}
