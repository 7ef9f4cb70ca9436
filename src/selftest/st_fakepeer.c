/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The selftest's fake peer (st_fakepeer.h). Test code: one blocking socket
 * driven with poll() and deadlines, the sans-IO handshake and frame codecs
 * of src/chan, and a hand-written entry writer that skips every check the
 * real encoder makes, so that it can say what a hostile peer says.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "chan/frame.h"
#include "chan/handshake.h"
#include "identity.h"
#include "log.h"
#include "st_fakepeer.h"
#include "st_raw.h"
#include "sync/blocks.h"

#define OFFERS_MAX 8
#define OFFER_BYTES_MAX ((size_t)4 << 20)
#define FORBID_MAX 64
#define RBUF_LEN 65536
#define SOFTWARE "tandem-selftest-fake-peer"
#define HELLO_MAX 256
#define HELD_MAX 16

struct offer {
	char *path;
	size_t path_len;
	uint8_t *data;
	size_t len;
	uint8_t hash[BLOCKS_HASH_LEN];
	uint8_t *bhashes; /* count * BLOCKS_HASH_LEN */
	uint32_t count;
	unsigned requests;
};

struct st_fake {
	struct identity *id;
	char fp[FP_TEXT_LEN + 1];
	uint8_t device[SYNC_DEVICE_LEN];
	uint64_t seq;
	int fd;
	bool connected;
	struct frame_enc *enc;
	struct frame_dec *dec;
	uint8_t *tx;  /* FRAME_MAX_LEN: frames are built here */
	uint8_t *msg; /* SYNC_MSG_MAX: the last DATA payload received */
	size_t msg_len;
	uint8_t *rbuf; /* RBUF_LEN: bytes received, not yet consumed */
	size_t roff, rlen;
	int close_code;
	char close_text[FRAME_CLOSE_TEXT_MAX + 1];
	struct offer offers[OFFERS_MAX];
	size_t noffers;
	uint8_t forbid[FORBID_MAX];
	size_t forbid_len;
	unsigned forbid_seen;
	uint8_t hello[HELLO_MAX]; /* what st_fake_connect() sends first */
	size_t hello_len;
	bool hold; /* keep BLOCK_REQUESTs unanswered until st_fake_release() */
	struct held {
		struct offer *o;
		uint32_t req_id;
		uint32_t index;
	} held[HELD_MAX];
	size_t nheld;
};

static int block_collect(void *userdata, uint32_t index, const uint8_t hash[BLOCKS_HASH_LEN])
{
	struct offer *o = userdata;

	if (index >= o->count)
		return -ERANGE;
	memcpy(o->bhashes + (size_t)index * BLOCKS_HASH_LEN, hash, BLOCKS_HASH_LEN);
	return 0;
}

int st_fake_new(struct st_fake **ret)
{
	struct st_fake *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->fd = -1;
	f->close_code = -1;
	f->tx = malloc(FRAME_MAX_LEN);
	f->msg = malloc(SYNC_MSG_MAX);
	f->rbuf = malloc(RBUF_LEN);
	if (!f->tx || !f->msg || !f->rbuf || identity_new(NULL, &f->id) < 0) {
		st_fake_free(f);
		return -ENOMEM;
	}
	fp_format(&f->id->fp, f->fp);
	randombytes_buf(f->device, sizeof(f->device));
	if (st_fake_set_hello(f, NULL, 0) < 0) {
		st_fake_free(f);
		return -EINVAL;
	}
	*ret = f;
	return 0;
}

static void conn_drop(struct st_fake *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	f->connected = false;
	frame_enc_free(f->enc);
	f->enc = NULL;
	frame_dec_free(f->dec);
	f->dec = NULL;
	f->roff = f->rlen = 0;
	f->nheld = 0;
}

void st_fake_free(struct st_fake *f)
{
	if (!f)
		return;
	conn_drop(f);
	for (size_t i = 0; i < f->noffers; i++) {
		free(f->offers[i].path);
		free(f->offers[i].data);
		free(f->offers[i].bhashes);
	}
	identity_free(f->id);
	free(f->tx);
	free(f->msg);
	free(f->rbuf);
	free(f);
}

const char *st_fake_fp(const struct st_fake *f)
{
	return f->fp;
}

