/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sync/work.h"

#define WORK_THREADS_MAX 8
#define WORK_DONE_FACTOR 2 /* submitted, not taken back: up to 2 x max_jobs */

/* Lock order: just lock. */
struct work {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct work_job *todo, *todo_tail; /* protected by lock */
	struct work_job *done, *done_tail; /* protected by lock */
	bool stop;			   /* protected by lock */
	unsigned busy;			   /* queued or running; protected by lock */
	unsigned pending;		   /* loop thread only */
	unsigned max;
	unsigned nthreads;
	pthread_t threads[WORK_THREADS_MAX];
	int efd;
};

static void *worker(void *arg)
{
	struct work *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->todo && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop)
			break;
		struct work_job *j = w->todo;
		w->todo = j->next;
		if (!w->todo)
			w->todo_tail = NULL;
		pthread_mutex_unlock(&w->lock);

		j->run(j);

		pthread_mutex_lock(&w->lock);
		w->busy--;
		j->next = NULL;
		if (w->done_tail)
			w->done_tail->next = j;
		else
			w->done = j;
		w->done_tail = j;
		uint64_t one = 1;
		ssize_t n = write(w->efd, &one, sizeof(one));
		(void)n; /* a full counter still wakes the loop */
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int work_new(unsigned nthreads, unsigned max_jobs, struct work **ret)
{
	struct work *w;
	sigset_t all, old;
	int r = 0;

	if (nthreads < 1 || nthreads > WORK_THREADS_MAX || max_jobs < 1)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->max = max_jobs;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		r = -errno;
		free(w);
		return r;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (; w->nthreads < nthreads; w->nthreads++) {
		r = -pthread_create(&w->threads[w->nthreads], NULL, worker, w);
		if (r < 0)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		work_free(w, NULL);
		return r;
	}
	*ret = w;
	return 0;
}

void work_free(struct work *w, struct work_job **ret_left)
{
	struct work_job *left = NULL, *j;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	/* done first, then the ones never run */
	left = w->done;
	if (w->done_tail)
		w->done_tail->next = w->todo;
	else
		left = w->todo;
	if (ret_left)
		*ret_left = left;
	else
		for (; left; left = j) {
			j = left->next;
			free(left);
		}
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	close(w->efd);
	free(w);
}

int work_fd(const struct work *w)
{
	return w->efd;
}

int work_submit(struct work *w, struct work_job *j)
{
	/*
	 * Jobs done but not taken back yet count only against the larger
	 * bound: a loop busy reading a burst of blocks from the socket takes
	 * them back late, and counting them as busy had it verify and write
	 * (buffered) one block in ten itself while the workers sat idle.
	 */
	if (w->pending >= w->max * WORK_DONE_FACTOR)
		return -EAGAIN;
	j->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->busy >= w->max) {
		pthread_mutex_unlock(&w->lock);
		return -EAGAIN;
	}
	w->busy++;
	if (w->todo_tail)
		w->todo_tail->next = j;
	else
		w->todo = j;
	w->todo_tail = j;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	w->pending++;
	return 0;
}

struct work_job *work_take(struct work *w)
{
	struct work_job *list;
	uint64_t v;

	if (read(w->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return NULL;
	pthread_mutex_lock(&w->lock);
	list = w->done;
	w->done = w->done_tail = NULL;
	pthread_mutex_unlock(&w->lock);
	for (struct work_job *j = list; j; j = j->next)
		w->pending--;
	return list;
}

unsigned work_pending(const struct work *w)
{
	return w->pending;
}
