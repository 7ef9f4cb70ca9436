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
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "base/clock.h"
#include "daemon/conn.h"
#include "daemon/connmgr.h"
#include "daemon/connpolicy.h"
#include "sync/engine.h"
#include "daemon/lookup.h"
#include "base/log.h"
#include "daemon/sd_notify.h"

static bool peer_accepts(const struct daemon *d)
{
	return d->have_rec && (d->rec.flags & RECORD_FLAG_INBOUND) && d->rec.naddrs > 0;
}

static bool we_accept(const struct daemon *d)
{
	return d->listen_w.fd >= 0;
}

static bool we_dial_first(const struct daemon *d)
{
	return connpolicy_dial_first(peer_accepts(d), we_accept(d), d->self_lower);
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

/* The facts the policy decides on (connpolicy.h). Only the direct
 * transport exists so far: relayed never. */
static struct connpolicy_state policy_state(const struct daemon *d)
{
	return (struct connpolicy_state){
		.relay = CONNPOLICY_RELAY_NEVER,
		.stopping = d->stop,
		.have_rec = d->have_rec,
		.peer_accepts = peer_accepts(d),
		.we_accept = we_accept(d),
		.self_lower = d->self_lower,
		.active = d->active != NULL,
		.active_path = CONN_PATH_DIRECT,
		.dialing = d->dialing != NULL,
		.waiting_since_ms = d->waiting_since_ms,
		.backoff_until_ms = d->backoff_until_ms,
		.fallback_ms = d->tun.fallback_ms,
	};
}

/* Decides when to start the next dialing round. */
static void plan(struct daemon *d, uint64_t now)
{
	struct connpolicy_state s = policy_state(d);
	struct connpolicy_action a = connpolicy_next(&s, now);

	d->next_dial_ms = 0;
	if (a.verb == CONNPOLICY_NO_WAY && !d->warned_no_inbound) {
		log_err("neither this peer (--listen none) nor the other one accepts "
			"connections, so they cannot meet; start one of them without "
			"--listen none");
		daemon_set_error(d, "neither peer accepts connections (both run with "
				    "--listen none); restart one of them without it");
		d->warned_no_inbound = true;
	}
	if (a.verb == CONNPOLICY_DIAL && a.path == CONN_PATH_DIRECT)
		d->next_dial_ms = a.at_ms;
}

static void round_failed(struct daemon *d, uint64_t now)
{
	uint64_t until = connpolicy_retry_at(&d->tun.reconnect, now, d->failures,
					     randombytes_random());
	uint32_t ms = (uint32_t)(until - now);
	char addrs[RECORD_MAX_ADDRS * (RECORD_ADDR_TEXT_MAX + 2)];

	d->failures++;
	d->backoff_until_ms = until;
	addrs_format(&d->rec, addrs, sizeof(addrs));
	if (d->failures == 1 || d->failures % 10 == 0)
		log_info("cannot reach the peer at %s; trying again in %u ms (and asking the "
			 "relay whether its address changed)",
			 addrs, ms);
	lookup_request(d->lookup);
	plan(d, now);
}

/* Tries the next address of the round; ends the round when none is left. */
static void dial_next(struct daemon *d, uint64_t now)
{
	while (d->dial_next < d->dial_n) {
		const struct record_addr *a = &d->rec.addrs[d->dial_order[d->dial_next++]];
		struct conn *c;
		if (conn_dial(d, a, &c) == 0) {
			d->dialing = c;
			return;
		}
	}
	round_failed(d, now);
}

static void round_start(struct daemon *d, uint64_t now)
{
	d->next_dial_ms = 0;
	d->dial_n = 0;
	d->dial_next = 0;
	/* IPv6 first, then IPv4, each in the record's order. */
	for (int pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < d->rec.naddrs; i++)
			if ((d->rec.addrs[i].family == 6) == (pass == 0))
				d->dial_order[d->dial_n++] = (uint8_t)i;
	log_debug("dialing the peer (%s)", we_dial_first(d) ? "we dial first" : "fallback");
	dial_next(d, now);
}

void connmgr_add(struct daemon *d, struct conn *c)
{
	c->next = d->conns;
	d->conns = c;
	d->nconns++;
}

void connmgr_on_record(struct daemon *d, const struct peer_record *rec)
{
	uint64_t now = clock_mono_ms();
	bool first = !d->have_rec;
	bool changed = first || rec->flags != d->rec.flags || rec->naddrs != d->rec.naddrs ||
		       memcmp(rec->addrs, d->rec.addrs, sizeof(rec->addrs)) != 0;
	char addrs[RECORD_MAX_ADDRS * (RECORD_ADDR_TEXT_MAX + 2)];

	d->rec = *rec;
	d->have_rec = true;
	if (changed) {
		addrs_format(rec, addrs, sizeof(addrs));
		log_info("found the peer's record on the relay: %s%s", addrs,
			 (rec->flags & RECORD_FLAG_INBOUND) ? "" : " (it accepts no connections)");
		/* New addresses: no reason to wait out the old ones' backoff. */
		d->backoff_until_ms = 0;
	}
	if (first && !d->active)
		d->waiting_since_ms = now;
	plan(d, now);
}

static struct conn *pick(const struct daemon *d, struct conn *old, struct conn *new)
{
	struct connpolicy_cand o = {.outbound = old->outbound, .path = CONN_PATH_DIRECT};
	struct connpolicy_cand n = {.outbound = new->outbound, .path = CONN_PATH_DIRECT};

	return connpolicy_keep_new(&o, &n, d->self_lower) ? new : old;
}

void connmgr_on_up(struct daemon *d, struct conn *c)
{
	struct conn *keep, *lose;

	if (c == d->dialing)
		d->dialing = NULL;
	if (!d->active) {
		d->active = c;
		d->established++;
		d->failures = 0;
		d->backoff_until_ms = 0;
		d->next_dial_ms = 0;
		d->connected_since = time(NULL);
		log_notice("connected to the peer %s at %s (%s)%s", d->peer_text, c->addr,
			   c->outbound ? "we dialed" : "it dialed",
			   d->established > 1 ? ", again" : "");
		(void)sdnotify_status("connected to the peer %s at %s", d->peer_text, c->addr);
		if (d->engine) {
			if (d->engine_down) {
				d->engine_down = false;
				engine_on_down(d->engine, clock_mono_ms());
			}
			engine_on_up(d->engine, clock_mono_ms());
		}
		return;
	}
	keep = pick(d, d->active, c);
	lose = keep == c ? d->active : c;
	log_info("two connections to the peer: keeping the one %s %s, closing the one %s %s",
		 keep->outbound ? "to" : "from", keep->addr, lose->outbound ? "to" : "from",
		 lose->addr);
	d->active = keep;
	if (keep == c && d->engine) {
		d->engine_down = false;
		engine_on_down(d->engine, clock_mono_ms());
		engine_on_up(d->engine, clock_mono_ms());
	}
	conn_close(lose, FRAME_CLOSE_REPLACED, "replaced by another connection");
}

void connmgr_on_closed(struct daemon *d, struct conn *c, bool was_up)
{
	uint64_t now = clock_mono_ms();

	if (c == d->dialing) {
		d->dialing = NULL;
		if (!d->stop && !d->active)
			dial_next(d, now);
		return;
	}
	if (c != d->active)
		return;
	d->active = NULL;
	/*
	 * Not engine_on_down() here: this runs inside the engine's own calls
	 * when a send fails or it closes the connection after a protocol
	 * error, and engine_on_down() frees what those calls are walking. The
	 * loop tells it after the current events.
	 */
	if (d->engine)
		d->engine_down = true;
	d->connected_since = 0;
	if (d->stop)
		return;
	(void)sdnotify_status("connecting to the peer %s (lost the connection)", d->peer_text);
	d->waiting_since_ms = now;
	d->failures = 0;
	d->backoff_until_ms = connpolicy_retry_at(&d->tun.reconnect, now, 0, randombytes_random());
	lookup_request(d->lookup);
	plan(d, now);
}

/*
 * Room for one more connection? When full, the oldest inbound connection
 * still in its handshake makes way: a burst of silent connections (a port
 * scan) must not keep the real peer out until their handshakes time out.
 */
static bool make_room(struct daemon *d)
{
	struct conn *oldest = NULL;
	unsigned live = 0;

	for (struct conn *c = d->conns; c; c = c->next) {
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
	struct daemon *d = w->ud;

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
		if (d->stop || !make_room(d)) {
			log_debug("refusing a connection: %u connections open already", d->nconns);
			close(fd);
			continue;
		}
		if (conn_accept(d, fd, &ss) < 0)
			log_warn("cannot take a connection: out of resources");
	}
}

void connmgr_tick(struct daemon *d, uint64_t now)
{
	for (struct conn *c = d->conns; c; c = c->next)
		if (conn_deadline(c) <= now)
			conn_tick(c, now);
	if (d->next_dial_ms && now >= d->next_dial_ms && !d->active && !d->dialing && !d->stop)
		round_start(d, now);
}

uint64_t connmgr_deadline(const struct daemon *d)
{
	uint64_t t = d->next_dial_ms ? d->next_dial_ms : UINT64_MAX;

	for (const struct conn *c = d->conns; c; c = c->next) {
		uint64_t ct = conn_deadline(c);
		if (ct < t)
			t = ct;
	}
	return t;
}

void connmgr_reap(struct daemon *d)
{
	struct conn **pp = &d->conns;

	while (*pp) {
		struct conn *c = *pp;
		if (c->state == CONN_DEAD) {
			*pp = c->next;
			d->nconns--;
			conn_free(c);
		} else {
			pp = &c->next;
		}
	}
}

void connmgr_shutdown(struct daemon *d)
{
	for (struct conn *c = d->conns; c; c = c->next)
		conn_close(c, FRAME_CLOSE_NORMAL, "shutting down");
	connmgr_reap(d);
}
