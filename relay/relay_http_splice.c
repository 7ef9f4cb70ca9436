/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * GET /v1/splice on microhttpd (relay_http_splice.h has the flow).
 *
 * A half (one splice request) lives from its request until both
 * microhttpd is done with it (mhd_done: the completion callback, which
 * comes right after the upgrade handler, or after an error reply) and it
 * has left the rendezvous and the pump (state H_DONE). Whoever sets the
 * second of the two frees it, under the hub's lock.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "relay_http_splice.h"
#include "relay_pairing.h"
#include "relay_splice.h"

#define SPLICE_PROTOCOL "tandem-splice/1"
#define RETRY_AFTER_S 10  /* for 429 and 503 */
#define GONE_CHECK_MS 500 /* how often waiting sockets are checked for a hang-up */

enum half_state {
	H_WAITING,   /* suspended in the rendezvous */
	H_ANSWER,    /* resumed: the access handler queues status */
	H_UPGRADING, /* 101 queued; the upgrade handler comes next */
	H_UPGRADED,  /* socket in hand, waiting for the peer's */
	H_SPLICING,  /* in the pump */
	H_DONE,	     /* out of the rendezvous and the pump */
};

struct splice_half {
	struct relay_half h; /* h.conn points back here */
	struct splice_hub *hub;
	struct MHD_Connection *conn;
	int conn_fd; /* its socket, to notice a hang-up while it waits */
	enum half_state state;
	struct splice_half *peer;	 /* once paired, until either is done */
	int status;			 /* H_ANSWER: 101 or an error */
	enum relay_splice_reject reject; /* H_ANSWER with an error */
	MHD_socket fd;
	struct MHD_UpgradeResponseHandle *urh;
	char *extra; /* bytes microhttpd read past the request */
	size_t extra_len;
	bool mhd_done;
	bool upgraded;			 /* microhttpd handed the socket over: no more HTTP on it */
	struct splice_half *prev, *next; /* every live half */
};

struct splice_hub {
	struct relay_core *core;
	unsigned wait_s, idle_s;
	pthread_mutex_t lock; /* protects everything below but the pump's own state */
	struct relay_pairing *pairing;
	struct relay_splice *pump;
	struct splice_half *all;
	struct relay_splice_stats stats; /* waiting, active and bytes are filled when read */
	unsigned active;
	bool stopping;
};

/*
 * microhttpd calls back into the hub with its own locks held (the
 * completion callback of an upgraded connection comes from its cleanup),
 * so the hub never calls microhttpd with its lock held: resumes and closes
 * are collected under the lock and done after it is released.
 */
#define ACTS_MAX 64

struct acts {
	size_t n;
	struct {
		struct MHD_Connection *resume; /* or */
		struct MHD_UpgradeResponseHandle *close;
	} v[ACTS_MAX];
};

static bool acts_full(const struct acts *a)
{
	return a->n + 2 > ACTS_MAX;
}

/* Runs and forgets the collected actions; call without the hub's lock. */
static void acts_run(struct acts *a)
{
	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i].close)
			(void)MHD_upgrade_action(a->v[i].close, MHD_UPGRADE_ACTION_CLOSE);
		else
			MHD_resume_connection(a->v[i].resume);
	}
	a->n = 0;
}

static void half_unlink_free(struct splice_hub *hub, struct splice_half *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		hub->all = x->next;
	if (x->next)
		x->next->prev = x->prev;
	free(x->extra);
	free(x);
}

/* Frees x when both microhttpd and the hub are done with it. */
static void half_maybe_free(struct splice_hub *hub, struct splice_half *x)
{
	if (x->mhd_done && x->state == H_DONE)
		half_unlink_free(hub, x);
}

/* x is done: out of the rendezvous, its socket back to microhttpd to close. */
static void half_close(struct splice_hub *hub, struct splice_half *x, struct acts *a)
{
	if (x->state == H_DONE)
		return;
	(void)relay_pairing_leave(hub->pairing, &x->h);
	if (x->urh) {
		a->v[a->n].resume = NULL;
		a->v[a->n++].close = x->urh;
	}
	x->urh = NULL;
	if (x->peer && x->peer->peer == x)
		x->peer->peer = NULL;
	x->peer = NULL;
	x->state = H_DONE;
}

