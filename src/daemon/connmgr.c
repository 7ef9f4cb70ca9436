/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Design note: who dials. Both peers may accept connections, and if both
 * dialed at once they would end up with two connections (or none, each
 * closing the other's). So one side is the designated dialer: the peer
 * whose record says it accepts connections is dialed at once by the other
 * when that other side has the lower fingerprint, or accepts nothing
 * itself. The other side waits for the dial, and dials too only when no
 * connection is up fallback_ms after it got the record (the designated
 * dialer may be unable to reach it, e.g. behind NAT). When two connections
 * end up established anyway, both sides keep the same one: of two made by
 * the same side the newer (that side would not dial twice unless it had
 * restarted, so the older one is stale), else the one made by the lower
 * fingerprint. The loser gets CLOSE "replaced".
 *
 * Relayed connections (docs/DAEMON.md, "Two transports"): with
 * --relay-data fallback, when no direct connection is up relay_after_ms
 * after we started waiting, we ask the relay to splice us with the peer
 * (relay_splice_dial on the splicer's thread; the peer does the same at
 * about the same time, since it runs the same rules); with always at once
 * and never directly. Side 1 of the splice is the channel's initiator. While
 * the connection is relayed, direct rounds go on; a direct connection that
 * comes up replaces the relayed one on both sides (connpolicy_keep_new:
 * direct wins whatever else), and the engine starts over on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "base/clock.h"
#include "daemon/conn.h"
#include "daemon/connmgr.h"
#include "daemon/connpolicy.h"
#include "daemon/splicer.h"
#include "identity/derive.h"
#include "base/log.h"

static void on_up(struct conn *c, void *ud);
static void on_msg(struct conn *c, void *ud, const uint8_t *msg, size_t len);
static void on_room(struct conn *c, void *ud);
static void on_closed(struct conn *c, void *ud, bool was_up, const char *error);
static void relay_failed(struct connmgr *m, uint64_t now, uint32_t retry_after_s);

static const struct conn_ops conn_ops = {
	.on_up = on_up, .on_msg = on_msg, .on_room = on_room, .on_closed = on_closed};

static void add(struct connmgr *m, struct conn *c)
{
	c->next = m->conns;
	m->conns = c;
	m->nconns++;
}

static bool peer_accepts(const struct connmgr *m)
{
	return m->have_rec && (m->rec.flags & RECORD_FLAG_INBOUND) && m->rec.naddrs > 0;
}

static bool we_accept(const struct connmgr *m)
{
	return m->cfg.we_accept;
}

static bool we_dial_first(const struct connmgr *m)
{
	return connpolicy_dial_first(peer_accepts(m), we_accept(m), m->cfg.self_lower);
}

static void addrs_format(const struct peer_record *rec, char *out, size_t len)
{
	size_t o = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < rec->naddrs && o + RECORD_ADDR_TEXT_MAX + 2 < len; i++) {
		char a[RECORD_ADDR_TEXT_MAX];
		record_addr_format(&rec->addrs[i], a);
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? ", " : "", a);
	}
	if (!rec->naddrs)
		snprintf(out, len, "no address");
}

/* The facts the policy decides on (connpolicy.h). */
static struct connpolicy_state policy_state(const struct connmgr *m)
{
	return (struct connpolicy_state){
		.relay = m->splicer ? m->cfg.relay : CONNPOLICY_RELAY_NEVER,
		.stopping = m->stopping,
		.have_rec = m->have_rec,
		.peer_accepts = peer_accepts(m),
		.we_accept = we_accept(m),
		.self_lower = m->cfg.self_lower,
		.active = m->active != NULL,
		.active_path = m->active ? m->active->path : CONN_PATH_DIRECT,
		.dialing = m->dialing != NULL,
		.relay_dialing = m->relay_pending || (m->splicer && splicer_busy(m->splicer)),
		.waiting_since_ms = m->waiting_since_ms,
		.backoff_until_ms = m->backoff_until_ms,
		.relay_backoff_until_ms = m->relay_backoff_until_ms,
		.fallback_ms = m->cfg.fallback_ms,
		.relay_after_ms = m->cfg.relay_after_ms,
	};
}

