/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Relayed connections, the client's sans-IO side: the rendezvous token
 * (both peers compute the same, nobody else can), the sides, the upgrade
 * request and the parsing of the relay's answer (docs/PROTOCOL.md §6).
 */
#include <errno.h>

#include <sodium.h>

#include "base/encoding.h"
#include "relay_client/relay_splice.h"
#include "tap.h"

static struct identity *id_from(uint8_t v)
{
	uint8_t seed[32];
	struct identity *id = NULL;

	memset(seed, v, sizeof(seed));
	if (identity_new(seed, &id) < 0)
		return NULL;
	return id;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	sodium_bin2hex(out, 2 * n + 1, b, n);
}

TEST(token_same_on_both_sides)
{
	struct identity *a = id_from(1), *b = id_from(2), *c = id_from(3);
	uint8_t ta[32], tb[32], tc[32], t2[32];

	REQUIRE(a && b && c);
	CHECK_INT_EQ(relay_splice_token(a, b->pk, 472222, ta), 0);
	CHECK_INT_EQ(relay_splice_token(b, a->pk, 472222, tb), 0);
	CHECK(memcmp(ta, tb, 32) == 0);
	/* another bucket, another token */
	CHECK_INT_EQ(relay_splice_token(a, b->pk, 472223, t2), 0);
	CHECK(memcmp(ta, t2, 32) != 0);
	/* a third party that knows both public keys gets another token */
	CHECK_INT_EQ(relay_splice_token(c, b->pk, 472222, tc), 0);
	CHECK(memcmp(ta, tc, 32) != 0);
	CHECK_INT_EQ(relay_splice_token(c, a->pk, 472222, tc), 0);
	CHECK(memcmp(ta, tc, 32) != 0);
	/* sides are complementary */
	CHECK_INT_EQ(relay_splice_side(a, b->pk) + relay_splice_side(b, a->pk), 3);
	CHECK_INT_EQ(relay_splice_side(a, b->pk), memcmp(a->pk, b->pk, 32) < 0 ? 1 : 2);
	identity_free(a);
	identity_free(b);
	identity_free(c);
}

TEST(token_vector)
{
	/* docs/PROTOCOL.md §6: seeds of 32 bytes 0x01 and 0x02, bucket 472222 */
	struct identity *a = id_from(1), *b = id_from(2);
	uint8_t t[32];
	char h[65];

	REQUIRE(a && b);
	CHECK_INT_EQ(relay_splice_token(a, b->pk, 472222, t), 0);
	hex(t, 32, h);
	printf("# token %s\n", h);
	CHECK_STR_EQ(h, "c6196c307d25fcc2be94f4a3806f280b70f3eb96a1b5c446628b1952bfbc54f2");
	/* the public key of seed 0x02 sorts first: it is side 1 */
	CHECK_INT_EQ(relay_splice_side(b, a->pk), 1);
	identity_free(a);
	identity_free(b);
}

TEST(token_bad_keys)
{
	struct identity *a = id_from(1);
	uint8_t t[32], zero[32] = {0}, small[32] = {1}; /* the neutral element: small order */
	uint8_t junk[32];

	REQUIRE(a);
	memset(junk, 0xff, sizeof(junk));
	CHECK_INT_EQ(relay_splice_token(a, a->pk, 1, t), -EINVAL);
	CHECK_INT_EQ(relay_splice_token(a, zero, 1, t), -EINVAL);
	CHECK_INT_EQ(relay_splice_token(a, small, 1, t), -EINVAL);
	CHECK_INT_EQ(relay_splice_token(a, junk, 1, t), -EINVAL);
	identity_free(a);
}

TEST(request_format)
{
	uint8_t tok[32];
	char buf[RELAY_SPLICE_REQUEST_MAX], b64[64], want[512];
	int n;

	memset(tok, 0x11, sizeof(tok));
	b64url_encode(tok, 32, b64, sizeof(b64));
	n = relay_splice_request_format("[::1]:8480", "", tok, 2, buf, sizeof(buf));
	REQUIRE(n > 0);
	snprintf(want, sizeof(want),
		 "GET /v1/splice HTTP/1.1\r\nHost: [::1]:8480\r\nConnection: Upgrade\r\n"
		 "Upgrade: tandem-splice/1\r\nAuthorization: Bearer %s\r\n"
		 "X-Tandem-Splice-Side: 2\r\nUser-Agent: tandem\r\n\r\n",
		 b64);
	CHECK_STR_EQ(buf, want);
	CHECK_INT_EQ(n, (int)strlen(want));
	n = relay_splice_request_format("relay.example", "/tandem", tok, 1, buf, sizeof(buf));
	CHECK(n > 0 && strncmp(buf, "GET /tandem/v1/splice HTTP/1.1\r\n", 32) == 0);
	CHECK_INT_EQ(relay_splice_request_format("h", "", tok, 0, buf, sizeof(buf)), -EINVAL);
	CHECK_INT_EQ(relay_splice_request_format("h", "", tok, 3, buf, sizeof(buf)), -EINVAL);
	CHECK_INT_EQ(relay_splice_request_format("a b", "", tok, 1, buf, sizeof(buf)), -EINVAL);
	CHECK_INT_EQ(relay_splice_request_format("h\r\nX: y", "", tok, 1, buf, sizeof(buf)),
		     -EINVAL);
	CHECK_INT_EQ(relay_splice_request_format("", "", tok, 1, buf, sizeof(buf)), -EINVAL);
	CHECK_INT_EQ(relay_splice_request_format("h", "x", tok, 1, buf, sizeof(buf)), -EINVAL);
	CHECK_INT_EQ(relay_splice_request_format("h", "", tok, 1, buf, 40), -EMSGSIZE);
}