bool st_fake_connected(const struct st_fake *f)
{
	return f->connected;
}

int st_fake_close_code(const struct st_fake *f)
{
	return f->close_code;
}

const char *st_fake_close_text(const struct st_fake *f)
{
	return f->close_text;
}

/* The end of a wait of ms, never past the scenario's deadline. */
static uint64_t end_of(const struct st_env *env, unsigned ms)
{
	uint64_t end = st_now_ms() + ms;

	return end < env->deadline_ms ? end : env->deadline_ms;
}

/* Waits for events on fd until end. Returns 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, uint64_t end)
{
	for (;;) {
		uint64_t now = st_now_ms();
		struct pollfd p = {.fd = fd, .events = events};
		int n;

		if (now >= end)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)(end - now));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int send_all(struct st_fake *f, const uint8_t *p, size_t n, uint64_t end)
{
	while (n > 0) {
		ssize_t w = send(f->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(f->fd, POLLOUT, end);
			if (r < 0)
				return r;
			continue;
		}
		return w < 0 ? -errno : -EIO;
	}
	return 0;
}

/* Receives more bytes into rbuf. Returns the count, 0 at EOF, -ETIMEDOUT, -errno. */
static int fill(struct st_fake *f, uint64_t end)
{
	if (f->roff > 0) {
		memmove(f->rbuf, f->rbuf + f->roff, f->rlen - f->roff);
		f->rlen -= f->roff;
		f->roff = 0;
	}
	if (f->rlen == RBUF_LEN)
		return -ENOBUFS;
	for (;;) {
		ssize_t n = recv(f->fd, f->rbuf + f->rlen, RBUF_LEN - f->rlen, MSG_DONTWAIT);
		if (n >= 0) {
			f->rlen += (size_t)n;
			return (int)n;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int r = wait_fd(f->fd, POLLIN, end);
		if (r < 0)
			return r;
	}
}

/* Takes exactly n handshake bytes from the stream. */
static int take(struct st_fake *f, uint8_t *dst, size_t n, uint64_t end)
{
	while (f->rlen - f->roff < n) {
		int r = fill(f, end);
		if (r <= 0)
			return r == 0 ? -EPIPE : r;
	}
	memcpy(dst, f->rbuf + f->roff, n);
	f->roff += n;
	return 0;
}

static int tcp_dial(struct st_env *env, const char *addr, uint64_t end)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char host[64];
	const char *colon = strrchr(addr, ':');
	size_t hl;
	long port;
	int fd, one = 1, err = 0;

	memset(&ss, 0, sizeof(ss));
	if (!colon || colon == addr)
		return -EINVAL;
	port = strtol(colon + 1, NULL, 10);
	hl = (size_t)(colon - addr);
	if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
		addr++;
		hl -= 2;
	}
	if (hl >= sizeof(host) || port <= 0 || port > 65535)
		return -EINVAL;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*s6);
	} else if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		sl = sizeof(*s4);
	} else {
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		socklen_t el = sizeof(err);
		int r = errno == EINPROGRESS ? wait_fd(fd, POLLOUT, end) : -errno;
		if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err)
			r = -err;
		if (r < 0) {
			st_note(env, "fake peer: cannot connect to %s: %s", addr, strerror(-r));
			close(fd);
			return r;
		}
	}
	return fd;
}

/* The initiator's side of the handshake; sets up enc/dec. */
static int handshake(struct st_env *env, struct st_fake *f, const struct fingerprint *peer,
		     uint64_t end)
{
	uint8_t m[HS_MSG_MAX];
	struct hs_keys keys;
	struct hs *hs = NULL;
	int n, r;

	r = hs_new(HS_INITIATOR, f->id, peer, &hs);
	while (r == 0 && !hs_done(hs)) {
		if (hs_want(hs) == HS_WANT_WRITE) {
			n = hs_write(hs, m, sizeof(m));
			r = n < 0 ? n : send_all(f, m, (size_t)n, end);
		} else if (hs_want(hs) == HS_WANT_READ) {
			r = take(f, m, HS_HEADER_LEN, end);
			n = r < 0 ? r : hs_header_parse(hs, m, HS_HEADER_LEN);
			if (n >= 0 && ((size_t)n < HS_HEADER_LEN || (size_t)n > sizeof(m)))
				n = -EBADMSG;
			r = n < 0 ? n : take(f, m + HS_HEADER_LEN, (size_t)n - HS_HEADER_LEN, end);
			if (r == 0)
				r = hs_read(hs, m, (size_t)n);
		} else {
			r = -EPROTO;
		}
	}
	if (r == 0)
		r = hs_split(hs, &keys);
	if (r == 0) {
		r = frame_enc_new(keys.tx, &f->enc);
		if (r == 0)
			r = frame_dec_new(keys.rx, &f->dec);
		sodium_memzero(&keys, sizeof(keys));
	}
	if (r < 0)
		st_note(env, "fake peer: the handshake failed: %s (%s)", strerror(-r),
			hs && hs_reason(hs)[0] ? hs_reason(hs) : "no reason given");
	hs_free(hs);
	return r;
}

