/* SPDX-License-Identifier: GPL-2.0-or-later */
/* xoshiro256** seeded with splitmix64 (public-domain algorithms by Blackman and Vigna). */
#include "st_rand.h"

uint64_t st_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void st_rand_seed(struct st_rand *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = st_splitmix64(&seed);
}

uint64_t st_rand_next(struct st_rand *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

uint64_t st_rand_below(struct st_rand *r, uint64_t n)
{
	uint64_t x, limit;

	if (n == 0)
		return 0;
	/* reject the top values that would make some results more likely */
	limit = UINT64_MAX - UINT64_MAX % n;
	do
		x = st_rand_next(r);
	while (x >= limit);
	return x % n;
}