/* A suspended half gets its answer: the access handler runs again. */
static void half_resume(struct splice_half *x, int status, enum relay_splice_reject why,
			struct acts *a)
{
	if (!x)
		return;
	x->state = H_ANSWER;
	x->status = status;
	x->reject = why;
	a->v[a->n].close = NULL;
	a->v[a->n++].resume = x->conn;
}

/* ---- the pump's callbacks ---- */

static void on_end(void *userdata, void *ctx, enum relay_splice_end why)
{
	struct splice_hub *hub = userdata;
	struct splice_half *a = ctx, *b;
	struct acts acts = {0};

	pthread_mutex_lock(&hub->lock);
	b = a->peer;
	half_close(hub, a, &acts);
	half_maybe_free(hub, a);
	if (b) {
		half_close(hub, b, &acts);
		half_maybe_free(hub, b);
	}
	hub->active--;
	hub->stats.ended[why]++;
	pthread_mutex_unlock(&hub->lock);
	acts_run(&acts);
	log_debug("a spliced session ended (%s)", why == RELAY_SPLICE_END_IDLE	   ? "idle"
						  : why == RELAY_SPLICE_END_CLOSED ? "closed"
						  : why == RELAY_SPLICE_END_ERROR  ? "socket error"
										   : "stopping");
}

static int64_t on_tick(void *userdata, int64_t now_ms)
{
	struct splice_hub *hub = userdata;
	struct relay_half *h = NULL;
	struct acts acts = {0};
	int64_t wake = INT64_MAX;
	unsigned n = 0;

	do {
		pthread_mutex_lock(&hub->lock);
		while (!acts_full(&acts) &&
		       (h = relay_pairing_expired(hub->pairing, now_ms, &wake))) {
			half_resume(h->conn, 504, RELAY_SPLICE_REJECT_WAIT_TIMEOUT, &acts);
			hub->stats.rejected[RELAY_SPLICE_REJECT_WAIT_TIMEOUT]++;
			n++;
		}
		pthread_mutex_unlock(&hub->lock);
		acts_run(&acts);
	} while (h);
	/*
	 * microhttpd does not watch a suspended connection: look for waiting
	 * sides that hung up (a dialer that gave up), so that the other side
	 * does not pair with a dead connection.
	 */
	bool more;
	do {
		more = false;
		pthread_mutex_lock(&hub->lock);
		for (struct splice_half *x = hub->all; x; x = x->next) {
			struct pollfd pfd = {.fd = x->conn_fd, .events = POLLRDHUP};
			if (x->state != H_WAITING || x->conn_fd < 0 || poll(&pfd, 1, 0) <= 0 ||
			    !(pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
				continue;
			if (acts_full(&acts)) {
				more = true;
				break;
			}
			(void)relay_pairing_leave(hub->pairing, &x->h);
			half_resume(x, 504, RELAY_SPLICE_REJECT_GONE, &acts);
			hub->stats.rejected[RELAY_SPLICE_REJECT_GONE]++;
		}
		if (relay_pairing_waiting(hub->pairing) && wake > now_ms + GONE_CHECK_MS)
			wake = now_ms + GONE_CHECK_MS;
		pthread_mutex_unlock(&hub->lock);
		acts_run(&acts);
	} while (more);
	if (n)
		log_debug("%u splice requests waited %u s for the other side in vain", n,
			  hub->wait_s);
	return wake;
}

static void stats_get(void *userdata, struct relay_splice_stats *ret)
{
	struct splice_hub *hub = userdata;

	pthread_mutex_lock(&hub->lock);
	*ret = hub->stats;
	ret->waiting = relay_pairing_waiting(hub->pairing);
	ret->active = hub->active;
	pthread_mutex_unlock(&hub->lock);
	ret->bytes_total = relay_splice_bytes(hub->pump);
}

/* ---- microhttpd's side ---- */

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
		       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct splice_half *x = cls, *y;
	struct splice_hub *hub = x->hub;
	struct acts acts = {0};
	int r = 0;

	(void)conn;
	(void)con_cls;
	pthread_mutex_lock(&hub->lock);
	x->fd = sock;
	x->urh = urh;
	x->upgraded = true;
	x->state = H_UPGRADED;
	if (extra_in_size) {
		x->extra = extra_in_size <= RELAY_SPLICE_BUF ? malloc(extra_in_size) : NULL;
		if (!x->extra)
			r = -ENOMEM;
		else
			memcpy(x->extra, extra_in, extra_in_size);
		x->extra_len = extra_in_size;
	}
	y = x->peer;
	if (r < 0 || !y || hub->stopping) {
		half_close(hub, x, &acts); /* the other side is gone: nothing to splice with */
		if (y)
			half_close(hub, y, &acts);
		goto out;
	}
	if (y->state != H_UPGRADED)
		goto out; /* the peer's upgrade comes later */
	r = relay_splice_add(hub->pump, y->fd, y->extra, y->extra_len, x->fd, x->extra,
			     x->extra_len, y);
	if (r < 0) {
		log_warn("cannot splice a session: %s", strerror(-r));
		half_close(hub, x, &acts);
		half_close(hub, y, &acts);
		half_maybe_free(hub, y);
		goto out;
	}
	x->state = y->state = H_SPLICING;
	hub->active++;
out:
	pthread_mutex_unlock(&hub->lock);
	acts_run(&acts);
}

/* Queues 101 with the upgrade handler for x. */
static enum MHD_Result queue_upgrade(struct splice_hub *hub, struct MHD_Connection *conn,
				     struct splice_half *x)
{
	struct MHD_Response *mr = MHD_create_response_for_upgrade(on_upgrade, x);
	enum MHD_Result ret = MHD_NO;

	/* microhttpd adds "Connection: Upgrade" itself */
	if (mr &&
	    MHD_add_response_header(mr, MHD_HTTP_HEADER_UPGRADE, SPLICE_PROTOCOL) == MHD_YES &&
	    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES)
		ret = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, mr);
	if (mr)
		MHD_destroy_response(mr);
	log_debug("GET /v1/splice -> 101");
	relay_core_count(hub->core, 101, 0);
	return ret;
}