static int send_frame(struct st_fake *f, enum frame_type type, const uint8_t *p, size_t len,
		      uint64_t ping, uint64_t end)
{
	int n;

	if (!f->connected)
		return -EPIPE;
	if (type == FRAME_DATA)
		n = frame_enc_write(f->enc, type, p, len, f->tx, FRAME_MAX_LEN);
	else if (type == FRAME_CLOSE)
		n = frame_enc_write_close(f->enc, FRAME_CLOSE_NORMAL, "fake peer leaves", f->tx,
					  FRAME_MAX_LEN);
	else
		n = frame_enc_write_ping(f->enc, type, ping, f->tx, FRAME_MAX_LEN);
	if (n < 0)
		return n;
	return send_all(f, f->tx, (size_t)n, end);
}

static int pump_frame(struct st_env *env, struct st_fake *f, uint64_t end);

int st_fake_send(struct st_env *env, struct st_fake *f, const void *payload, size_t len)
{
	int r = send_frame(f, FRAME_DATA, payload, len, 0, end_of(env, 2000));

	if (r < 0 && r != -EPIPE) {
		/* The daemon closed on us: read its CLOSE, if it is still there. */
		uint64_t end = end_of(env, 500);
		while (pump_frame(env, f, end) > 0)
			;
		conn_drop(f);
		return -EPIPE;
	}
	return r;
}

/*
 * Reads until one frame is decoded and handles it: PING gets its PONG,
 * CLOSE ends the connection, DATA is copied into f->msg. Returns 1 for
 * DATA, 2 for any other frame, 0 at end, -EPIPE once closed, -EBADMSG for
 * a frame that does not decode (the connection is dropped).
 */
static int pump_frame(struct st_env *env, struct st_fake *f, uint64_t end)
{
	struct frame fr;
	size_t used;
	int r;

	if (!f->connected)
		return -EPIPE;
	for (;;) {
		if (f->roff < f->rlen) {
			r = frame_dec_feed(f->dec, f->rbuf + f->roff, f->rlen - f->roff, &used,
					   &fr);
			f->roff += used;
			if (r < 0) {
				st_note(env, "fake peer: a bad frame from the daemon: %s",
					frame_dec_reason(f->dec));
				conn_drop(f);
				return -EBADMSG;
			}
			if (r == 1)
				break;
			continue;
		}
		r = fill(f, end);
		if (r == -ETIMEDOUT)
			return 0;
		if (r <= 0) { /* EOF or reset: closed without a CLOSE frame */
			f->close_code = -1;
			conn_drop(f);
			return -EPIPE;
		}
	}
	switch (fr.type) {
	case FRAME_PING:
		(void)send_frame(f, FRAME_PONG, NULL, 0, fr.ping, end_of(env, 1000));
		return 2;
	case FRAME_CLOSE:
		f->close_code = fr.close_code;
		snprintf(f->close_text, sizeof(f->close_text), "%.*s", (int)fr.len,
			 (const char *)fr.payload);
		conn_drop(f);
		return -EPIPE;
	case FRAME_DATA:
		memcpy(f->msg, fr.payload, fr.len);
		f->msg_len = fr.len;
		if (f->forbid_len && memmem(f->msg, f->msg_len, f->forbid, f->forbid_len))
			f->forbid_seen++;
		return 1;
	default:
		return 2;
	}
}

