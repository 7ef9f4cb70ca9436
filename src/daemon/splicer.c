/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/clock.h"
#include "daemon/splicer.h"

struct splicer {
	/* Lock order: lock only; never held across a dial. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool want;			       /* protected by lock: an attempt asked for */
	bool stopping;			       /* protected by lock */
	bool fresh;			       /* protected by lock: result not taken yet */
	uint8_t token[RELAY_SPLICE_TOKEN_LEN]; /* protected by lock */
	int side;			       /* protected by lock */
	int timeout_ms;			       /* protected by lock */
	struct splicer_result result;	       /* protected by lock */

	bool busy;     /* loop thread only: asked, result not taken */
	char *url;     /* read-only */
	int cancel_fd; /* eventfd: the attempt under way stops; drained by the loop */
	int notify_fd; /* eventfd, written by the worker */
	pthread_t thread;
};

static void *splicer_main(void *arg)
{
	struct splicer *s = arg;

	for (;;) {
		uint8_t token[RELAY_SPLICE_TOKEN_LEN];
		struct splicer_result res = {.fd = -1};
		struct err err = {.msg = ""};
		int side, timeout_ms;
		uint64_t t0, one = 1;
		ssize_t n;

		pthread_mutex_lock(&s->lock);
		while (!s->want && !s->stopping)
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->stopping) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		s->want = false;
		memcpy(token, s->token, sizeof(token));
		side = s->side;
		timeout_ms = s->timeout_ms;
		pthread_mutex_unlock(&s->lock);

		t0 = clock_mono_ms();
		res.err = relay_splice_dial(s->url, token, side, timeout_ms, s->cancel_fd, &res.fd,
					    &res.retry_after, &err);
		res.took_ms = clock_mono_ms() - t0;
		if (res.err < 0) {
			res.fd = -1;
			snprintf(res.message, sizeof(res.message), "%s",
				 err.msg[0] ? err.msg : strerror(-res.err));
		}
		pthread_mutex_lock(&s->lock);
		s->result = res;
		s->fresh = true;
		pthread_mutex_unlock(&s->lock);
		n = write(s->notify_fd, &one, sizeof(one));
		(void)n; /* one write per attempt: the counter cannot overflow */
	}
	return NULL;
}

int splicer_start(const char *url, struct splicer **ret, struct err *err)
{
	struct splicer *s;
	sigset_t all, old;
	int r;

	err_clear(err);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->result.fd = -1;
	s->cancel_fd = -1;
	s->notify_fd = -1;
	s->url = strdup(url);
	if (!s->url) {
		r = -ENOMEM;
		goto fail;
	}
	s->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->cancel_fd < 0)
		goto fail_errno;
	s->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->notify_fd < 0)
		goto fail_errno;
	/* Signals are for the loop thread's signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&s->thread, NULL, splicer_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		goto fail;
	*ret = s;
	return 0;
fail_errno:
	r = -errno;
fail:
	err_set(err, "cannot start the relayed connections' dialer: %s", strerror(-r));
	if (s->cancel_fd >= 0)
		close(s->cancel_fd);
	if (s->notify_fd >= 0)
		close(s->notify_fd);
	free(s->url);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return r;
}

void splicer_dial(struct splicer *s, const uint8_t token[static RELAY_SPLICE_TOKEN_LEN], int side,
		  int timeout_ms)
{
	if (s->busy)
		return;
	s->busy = true;
	pthread_mutex_lock(&s->lock);
	memcpy(s->token, token, RELAY_SPLICE_TOKEN_LEN);
	s->side = side;
	s->timeout_ms = timeout_ms;
	s->want = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void splicer_cancel(struct splicer *s)
{
	uint64_t one = 1;
	ssize_t n;

	if (!s->busy)
		return;
	n = write(s->cancel_fd, &one, sizeof(one));
	(void)n;
}

bool splicer_busy(const struct splicer *s)
{
	return s->busy;
}

int splicer_notify_fd(const struct splicer *s)
{
	return s->notify_fd;
}

bool splicer_take(struct splicer *s, struct splicer_result *ret)
{
	uint64_t v;
	bool fresh;
	ssize_t n = read(s->notify_fd, &v, sizeof(v));

	(void)n; /* EAGAIN: nothing new, the flag below says so too */
	pthread_mutex_lock(&s->lock);
	fresh = s->fresh;
	if (fresh) {
		*ret = s->result;
		s->result.fd = -1;
	}
	s->fresh = false;
	pthread_mutex_unlock(&s->lock);
	if (fresh) {
		/* The attempt is over: a cancel meant for it must not cut the
		 * next one short. Only this thread asks, so none is under way. */
		n = read(s->cancel_fd, &v, sizeof(v));
		(void)n;
		s->busy = false;
	}
	return fresh;
}

void splicer_stop(struct splicer *s)
{
	uint64_t one = 1;
	ssize_t n;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	n = write(s->cancel_fd, &one, sizeof(one));
	(void)n;
	pthread_join(s->thread, NULL);
	if (s->fresh && s->result.fd >= 0)
		close(s->result.fd);
	close(s->cancel_fd);
	close(s->notify_fd);
	free(s->url);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
