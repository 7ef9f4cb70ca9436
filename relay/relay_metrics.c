/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay_metrics.h"

static const int statuses[RELAY_METRICS_NSTATUS] = {RELAY_METRICS_STATUSES};

static const char *const reason_names[RELAY_REASON_COUNT] = {
	[RELAY_REASON_NONE] = "",
	[RELAY_REASON_RATE_LIMITED] = "rate_limited",
	[RELAY_REASON_CAPACITY] = "capacity",
	[RELAY_REASON_TOO_LARGE] = "too_large",
	[RELAY_REASON_UNAUTHORIZED] = "unauthorized",
	[RELAY_REASON_FORBIDDEN] = "forbidden",
	[RELAY_REASON_BAD_REQUEST] = "bad_request",
	[RELAY_REASON_TOO_MANY_RECORDS] = "too_many_records",
	[RELAY_REASON_TOO_MANY_SESSIONS] = "too_many_sessions",
};

static const char *const splice_reject_names[RELAY_SPLICE_REJECT_COUNT] = {
	[RELAY_SPLICE_REJECT_CAPACITY] = "capacity",
	[RELAY_SPLICE_REJECT_PER_CLIENT] = "per_client",
	[RELAY_SPLICE_REJECT_BUSY] = "busy",
	[RELAY_SPLICE_REJECT_WAIT_TIMEOUT] = "wait_timeout",
	[RELAY_SPLICE_REJECT_REPLACED] = "replaced",
	[RELAY_SPLICE_REJECT_STOPPING] = "stopping",
	[RELAY_SPLICE_REJECT_GONE] = "gone",
};

static const char *const splice_end_names[RELAY_SPLICE_END_COUNT] = {
	[RELAY_SPLICE_END_CLOSED] = "closed",
	[RELAY_SPLICE_END_IDLE] = "idle",
	[RELAY_SPLICE_END_ERROR] = "error",
	[RELAY_SPLICE_END_STOPPING] = "stopping",
};

static const char *const close_names[RELAY_CLOSE_COUNT] = {
	[RELAY_CLOSE_DEADLINE] = "deadline",
	[RELAY_CLOSE_EVICTED] = "evicted",
	[RELAY_CLOSE_PER_CLIENT] = "per_client",
};

void relay_metrics_init(struct relay_metrics *m, int64_t now_ms)
{
	memset(m, 0, sizeof(*m));
	m->start_ms = now_ms;
}

void relay_metrics_count(struct relay_metrics *m, int status, enum relay_reason reason)
{
	size_t i;

	for (i = 0; i < RELAY_METRICS_NSTATUS; i++)
		if (statuses[i] == status)
			break;
	if (i < RELAY_METRICS_NSTATUS)
		m->by_status[i]++;
	else
		m->other_status++;
	if (reason > RELAY_REASON_NONE && reason < RELAY_REASON_COUNT)
		m->by_reason[reason]++;
}

const char *relay_metrics_reason_name(enum relay_reason reason)
{
	if (reason < RELAY_REASON_NONE || reason >= RELAY_REASON_COUNT)
		return "";
	return reason_names[reason];
}

/* A bounded text buffer; the output has a fixed number of short lines. */
struct text {
	char *buf;
	size_t len, cap;
	int failed;
};

__attribute__((format(printf, 2, 3))) static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= t->cap - t->len) {
		t->failed = 1;
		return;
	}
	t->len += (size_t)n;
}

static void splice_add(struct text *t, const struct relay_splice_stats *s)
{
	text_add(t,
		 "# HELP tandem_relay_splice_sessions Splice sessions now, by state.\n"
		 "# TYPE tandem_relay_splice_sessions gauge\n"
		 "tandem_relay_splice_sessions{state=\"waiting\"} %u\n"
		 "tandem_relay_splice_sessions{state=\"active\"} %u\n",
		 s->waiting, s->active);
	text_add(t,
		 "# HELP tandem_relay_splice_sessions_total Splice sessions whose two sides met.\n"
		 "# TYPE tandem_relay_splice_sessions_total counter\n"
		 "tandem_relay_splice_sessions_total %" PRIu64 "\n",
		 s->paired_total);
	text_add(t, "# HELP tandem_relay_splice_rejections_total Splice requests refused, by "
		    "reason.\n"
		    "# TYPE tandem_relay_splice_rejections_total counter\n");
	for (int r = 0; r < RELAY_SPLICE_REJECT_COUNT; r++)
		text_add(t, "tandem_relay_splice_rejections_total{reason=\"%s\"} %" PRIu64 "\n",
			 splice_reject_names[r], s->rejected[r]);
	text_add(t, "# HELP tandem_relay_splice_sessions_ended_total Spliced sessions that "
		    "ended, by reason.\n"
		    "# TYPE tandem_relay_splice_sessions_ended_total counter\n");
	for (int r = 0; r < RELAY_SPLICE_END_COUNT; r++)
		text_add(t, "tandem_relay_splice_sessions_ended_total{reason=\"%s\"} %" PRIu64 "\n",
			 splice_end_names[r], s->ended[r]);
	text_add(t,
		 "# HELP tandem_relay_splice_bytes_total Bytes copied between spliced peers, both "
		 "ways.\n"
		 "# TYPE tandem_relay_splice_bytes_total counter\n"
		 "tandem_relay_splice_bytes_total %" PRIu64 "\n",
		 s->bytes_total);
}

