/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The write holds (sync/hold.h): what the scanner is told, and when the loop is woken. */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>

#include "sync/hold.h"
#include "tap.h"

static bool readable(struct hold *h)
{
	struct pollfd p = {hold_fd(h), POLLIN, 0};

	return poll(&p, 1, 0) == 1;
}

TEST(defer_until_close)
{
	struct hold *h;

	REQUIRE(hold_new(&h) == 0);
	CHECK(!hold_defer(h, 1, 10, 1000)); /* not open on the mount */
	CHECK(hold_open(h, 1, 10) == 0);
	CHECK(hold_open(h, 1, 10) == 0); /* two handles */
	CHECK_INT_EQ(hold_count(h), 1);
	CHECK(!hold_defer(h, 2, 10, 1000)); /* another device */
	CHECK_INT_EQ(hold_deadline(h), UINT64_MAX);
	CHECK(hold_defer(h, 1, 10, 1000));
	CHECK(hold_defer(h, 1, 10, 2000));
	CHECK_INT_EQ(hold_deadline(h), 1000 + HOLD_MAX_MS); /* from the first */
	hold_close(h, 1, 10);
	CHECK(!readable(h)); /* one handle is still open */
	CHECK(hold_defer(h, 1, 10, 3000));
	hold_close(h, 1, 10);
	CHECK(readable(h)); /* it was left out: the loop looks again */
	CHECK(hold_on_event(h));
	CHECK(!readable(h));
	CHECK(!hold_defer(h, 1, 10, 3000));
	CHECK_INT_EQ(hold_count(h), 0);
	CHECK_INT_EQ(hold_deadline(h), UINT64_MAX);

	/* closed before the scanner ever left it out: nothing to wake for */
	CHECK(hold_open(h, 1, 11) == 0);
	hold_close(h, 1, 11);
	CHECK(!readable(h));
	hold_close(h, 1, 12); /* never held: a no-op */
	hold_free(h);
}

TEST(publish_points)
{
	struct hold *h;

	REQUIRE(hold_new(&h) == 0);
	CHECK(hold_open(h, 1, 10) == 0);
	/* an fsync before the scanner saw it: the next look publishes, once */
	hold_publish(h, 1, 10);
	CHECK(!readable(h));
	CHECK(!hold_defer(h, 1, 10, 1000));
	CHECK(hold_defer(h, 1, 10, 1100)); /* written on since: held again */
	/* an fsync of a file left out wakes the loop */
	hold_publish(h, 1, 10);
	CHECK(readable(h));
	CHECK(hold_on_event(h));
	CHECK(!hold_defer(h, 1, 10, 1200));
	CHECK_INT_EQ(hold_deadline(h), UINT64_MAX);
	hold_publish(h, 1, 99); /* not held: a no-op */
	CHECK(!readable(h));
	hold_close(h, 1, 10);
	hold_free(h);
}

/* A file kept open for writing (a log) goes out every HOLD_MAX_MS. */
TEST(bound)
{
	struct hold *h;
	uint64_t t0 = 5000;

	REQUIRE(hold_new(&h) == 0);
	CHECK(hold_open(h, 1, 10) == 0);
	CHECK(hold_defer(h, 1, 10, t0));
	CHECK(!hold_expire(h, t0 + HOLD_MAX_MS - 1));
	CHECK(hold_defer(h, 1, 10, t0 + HOLD_MAX_MS - 1));
	CHECK(hold_expire(h, t0 + HOLD_MAX_MS));
	CHECK_INT_EQ(hold_deadline(h), UINT64_MAX); /* no busy loop after it */
	CHECK(!hold_expire(h, t0 + HOLD_MAX_MS + 1));
	CHECK(!hold_defer(h, 1, 10, t0 + HOLD_MAX_MS + 5)); /* goes out */
	CHECK(hold_defer(h, 1, 10, t0 + HOLD_MAX_MS + 100)); /* a new round */
	CHECK_INT_EQ(hold_deadline(h), t0 + 2 * HOLD_MAX_MS + 100);
	/* the scanner itself publishes one it finds past the bound */
	CHECK(!hold_defer(h, 1, 10, t0 + 2 * HOLD_MAX_MS + 100));
	hold_close(h, 1, 10);
	hold_free(h);
}

/* FUSE threads open and close while the loop asks (run it under TSan). */
struct racer {
	struct hold *h;
	uint64_t ino;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	for (int i = 0; i < 20000; i++) {
		if (hold_open(r->h, 1, r->ino + (uint64_t)(i % 7)) == 0) {
			if (i % 3 == 0)
				hold_publish(r->h, 1, r->ino + (uint64_t)(i % 7));
			hold_close(r->h, 1, r->ino + (uint64_t)(i % 7));
		}
	}
	return NULL;
}

TEST(threads)
{
	struct racer rs[3];
	pthread_t t[3];
	struct hold *h;
	int started = 0;

	REQUIRE(hold_new(&h) == 0);
	for (int i = 0; i < 3; i++) {
		rs[i] = (struct racer){h, (uint64_t)i * 3};
		started += pthread_create(&t[i], NULL, racer_main, &rs[i]) == 0;
	}
	CHECK_INT_EQ(started, 3);
	for (uint64_t now = 1; now < 20000; now++) {
		(void)hold_defer(h, 1, now % 13, now * 10);
		(void)hold_expire(h, now * 10);
		(void)hold_deadline(h);
		(void)hold_on_event(h);
	}
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	CHECK_INT_EQ(hold_count(h), 0); /* every open was closed */
	hold_free(h);
}

int main(void)
{
	RUN(defer_until_close);
	RUN(publish_points);
	RUN(bound);
	RUN(threads);
	return tap_done();
}
