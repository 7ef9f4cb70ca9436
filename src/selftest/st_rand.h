/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ST_RAND_H
#define TANDEM_ST_RAND_H

#include <stdint.h>

/*
 * The selftest's seeded PRNG (splitmix64): the same seed gives the same
 * sequence on every machine, so a fault drawn from it can be replayed.
 * Not for secrets. One per user; no global state.
 */
struct st_rand {
	uint64_t state;
};

void st_rand_seed(struct st_rand *r, uint64_t seed);
/* The next 64 random bits. */
uint64_t st_rand_next(struct st_rand *r);
/* A number in [0, n) (0 when n is 0). */
uint64_t st_rand_below(struct st_rand *r, uint64_t n);

#endif
