/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_PUBLISHER_H
#define TANDEM_RELAY_PUBLISHER_H

#include "base/err.h"
#include "relay_client/relay_client.h"

/*
 * Keeps our record on the relay: a thread that publishes it, republishes
 * it before its TTL runs out (at 2/3 of the TTL) and right after each
 * bucket boundary (the token changes), retries failures with backoff and
 * jitter honouring Retry-After, and deletes the record when stopped.
 *
 * The publisher owns its relay client and a copy of the record; the
 * identity is borrowed and must outlive the publisher.
 */

struct relay_publisher;

struct relay_publisher_status {
	int last_error;		/* 0 after a successful publish */
	unsigned publishes;	/* successful publishes so far */
	char message[ERR_LEN];
};

/* Starts the thread. url/opts as relay_client_new (opts.cancel_fd is
 * ignored: the publisher has its own). ttl in seconds (relay's max 3600).
 * With opts.local_port (the daemon's punch port) the address the relay
 * saw it as (X-Tandem-Observed) goes into the record (has_observed), and
 * stays there across relay_publisher_update(). */
int relay_publisher_start(const char *url, const struct relay_client_opts *opts,
			  const struct identity *id, const struct peer_record *rec, unsigned ttl,
			  struct relay_publisher **ret, struct err *err)
	__attribute__((warn_unused_result));

/* Replaces the record (new addresses) and publishes it at once. */
void relay_publisher_update(struct relay_publisher *p, const struct peer_record *rec);

void relay_publisher_get_status(struct relay_publisher *p, struct relay_publisher_status *ret);

/* Stops the thread, deletes the record from the relay (best effort, one
 * try), frees everything. NULL is a no-op. */
void relay_publisher_stop(struct relay_publisher *p);

#endif
