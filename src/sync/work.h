/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_WORK_H
#define TANDEM_SYNC_WORK_H

#include <stdbool.h>

/*
 * A small pool of worker threads for CPU work the engine's loop should not
 * do itself (verifying and writing received blocks). Jobs are submitted
 * and collected on the loop thread; run() happens on a worker. The queue
 * is bounded: a full pool answers -EAGAIN and the caller does the work
 * itself, so memory stays bounded and nothing ever waits.
 *
 * Threads: work_submit, work_take and work_free on one thread (the loop);
 * run() on a worker, which touches only its job. Workers block every
 * signal.
 */

struct work_job {
	struct work_job *next; /* the pool's */
	void (*run)(struct work_job *j);
};

struct work;

/* Starts nthreads workers (1..8) for at most max_jobs jobs queued or
 * running at a time, and 2 x max_jobs submitted and not yet taken back.
 * Returns 0 and *ret, or -errno. */
int work_new(unsigned nthreads, unsigned max_jobs, struct work **ret)
	__attribute__((warn_unused_result));

/* Waits for the jobs running, drops the queued ones (run not called) and
 * the done ones into *ret_left (a list the caller frees), stops the threads.
 * NULL is a no-op. */
void work_free(struct work *w, struct work_job **ret_left);

/* An eventfd: readable when done jobs wait for work_take(). */
int work_fd(const struct work *w);

/* Queues j. Returns 0, or -EAGAIN when max_jobs are queued or running, or
 * 2 x max_jobs were submitted and not taken back. */
int work_submit(struct work *w, struct work_job *j) __attribute__((warn_unused_result));

/* The done jobs, oldest first (a list through next), or NULL. */
struct work_job *work_take(struct work *w);

/* Jobs submitted and not yet taken back. */
unsigned work_pending(const struct work *w);

#endif