/* Waits for the next DATA frame. Returns 1, 0 at end, or -EPIPE / -EBADMSG. */
static int next_data(struct st_env *env, struct st_fake *f, uint64_t end)
{
	int r;

	do
		r = pump_frame(env, f, end);
	while (r == 2);
	return r;
}

int st_fake_set_hello(struct st_fake *f, const void *p, size_t len)
{
	size_t n = sizeof(SOFTWARE) - 1;

	if (p) {
		if (len > HELLO_MAX)
			return -E2BIG;
		memcpy(f->hello, p, len);
		f->hello_len = len;
		return 0;
	}
	f->hello[0] = 1; /* HELLO, protocol 1, our name (docs/DAEMON.md) */
	f->hello[1] = 0;
	f->hello[2] = 1;
	f->hello[3] = (uint8_t)n;
	memcpy(f->hello + 4, SOFTWARE, n);
	f->hello_len = 4 + n;
	return 0;
}

int st_fake_connect(struct st_env *env, struct st_fake *f, const char *addr, const char *peer_fp,
		    unsigned ms)
{
	uint64_t end = end_of(env, ms);
	struct fingerprint peer;
	struct err err;
	int r;

	conn_drop(f);
	f->close_code = -1;
	f->close_text[0] = '\0';
	if (fp_parse(peer_fp, &peer, &err) < 0) {
		st_note(env, "fake peer: bad fingerprint '%s': %s", peer_fp, err.msg);
		return -EINVAL;
	}
	r = tcp_dial(env, addr, end);
	if (r < 0)
		return r;
	f->fd = r;
	r = handshake(env, f, &peer, end);
	if (r < 0) {
		conn_drop(f);
		return r;
	}
	f->connected = true;
	r = st_fake_send(env, f, f->hello, f->hello_len);
	if (r == 0)
		r = next_data(env, f, end);
	if (r == 1 && f->msg_len >= 4 && f->msg[0] == 1 && f->msg_len == 4u + f->msg[3])
		return 0;
	if (r == 1)
		st_note(env, "fake peer: the daemon's first message is not a HELLO (type %u, %zu "
			     "bytes)", f->msg_len ? f->msg[0] : 0, f->msg_len);
	else
		st_note(env, "fake peer: no HELLO from the daemon (%s, close code %d)",
			r == 0 ? "timed out" : strerror(-r), f->close_code);
	conn_drop(f);
	return r == 0 ? -ETIMEDOUT : r < 0 ? r : -EBADMSG;
}

static struct offer *offer_find(struct st_fake *f, const char *path, size_t len)
{
	for (size_t i = 0; i < f->noffers; i++)
		if (f->offers[i].path_len == len && memcmp(f->offers[i].path, path, len) == 0)
			return &f->offers[i];
	return NULL;
}

int st_fake_offer(struct st_fake *f, const char *path, const void *data, size_t len)
{
	struct offer *o;

	if (f->noffers == OFFERS_MAX || len > OFFER_BYTES_MAX)
		return -E2BIG;
	o = &f->offers[f->noffers];
	memset(o, 0, sizeof(*o));
	o->path_len = strlen(path);
	o->path = strdup(path);
	o->data = malloc(len ? len : 1);
	o->count = blocks_count(len);
	o->bhashes = malloc(o->count ? (size_t)o->count * BLOCKS_HASH_LEN : 1);
	if (!o->path || !o->data || !o->bhashes)
		goto fail;
	memcpy(o->data, data, len);
	o->len = len;
	if (blocks_hash_buf(o->data, len, block_collect, o, o->hash) < 0)
		goto fail;
	f->noffers++;
	return 0;
fail:
	free(o->path);
	free(o->data);
	free(o->bhashes);
	return -ENOMEM;
}

unsigned st_fake_requests(const struct st_fake *f, const char *path)
{
	for (size_t i = 0; i < f->noffers; i++)
		if (strcmp(f->offers[i].path, path) == 0)
			return f->offers[i].requests;
	return 0;
}

static int send_msg(struct st_env *env, struct st_fake *f, const struct sync_msg *m)
{
	uint8_t *p = f->tx + FRAME_PAYLOAD_OFFSET;
	int n = msg_encode(m, p, FRAME_MAX_PAYLOAD);

	if (n < 0) {
		st_note(env, "fake peer: cannot encode a %s: %s", msg_type_name(m->type),
			strerror(-n));
		return n;
	}
	return st_fake_send(env, f, p, (size_t)n);
}

