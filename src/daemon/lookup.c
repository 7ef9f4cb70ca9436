/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "base/err.h"
#include "base/worker.h"
#include "daemon/lookup.h"
#include "base/log.h"

struct lookup {
	struct worker *w;
	/* protected by worker_lock(w): */
	bool fresh; /* result not taken yet */
	struct lookup_result result;

	struct relay_client *client; /* the job's only */
	struct fingerprint fp;
	struct backoff retry;
};

static void post(struct lookup *l, int err, const struct peer_record *rec,
		 const struct relay_result *res)
{
	worker_lock(l->w);
	l->result.err = err;
	if (err == 0) {
		l->result.rec = *rec;
		l->result.message[0] = '\0';
	} else {
		memcpy(l->result.message, res->message, sizeof(l->result.message));
	}
	l->fresh = true;
	worker_unlock(l->w);
	worker_post(l->w);
}

/* The worker's job, one lookup request: attempts until a record, or until
 * stopped. */
static void run_lookup(void *ud)
{
	struct lookup *l = ud;
	struct relay_result res;
	struct peer_record rec;

	for (unsigned attempt = 0;; attempt++) {
		int r = relay_client_lookup(l->client, &l->fp, relay_client_now(l->client), &rec,
						&res);

		if (r == -ECANCELED || worker_stopping(l->w))
			return;
		post(l, r, &rec, &res);
		if (r == 0)
			return;
		/*
		 * Only garbage or an impostor's records under the token: the peer
		 * can still add its own next to them (several writers per token,
		 * docs/RELAY.md), so that is retried like a 404. Anything else
		 * that is not transient is retried slowly.
		 */
		bool soon = relay_error_is_transient(r) || relay_lookup_error_is_squat(r);
		uint32_t ms = backoff_delay_ms(&l->retry, soon ? attempt : 30, res.retry_after,
					       randombytes_random());
		log_debug("relay lookup: %s; retrying in %u ms", res.message, ms);
		if (relay_client_wait(l->client, ms) < 0)
			return;
	}
}

int lookup_start(const char *url, const struct relay_client_opts *opts,
		 const struct fingerprint *fp, const struct backoff *retry, struct lookup **ret,
		 struct err *err)
{
	struct relay_client_opts o = *opts;
	struct lookup *l;
	int r;

	err_clear(err);
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->fp = *fp;
	l->retry = *retry;
	/* The thread waits for a request before it touches l->client. */
	r = worker_start(run_lookup, l, &l->w);
	if (r < 0) {
		err_set(err, "cannot start the relay lookup: %s", strerror(-r));
		free(l);
		return r;
	}
	o.cancel_fd = worker_cancel_fd(l->w); /* readable for good once stopped */
	r = relay_client_new(url, &o, &l->client, err);
	if (r < 0) {
		worker_stop(l->w);
		free(l);
		return r;
	}
	*ret = l;
	return 0;
}

void lookup_request(struct lookup *l)
{
	worker_request(l->w);
}

int lookup_notify_fd(const struct lookup *l)
{
	return worker_notify_fd(l->w);
}

bool lookup_take(struct lookup *l, struct lookup_result *ret)
{
	bool fresh;

	worker_notify_clear(l->w);
	worker_lock(l->w);
	fresh = l->fresh;
	if (fresh)
		*ret = l->result;
	l->fresh = false;
	worker_unlock(l->w);
	return fresh;
}

void lookup_stop(struct lookup *l)
{
	if (!l)
		return;
	worker_stop(l->w); /* the request under way is cancelled, the thread joined */
	relay_client_free(l->client);
	free(l);
}
