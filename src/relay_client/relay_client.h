/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_CLIENT_H
#define TANDEM_RELAY_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "base/err.h"
#include "identity/fingerprint.h"
#include "identity/identity.h"
#include "identity/record.h"
#include "relay_client/relay_reply.h"

/*
 * Client of tandem-relay (docs/RELAY.md) on libcurl; the only module that
 * includes curl. Calls block for at most the request timeout and are meant
 * for a worker thread (the relay publisher, the daemon's lookup), never a
 * FUSE handler. A client handle is used by one thread at a time.
 *
 * Every function returns 0 or -errno and fills a struct relay_result whose
 * message is a complete sentence for the user:
 *   -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT, -ENXIO (name not resolved):
 *       the relay cannot be reached
 *   -EKEYREJECTED: TLS failed (certificate not trusted, handshake error)
 *   -EPROTO: the relay answered something that is not the API
 *   -ENOENT (404), -EAGAIN (429), -EBUSY (503), -EPERM (403), -EACCES (401),
 *   -EINVAL (400), -EMSGSIZE (413): the relay's answer; retry_after is set
 *       from Retry-After when present
 *   -ECANCELED: the cancel fd became readable
 */

struct relay_result {
	int status;		/* HTTP status, 0 when no answer */
	uint32_t retry_after;	/* seconds, 0 if none */
	long expires_in;	/* seconds, -1 if unknown */
	/* X-Tandem-Observed of the reply (relay_observed_parse): where the
	 * relay saw the request come from. has_observed only when the request
	 * went out from opts.local_port, or without local_port set */
	bool has_observed;
	bool observed_bad; /* the header was there but malformed (ignored) */
	struct record_addr observed;
	char message[ERR_LEN];
};

struct relay_client_opts {
	const char *ca_file;	  /* extra trusted CA bundle (PEM) for https, or NULL */
	long timeout_ms;	  /* per request; 0 = 10 s */
	unsigned bucket_seconds;  /* 0 = RELAY_BUCKET_SECONDS; only tests change it */
	int cancel_fd;		  /* readable = stop waiting (eventfd); -1 for none */
	uint32_t retry_base_ms;	  /* 0 = 500 */
	uint32_t retry_max_ms;	  /* 0 = 30000 */
	int64_t clock_offset_s;	  /* added to the wall clock (relay_client_now); only tests */
	uint16_t local_port;	  /* send from this local port (the daemon's punch port,
				   * reserved elsewhere: SO_REUSEADDR); 0: any */
};

void relay_client_opts_init(struct relay_client_opts *opts);

struct relay_client;

/* url is "http://host:port" or "https://..." (a trailing slash is fine).
 * Returns -EINVAL with a sentence in err for a malformed URL. */
int relay_client_new(const char *url, const struct relay_client_opts *opts,
		     struct relay_client **ret, struct err *err)
	__attribute__((warn_unused_result));
void relay_client_free(struct relay_client *c);
const char *relay_client_url(const struct relay_client *c);
/* The wall clock this client publishes and looks up by: time(NULL) plus
 * opts.clock_offset_s. */
time_t relay_client_now(const struct relay_client *c);

/* One request each, no retry. */
int relay_client_put(struct relay_client *c, const uint8_t token[static 32],
		     const uint8_t write_secret[static 32], const uint8_t *blob, size_t len,
		     unsigned ttl, struct relay_result *res) __attribute__((warn_unused_result));
int relay_client_get(struct relay_client *c, const uint8_t token[static 32],
		     struct relay_reply *reply, struct relay_result *res)
	__attribute__((warn_unused_result));
int relay_client_delete(struct relay_client *c, const uint8_t token[static 32],
			const uint8_t write_secret[static 32], struct relay_result *res)
	__attribute__((warn_unused_result));

/* Seals rec for the bucket of `now` and stores it under id's token. */
int relay_client_publish(struct relay_client *c, const struct identity *id,
			 const struct peer_record *rec, unsigned ttl, time_t now,
			 struct relay_result *res) __attribute__((warn_unused_result));

/* Deletes id's record of the bucket of `now` (and of the previous one). */
int relay_client_unpublish(struct relay_client *c, const struct identity *id, time_t now,
			   struct relay_result *res);

/*
 * Looks up fp's record: the current bucket first, then the previous one.
 * One request per bucket, no retry. A token may hold records of several
 * writers (docs/RELAY.md); each is opened and the most recent one that
 * holds fp's key and verifies is kept, the others ignored. Returns 0 and
 * *ret, -ENOENT when neither bucket has a record, or the first hard error.
 * When records exist but none opens (-EBADMSG, -EKEYREJECTED,
 * -EPROTONOSUPPORT), that is reported as such: someone stored garbage or
 * an impostor's record under the token, and the peer has not (yet) stored
 * its own.
 */
int relay_client_lookup(struct relay_client *c, const struct fingerprint *fp, time_t now,
			struct peer_record *ret, struct relay_result *res)
	__attribute__((warn_unused_result));

/*
 * relay_client_lookup, retried with backoff and jitter while the answer is
 * 404, 429 or 503 or the relay cannot be reached, honouring Retry-After,
 * for at most max_attempts attempts (0 = until cancelled). The wait
 * between attempts ends early when the cancel fd becomes readable.
 */
int relay_client_lookup_retry(struct relay_client *c, const struct fingerprint *fp,
			      unsigned max_attempts, struct peer_record *ret,
			      struct relay_result *res) __attribute__((warn_unused_result));

/* Sleeps ms, or less if the cancel fd becomes readable (-ECANCELED). */
int relay_client_wait(const struct relay_client *c, uint32_t ms);

/* True for errors worth retrying later (unreachable, 404, 429, 503, timeouts). */
int relay_error_is_transient(int err);

/* True for a lookup that found only records that do not open (-EBADMSG,
 * -EKEYREJECTED): a squatter's, next to which the peer's own can still
 * appear. relay_client_lookup_retry retries those too. */
int relay_lookup_error_is_squat(int err);

#endif