/* Decides when to start the next dialing round on each path. */
static void plan(struct connmgr *m, uint64_t now)
{
	struct connpolicy_state s = policy_state(m);
	struct connpolicy_action a = connpolicy_next(&s, now);
	uint64_t d = connpolicy_due(&s, now, CONN_PATH_DIRECT);
	uint64_t r = connpolicy_due(&s, now, CONN_PATH_RELAYED);

	/* each path has its own timer (connpolicy_next names only the
	 * earlier of the two) */
	m->next_dial_ms = d == UINT64_MAX ? 0 : d;
	m->next_relay_ms = r == UINT64_MAX ? 0 : r;
	if (a.verb == CONNPOLICY_NO_WAY && !m->warned_no_inbound) {
		log_err("neither this peer (--listen none) nor the other one accepts "
			"connections, so they cannot meet; start one of them without "
			"--listen none");
		connmgr_set_error(m, "neither peer accepts connections (both run with "
				     "--listen none); restart one of them without it");
		m->warned_no_inbound = true;
	}
}

static void round_failed(struct connmgr *m, uint64_t now)
{
	uint64_t until =
		connpolicy_retry_at(&m->cfg.reconnect, now, m->failures, randombytes_random());
	uint32_t ms = (uint32_t)(until - now);
	char addrs[RECORD_MAX_ADDRS * (RECORD_ADDR_TEXT_MAX + 2)];

	m->failures++;
	m->backoff_until_ms = until;
	addrs_format(&m->rec, addrs, sizeof(addrs));
	if (m->failures == 1 || m->failures % 10 == 0)
		log_info("cannot reach the peer at %s%s; trying again in %u ms (and asking the "
			 "relay whether its address changed)",
			 addrs, m->active ? " directly (connected relayed meanwhile)" : "", ms);
	m->ops->want_record(m->ud);
	plan(m, now);
}

/* Tries the next address of the round; ends the round when none is left. */
static void dial_next(struct connmgr *m, uint64_t now)
{
	while (m->dial_next < m->dial_n) {
		const struct record_addr *a = &m->rec.addrs[m->dial_order[m->dial_next++]];
		struct conn *c;
		struct err err;
		if (conn_dial(&m->cfg.env, &conn_ops, m, ++m->serial, a, &c, &err) == 0) {
			add(m, c);
			m->dialing = c;
			return;
		}
		if (err_is_set(&err))
			connmgr_set_error(m, "%s", err.msg);
	}
	round_failed(m, now);
}

static void round_start(struct connmgr *m, uint64_t now)
{
	m->next_dial_ms = 0;
	m->dial_n = 0;
	m->dial_next = 0;
	/* IPv6 first, then IPv4, each in the record's order. */
	for (int pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < m->rec.naddrs; i++)
			if ((m->rec.addrs[i].family == 6) == (pass == 0))
				m->dial_order[m->dial_n++] = (uint8_t)i;
	log_debug("dialing the peer (%s)", we_dial_first(m) ? "we dial first" : "fallback");
	dial_next(m, now);
}

void connmgr_on_record(struct connmgr *m, const struct peer_record *rec)
{
	uint64_t now = clock_mono_ms();
	bool first = !m->have_rec;
	bool changed = first || rec->flags != m->rec.flags || rec->naddrs != m->rec.naddrs ||
		       memcmp(rec->addrs, m->rec.addrs, sizeof(rec->addrs)) != 0;
	char addrs[RECORD_MAX_ADDRS * (RECORD_ADDR_TEXT_MAX + 2)];

	m->rec = *rec;
	m->have_rec = true;
	if (changed) {
		addrs_format(rec, addrs, sizeof(addrs));
		log_info("found the peer's record on the relay: %s%s", addrs,
			 (rec->flags & RECORD_FLAG_INBOUND) ? "" : " (it accepts no connections)");
		/* New addresses: no reason to wait out the old ones' backoff. */
		m->backoff_until_ms = 0;
	}
	if (first && !m->active)
		m->waiting_since_ms = now;
	plan(m, now);
}

