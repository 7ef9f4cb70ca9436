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
	RELAY_REASON_TOO_MANY_SESSIONS, /* 429: the client's splice session cap */
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
#define RELAY_METRICS_STATUSES \
	101, 200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 426, 429, 500, 501, 503, 504
#define RELAY_METRICS_NSTATUS 17

/* Why a splice request was refused; the label of tandem_relay_splice_rejections_total. */
enum relay_splice_reject {
	RELAY_SPLICE_REJECT_CAPACITY = 0, /* 503: --max-splice-sessions */
	RELAY_SPLICE_REJECT_PER_CLIENT,	  /* 429: --max-splice-sessions-per-client */
	RELAY_SPLICE_REJECT_BUSY,	  /* 409: the token's two sides are spliced already */
	RELAY_SPLICE_REJECT_WAIT_TIMEOUT, /* 504: the other side did not come */
	RELAY_SPLICE_REJECT_REPLACED,	  /* 409: a newer connection of the same side */
	RELAY_SPLICE_REJECT_STOPPING,	  /* 503: the relay stops */
	RELAY_SPLICE_REJECT_GONE,	  /* the waiting side hung up before the other came */
	RELAY_SPLICE_REJECT_COUNT,
};

/* Why a spliced session ended; the label of tandem_relay_splice_sessions_ended_total. */
enum relay_splice_end {
	RELAY_SPLICE_END_CLOSED = 0, /* both peers closed their side */
	RELAY_SPLICE_END_IDLE,	     /* no byte either way for --splice-idle-timeout */
	RELAY_SPLICE_END_ERROR,	     /* a socket error (reset by a peer, ...) */
	RELAY_SPLICE_END_STOPPING,   /* the relay stops */
	RELAY_SPLICE_END_COUNT,
};

/* The splice's numbers, read from the HTTP layer when rendering. */
struct relay_splice_stats {
	unsigned waiting;      /* sessions whose first side waits */
	unsigned active;       /* sessions being spliced */
	uint64_t paired_total; /* sessions that were paired */
	uint64_t rejected[RELAY_SPLICE_REJECT_COUNT];
	uint64_t ended[RELAY_SPLICE_END_COUNT];
	uint64_t bytes_total; /* bytes copied, both ways */
};

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
	const struct relay_splice_stats *splice; /* NULL: no splice metrics */
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