/* The error answer for a refusal, counted. */
static enum MHD_Result answer_error(struct splice_hub *hub, struct MHD_Connection *conn, int status,
				    enum relay_splice_reject why)
{
	struct relay_response resp;
	int reason = 0;

	switch (why) {
	case RELAY_SPLICE_REJECT_CAPACITY:
		relay_core_error(
			&resp, 503, "capacity",
			"the relay splices as many sessions as it may (%s); retry later or "
			"use another relay",
			"--max-splice-sessions");
		resp.retry_after = RETRY_AFTER_S;
		break;
	case RELAY_SPLICE_REJECT_PER_CLIENT:
		relay_core_error(&resp, 429, "too_many_sessions",
				 "your address already holds as many splice connections as the "
				 "relay allows one client; close one or retry later");
		resp.retry_after = RETRY_AFTER_S;
		reason = RELAY_REASON_TOO_MANY_SESSIONS;
		break;
	case RELAY_SPLICE_REJECT_BUSY:
		relay_core_error(&resp, 409, "session_busy",
				 "two peers are already spliced under this token; a third "
				 "connection is refused");
		break;
	case RELAY_SPLICE_REJECT_WAIT_TIMEOUT:
		relay_core_error(&resp, 504, "peer_timeout",
				 "the other peer did not connect within %u seconds; it may be "
				 "offline or compute another token (check both clocks), retry",
				 hub->wait_s);
		break;
	case RELAY_SPLICE_REJECT_REPLACED:
		relay_core_error(&resp, 409, "replaced",
				 "a newer connection of the same side took this one's place");
		break;
	case RELAY_SPLICE_REJECT_GONE:
		relay_core_error(&resp, 504, "gone",
				 "this connection hung up while it waited for the other side");
		break;
	case RELAY_SPLICE_REJECT_STOPPING:
		relay_core_error(&resp, 503, "stopping",
				 "the relay is stopping; retry in a moment or use another relay");
		resp.retry_after = RETRY_AFTER_S;
		break;
	default:
		relay_core_error(&resp, 500, "internal",
				 "the relay is out of memory; retry in a moment");
		break;
	}
	(void)status;
	resp.route = "/v1/splice";
	relay_core_count(hub->core, resp.status, reason);
	return relay_http_respond(conn, "GET", &resp);
}

