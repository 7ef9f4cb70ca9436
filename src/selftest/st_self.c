/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Suite "selftest": scenarios about the runner itself, for
 * tests/integration/selftest-runner.sh. selftest-rand notes its seed, first
 * draws and pairing (so a test can see that --seed replays them, and the
 * pairing --soak picked reaches it) and checks the generator; the hidden
 * selftest-flaky fails for one seed in four, on purpose, so that --repeat
 * and --soak have a failure to stop at.
 */
#include <inttypes.h>

#include "selftest.h"
#include "st_internal.h"
#include "st_self.h"

int st_self_rand(struct st_env *env)
{
	uint64_t d[4], hit[3] = { 0 };
	struct st_rand r;

	for (size_t i = 0; i < 4; i++)
		d[i] = st_rand_next(&env->rand);
	st_note(env, "selftest-rand: seed %" PRIu64 ", draws %016" PRIx64 " %016" PRIx64
		     " %016" PRIx64 " %016" PRIx64, env->seed, d[0], d[1], d[2], d[3]);
	st_note(env, "selftest-rand: pairing %s",
		st_pairing_name(env->pairing) ? st_pairing_name(env->pairing) : "default");

	/* xoshiro256**: the reference's first outputs from the state 1, 2, 3, 4 */
	r = (struct st_rand){ .s = { 1, 2, 3, 4 } };
	ST_CHECK(env, st_rand_next(&r) == 11520);
	ST_CHECK(env, st_rand_next(&r) == 0);
	ST_CHECK(env, st_rand_next(&r) == 1509978240);
	ST_CHECK(env, st_rand_next(&r) == 1215971899390074240ULL);
	/* and seeded through splitmix64: these values must never change, so
	 * that a seed printed by one build replays in another */
	st_rand_seed(&r, 1234567);
	ST_CHECK(env, st_rand_next(&r) == 3504822795582309479ULL);
	ST_CHECK(env, st_rand_next(&r) == 1819558768956484042ULL);
	ST_CHECK(env, st_rand_next(&r) == 1250851346055027673ULL);
	/* below(n): always below n, each value of a small range drawn */
	for (int i = 0; i < 300; i++)
		hit[st_rand_below(&r, 3)]++;
	ST_CHECK(env, hit[0] > 50 && hit[1] > 50 && hit[2] > 50);
	ST_CHECK(env, st_rand_below(&r, 1) == 0);
	ST_CHECK(env, st_rand_below(&r, 0) == 0);
	for (int i = 0; i < 100; i++)
		ST_CHECK(env, st_rand_below(&r, (1ULL << 63) + 1) <= 1ULL << 63);
	return ST_PASS;
}

int st_self_flaky(struct st_env *env)
{
	uint64_t x = st_rand_below(&env->rand, 4);

	st_note(env, "selftest-flaky: seed %" PRIu64 ", drew %" PRIu64 " of 0..3", env->seed, x);
	if (x == 0)
		st_fail(env, __FILE__, __LINE__, "drew 0: this scenario fails so, on purpose");
	return ST_PASS;
}
