/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_CONNS_H
#define TANDEM_RELAY_CONNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay_addr.h"

/*
 * The relay's open connections, without sockets: how many each client
 * holds, how long each has waited for its request, and which ones to close.
 * relay_http.c feeds it from microhttpd's connection callbacks and asks it
 * from a sweeper thread; closing the socket is the caller's job.
 *
 * A connection is *reading* from its accept, or from the end of its previous
 * request, until its request (headers and body) is in; it is *answering*
 * from then until the response is done. Only a reading connection has a
 * deadline and may be evicted: one that sends a header byte now and then
 * no longer holds a slot forever.
 *
 * - Per client: a client (relay_addr_key_derive: IPv4 address, IPv6 /64,
 *   IPv4-mapped as IPv4) holds at most per_client connections over all
 *   listeners; one more is refused.
 * - Reserve: connections come in groups (one per listener) of at most
 *   group_max, microhttpd's limit. When a new connection leaves fewer than
 *   relay_conns_reserve(group_max) free slots in its group, the oldest
 *   reading connection of the group is evicted, so that slow clients never
 *   hold the last slots and a request that finishes fast still gets in.
 * - Deadline: a reading connection is closed deadline_ms after it started
 *   reading (relay_conns_expired).
 *
 * Connections are kept in a list ordered by the time they started reading,
 * so the sweeper only looks at the ones whose time has come. Client counts
 * live in a SipHash table with a random key.
 *
 * Not thread-safe: the caller serialises access.
 */

struct relay_conn {
	int fd;				/* the caller's socket */
	struct relay_client_key key;	/* set by the caller before _open */
	unsigned group;			/* set by the caller before _open, < ngroups */
	int64_t since_ms;		/* accept, or the end of the previous request */
	bool counted;			/* counts against its client */
	bool answering;			/* its request is in */
	bool closing;			/* chosen to be closed; never chosen again */
	struct relay_conn *prev, *next; /* by since_ms, oldest first */
};

struct relay_conns;

/* Slots kept free in a group of group_max: one in eight, at most 64 (0 below 8). */
unsigned relay_conns_reserve(unsigned group_max);

/*
 * per_client: connections per client, 0 for no limit; group_max >= 1;
 * 1 <= ngroups <= 64. Returns 0, -EINVAL or -ENOMEM.
 */
int relay_conns_new(unsigned per_client, unsigned group_max, unsigned ngroups,
		    struct relay_conns **ret) __attribute__((warn_unused_result));
void relay_conns_free(struct relay_conns *t);

/*
 * Tracks c (owned by the caller until relay_conns_close) from now_ms.
 * Returns 0 when it may stay, or -EUSERS (its client already holds
 * per_client connections) or -ENOMEM: c is then tracked but marked closing
 * and the caller shuts it down. *ret_evict is NULL, or an older reading
 * connection of the same group, marked closing, for the caller to shut
 * down so that the reserve stays free.
 */
int relay_conns_open(struct relay_conns *t, struct relay_conn *c, int64_t now_ms,
		     struct relay_conn **ret_evict);

/* Stops tracking c (any state). */
void relay_conns_close(struct relay_conns *t, struct relay_conn *c);

/* c's request is in: no deadline while it is answered. */
void relay_conns_answering(struct relay_conns *t, struct relay_conn *c);

/* c's request is done: it reads the next one, with a deadline from now_ms. */
void relay_conns_done(struct relay_conns *t, struct relay_conn *c, int64_t now_ms);

/*
 * The oldest reading connection whose deadline (since_ms + deadline_ms) is
 * at or before now_ms, marked closing; NULL when there is none, with
 * *ret_wake_ms set to when to look again.
 */
struct relay_conn *relay_conns_expired(struct relay_conns *t, int64_t now_ms, int64_t deadline_ms,
				       int64_t *ret_wake_ms);

/* Connections counted for key; tracked ones of group. */
unsigned relay_conns_client_count(struct relay_conns *t, const struct relay_client_key *key);
unsigned relay_conns_group_count(const struct relay_conns *t, unsigned group);

#endif