/* Asks the relay to splice us with the peer (its record gave us its key). */
static void relay_dial(struct connmgr *m)
{
	uint8_t token[RELAY_SPLICE_TOKEN_LEN];
	time_t t = time(NULL) + (time_t)m->cfg.clock_offset_s;
	uint64_t bucket = derive_bucket(t, RELAY_BUCKET_SECONDS);
	int side = relay_splice_side(m->cfg.env.id, m->rec.pk);

	m->next_relay_ms = 0;
	if (relay_splice_token(m->cfg.env.id, m->rec.pk, bucket, token) < 0) {
		/* the record was opened with this key, so it is a usable one:
		 * only a record of our own key could get here */
		connmgr_set_error(m, "cannot compute the relayed connection's token from the "
				     "peer's key");
		m->relay_backoff_until_ms = clock_mono_ms() + m->cfg.relay_off_ms;
		return;
	}
	log_debug("asking the %s to splice us with the peer (side %d, waiting at most %u ms)",
		  m->relay_name, side, m->cfg.splice_timeout_ms);
	splicer_dial(m->splicer, token, side, (int)m->cfg.splice_timeout_ms);
	sodium_memzero(token, sizeof(token));
}

/* A relayed attempt did not give a connection: when to ask again. */
static void relay_failed(struct connmgr *m, uint64_t now, uint32_t retry_after_s)
{
	uint64_t until = connpolicy_retry_at(&m->cfg.reconnect, now, m->relay_failures,
					     randombytes_random());

	m->relay_failures++;
	if (retry_after_s && now + (uint64_t)retry_after_s * 1000 > until)
		until = now + (uint64_t)retry_after_s * 1000;
	m->relay_backoff_until_ms = until;
	plan(m, now);
}

