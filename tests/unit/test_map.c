/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "base/map.h"
#include "tap.h"

TEST(put_get_replace_del)
{
	struct map m;
	void *v = NULL;
	int a = 1, b = 2;

	map_init(&m, 0);
	CHECK(!map_get(&m, "x", 1, &v));
	CHECK(!map_del(&m, "x", 1, NULL));
	CHECK_INT_EQ(map_put(&m, "x", 1, &a, NULL), 1);
	CHECK(map_get(&m, "x", 1, &v) && v == &a);
	CHECK_INT_EQ(map_put(&m, "x", 1, &b, &v), 0);
	CHECK(v == &a);
	CHECK(map_get(&m, "x", 1, &v) && v == &b);
	CHECK_INT_EQ(map_count(&m), 1);
	CHECK(!map_get(&m, "xy", 2, NULL));
	CHECK(!map_get(&m, "", 0, NULL));
	CHECK(map_del(&m, "x", 1, &v) && v == &b);
	CHECK_INT_EQ(map_count(&m), 0);
	CHECK(!map_get(&m, "x", 1, NULL));
	map_done(&m);
	map_done(&m); /* twice is fine */
}

TEST(keys_are_bytes)
{
	static const uint8_t k1[] = {0, 1, 0}, k2[] = {0, 1}, k3[] = {0};
	struct map m;
	void *v;

	map_init(&m, 0);
	CHECK_INT_EQ(map_put(&m, k1, sizeof(k1), (void *)1, NULL), 1);
	CHECK_INT_EQ(map_put(&m, k2, sizeof(k2), (void *)2, NULL), 1);
	CHECK_INT_EQ(map_put(&m, k3, sizeof(k3), (void *)3, NULL), 1);
	CHECK_INT_EQ(map_put(&m, NULL, 0, (void *)4, NULL), 1); /* the empty key */
	CHECK(map_get(&m, k1, 3, &v) && v == (void *)1);
	CHECK(map_get(&m, k2, 2, &v) && v == (void *)2);
	CHECK(map_get(&m, k3, 1, &v) && v == (void *)3);
	CHECK(map_get(&m, "", 0, &v) && v == (void *)4);
	CHECK(map_put(&m, "", 0, NULL, NULL) == 0);
	CHECK(map_get(&m, "", 0, &v) && v == NULL); /* NULL values are values */
	map_done(&m);
}

TEST(the_map_owns_a_copy_of_the_key)
{
	char key[8] = "abc";
	struct map m;
	const void *k;
	size_t pos = 0, len;

	map_init(&m, 0);
	REQUIRE(map_put(&m, key, 3, NULL, NULL) == 1);
	memcpy(key, "zzz", 3);
	CHECK(map_get(&m, "abc", 3, NULL));
	CHECK(!map_get(&m, "zzz", 3, NULL));
	REQUIRE(map_next(&m, &pos, &k, &len, NULL));
	CHECK(len == 3 && k != key);
	CHECK_STR_EQ((const char *)k, "abc"); /* NUL-terminated copy */
	CHECK(!map_next(&m, &pos, &k, &len, NULL));
	map_done(&m);
}

/* A reference model: 2,000 keys, puts and deletes in a fixed pseudo-random
 * order, checked against a plain array after every step's batch. */
TEST(matches_a_model)
{
	enum { N = 2000, STEPS = 40000 };
	static int present[N];
	struct map m;
	uint64_t x = 88172645463325252ULL;
	size_t count = 0;
	int bad = 0;

	map_init(&m, 0);
	for (int step = 0; step < STEPS; step++) {
		char key[32];
		unsigned k;
		int len;
		void *v;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		k = (unsigned)(x % N);
		len = snprintf(key, sizeof(key), "key-%u", k);
		if (x & (1ULL << 40)) {
			int r = map_put(&m, key, (size_t)len, (void *)(uintptr_t)(k + 1), NULL);

			bad += r != (present[k] ? 0 : 1);
			count += !present[k];
			present[k] = 1;
		} else {
			bool r = map_del(&m, key, (size_t)len, &v);

			bad += r != (present[k] != 0);
			bad += r && v != (void *)(uintptr_t)(k + 1);
			count -= present[k] != 0;
			present[k] = 0;
		}
		if (step % 4000 == 0 || step == STEPS - 1) {
			for (unsigned i = 0; i < N; i++) {
				len = snprintf(key, sizeof(key), "key-%u", i);
				bool got = map_get(&m, key, (size_t)len, &v);

				bad += got != (present[i] != 0);
				bad += got && v != (void *)(uintptr_t)(i + 1);
			}
			bad += map_count(&m) != count;
		}
	}
	CHECK_INT_EQ(bad, 0);
	map_done(&m);
}

