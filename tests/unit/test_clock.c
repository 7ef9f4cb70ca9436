/* SPDX-License-Identifier: GPL-2.0-or-later */
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

int main(void)
{
	RUN(never_goes_back);
	RUN(ms_and_ns_share_the_origin);
	RUN(agrees_with_clock_monotonic);
	RUN(advances);
	return tap_done();
}