/* The outcome of a relayed attempt (the splicer's notify fd). */
static void on_splice(struct ev_watch *w, uint32_t events)
{
	struct connmgr *m = w->ud;
	struct splicer_result res;
	uint64_t now = clock_mono_ms();
	struct conn *c;
	int r, side;

	(void)events;
	if (!splicer_take(m->splicer, &res))
		return;
	if (res.err == 0) {
		if (m->stopping) {
			close(res.fd);
			return;
		}
		/* the dialer's socket blocks; the loop's must not */
		int fl = fcntl(res.fd, F_GETFL);
		if (fl < 0 || fcntl(res.fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			log_warn("cannot take the relayed connection: %s", strerror(errno));
			close(res.fd);
			relay_failed(m, now, 0);
			return;
		}
		(void)setsockopt(res.fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		side = relay_splice_side(m->cfg.env.id, m->rec.pk);
		r = conn_adopt(&m->cfg.env, &conn_ops, m, ++m->serial, res.fd, side == 1,
			       CONN_PATH_RELAYED, m->relay_name, &c);
		if (r < 0) {
			log_warn("cannot take the relayed connection: %s", strerror(-r));
			relay_failed(m, now, 0);
			return;
		}
		add(m, c);
		m->relay_pending = c;
		log_info("the %s spliced us with the peer; opening the channel over it (%s)",
			 m->relay_name,
			 side == 1 ? "we start the handshake" : "it starts the handshake");
		plan(m, now);
		return;
	}
	switch (res.err) {
	case -ECANCELED:
		/* a direct connection came up meanwhile, or we are stopping */
		plan(m, now);
		return;
	case -ETIMEDOUT:
		/*
		 * The peer did not come within the relay's wait (or ours). Near
		 * the top of an hour it may have waited under the next bucket's
		 * token: both ask again at once, each with its clock's bucket
		 * now, which then match (docs/PROTOCOL.md §6). Not at once when
		 * the answer came fast: that is no wait, but a relay in trouble.
		 */
		log_debug("relayed connection: %s", res.message);
		if (!m->active)
			connmgr_set_error(m,
					  "waiting for the peer at the %s: it did not come within "
					  "%" PRIu64 " s",
					  m->relay_name, res.took_ms / 1000);
		if (res.took_ms >= 1000) {
			m->relay_failures = 0;
			m->relay_backoff_until_ms = now;
			plan(m, now);
		} else {
			relay_failed(m, now, 0);
		}
		return;
	case -ENOENT:
	case -EPROTO:
	case -EPROTONOSUPPORT:
	case -EINVAL:
		/* this relay does not splice (404, 405, 501, not the protocol) or
		 * cannot be dialed for it: say so once, ask again only rarely */
		if (!m->relay_off_said)
			log_warn("no relayed connections: %s; asking the relay again every %u s",
				 res.message, m->cfg.relay_off_ms / 1000);
		m->relay_off_said = true;
		connmgr_set_error(m, "no relayed connections: %s", res.message);
		m->relay_failures++;
		m->relay_backoff_until_ms = now + m->cfg.relay_off_ms;
		plan(m, now);
		return;
	case -EAGAIN:
	case -EBUSY:
		/* the relay's limits (429, 503): wait what it asks at least */
		log_info("relayed connection: %s; asking again in %u s at the earliest",
			 res.message, res.retry_after ? res.retry_after : 1);
		connmgr_set_error(m, "%s", res.message);
		relay_failed(m, now, res.retry_after ? res.retry_after : 1);
		return;
	case -EEXIST:
		/* 409: the token is spliced already (our own old session the
		 * relay has not seen end yet) or a newer attempt of ours took
		 * this one's place: back off and ask again */
		log_info("relayed connection: %s", res.message);
		relay_failed(m, now, 0);
		return;
	case -EACCES:
		/* 401: the relay does not take our token; nothing we send would
		 * change that soon */
		if (m->relay_failures == 0 || m->relay_failures % 10 == 0)
			log_warn("relayed connection: %s", res.message);
		connmgr_set_error(m, "%s", res.message);
		relay_failed(m, now, 0);
		return;
	default:
		/* cannot reach the relay (refused, unreachable, no name) */
		if (m->relay_failures == 0 || m->relay_failures % 10 == 0)
			log_info("relayed connection: %s", res.message);
		if (!m->active)
			connmgr_set_error(m, "%s", res.message);
		relay_failed(m, now, 0);
		return;
	}
}

/* "relay HOST:PORT" of url, for messages and the status's peer_addr. */
static void relay_name_set(struct connmgr *m, const char *url)
{
	const char *h = strstr(url, "://");
	size_t n;

	h = h ? h + 3 : url;
	n = strcspn(h, "/?#");
	snprintf(m->relay_name, sizeof(m->relay_name), "relay %.*s",
		 (int)(n < sizeof(m->relay_name) - 7 ? n : sizeof(m->relay_name) - 7), h);
}

int connmgr_relay_start(struct connmgr *m, struct err *err)
{
	int r;

	err_clear(err);
	if (m->cfg.relay == CONNPOLICY_RELAY_NEVER)
		return 0;
	relay_name_set(m, m->cfg.relay_url);
	r = splicer_start(m->cfg.relay_url, &m->splicer, err);
	if (r < 0)
		return r;
	m->splice_w.fd = splicer_notify_fd(m->splicer);
	m->splice_w.on_event = on_splice;
	m->splice_w.ud = m;
	r = evloop_watch_add(m->cfg.env.loop, &m->splice_w, EPOLLIN);
	if (r < 0) {
		m->splice_w.fd = -1;
		splicer_stop(m->splicer);
		m->splicer = NULL;
		err_set(err, "cannot watch the relayed connections' dialer: %s", strerror(-r));
		return r;
	}
	plan(m, clock_mono_ms());
	return 0;
}

static struct conn *pick(const struct connmgr *m, struct conn *old, struct conn *new)
{
	struct connpolicy_cand o = {.outbound = old->outbound, .path = old->path};
	struct connpolicy_cand n = {.outbound = new->outbound, .path = new->path};

	return connpolicy_keep_new(&o, &n, m->cfg.self_lower) ? new : old;
}

static void on_up(struct conn *c, void *ud)
{
	struct connmgr *m = ud;
	struct conn *keep, *lose;

	if (c == m->dialing)
		m->dialing = NULL;
	if (c == m->relay_pending) {
		m->relay_pending = NULL;
		m->relay_failures = 0;
		m->relay_backoff_until_ms = 0;
	}
	if (c->path == CONN_PATH_DIRECT) {
		m->failures = 0;
		m->backoff_until_ms = 0;
	}
	/* a direct connection is up: a relayed attempt waiting at the relay
	 * is moot (its socket, should it come anyway, loses to this one) */
	if (c->path == CONN_PATH_DIRECT && m->splicer)
		splicer_cancel(m->splicer);
	if (!m->active) {
		m->active = c;
		m->established++;
		m->next_dial_ms = 0;
		m->connected_since = time(NULL);
		log_notice("connected to the peer %s at %s (%s)%s", m->cfg.peer_text, c->addr,
			   c->path == CONN_PATH_RELAYED ? "relayed, spliced by the relay"
			   : c->outbound		? "we dialed"
							: "it dialed",
			   m->established > 1 ? ", again" : "");
		m->ops->on_active(m->ud, c, false);
		plan(m, clock_mono_ms());
		return;
	}
	keep = pick(m, m->active, c);
	lose = keep == c ? m->active : c;
	if (keep->path != lose->path)
		log_notice("%s: keeping the %s connection %s %s, closing the %s one %s %s",
			   keep->path == CONN_PATH_DIRECT ? "the peer is reachable directly again"
							  : "two connections to the peer",
			   conn_path_name(keep->path), keep->outbound ? "to" : "from", keep->addr,
			   conn_path_name(lose->path), lose->outbound ? "to" : "from", lose->addr);
	else
		log_info(
			"two connections to the peer: keeping the one %s %s, closing the one %s %s",
			keep->outbound ? "to" : "from", keep->addr, lose->outbound ? "to" : "from",
			lose->addr);
	m->active = keep;
	if (keep == c)
		m->ops->on_active(m->ud, c, true);
	conn_close(lose, FRAME_CLOSE_REPLACED, "replaced by another connection");
	plan(m, clock_mono_ms());
}

static void on_closed(struct conn *c, void *ud, bool was_up, const char *error)
{
	struct connmgr *m = ud;
	uint64_t now = clock_mono_ms();

	(void)was_up;
	if (error)
		connmgr_set_error(m, "%s", error);
	if (c == m->dialing) {
		m->dialing = NULL;
		if (!m->stopping && !(m->active && m->active->path == CONN_PATH_DIRECT))
			dial_next(m, now);
		return;
	}
	if (c == m->relay_pending) {
		/* spliced, but the channel did not come up over it */
		m->relay_pending = NULL;
		if (!m->stopping)
			relay_failed(m, now, 0);
		return;
	}
	if (c != m->active)
		return;
	m->active = NULL;
	m->connected_since = 0;
	m->ops->on_inactive(m->ud);
	if (m->stopping)
		return;
	m->waiting_since_ms = now;
	m->failures = 0;
	m->backoff_until_ms = connpolicy_retry_at(&m->cfg.reconnect, now, 0, randombytes_random());
	if (c->path == CONN_PATH_RELAYED) {
		m->relay_failures = 0;
		m->relay_backoff_until_ms = m->backoff_until_ms;
	}
	m->ops->want_record(m->ud);
	plan(m, now);
}

/*
 * Room for one more connection? When full, the oldest inbound connection
 * still in its handshake makes way: a burst of silent connections (a port
 * scan) must not keep the real peer out until their handshakes time out.
 */
static bool make_room(struct connmgr *m)
{
	struct conn *oldest = NULL;
	unsigned live = 0;

	for (struct conn *c = m->conns; c; c = c->next) {
		if (c->state == CONN_DEAD)
			continue;
		live++;
		if (!c->outbound && c->state == CONN_HANDSHAKE &&
		    (!oldest || c->serial < oldest->serial))
			oldest = c;
	}
	if (live < CONN_MAX)
		return true;
	if (!oldest)
		return false;
	log_info("too many connections: dropping the one from %s, still in its handshake",
		 oldest->addr);
	conn_close(oldest, -1, NULL);
	return true;
}

void connmgr_on_listen(struct ev_watch *w, uint32_t events)
{
	struct connmgr *m = w->ud;

	(void)events;
	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(w->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("cannot accept a connection: %s", strerror(errno));
			return;
		}
		if (m->stopping || !make_room(m)) {
			log_debug("refusing a connection: %u connections open already", m->nconns);
			close(fd);
			continue;
		}
		struct conn *c;
		if (conn_accept(&m->cfg.env, &conn_ops, m, ++m->serial, fd, &ss, &c) < 0)
			log_warn("cannot take a connection: out of resources");
		else
			add(m, c);
	}
}

static void on_msg(struct conn *c, void *ud, const uint8_t *msg, size_t len)
{
	struct connmgr *m = ud;

	if (c != m->active) {
		log_debug("ignoring a DATA message from %s: not the active connection", c->addr);
		return;
	}
	m->ops->on_msg(m->ud, msg, len);
}

static void on_room(struct conn *c, void *ud)
{
	struct connmgr *m = ud;

	if (c == m->active)
		m->ops->on_room(m->ud);
}

void connmgr_init(struct connmgr *m, const struct connmgr_cfg *cfg, const struct connmgr_ops *ops,
		  void *ud, uint64_t now)
{
	memset(m, 0, sizeof(*m));
	m->punch.fd = -1;
	m->cfg = *cfg;
	m->ops = ops;
	m->ud = ud;
	m->waiting_since_ms = now;
	m->splice_w.fd = -1;
}

void connmgr_set_error(struct connmgr *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->last_error, sizeof(m->last_error), fmt, ap);
	va_end(ap);
}

