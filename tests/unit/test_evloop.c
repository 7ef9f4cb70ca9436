/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/evloop.h"
#include "tap.h"

struct seen {
	int n;
	uint32_t events;
	struct evloop *l;
	struct ev_watch *other; /* closed by the first callback */
};

static void on_event(struct ev_watch *w, uint32_t events)
{
	struct seen *s = w->ud;

	s->n++;
	s->events |= events;
	if (s->other)
		evloop_watch_close(s->l, s->other);
}

TEST(watch_reports_readable)
{
	struct evloop *l;
	struct seen s = {0};
	struct ev_watch w = {.on_event = on_event, .ud = &s};
	int p[2];

	REQUIRE(evloop_new(&l) == 0);
	REQUIRE(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
	w.fd = p[0];
	REQUIRE(evloop_watch_add(l, &w, EPOLLIN) == 0);
	/* nothing ready: returns when the caller's limit has come */
	CHECK_INT_EQ(evloop_run_once(l, clock_mono_ms()), 0);
	CHECK_INT_EQ(s.n, 0);
	REQUIRE(write(p[1], "x", 1) == 1);
	CHECK_INT_EQ(evloop_run_once(l, UINT64_MAX), 1);
	CHECK_INT_EQ(s.n, 1);
	CHECK(s.events & EPOLLIN);
	/* set to EPOLLOUT on a read end: never ready */
	evloop_watch_set(l, &w, 0);
	CHECK_INT_EQ(w.events, 0);
	CHECK_INT_EQ(evloop_run_once(l, clock_mono_ms()), 0);
	CHECK_INT_EQ(s.n, 1);
	/* del keeps the fd open */
	evloop_watch_del(l, &w);
	CHECK_INT_EQ(w.fd, -1);
	CHECK(fcntl(p[0], F_GETFD) >= 0);
	/* close closes it */
	w.fd = p[0];
	REQUIRE(evloop_watch_add(l, &w, EPOLLIN) == 0);
	evloop_watch_close(l, &w);
	CHECK_INT_EQ(w.fd, -1);
	CHECK(fcntl(p[0], F_GETFD) < 0 && errno == EBADF);
	evloop_watch_close(l, &w); /* no-op */
	CHECK(evloop_watch_add(l, &w, EPOLLIN) == -EBADF);
	close(p[1]);
	evloop_free(l);
	evloop_free(NULL);
}

TEST(closed_watch_gets_no_more_events_of_the_batch)
{
	struct evloop *l;
	struct seen s1 = {0}, s2 = {0};
	struct ev_watch w1 = {.on_event = on_event, .ud = &s1};
	struct ev_watch w2 = {.on_event = on_event, .ud = &s2};
	int p1[2], p2[2];

	REQUIRE(evloop_new(&l) == 0);
	REQUIRE(pipe2(p1, O_CLOEXEC | O_NONBLOCK) == 0);
	REQUIRE(pipe2(p2, O_CLOEXEC | O_NONBLOCK) == 0);
	w1.fd = p1[0];
	w2.fd = p2[0];
	/* whichever runs first closes the other */
	s1.l = s2.l = l;
	s1.other = &w2;
	s2.other = &w1;
	REQUIRE(evloop_watch_add(l, &w1, EPOLLIN) == 0);
	REQUIRE(evloop_watch_add(l, &w2, EPOLLIN) == 0);
	REQUIRE(write(p1[1], "x", 1) == 1);
	REQUIRE(write(p2[1], "x", 1) == 1);
	CHECK_INT_EQ(evloop_run_once(l, UINT64_MAX), 2);
	CHECK_INT_EQ(s1.n + s2.n, 1);
	CHECK(w1.fd == -1 || w2.fd == -1);
	evloop_watch_close(l, &w1);
	evloop_watch_close(l, &w2);
	close(p1[1]);
	close(p2[1]);
	evloop_free(l);
}

struct tick {
	struct ev_timer t;
	char name;
	char *log;
	int *nlog;
	struct evloop *l;
	int rearm; /* times to arm itself again for now */
};

static void on_tick(struct ev_timer *t, uint64_t now)
{
	struct tick *k = t->ud;

	CHECK(now >= t->due_ms);
	CHECK(!t->armed);
	k->log[(*k->nlog)++] = k->name;
	if (k->rearm-- > 0)
		evloop_timer_arm(k->l, t, now);
}

TEST(timers_fire_in_due_order_once)
{
	struct evloop *l;
	char log[16] = "";
	int nlog = 0;
	uint64_t now;
	struct tick a = {.name = 'a', .log = log, .nlog = &nlog};
	struct tick b = a, c = a, d = a;

	REQUIRE(evloop_new(&l) == 0);
	b.name = 'b';
	c.name = 'c';
	d.name = 'd';
	for (struct tick *k = &a; k; k = k == &a ? &b : k == &b ? &c : k == &c ? &d : NULL) {
		k->t.on_timer = on_tick;
		k->t.ud = k;
		k->l = l;
	}
	CHECK(evloop_next_due(l) == UINT64_MAX);
	now = clock_mono_ms();
	evloop_timer_arm(l, &c.t, now + 30);
	evloop_timer_arm(l, &a.t, now + 10);
	evloop_timer_arm(l, &b.t, now + 10); /* same time as a: after a */
	evloop_timer_arm(l, &d.t, now + 20);
	evloop_timer_cancel(l, &d.t);
	evloop_timer_cancel(l, &d.t); /* no-op */
	CHECK(!d.t.armed);
	CHECK(evloop_next_due(l) == now + 10);
	/* re-arming moves: c becomes the first */
	evloop_timer_arm(l, &c.t, now + 5);
	CHECK(evloop_next_due(l) == now + 5);
	/* bounded: each turn waits for the next due timer */
	for (int i = 0; i < 100 && nlog < 3; i++)
		CHECK(evloop_run_once(l, UINT64_MAX) >= 0);
	CHECK_INT_EQ(nlog, 3);
	CHECK_STR_EQ(log, "cab");
	CHECK(evloop_next_due(l) == UINT64_MAX);
	/* a timer that arms itself for now fires once per turn, not in a loop */
	a.rearm = 2;
	evloop_timer_arm(l, &a.t, clock_mono_ms());
	CHECK(evloop_run_once(l, UINT64_MAX) >= 0);
	CHECK_INT_EQ(nlog, 4);
	CHECK(a.t.armed);
	CHECK(evloop_run_once(l, UINT64_MAX) >= 0);
	CHECK(evloop_run_once(l, UINT64_MAX) >= 0);
	CHECK_INT_EQ(nlog, 6);
	CHECK(!a.t.armed);
	CHECK_STR_EQ(log, "cabaaa");
	evloop_free(l);
}

TEST(until_limits_the_wait)
{
	struct evloop *l;
	uint64_t t0, until;

	REQUIRE(evloop_new(&l) == 0);
	t0 = clock_mono_ms();
	until = t0 + 20;
	/* no fd, no timer: returns once until has come (bounded: 60 s cap) */
	while (clock_mono_ms() < until)
		CHECK_INT_EQ(evloop_run_once(l, until), 0);
	CHECK(clock_mono_ms() >= until);
	evloop_free(l);
}

int main(void)
{
	RUN(watch_reports_readable);
	RUN(closed_watch_gets_no_more_events_of_the_batch);
	RUN(timers_fire_in_due_order_once);
	RUN(until_limits_the_wait);
	return tap_done();
}
