/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The relay's sans-IO core with an injected clock: store expiry and
 * capacity, the rate limiter's refill and bounded table, listen address
 * parsing, and request handling edge cases (docs/RELAY.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include <jansson.h>

#include "base/encoding.h"
#include "relay_addr.h"
#include "relay_conns.h"
#include "relay_core.h"
#include "relay_metrics.h"
#include "relay_ratelimit.h"
#include "relay_store.h"
#include "tap.h"

static const uint8_t blob1[3] = {1, 2, 3};

static void fill(uint8_t *b, size_t n, uint8_t v)
{
	memset(b, v, n);
}

TEST(store_put_get_replace_delete)
{
	struct relay_store *s = NULL;
	uint8_t tok[32], sec[32], other[32];
	const uint8_t *b;
	size_t len;
	int64_t exp, retry = 0;

	fill(tok, 32, 1);
	fill(sec, 32, 2);
	fill(other, 32, 3);
	REQUIRE(relay_store_new(4, 0, &s) == 0);
	CHECK_INT_EQ(relay_store_get(s, tok, 0, &b, &len, &exp), -ENOENT);
	CHECK_INT_EQ(relay_store_put(s, tok, NULL, NULL, blob1, 3, 1000, 0, &retry), -ENOKEY);
	CHECK_INT_EQ(relay_store_put(s, tok, NULL, sec, blob1, 3, 1000, 0, &retry), RELAY_STORE_CREATED);
	CHECK_INT_EQ(relay_store_get(s, tok, 10, &b, &len, &exp), 0);
	CHECK_INT_EQ(len, 3);
	CHECK(memcmp(b, blob1, 3) == 0);
	CHECK_INT_EQ(exp, 1000);
	/* no secret: nothing changes */
	CHECK_INT_EQ(relay_store_put(s, tok, NULL, NULL, blob1, 2, 2000, 10, &retry), -EACCES);
	CHECK_INT_EQ(relay_store_delete(s, tok, NULL, 10), -EACCES);
	CHECK_INT_EQ(relay_store_delete(s, tok, other, 10), -EACCES);
	CHECK_INT_EQ(relay_store_get(s, tok, 10, &b, &len, &exp), 0);
	CHECK_INT_EQ(len, 3);
	CHECK_INT_EQ(relay_store_put(s, tok, NULL, sec, blob1, 2, 2000, 10, &retry),
		     RELAY_STORE_REPLACED);
	CHECK_INT_EQ(relay_store_get(s, tok, 1500, &b, &len, &exp), 0);
	CHECK_INT_EQ(len, 2);
	CHECK_INT_EQ(exp, 2000);
	CHECK_INT_EQ(relay_store_delete(s, tok, sec, 1500), 0);
	CHECK_INT_EQ(relay_store_delete(s, tok, sec, 1500), -ENOENT);
	/* bad arguments */
	CHECK_INT_EQ(relay_store_put(s, tok, NULL, sec, blob1, 0, 2000, 10, &retry), -EINVAL);
	CHECK_INT_EQ(relay_store_put(s, tok, NULL, sec, blob1, 3, 10, 10, &retry), -EINVAL);
	CHECK_INT_EQ(relay_store_count(s, 0), 0);
	relay_store_free(s);
}

/*
 * Token squatting: another writer adds its own record under the token (it
 * cannot replace or delete the owner's), a reader gets both, newest first.
 */
TEST(store_several_writers)
{
	struct relay_store *s = NULL;
	struct relay_store_entry e[RELAY_TOKEN_WRITERS];
	uint8_t tok[32], sec[32], other[32];
	const uint8_t *b;
	size_t len;
	int64_t exp, retry = 0;

	fill(tok, 32, 1);
	fill(sec, 32, 2);
	fill(other, 32, 3);
	REQUIRE(relay_store_new(16, 0, &s) == 0);
	CHECK_INT_EQ(relay_store_get_all(s, tok, 0, e, RELAY_TOKEN_WRITERS), 0);
	/* the squatter came first; the owner still gets in */
	CHECK_INT_EQ(relay_store_put(s, tok, NULL, other, blob1, 1, 5000, 0, &retry),
		     RELAY_STORE_CREATED);
	CHECK_INT_EQ(relay_store_put(s, tok, NULL, sec, blob1, 3, 4000, 1, &retry),
		     RELAY_STORE_CREATED);
	CHECK_INT_EQ(relay_store_get_all(s, tok, 2, e, RELAY_TOKEN_WRITERS), 2);
	CHECK_INT_EQ(e[0].blob_len, 3);
	CHECK_INT_EQ(e[0].expires_ms, 4000);
	CHECK_INT_EQ(e[1].blob_len, 1);
	CHECK_INT_EQ(relay_store_get(s, tok, 2, &b, &len, &exp), 0);
	CHECK_INT_EQ(len, 3);
	/* each replaces its own; the most recent write comes first */
	CHECK_INT_EQ(relay_store_put(s, tok, NULL, other, blob1, 2, 5000, 3, &retry),
		     RELAY_STORE_REPLACED);
	CHECK_INT_EQ(relay_store_get_all(s, tok, 4, e, 1), 1);
	CHECK_INT_EQ(e[0].blob_len, 2);
	CHECK_INT_EQ(relay_store_count(s, 4), 2);
	/* each deletes only its own */
	CHECK_INT_EQ(relay_store_delete(s, tok, other, 5), 0);
	CHECK_INT_EQ(relay_store_delete(s, tok, other, 5), -EACCES);
	CHECK_INT_EQ(relay_store_get_all(s, tok, 6, e, RELAY_TOKEN_WRITERS), 1);
	CHECK_INT_EQ(e[0].blob_len, 3);
	CHECK_INT_EQ(relay_store_delete(s, tok, sec, 7), 0);
	CHECK_INT_EQ(relay_store_delete(s, tok, sec, 7), -ENOENT);
	CHECK_INT_EQ(relay_store_evicted_total(s), 0);
	relay_store_free(s);
}

/*
 * A full token: the newcomer's client loses its own least recently written
 * record before anyone else's, so one address cannot push out another's;
 * among clients with as many records, the least recently written goes.
 */
TEST(store_full_token_eviction)
{
	struct relay_store *s = NULL;
	struct relay_store_entry e[RELAY_TOKEN_WRITERS];
	struct relay_client_key owner = { { 4, 192, 0, 2, 1 } }, squat = { { 4, 198, 51, 100, 7 } };
	uint8_t tok[32], sec[32], ssec[32], owner_blob[8];
	int64_t retry = 0, now = 0;
	bool owner_there;

	fill(tok, 32, 1);
	fill(sec, 32, 2);
	fill(owner_blob, sizeof(owner_blob), 0xee);
	REQUIRE(relay_store_new(1000, 0, &s) == 0);
	CHECK_INT_EQ(relay_store_put(s, tok, &owner, sec, owner_blob, 8, 100000, now++, &retry),
		     RELAY_STORE_CREATED);
	/* one squatter address writes 100 fresh writers */
	for (int i = 0; i < 100; i++) {
		fill(ssec, 32, (uint8_t)(0x40 + i));
		CHECK_INT_EQ(relay_store_put(s, tok, &squat, ssec, blob1, 1, 100000, now++, &retry),
			     RELAY_STORE_CREATED);
	}
	CHECK_INT_EQ(relay_store_count(s, now), RELAY_TOKEN_WRITERS);
	CHECK_INT_EQ(relay_store_evicted_total(s), 100 - (RELAY_TOKEN_WRITERS - 1));
	owner_there = false;
	CHECK_INT_EQ(relay_store_get_all(s, tok, now, e, RELAY_TOKEN_WRITERS), RELAY_TOKEN_WRITERS);
	for (int i = 0; i < RELAY_TOKEN_WRITERS; i++)
		owner_there |= e[i].blob_len == 8;
	CHECK(owner_there);
	/* the owner republishes: a replacement, never refused */
	CHECK_INT_EQ(relay_store_put(s, tok, &owner, sec, owner_blob, 8, 100000, now++, &retry),
		     RELAY_STORE_REPLACED);

	/* squatters on 8 addresses each holding one: then the least recently
	 * written goes, and the owner who republished is not it */
	for (int i = 0; i < RELAY_TOKEN_WRITERS; i++) {
		struct relay_client_key k = { { 4, 203, 0, 113, (uint8_t)i } };

		fill(ssec, 32, (uint8_t)(0x10 + i));
		CHECK_INT_EQ(relay_store_put(s, tok, &k, ssec, blob1, 1, 100000, now++, &retry),
			     RELAY_STORE_CREATED);
		if (i == RELAY_TOKEN_WRITERS - 3) {
			CHECK_INT_EQ(relay_store_put(s, tok, &owner, sec, owner_blob, 8, 100000,
						     now++, &retry),
				     RELAY_STORE_REPLACED);
		}
	}
	owner_there = false;
	CHECK_INT_EQ(relay_store_get_all(s, tok, now, e, RELAY_TOKEN_WRITERS), RELAY_TOKEN_WRITERS);
	for (int i = 0; i < RELAY_TOKEN_WRITERS; i++)
		owner_there |= e[i].blob_len == 8;
	CHECK(owner_there);
	relay_store_free(s);
}

TEST(store_expiry_and_capacity)
{
	struct relay_store *s = NULL;
	uint8_t tok[32], sec[32];
	const uint8_t *b;
	size_t len;
	int64_t exp, retry = 0;

	fill(sec, 32, 9);
	REQUIRE(relay_store_new(3, 0, &s) == 0);
	/* expiries 3000, 1000, 2000 */
	for (int i = 0; i < 3; i++) {
		static const int64_t e[3] = {3000, 1000, 2000};
		fill(tok, 32, (uint8_t)(10 + i));
		CHECK_INT_EQ(relay_store_put(s, tok, NULL, sec, blob1, 3, e[i], 0, &retry),
			     RELAY_STORE_CREATED);
	}
	CHECK_INT_EQ(relay_store_count(s, 0), 3);
	/* full: a new token waits for the earliest expiry */
	fill(tok, 32, 20);
	CHECK_INT_EQ(relay_store_put(s, tok, NULL, sec, blob1, 3, 5000, 400, &retry), -ENOSPC);
	CHECK_INT_EQ(retry, 600);
	/* an existing one may still be replaced when full */
	fill(tok, 32, 10);
	CHECK_INT_EQ(relay_store_put(s, tok, NULL, sec, blob1, 3, 500, 400, &retry),
		     RELAY_STORE_REPLACED);
	/* now token 10 expires first, at 500 */
	fill(tok, 32, 20);
	CHECK_INT_EQ(relay_store_put(s, tok, NULL, sec, blob1, 3, 5000, 450, &retry), -ENOSPC);
	CHECK_INT_EQ(retry, 50);
	/* at 1000: token 10 (500) and 11 (1000) are gone and do not count */
	fill(tok, 32, 11);
	CHECK_INT_EQ(relay_store_get(s, tok, 999, &b, &len, &exp), 0);
	CHECK_INT_EQ(relay_store_get(s, tok, 1000, &b, &len, &exp), -ENOENT);
	CHECK_INT_EQ(relay_store_count(s, 1000), 1);
	CHECK_INT_EQ(relay_store_expired_total(s), 2);
	fill(tok, 32, 20);
	CHECK_INT_EQ(relay_store_put(s, tok, NULL, sec, blob1, 3, 5000, 1000, &retry),
		     RELAY_STORE_CREATED);
	CHECK_INT_EQ(relay_store_count(s, 1999), 2);
	CHECK_INT_EQ(relay_store_count(s, 4999), 0 + 1);
	CHECK_INT_EQ(relay_store_count(s, 5000), 0);
	relay_store_free(s);
}

TEST(store_per_client_cap)
{
	struct relay_store *s = NULL;
	struct relay_client_key a = {{4, 127, 0, 0, 2}}, b = {{4, 127, 0, 0, 3}};
	uint8_t tok[32], sec[32];
	int64_t retry = 0;

	fill(sec, 32, 7);
	CHECK_INT_EQ(relay_store_new(4, 5, &s), -EINVAL);
	REQUIRE(relay_store_new(10, 3, &s) == 0);
	/* a fills its cap: expiries 3000, 1000, 2000 */
	for (int i = 0; i < 3; i++) {
		static const int64_t e[3] = {3000, 1000, 2000};
		fill(tok, 32, (uint8_t)(10 + i));
		CHECK_INT_EQ(relay_store_put(s, tok, &a, sec, blob1, 3, e[i], 0, &retry),
			     RELAY_STORE_CREATED);
	}
	CHECK_INT_EQ(relay_store_client_count(s, &a, 0), 3);
	fill(tok, 32, 20);
	CHECK_INT_EQ(relay_store_put(s, tok, &a, sec, blob1, 3, 5000, 400, &retry), -EDQUOT);
	CHECK_INT_EQ(retry, 600); /* until a's earliest record expires */
	/* replacing its own record does not count twice */
	fill(tok, 32, 10);
	CHECK_INT_EQ(relay_store_put(s, tok, &a, sec, blob1, 3, 4000, 400, &retry),
		     RELAY_STORE_REPLACED);
	CHECK_INT_EQ(relay_store_client_count(s, &a, 400), 3);
	/* b is not affected; records without a client count for nobody */
	fill(tok, 32, 21);
	CHECK_INT_EQ(relay_store_put(s, tok, &b, sec, blob1, 3, 5000, 400, &retry),
		     RELAY_STORE_CREATED);
	fill(tok, 32, 22);
	CHECK_INT_EQ(relay_store_put(s, tok, NULL, sec, blob1, 3, 5000, 400, &retry),
		     RELAY_STORE_CREATED);
	CHECK_INT_EQ(relay_store_client_count(s, &b, 400), 1);
	/* delete gives a slot back */
	fill(tok, 32, 12);
	CHECK_INT_EQ(relay_store_delete(s, tok, sec, 500), 0);
	CHECK_INT_EQ(relay_store_client_count(s, &a, 500), 2);
	fill(tok, 32, 20);
	CHECK_INT_EQ(relay_store_put(s, tok, &a, sec, blob1, 3, 5000, 500, &retry),
		     RELAY_STORE_CREATED);
	fill(tok, 32, 23);
	CHECK_INT_EQ(relay_store_put(s, tok, &a, sec, blob1, 3, 5000, 600, &retry), -EDQUOT);
	CHECK_INT_EQ(retry, 400);
	/* and so does expiry (token 11 at 1000) */
	CHECK_INT_EQ(relay_store_put(s, tok, &a, sec, blob1, 3, 5000, 1000, &retry),
		     RELAY_STORE_CREATED);
	CHECK_INT_EQ(relay_store_client_count(s, &a, 1000), 3);
	/* everything expired: the client is forgotten */
	CHECK_INT_EQ(relay_store_client_count(s, &a, 5000), 0);
	CHECK_INT_EQ(relay_store_count(s, 5000), 0);
	relay_store_free(s);
	/* 0: no per-client limit */
	REQUIRE(relay_store_new(4, 0, &s) == 0);
	for (int i = 0; i < 4; i++) {
		fill(tok, 32, (uint8_t)(40 + i));
		CHECK_INT_EQ(relay_store_put(s, tok, &a, sec, blob1, 3, 1000, 0, &retry),
			     RELAY_STORE_CREATED);
	}
	relay_store_free(s);
}

/* A record pushed out of a full token gives its client's slot back. */
TEST(store_eviction_releases_client_slot)
{
	struct relay_store *s = NULL;
	struct relay_client_key a = {{4, 127, 0, 0, 2}}, b = {{4, 127, 0, 0, 3}};
	uint8_t tok[32], sec[32];
	int64_t retry = 0;

	fill(tok, 32, 40);
	REQUIRE(relay_store_new(100, RELAY_TOKEN_WRITERS, &s) == 0);
	for (int i = 0; i < RELAY_TOKEN_WRITERS; i++) {
		fill(sec, 32, (uint8_t)(50 + i));
		CHECK_INT_EQ(relay_store_put(s, tok, i < 2 ? &a : &b, sec, blob1, 3, 5000, i, &retry),
			     RELAY_STORE_CREATED);
	}
	CHECK_INT_EQ(relay_store_client_count(s, &b, 10), RELAY_TOKEN_WRITERS - 2);
	/* a's new writer pushes out b's oldest: b holds the most there */
	fill(sec, 32, 70);
	CHECK_INT_EQ(relay_store_put(s, tok, &a, sec, blob1, 3, 5000, 20, &retry),
		     RELAY_STORE_CREATED);
	CHECK_INT_EQ(relay_store_client_count(s, &a, 20), 3);
	CHECK_INT_EQ(relay_store_client_count(s, &b, 20), RELAY_TOKEN_WRITERS - 3);
	CHECK_INT_EQ(relay_store_count(s, 20), RELAY_TOKEN_WRITERS);
	CHECK_INT_EQ(relay_store_evicted_total(s), 1);
	relay_store_free(s);
}

TEST(store_many_random_expiries)
{
	struct relay_store *s = NULL;
	uint8_t tok[32], sec[32];
	int64_t retry, now = 0;
	uint32_t x = 12345;

	fill(sec, 32, 1);
	REQUIRE(relay_store_new(500, 0, &s) == 0);
	for (int round = 0; round < 4000; round++) {
		int r;
		x = x * 1103515245u + 12345u;
		memset(tok, 0, sizeof(tok));
		tok[0] = (uint8_t)(x >> 8);
		tok[1] = (uint8_t)(x >> 16);
		r = relay_store_put(s, tok, NULL, sec, blob1, 1 + (x >> 28) % 3,
				    now + 1 + (int64_t)((x >> 4) % 5000), now, &retry);
		CHECK(r == RELAY_STORE_CREATED || r == RELAY_STORE_REPLACED || r == -ENOSPC);
		if (r == -ENOSPC)
			CHECK(retry > 0);
		if (round % 7 == 0) {
			r = relay_store_delete(s, tok, sec, now);
			CHECK(r == 0 || r == -ENOENT);
		}
		now += (x >> 20) % 5;
		CHECK(relay_store_count(s, now) <= 500);
	}
	CHECK_INT_EQ(relay_store_count(s, now + 6000), 0);
	relay_store_free(s);
}

TEST(ratelimit_refill)
{
	struct relay_ratelimit *rl = NULL;
	struct relay_client_key a = {{4, 1, 2, 3, 4}}, b = {{4, 5, 6, 7, 8}};

	/* 60 a minute = one a second, burst 3 */
	REQUIRE(relay_ratelimit_new(60, 3, 16, &rl) == 0);
	for (int i = 0; i < 3; i++)
		CHECK_INT_EQ(relay_ratelimit_take(rl, &a, 0), 0);
	CHECK_INT_EQ(relay_ratelimit_take(rl, &a, 0), 1000);
	CHECK_INT_EQ(relay_ratelimit_take(rl, &a, 400), 600);
	/* another client is not affected */
	CHECK_INT_EQ(relay_ratelimit_take(rl, &b, 400), 0);
	CHECK_INT_EQ(relay_ratelimit_take(rl, &a, 1000), 0);
	CHECK_INT_EQ(relay_ratelimit_take(rl, &a, 1000), 1000);
	/* a clock going backwards refills nothing */
	CHECK(relay_ratelimit_take(rl, &a, 10) > 0);
	/* long quiet: full bucket again, never more than the burst */
	for (int i = 0; i < 3; i++)
		CHECK_INT_EQ(relay_ratelimit_take(rl, &a, 100000), 0);
	CHECK(relay_ratelimit_take(rl, &a, 100000) > 0);
	relay_ratelimit_free(rl);

	CHECK_INT_EQ(relay_ratelimit_new(0, 1, 1, &rl), -EINVAL);
	CHECK_INT_EQ(relay_ratelimit_new(1, 1, 0, &rl), -EINVAL);
}

TEST(ratelimit_table_is_bounded)
{
	struct relay_ratelimit *rl = NULL;
	struct relay_client_key k;

	/* 6 a minute, burst 1: a client must wait 10 s between requests */
	REQUIRE(relay_ratelimit_new(6, 1, 8, &rl) == 0);
	for (uint32_t i = 0; i < 10000; i++) {
		memset(&k, 0, sizeof(k));
		k.b[0] = 6;
		memcpy(k.b + 1, &i, sizeof(i));
		CHECK_INT_EQ(relay_ratelimit_take(rl, &k, 5), 0);
		CHECK(relay_ratelimit_count(rl, 5) <= 8);
	}
	/* the 8 most recent are tracked and limited */
	CHECK(relay_ratelimit_take(rl, &k, 5) > 0);
	/* quiet for the refill time: idle entries are dropped */
	CHECK_INT_EQ(relay_ratelimit_count(rl, 5 + 10000), 0);
	relay_ratelimit_free(rl);
}

TEST(addr_parse_and_keys)
{
	struct relay_listen_addr a;
	struct relay_client_key k1, k2;
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	struct sockaddr_in s4 = {.sin_family = AF_INET};
	char buf[RELAY_ADDR_STRLEN];

	CHECK_INT_EQ(relay_addr_parse("[::1]:8480", &a), 0);
	CHECK_INT_EQ(a.ss.ss_family, AF_INET6);
	CHECK(!a.dual_stack);
	CHECK_STR_EQ(relay_addr_format((struct sockaddr *)&a.ss, buf, sizeof(buf)), "[::1]:8480");
	CHECK_INT_EQ(relay_addr_parse("[::]:0", &a), 0);
	CHECK(a.dual_stack);
	CHECK_INT_EQ(relay_addr_parse("*:80", &a), 0);
	CHECK(a.dual_stack);
	CHECK_INT_EQ(relay_addr_parse("127.0.0.1:65535", &a), 0);
	CHECK_STR_EQ(relay_addr_format((struct sockaddr *)&a.ss, buf, sizeof(buf)),
		     "127.0.0.1:65535");
	static const char *const bad[] = {
		"",
		"8480",
		":8480",
		"[::1]",
		"[::1]8480",
		"::1:8480",
		"[::1]:",
		"[::1]:-1",
		"[::1]:65536",
		"[::1]:8x",
		"[]:80",
		"localhost:80",
		"1.2.3:80",
		"1.2.3.4:",
		"[1.2.3.4]:80",
		"1.2.3.4:+80",
		"*:",
		"* :80",
		"[::1]:0080000",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = relay_addr_parse(bad[i], &a);
		if (r != -EINVAL)
			printf("#   accepted \"%s\"\n", bad[i]);
		CHECK_INT_EQ(r, -EINVAL);
	}
	CHECK_INT_EQ(relay_addr_parse(NULL, &a), -EINVAL);

	/* IPv6 clients by /64, IPv4 by address, mapped IPv4 as IPv4 */
	inet_pton(AF_INET6, "2001:db8:1:2:aaaa::1", &s6.sin6_addr);
	relay_addr_key_derive((struct sockaddr *)&s6, &k1);
	inet_pton(AF_INET6, "2001:db8:1:2:bbbb::2", &s6.sin6_addr);
	relay_addr_key_derive((struct sockaddr *)&s6, &k2);
	CHECK(memcmp(&k1, &k2, sizeof(k1)) == 0);
	inet_pton(AF_INET6, "2001:db8:1:3::1", &s6.sin6_addr);
	relay_addr_key_derive((struct sockaddr *)&s6, &k2);
	CHECK(memcmp(&k1, &k2, sizeof(k1)) != 0);
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &s6.sin6_addr);
	relay_addr_key_derive((struct sockaddr *)&s6, &k1);
	inet_pton(AF_INET, "192.0.2.7", &s4.sin_addr);
	relay_addr_key_derive((struct sockaddr *)&s4, &k2);
	CHECK(memcmp(&k1, &k2, sizeof(k1)) == 0);
	inet_pton(AF_INET, "192.0.2.8", &s4.sin_addr);
	relay_addr_key_derive((struct sockaddr *)&s4, &k1);
	CHECK(memcmp(&k1, &k2, sizeof(k1)) != 0);

	/* X-Tandem-Observed: mapped IPv4 as IPv4; no scope, no port 0 */
	s4.sin_port = htons(4001);
	CHECK(relay_addr_observed((struct sockaddr *)&s4, buf, sizeof(buf)));
	CHECK_STR_EQ(buf, "192.0.2.8:4001");
	inet_pton(AF_INET6, "::ffff:198.51.100.50", &s6.sin6_addr);
	s6.sin6_port = htons(40000);
	CHECK(relay_addr_observed((struct sockaddr *)&s6, buf, sizeof(buf)));
	CHECK_STR_EQ(buf, "198.51.100.50:40000");
	inet_pton(AF_INET6, "2001:db8:a::2", &s6.sin6_addr);
	CHECK(relay_addr_observed((struct sockaddr *)&s6, buf, sizeof(buf)));
	CHECK_STR_EQ(buf, "[2001:db8:a::2]:40000");
	s6.sin6_scope_id = 2;
	CHECK(!relay_addr_observed((struct sockaddr *)&s6, buf, sizeof(buf)));
	CHECK_STR_EQ(buf, "");
	s6.sin6_scope_id = 0;
	s6.sin6_port = 0;
	CHECK(!relay_addr_observed((struct sockaddr *)&s6, buf, sizeof(buf)));
	CHECK(!relay_addr_observed(NULL, buf, sizeof(buf)));
}

