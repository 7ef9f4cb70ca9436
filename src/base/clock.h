/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_BASE_CLOCK_H
#define TANDEM_BASE_CLOCK_H

#include <stdint.h>

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

#endif
