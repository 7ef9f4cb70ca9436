/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_LOOKUP_H
#define TANDEM_DAEMON_LOOKUP_H

#include <stdbool.h>

#include "base/err.h"
#include "backoff.h"
#include "relay_client.h"

/*
 * The daemon's relay lookup worker: a thread that, when asked, looks the
 * peer's record up on the relay and retries (backoff with jitter,
 * Retry-After honoured) until it has one or is stopped. It posts the
 * outcome of every attempt, so the daemon can show "no record for this
 * fingerprint yet" or "cannot reach the relay" while it waits; the loop
 * reads the newest outcome when lookup_notify_fd() becomes readable.
 *
 * Threads: lookup_start/request/take/stop are called by the loop thread
 * only; the worker blocks every signal and never touches the loop's state.
 */

struct lookup;

struct lookup_result {
	int err; /* 0: rec is valid; else the relay_client -errno */
	struct peer_record rec;
	char message[ERR_LEN]; /* the relay client's sentence when err */
};

/* Starts the worker, idle until lookup_request(). url/opts as for
 * relay_client_new (opts->cancel_fd is replaced). */
int lookup_start(const char *url, const struct relay_client_opts *opts,
		 const struct fingerprint *fp, const struct backoff *retry, struct lookup **ret,
		 struct err *err) __attribute__((warn_unused_result));

/* Asks for a lookup. When one is running, its next result is fresh enough. */
void lookup_request(struct lookup *l);

/* The eventfd the loop watches (EPOLLIN). */
int lookup_notify_fd(const struct lookup *l);

/* Drains the notification and copies the newest outcome not yet taken.
 * Returns true when there was one. */
bool lookup_take(struct lookup *l, struct lookup_result *ret);

/* Cancels any request in flight, joins the thread, frees. NULL is a no-op. */
void lookup_stop(struct lookup *l);

#endif
