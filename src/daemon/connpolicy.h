/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_CONNPOLICY_H
#define TANDEM_DAEMON_CONNPOLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "base/backoff.h"

/*
 * The connection rules as pure functions (docs/DAEMON.md, "Connections"
 * and "Layers"): who dials, which of two connections to keep, when to
 * dial again, when to fall back to a relayed path. No I/O, no clock, no
 * randomness of their own: connmgr.c gathers the facts into a struct,
 * asks, and acts; the unit test asks with made-up facts.
 *
 * Two transports: a direct TCP connection to an address of the peer's
 * record, and a relayed one spliced by the relay (docs/PROTOCOL.md §6);
 * connmgr.c runs them with the mode of --relay-data.
 */

enum conn_path {
	CONN_PATH_DIRECT,
	CONN_PATH_RELAYED,
};

/* "direct" or "relayed" (status JSON "path"). */
const char *conn_path_name(enum conn_path p);

/* --relay-data: whether and when a relayed path is used. */
enum connpolicy_relay {
	CONNPOLICY_RELAY_NEVER,	   /* direct only */
	CONNPOLICY_RELAY_FALLBACK, /* direct first, relayed when it does not come up */
	CONNPOLICY_RELAY_ALWAYS,   /* relayed only */
};

/*
 * Who dials first: we dial at once when the peer accepts connections and
 * we either have the lower fingerprint or accept none ourselves. Otherwise
 * the peer is expected to dial us, and we dial only as a fallback.
 */
bool connpolicy_dial_first(bool peer_accepts, bool we_accept, bool self_lower);

/* One of two established connections to the peer. */
struct connpolicy_cand {
	bool outbound; /* made by us (relayed: we were the handshake initiator) */
	enum conn_path path;
};

/*
 * Which of two established connections both sides keep: a direct one over
 * a relayed one (climbing back to direct); of two on the same path made by
 * the same side the newer (that side dials twice only after a restart);
 * else the one made by the side with the lower fingerprint. Returns true
 * to keep cand_new (and close old), false to keep old.
 */
bool connpolicy_keep_new(const struct connpolicy_cand *old, const struct connpolicy_cand *cand_new,
			 bool self_lower);

/*
 * When to dial again after failure number `failures` (0: right after a
 * loss): now plus exponential backoff with equal jitter (base/backoff.h);
 * rnd is a uniformly random value.
 */
uint64_t connpolicy_retry_at(const struct backoff *b, uint64_t now, unsigned failures,
			     uint32_t rnd);

/* The facts connpolicy_next() decides on (times: clock_mono_ms()). */
struct connpolicy_state {
	enum connpolicy_relay relay;
	bool stopping;
	bool have_rec;			 /* we have the peer's record */
	bool peer_accepts;		 /* it says it accepts connections and has an address */
	bool we_accept;			 /* we listen */
	bool self_lower;		 /* our fingerprint sorts first */
	bool active;			 /* a connection is established ... */
	enum conn_path active_path;	 /* ... on this path */
	bool dialing;			 /* a direct dialing round is under way */
	bool relay_dialing;		 /* a relayed attempt is under way */
	uint64_t waiting_since_ms;	 /* no direct connection since (start, loss, record) */
	uint64_t backoff_until_ms;	 /* no direct round before this */
	uint64_t relay_backoff_until_ms; /* no relayed attempt before this */
	uint32_t fallback_ms;		 /* the non-designated side dials after this */
	uint32_t relay_after_ms;	 /* no direct connection this long: relayed */
};

enum connpolicy_verb {
	CONNPOLICY_WAIT,   /* nothing to plan until the facts change */
	CONNPOLICY_DIAL,   /* start a round on `path` at `at_ms` */
	CONNPOLICY_NO_WAY, /* neither peer accepts and no relayed path: say so once */
};

struct connpolicy_action {
	enum connpolicy_verb verb;
	enum conn_path path;
	uint64_t at_ms; /* DIAL: when (at least 1); else UINT64_MAX */
};

/*
 * The next thing to do. Direct: when not directly connected and no round
 * is under way, the designated dialer dials at once, the other side
 * fallback_ms after waiting_since_ms, both not before backoff_until_ms;
 * with RELAY_ALWAYS never. Relayed (FALLBACK or ALWAYS): when not
 * connected at all and no attempt is under way, at once with ALWAYS or
 * when direct cannot work (neither side accepts), else relay_after_ms
 * after waiting_since_ms, not before relay_backoff_until_ms; it needs the
 * record too (the rendezvous token needs the peer's public key). While the
 * connection is relayed, direct rounds go on, so that a direct connection
 * can replace it. When both are due the earlier wins, direct on a tie.
 */
struct connpolicy_action connpolicy_next(const struct connpolicy_state *s, uint64_t now);

/*
 * When the next attempt on path starts by the rules of connpolicy_next
 * (at least 1), or UINT64_MAX for none: the two paths are planned each
 * on its own, so that a relayed attempt is due at its time while a direct
 * round is under way, and direct rounds go on while relayed.
 */
uint64_t connpolicy_due(const struct connpolicy_state *s, uint64_t now, enum conn_path path);

#endif
