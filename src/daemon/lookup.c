/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "base/err.h"
#include "daemon/lookup.h"
#include "log.h"

struct lookup {
	/* Lock order: lock only; never held across a request or a wait. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool want;		     /* protected by lock */
	bool stopping;		     /* protected by lock */
	bool fresh;		     /* protected by lock: result not taken yet */
	struct lookup_result result; /* protected by lock */

	struct relay_client *client; /* worker thread only */
	struct fingerprint fp;
	struct backoff retry;
	int cancel_fd; /* eventfd, written once by lookup_stop */
	int notify_fd; /* eventfd, written by the worker */
	pthread_t thread;
};

static bool stopping(struct lookup *l)
{
	bool s;

	pthread_mutex_lock(&l->lock);
	s = l->stopping;
	pthread_mutex_unlock(&l->lock);
	return s;
}

static void post(struct lookup *l, int err, const struct peer_record *rec,
		 const struct relay_result *res)
{
	uint64_t one = 1;
	ssize_t n;

	pthread_mutex_lock(&l->lock);
	l->result.err = err;
	if (err == 0) {
		l->result.rec = *rec;
		l->result.message[0] = '\0';
	} else {
		memcpy(l->result.message, res->message, sizeof(l->result.message));
	}
	l->fresh = true;
	pthread_mutex_unlock(&l->lock);
	n = write(l->notify_fd, &one, sizeof(one));
	(void)n; /* the counter cannot overflow at one write per attempt */
}

/* One lookup request: attempts until a record, or until stopped. */
static void run_lookup(struct lookup *l)
{
	struct relay_result res;
	struct peer_record rec;

	for (unsigned attempt = 0;; attempt++) {
		int r = relay_client_lookup(l->client, &l->fp, relay_client_now(l->client), &rec,
						&res);

		if (r == -ECANCELED || stopping(l))
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

static void *lookup_main(void *arg)
{
	struct lookup *l = arg;

	for (;;) {
		pthread_mutex_lock(&l->lock);
		while (!l->want && !l->stopping)
			pthread_cond_wait(&l->cond, &l->lock);
		if (l->stopping) {
			pthread_mutex_unlock(&l->lock);
			break;
		}
		l->want = false;
		pthread_mutex_unlock(&l->lock);
		run_lookup(l);
	}
	return NULL;
}

int lookup_start(const char *url, const struct relay_client_opts *opts,
		 const struct fingerprint *fp, const struct backoff *retry, struct lookup **ret,
		 struct err *err)
{
	struct relay_client_opts o = *opts;
	struct lookup *l;
	sigset_t all, old;
	int r;

	err_clear(err);
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	l->fp = *fp;
	l->retry = *retry;
	l->notify_fd = -1;
	l->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->cancel_fd < 0)
		goto fail_errno;
	l->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->notify_fd < 0)
		goto fail_errno;
	o.cancel_fd = l->cancel_fd;
	r = relay_client_new(url, &o, &l->client, err);
	if (r < 0)
		goto fail;

	/* Signals are for the loop thread's signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&l->thread, NULL, lookup_main, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		goto fail;
	*ret = l;
	return 0;
fail_errno:
	r = -errno;
fail:
	if (!err_is_set(err))
		err_set(err, "cannot start the relay lookup: %s", strerror(-r));
	relay_client_free(l->client);
	if (l->cancel_fd >= 0)
		close(l->cancel_fd);
	if (l->notify_fd >= 0)
		close(l->notify_fd);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
	return r;
}

void lookup_request(struct lookup *l)
{
	pthread_mutex_lock(&l->lock);
	l->want = true;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

int lookup_notify_fd(const struct lookup *l)
{
	return l->notify_fd;
}

bool lookup_take(struct lookup *l, struct lookup_result *ret)
{
	uint64_t v;
	bool fresh;
	ssize_t n = read(l->notify_fd, &v, sizeof(v));

	(void)n; /* EAGAIN: nothing new, the flag below says so too */
	pthread_mutex_lock(&l->lock);
	fresh = l->fresh;
	if (fresh)
		*ret = l->result;
	l->fresh = false;
	pthread_mutex_unlock(&l->lock);
	return fresh;
}

void lookup_stop(struct lookup *l)
{
	uint64_t one = 1;
	ssize_t n;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->stopping = true;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
	n = write(l->cancel_fd, &one, sizeof(one));
	(void)n;
	pthread_join(l->thread, NULL);
	relay_client_free(l->client);
	close(l->cancel_fd);
	close(l->notify_fd);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
}
