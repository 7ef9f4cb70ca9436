/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_BASE_WORKER_H
#define TANDEM_BASE_WORKER_H

#include <stdbool.h>

/*
 * A worker thread that runs one blocking job at a time for the event loop
 * (the daemon's relay lookup and its relayed connections' dialer): the
 * loop asks with worker_request(), the thread runs job(ud), the job posts
 * its outcome with worker_post(), and the loop, woken by
 * worker_notify_fd() becoming readable, takes it. Requests made while a
 * run is under way fold into one more run.
 *
 * What the loop and the job share (the request's arguments, the outcome)
 * is the owner's, guarded by worker_lock(); never hold it across a
 * blocking call. A blocking call in the job gets worker_cancel_fd(): it
 * becomes readable on worker_cancel() (the run under way should end) and
 * for good on worker_stop().
 *
 * Threads: worker_start/request/cancel/cancel_clear/notify_clear/stop are
 * the loop thread's; worker_post and worker_stopping the job's; the lock
 * both. The thread blocks every signal (they are the loop's signalfd's).
 */

struct worker;

/* Starts the thread, idle. Returns 0 and *ret, or -errno. */
int worker_start(void (*job)(void *ud), void *ud, struct worker **ret)
	__attribute__((warn_unused_result));

/* Asks for a run of the job. */
void worker_request(struct worker *w);

void worker_lock(struct worker *w);
void worker_unlock(struct worker *w);

/* Job: whether worker_stop() was called (end the run now). */
bool worker_stopping(struct worker *w);

/* The fd blocking calls in the job watch to give up (read-only). */
int worker_cancel_fd(const struct worker *w);
/* Loop: the run under way should end (its blocking call sees the fd). */
void worker_cancel(struct worker *w);
/* Loop: forgets a cancel meant for a run that has ended, so that it does
 * not cut the next one short. */
void worker_cancel_clear(struct worker *w);

/* Job: an outcome is ready (notify_fd becomes readable). */
void worker_post(struct worker *w);
/* The fd the loop watches for outcomes. */
int worker_notify_fd(const struct worker *w);
/* Loop: drains notify_fd before it takes the outcome. */
void worker_notify_clear(struct worker *w);

/* Stops the job (cancel fd readable), joins the thread, frees w. NULL: no-op. */
void worker_stop(struct worker *w);

#endif