/* ---- connections ---- */

static void conn_at(struct relay_conn *c, const char *addr, unsigned group)
{
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	struct sockaddr_in s4 = {.sin_family = AF_INET};

	memset(c, 0, sizeof(*c));
	c->group = group;
	if (inet_pton(AF_INET6, addr, &s6.sin6_addr) == 1) {
		relay_addr_key_derive((struct sockaddr *)&s6, &c->key);
	} else {
		REQUIRE(inet_pton(AF_INET, addr, &s4.sin_addr) == 1);
		relay_addr_key_derive((struct sockaddr *)&s4, &c->key);
	}
}

TEST(conns_per_client_by_64)
{
	struct relay_conns *t = NULL;
	struct relay_conn c[8], *ev;

	REQUIRE(relay_conns_new(2, 1000, 2, &t) == 0);
	/* two addresses of one /64 are one client, over both listeners */
	conn_at(&c[0], "2001:db8:1:2::1", 0);
	conn_at(&c[1], "2001:db8:1:2:ffff:ffff:ffff:ffff", 1);
	conn_at(&c[2], "2001:db8:1:2:abcd::7", 0);
	CHECK_INT_EQ(relay_conns_open(t, &c[0], 0, &ev), 0);
	CHECK_INT_EQ(relay_conns_open(t, &c[1], 0, &ev), 0);
	CHECK_INT_EQ(relay_conns_open(t, &c[2], 0, &ev), -EUSERS);
	CHECK(c[2].closing && !c[2].counted);
	CHECK_INT_EQ(relay_conns_client_count(t, &c[0].key), 2);
	/* the next /64 is another client */
	conn_at(&c[3], "2001:db8:1:3::1", 0);
	CHECK_INT_EQ(relay_conns_open(t, &c[3], 0, &ev), 0);
	/* an IPv4-mapped address is its IPv4 address */
	conn_at(&c[4], "::ffff:192.0.2.1", 0);
	conn_at(&c[5], "192.0.2.1", 1);
	conn_at(&c[6], "192.0.2.1", 0);
	conn_at(&c[7], "192.0.2.2", 0);
	CHECK_INT_EQ(relay_conns_open(t, &c[4], 0, &ev), 0);
	CHECK_INT_EQ(relay_conns_open(t, &c[5], 0, &ev), 0);
	CHECK_INT_EQ(relay_conns_open(t, &c[6], 0, &ev), -EUSERS);
	CHECK_INT_EQ(relay_conns_open(t, &c[7], 0, &ev), 0);
	CHECK_INT_EQ(relay_conns_group_count(t, 0), 6);
	CHECK_INT_EQ(relay_conns_group_count(t, 1), 2);
	/* a refused connection's close does not free a slot of its client */
	relay_conns_close(t, &c[2]);
	CHECK_INT_EQ(relay_conns_client_count(t, &c[0].key), 2);
	relay_conns_close(t, &c[0]);
	CHECK_INT_EQ(relay_conns_client_count(t, &c[0].key), 1);
	conn_at(&c[2], "2001:db8:1:2::2", 0);
	CHECK_INT_EQ(relay_conns_open(t, &c[2], 0, &ev), 0);
	for (int i = 1; i < 8; i++)
		relay_conns_close(t, &c[i]);
	CHECK_INT_EQ(relay_conns_client_count(t, &c[1].key), 0);
	CHECK_INT_EQ(relay_conns_group_count(t, 0), 0);
	relay_conns_free(t);
}