int connmgr_send(struct connmgr *m, const uint8_t *msg, size_t len)
{
	if (!m->active || m->active->state != CONN_UP)
		return -ENOTCONN;
	return conn_send_data(m->active, msg, len);
}

size_t connmgr_room(const struct connmgr *m)
{
	return m->active ? conn_room(m->active) : 0;
}

void connmgr_close_active(struct connmgr *m, const char *why)
{
	if (!m->active) {
		log_warn("protocol error from the peer: %s", why);
		return;
	}
	log_warn("protocol error from the peer at %s: %s; closing the connection", m->active->addr,
		 why);
	conn_close(m->active, FRAME_CLOSE_PROTOCOL, why);
}

void connmgr_status(const struct connmgr *m, struct connmgr_status *ret)
{
	const struct conn *a = m->active;

	memset(ret, 0, sizeof(*ret));
	ret->connected = a != NULL;
	if (a) {
		ret->path = a->path;
		snprintf(ret->peer_addr, sizeof(ret->peer_addr), "%s", a->addr);
		ret->srtt_us = a->srtt_us;
	}
	ret->connected_since = m->connected_since;
	ret->reconnects = m->established ? m->established - 1 : 0;
	snprintf(ret->last_error, sizeof(ret->last_error), "%s", m->last_error);
}

