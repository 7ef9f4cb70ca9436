/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/worker.h"

struct worker {
	/* Lock order: lock only; never held across a job. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool want;     /* protected by lock */
	bool stopping; /* protected by lock */

	void (*job)(void *ud);
	void *ud;
	int cancel_fd; /* eventfd: the run under way ends; for good after stop */
	int notify_fd; /* eventfd, written by the job */
	pthread_t thread;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		while (!w->want && !w->stopping)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stopping) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		w->want = false;
		pthread_mutex_unlock(&w->lock);
		w->job(w->ud);
	}
	return NULL;
}

static void fd_add(int fd)
{
	uint64_t one = 1;
	ssize_t n = write(fd, &one, sizeof(one));

	(void)n; /* an eventfd: it cannot fill up at one write per event */
}

static void fd_drain(int fd)
{
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof(v));

	(void)n; /* EAGAIN: nothing to drain */
}

int worker_start(void (*job)(void *ud), void *ud, struct worker **ret)
{
	struct worker *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	int r;

	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->job = job;
	w->ud = ud;
	w->notify_fd = -1;
	w->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->cancel_fd < 0)
		goto fail_errno;
	w->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->notify_fd < 0)
		goto fail_errno;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		goto fail;
	*ret = w;
	return 0;
fail_errno:
	r = -errno;
fail:
	if (w->cancel_fd >= 0)
		close(w->cancel_fd);
	if (w->notify_fd >= 0)
		close(w->notify_fd);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
	return r;
}

void worker_request(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->want = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void worker_lock(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
}

void worker_unlock(struct worker *w)
{
	pthread_mutex_unlock(&w->lock);
}

bool worker_stopping(struct worker *w)
{
	bool s;

	pthread_mutex_lock(&w->lock);
	s = w->stopping;
	pthread_mutex_unlock(&w->lock);
	return s;
}

int worker_cancel_fd(const struct worker *w)
{
	return w->cancel_fd;
}

void worker_cancel(struct worker *w)
{
	fd_add(w->cancel_fd);
}

void worker_cancel_clear(struct worker *w)
{
	fd_drain(w->cancel_fd);
}

void worker_post(struct worker *w)
{
	fd_add(w->notify_fd);
}

int worker_notify_fd(const struct worker *w)
{
	return w->notify_fd;
}

void worker_notify_clear(struct worker *w)
{
	fd_drain(w->notify_fd);
}

void worker_stop(struct worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	fd_add(w->cancel_fd);
	pthread_join(w->thread, NULL);
	close(w->cancel_fd);
	close(w->notify_fd);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