TEST(conns_deadline_and_reserve)
{
	struct relay_conns *t = NULL;
	struct relay_conn c[20], *ev, *x;
	int64_t wake = 0;

	CHECK_INT_EQ(relay_conns_reserve(7), 0);
	CHECK_INT_EQ(relay_conns_reserve(16), 2);
	CHECK_INT_EQ(relay_conns_reserve(100000), 64);
	REQUIRE(relay_conns_new(0, 16, 1, &t) == 0);
	/* 14 slow connections fill what the reserve of 2 leaves */
	for (int i = 0; i < 14; i++) {
		conn_at(&c[i], "127.0.0.2", 0);
		CHECK_INT_EQ(relay_conns_open(t, &c[i], 100 * i, &ev), 0);
		CHECK(ev == NULL);
	}
	/* c[0] answers: it is never evicted nor expired while it does */
	relay_conns_answering(t, &c[0]);
	/* the 15th evicts the oldest reading one */
	conn_at(&c[14], "127.0.0.3", 0);
	CHECK_INT_EQ(relay_conns_open(t, &c[14], 1500, &ev), 0);
	CHECK(ev == &c[1] && c[1].closing);
	relay_conns_close(t, &c[1]);
	/* deadline 1000 ms: c[2] (200) and c[3] (300) at 1300, nothing more */
	x = relay_conns_expired(t, 1300, 1000, &wake);
	CHECK(x == &c[2]);
	x = relay_conns_expired(t, 1300, 1000, &wake);
	CHECK(x == &c[3]);
	CHECK(relay_conns_expired(t, 1300, 1000, &wake) == NULL);
	CHECK_INT_EQ(wake, 1400);
	/* a finished request reads the next one with a fresh deadline */
	relay_conns_done(t, &c[0], 1600);
	for (int i = 4; i < 14; i++) {
		x = relay_conns_expired(t, 2400, 1000, &wake);
		CHECK(x == &c[i]);
	}
	CHECK(relay_conns_expired(t, 2400, 1000, &wake) == NULL);
	CHECK_INT_EQ(wake, 2500);
	CHECK(relay_conns_expired(t, 2500, 1000, &wake) == &c[14]);
	CHECK(relay_conns_expired(t, 2500, 1000, &wake) == NULL);
	CHECK_INT_EQ(wake, 2600);
	CHECK(relay_conns_expired(t, 2600, 1000, &wake) == &c[0]);
	CHECK(relay_conns_expired(t, 9999, 1000, &wake) == NULL);
	CHECK_INT_EQ(wake, 9999 + 1000);
	for (int i = 0; i < 15; i++)
		if (i != 1)
			relay_conns_close(t, &c[i]);
	CHECK_INT_EQ(relay_conns_group_count(t, 0), 0);
	relay_conns_free(t);
}

