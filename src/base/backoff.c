/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "base/backoff.h"

uint32_t backoff_delay_ms(const struct backoff *b, unsigned attempt, uint32_t retry_after_s,
			  uint32_t rnd)
{
	uint64_t d = b->base_ms ? b->base_ms : 1;
	uint64_t floor_ms;

	for (unsigned i = 0; i < attempt && d < b->max_ms; i++)
		d *= 2;
	if (d > b->max_ms)
		d = b->max_ms;
	/* uniform in [d/2, d] */
	d = d / 2 + (uint64_t)rnd % (d - d / 2 + 1);
	if (retry_after_s > 3600)
		retry_after_s = 3600;
	floor_ms = (uint64_t)retry_after_s * 1000;
	if (d < floor_ms)
		d = floor_ms;
	return (uint32_t)d;
}
