/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_BACKOFF_H
#define TANDEM_BACKOFF_H

#include <stdint.h>

/*
 * Exponential backoff with jitter, sans-IO. The delay before retry number
 * `attempt` (0 for the first retry) is drawn uniformly from [d/2, d] where
 * d = min(max_ms, base_ms * 2^attempt) ("equal jitter": never zero, never a
 * thundering herd). A server's Retry-After (seconds, 0 for none) is a
 * floor: we never come back sooner than asked, even above max_ms.
 */
struct backoff {
	uint32_t base_ms;
	uint32_t max_ms;
};

/* rnd is a uniformly random 32-bit value (randombytes_random() in the
 * program, fixed values in tests). */
uint32_t backoff_delay_ms(const struct backoff *b, unsigned attempt, uint32_t retry_after_s,
			  uint32_t rnd);

#endif