/* ---- request handling ---- */

static struct relay_core *core;
static int64_t clock_ms;
static char tok_hdr[80], tok2_hdr[80], sec_b64[48], sec2_b64[48];

static int call(const char *method, const char *path, const char *auth, const char *secret,
		const char *body, struct relay_response *resp)
{
	struct relay_request req = {
		.method = method,
		.path = path,
		.authorization = auth,
		.write_secret = secret,
		.body = (const uint8_t *)body,
		.body_len = body ? strlen(body) : 0,
		.content_length_known = body != NULL,
		.content_length = body ? strlen(body) : 0,
		.now_ms = clock_ms,
	};

	req.client.b[0] = 4;
	relay_core_handle(core, &req, resp);
	return resp->status;
}

/* status and, for errors, the JSON error shape with the given code */
static int expect(const char *method, const char *path, const char *auth, const char *secret,
		  const char *body, int status, const char *code)
{
	struct relay_response resp;
	int ok = call(method, path, auth, secret, body, &resp) == status;

	if (!ok)
		printf("#   %s %s: status %d, expected %d: %.*s\n", method, path, resp.status,
		       status, (int)resp.body_len, resp.body ? resp.body : "");
	if (code) {
		json_t *j = resp.body ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
		const char *e = json_string_value(json_object_get(j, "error"));
		const char *m = json_string_value(json_object_get(j, "message"));
		if (!j || json_object_size(j) != 2 || !e || strcmp(e, code) != 0 || !m ||
		    strlen(m) < 20) {
			printf("#   %s %s: bad error body %.*s (want %s)\n", method, path,
			       (int)resp.body_len, resp.body ? resp.body : "", code);
			ok = 0;
		}
		if (resp.content_type == NULL || strcmp(resp.content_type, "application/json"))
			ok = 0;
		json_decref(j);
	}
	relay_core_response_done(&resp);
	return ok;
}

