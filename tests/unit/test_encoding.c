/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>

#include <sodium.h>

#include "base/encoding.h"
#include "tap.h"

TEST(base32_known_vectors)
{
	/* RFC 4648 §10: "foobar" -> MZXW6YTBOI (first 50 bits of "foobar" = 10 chars) */
	char out[32];
	uint8_t back[8];

	base32_encode_bits((const uint8_t *)"foobar", 30, out);
	CHECK_STR_EQ(out, "MZXW6Y");
	base32_encode_bits((const uint8_t *)"fooba", 40, out);
	CHECK_STR_EQ(out, "MZXW6YTB");
	CHECK_INT_EQ(base32_decode_bits("MZXW6YTB", 8, back), 0);
	CHECK(memcmp(back, "fooba", 5) == 0);
	CHECK_INT_EQ(base32_decode_bits("mzxw6ytb", 8, back), 0);
	CHECK(memcmp(back, "fooba", 5) == 0);
	CHECK_INT_EQ(base32_decode_bits("MZXW6YT1", 8, back), -EINVAL);
	CHECK_INT_EQ(base32_decode_bits("MZXW6YT=", 8, back), -EINVAL);
}

TEST(base32_roundtrip_random)
{
	for (int i = 0; i < 200; i++) {
		uint8_t in[20], back[20];
		char txt[33];
		randombytes_buf(in, sizeof(in));
		base32_encode_bits(in, 160, txt);
		CHECK_INT_EQ(strlen(txt), 32);
		CHECK_INT_EQ(base32_decode_bits(txt, 32, back), 0);
		CHECK(memcmp(in, back, 20) == 0);
	}
}

TEST(b64url_roundtrip_and_rejects)
{
	uint8_t in[64], back[64];
	char txt[128];

	for (size_t n = 0; n <= 40; n++) {
		randombytes_buf(in, n);
		size_t len = b64url_encode(in, n, txt, sizeof(txt));
		CHECK_INT_EQ(len, B64URL_LEN(n));
		CHECK(strchr(txt, '=') == NULL && strchr(txt, '+') == NULL &&
		      strchr(txt, '/') == NULL);
		CHECK_INT_EQ(b64url_decode(txt, len, back, sizeof(back)), (int)n);
		CHECK(memcmp(in, back, n) == 0);
	}
	CHECK_INT_EQ(b64url_decode("AAA=", 4, back, sizeof(back)), -EINVAL);
	CHECK_INT_EQ(b64url_decode("AA+/", 4, back, sizeof(back)), -EINVAL);
	CHECK_INT_EQ(b64url_decode("A", 1, back, sizeof(back)), -EINVAL);
	CHECK_INT_EQ(b64url_decode("AA A", 4, back, sizeof(back)), -EINVAL);
	/* non-canonical trailing bits */
	CHECK_INT_EQ(b64url_decode("AB", 2, back, sizeof(back)), -EINVAL);
	/* too big for the output */
	CHECK_INT_EQ(b64url_decode("AAAAAAAA", 8, back, 5), -EMSGSIZE);
	CHECK_INT_EQ(b64url_decode("AAAAAAAA", 8, back, 6), 6);
	/* encode refuses a short buffer */
	CHECK_INT_EQ(b64url_encode(in, 3, txt, 4), 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 99;
	RUN(base32_known_vectors);
	RUN(base32_roundtrip_random);
	RUN(b64url_roundtrip_and_rejects);
	return tap_done();
}
