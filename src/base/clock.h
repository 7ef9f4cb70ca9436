/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_BASE_CLOCK_H
#define TANDEM_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

/*
 * The one monotonic clock (CLOCK_MONOTONIC): for deadlines, timeouts and
 * durations, never for wall time. The origin is arbitrary (boot), so only
 * differences mean anything. Safe from any thread.
 *
 * The sync engine does not read it: its callers pass the time in (now_ms).
 */

/* Milliseconds since an arbitrary fixed point. */
uint64_t clock_mono_ms(void);
/* Nanoseconds since the same point (for finer durations, e.g. ping RTTs). */
uint64_t clock_mono_ns(void);

/*
 * Deadlines for pthread_cond_timedwait() (absolute CLOCK_MONOTONIC times).
 * The condvar must wait on that clock: pthread_condattr_setclock(&attr,
 * CLOCK_MONOTONIC) before pthread_cond_init (its default is
 * CLOCK_REALTIME, which jumps with the wall clock).
 */
/* *ret: ms milliseconds from now (saturating, never wraps). Returns now in
 * ms, the clock_mono_ms() of the same clock read. */
uint64_t clock_mono_deadline(struct timespec *ret, uint64_t ms);
/* *ret: the moment clock_mono_ms() reaches at_ms. */
void clock_mono_timespec(struct timespec *ret, uint64_t at_ms);

#endif