static void core_setup(unsigned rate, size_t max_records)
{
	struct relay_core_config cfg;
	uint8_t b[32];

	relay_core_free(core);
	core = NULL;
	relay_core_config_init(&cfg);
	cfg.rate = rate;
	cfg.max_records = max_records;
	cfg.max_body = 8192;
	clock_ms = 1000;
	if (relay_core_new(&cfg, clock_ms, &core) < 0)
		abort();
	fill(b, 32, 0xa1);
	strcpy(tok_hdr, "Bearer ");
	b64url_encode(b, 32, tok_hdr + 7, sizeof(tok_hdr) - 7);
	fill(b, 32, 0xa2);
	strcpy(tok2_hdr, "bearer  ");
	b64url_encode(b, 32, tok2_hdr + 8, sizeof(tok2_hdr) - 8);
	fill(b, 32, 0xb1);
	b64url_encode(b, 32, sec_b64, sizeof(sec_b64));
	fill(b, 32, 0xb2);
	b64url_encode(b, 32, sec2_b64, sizeof(sec2_b64));
}

TEST(handle_records_flow)
{
	struct relay_response resp;

	core_setup(0, 10);
	CHECK(expect("GET", "/v1/records", tok_hdr, NULL, NULL, 404, "not_found"));
	CHECK(expect("POST", "/v1/records", tok_hdr, sec_b64, "{\"blob\":\"AQID\",\"ttl\":5}", 201,
		     NULL));
	CHECK_INT_EQ(call("GET", "/v1/records", tok_hdr, NULL, NULL, &resp), 200);
	CHECK(resp.body && strcmp(resp.body, "{\"blob\":\"AQID\",\"expires_in\":5,\"records\":["
					     "{\"blob\":\"AQID\",\"expires_in\":5}]}") == 0);
	relay_core_response_done(&resp);
	clock_ms += 4001;
	CHECK_INT_EQ(call("GET", "/v1/records", tok_hdr, NULL, NULL, &resp), 200);
	CHECK(resp.body && strstr(resp.body, "\"expires_in\":1}") != NULL);
	relay_core_response_done(&resp);
	/* the default TTL, and a replacement */
	CHECK_INT_EQ(call("POST", "/v1/records", tok_hdr, sec_b64, "{\"blob\":\"AQ\"}", &resp),
		     200);
	CHECK(resp.body && strcmp(resp.body, "{\"expires_in\":600}") == 0);
	relay_core_response_done(&resp);
	/* another writer: a record of its own next to the owner's, which it can
	 * neither replace nor delete; GET returns both, newest first */
	CHECK(expect("DELETE", "/v1/records", tok_hdr, sec2_b64, NULL, 403, "forbidden"));
	CHECK(expect("POST", "/v1/records", tok_hdr, sec2_b64, "{\"blob\":\"BBA\"}", 201, NULL));
	CHECK_INT_EQ(call("GET", "/v1/records", tok_hdr, NULL, NULL, &resp), 200);
	CHECK(resp.body && strcmp(resp.body, "{\"blob\":\"BBA\",\"expires_in\":600,\"records\":["
					     "{\"blob\":\"BBA\",\"expires_in\":600},"
					     "{\"blob\":\"AQ\",\"expires_in\":600}]}") == 0);
	relay_core_response_done(&resp);
	CHECK(expect("DELETE", "/v1/records", tok_hdr, sec2_b64, NULL, 204, NULL));
	CHECK(expect("POST", "/v1/records", tok_hdr, NULL, "{\"blob\":\"AQ\"}", 403, "forbidden"));
	CHECK(expect("DELETE", "/v1/records", tok_hdr, NULL, NULL, 403, "forbidden"));
	CHECK(expect("DELETE", "/v1/records", tok_hdr, sec2_b64, NULL, 403, "forbidden"));
	CHECK(expect("POST", "/v1/records", tok2_hdr, NULL, "{\"blob\":\"AQ\"}", 400,
		     "missing_write_secret"));
	CHECK(expect("POST", "/v1/records", tok2_hdr, "nope", "{\"blob\":\"AQ\"}", 400,
		     "invalid_write_secret"));
	CHECK(expect("DELETE", "/v1/records", tok_hdr, sec_b64, NULL, 204, NULL));
	CHECK(expect("DELETE", "/v1/records", tok_hdr, sec_b64, NULL, 404, "not_found"));
	/* expiry */
	CHECK(expect("POST", "/v1/records", tok_hdr, sec_b64, "{\"blob\":\"AQID\",\"ttl\":1}", 201,
		     NULL));
	clock_ms += 999;
	CHECK(expect("GET", "/v1/records", tok_hdr, NULL, NULL, 200, NULL));
	clock_ms += 1;
	CHECK(expect("GET", "/v1/records", tok_hdr, NULL, NULL, 404, "not_found"));
	/* HEAD is GET without a body (microhttpd drops it) */
	CHECK(expect("HEAD", "/v1/records", tok_hdr, NULL, NULL, 404, "not_found"));
}

