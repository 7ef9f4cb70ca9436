/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Design note. A connection is a small state machine fed by epoll events
 * and timers; it never blocks. Handshake bytes are gathered one message at
 * a time into hsbuf (at most HS_MSG_MAX bytes: the header says the length
 * before we read the body); the bytes that follow the handshake in the same
 * read already belong to the frame decoder, which holds at most one frame.
 * The initiator's handshake ends when it has sent msg3, but only the
 * responder's first frame shows that msg3 was accepted, so an outbound
 * connection is CONFIRMING until that frame arrives: a responder that hangs
 * up instead (it pinned someone else) is reported as a refused handshake,
 * not as a lost connection. Nothing a peer sends can end the process: a
 * bad byte closes that connection with a log line.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "base/clock.h"
#include "daemon/conn.h"
#include "base/log.h"

#define READ_CHUNK (256 * 1024)
#define READS_PER_EVENT 16

static const char *close_code_name(unsigned code)
{
	switch (code) {
	case FRAME_CLOSE_NORMAL:
		return "shutting down";
	case FRAME_CLOSE_PROTOCOL:
		return "protocol error";
	case FRAME_CLOSE_INTERNAL:
		return "internal error";
	case FRAME_CLOSE_TIMEOUT:
		return "heartbeat timeout";
	case FRAME_CLOSE_REPLACED:
		return "replaced by another connection";
	default:
		return "unknown reason";
	}
}

