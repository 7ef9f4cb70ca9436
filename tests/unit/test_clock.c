/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "base/clock.h"
#include "tap.h"

TEST(never_goes_back)
{
	uint64_t last_ms = clock_mono_ms(), last_ns = clock_mono_ns();

	for (int i = 0; i < 100000; i++) {
		uint64_t ms = clock_mono_ms(), ns = clock_mono_ns();

		CHECK(ms >= last_ms);
		CHECK(ns >= last_ns);
		last_ms = ms;
		last_ns = ns;
	}
}

TEST(ms_and_ns_share_the_origin)
{
	uint64_t ms = clock_mono_ms(), ns = clock_mono_ns(), ms2 = clock_mono_ms();

	CHECK(ns / 1000000 >= ms);
	CHECK(ns / 1000000 <= ms2);
}

TEST(agrees_with_clock_monotonic)
{
	struct timespec ts;
	uint64_t ms = clock_mono_ms(), ref;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ref = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	CHECK(ref >= ms);
}

TEST(advances)
{
	uint64_t t0 = clock_mono_ms();
	struct timespec d = {0, 2000000};

	/* A bounded wait for the condition, not a timing assertion. */
	for (int i = 0; i < 5000 && clock_mono_ms() == t0; i++)
		nanosleep(&d, NULL);
	CHECK(clock_mono_ms() > t0);
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000 + (uint64_t)ts->tv_nsec;
}

TEST(deadline_is_now_plus_ms)
{
	static const uint64_t ms[] = {0, 1, 999, 1000, 1001, 1500, 123456};

	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		struct timespec ts = {-1, -1};
		uint64_t before = clock_mono_ns(), now = clock_mono_deadline(&ts, ms[i]);
		uint64_t after = clock_mono_ns();

		CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
		CHECK(ts_ns(&ts) >= before + ms[i] * 1000000);
		CHECK(ts_ns(&ts) <= after + ms[i] * 1000000);
		/* now is the clock read the deadline came from */
		CHECK(now >= before / 1000000 && now <= after / 1000000);
		CHECK_INT_EQ(ts_ns(&ts) / 1000000, now + ms[i]);
	}
}

TEST(deadline_far_away_does_not_wrap)
{
	struct timespec ts;
	uint64_t now = clock_mono_deadline(&ts, UINT64_MAX);

	CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
	CHECK((uint64_t)ts.tv_sec >= now / 1000 + UINT64_MAX / 1000);
}

TEST(timespec_of_a_clock_reading)
{
	struct timespec ts;

	clock_mono_timespec(&ts, 1234567);
	CHECK_INT_EQ(ts.tv_sec, 1234);
	CHECK_INT_EQ(ts.tv_nsec, 567000000);
	clock_mono_timespec(&ts, 999);
	CHECK_INT_EQ(ts.tv_sec, 0);
	CHECK_INT_EQ(ts.tv_nsec, 999000000);
}

/* The deadline is for a condvar that waits on CLOCK_MONOTONIC: it times
 * out, and not before the deadline (a bounded wait, not a timing test). */
TEST(waits_on_a_monotonic_condvar)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_condattr_t ca;
	pthread_cond_t cond;
	struct timespec dl;
	int r = 0;

	REQUIRE(pthread_condattr_init(&ca) == 0);
	REQUIRE(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0);
	REQUIRE(pthread_cond_init(&cond, &ca) == 0);
	pthread_condattr_destroy(&ca);
	pthread_mutex_lock(&mu);
	(void)clock_mono_deadline(&dl, 20);
	for (int i = 0; i < 1000 && r != ETIMEDOUT; i++) /* spurious wake-ups */
		r = pthread_cond_timedwait(&cond, &mu, &dl);
	pthread_mutex_unlock(&mu);
	CHECK_INT_EQ(r, ETIMEDOUT);
	CHECK(clock_mono_ns() >= ts_ns(&dl));
	pthread_cond_destroy(&cond);
}

int main(void)
{
	RUN(never_goes_back);
	RUN(ms_and_ns_share_the_origin);
	RUN(agrees_with_clock_monotonic);
	RUN(advances);
	RUN(deadline_is_now_plus_ms);
	RUN(deadline_far_away_does_not_wrap);
	RUN(timespec_of_a_clock_reading);
	RUN(waits_on_a_monotonic_condvar);
	return tap_done();
}