void connmgr_stop(struct connmgr *m)
{
	m->stopping = true;
}

/*
 * Hole punching (punch.h, docs/DAEMON.md "Hole punching"): one more way to
 * a direct connection, next to dialing. When the peer's record carries the
 * address the relay saw its punch port as, both sides connect() from their
 * punch ports towards each other at the same wall-clock slot; a connected
 * socket becomes a direct connection like a dialed one, the side with the
 * lower fingerprint running the handshake as initiator (both know who
 * that is, so the roles always match).
 */
static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool direct_up(const struct connmgr *m)
{
	return m->active && m->active->path == CONN_PATH_DIRECT;
}

static void punch_connected(struct connmgr *m, int fd)
{
	char to[RECORD_ADDR_TEXT_MAX];
	struct conn *c;

	record_addr_format(&m->punch.to, to);
	log_info("hole punch to %s connected (try %u); the handshake runs on it (%s)", to,
		 m->punch.tries, m->cfg.self_lower ? "we initiate" : "the peer initiates");
	if (m->stopping || !make_room(m)) {
		close(fd);
		return;
	}
	if (conn_adopt(&m->cfg.env, &conn_ops, m, ++m->serial, fd, m->cfg.self_lower,
		       CONN_PATH_DIRECT, to, &c) < 0)
		log_warn("cannot take the punched connection: out of resources");
	else
		add(m, c);
}

