/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <sodium.h>

#include "identity/derive.h"
#include "tap.h"

static void fp_of(uint8_t v, struct fingerprint *fp)
{
	memset(fp->b, v, sizeof(fp->b));
}

TEST(bucket)
{
	CHECK_INT_EQ(derive_bucket(0, 3600), 0);
	CHECK_INT_EQ(derive_bucket(3599, 3600), 0);
	CHECK_INT_EQ(derive_bucket(3600, 3600), 1);
	CHECK_INT_EQ(derive_bucket(1700000000, 3600), 1700000000 / 3600);
	CHECK_INT_EQ(derive_bucket(-5, 3600), 0);
	CHECK_INT_EQ(derive_bucket(7200, 0), 2); /* 0 means the default */
}

TEST(deterministic_and_separated)
{
	struct fingerprint a, b;
	uint8_t t1[32], t2[32], k1[32], k2[32];

	fp_of(1, &a);
	fp_of(2, &b);
	derive_relay_token(&a, 10, t1);
	derive_relay_token(&a, 10, t2);
	CHECK(memcmp(t1, t2, 32) == 0);
	/* token and record key differ (label separation) */
	derive_record_key(&a, 10, k1);
	CHECK(memcmp(t1, k1, 32) != 0);
	/* another bucket: unlinkable token, another key */
	derive_relay_token(&a, 11, t2);
	CHECK(memcmp(t1, t2, 32) != 0);
	derive_record_key(&a, 11, k2);
	CHECK(memcmp(k1, k2, 32) != 0);
	/* another fingerprint */
	derive_relay_token(&b, 10, t2);
	CHECK(memcmp(t1, t2, 32) != 0);
	/* the token does not contain the fingerprint bytes */
	CHECK(memmem(t1, 32, a.b, 8) == NULL);
}

TEST(write_secret_needs_seed)
{
	uint8_t seed1[32], seed2[32], tok[32], s1[32], s2[32], s3[32];

	memset(seed1, 1, 32);
	memset(seed2, 2, 32);
	memset(tok, 9, 32);
	derive_write_secret(seed1, tok, s1);
	derive_write_secret(seed2, tok, s2);
	CHECK(memcmp(s1, s2, 32) != 0);
	tok[0] ^= 1;
	derive_write_secret(seed1, tok, s3);
	CHECK(memcmp(s1, s3, 32) != 0);
}

/* Computed independently with Python's hashlib.blake2b (docs/PROTOCOL.md). */
#define TOKEN_KAT "7817dd06c17648223b244c7c7e52f91ef42544829c56bff997e4bce335966d71"
#define KEY_KAT "716a508d4a75c53e2b2ad5fdef95b41a02c124c4137139148e7b48070df8584e"

TEST(known_answers)
{
	/* Pin the derivations: both peers (and older versions) must agree. */
	struct fingerprint a;
	uint8_t t[32], k[32];
	char hex[65];

	fp_of(0xab, &a);
	derive_relay_token(&a, 472222, t);
	sodium_bin2hex(hex, sizeof(hex), t, 32);
	printf("# token: %s\n", hex);
	CHECK_STR_EQ(hex, TOKEN_KAT);
	derive_record_key(&a, 472222, k);
	sodium_bin2hex(hex, sizeof(hex), k, 32);
	printf("# record key: %s\n", hex);
	CHECK_STR_EQ(hex, KEY_KAT);
}

int main(void)
{
	if (sodium_init() < 0)
		return 99;
	RUN(bucket);
	RUN(deterministic_and_separated);
	RUN(write_secret_needs_seed);
	RUN(known_answers);
	return tap_done();
}
