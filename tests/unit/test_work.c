/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The engine's worker pool (src/sync/work.c): its bounds and its hand-back. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "sync/work.h"
#include "tap.h"

/* A gate the jobs wait at until the test opens it. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int ran;

struct job {
	struct work_job w; /* first */
	int id;
};

static void job_run(struct work_job *wj)
{
	pthread_mutex_lock(&gate_mu);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_mu);
	ran++;
	pthread_mutex_unlock(&gate_mu);
}

static void gate(bool open)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = open;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_mu);
}

static int ran_count(void)
{
	int n;

	pthread_mutex_lock(&gate_mu);
	n = ran;
	pthread_mutex_unlock(&gate_mu);
	return n;
}

static struct job *job_new(int id)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j) {
		j->w.run = job_run;
		j->id = id;
	}
	return j;
}

/* Waits (bounded) until n jobs ran in all. */
static bool wait_ran(int n)
{
	for (int i = 0; i < 1000 && ran_count() < n; i++)
		poll(NULL, 0, 5);
	return ran_count() >= n;
}

static void free_list(struct work_job *l)
{
	while (l) {
		struct work_job *next = l->next;
		free(l);
		l = next;
	}
}

TEST(busy_jobs_are_bounded)
{
	struct work *w = NULL;
	struct job *j;

	gate(false);
	ran = 0;
	REQUIRE(work_new(2, 3, &w) == 0);
	for (int i = 0; i < 3; i++) {
		REQUIRE((j = job_new(i)) != NULL);
		CHECK_INT_EQ(work_submit(w, &j->w), 0);
	}
	REQUIRE((j = job_new(3)) != NULL);
	CHECK_INT_EQ(work_submit(w, &j->w), -EAGAIN); /* 2 running, 1 queued */
	free(j);
	gate(true);
	CHECK(wait_ran(3));
	struct work_job *left = NULL;
	work_free(w, &left);
	free_list(left);
}

/*
 * Jobs done but not taken back do not hold the pool: a loop that reads a
 * burst from the socket before it looks at the pool's fd still finds the
 * workers free. Before, done jobs counted as busy until work_take(), and
 * the loop did every further block itself.
 */
TEST(done_jobs_not_taken_back_leave_the_workers_free)
{
	struct work *w = NULL;
	struct job *j;

	gate(true);
	ran = 0;
	REQUIRE(work_new(2, 3, &w) == 0);
	for (int i = 0; i < 3; i++) {
		REQUIRE((j = job_new(i)) != NULL);
		CHECK_INT_EQ(work_submit(w, &j->w), 0);
	}
	CHECK(wait_ran(3));
	/* three done, none taken back: the workers are free */
	for (int i = 3; i < 6; i++) {
		REQUIRE((j = job_new(i)) != NULL);
		CHECK_INT_EQ(work_submit(w, &j->w), 0);
	}
	CHECK(wait_ran(6));
	/* but not without end: 2 x max_jobs submitted and not taken back */
	REQUIRE((j = job_new(6)) != NULL);
	CHECK_INT_EQ(work_submit(w, &j->w), -EAGAIN);
	CHECK_INT_EQ(work_pending(w), 6);

	/* taken back in the order they were submitted, then room again */
	struct pollfd p = {.fd = work_fd(w), .events = POLLIN};
	CHECK(poll(&p, 1, 5000) == 1);
	struct work_job *l = work_take(w);
	int n = 0, ordered = 1;
	for (struct work_job *x = l; x; x = x->next, n++)
		ordered &= ((struct job *)x)->id == n;
	CHECK_INT_EQ(n, 6);
	CHECK(ordered);
	free_list(l);
	CHECK_INT_EQ(work_pending(w), 0);
	CHECK_INT_EQ(work_submit(w, &j->w), 0);
	CHECK(wait_ran(7));
	struct work_job *left = NULL;
	work_free(w, &left);
	free_list(left);
}

TEST(free_hands_back_queued_and_done_jobs)
{
	struct work *w = NULL;
	struct job *j;

	gate(true);
	ran = 0;
	REQUIRE(work_new(1, 4, &w) == 0);
	REQUIRE((j = job_new(0)) != NULL);
	CHECK_INT_EQ(work_submit(w, &j->w), 0);
	CHECK(wait_ran(1));
	gate(false);
	for (int i = 1; i < 3; i++) {
		REQUIRE((j = job_new(i)) != NULL);
		CHECK_INT_EQ(work_submit(w, &j->w), 0);
	}
	/* one running at the gate, one queued: open it so the stop can join */
	gate(true);
	struct work_job *left = NULL;
	work_free(w, &left);
	int n = 0;
	for (struct work_job *x = left; x; x = x->next)
		n++;
	CHECK_INT_EQ(n, 3); /* every job submitted and not taken back */
	free_list(left);
}

int main(void)
{
	RUN(busy_jobs_are_bounded);
	RUN(done_jobs_not_taken_back_leave_the_workers_free);
	RUN(free_hands_back_queued_and_done_jobs);
	return tap_done();
}