TEST(handle_bad_requests)
{
	static const struct {
		const char *body;
		const char *code;
	} bad[] = {
		{"", "invalid_json"},
		{"nope", "invalid_json"},
		{"[1]", "invalid_json"},
		{"\"AQID\"", "invalid_json"},
		{"{\"blob\":\"AQID\",\"blob\":\"AQID\"}", "invalid_json"},
		{"{\"blob\":\"AQ\\u0000\"}", "invalid_json"},
		{"{\"blob\":\"AQID\"} x", "invalid_json"},
		{"{}", "invalid_blob"},
		{"{\"ttl\":5}", "invalid_blob"},
		{"{\"blob\":5}", "invalid_blob"},
		{"{\"blob\":null}", "invalid_blob"},
		{"{\"blob\":\"\"}", "invalid_blob"},
		{"{\"blob\":\"a+b/\"}", "invalid_blob"},
		{"{\"blob\":\"AQ==\"}", "invalid_blob"},
		{"{\"blob\":\"A\"}", "invalid_blob"},
		{"{\"blob\":\"AB\"}", "invalid_blob"}, /* non-zero trailing bits */
		{"{\"blob\":\"AQ ID\"}", "invalid_blob"},
		{"{\"blob\":\"AQID\",\"ttl\":0}", "invalid_ttl"},
		{"{\"blob\":\"AQID\",\"ttl\":-5}", "invalid_ttl"},
		{"{\"blob\":\"AQID\",\"ttl\":3601}", "invalid_ttl"},
		{"{\"blob\":\"AQID\",\"ttl\":99999999999999999999}", "invalid_json"},
		{"{\"blob\":\"AQID\",\"ttl\":\"60\"}", "invalid_ttl"},
		{"{\"blob\":\"AQID\",\"ttl\":60.0}", "invalid_ttl"},
		{"{\"blob\":\"AQID\",\"ttl\":null}", "invalid_ttl"},
		{"{\"blob\":\"AQID\",\"ttl\":true}", "invalid_ttl"},
		{"{\"blob\":\"AQID\",\"owner\":\"me\"}", "unknown_field"},
	};
	struct relay_response resp;

	core_setup(0, 10);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ok = expect("POST", "/v1/records", tok_hdr, sec_b64, bad[i].body, 400,
				bad[i].code);
		if (!ok)
			printf("#   body %zu: %s\n", i, bad[i].body);
		CHECK(ok);
	}
	/* the ttl message names the range */
	call("POST", "/v1/records", tok_hdr, sec_b64, "{\"blob\":\"AQID\",\"ttl\":0}", &resp);
	CHECK(resp.body && strstr(resp.body, "from 1 to 3600") != NULL);
	relay_core_response_done(&resp);

	/* blob sizes: 4096 bytes is fine, 4097 is not */
	static char big[6000];
	static uint8_t raw[4097];
	int n = snprintf(big, sizeof(big), "{\"blob\":\"");
	b64url_encode(raw, 4096, big + n, sizeof(big) - (size_t)n);
	strcat(big, "\"}");
	CHECK(expect("POST", "/v1/records", tok_hdr, sec_b64, big, 201, NULL));
	n = snprintf(big, sizeof(big), "{\"blob\":\"");
	b64url_encode(raw, 4097, big + n, sizeof(big) - (size_t)n);
	strcat(big, "\"}");
	CHECK(expect("POST", "/v1/records", tok_hdr, sec_b64, big, 400, "invalid_blob"));

	/* bearer tokens */
	static const char *const bad_auth[] = {
		"Basic dXNlcjpwYXNz",
		"Bearer",
		"Bearer ",
		"BearerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
		"Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
		"Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA x",
	};
	for (size_t i = 0; i < sizeof(bad_auth) / sizeof(bad_auth[0]); i++) {
		int ok = expect("GET", "/v1/records", bad_auth[i], NULL, NULL, 401, "unauthorized");
		if (!ok)
			printf("#   auth %zu: %s\n", i, bad_auth[i]);
		CHECK(ok);
	}
	CHECK(expect("GET", "/v1/records", NULL, NULL, NULL, 401, "unauthorized"));
	CHECK(expect("DELETE", "/v1/records", NULL, sec_b64, NULL, 401, "unauthorized"));
	CHECK(expect("POST", "/v1/records", NULL, sec_b64, "{\"blob\":\"AQ\"}", 401,
		     "unauthorized"));
	call("GET", "/v1/records", NULL, NULL, NULL, &resp);
	CHECK(resp.www_authenticate);
	relay_core_response_done(&resp);
	/* blanks around the token are fine; zero bytes are a valid token */
	CHECK(expect("GET", "/v1/records",
		     "  Bearer   AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ", NULL, NULL, 404,
		     "not_found"));

	/* duplicate headers */
	struct relay_request req = {.method = "GET",
				    .path = "/v1/records",
				    .authorization = tok_hdr,
				    .duplicate_header = true,
				    .now_ms = clock_ms};
	relay_core_handle(core, &req, &resp);
	CHECK_INT_EQ(resp.status, 400);
	relay_core_response_done(&resp);
}