enum MHD_Result splice_hub_request(struct splice_hub *hub, struct MHD_Connection *conn,
				   const struct relay_client_key *client,
				   struct relay_response *resp, struct splice_half **ret_half)
{
	struct splice_half *x = calloc(1, sizeof(*x)), *other = NULL;
	struct relay_half *oh = NULL;
	enum relay_pair_result r = RELAY_PAIR_NOMEM;
	enum relay_splice_reject why = RELAY_SPLICE_REJECT_COUNT;
	struct acts acts = {0};
	int status = 500;

	if (!x) {
		relay_core_response_done(resp);
		return answer_error(hub, conn, 500, why);
	}
	x->h.key = *client;
	x->h.side = resp->splice_side;
	x->h.conn = x;
	x->hub = hub;
	x->conn = conn;
	x->fd = MHD_INVALID_SOCKET;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	x->conn_fd = ci ? ci->connect_fd : -1;
	*ret_half = x;
	/*
	 * Suspended before anyone can see it, so that nobody resumes it first;
	 * every answer, even an immediate one, is then given by
	 * splice_hub_resumed.
	 */
	MHD_suspend_connection(conn);
	pthread_mutex_lock(&hub->lock);
	x->next = hub->all;
	if (hub->all)
		hub->all->prev = x;
	hub->all = x;
	if (hub->stopping) {
		why = RELAY_SPLICE_REJECT_STOPPING;
		status = 503;
		goto refuse;
	}
	r = relay_pairing_join(hub->pairing, resp->splice_token, &x->h, (int64_t)clock_mono_ms(),
			       &oh);
	if (oh)
		other = oh->conn;
	switch (r) {
	case RELAY_PAIR_WAIT:
		x->state = H_WAITING;
		if (other) {
			half_resume(other, 409, RELAY_SPLICE_REJECT_REPLACED, &acts);
			hub->stats.rejected[RELAY_SPLICE_REJECT_REPLACED]++;
		}
		pthread_mutex_unlock(&hub->lock);
		acts_run(&acts);
		relay_splice_wake(hub->pump);
		relay_core_response_done(resp);
		log_debug("GET /v1/splice: waiting for the other side");
		return MHD_YES;
	case RELAY_PAIR_PAIRED:
		if (!other)
			break; /* cannot be: a pair has two halves */
		x->peer = other;
		other->peer = x;
		half_resume(other, 101, RELAY_SPLICE_REJECT_COUNT, &acts);
		half_resume(x, 101, RELAY_SPLICE_REJECT_COUNT, &acts);
		hub->stats.paired_total++;
		pthread_mutex_unlock(&hub->lock);
		acts_run(&acts);
		relay_core_response_done(resp);
		return MHD_YES;
	case RELAY_PAIR_BUSY:
		why = RELAY_SPLICE_REJECT_BUSY;
		status = 409;
		break;
	case RELAY_PAIR_FULL:
		why = RELAY_SPLICE_REJECT_CAPACITY;
		status = 503;
		break;
	case RELAY_PAIR_PER_CLIENT:
		why = RELAY_SPLICE_REJECT_PER_CLIENT;
		status = 429;
		break;
	case RELAY_PAIR_NOMEM:
		break;
	}
refuse:
	if (why < RELAY_SPLICE_REJECT_COUNT)
		hub->stats.rejected[why]++;
	half_resume(x, status, why, &acts);
	pthread_mutex_unlock(&hub->lock);
	acts_run(&acts);
	relay_core_response_done(resp);
	return MHD_YES;
}

enum MHD_Result splice_hub_resumed(struct splice_hub *hub, struct MHD_Connection *conn,
				   struct splice_half *x)
{
	enum relay_splice_reject why;
	int status;

	pthread_mutex_lock(&hub->lock);
	if (x->state != H_ANSWER) {
		/* called again without an answer to give (not expected): keep waiting */
		pthread_mutex_unlock(&hub->lock);
		return MHD_YES;
	}
	status = x->status;
	why = x->reject;
	if (status == 101 && !x->peer) {
		/* the peer's connection failed before its 101: nothing to splice with */
		status = 504;
		why = RELAY_SPLICE_REJECT_WAIT_TIMEOUT;
	}
	x->state = status == 101 ? H_UPGRADING : H_DONE;
	pthread_mutex_unlock(&hub->lock);
	if (status == 101)
		return queue_upgrade(hub, conn, x);
	return answer_error(hub, conn, status, why);
}

