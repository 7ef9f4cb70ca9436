/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ST_RAND_H
#define TANDEM_ST_RAND_H

#include <stdint.h>

/*
 * The selftest's seeded PRNG: xoshiro256** seeded through splitmix64
 * (Blackman and Vigna). Not for anything secret: it only makes a run
 * repeatable, so that one seed always gives the same faults. No global
 * state; one struct per user, not thread-safe.
 */

struct st_rand {
	uint64_t s[4];
};

/* splitmix64: the next of a sequence of well-mixed 64-bit values from *x. */
uint64_t st_splitmix64(uint64_t *x);
/* Seeds r; every seed (also 0) gives a usable, distinct sequence. */
void st_rand_seed(struct st_rand *r, uint64_t seed);
/* The next 64 random bits. */
uint64_t st_rand_next(struct st_rand *r);
/* A number in [0, n), without modulo bias; 0 when n is 0. */
uint64_t st_rand_below(struct st_rand *r, uint64_t n);

#endif