TEST(walk_visits_each_once)
{
	enum { N = 1000 };
	static unsigned seen[N];
	struct map m;
	size_t pos = 0, n = 0, len;
	const void *k;
	void *v;

	map_init(&m, 0);
	for (unsigned i = 0; i < N; i++)
		REQUIRE(map_put(&m, &i, sizeof(i), (void *)(uintptr_t)i, NULL) == 1);
	while (map_next(&m, &pos, &k, &len, &v)) {
		unsigned i;

		memcpy(&i, k, sizeof(i));
		CHECK(len == sizeof(i) && (uintptr_t)v == i && i < N);
		if (i < N)
			seen[i]++;
		n++;
	}
	CHECK_INT_EQ(n, N);
	for (unsigned i = 0; i < N; i++)
		CHECK_INT_EQ(seen[i], 1);
	CHECK(!map_next(&m, &pos, NULL, NULL, NULL)); /* stays at the end */
	map_done(&m);

	pos = 0;
	map_init(&m, 0);
	CHECK(!map_next(&m, &pos, NULL, NULL, NULL)); /* an empty map */
	map_done(&m);
}

TEST(fixed_seed_is_repeatable)
{
	struct map a, b;
	size_t pa = 0, pb = 0, la, lb;
	const void *ka, *kb;
	int same = 1;

	map_init(&a, MAP_FIXED_SEED);
	map_init(&b, MAP_FIXED_SEED);
	for (unsigned i = 0; i < 300; i++) {
		REQUIRE(map_put(&a, &i, sizeof(i), NULL, NULL) == 1);
		REQUIRE(map_put(&b, &i, sizeof(i), NULL, NULL) == 1);
	}
	while (map_next(&a, &pa, &ka, &la, NULL)) {
		same &= map_next(&b, &pb, &kb, &lb, NULL) && la == lb && memcmp(ka, kb, la) == 0;
	}
	CHECK(same);
	map_done(&a);
	map_done(&b);
}

/* Deleting from the middle of long probe runs keeps every other key findable. */
TEST(delete_in_runs)
{
	enum { N = 12 };
	struct map m;
	int bad = 0;

	map_init(&m, 0);
	for (unsigned round = 0; round < 200; round++) {
		for (unsigned i = 0; i < N; i++)
			bad += map_put(&m, &i, sizeof(i), NULL, NULL) != 1;
		for (unsigned i = round % N; i < N; i += 3)
			bad += !map_del(&m, &i, sizeof(i), NULL);
		for (unsigned i = 0; i < N; i++) {
			bool want = (i < round % N) || (i - round % N) % 3 != 0;

			bad += map_get(&m, &i, sizeof(i), NULL) != want;
			(void)map_del(&m, &i, sizeof(i), NULL);
		}
		bad += map_count(&m) != 0;
	}
	CHECK_INT_EQ(bad, 0);
	map_done(&m);
}

TEST(ref_changes_in_place)
{
	struct map m;
	void **v;

	map_init(&m, 0);
	CHECK(map_ref(&m, "k", 1) == NULL);
	REQUIRE(map_put(&m, "k", 1, (void *)1, NULL) == 1);
	v = map_ref(&m, "k", 1);
	REQUIRE(v != NULL);
	*v = (void *)((uintptr_t)*v + 41);
	CHECK(map_get(&m, "k", 1, (void **)&v) && (uintptr_t)v == 42);
	CHECK(map_ref(&m, "j", 1) == NULL);
	map_done(&m);
}

int main(void)
{
	RUN(put_get_replace_del);
	RUN(keys_are_bytes);
	RUN(the_map_owns_a_copy_of_the_key);
	RUN(matches_a_model);
	RUN(walk_visits_each_once);
	RUN(fixed_seed_is_repeatable);
	RUN(delete_in_runs);
	RUN(ref_changes_in_place);
	return tap_done();
}