static void punch_step(struct connmgr *m, uint64_t now)
{
	struct punch_facts f;
	uint64_t wall, slot;
	int fd = -1;

	if (m->punch.running) {
		if (direct_up(m) || m->stopping) {
			punch_attempt_stop(&m->punch);
			return;
		}
		if (now < punch_attempt_deadline(&m->punch))
			return;
		switch (punch_attempt_poll(&m->punch, now, &fd)) {
		case PUNCH_CONNECTED:
			punch_connected(m, fd);
			break;
		case PUNCH_GAVE_UP: {
			char to[RECORD_ADDR_TEXT_MAX];
			record_addr_format(&m->punch.to, to);
			log_info("hole punch to %s: no connection within %u ms (%u tries, "
				 "last: %s); next at a later slot",
				 to, PUNCH_WINDOW_MS, m->punch.tries,
				 m->punch.last_error ? strerror(-m->punch.last_error)
						     : "no answer");
			break;
		}
		case PUNCH_RUNNING:
			break;
		}
		return;
	}
	wall = wall_ms();
	f = (struct punch_facts){
		.have_port = m->cfg.punch_port != 0,
		.peer_observed = m->have_rec && m->rec.has_observed,
		.family_ok = true,
		.direct_up = direct_up(m),
		.stopping = m->stopping,
		.now_ms = wall,
		.since_ms = wall - (now - m->waiting_since_ms),
		.last_slot_ms = m->punch_last_slot_ms,
	};
	slot = punch_next_slot(&f);
	m->punch_at_ms = 0;
	if (!slot)
		return;
	m->punch_slot_ms = slot;
	m->punch_at_ms = now + (slot > wall ? slot - wall : 0);
	if (now < m->punch_at_ms)
		return;
	m->punch_at_ms = 0;
	m->punch_last_slot_ms = slot;
	m->punches++;
	punch_attempt_start(&m->punch, m->cfg.punch_port, &m->rec.observed, now, PUNCH_WINDOW_MS);
	log_debug("hole punch %u from port %u towards the peer's observed address", m->punches,
		  m->cfg.punch_port);
}

void connmgr_tick(struct connmgr *m, uint64_t now)
{
	punch_step(m, now);
	for (struct conn *c = m->conns; c; c = c->next)
		if (conn_deadline(c) <= now)
			conn_tick(c, now);
	if (m->stopping)
		return;
	if (m->next_dial_ms && now >= m->next_dial_ms && !m->dialing &&
	    !(m->active && m->active->path == CONN_PATH_DIRECT)) {
		round_start(m, now);
		plan(m, now);
	}
	if (m->next_relay_ms && now >= m->next_relay_ms && !m->active && !m->relay_pending &&
	    m->splicer && !splicer_busy(m->splicer)) {
		relay_dial(m);
		plan(m, now);
	}
}

uint64_t connmgr_deadline(const struct connmgr *m)
{
	uint64_t t = m->next_dial_ms ? m->next_dial_ms : UINT64_MAX;

	if (m->punch.running && punch_attempt_deadline(&m->punch) < t)
		t = punch_attempt_deadline(&m->punch);
	if (m->punch_at_ms && m->punch_at_ms < t)
		t = m->punch_at_ms;
	if (m->next_relay_ms && m->next_relay_ms < t)
		t = m->next_relay_ms;

	for (const struct conn *c = m->conns; c; c = c->next) {
		uint64_t ct = conn_deadline(c);
		if (ct < t)
			t = ct;
	}
	return t;
}

void connmgr_reap(struct connmgr *m)
{
	struct conn **pp = &m->conns;

	while (*pp) {
		struct conn *c = *pp;
		if (c->state == CONN_DEAD) {
			*pp = c->next;
			m->nconns--;
			conn_free(c);
		} else {
			pp = &c->next;
		}
	}
}

void connmgr_shutdown(struct connmgr *m)
{
	m->stopping = true;
	punch_attempt_stop(&m->punch);
	for (struct conn *c = m->conns; c; c = c->next)
		conn_close(c, FRAME_CLOSE_NORMAL, "shutting down");
	connmgr_reap(m);
	if (m->splicer) {
		/* its notify fd is the splicer's: stop watching, it closes it */
		evloop_watch_del(m->cfg.env.loop, &m->splice_w);
		splicer_stop(m->splicer);
		m->splicer = NULL;
	}
}
