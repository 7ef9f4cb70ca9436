/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "st_rand.h"

void st_rand_seed(struct st_rand *r, uint64_t seed)
{
	r->state = seed;
}

uint64_t st_rand_next(struct st_rand *r)
{
	uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t st_rand_below(struct st_rand *r, uint64_t n)
{
	/* rejection sampling: no modulo bias */
	uint64_t lim;

	if (n == 0)
		return 0;
	lim = UINT64_MAX - UINT64_MAX % n;
	for (;;) {
		uint64_t v = st_rand_next(r);
		if (v < lim)
			return v % n;
	}
}