TEST(handle_routes_and_limits)
{
	struct relay_response resp;
	struct relay_request req;

	core_setup(0, 1);
	CHECK(expect("GET", "/", NULL, NULL, NULL, 404, "not_found"));
	CHECK(expect("GET", "/v1/records/", tok_hdr, NULL, NULL, 404, "not_found"));
	CHECK(expect("GET", "/V1/RECORDS", tok_hdr, NULL, NULL, 404, "not_found"));
	CHECK(expect("PUT", "/v1/records", tok_hdr, NULL, NULL, 405, "method_not_allowed"));
	CHECK(expect("get", "/v1/records", tok_hdr, NULL, NULL, 405, "method_not_allowed"));
	CHECK(expect("POST", "/healthz", NULL, NULL, "{}", 405, "method_not_allowed"));
	CHECK_INT_EQ(call("DELETE", "/metrics", NULL, NULL, NULL, &resp), 405);
	CHECK_STR_EQ(resp.allow, "GET, HEAD");
	relay_core_response_done(&resp);
	CHECK_INT_EQ(call("GET", "/healthz", NULL, NULL, NULL, &resp), 200);
	CHECK(resp.body && strcmp(resp.body, "{\"status\":\"ok\"}") == 0);
	relay_core_response_done(&resp);

	/* capacity: 503 with the time until the earliest expiry */
	CHECK(expect("POST", "/v1/records", tok_hdr, sec_b64, "{\"blob\":\"AQ\",\"ttl\":30}", 201,
		     NULL));
	clock_ms += 10000;
	CHECK_INT_EQ(call("POST", "/v1/records", tok2_hdr, sec_b64, "{\"blob\":\"AQ\"}", &resp),
		     503);
	CHECK_INT_EQ(resp.retry_after, 20);
	relay_core_response_done(&resp);
	CHECK(expect("POST", "/v1/records", tok2_hdr, sec_b64, "{\"blob\":\"AQ\"}", 503,
		     "capacity"));
	clock_ms += 20000;
	CHECK(expect("POST", "/v1/records", tok2_hdr, sec_b64, "{\"blob\":\"AQ\"}", 201, NULL));

	/* size: from Content-Length before the body, or from the body */
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.path = "/v1/records";
	req.content_length_known = true;
	req.content_length = 8193;
	req.now_ms = clock_ms;
	CHECK_INT_EQ(relay_core_admit(core, &req, &resp), 1);
	CHECK_INT_EQ(resp.status, 413);
	relay_core_response_done(&resp);
	req.content_length = 8192;
	CHECK_INT_EQ(relay_core_admit(core, &req, &resp), 0);
	req.content_length_known = false;
	req.body_too_large = true;
	req.admitted = true;
	relay_core_handle(core, &req, &resp);
	CHECK_INT_EQ(resp.status, 413);
	relay_core_response_done(&resp);

	/* metrics counted all of the above */
	CHECK_INT_EQ(call("GET", "/metrics", NULL, NULL, NULL, &resp), 200);
	CHECK(resp.body && strstr(resp.body, "tandem_relay_records 1\n") != NULL);
	CHECK(resp.body && strstr(resp.body, "tandem_relay_requests_total{status=\"503\"} 2\n"));
	CHECK(resp.body &&
	      strstr(resp.body, "tandem_relay_rejections_total{reason=\"too_large\"} 2\n"));
	CHECK(resp.body && strstr(resp.body, "tandem_relay_uptime_seconds 30\n"));
	CHECK_STR_EQ(resp.content_type, "text/plain; version=0.0.4; charset=utf-8");
	relay_core_response_done(&resp);
}