static int send_block_error(struct st_env *env, struct st_fake *f, uint32_t req_id, uint16_t code)
{
	static const char text[] = "the fake peer does not offer that";
	struct sync_msg m = {.type = SYNC_MSG_BLOCK_ERROR};

	m.block_error.req_id = req_id;
	m.block_error.code = code;
	m.block_error.text = text;
	m.block_error.text_len = sizeof(text) - 1;
	return send_msg(env, f, &m);
}

static void send_block(struct st_env *env, struct st_fake *f, struct offer *o, uint32_t req_id,
		       uint32_t index)
{
	struct sync_msg m = {.type = SYNC_MSG_BLOCK_DATA};

	m.block_data.req_id = req_id;
	m.block_data.offset = (uint64_t)index * BLOCKS_SIZE;
	m.block_data.data = o->data + m.block_data.offset;
	m.block_data.len = blocks_len(o->len, index);
	(void)send_msg(env, f, &m);
}

/* Answers a request of the daemon for one of our files. */
static void serve(struct st_env *env, struct st_fake *f, const struct sync_msg *q)
{
	struct sync_msg m;
	struct offer *o;
	bool manifest = q->type == SYNC_MSG_MANIFEST_REQUEST;
	const char *path = manifest ? q->manifest_request.path : q->block_request.path;
	size_t path_len = manifest ? q->manifest_request.path_len : q->block_request.path_len;
	const uint8_t *hash = manifest ? q->manifest_request.hash : q->block_request.hash;
	uint32_t req_id = manifest ? q->manifest_request.req_id : q->block_request.req_id;

	o = offer_find(f, path, path_len);
	if (!o) {
		(void)send_block_error(env, f, req_id, SYNC_BLOCK_ERR_NOT_FOUND);
		return;
	}
	o->requests++;
	if (memcmp(hash, o->hash, BLOCKS_HASH_LEN) != 0) {
		(void)send_block_error(env, f, req_id, SYNC_BLOCK_ERR_CHANGED);
		return;
	}
	memset(&m, 0, sizeof(m));
	if (manifest) {
		m.type = SYNC_MSG_MANIFEST;
		m.manifest.req_id = req_id;
		memcpy(m.manifest.hash, o->hash, BLOCKS_HASH_LEN);
		m.manifest.size = o->len;
		m.manifest.block_size = BLOCKS_SIZE;
		m.manifest.block_count = o->count;
		m.manifest.first = 0;
		m.manifest.n = o->count;
		m.manifest.hashes = o->bhashes;
		(void)send_msg(env, f, &m);
		return;
	}
	const struct sync_block_request *b = &q->block_request;
	if (b->index >= o->count || b->offset != (uint64_t)b->index * BLOCKS_SIZE ||
	    b->len != blocks_len(o->len, b->index)) {
		(void)send_block_error(env, f, req_id, SYNC_BLOCK_ERR_REFUSED);
		return;
	}
	if (f->hold && f->nheld < HELD_MAX) {
		f->held[f->nheld++] = (struct held){.o = o, .req_id = req_id, .index = b->index};
		return;
	}
	send_block(env, f, o, req_id, b->index);
}

void st_fake_hold(struct st_fake *f)
{
	f->hold = true;
}

size_t st_fake_held(const struct st_fake *f)
{
	return f->nheld;
}

void st_fake_release(struct st_env *env, struct st_fake *f)
{
	for (size_t i = 0; i < f->nheld && f->connected; i++)
		send_block(env, f, f->held[i].o, f->held[i].req_id, f->held[i].index);
	f->nheld = 0;
	f->hold = false;
}

/* One DATA message decoded (and served when it is a request). */
static int recv_until(struct st_env *env, struct st_fake *f, uint64_t end, struct sync_msg *ret)
{
	struct err err;
	int r = next_data(env, f, end);

	if (r <= 0)
		return r;
	r = msg_decode(f->msg, f->msg_len, ret, &err);
	if (r < 0) {
		st_note(env, "fake peer: the daemon sent a message we refuse: %s", err.msg);
		return -EBADMSG;
	}
	if (ret->type == SYNC_MSG_MANIFEST_REQUEST || ret->type == SYNC_MSG_BLOCK_REQUEST)
		serve(env, f, ret);
	return 1;
}

