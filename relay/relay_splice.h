/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_SPLICE_H
#define TANDEM_RELAY_SPLICE_H

#include <stddef.h>
#include <stdint.h>

#include "relay_metrics.h"

/*
 * The splice pump: one thread with an epoll loop that copies bytes both
 * ways between the two sockets of every spliced session (docs/RELAY.md,
 * "Relayed connections"). No HTTP here: relay_http_splice.c pairs the
 * connections and hands each pair over once both have been upgraded.
 *
 * Copying. Each direction of a session has a pipe of RELAY_SPLICE_BUF
 * bytes: splice(2) moves bytes from the source socket into the pipe and
 * from the pipe into the destination socket without copying them through
 * user space. Where splice(2) does not work (a pipe cannot be made, or the
 * socket refuses it) a direction falls back to read/write through a
 * buffer of the same size. Either way a direction reads only while its
 * pipe or buffer has room, so a session never holds more than
 * 2 x RELAY_SPLICE_BUF bytes in the relay, whatever the peers do (plus,
 * once, the bytes microhttpd read past the request, at most its 32 KiB
 * connection pool).
 *
 * A source that reaches its end (the peer shut down its sending side) is
 * passed on as shutdown(SHUT_WR) of the destination once the direction is
 * drained; the session ends when both directions have ended, on a socket
 * error, or after idle_ms without a byte either way.
 *
 * Rates: a token bucket per session (bytes of both directions together)
 * and one for all sessions; a session out of tokens stops reading until
 * its bucket (and the shared one) allows again. Buckets hold one second of
 * their rate, and at least RELAY_SPLICE_BUF bytes.
 *
 * The pump never closes the sockets it is given: when a session ends it
 * stops watching them and calls end_fn on its thread, whose owner closes
 * them. It calls tick_fn on its thread when the time tick_fn asked for has
 * come (the rendezvous's wait deadlines).
 *
 * Threads: relay_splice_add, relay_splice_wake and relay_splice_bytes may
 * be called from any thread; the rest from the owner's controlling thread.
 * The callbacks run on the pump's thread without any lock of the pump.
 */

#define RELAY_SPLICE_BUF (64 * 1024) /* per direction: 128 KiB per session */

struct relay_splice_config {
	uint64_t session_rate; /* bytes per second per session, both ways; 0: no limit */
	uint64_t total_rate;   /* bytes per second of all sessions; 0: no limit */
	int64_t idle_ms;       /* > 0 */
};

/* A session ended: close both sockets. ctx is relay_splice_add's. */
typedef void (*relay_splice_end_fn)(void *userdata, void *ctx, enum relay_splice_end why);
/* The time asked for has come; returns the next time to be called (ms of
 * clock_mono_ms, INT64_MAX for never). */
typedef int64_t (*relay_splice_tick_fn)(void *userdata, int64_t now_ms);

struct relay_splice;

/* Returns 0, -EINVAL or -ENOMEM (nothing runs yet). */
int relay_splice_new(const struct relay_splice_config *cfg, relay_splice_end_fn end_fn,
		     relay_splice_tick_fn tick_fn, void *userdata, struct relay_splice **ret)
	__attribute__((warn_unused_result));

/* Starts the thread (with every signal blocked). Returns 0 or -errno. */
int relay_splice_start(struct relay_splice *sp) __attribute__((warn_unused_result));

/*
 * Ends every session (end_fn with RELAY_SPLICE_END_STOPPING, on the
 * calling thread once the pump's thread has stopped) and joins the thread.
 * Sessions added later are refused. No-op when not running.
 */
void relay_splice_stop(struct relay_splice *sp);

/* Stops if needed and frees; NULL is a no-op. */
void relay_splice_free(struct relay_splice *sp);

/*
 * Starts splicing fd_a and fd_b (connected sockets, made non-blocking
 * here). extra_a (na bytes) is what a already sent that was read before
 * the hand-over, to be delivered to b first; extra_b likewise (each at
 * most RELAY_SPLICE_BUF bytes; copied). Returns 0, or -ENOMEM, -EMSGSIZE,
 * -ESHUTDOWN (the pump stops) and the caller closes both itself.
 */
int relay_splice_add(struct relay_splice *sp, int fd_a, const void *extra_a, size_t na, int fd_b,
		     const void *extra_b, size_t nb, void *ctx) __attribute__((warn_unused_result));

/* Makes the pump call tick_fn soon (after a new wait deadline). */
void relay_splice_wake(struct relay_splice *sp);

/* Bytes copied so far, both ways, all sessions. */
uint64_t relay_splice_bytes(const struct relay_splice *sp);

#endif
