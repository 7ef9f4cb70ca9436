/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/worker.h"
#include "daemon/splicer.h"

struct splicer {
	struct worker *w;
	/* protected by worker_lock(w): */
	uint8_t token[RELAY_SPLICE_TOKEN_LEN];
	int side;
	int timeout_ms;
	bool fresh; /* result not taken yet */
	struct splicer_result result;

	bool busy; /* loop thread only: asked, result not taken */
	char *url; /* read-only */
};

/* The worker's job: one relay_splice_dial with the request's arguments. */
static void splicer_job(void *ud)
{
	struct splicer *s = ud;
	uint8_t token[RELAY_SPLICE_TOKEN_LEN];
	struct splicer_result res = {.fd = -1};
	struct err err = {.msg = ""};
	int side, timeout_ms;
	uint64_t t0;

	worker_lock(s->w);
	memcpy(token, s->token, sizeof(token));
	side = s->side;
	timeout_ms = s->timeout_ms;
	worker_unlock(s->w);

	t0 = clock_mono_ms();
	res.err = relay_splice_dial(s->url, token, side, timeout_ms, worker_cancel_fd(s->w), &res.fd,
				    &res.retry_after, &err);
	res.took_ms = clock_mono_ms() - t0;
	if (res.err < 0) {
		res.fd = -1;
		snprintf(res.message, sizeof(res.message), "%s",
			 err.msg[0] ? err.msg : strerror(-res.err));
	}
	worker_lock(s->w);
	s->result = res;
	s->fresh = true;
	worker_unlock(s->w);
	worker_post(s->w);
}

int splicer_start(const char *url, struct splicer **ret, struct err *err)
{
	struct splicer *s;
	int r;

	err_clear(err);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->result.fd = -1;
	s->url = strdup(url);
	r = s->url ? worker_start(splicer_job, s, &s->w) : -ENOMEM;
	if (r < 0) {
		err_set(err, "cannot start the relayed connections' dialer: %s", strerror(-r));
		free(s->url);
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void splicer_dial(struct splicer *s, const uint8_t token[static RELAY_SPLICE_TOKEN_LEN], int side,
		  int timeout_ms)
{
	if (s->busy)
		return;
	s->busy = true;
	worker_lock(s->w);
	memcpy(s->token, token, RELAY_SPLICE_TOKEN_LEN);
	s->side = side;
	s->timeout_ms = timeout_ms;
	worker_unlock(s->w);
	worker_request(s->w);
}

void splicer_cancel(struct splicer *s)
{
	if (s->busy)
		worker_cancel(s->w);
}

bool splicer_busy(const struct splicer *s)
{
	return s->busy;
}

int splicer_notify_fd(const struct splicer *s)
{
	return worker_notify_fd(s->w);
}

bool splicer_take(struct splicer *s, struct splicer_result *ret)
{
	bool fresh;

	worker_notify_clear(s->w);
	worker_lock(s->w);
	fresh = s->fresh;
	if (fresh) {
		*ret = s->result;
		s->result.fd = -1;
	}
	s->fresh = false;
	worker_unlock(s->w);
	if (fresh) {
		/* The attempt is over: a cancel meant for it must not cut the
		 * next one short. Only this thread asks, so none is under way. */
		worker_cancel_clear(s->w);
		s->busy = false;
	}
	return fresh;
}

void splicer_stop(struct splicer *s)
{
	if (!s)
		return;
	worker_stop(s->w); /* the attempt under way is cancelled, the thread joined */
	if (s->fresh && s->result.fd >= 0)
		close(s->result.fd);
	free(s->url);
	free(s);
}
