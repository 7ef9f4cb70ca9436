/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <time.h>

#include "base/clock.h"

uint64_t clock_mono_ns(void)
{
	struct timespec ts;

	/* Cannot fail for CLOCK_MONOTONIC with a valid pointer (Linux >= 2.6). */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

uint64_t clock_mono_ms(void)
{
	return clock_mono_ns() / 1000000;
}

uint64_t clock_mono_deadline(struct timespec *ret, uint64_t ms)
{
	uint64_t now = clock_mono_ns(), sec = now / 1000000000 + ms / 1000;
	long nsec = (long)(now % 1000000000) + (long)(ms % 1000) * 1000000;

	if (nsec >= 1000000000) {
		sec++;
		nsec -= 1000000000;
	}
	/* sec < 2^64 / 1000 + a boot's seconds: fits a 64-bit time_t */
	ret->tv_sec = sec > INT64_MAX ? INT64_MAX : (time_t)sec;
	ret->tv_nsec = nsec;
	return now / 1000000;
}

void clock_mono_timespec(struct timespec *ret, uint64_t at_ms)
{
	ret->tv_sec = (time_t)(at_ms / 1000);
	ret->tv_nsec = (long)(at_ms % 1000) * 1000000;
}
