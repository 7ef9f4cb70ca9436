/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ST_RAND_H
#define TANDEM_ST_RAND_H

#include <stdint.h>

/*
 * The selftest's PRNG: splitmix64, seeded, so that every random choice of a
 * scenario (and of a fault it injects) follows the run's seed and replays
 * with --seed. Not for anything secret. One generator per user, no locks.
 */
struct st_rand {
	uint64_t state;
};

void st_rand_seed(struct st_rand *r, uint64_t seed);
/* The next 64 random bits. */
uint64_t st_rand_next(struct st_rand *r);
/* Uniform in [0, n) without modulo bias; 0 when n is 0. */
uint64_t st_rand_below(struct st_rand *r, uint64_t n);

#endif