/* Remembers why c is about to close (for on_closed). */
static void conn_set_error(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void conn_set_error(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
}

static void update_events(struct conn *c)
{
	uint32_t ev = EPOLLIN;

	if (c->state == CONN_CONNECTING)
		ev = EPOLLOUT;
	else if (c->out.len)
		ev |= EPOLLOUT;
	evloop_watch_set(c->env->loop, &c->w, ev);
}

/* Sends what is queued; closes c on a socket error. Returns 0 or -errno. */
static int flush(struct conn *c)
{
	size_t before = c->out.len;
	int r = dio_buf_flush(&c->out, c->w.fd);

	if (r < 0) {
		log_info("lost the connection with %s while sending: %s", c->addr, strerror(-r));
		conn_set_error(c, "lost the connection with %s: %s", c->addr, strerror(-r));
		conn_close(c, -1, NULL);
		return r;
	}
	update_events(c);
	/* Room was made: whatever flushed it (a PONG, the engine itself), the
	 * owner's sender may have waited for room. It must not send from
	 * on_room: this runs inside its own sends. */
	if (c->out.len < before && c->ops->on_room)
		c->ops->on_room(c, c->ud);
	return 0;
}

/* Queues one frame. Returns 0 or -errno (the caller closes). */
static int queue_frame(struct conn *c, enum frame_type type, const uint8_t *p, size_t len,
		       uint64_t ping, uint16_t code, const char *text)
{
	size_t room = type == FRAME_CLOSE  ? FRAME_LEN(2 + FRAME_CLOSE_TEXT_MAX)
		      : type == FRAME_DATA ? FRAME_LEN(len)
					   : FRAME_LEN(8);
	uint64_t epoch = frame_enc_epoch(c->enc);
	uint8_t *dst;
	int n, r;

	r = dio_buf_reserve(&c->out, room, &dst);
	if (r < 0)
		return r;
	if (type == FRAME_CLOSE)
		n = frame_enc_write_close(c->enc, code, text, dst, room);
	else if (type == FRAME_DATA)
		n = frame_enc_write(c->enc, type, p, len, dst, room);
	else
		n = frame_enc_write_ping(c->enc, type, ping, dst, room);
	if (n < 0)
		return n;
	c->out.len += (size_t)n;
	if (frame_enc_epoch(c->enc) != epoch) {
		log_info("switched to the next send key with %s (key %llu)", c->addr,
			 (unsigned long long)frame_enc_epoch(c->enc));
		c->rekey_at_ms = clock_mono_ms() + c->env->rekey_ms;
	}
	return 0;
}

size_t conn_room(const struct conn *c)
{
	size_t max = CONN_OUT_MAX - FRAME_LEN(0) - 64;

	if (c->state != CONN_UP || c->out.len + FRAME_LEN(0) >= max)
		return 0;
	return max - c->out.len - FRAME_LEN(0);
}

int conn_send_data(struct conn *c, const uint8_t *payload, size_t len)
{
	int r;

	if (c->state != CONN_UP && c->state != CONN_CONFIRMING)
		return -ENOTCONN;
	r = queue_frame(c, FRAME_DATA, payload, len, 0, 0, NULL);
	c->data_since_ping = true;
	if (r < 0) {
		log_warn("cannot send to the peer at %s: %s; closing the connection", c->addr,
			 r == -ENOBUFS ? "it does not read what we send" : strerror(-r));
		conn_close(c, FRAME_CLOSE_INTERNAL, "send buffer full");
		return r;
	}
	return flush(c);
}

static int send_hello(struct conn *c)
{
	static const char sw[] = "tandem " TANDEM_VERSION;
	uint8_t msg[CONN_HELLO_MAX];
	int n = conn_hello_write(CONN_PROTO_VERSION, sw, strlen(sw), msg, sizeof(msg));

	if (n < 0)
		return n;
	return conn_send_data(c, msg, (size_t)n);
}

/*
 * A connection with no DATA either way for a heartbeat period gives back
 * the buffers a transfer grew (the send queue and the frame decoder's,
 * 1 MiB or more each) and the heap's free memory: an idle daemon keeps its
 * RSS low (PRODUCT.md §12). A transfer keeps them.
 */
static void trim_if_idle(struct conn *c)
{
	bool idle = !c->data_since_ping;

	c->data_since_ping = false;
	if (!idle || c->state != CONN_UP)
		return;
	bool freed = dio_buf_trim(&c->out);

	freed |= frame_dec_trim(c->dec);
#ifdef __GLIBC__
	if (freed)
		malloc_trim(0);
#endif
}

static int send_ping(struct conn *c, uint64_t now)
{
	int r;

	trim_if_idle(c);
	r = queue_frame(c, FRAME_PING, NULL, 0, (clock_mono_ns() / 1000), 0, NULL);

	c->next_ping_ms = now + c->env->ping_ms;
	if (r < 0) {
		log_warn("cannot send a heartbeat to the peer at %s: %s; closing the connection",
			 c->addr, r == -ENOBUFS ? "it does not read what we send" : strerror(-r));
		conn_close(c, -1, NULL);
		return r;
	}
	return flush(c);
}

/* The handshake is complete on our side: switch to frames. */
static int establish(struct conn *c)
{
	struct hs_keys keys;
	int r;

	r = hs_split(c->hs, &keys);
	if (r == 0)
		r = frame_enc_new(keys.tx, &c->enc);
	if (r == 0) {
		frame_enc_set_rekey_frames(c->enc, c->env->rekey_frames);
		r = frame_dec_new(keys.rx, &c->dec);
	}
	sodium_memzero(&keys, sizeof(keys));
	hs_free(c->hs);
	c->hs = NULL;
	if (r < 0) {
		log_err("cannot set up the channel with %s: %s", c->addr, strerror(-r));
		conn_close(c, -1, NULL);
		return r;
	}
	c->state = c->outbound ? CONN_CONFIRMING : CONN_UP;
	c->last_rx_ms = clock_mono_ms();
	c->rekey_at_ms = c->last_rx_ms + c->env->rekey_ms;
	c->start_us = (clock_mono_ns() / 1000);
	r = send_hello(c);
	if (r == 0)
		r = send_ping(c, c->last_rx_ms);
	if (r < 0)
		return r;
	if (c->state == CONN_UP) {
		c->up_ms = c->last_rx_ms;
		c->ops->on_up(c, c->ud);
	}
	return 0;
}

static void hs_failed(struct conn *c, int r)
{
	const char *why = hs_reason(c->hs);
	char q[HS_REASON_LEN + 8];

	if (!why || !why[0]) {
		snprintf(q, sizeof(q), "%s", strerror(-r));
		why = q;
	}
	if (c->outbound) {
		if (r == -EKEYREJECTED) {
			log_warn("refused the peer at %s: %s; it is not the peer we pinned (an "
				 "impostor, or a wrong --peer)",
				 c->addr, why);
			conn_set_error(c, "refused the peer at %s: %s", c->addr, why);
		} else {
			log_warn("the handshake with %s failed: %s", c->addr, why);
			conn_set_error(c, "the handshake with %s failed: %s", c->addr, why);
		}
	} else {
		log_warn("refused a connection from %s: %s", c->addr, why);
		conn_set_error(c, "refused a connection from %s: %s", c->addr, why);
	}
	conn_close(c, -1, NULL);
}

/* Writes our handshake messages while it is our turn, and finishes. */
static int hs_advance(struct conn *c)
{
	uint8_t msg[HS_MSG_MAX];
	int n, r;

	while (hs_want(c->hs) == HS_WANT_WRITE) {
		n = hs_write(c->hs, msg, sizeof(msg));
		if (n < 0) {
			hs_failed(c, n);
			return n;
		}
		r = dio_buf_append(&c->out, msg, (size_t)n);
		if (r < 0) {
			conn_close(c, -1, NULL);
			return r;
		}
	}
	if (hs_done(c->hs))
		return establish(c);
	return flush(c);
}

/* Takes handshake bytes: at most up to the end of the current message. */
static int hs_feed(struct conn *c, const uint8_t *p, size_t n, size_t *ret_used)
{
	size_t want = c->hsneed ? c->hsneed : HS_HEADER_LEN;
	size_t take = want - c->hslen < n ? want - c->hslen : n;
	int r;

	memcpy(c->hsbuf + c->hslen, p, take);
	c->hslen += take;
	*ret_used = take;
	if (!c->hsneed) {
		r = hs_header_parse(c->hs, c->hsbuf, c->hslen);
		if (r < 0) {
			hs_failed(c, r);
			return r;
		}
		if (r == 0 && c->hslen < HS_HEADER_LEN)
			return 0;
		if ((size_t)r > sizeof(c->hsbuf) || (size_t)r < HS_HEADER_LEN) {
			hs_failed(c, -EBADMSG);
			return -EBADMSG;
		}
		c->hsneed = (size_t)r;
	}
	if (c->hslen < c->hsneed)
		return 0;
	r = hs_read(c->hs, c->hsbuf, c->hsneed);
	c->hslen = 0;
	c->hsneed = 0;
	if (r < 0) {
		hs_failed(c, r);
		return r;
	}
	return hs_advance(c);
}

static void on_hello(struct conn *c, const uint8_t *p, size_t len)
{
	char q[4 * CONN_SOFTWARE_MAX + 8];
	struct conn_hello h;

	if (conn_hello_parse(p, len, &h) < 0) {
		log_warn("the peer at %s sent a malformed HELLO (%zu bytes); closing the "
			 "connection",
			 c->addr, len);
		conn_set_error(c, "the peer at %s sent a malformed HELLO", c->addr);
		conn_close(c, FRAME_CLOSE_PROTOCOL, "malformed HELLO");
		return;
	}
	c->hello_seen = true;
	log_info("the peer at %s runs %s (protocol %u; ours is %u)", c->addr,
		 log_quote(h.software, h.software_len, q, sizeof(q)), h.version,
		 CONN_PROTO_VERSION);
	if (h.version != CONN_PROTO_VERSION)
		log_notice("the peer speaks protocol %u and we speak %u: the newer side talks "
			   "down to the older one; upgrade the older side",
			   h.version, CONN_PROTO_VERSION);
}

/* The dispatch point for application data: the sync engine plugs in here. */
static void on_data(struct conn *c, const uint8_t *p, size_t len)
{
	if (!c->hello_seen) {
		if (len == 0 || p[0] != CONN_MSG_HELLO) {
			log_warn("the peer at %s sent data before its HELLO; closing the "
				 "connection",
				 c->addr);
			conn_close(c, FRAME_CLOSE_PROTOCOL, "data before HELLO");
			return;
		}
		on_hello(c, p, len);
		return;
	}
	if (len > 0 && p[0] == CONN_MSG_HELLO) {
		log_warn("the peer at %s sent a second HELLO; closing the connection", c->addr);
		conn_close(c, FRAME_CLOSE_PROTOCOL, "second HELLO");
		return;
	}
	c->ops->on_msg(c, c->ud, p, len);
}

static void on_frame(struct conn *c, const struct frame *f, uint64_t now)
{
	char q[2 * FRAME_CLOSE_TEXT_MAX + 8];

	c->last_rx_ms = now;
	if (c->state == CONN_CONFIRMING) {
		c->state = CONN_UP;
		c->up_ms = now;
		c->ops->on_up(c, c->ud);
		if (c->state != CONN_UP)
			return; /* replaced at once */
	}
	switch (f->type) {
	case FRAME_DATA:
		c->data_since_ping = true;
		on_data(c, f->payload, f->len);
		break;
	case FRAME_PING:
		if (queue_frame(c, FRAME_PONG, NULL, 0, f->ping, 0, NULL) < 0) {
			conn_close(c, -1, NULL);
			return;
		}
		(void)flush(c);
		break;
	case FRAME_PONG: {
		uint64_t t = (clock_mono_ns() / 1000);
		if (f->ping >= c->start_us && f->ping <= t) {
			uint64_t sample = t - f->ping;
			c->srtt_us =
				c->srtt_us ? (7 * c->srtt_us + sample) / 8 : (sample ? sample : 1);
		}
		break;
	}
	case FRAME_CLOSE:
		log_info("the peer at %s closed the connection: %s (code %u%s%s)", c->addr,
			 close_code_name(f->close_code), f->close_code, f->len ? ", " : "",
			 f->len ? log_quote((const char *)f->payload, f->len, q, sizeof(q)) : "");
		if (f->close_code != FRAME_CLOSE_REPLACED)
			conn_set_error(c, "the peer closed the connection: %s",
				       close_code_name(f->close_code));
		conn_close(c, -1, NULL);
		break;
	}
}

/* Bytes from the socket. Returns < 0 when c was closed. */
static void frame_done(struct conn *c, const struct frame *f, uint64_t now)
{
	if (f->rekey)
		log_info("the peer at %s switched to its next send key (key %llu)", c->addr,
			 (unsigned long long)frame_dec_epoch(c->dec));
	on_frame(c, f, now);
}

static int feed(struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
	struct frame f;
	size_t used;
	int r;

	while (n > 0) {
		if (c->state == CONN_HANDSHAKE) {
			r = hs_feed(c, p, n, &used);
			c->bytes_in += used;
			if (r < 0)
				return r;
		} else if (c->state == CONN_UP || c->state == CONN_CONFIRMING) {
			r = frame_dec_feed(c->dec, p, n, &used, &f);
			if (r < 0) {
				log_warn("closing the connection with %s: %s", c->addr,
					 frame_dec_reason(c->dec));
				conn_set_error(c, "the connection with %s broke: %s", c->addr,
					       frame_dec_reason(c->dec));
				conn_close(c, FRAME_CLOSE_PROTOCOL, "bad frame");
				return r;
			}
			if (r == 1)
				frame_done(c, &f, now);
		} else {
			return -ENOTCONN;
		}
		if (used == 0 && c->state != CONN_DEAD) {
			/* A decoder that takes nothing would spin here forever. */
			log_err("the channel with %s stopped making progress; closing it", c->addr);
			conn_close(c, FRAME_CLOSE_INTERNAL, "internal error");
			return -EIO;
		}
		p += used;
		n -= used;
	}
	return c->state == CONN_DEAD ? -ENOTCONN : 0;
}

/* The peer hung up (n == 0) or the socket failed (err). */
static void on_eof(struct conn *c, int err)
{
	const char *how = err ? strerror(err) : "closed by the peer";

	switch (c->state) {
	case CONN_HANDSHAKE:
	case CONN_CONFIRMING:
		if (c->outbound) {
			log_warn("the peer at %s closed the connection during the handshake (%s): "
				 "it may not be the peer we pinned, or it does not have our "
				 "fingerprint pinned (check --peer on both sides)",
				 c->addr, how);
			conn_set_error(c,
				       "the peer at %s closed the connection during the handshake: "
				       "it may not be the peer we pinned, or it does not have our "
				       "fingerprint pinned",
				       c->addr);
		} else if (c->bytes_in) {
			log_notice("%s closed the connection during the handshake (%s, after %zu "
				   "bytes)",
				   c->addr, how, c->bytes_in);
		} else {
			log_debug("%s connected and left without a word", c->addr);
		}
		break;
	case CONN_UP:
		log_notice("lost the connection with the peer at %s: %s%s", c->addr, how,
			   frame_dec_pending(c->dec) ? " in the middle of a frame" : "");
		conn_set_error(c, "lost the connection with the peer at %s: %s", c->addr, how);
		break;
	default:
		break;
	}
	conn_close(c, -1, NULL);
}

static void on_connected(struct conn *c)
{
	int err = 0, r;
	socklen_t sl = sizeof(err);

	if (getsockopt(c->w.fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
		err = errno;
	if (err == EINPROGRESS)
		return;
	if (err) {
		log_info("cannot connect to the peer at %s: %s", c->addr, strerror(err));
		conn_set_error(c, "cannot connect to the peer at %s: %s", c->addr, strerror(err));
		conn_close(c, -1, NULL);
		return;
	}
	log_debug("connected to %s, starting the handshake", c->addr);
	c->state = CONN_HANDSHAKE;
	c->deadline_ms = clock_mono_ms() + c->env->handshake_ms;
	r = hs_new(HS_INITIATOR, c->env->id, c->env->peer, &c->hs);
	if (r < 0) {
		log_err("cannot start a handshake: %s", strerror(-r));
		conn_close(c, -1, NULL);
		return;
	}
	(void)hs_advance(c);
}

/* Reads the rest of a frame's body into the decoder (frame_dec_body_room).
 * Returns 1 when there may be more to read, 0 when the socket is empty,
 * -1 when the connection ended. */
static int body_read(struct conn *c, uint8_t *at, size_t room, uint64_t now)
{
	struct frame f;
	ssize_t n;
	int r;

	do
		n = recv(c->w.fd, at, room, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return -1;
	if (n <= 0) {
		on_eof(c, n < 0 ? errno : 0);
		return -1;
	}
	r = frame_dec_body_add(c->dec, (size_t)n, &f);
	if (r < 0) {
		log_warn("closing the connection with %s: %s", c->addr, frame_dec_reason(c->dec));
		conn_set_error(c, "the connection with %s broke: %s", c->addr,
			       frame_dec_reason(c->dec));
		conn_close(c, FRAME_CLOSE_PROTOCOL, "bad frame");
		return -1;
	}
	if (r == 1)
		frame_done(c, &f, now);
	return c->state == CONN_DEAD ? -1 : 1;
}

static void on_event(struct ev_watch *w, uint32_t events)
{
	/* Ciphertext only (the handshake is public), so it need not be wiped;
	 * one buffer for all connections: only the loop thread reads. */
	static uint8_t buf[READ_CHUNK];
	struct conn *c = (struct conn *)w;
	uint64_t now = clock_mono_ms();

	if (c->state == CONN_DEAD)
		return;
	if (c->state == CONN_CONNECTING) {
		on_connected(c);
		return;
	}
	if (events & EPOLLOUT) {
		if (flush(c) < 0)
			return;
		if (c->state == CONN_UP && c->ops->on_room)
			c->ops->on_room(c, c->ud);
	}
	if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return;
	for (int i = 0; i < READS_PER_EVENT; i++) {
		size_t room = 0;
		uint8_t *direct = c->state == CONN_UP || c->state == CONN_CONFIRMING
					  ? frame_dec_body_room(c->dec, &room)
					  : NULL;
		if (direct) {
			/* the rest of a large frame's body: straight into the
			 * decoder, not copied there from buf */
			if (body_read(c, direct, room, now) < 0)
				break;
			continue;
		}
		ssize_t n = recv(c->w.fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			on_eof(c, n < 0 ? errno : 0);
			break;
		}
		if (feed(c, buf, (size_t)n, now) < 0)
			break;
	}
}

static struct conn *conn_new(const struct conn_env *env, const struct conn_ops *ops, void *ud,
			     uint64_t serial, int fd, bool outbound, const char *addr)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->w.fd = fd;
	c->w.on_event = on_event;
	c->w.ud = c;
	c->env = env;
	c->ops = ops;
	c->ud = ud;
	c->path = CONN_PATH_DIRECT;
	c->outbound = outbound;
	c->serial = serial;
	dio_buf_init(&c->out, CONN_OUT_MAX);
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	return c;
}

int conn_dial(const struct conn_env *env, const struct conn_ops *ops, void *ud, uint64_t serial,
	      const struct record_addr *a, struct conn **ret, struct err *err)
{
	char text[RECORD_ADDR_TEXT_MAX];
	struct sockaddr_storage ss;
	socklen_t sl;
	struct conn *c;
	int fd, r, one = 1;

	err_clear(err);
	record_addr_format(a, text);
	record_addr_to_sockaddr(a, &ss, &sl);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = conn_new(env, ops, ud, serial, fd, true, text);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		r = -errno;
		log_info("cannot connect to the peer at %s: %s", c->addr, strerror(-r));
		err_set(err, "cannot connect to the peer at %s: %s", c->addr, strerror(-r));
		goto fail;
	}
	c->state = CONN_CONNECTING;
	c->deadline_ms = clock_mono_ms() + env->connect_ms;
	r = evloop_watch_add(env->loop, &c->w, EPOLLOUT);
	if (r < 0)
		goto fail;
	c->w.events = EPOLLOUT;
	log_debug("dialing the peer at %s", c->addr);
	*ret = c;
	return 0;
fail:
	close(fd);
	dio_buf_free(&c->out);
	free(c);
	return r;
}

int conn_adopt(const struct conn_env *env, const struct conn_ops *ops, void *ud, uint64_t serial,
	       int fd, bool initiator, enum conn_path path, const char *addr, struct conn **ret)
{
	struct conn *c;
	int r;

	c = conn_new(env, ops, ud, serial, fd, initiator, addr);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->path = path;
	if (initiator) {
		/* as a dial whose connect completed: the first EPOLLOUT starts
		 * the handshake (on_connected), outside the caller's call */
		c->state = CONN_CONNECTING;
		c->deadline_ms = clock_mono_ms() + env->connect_ms;
		r = evloop_watch_add(env->loop, &c->w, EPOLLOUT);
	} else {
		c->state = CONN_HANDSHAKE;
		c->deadline_ms = clock_mono_ms() + env->handshake_ms;
		r = hs_new(HS_RESPONDER, env->id, env->peer, &c->hs);
		if (r == 0)
			r = evloop_watch_add(env->loop, &c->w, EPOLLIN);
	}
	if (r < 0) {
		hs_free(c->hs);
		close(fd);
		dio_buf_free(&c->out);
		free(c);
		return r;
	}
	*ret = c;
	return 0;
}

int conn_accept(const struct conn_env *env, const struct conn_ops *ops, void *ud, uint64_t serial,
		int fd, const struct sockaddr_storage *ss, struct conn **ret)
{
	struct record_addr a = {0};
	char text[RECORD_ADDR_TEXT_MAX];
	int r, one = 1;

	(void)record_addr_from_sockaddr((const struct sockaddr *)ss, &a);
	record_addr_format(&a, text);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	r = conn_adopt(env, ops, ud, serial, fd, false, CONN_PATH_DIRECT, text, ret);
	if (r == 0)
		log_debug("accepted a connection from %s", text);
	return r;
}

void conn_close(struct conn *c, int code, const char *text)
{
	bool was_up = c->state == CONN_UP;
	uint8_t sink[4096];

	if (c->state == CONN_DEAD)
		return;
	if (code >= 0 && c->enc && (c->state == CONN_UP || c->state == CONN_CONFIRMING)) {
		if (queue_frame(c, FRAME_CLOSE, NULL, 0, 0, (uint16_t)code, text) == 0)
			(void)dio_buf_flush(&c->out, c->w.fd);
	}
	c->state = CONN_DEAD;
	if (c->w.fd >= 0) {
		/* Read what is pending so close() sends FIN, not a reset that could
		 * destroy our CLOSE frame before the peer reads it. */
		for (int i = 0; i < 4; i++)
			if (recv(c->w.fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
				break;
		(void)shutdown(c->w.fd, SHUT_WR);
		evloop_watch_close(c->env->loop, &c->w);
	}
	hs_free(c->hs);
	c->hs = NULL;
	frame_enc_free(c->enc);
	c->enc = NULL;
	frame_dec_free(c->dec);
	c->dec = NULL;
	dio_buf_free(&c->out);
	c->ops->on_closed(c, c->ud, was_up, c->error[0] ? c->error : NULL);
}

void conn_tick(struct conn *c, uint64_t now)
{
	switch (c->state) {
	case CONN_CONNECTING:
		if (now >= c->deadline_ms) {
			log_info("cannot connect to the peer at %s: no answer within %u ms",
				 c->addr, c->env->connect_ms);
			conn_set_error(c,
				       "cannot connect to the peer at %s: no answer within "
				       "%u ms",
				       c->addr, c->env->connect_ms);
			conn_close(c, -1, NULL);
		}
		break;
	case CONN_HANDSHAKE:
	case CONN_CONFIRMING:
		if (now >= c->deadline_ms) {
			log_warn("the handshake with %s did not finish within %u ms; closing the "
				 "connection",
				 c->addr, c->env->handshake_ms);
			conn_set_error(c, "the handshake with %s did not finish within %u ms",
				       c->addr, c->env->handshake_ms);
			conn_close(c, -1, NULL);
		} else if (c->state == CONN_CONFIRMING && now >= c->next_ping_ms) {
			(void)send_ping(c, now);
		}
		break;
	case CONN_UP:
		if (now - c->last_rx_ms >= c->env->dead_ms) {
			log_warn("the peer at %s is dead: no frame for %llu ms; closing the "
				 "connection",
				 c->addr, (unsigned long long)(now - c->last_rx_ms));
			conn_set_error(c,
				       "the peer at %s stopped answering (no frame for %llu "
				       "ms)",
				       c->addr, (unsigned long long)(now - c->last_rx_ms));
			conn_close(c, FRAME_CLOSE_TIMEOUT, "no heartbeat");
		} else if (now >= c->rekey_at_ms) {
			/* the key is an hour old: this PING is its last frame */
			frame_enc_rekey(c->enc);
			(void)send_ping(c, now);
		} else if (now >= c->next_ping_ms) {
			(void)send_ping(c, now);
		}
		break;
	case CONN_DEAD:
		break;
	}
}

uint64_t conn_deadline(const struct conn *c)
{
	uint64_t t;

	switch (c->state) {
	case CONN_CONNECTING:
	case CONN_HANDSHAKE:
		return c->deadline_ms;
	case CONN_CONFIRMING:
		return c->deadline_ms < c->next_ping_ms ? c->deadline_ms : c->next_ping_ms;
	case CONN_UP:
		t = c->last_rx_ms + c->env->dead_ms;
		t = t < c->rekey_at_ms ? t : c->rekey_at_ms;
		return t < c->next_ping_ms ? t : c->next_ping_ms;
	default:
		return UINT64_MAX;
	}
}

void conn_free(struct conn *c)
{
	if (!c)
		return;
	if (c->state != CONN_DEAD)
		conn_close(c, -1, NULL);
	free(c);
}
