/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ST_PROXY_H
#define TANDEM_ST_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * The selftest's fault proxy: a TCP proxy on [::1] (a port the OS picks)
 * that forwards every connection it accepts to one target address and
 * breaks the link on request, so that two real daemons can be made to talk
 * through a bad network without Docker, netem or root.
 *
 * Side a is whoever connects to the proxy, side b the target. Each
 * direction (ST_PROXY_AB: a's bytes to b, ST_PROXY_BA) has its own faults:
 *
 *   latency, jitter  every chunk read waits latency + [0, jitter] ms; the
 *                    order of the bytes is kept (TCP does not reorder)
 *   rate_bps         at most this many bytes per second (0: no cap)
 *   partition        nothing is forwarded and nothing is closed: both
 *                    sockets stay open, so the peer looks alive; bytes
 *                    wait in the proxy (up to a bound, then it stops
 *                    reading) and go on once healed, as TCP's would
 *   stall            st_proxy_stall(): a partition that heals itself
 *                    after ms
 *   reset_after      after that many bytes, both sockets are reset (RST:
 *                    SO_LINGER 0): the readers get ECONNRESET
 *   halfclose_after  after that many bytes, shutdown(SHUT_WR) towards the
 *                    reader: it reads EOF; later bytes of this direction
 *                    are dropped; the other direction goes on
 *   truncate_after   forward that many bytes, then close both sockets
 *   flip_from/to     flip flip_bits bits, at offsets and bit positions
 *                    drawn from the PRNG, in the byte range [from, to)
 *
 * Byte offsets count the bytes of one direction of one connection, from
 * the moment the faults were set for a connection already open, from its
 * start for a later one. The byte faults (reset, half-close, truncate,
 * flip) hit `shots` connections, then they are off (0: every connection).
 *
 * Every random choice (jitter, where a bit flips) comes from the proxy's
 * own PRNG seeded at st_proxy_new: with one seed and one byte stream the
 * same bits flip. No global state: everything is in the struct. The proxy
 * runs in a thread of its own; every function here may be called from any
 * other thread while it runs. Every fd is CLOEXEC, so daemons started
 * meanwhile do not inherit them.
 */

enum st_proxy_dir {
	ST_PROXY_AB = 0,
	ST_PROXY_BA = 1,
};

struct st_proxy_faults {
	unsigned latency_ms;
	unsigned jitter_ms;
	uint64_t rate_bps;
	bool partition;
	uint64_t reset_after;	  /* 0: none */
	uint64_t halfclose_after; /* 0: none */
	uint64_t truncate_after;  /* 0: none */
	uint64_t flip_from;
	uint64_t flip_to;   /* flip_to <= flip_from: no flips */
	unsigned flip_bits; /* bits flipped per connection in the range (0: 1) */
	unsigned shots;	    /* connections the byte faults hit (0: all) */
};

struct st_proxy_counters {
	uint64_t conns;	  /* connections accepted (counted for both directions) */
	uint64_t bytes;	  /* bytes forwarded */
	uint64_t delayed; /* bytes held back by latency, rate, stall or partition */
	uint64_t dropped; /* bytes read and never forwarded (reset, half-close, truncate) */
	uint64_t stalls;
	uint64_t partitions; /* times partition was switched on */
	uint64_t resets;     /* connections reset (st_proxy_reset_at's count in a->b) */
	uint64_t halfcloses;
	uint64_t truncates;
	uint64_t flips; /* bits flipped */
};

struct st_proxy;

/* A proxy with PRNG seed, listening on [::1] at once, forwarding nothing
 * yet (connections accepted before a target is set are closed). Returns 0
 * and the proxy (its thread running) in *ret, or -errno. */
int st_proxy_new(uint64_t seed, struct st_proxy **ret);
/* Stops the thread, closes every socket, frees. NULL is a no-op. */
void st_proxy_free(struct st_proxy *p);

/* "[::1]:PORT", where the proxy listens. */
const char *st_proxy_addr(const struct st_proxy *p);
/* Sets the target, "[IPv6]:PORT" or "IPv4:PORT" (loopback or not: the
 * caller's business). Returns 0 or -EINVAL. */
int st_proxy_set_target(struct st_proxy *p, const char *addr);

/* Replaces the faults of dir (read at once by the thread; see above for
 * open connections). */
void st_proxy_set(struct st_proxy *p, enum st_proxy_dir dir, const struct st_proxy_faults *f);
/* The faults of dir now. */
void st_proxy_get(struct st_proxy *p, enum st_proxy_dir dir, struct st_proxy_faults *ret);
/* Both directions partitioned (on) or healed (off); other faults kept. */
void st_proxy_partition(struct st_proxy *p, bool on);
/* Forwards nothing in dir for ms from now, then goes on. */
void st_proxy_stall(struct st_proxy *p, enum st_proxy_dir dir, unsigned ms);
/* Resets (RST) every open connection in ms from now (0: at once). */
void st_proxy_reset_at(struct st_proxy *p, unsigned ms);
/* Every fault off in both directions (a stall or a pending reset too). */
void st_proxy_clear(struct st_proxy *p);

/* The counters of dir so far. */
void st_proxy_counters(struct st_proxy *p, enum st_proxy_dir dir, struct st_proxy_counters *ret);
/* Connections open now. */
unsigned st_proxy_open_conns(struct st_proxy *p);
/* How often its thread has woken up (a socket event or a timer): data held
 * back (latency, a rate, a stall) must not make it spin. */
uint64_t st_proxy_wakeups(struct st_proxy *p);
/* One TAP diagnostic line per direction, "# proxy a->b: ...", to f. */
void st_proxy_print(struct st_proxy *p, FILE *f);
/* The same line for dir into out (for st_note). */
void st_proxy_format(struct st_proxy *p, enum st_proxy_dir dir, char *out, size_t len);

#endif