bool splice_hub_completed(struct splice_hub *hub, struct splice_half *x)
{
	struct acts acts = {0};
	bool upgraded;

	pthread_mutex_lock(&hub->lock);
	x->mhd_done = true;
	upgraded = x->upgraded;
	if (x->state == H_UPGRADING || x->state == H_ANSWER || x->state == H_WAITING) {
		/* the connection failed before it was upgraded */
		struct splice_half *y = x->peer;
		half_close(hub, x, &acts);
		if (y && y->state == H_UPGRADED) {
			half_close(hub, y, &acts);
			half_maybe_free(hub, y);
		}
	}
	half_maybe_free(hub, x);
	pthread_mutex_unlock(&hub->lock);
	acts_run(&acts);
	return upgraded;
}

/* ---- the hub ---- */

int splice_hub_new(const struct relay_config *cfg, struct relay_core *core, struct splice_hub **ret)
{
	struct relay_splice_config pc = {
		.session_rate = cfg->splice_rate,
		.total_rate = cfg->splice_total_rate,
		.idle_ms = (int64_t)cfg->splice_idle_timeout * 1000,
	};
	struct splice_hub *hub = calloc(1, sizeof(*hub));
	int r;

	if (!hub)
		return -ENOMEM;
	hub->core = core;
	hub->wait_s = cfg->splice_wait_timeout;
	hub->idle_s = cfg->splice_idle_timeout;
	r = relay_pairing_new(cfg->max_splice_sessions, cfg->max_splice_sessions_per_client,
			      (int64_t)cfg->splice_wait_timeout * 1000, &hub->pairing);
	if (r < 0)
		goto fail;
	r = relay_splice_new(&pc, on_end, on_tick, hub, &hub->pump);
	if (r < 0)
		goto fail;
	r = -pthread_mutex_init(&hub->lock, NULL);
	if (r < 0)
		goto fail;
	hub->stopping = true; /* until started */
	relay_core_set_splice_stats(core, stats_get, hub);
	*ret = hub;
	return 0;
fail:
	relay_splice_free(hub->pump);
	relay_pairing_free(hub->pairing);
	free(hub);
	return r;
}

int splice_hub_start(struct splice_hub *hub)
{
	int r = relay_splice_start(hub->pump);

	if (r < 0) {
		log_err("cannot start the relay's splice thread: %s", strerror(-r));
		return r;
	}
	pthread_mutex_lock(&hub->lock);
	hub->stopping = false;
	pthread_mutex_unlock(&hub->lock);
	return 0;
}

void splice_hub_stop(struct splice_hub *hub)
{
	unsigned n = 0, active;
	struct acts acts = {0};
	bool more;

	pthread_mutex_lock(&hub->lock);
	hub->stopping = true;
	active = hub->active;
	pthread_mutex_unlock(&hub->lock);
	do {
		more = false;
		pthread_mutex_lock(&hub->lock);
		for (struct splice_half *x = hub->all; x; x = x->next) {
			if (x->state != H_WAITING)
				continue;
			if (acts_full(&acts)) {
				more = true;
				break;
			}
			(void)relay_pairing_leave(hub->pairing, &x->h);
			half_resume(x, 503, RELAY_SPLICE_REJECT_STOPPING, &acts);
			hub->stats.rejected[RELAY_SPLICE_REJECT_STOPPING]++;
			n++;
		}
		pthread_mutex_unlock(&hub->lock);
		acts_run(&acts);
	} while (more);
	if (n || active)
		log_info("stopping: ending %u spliced sessions and %u waiting splice requests",
			 active, n);
	relay_splice_stop(hub->pump);
}

void splice_hub_free(struct splice_hub *hub)
{
	if (!hub)
		return;
	relay_splice_free(hub->pump);
	while (hub->all) {
		/* microhttpd has stopped: nothing calls back any more */
		hub->all->h.session = NULL;
		half_unlink_free(hub, hub->all);
	}
	relay_pairing_free(hub->pairing);
	relay_core_set_splice_stats(hub->core, NULL, NULL);
	pthread_mutex_destroy(&hub->lock);
	free(hub);
}