int st_fake_recv(struct st_env *env, struct st_fake *f, unsigned ms, struct sync_msg *ret)
{
	return recv_until(env, f, end_of(env, ms), ret);
}

int st_fake_idle(struct st_env *env, struct st_fake *f, unsigned ms)
{
	uint64_t end = end_of(env, ms);
	struct sync_msg m;
	int r;

	while (st_now_ms() < end) {
		r = recv_until(env, f, end, &m);
		if (r == -EPIPE || (r < 0 && !f->connected))
			return -EPIPE;
	}
	return f->connected ? 0 : -EPIPE;
}

int st_fake_wait_closed(struct st_env *env, struct st_fake *f, unsigned ms)
{
	return st_fake_idle(env, f, ms) == -EPIPE ? 0 : -ETIMEDOUT;
}

void st_fake_disconnect(struct st_fake *f)
{
	if (f->connected)
		(void)send_frame(f, FRAME_CLOSE, NULL, 0, 0, st_now_ms() + 500);
	conn_drop(f);
}

int st_fake_start(struct st_env *env, struct st_fake *f, unsigned ms, struct sync_start *ret)
{
	uint64_t end = end_of(env, ms);
	struct sync_msg m = {.type = SYNC_MSG_START};
	int r;

	memcpy(m.start.device, f->device, SYNC_DEVICE_LEN);
	r = send_msg(env, f, &m);
	if (r < 0)
		return r;
	r = recv_until(env, f, end, &m);
	if (r == 1 && m.type == SYNC_MSG_START) {
		if (ret)
			*ret = m.start;
		return 0;
	}
	if (r == 1)
		st_note(env, "fake peer: the daemon's first sync message is a %s, not START",
			msg_type_name(m.type));
	else
		st_note(env, "fake peer: no START from the daemon (%s, close code %d '%s')",
			r == 0 ? "timed out" : strerror(-r), f->close_code, f->close_text);
	return r == 0 ? -ETIMEDOUT : r < 0 ? r : -EBADMSG;
}

void st_fake_entry(struct st_fake *f, uint8_t kind, const char *path, size_t path_len,
		   const char *target, struct sync_entry *ret)
{
	struct offer *o = kind == SYNC_KIND_FILE ? offer_find(f, path, path_len) : NULL;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	memset(ret, 0, sizeof(*ret));
	ret->path = path;
	ret->path_len = path_len;
	ret->kind = kind;
	ret->mode = kind == SYNC_KIND_DIR ? 0755 : kind == SYNC_KIND_SYMLINK ? 0777 : 0644;
	ret->mtime_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (o) {
		ret->size = o->len;
		memcpy(ret->hash, o->hash, BLOCKS_HASH_LEN);
	}
	if (kind == SYNC_KIND_SYMLINK && target) {
		ret->target = target;
		ret->target_len = strlen(target);
	}
	ret->seq = ++f->seq;
	ret->nvv = 1;
	memcpy(ret->vv[0].device, f->device, SYNC_DEVICE_LEN);
	ret->vv[0].counter = ret->seq;
}

int st_fake_send_index(struct st_env *env, struct st_fake *f, const struct sync_entry *e,
		       size_t n, bool done)
{
	uint8_t *p = f->tx + FRAME_PAYLOAD_OFFSET, d[9];
	size_t len = st_raw_index(p, SYNC_INDEX_MSG_MAX, e, n);
	int r;

	if (len == 0)
		return -EMSGSIZE;
	r = st_fake_send(env, f, p, len);
	if (r < 0 || !done)
		return r;
	d[0] = SYNC_MSG_INDEX_DONE;
	for (int i = 0; i < 8; i++)
		d[1 + i] = (uint8_t)(f->seq >> (56 - 8 * i));
	return st_fake_send(env, f, d, sizeof(d));
}

void st_fake_forbid(struct st_fake *f, const void *needle, size_t len)
{
	f->forbid_len = len < FORBID_MAX ? len : FORBID_MAX;
	memcpy(f->forbid, needle, f->forbid_len);
}

unsigned st_fake_forbidden_seen(const struct st_fake *f)
{
	return f->forbid_seen;
}
