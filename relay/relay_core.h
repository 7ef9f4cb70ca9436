/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_CORE_H
#define TANDEM_RELAY_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay_addr.h"
#include "relay_metrics.h"
#include "relay_store.h"

/*
 * The relay without sockets: one HTTP request in (already framed by the
 * HTTP layer), one response out. Routing, authentication, JSON, the record
 * store, rate limiting and metrics all live here, so the fuzzer and the
 * unit tests drive the whole API without microhttpd (docs/RELAY.md).
 *
 * Thread-safe: any number of threads may call relay_core_admit and
 * relay_core_handle at once. Request parsing and response rendering run
 * without a lock; the store, the rate limiter and the counters sit behind
 * the one mutex relay_core.lock, held only for in-memory work (no syscall,
 * no allocation larger than a record, no callback except
 * relay_core_foreach_record's).
 */

struct relay_core;

struct relay_core_config {
	size_t max_records;   /* 1..RELAY_RECORDS_MAX */
	size_t max_records_per_client; /* 0: no limit; above max_records: max_records */
	unsigned rate;	      /* requests per minute per client; 0: no limit */
	unsigned burst;	      /* bucket size; 0: same as rate */
	size_t rate_clients;  /* clients tracked at once */
	size_t max_body;      /* bytes */
	unsigned default_ttl; /* seconds, 1..max_ttl */
	unsigned max_ttl;     /* seconds */
};

/* One request as the HTTP layer saw it. Strings are NUL-terminated. */
struct relay_request {
	const char *method;
	const char *path;	   /* without the query string */
	const char *authorization; /* Authorization header value, or NULL */
	const char *write_secret;  /* X-Tandem-Write-Secret value, or NULL */
	bool duplicate_header;	   /* either header above came more than once */
	const char *upgrade;	   /* Upgrade header value, or NULL (GET /v1/splice) */
	const char *connection;	   /* Connection header value, or NULL */
	const char *splice_side;   /* X-Tandem-Splice-Side value, or NULL */
	bool http10;		   /* an HTTP/1.0 request (it cannot upgrade) */
	bool content_length_known;
	uint64_t content_length; /* from the header, when known */
	const uint8_t *body;	 /* body_len bytes, at most max_body */
	size_t body_len;
	bool body_too_large; /* more than max_body bytes arrived */
	bool admitted;	     /* relay_core_admit already let it in */
	struct relay_client_key client;
	int64_t now_ms; /* monotonic clock */
};

struct relay_response {
	int status;
	const char *body; /* NULL when there is no body */
	size_t body_len;
	char *body_owned;	  /* == body when malloc'd; freed by _done */
	const char *content_type; /* static string, NULL without body */
	unsigned retry_after;	  /* seconds for Retry-After, 0: no header */
	const char *allow;	  /* static Allow value for 405, else NULL */
	bool www_authenticate;	  /* add WWW-Authenticate: Bearer (401) */
	const char *route;	  /* static, safe to log: "/v1/records", "-" */
	int reason;		  /* enum relay_reason when the status alone does not say */
	const char *upgrade;	  /* static Upgrade value (426), else NULL */
	/*
	 * GET /v1/splice passed every check (status 101, not yet counted):
	 * the HTTP layer pairs it by token and side, answers, and counts the
	 * answer with relay_core_count.
	 */
	bool splice;
	int splice_side; /* 1 or 2 */
	uint8_t splice_token[RELAY_TOKEN_LEN];
};

/* Defaults: 10000 records, 64 per client, 120/min, 8 KiB bodies, TTL 600 s of at most 3600 s. */
void relay_core_config_init(struct relay_core_config *cfg);

/*
 * Checks a configuration. Returns 0, or -EINVAL with a sentence saying what
 * is wrong in err (errlen bytes).
 */
int relay_core_config_check(const struct relay_core_config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Returns 0, -EINVAL (bad config) or -ENOMEM. now_ms starts the uptime. */
int relay_core_new(const struct relay_core_config *cfg, int64_t now_ms, struct relay_core **ret)
	__attribute__((warn_unused_result));
void relay_core_free(struct relay_core *core);

/*
 * What can be decided from the request line and headers alone, before the
 * body is read: the rate limit and a Content-Length above max_body. Returns
 * 0 when the request may go on (req->body is ignored), or 1 when *resp is
 * filled with the final answer (429 or 413). Counts the request in either
 * case; call at most once per request, then set req->admitted.
 */
int relay_core_admit(struct relay_core *core, const struct relay_request *req,
		     struct relay_response *resp);

/*
 * Answers a complete request (calls relay_core_admit first unless
 * req->admitted). Always fills *resp; release it with
 * relay_core_response_done.
 */
void relay_core_handle(struct relay_core *core, const struct relay_request *req,
		       struct relay_response *resp);

/* Frees what *resp owns; safe on a zeroed or already released response. */
void relay_core_response_done(struct relay_response *resp);

/*
 * Calls fn for every live record, under the core's lock: fn must be quick
 * and must not call into the core.
 */
void relay_core_foreach_record(struct relay_core *core, int64_t now_ms, relay_store_visit_fn fn,
			       void *userdata);

/*
 * Counts n connections the HTTP layer closed for reason (enum
 * relay_close_reason of relay_metrics.h), for /metrics.
 */
void relay_core_count_closed(struct relay_core *core, int reason, unsigned n);

/*
 * Fills *resp (zeroed first) with the JSON error body
 * {"error":code,"message":...}; the message must hold nothing a client
 * sent. Release with relay_core_response_done.
 */
void relay_core_error(struct relay_response *resp, int status, const char *code, const char *fmt,
		      ...) __attribute__((format(printf, 4, 5)));

/* Counts one answer the HTTP layer gave itself (a splice request's), for /metrics. */
void relay_core_count(struct relay_core *core, int status, int reason);

/*
 * The splice's numbers for /metrics: fn fills *ret; it is called without
 * the core's lock, before the core's own numbers are read. NULL: none.
 */
typedef void (*relay_splice_stats_fn)(void *userdata, struct relay_splice_stats *ret);
void relay_core_set_splice_stats(struct relay_core *core, relay_splice_stats_fn fn,
				 void *userdata);

/* Live records at now_ms. */
size_t relay_core_record_count(struct relay_core *core, int64_t now_ms);

#endif
