/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <unistd.h>

#include "base/worker.h"
#include "tap.h"

/* What the loop and the job share, guarded by worker_lock(). */
struct job_state {
	struct worker *w;
	int runs;	     /* runs finished */
	bool block;	     /* the job waits on the cancel fd until it is readable */
	bool cancelled;	     /* the last run saw the cancel fd readable */
	bool started;	     /* a run has begun */
	pthread_mutex_t mu;  /* for started, read by the test while the job blocks */
};

static bool readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static void job(void *ud)
{
	struct job_state *s = ud;
	bool block, c = false;

	pthread_mutex_lock(&s->mu);
	s->started = true;
	pthread_mutex_unlock(&s->mu);
	worker_lock(s->w);
	block = s->block;
	worker_unlock(s->w);
	if (block)
		c = readable(worker_cancel_fd(s->w), 10000);
	worker_lock(s->w);
	s->runs++;
	s->cancelled = c;
	worker_unlock(s->w);
	worker_post(s->w);
}

static int runs(struct job_state *s)
{
	int n;

	worker_lock(s->w);
	n = s->runs;
	worker_unlock(s->w);
	return n;
}

/* Waits (bounded) for the next outcome and drains the notify fd. */
static bool next_outcome(struct job_state *s)
{
	bool ok = readable(worker_notify_fd(s->w), 10000);

	worker_notify_clear(s->w);
	return ok;
}

static bool started(struct job_state *s)
{
	bool b;

	for (int i = 0; i < 1000; i++) {
		pthread_mutex_lock(&s->mu);
		b = s->started;
		pthread_mutex_unlock(&s->mu);
		if (b)
			return true;
		usleep(10000);
	}
	return false;
}

TEST(a_request_runs_the_job_and_posts)
{
	struct job_state s = {.mu = PTHREAD_MUTEX_INITIALIZER};

	REQUIRE(worker_start(job, &s, &s.w) == 0);
	CHECK(!readable(worker_notify_fd(s.w), 0)); /* idle: nothing runs unasked */
	worker_request(s.w);
	CHECK(next_outcome(&s));
	CHECK_INT_EQ(runs(&s), 1);
	CHECK(!readable(worker_notify_fd(s.w), 0)); /* drained */
	worker_request(s.w);
	CHECK(next_outcome(&s));
	CHECK_INT_EQ(runs(&s), 2);
	worker_stop(s.w);
}

TEST(cancel_ends_the_run_under_way_and_is_cleared_after)
{
	struct job_state s = {.mu = PTHREAD_MUTEX_INITIALIZER, .block = true};

	REQUIRE(worker_start(job, &s, &s.w) == 0);
	worker_request(s.w);
	REQUIRE(started(&s));
	worker_cancel(s.w);
	CHECK(next_outcome(&s));
	CHECK_INT_EQ(runs(&s), 1);
	worker_lock(s.w);
	CHECK(s.cancelled);
	worker_unlock(s.w);
	/* cleared: the next run is not cut short (it waits until cancelled again) */
	worker_cancel_clear(s.w);
	CHECK(!readable(worker_cancel_fd(s.w), 0));
	worker_lock(s.w);
	s.block = false;
	worker_unlock(s.w);
	worker_request(s.w);
	CHECK(next_outcome(&s));
	CHECK_INT_EQ(runs(&s), 2);
	worker_stop(s.w);
}

TEST(requests_during_a_run_fold_into_one_more)
{
	struct job_state s = {.mu = PTHREAD_MUTEX_INITIALIZER, .block = true};

	REQUIRE(worker_start(job, &s, &s.w) == 0);
	worker_request(s.w);
	REQUIRE(started(&s));
	worker_request(s.w);
	worker_request(s.w);
	worker_request(s.w);
	worker_lock(s.w);
	s.block = false;
	worker_unlock(s.w);
	worker_cancel(s.w);
	CHECK(next_outcome(&s));
	/* the one more run the three requests made */
	for (int i = 0; i < 1000 && runs(&s) < 2; i++)
		usleep(10000);
	CHECK_INT_EQ(runs(&s), 2);
	usleep(100000);
	CHECK_INT_EQ(runs(&s), 2);
	worker_stop(s.w);
}

TEST(stop_ends_a_blocked_run_and_joins)
{
	struct job_state s = {.mu = PTHREAD_MUTEX_INITIALIZER, .block = true};

	REQUIRE(worker_start(job, &s, &s.w) == 0);
	worker_request(s.w);
	REQUIRE(started(&s));
	worker_stop(s.w); /* returns: the job saw the cancel fd */
	CHECK_INT_EQ(s.runs, 1);
	CHECK(s.cancelled);
	worker_stop(NULL);
}

int main(void)
{
	RUN(a_request_runs_the_job_and_posts);
	RUN(cancel_ends_the_run_under_way_and_is_cleared_after);
	RUN(requests_during_a_run_fold_into_one_more);
	RUN(stop_ends_a_blocked_run_and_joins);
	return tap_done();
}