static int parse(const char *s, bool eof, struct relay_splice_reply *rep)
{
	return relay_splice_reply_parse((const uint8_t *)s, strlen(s), eof, rep);
}

TEST(reply_parse)
{
	struct relay_splice_reply rep;
	static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
				 "upgrade:  Tandem-Splice/1 \r\n\r\n";
	char buf[256];

	/* a 101's head, and not a byte of what follows it */
	CHECK_INT_EQ(parse(ok, false, &rep), (int)strlen(ok));
	CHECK_INT_EQ(rep.status, 101);
	snprintf(buf, sizeof(buf), "%s\x89TDM peer bytes", ok);
	CHECK_INT_EQ(parse(buf, false, &rep), (int)strlen(ok));
	/* byte by byte: more needed until the head is complete */
	for (size_t i = 0; i < strlen(ok); i++)
		CHECK_INT_EQ(relay_splice_reply_parse((const uint8_t *)ok, i, false, &rep), 0);
	CHECK_INT_EQ(relay_splice_reply_parse((const uint8_t *)ok, 10, true, &rep), -EPROTO);
	CHECK_INT_EQ(parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false,
			   &rep),
		     -EPROTO);
	CHECK_INT_EQ(parse("HTTP/1.1 101 Switching Protocols\r\n\r\n", false, &rep), -EPROTO);
	CHECK_INT_EQ(parse("SSH-2.0-OpenSSH\r\n", false, &rep), -EPROTO);
	CHECK_INT_EQ(parse("HTTP/1.1 1x1 Bad\r\n\r\n", false, &rep), -EPROTO);
	CHECK_INT_EQ(parse("HTTP/1.1 100 Continue\r\n\r\n", false, &rep), -EPROTO);

	/* a refusal, with its JSON body */
	static const char body[] = "{\"error\":\"session_busy\",\"message\":\"two peers\\n!\"}";
	char busy[256];
	snprintf(busy, sizeof(busy),
		 "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\n\r\n%s",
		 strlen(body), body);
	CHECK_INT_EQ(parse(busy, false, &rep), (int)strlen(busy));
	CHECK_INT_EQ(rep.status, 409);
	CHECK_STR_EQ(rep.error, "session_busy");
	CHECK_STR_EQ(rep.message, "two peers !"); /* control characters blanked */
	CHECK_INT_EQ(relay_splice_reply_parse((const uint8_t *)busy, strlen(busy) - 1, false, &rep),
		     0);
	CHECK_INT_EQ(relay_splice_reply_parse((const uint8_t *)busy, strlen(busy) - 1, true, &rep),
		     -EPROTO);
	static const char tmr[] = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 10\r\n"
				  "Content-Length: 0\r\n\r\n";
	CHECK_INT_EQ(parse(tmr, false, &rep), (int)strlen(tmr));
	CHECK_INT_EQ(rep.retry_after, 10);
	/* a proxy's HTML page: the status counts, the body is ignored */
	CHECK(parse("HTTP/1.0 502 Bad Gateway\r\nContent-Length: 6\r\n\r\n<html>", false, &rep) >
	      0);
	CHECK_INT_EQ(rep.status, 502);
	CHECK_STR_EQ(rep.error, "");
	/* no Content-Length: the body ends with the connection */
	CHECK_INT_EQ(parse("HTTP/1.1 503 X\r\n\r\nbody", false, &rep), 0);
	CHECK(parse("HTTP/1.1 503 X\r\n\r\nbody", true, &rep) > 0);
	CHECK_INT_EQ(parse("HTTP/1.1 503 X\r\nContent-Length: 99999\r\n\r\n", false, &rep),
		     -EPROTO);
	/* a head that never ends */
	char *big = malloc(RELAY_SPLICE_HEAD_MAX + 64);
	REQUIRE(big);
	memset(big, 'a', RELAY_SPLICE_HEAD_MAX + 64);
	memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
	CHECK_INT_EQ(relay_splice_reply_parse((const uint8_t *)big, RELAY_SPLICE_HEAD_MAX + 64,
					      false, &rep),
		     -EPROTO);
	free(big);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(token_same_on_both_sides);
	RUN(token_vector);
	RUN(token_bad_keys);
	RUN(request_format);
	RUN(reply_parse);
	return tap_done();
}
