/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_SPLICER_H
#define TANDEM_DAEMON_SPLICER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "relay_client/relay_splice.h"

/*
 * The relayed transport's dialer: a worker thread that runs one blocking
 * relay_splice_dial() (relay_client/relay_splice.h) at a time, so that the
 * loop never blocks on the relay and every kind of relay URL the client
 * supports (http://, https://) works here unchanged. The loop asks for an
 * attempt with splicer_dial(), watches splicer_notify_fd() and takes the
 * outcome with splicer_take(): a connected socket whose next byte is the
 * peer's, or the dialer's -errno and sentence.
 *
 * Threads: every function is called by the loop thread only; the worker
 * blocks every signal and touches nothing but its request and result.
 */

struct splicer;

struct splicer_result {
	int err;	       /* 0: fd is the spliced stream; else relay_splice_dial's -errno */
	int fd;		       /* the caller's to close or adopt; -1 when err */
	uint32_t retry_after;  /* seconds, from a 429 or 503; 0 if none */
	uint64_t took_ms;      /* how long the attempt took */
	char message[ERR_LEN]; /* the dialer's sentence when err */
};

/* Starts the worker for the relay at url, idle. Returns 0 and *ret, or
 * -errno with a sentence in err. */
int splicer_start(const char *url, struct splicer **ret, struct err *err)
	__attribute__((warn_unused_result));

/* Starts an attempt: token and side as for relay_splice_dial, at most
 * timeout_ms. Only when none is under way (the last one's result taken). */
void splicer_dial(struct splicer *s, const uint8_t token[static RELAY_SPLICE_TOKEN_LEN], int side,
		  int timeout_ms);

/* Cuts the attempt under way short (its result still comes: -ECANCELED,
 * or a socket when it had just been spliced). No-op when none. */
void splicer_cancel(struct splicer *s);

/* Whether an attempt was started and its result not taken yet. */
bool splicer_busy(const struct splicer *s);

/* The eventfd the loop watches (EPOLLIN). */
int splicer_notify_fd(const struct splicer *s);

/* Drains the notification and takes the attempt's result. Returns true
 * when there was one (the attempt is over then). */
bool splicer_take(struct splicer *s, struct splicer_result *ret);

/* Cancels any attempt, joins the thread, closes a socket nobody took,
 * frees. NULL is a no-op. */
void splicer_stop(struct splicer *s);

#endif
