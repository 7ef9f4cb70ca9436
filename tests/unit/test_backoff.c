/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdint.h>

#include "base/backoff.h"
#include "tap.h"

TEST(grows_and_caps)
{
	struct backoff b = { 500, 30000 };

	/* rnd = 0 gives the low end d/2, rnd = UINT32_MAX-ish something in range */
	CHECK_INT_EQ(backoff_delay_ms(&b, 0, 0, 0), 250);
	CHECK_INT_EQ(backoff_delay_ms(&b, 1, 0, 0), 500);
	CHECK_INT_EQ(backoff_delay_ms(&b, 2, 0, 0), 1000);
	CHECK_INT_EQ(backoff_delay_ms(&b, 10, 0, 0), 15000);
	CHECK_INT_EQ(backoff_delay_ms(&b, 1000, 0, 0), 15000);
	for (uint32_t r = 0; r < 100000; r += 997) {
		uint32_t d = backoff_delay_ms(&b, 3, 0, r);
		CHECK(d >= 2000 && d <= 4000);
		d = backoff_delay_ms(&b, 200, 0, r * 40503u);
		CHECK(d >= 15000 && d <= 30000);
	}
}

TEST(jitter_spreads)
{
	struct backoff b = { 1000, 60000 };
	uint32_t lo = UINT32_MAX, hi = 0;

	for (uint32_t r = 0; r < 5000; r++) {
		uint32_t d = backoff_delay_ms(&b, 2, 0, r * 2654435761u);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	CHECK(lo < 2200);
	CHECK(hi > 3800);
}

TEST(retry_after_is_a_floor)
{
	struct backoff b = { 500, 30000 };

	CHECK_INT_EQ(backoff_delay_ms(&b, 0, 7, 0), 7000);
	CHECK_INT_EQ(backoff_delay_ms(&b, 0, 120, 0), 120000); /* above max: the server wins */
	CHECK_INT_EQ(backoff_delay_ms(&b, 0, 999999, 0), 3600000); /* but capped at an hour */
	CHECK_INT_EQ(backoff_delay_ms(&b, 10, 1, 0), 15000);
}

TEST(zero_config_is_safe)
{
	struct backoff b = { 0, 0 };
	uint32_t d = backoff_delay_ms(&b, 50, 0, 12345);
	CHECK(d <= 1);
}

int main(void)
{
	RUN(grows_and_caps);
	RUN(jitter_spreads);
	RUN(retry_after_is_a_floor);
	RUN(zero_config_is_safe);
	return tap_done();
}