int relay_metrics_format(const struct relay_metrics *m, const struct relay_metrics_gauges *g,
			 int64_t now_ms, char **ret_text, size_t *ret_len)
{
	struct text t = {.cap = 8192};
	int64_t up = now_ms > m->start_ms ? (now_ms - m->start_ms) / 1000 : 0;

	t.buf = malloc(t.cap);
	if (!t.buf)
		return -ENOMEM;
	text_add(&t,
		 "# HELP tandem_relay_records Records stored now.\n"
		 "# TYPE tandem_relay_records gauge\n"
		 "tandem_relay_records %zu\n",
		 g->records);
	text_add(&t,
		 "# HELP tandem_relay_records_max Records the relay holds at most.\n"
		 "# TYPE tandem_relay_records_max gauge\n"
		 "tandem_relay_records_max %zu\n",
		 g->max_records);
	text_add(&t,
		 "# HELP tandem_relay_records_expired_total Records dropped by expiry.\n"
		 "# TYPE tandem_relay_records_expired_total counter\n"
		 "tandem_relay_records_expired_total %" PRIu64 "\n",
		 g->expired_total);
	text_add(&t,
		 "# HELP tandem_relay_records_evicted_total Records pushed out of a full token by "
		 "a new writer.\n"
		 "# TYPE tandem_relay_records_evicted_total counter\n"
		 "tandem_relay_records_evicted_total %" PRIu64 "\n",
		 g->evicted_total);
	text_add(&t,
		 "# HELP tandem_relay_rate_limit_clients Clients tracked by the rate limiter.\n"
		 "# TYPE tandem_relay_rate_limit_clients gauge\n"
		 "tandem_relay_rate_limit_clients %zu\n",
		 g->clients);
	text_add(&t, "# HELP tandem_relay_requests_total Requests answered, by HTTP status.\n"
		     "# TYPE tandem_relay_requests_total counter\n");
	for (size_t i = 0; i < RELAY_METRICS_NSTATUS; i++)
		text_add(&t, "tandem_relay_requests_total{status=\"%d\"} %" PRIu64 "\n",
			 statuses[i], m->by_status[i]);
	text_add(&t, "tandem_relay_requests_total{status=\"other\"} %" PRIu64 "\n",
		 m->other_status);
	text_add(&t, "# HELP tandem_relay_rejections_total Requests refused, by reason.\n"
		     "# TYPE tandem_relay_rejections_total counter\n");
	for (int r = RELAY_REASON_NONE + 1; r < RELAY_REASON_COUNT; r++)
		text_add(&t, "tandem_relay_rejections_total{reason=\"%s\"} %" PRIu64 "\n",
			 reason_names[r], m->by_reason[r]);
	text_add(&t, "# HELP tandem_relay_connections_closed_total Connections the relay closed "
		     "before their request was in, by reason.\n"
		     "# TYPE tandem_relay_connections_closed_total counter\n");
	for (int r = 0; r < RELAY_CLOSE_COUNT; r++)
		text_add(&t, "tandem_relay_connections_closed_total{reason=\"%s\"} %" PRIu64 "\n",
			 close_names[r], m->closed[r]);
	if (g->splice)
		splice_add(&t, g->splice);
	text_add(&t,
		 "# HELP tandem_relay_uptime_seconds Seconds since the relay started.\n"
		 "# TYPE tandem_relay_uptime_seconds gauge\n"
		 "tandem_relay_uptime_seconds %" PRId64 "\n",
		 up);
	if (t.failed) {
		free(t.buf);
		return -ENOMEM;
	}
	*ret_text = t.buf;
	*ret_len = t.len;
	return 0;
}
