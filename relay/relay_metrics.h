/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_METRICS_H
#define TANDEM_RELAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Counters of the relay, rendered in the Prometheus text exposition format
 * (version 0.0.4). Plain counters: the caller (relay_core) serialises
 * access.
 */

/* Why a request was refused; the label of tandem_relay_rejections_total. */
enum relay_reason {
	RELAY_REASON_NONE = 0,
	RELAY_REASON_RATE_LIMITED, /* 429 */
	RELAY_REASON_CAPACITY,	   /* 503 */
	RELAY_REASON_TOO_LARGE,	   /* 413 */
	RELAY_REASON_UNAUTHORIZED, /* 401 */
	RELAY_REASON_FORBIDDEN,	   /* 403 */
	RELAY_REASON_BAD_REQUEST,  /* 400 */
	RELAY_REASON_TOO_MANY_RECORDS, /* 429: the client's record cap */
	RELAY_REASON_COUNT,
};

/* Why the relay closed a connection; the label of tandem_relay_connections_closed_total. */
enum relay_close_reason {
	RELAY_CLOSE_DEADLINE = 0, /* no whole request within --request-deadline */
	RELAY_CLOSE_EVICTED,	  /* the oldest waiting one, to keep slots free */
	RELAY_CLOSE_PER_CLIENT,	  /* over --max-connections-per-ip for its client */
	RELAY_CLOSE_COUNT,
};

/* The statuses the relay answers with, in label order. */
#define RELAY_METRICS_STATUSES 200, 201, 204, 400, 401, 403, 404, 405, 413, 429, 500, 503
#define RELAY_METRICS_NSTATUS 12

struct relay_metrics {
	int64_t start_ms;
	uint64_t by_status[RELAY_METRICS_NSTATUS];
	uint64_t other_status;
	uint64_t by_reason[RELAY_REASON_COUNT];
	uint64_t closed[RELAY_CLOSE_COUNT];
};

/* Gauges read from the rest of the relay when rendering. */
struct relay_metrics_gauges {
	size_t records;
	size_t max_records;
	size_t clients;		/* rate-limited clients tracked */
	uint64_t expired_total; /* records dropped by expiry */
	uint64_t evicted_total; /* records pushed out of a full token */
};

void relay_metrics_init(struct relay_metrics *m, int64_t now_ms);

/* Counts one answered request. */
void relay_metrics_count(struct relay_metrics *m, int status, enum relay_reason reason);

/* The label value of a reason ("rate_limited", ...), "" for NONE. */
const char *relay_metrics_reason_name(enum relay_reason reason);

/*
 * Renders every metric. Returns 0 and a malloc'd NUL-terminated text in
 * *ret_text (length in *ret_len, caller frees), or -ENOMEM.
 */
int relay_metrics_format(const struct relay_metrics *m, const struct relay_metrics_gauges *g,
			 int64_t now_ms, char **ret_text, size_t *ret_len)
	__attribute__((warn_unused_result));

#endif
