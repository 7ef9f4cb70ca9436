/* SPDX-License-Identifier: GPL-2.0-or-later */
/* splitmix64 (Steele, Lea, Flood 2014; the constants of Vigna's reference). */
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
	/* draws below 2^64 mod n would favour the small values: redrawn */
	uint64_t min = n ? -n % n : 0, x;

	if (!n)
		return 0;
	do
		x = st_rand_next(r);
	while (x < min);
	return x % n;
}