TEST(handle_rate_limit)
{
	struct relay_response resp;

	core_setup(3, 10);
	for (int i = 0; i < 3; i++)
		CHECK(expect("GET", "/v1/records", tok_hdr, NULL, NULL, 404, NULL));
	CHECK_INT_EQ(call("GET", "/v1/records", tok_hdr, NULL, NULL, &resp), 429);
	CHECK_INT_EQ(resp.retry_after, 20);
	relay_core_response_done(&resp);
	CHECK(expect("GET", "/metrics", NULL, NULL, NULL, 429, "rate_limited"));
	/* /healthz is never limited */
	CHECK(expect("GET", "/healthz", NULL, NULL, NULL, 200, NULL));
	clock_ms += 19999;
	CHECK_INT_EQ(call("GET", "/v1/records", tok_hdr, NULL, NULL, &resp), 429);
	CHECK_INT_EQ(resp.retry_after, 1);
	relay_core_response_done(&resp);
	clock_ms += 1;
	CHECK(expect("GET", "/v1/records", tok_hdr, NULL, NULL, 404, NULL));
}

TEST(handle_records_per_client)
{
	struct relay_core_config cfg;
	struct relay_response resp;

	core_setup(0, 10);
	relay_core_free(core);
	relay_core_config_init(&cfg);
	cfg.rate = 0;
	cfg.max_records = 10;
	cfg.max_records_per_client = 1;
	REQUIRE(relay_core_new(&cfg, clock_ms, &core) == 0);
	CHECK(expect("POST", "/v1/records", tok_hdr, sec_b64, "{\"blob\":\"AQID\",\"ttl\":5}", 201,
		     NULL));
	CHECK(expect("POST", "/v1/records", tok2_hdr, sec_b64, "{\"blob\":\"AQID\"}", 429,
		     "too_many_records"));
	clock_ms += 1500;
	CHECK_INT_EQ(call("POST", "/v1/records", tok2_hdr, sec_b64, "{\"blob\":\"AQID\"}", &resp),
		     429);
	CHECK_INT_EQ(resp.retry_after, 4);
	relay_core_response_done(&resp);
	/* its own record can still be replaced */
	CHECK(expect("POST", "/v1/records", tok_hdr, sec_b64, "{\"blob\":\"AQID\",\"ttl\":5}", 200,
		     NULL));
	CHECK_INT_EQ(call("GET", "/metrics", NULL, NULL, NULL, &resp), 200);
	CHECK(resp.body &&
	      strstr(resp.body, "tandem_relay_rejections_total{reason=\"too_many_records\"} 2\n"));
	CHECK(resp.body &&
	      strstr(resp.body, "tandem_relay_rejections_total{reason=\"rate_limited\"} 0\n"));
	relay_core_response_done(&resp);
	/* connections the HTTP layer closed */
	relay_core_count_closed(core, RELAY_CLOSE_DEADLINE, 3);
	relay_core_count_closed(core, RELAY_CLOSE_PER_CLIENT, 1);
	relay_core_count_closed(core, RELAY_CLOSE_COUNT, 1);
	CHECK_INT_EQ(call("GET", "/metrics", NULL, NULL, NULL, &resp), 200);
	CHECK(resp.body &&
	      strstr(resp.body,
		     "tandem_relay_connections_closed_total{reason=\"deadline\"} 3\n"));
	CHECK(resp.body &&
	      strstr(resp.body, "tandem_relay_connections_closed_total{reason=\"evicted\"} 0\n"));
	CHECK(resp.body &&
	      strstr(resp.body,
		     "tandem_relay_connections_closed_total{reason=\"per_client\"} 1\n"));
	relay_core_response_done(&resp);
}

int main(void)
{
	RUN(store_put_get_replace_delete);
	RUN(store_several_writers);
	RUN(store_full_token_eviction);
	RUN(store_expiry_and_capacity);
	RUN(store_per_client_cap);
	RUN(store_eviction_releases_client_slot);
	RUN(store_many_random_expiries);
	RUN(ratelimit_refill);
	RUN(ratelimit_table_is_bounded);
	RUN(addr_parse_and_keys);
	RUN(conns_per_client_by_64);
	RUN(conns_deadline_and_reserve);
	RUN(handle_records_flow);
	RUN(handle_bad_requests);
	RUN(handle_routes_and_limits);
	RUN(handle_rate_limit);
	RUN(handle_records_per_client);
	relay_core_free(core);
	return tap_done();
}
