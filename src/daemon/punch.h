/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_PUNCH_H
#define TANDEM_DAEMON_PUNCH_H

#include <stdbool.h>
#include <stdint.h>

#include "identity/record.h"

/*
 * Hole punching by TCP simultaneous open (docs/DAEMON.md, "Hole
 * punching"; issue 12 point 3).
 *
 * Each daemon holds a punch port: a local TCP port it reserves at start
 * (punch_port_open) and from which it makes its requests to the relay, so
 * that the relay's X-Tandem-Observed reply header tells it the public
 * address and port its NAT maps that port to; its record carries them
 * (record.h, has_observed). When both records carry one and no direct
 * connection is up, both sides connect() from their punch port to the
 * other's observed address at the same wall-clock slot (punch_next_slot),
 * retrying for a short window. Each side's first SYN opens its own NAT
 * and stateful firewall for the other's: the SYNs cross, and the kernel
 * completes the connection as a simultaneous open (or an ordinary one when
 * one SYN arrives after the other side's socket is already connecting).
 * This works behind NATs that keep one local port on one public port
 * whatever the destination (endpoint-independent mapping, as Linux
 * masquerade does when the port is free) and behind stateful firewalls;
 * it cannot work behind a NAT that picks a new port per destination
 * (symmetric NAT): then each attempt gives up after its window, and the
 * relayed path carries the data.
 *
 * Two parts: punch_next_slot() is the pure "when" (no I/O, no clock; unit
 * tested), struct punch_attempt the small non-blocking I/O part driven by
 * the owner's timer (punch_attempt_poll at punch_attempt_deadline). Loop
 * thread only.
 */

#define PUNCH_SLOT_MS 10000	 /* attempts start at multiples of this (wall clock) */
#define PUNCH_SLOW_SLOT_MS 60000 /* after PUNCH_EAGER_MS, only at multiples of this */
#define PUNCH_EAGER_MS 60000	 /* every slot in the first minute without a direct path */
#define PUNCH_JOIN_MS 1500	 /* a slot begun this recently is still joined */
#define PUNCH_AFTER_MS 3000	 /* no slot this soon after the direct path went: dialing first */
#define PUNCH_WINDOW_MS 6000	 /* one attempt: SYNs for this long, then give up */
#define PUNCH_RETRY_MS 250	 /* a refused or failed connect is retried after */
#define PUNCH_POLL_MS 50	 /* how often a pending connect is looked at */

/* The facts punch_next_slot() decides on. Times: wall clock, unix ms. */
struct punch_facts {
	bool have_port;	       /* we hold a punch port */
	bool peer_observed;    /* the peer's record carries an observed address */
	bool family_ok;	       /* we can open a socket of that address's family */
	bool direct_up;	       /* a direct connection is up: no punching */
	bool stopping;	       /* the daemon is stopping */
	bool running;	       /* an attempt runs */
	uint64_t now_ms;       /* now */
	uint64_t since_ms;     /* no direct connection since */
	uint64_t last_slot_ms; /* the slot of our last attempt; 0: none */
};

/*
 * The wall-clock time (unix ms) of the slot at which to start the next
 * attempt, or 0 for none (see the facts). Both peers compute it from their
 * own clocks, so they meet at the same slot when the clocks agree to
 * within the window: slots are the multiples of PUNCH_SLOT_MS, after
 * PUNCH_EAGER_MS without a direct connection only those of
 * PUNCH_SLOW_SLOT_MS (a multiple of PUNCH_SLOT_MS, so two sides that count
 * "since" differently still share those); none before since +
 * PUNCH_AFTER_MS (a peer that can be dialed is connected by then, without
 * a second connection made by punching); a slot is never used twice; one
 * that began less than PUNCH_JOIN_MS ago is joined at once (the peer may
 * be trying already). A result <= now means "start now".
 */
uint64_t punch_next_slot(const struct punch_facts *f);

/*
 * The punch port: a TCP socket bound (not listening, SO_REUSEADDR) to a
 * free port on every address, IPv6 dual-stack when the host has IPv6, so
 * no other program takes the port while we use it. Returns the fd and
 * *ret_port, or -errno.
 */
int punch_port_open(uint16_t *ret_port) __attribute__((warn_unused_result));

enum punch_poll {
	PUNCH_RUNNING,	 /* still trying */
	PUNCH_CONNECTED, /* *ret_fd: a connected socket, now the caller's */
	PUNCH_GAVE_UP,	 /* the window ended (or the socket could not be made) */
};

/* One attempt: connect() from the punch port to the peer's observed
 * address, again after each failure, until the window ends. */
struct punch_attempt {
	bool running;
	int fd;	       /* the connecting socket, -1 between tries */
	uint16_t port; /* ours */
	struct record_addr to;
	uint64_t end_ms;  /* monotonic: give up at */
	uint64_t next_ms; /* monotonic: next poll or try */
	unsigned tries;	  /* connect() calls so far */
	int last_error;	  /* -errno of the last failed try, 0 none */
};

/* Starts an attempt at now (monotonic ms) lasting window_ms. Never fails:
 * a socket that cannot be made shows as GAVE_UP at the next poll. */
void punch_attempt_start(struct punch_attempt *a, uint16_t port, const struct record_addr *to,
			 uint64_t now, uint32_t window_ms);

/* Looks at the attempt (call at punch_attempt_deadline or later). */
enum punch_poll punch_attempt_poll(struct punch_attempt *a, uint64_t now, int *ret_fd);

/* When punch_attempt_poll() has something to do; UINT64_MAX when not
 * running. */
uint64_t punch_attempt_deadline(const struct punch_attempt *a);

/* Stops the attempt (closes its socket). No-op when not running. */
void punch_attempt_stop(struct punch_attempt *a);

#endif
