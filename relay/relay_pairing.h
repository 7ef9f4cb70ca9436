/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_PAIRING_H
#define TANDEM_RELAY_PAIRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay_addr.h"

/*
 * The splice rendezvous without sockets (docs/RELAY.md, "Relayed
 * connections"): which connection waits, which one pairs with it, which
 * one is refused and why, and when a waiting one gives up. relay_http.c
 * feeds it the GET /v1/splice requests that passed the core's checks and
 * moves the bytes; this module only decides.
 *
 * A session is named by its 32-byte rendezvous token and has two sides (1
 * and 2, as the peers computed them). The first connection of a token
 * waits (WAITING) up to wait_ms; a connection of the other side pairs with
 * it (PAIRED) and the caller splices the two; a connection of the side
 * that already waits replaces the waiting one (the peer reconnected: its
 * old connection may be dead, and only the two peers can compute the
 * token); any connection to a PAIRED session is refused (BUSY). A paired
 * session stays until both halves have left.
 *
 * Limits, checked before anything is allocated: at most max_sessions
 * sessions (waiting or paired) in all, and at most per_client halves
 * (connections) per client (relay_client_key: IPv4 address, IPv6 /64).
 *
 * Not thread-safe: the caller serialises access.
 */

#define RELAY_PAIR_TOKEN_LEN 32
#define RELAY_PAIR_SESSIONS_MAX 100000u

enum relay_session_state {
	RELAY_SESSION_WAITING, /* one half, waiting for the other side */
	RELAY_SESSION_PAIRED,  /* both halves met; the caller splices */
};

struct relay_session;

/* One connection of a session, owned by the caller (it outlives its
 * membership: relay_pairing_leave or relay_pairing_expired ends that). */
struct relay_half {
	struct relay_client_key key;   /* set by the caller */
	int side;		       /* 1 or 2, set by the caller */
	void *conn;		       /* the caller's */
	struct relay_session *session; /* set while a member; NULL otherwise */
};

struct relay_session {
	uint8_t token[RELAY_PAIR_TOKEN_LEN];
	enum relay_session_state state;
	struct relay_half *half[2];	   /* by side - 1; NULL once that half left */
	int64_t deadline_ms;		   /* WAITING: when the waiting half gives up */
	void *io;			   /* the caller's, once PAIRED */
	struct relay_session *prev, *next; /* WAITING only: by deadline, oldest first */
};

enum relay_pair_result {
	RELAY_PAIR_WAIT = 0,   /* h waits (a new session, or it replaced *ret_other) */
	RELAY_PAIR_PAIRED,     /* h is paired with *ret_other, which waited */
	RELAY_PAIR_BUSY,       /* the token's session is paired already: 409 */
	RELAY_PAIR_FULL,       /* max_sessions reached: 503 */
	RELAY_PAIR_PER_CLIENT, /* h's client holds per_client halves: 429 */
	RELAY_PAIR_NOMEM,      /* 500 */
};

struct relay_pairing;

/*
 * max_sessions 1..RELAY_PAIR_SESSIONS_MAX; per_client 0 (no limit) or
 * more; wait_ms > 0. Returns 0, -EINVAL or -ENOMEM.
 */
int relay_pairing_new(unsigned max_sessions, unsigned per_client, int64_t wait_ms,
		      struct relay_pairing **ret) __attribute__((warn_unused_result));

/* Frees the table; the halves are the caller's (it must have let them go). */
void relay_pairing_free(struct relay_pairing *t);

/*
 * h (with key and side set, not a member) asks to join the session of
 * token at now_ms. *ret_other is set to the half that waited (PAIRED), or
 * to the half h replaced (WAIT; that half is no longer a member: the
 * caller answers it), else NULL. On a refusal h is not a member.
 */
enum relay_pair_result relay_pairing_join(struct relay_pairing *t,
					  const uint8_t token[static RELAY_PAIR_TOKEN_LEN],
					  struct relay_half *h, int64_t now_ms,
					  struct relay_half **ret_other);

/*
 * h leaves its session (no-op when it is not a member): a waiting half
 * gives up, or a paired half's connection is done. The session is freed
 * when its last half leaves. Returns the session's other half that is
 * still a member, if any (a paired session the caller should now end).
 */
struct relay_half *relay_pairing_leave(struct relay_pairing *t, struct relay_half *h);

/*
 * The waiting half whose deadline is at or before now_ms, removed from the
 * table (its session freed); NULL when there is none, with *ret_wake_ms
 * set to the next deadline (or INT64_MAX when nothing waits).
 */
struct relay_half *relay_pairing_expired(struct relay_pairing *t, int64_t now_ms,
					 int64_t *ret_wake_ms);

/* Sessions now: waiting, paired. Halves counted for key. */
unsigned relay_pairing_waiting(const struct relay_pairing *t);
unsigned relay_pairing_paired(const struct relay_pairing *t);
unsigned relay_pairing_client_count(const struct relay_pairing *t,
				    const struct relay_client_key *key);

#endif
