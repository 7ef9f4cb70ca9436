/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>

#include <sodium.h>

#include "chan/frame.h"
#include "chan/frame_internal.h"
#include "tap.h"

static uint8_t key_a[FRAME_KEY_LEN], key_b[FRAME_KEY_LEN];
static uint8_t *big_in, *big_out; /* FRAME_MAX_LEN each */
static const uint8_t zeros[65536];

/* Feeds data in slices of step bytes (0: all at once); collects up to max
 * frames' copies. Returns the number of frames, or the first error. */
struct got {
	int n;
	struct frame f[16];
	uint8_t *copy[16];
};

static void got_free(struct got *g)
{
	for (int i = 0; i < g->n; i++)
		free(g->copy[i]);
	g->n = 0;
}

static int feed(struct frame_dec *dec, const uint8_t *data, size_t len, size_t step, struct got *g)
{
	size_t off = 0;

	while (off < len) {
		size_t chunk = step && len - off > step ? step : len - off;
		size_t pos = 0;
		while (pos < chunk) {
			struct frame f;
			size_t used = 0;
			int r = frame_dec_feed(dec, data + off + pos, chunk - pos, &used, &f);
			if (r < 0)
				return r;
			if (used > chunk - pos)
				return -999;
			pos += used;
			if (r == 1) {
				if (g->n >= 16)
					return -998;
				g->copy[g->n] = malloc(f.len ? f.len : 1);
				memcpy(g->copy[g->n], f.payload, f.len);
				g->f[g->n] = f;
				g->n++;
			} else if (pos != chunk) {
				return -997; /* 0 means everything was consumed */
			}
		}
		off += chunk;
	}
	return g->n;
}

TEST(roundtrip_sizes)
{
	const size_t sizes[] = {0, 1, 15, 16, 17, 255, 4096, 65536, 1 << 20, FRAME_MAX_PAYLOAD};
	struct frame_enc *enc;
	struct frame_dec *dec;

	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	randombytes_buf(big_in, FRAME_MAX_PAYLOAD);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct got g = {0};
		int n = frame_enc_write(enc, FRAME_DATA, big_in, sizes[i], big_out, FRAME_MAX_LEN);
		CHECK_INT_EQ(n, FRAME_LEN(sizes[i]));
		if (n < 0)
			continue;
		CHECK_INT_EQ(feed(dec, big_out, (size_t)n, 0, &g), 1);
		if (g.n == 1) {
			CHECK_INT_EQ(g.f[0].type, FRAME_DATA);
			CHECK_INT_EQ(g.f[0].seq, i);
			CHECK_INT_EQ(g.f[0].len, sizes[i]);
			CHECK(memcmp(g.copy[0], big_in, sizes[i]) == 0);
		}
		CHECK_INT_EQ(frame_dec_pending(dec), 0);
		got_free(&g);
	}
	/* the payload is not in the clear */
	int n = frame_enc_write(enc, FRAME_DATA, big_in, 64, big_out, FRAME_MAX_LEN);
	REQUIRE(n > 0);
	CHECK(memmem(big_out, (size_t)n, big_in, 8) == NULL);
	frame_enc_free(enc);
	frame_dec_free(dec);
}

TEST(ping_pong_close)
{
	uint8_t buf[1024];
	struct frame_enc *enc;
	struct frame_dec *dec;
	struct got g = {0};
	size_t off = 0;
	int n;

	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	n = frame_enc_write_ping(enc, FRAME_PING, 0x0102030405060708ULL, buf + off,
				 sizeof(buf) - off);
	CHECK_INT_EQ(n, FRAME_LEN(8));
	off += (size_t)n;
	n = frame_enc_write_ping(enc, FRAME_PONG, UINT64_MAX, buf + off, sizeof(buf) - off);
	off += (size_t)n;
	n = frame_enc_write_close(enc, FRAME_CLOSE_TIMEOUT, "no heartbeat for 15 s", buf + off,
				  sizeof(buf) - off);
	CHECK_INT_EQ(n, FRAME_LEN(2 + 21));
	off += (size_t)n;
	REQUIRE(feed(dec, buf, off, 0, &g) == 3);
	CHECK_INT_EQ(g.f[0].type, FRAME_PING);
	CHECK(g.f[0].ping == 0x0102030405060708ULL);
	CHECK_INT_EQ(g.f[1].type, FRAME_PONG);
	CHECK(g.f[1].ping == UINT64_MAX);
	CHECK_INT_EQ(g.f[2].type, FRAME_CLOSE);
	CHECK_INT_EQ(g.f[2].close_code, FRAME_CLOSE_TIMEOUT);
	CHECK_INT_EQ(g.f[2].len, 21);
	CHECK(memcmp(g.copy[2], "no heartbeat for 15 s", 21) == 0);
	got_free(&g);

	/* nothing may follow a CLOSE */
	n = frame_enc_write(enc, FRAME_DATA, (const uint8_t *)"x", 1, buf, sizeof(buf));
	CHECK_INT_EQ(feed(dec, buf, (size_t)n, 0, &g), -EBADMSG);
	CHECK(strstr(frame_dec_reason(dec), "after CLOSE") != NULL);
	got_free(&g);
	frame_enc_free(enc);
	frame_dec_free(dec);

	/* CLOSE without text, at the longest text */
	char text[FRAME_CLOSE_TEXT_MAX + 2];
	memset(text, 'a', sizeof(text));
	text[FRAME_CLOSE_TEXT_MAX] = '\0';
	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	n = frame_enc_write_close(enc, FRAME_CLOSE_NORMAL, text, buf, sizeof(buf));
	CHECK_INT_EQ(n, FRAME_LEN(2 + FRAME_CLOSE_TEXT_MAX));
	CHECK_INT_EQ(feed(dec, buf, (size_t)n, 0, &g), 1);
	CHECK_INT_EQ(g.f[0].len, FRAME_CLOSE_TEXT_MAX);
	got_free(&g);
	frame_dec_free(dec);
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	frame_enc_free(enc);
	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	n = frame_enc_write_close(enc, 7, NULL, buf, sizeof(buf));
	CHECK_INT_EQ(feed(dec, buf, (size_t)n, 0, &g), 1);
	CHECK_INT_EQ(g.f[0].close_code, 7);
	CHECK_INT_EQ(g.f[0].len, 0);
	got_free(&g);
	frame_enc_free(enc);
	frame_dec_free(dec);
}

TEST(encoder_refuses)
{
	uint8_t buf[256];
	struct frame_enc *enc;
	struct frame_dec *dec;
	struct got g = {0};
	char text[FRAME_CLOSE_TEXT_MAX + 2];
	int n;

	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	CHECK_INT_EQ(frame_enc_write(enc, FRAME_DATA, big_in, FRAME_MAX_PAYLOAD + 1, big_out,
				     FRAME_MAX_LEN + 1),
		     -EMSGSIZE);
	CHECK_INT_EQ(frame_enc_write(enc, FRAME_DATA, buf, 10, buf, FRAME_LEN(10) - 1), -EMSGSIZE);
	CHECK_INT_EQ(frame_enc_write(enc, FRAME_DATA, buf, 10, NULL, 0), -EMSGSIZE);
	CHECK_INT_EQ(frame_enc_write(enc, (enum frame_type)0, buf, 10, buf, sizeof(buf)), -EINVAL);
	CHECK_INT_EQ(frame_enc_write(enc, (enum frame_type)5, buf, 10, buf, sizeof(buf)), -EINVAL);
	CHECK_INT_EQ(frame_enc_write(enc, FRAME_PING, buf, 7, buf, sizeof(buf)), -EINVAL);
	CHECK_INT_EQ(frame_enc_write(enc, FRAME_CLOSE, buf, 1, buf, sizeof(buf)), -EINVAL);
	CHECK_INT_EQ(frame_enc_write(enc, FRAME_DATA, NULL, 3, buf, sizeof(buf)), -EINVAL);
	CHECK_INT_EQ(frame_enc_write_ping(enc, FRAME_DATA, 1, buf, sizeof(buf)), -EINVAL);
	memset(text, 'a', sizeof(text));
	text[FRAME_CLOSE_TEXT_MAX + 1] = '\0';
	CHECK_INT_EQ(frame_enc_write_close(enc, 0, text, buf, sizeof(buf)), -EINVAL);
	CHECK(enc->counter == 0); /* none of these used a nonce */
	n = frame_enc_write(enc, FRAME_DATA, (const uint8_t *)"hello", 5, buf, sizeof(buf));
	CHECK_INT_EQ(feed(dec, buf, (size_t)n, 0, &g), 1);
	CHECK_INT_EQ(g.f[0].seq, 0);
	got_free(&g);
	frame_enc_free(enc);
	frame_dec_free(dec);
	frame_enc_free(NULL);
	frame_dec_free(NULL);
}

TEST(zero_copy_in_place)
{
	uint8_t buf[FRAME_LEN(100)];
	struct frame_enc *enc;
	struct frame_dec *dec;
	struct got g = {0};
	int n;

	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	for (int i = 0; i < 100; i++)
		buf[FRAME_PAYLOAD_OFFSET + i] = (uint8_t)i;
	n = frame_enc_write(enc, FRAME_DATA, buf + FRAME_PAYLOAD_OFFSET, 100, buf, sizeof(buf));
	CHECK_INT_EQ(n, sizeof(buf));
	REQUIRE(feed(dec, buf, (size_t)n, 0, &g) == 1);
	int ok = g.f[0].len == 100;
	for (int i = 0; ok && i < 100; i++)
		ok = g.copy[0][i] == i;
	CHECK(ok);
	got_free(&g);
	frame_enc_free(enc);
	frame_dec_free(dec);
}

/* The layout of docs/CHANNEL.md, computed with libsodium alone. */
TEST(layout_matches_spec)
{
	uint8_t buf[64], plain[8], nonce[12] = {0};
	struct frame_enc *enc;
	int n;

	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	enc->rekey_frames = 0; /* the counter is past any rekey point */
	enc->counter = 0x0102030405060708ULL;
	n = frame_enc_write(enc, FRAME_DATA, (const uint8_t *)"payload", 7, buf, sizeof(buf));
	REQUIRE(n == 4 + 1 + 7 + 16);
	CHECK(buf[0] == 0 && buf[1] == 0 && buf[2] == 0 && buf[3] == 24);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(i + 1);
	CHECK(crypto_aead_chacha20poly1305_ietf_decrypt_detached(plain, NULL, buf + 4, 8, buf + 12,
								 buf, 4, nonce, key_a) == 0);
	CHECK(plain[0] == FRAME_DATA && memcmp(plain + 1, "payload", 7) == 0);
	frame_enc_free(enc);
}

/*
 * The encoder and decoder use libcrypto's ChaCha20-Poly1305; the wire is
 * RFC 8439's, so libsodium must read what they write and the other way
 * round, at every length the vector code treats differently (the block
 * sizes of 64, 256 and 512 bytes, tails, the largest frame).
 */
TEST(libcrypto_and_libsodium_agree)
{
	static const size_t lens[] = {0, 1, 15, 16, 63, 64, 65, 255, 256, 257, 511, 512, 513,
				      4095, 65536 + 7, FRAME_MAX_PAYLOAD};
	uint8_t nonce[12] = {0};
	struct frame_enc *enc;
	struct frame_dec *dec;

	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = lens[i], body = 1 + len;
		uint64_t seq = enc->counter;
		struct frame f;
		size_t used = 0;
		int n;

		randombytes_buf(big_in, len);
		n = frame_enc_write(enc, FRAME_DATA, big_in, len, big_out, FRAME_MAX_LEN);
		REQUIRE(n == (int)FRAME_LEN(len));
		for (int k = 0; k < 8; k++)
			nonce[4 + k] = (uint8_t)(seq >> (56 - 8 * k));
		/* ours -> libsodium */
		CHECK(crypto_aead_chacha20poly1305_ietf_decrypt_detached(
			      big_out + 4, NULL, big_out + 4, body, big_out + 4 + body, big_out, 4,
			      nonce, key_a) == 0);
		CHECK(big_out[4] == FRAME_DATA && memcmp(big_out + 5, big_in, len) == 0);
		/* libsodium -> ours (the header is the same) */
		big_out[4] = FRAME_DATA;
		memcpy(big_out + 5, big_in, len);
		crypto_aead_chacha20poly1305_ietf_encrypt_detached(big_out + 4, big_out + 4 + body,
								   NULL, big_out + 4, body, big_out,
								   4, NULL, nonce, key_a);
		CHECK(frame_dec_feed(dec, big_out, (size_t)n, &used, &f) == 1);
		CHECK(used == (size_t)n && f.type == FRAME_DATA && f.len == len &&
		      (len == 0 || memcmp(f.payload, big_in, len) == 0));
	}
	frame_enc_free(enc);
	frame_dec_free(dec);
}

/* docs/CHANNEL.md, "Test vectors": the first frames under k_i2r. */
TEST(test_vector)
{
	static const char *want[2] = {
		"00000017004841e9787d9035de4975134f27cf63e938cbeabc8117",
		"00000019683c4b9d7cc45b57575a396acc345a129e4b61742f741cf728",
	};
	static const uint8_t k[FRAME_KEY_LEN] = {
		0x85, 0x61, 0xef, 0x9f, 0x81, 0x18, 0x5a, 0x4d, 0x89, 0xe5, 0xcb,
		0xe6, 0x56, 0xfc, 0x6d, 0xbb, 0xe7, 0x59, 0xe0, 0x33, 0x55, 0xdd,
		0x90, 0x41, 0xb2, 0x67, 0x5a, 0x75, 0xee, 0x2a, 0xab, 0x9d,
	};
	struct frame_enc *enc;
	uint8_t buf[64];
	char h[129];
	int n;

	REQUIRE(frame_enc_new(k, &enc) == 0);
	n = frame_enc_write(enc, FRAME_DATA, (const uint8_t *)"tandem", 6, buf, sizeof(buf));
	REQUIRE(n > 0);
	sodium_bin2hex(h, sizeof(h), buf, (size_t)n);
	CHECK_STR_EQ(h, want[0]);
	n = frame_enc_write_ping(enc, FRAME_PING, 1, buf, sizeof(buf));
	REQUIRE(n > 0);
	sodium_bin2hex(h, sizeof(h), buf, (size_t)n);
	CHECK_STR_EQ(h, want[1]);
	frame_enc_free(enc);
}

TEST(tamper_every_byte)
{
	uint8_t buf[256], wire[512];
	struct frame_enc *enc;
	int n, rejected = 0, yielded = 0;

	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	n = frame_enc_write(enc, FRAME_DATA, (const uint8_t *)"some file content", 17, buf,
			    sizeof(buf));
	REQUIRE(n > 0);
	frame_enc_free(enc);
	for (int i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			struct frame_dec *dec;
			struct got g = {0};
			int r;

			/* the tampered frame, then zeros in case the length grew */
			memset(wire, 0, sizeof(wire));
			memcpy(wire, buf, (size_t)n);
			wire[i] ^= (uint8_t)(1u << bit);
			REQUIRE(frame_dec_new(key_a, &dec) == 0);
			r = feed(dec, wire, sizeof(wire), 0, &g);
			/* a grown length waits for more bytes: give them until it decides */
			for (size_t more = 0; r == 0 && more < FRAME_MAX_LEN; more += 65536)
				r = feed(dec, zeros, 65536, 0, &g);
			if (r == -EBADMSG || r == -EMSGSIZE)
				rejected++;
			yielded += g.n;
			got_free(&g);
			frame_dec_free(dec);
		}
	}
	CHECK_INT_EQ(rejected, n * 8);
	CHECK_INT_EQ(yielded, 0); /* not one byte of a tampered frame came out */
}

static int encode3(uint8_t *buf, size_t *off)
{
	struct frame_enc *enc;
	int n;

	if (frame_enc_new(key_a, &enc) < 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		uint8_t p[4] = {'f', 'r', '0' + (uint8_t)i, 0};
		n = frame_enc_write(enc, FRAME_DATA, p, 3, buf + off[i], 64);
		off[i + 1] = off[i] + (size_t)n;
	}
	frame_enc_free(enc);
	return 0;
}

TEST(replay_reorder_drop)
{
	uint8_t buf[256], wire[512];
	size_t off[4] = {0};
	struct frame_dec *dec;
	struct got g = {0};
	size_t len0;

	REQUIRE(encode3(buf, off) == 0);
	len0 = off[1];

	/* replay: frame 0 twice */
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	memcpy(wire, buf, len0);
	memcpy(wire + len0, buf, len0);
	CHECK_INT_EQ(feed(dec, wire, 2 * len0, 0, &g), -EBADMSG);
	CHECK_INT_EQ(g.n, 1);
	CHECK(strstr(frame_dec_reason(dec), "frame 1 failed authentication") != NULL);
	printf("# %s\n", frame_dec_reason(dec));
	got_free(&g);
	/* final: even the right next frame is refused now */
	CHECK_INT_EQ(feed(dec, buf + off[1], off[2] - off[1], 0, &g), -EBADMSG);
	frame_dec_free(dec);

	/* reorder: 1 before 0 */
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	CHECK_INT_EQ(feed(dec, buf + off[1], off[2] - off[1], 0, &g), -EBADMSG);
	CHECK_INT_EQ(g.n, 0);
	frame_dec_free(dec);

	/* drop: 0 then 2 */
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	CHECK_INT_EQ(feed(dec, buf, len0, 0, &g), 1);
	got_free(&g);
	CHECK_INT_EQ(feed(dec, buf + off[2], off[3] - off[2], 0, &g), -EBADMSG);
	frame_dec_free(dec);

	/* the right order works */
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	CHECK_INT_EQ(feed(dec, buf, off[3], 0, &g), 3);
	CHECK(g.n == 3 && memcmp(g.copy[2], "fr2", 3) == 0);
	got_free(&g);
	frame_dec_free(dec);
}

TEST(wrong_key_or_direction)
{
	uint8_t buf[256];
	size_t off[4] = {0};
	struct frame_dec *dec;
	struct got g = {0};

	REQUIRE(encode3(buf, off) == 0);
	REQUIRE(frame_dec_new(key_b, &dec) == 0);
	CHECK_INT_EQ(feed(dec, buf, off[3], 0, &g), -EBADMSG);
	CHECK_INT_EQ(g.n, 0);
	frame_dec_free(dec);
}

TEST(truncated_frame)
{
	uint8_t buf[256];
	size_t off[4] = {0};
	struct frame_dec *dec;
	struct got g = {0};

	REQUIRE(encode3(buf, off) == 0);
	for (size_t cut = 0; cut < off[1]; cut++) {
		REQUIRE(frame_dec_new(key_a, &dec) == 0);
		CHECK_INT_EQ(feed(dec, buf, cut, 0, &g), 0);
		CHECK_INT_EQ(frame_dec_pending(dec), cut); /* EOF now: "hung up mid-frame" */
		frame_dec_free(dec);
	}
	/* a short frame cut at the first tag byte then continued with another
	 * frame's bytes: fails */
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	CHECK_INT_EQ(feed(dec, buf, off[1] - 16, 0, &g), 0);
	CHECK_INT_EQ(feed(dec, buf + off[1], off[2] - off[1], 0, &g), -EBADMSG);
	CHECK_INT_EQ(g.n, 0);
	frame_dec_free(dec);
}

TEST(oversized_length_refused_before_allocation)
{
	const uint32_t lens[] = {FRAME_MAX_BODY + 1, 0x7fffffff, 0xffffffff};
	struct frame_dec *dec;
	struct got g = {0};

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t h[4] = {(uint8_t)(lens[i] >> 24), (uint8_t)(lens[i] >> 16),
				(uint8_t)(lens[i] >> 8), (uint8_t)lens[i]};
		REQUIRE(frame_dec_new(key_a, &dec) == 0);
		/* the header alone is enough to refuse; nothing was allocated */
		CHECK_INT_EQ(feed(dec, h, 4, 0, &g), -EMSGSIZE);
		CHECK(dec->buf == NULL && dec->cap == 0);
		if (i == 0)
			printf("# %s\n", frame_dec_reason(dec));
		frame_dec_free(dec);
	}
	/* the largest legal length is accepted and allocates exactly one frame */
	uint8_t h[4] = {(uint8_t)(FRAME_MAX_BODY >> 24), (uint8_t)(FRAME_MAX_BODY >> 16),
			(uint8_t)(FRAME_MAX_BODY >> 8), (uint8_t)FRAME_MAX_BODY};
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	CHECK_INT_EQ(feed(dec, h, 4, 0, &g), 0);
	CHECK_INT_EQ(dec->cap, FRAME_MAX_BODY);
	frame_dec_free(dec);
	/* too short to hold a type byte and a tag */
	for (uint8_t l = 0; l < FRAME_MIN_BODY; l++) {
		uint8_t s[4] = {0, 0, 0, l};
		REQUIRE(frame_dec_new(key_a, &dec) == 0);
		CHECK_INT_EQ(feed(dec, s, 4, 0, &g), -EBADMSG);
		CHECK(dec->buf == NULL);
		frame_dec_free(dec);
	}
}

TEST(counter_exhaustion)
{
	uint8_t buf[256];
	struct frame_enc *enc;
	struct frame_dec *dec;
	struct got g = {0};
	int n;

	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	enc->rekey_frames = 0; /* the counter is past any rekey point */
	enc->counter = UINT64_MAX - 2;
	dec->counter = UINT64_MAX - 2;
	n = frame_enc_write(enc, FRAME_DATA, (const uint8_t *)"a", 1, buf, sizeof(buf));
	CHECK_INT_EQ(feed(dec, buf, (size_t)n, 0, &g), 1);
	n = frame_enc_write(enc, FRAME_DATA, (const uint8_t *)"b", 1, buf, sizeof(buf));
	CHECK_INT_EQ(feed(dec, buf, (size_t)n, 0, &g), 2);
	CHECK(g.f[1].seq == UINT64_MAX - 1);
	got_free(&g);
	/* the next frame would use the counter's last value: refused */
	CHECK_INT_EQ(frame_enc_write(enc, FRAME_DATA, (const uint8_t *)"c", 1, buf, sizeof(buf)),
		     -EOVERFLOW);
	CHECK_INT_EQ(frame_enc_write_ping(enc, FRAME_PING, 1, buf, sizeof(buf)), -EOVERFLOW);
	CHECK(enc->counter == UINT64_MAX);
	/* and the receiver takes nothing more either */
	CHECK_INT_EQ(feed(dec, buf, (size_t)n, 0, &g), -EOVERFLOW);
	frame_enc_free(enc);
	frame_dec_free(dec);
}

/* Seals one frame of type byte t under key at counter, with libsodium alone
 * (docs/CHANNEL.md §5): an independent writer. Returns its length. */
static size_t seal_raw(const uint8_t key[static FRAME_KEY_LEN], uint64_t counter, uint8_t t,
		       const void *p, size_t len, uint8_t *out)
{
	uint8_t nonce[12] = {0};
	size_t body = 1 + len + FRAME_TAG_LEN;

	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (56 - 8 * i));
	out[0] = (uint8_t)(body >> 24);
	out[1] = (uint8_t)(body >> 16);
	out[2] = (uint8_t)(body >> 8);
	out[3] = (uint8_t)body;
	out[4] = t;
	if (len)
		memcpy(out + 5, p, len);
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(out + 4, out + 5 + len, NULL, out + 4,
							   1 + len, out, 4, NULL, nonce, key);
	return 4 + body;
}

/* The next key of docs/CHANNEL.md §5, computed here with libsodium. */
static void next_key(const uint8_t k[static FRAME_KEY_LEN], uint8_t out[static FRAME_KEY_LEN])
{
	static const char label[] = "tandem/v1/chan/rekey";

	crypto_generichash(out, FRAME_KEY_LEN, (const uint8_t *)label, sizeof(label), k,
			   FRAME_KEY_LEN);
}

/* Writes frames 0..n-1 (DATA carrying their index, 4 bytes) into stream;
 * off[i] is where frame i starts, off[n] the end. */
static void write_numbered(struct frame_enc *enc, int n, uint8_t *stream, size_t *off)
{
	off[0] = 0;
	for (int i = 0; i < n; i++) {
		uint8_t p[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8),
				(uint8_t)i};
		int w = frame_enc_write(enc, FRAME_DATA, p, 4, stream + off[i], FRAME_LEN(4));
		REQUIRE(w == (int)FRAME_LEN(4));
		off[i + 1] = off[i] + (size_t)w;
	}
}

/* Sender and receiver across several rekeys, in any slicing. */
TEST(rekey_sender_and_receiver)
{
	enum { N = 14, PER_KEY = 3 };
	uint8_t stream[N * FRAME_LEN(4)], k[FRAME_KEY_LEN], k2[FRAME_KEY_LEN];
	size_t off[N + 1];
	struct frame_enc *enc;

	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	CHECK(enc->rekey_frames == FRAME_REKEY_FRAMES);
	frame_enc_set_rekey_frames(enc, PER_KEY);
	write_numbered(enc, N, stream, off);
	CHECK_INT_EQ(frame_enc_epoch(enc), N / PER_KEY);
	CHECK_INT_EQ(enc->counter, N % PER_KEY);
	/* the encoder holds the fourth key of the chain, not the first */
	memcpy(k, key_a, sizeof(k));
	for (int i = 0; i < N / PER_KEY; i++) {
		next_key(k, k2);
		memcpy(k, k2, sizeof(k));
	}
	CHECK(memcmp(enc->key, k, FRAME_KEY_LEN) == 0);
	frame_enc_free(enc);

	for (size_t step = 0; step < 40; step += 7) {
		struct frame_dec *dec;
		struct got g = {0};
		int ok = 1;

		REQUIRE(frame_dec_new(key_a, &dec) == 0);
		/* the got struct holds 16 frames: feed the stream in one go */
		CHECK_INT_EQ(feed(dec, stream, off[N], step, &g), N);
		for (int i = 0; i < g.n; i++) {
			const struct frame *f = &g.f[i];
			ok &= f->type == FRAME_DATA && f->len == 4 && g.copy[i][3] == i;
			ok &= f->epoch == (uint64_t)(i / PER_KEY) &&
			      f->seq == (uint64_t)(i % PER_KEY);
			ok &= f->rekey == (i % PER_KEY == PER_KEY - 1);
		}
		CHECK(ok);
		CHECK_INT_EQ(frame_dec_epoch(dec), N / PER_KEY);
		CHECK(memcmp(dec->key, k, FRAME_KEY_LEN) == 0);
		got_free(&g);
		frame_dec_free(dec);
	}
}

/* frame_enc_rekey(): the next frame, of any type, ends the key. */
TEST(rekey_on_request)
{
	uint8_t buf[4 * 64];
	struct frame_enc *enc;
	struct frame_dec *dec;
	struct got g = {0};
	size_t len = 0;
	int n;

	REQUIRE(frame_enc_new(key_b, &enc) == 0);
	REQUIRE(frame_dec_new(key_b, &dec) == 0);
	n = frame_enc_write(enc, FRAME_DATA, (const uint8_t *)"x", 1, buf, sizeof(buf));
	len += (size_t)n;
	frame_enc_rekey(enc);
	CHECK_INT_EQ(frame_enc_epoch(enc), 0); /* nothing changes before a frame carries it */
	n = frame_enc_write_ping(enc, FRAME_PING, 7, buf + len, sizeof(buf) - len);
	len += (size_t)n;
	CHECK_INT_EQ(frame_enc_epoch(enc), 1);
	n = frame_enc_write(enc, FRAME_DATA, (const uint8_t *)"y", 1, buf + len, sizeof(buf) - len);
	len += (size_t)n;
	n = frame_enc_write_close(enc, 0, "bye", buf + len, sizeof(buf) - len);
	len += (size_t)n;
	CHECK_INT_EQ(frame_enc_epoch(enc), 1); /* once asked, once done */
	CHECK_INT_EQ(feed(dec, buf, len, 0, &g), 4);
	CHECK(!g.f[0].rekey && g.f[0].epoch == 0 && g.f[0].seq == 0);
	CHECK(g.f[1].type == FRAME_PING && g.f[1].ping == 7 && g.f[1].rekey && g.f[1].seq == 1);
	CHECK(g.f[2].type == FRAME_DATA && g.f[2].epoch == 1 && g.f[2].seq == 0 && !g.f[2].rekey);
	CHECK(g.f[3].type == FRAME_CLOSE && g.f[3].epoch == 1 && g.f[3].seq == 1);
	CHECK_INT_EQ(frame_dec_epoch(dec), 1);
	got_free(&g);
	frame_enc_free(enc);
	frame_dec_free(dec);
}

/* The wire of docs/CHANNEL.md §5 and §8: bit 7 of the type byte, the next
 * key from BLAKE2b; frames written by libsodium alone are read, and the
 * encoder writes the documented bytes. */
TEST(rekey_wire_and_vector)
{
	static const uint8_t k_i2r[32] = {0x85, 0x61, 0xef, 0x9f, 0x81, 0x18, 0x5a, 0x4d,
					  0x89, 0xe5, 0xcb, 0xe6, 0x56, 0xfc, 0x6d, 0xbb,
					  0xe7, 0x59, 0xe0, 0x33, 0x55, 0xdd, 0x90, 0x41,
					  0xb2, 0x67, 0x5a, 0x75, 0xee, 0x2a, 0xab, 0x9d};
	static const uint8_t k_next[32] = {0x06, 0x91, 0x88, 0x58, 0x12, 0x69, 0xb5, 0xd4,
					   0xe5, 0x77, 0xbe, 0x12, 0x63, 0xfd, 0x1d, 0x77,
					   0xc8, 0xf0, 0x88, 0x55, 0xf2, 0xff, 0xe6, 0xe2,
					   0x87, 0x86, 0x1a, 0x63, 0x4e, 0xad, 0x12, 0x47};
	/* DATA "tandem" ending key 0 (type byte 0x81), then DATA "tandem"
	 * under key 1, counter 0 */
	static const uint8_t v0[] = {0x00, 0x00, 0x00, 0x17, 0x80, 0x48, 0x41, 0xe9, 0x78,
				     0x7d, 0x90, 0xbf, 0x5e, 0x1a, 0x0b, 0x62, 0xd7, 0x48,
				     0x3f, 0x38, 0x33, 0xbb, 0xe8, 0x12, 0xfd, 0xc0, 0xf4};
	static const uint8_t v1[] = {0x00, 0x00, 0x00, 0x17, 0x18, 0x7f, 0xa1, 0x5d, 0x8b,
				     0xde, 0xe2, 0x67, 0x36, 0x1b, 0xdb, 0xab, 0x68, 0x46,
				     0xa0, 0x97, 0x63, 0xe6, 0x34, 0xd6, 0x90, 0x44, 0xd4};
	uint8_t k1[32], buf[128];
	struct frame_enc *enc;
	struct frame_dec *dec;
	struct got g = {0};
	size_t len;
	int n;

	next_key(k_i2r, k1);
	CHECK(memcmp(k1, k_next, 32) == 0);
	REQUIRE(frame_enc_new(k_i2r, &enc) == 0);
	frame_enc_rekey(enc);
	n = frame_enc_write(enc, FRAME_DATA, (const uint8_t *)"tandem", 6, buf, sizeof(buf));
	CHECK(n == sizeof(v0) && memcmp(buf, v0, sizeof(v0)) == 0);
	n = frame_enc_write(enc, FRAME_DATA, (const uint8_t *)"tandem", 6, buf, sizeof(buf));
	CHECK(n == sizeof(v1) && memcmp(buf, v1, sizeof(v1)) == 0);
	frame_enc_free(enc);

	/* an independent writer: libsodium, the documented bit and key chain */
	len = seal_raw(key_a, 0, FRAME_DATA, "a", 1, buf);
	len += seal_raw(key_a, 1, FRAME_DATA | 0x80, "b", 1, buf + len);
	next_key(key_a, k1);
	len += seal_raw(k1, 0, FRAME_PONG | 0x80, "12345678", 8, buf + len);
	next_key(k1, k1);
	len += seal_raw(k1, 0, FRAME_DATA, "c", 1, buf + len);
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	CHECK_INT_EQ(feed(dec, buf, len, 0, &g), 4);
	CHECK(g.f[1].rekey && g.f[1].type == FRAME_DATA && g.copy[1][0] == 'b');
	CHECK(g.f[2].rekey && g.f[2].type == FRAME_PONG && g.f[2].epoch == 1);
	CHECK(g.f[3].epoch == 2 && g.f[3].seq == 0 && g.copy[3][0] == 'c');
	got_free(&g);
	frame_dec_free(dec);
}

/* Around a switch: a frame of the old key, a replay, a dropped or
 * tampered rekey frame all fail, and nothing after them is handed out. */
TEST(rekey_boundary_attacks)
{
	enum { N = 6, PER_KEY = 3 };
	uint8_t stream[N * FRAME_LEN(4)], bad[2 * FRAME_LEN(4)];
	size_t off[N + 1], fl = FRAME_LEN(4);
	struct frame_enc *enc, *old;
	struct frame_dec *dec;
	struct got g = {0};
	int n;

	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	frame_enc_set_rekey_frames(enc, PER_KEY);
	write_numbered(enc, N, stream, off); /* frame 2 ends key 0 */
	frame_enc_free(enc);

	/* after the switch, a frame under the old key fails: at the counter
	 * the decoder expects (0) and at the one the old key would be at (3) */
	for (uint64_t ctr = 0; ctr <= 3; ctr += 3) {
		REQUIRE(frame_enc_new(key_a, &old) == 0);
		old->rekey_frames = 0;
		old->counter = ctr;
		n = frame_enc_write(old, FRAME_DATA, (const uint8_t *)"old!", 4, bad, sizeof(bad));
		REQUIRE(n == (int)fl);
		frame_enc_free(old);
		REQUIRE(frame_dec_new(key_a, &dec) == 0);
		memcpy(bad + fl, stream + off[3], fl); /* then the real frame 3 */
		CHECK_INT_EQ(feed(dec, stream, off[3], 0, &g), 3);
		CHECK_INT_EQ(feed(dec, bad, 2 * fl, 0, &g), -EBADMSG);
		CHECK_INT_EQ(g.n, 3);
		printf("# %s\n", frame_dec_reason(dec));
		got_free(&g);
		frame_dec_free(dec);
	}

	/* replaying any frame of key 0 after the switch fails */
	for (int i = 0; i < 3; i++) {
		REQUIRE(frame_dec_new(key_a, &dec) == 0);
		CHECK_INT_EQ(feed(dec, stream, off[3], 0, &g), 3);
		CHECK_INT_EQ(feed(dec, stream + off[i], fl, 0, &g), -EBADMSG);
		got_free(&g);
		frame_dec_free(dec);
	}

	/* dropping the rekey frame: the first frame of key 1 fails */
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	CHECK_INT_EQ(feed(dec, stream, off[2], 0, &g), 2);
	CHECK_INT_EQ(feed(dec, stream + off[3], off[N] - off[3], 0, &g), -EBADMSG);
	CHECK_INT_EQ(g.n, 2);
	got_free(&g);
	frame_dec_free(dec);

	/* tampering with any byte of the rekey frame fails, and so the
	 * receiver never switches on a forged mark */
	int ok = 1;
	for (size_t i = 0; i < fl; i++) {
		uint8_t t[FRAME_LEN(4)];
		memcpy(t, stream + off[2], fl);
		t[i] ^= i == 4 ? 0x80 : 0x01; /* byte 4 holds the encrypted type byte */
		REQUIRE(frame_dec_new(key_a, &dec) == 0);
		ok &= feed(dec, stream, off[2], 0, &g) == 2;
		int r = feed(dec, t, fl, 0, &g);
		/* a changed length byte may leave the frame incomplete (2) */
		ok &= r == -EBADMSG || r == -EMSGSIZE || (i < 4 && r == 2);
		ok &= frame_dec_epoch(dec) == 0 && g.n == 2;
		got_free(&g);
		frame_dec_free(dec);
	}
	CHECK(ok);

	/* a data frame that would have been the rekey frame, but unmarked
	 * (the mark cleared by someone with the key), leaves the receiver on
	 * key 0: key 1's frames fail */
	{
		uint8_t t[FRAME_LEN(4)];
		uint8_t p[4] = {0, 0, 0, 2};
		REQUIRE(frame_dec_new(key_a, &dec) == 0);
		(void)seal_raw(key_a, 2, FRAME_DATA, p, 4, t);
		CHECK_INT_EQ(feed(dec, stream, off[2], 0, &g), 2);
		CHECK_INT_EQ(feed(dec, t, fl, 0, &g), 3);
		CHECK_INT_EQ(feed(dec, stream + off[3], fl, 0, &g), -EBADMSG);
		got_free(&g);
		frame_dec_free(dec);
	}
}

TEST(peer_sends_malformed_plaintext)
{
	/* frames a buggy or hostile peer holding the key could make */
	struct {
		uint8_t type;
		size_t len;
	} cases[] = {{0, 0},
		     {5, 3},
		     {0xff, 0},
		     {FRAME_PING, 7},
		     {FRAME_PONG, 9},
		     {FRAME_CLOSE, 1},
		     {FRAME_CLOSE, 2 + FRAME_CLOSE_TEXT_MAX + 1}};
	uint8_t buf[600], nonce[12] = {0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t body = 1 + cases[i].len + 16;
		struct frame_dec *dec;
		struct got g = {0};

		memset(buf, 0, sizeof(buf));
		buf[2] = (uint8_t)(body >> 8);
		buf[3] = (uint8_t)body;
		buf[4] = cases[i].type;
		crypto_aead_chacha20poly1305_ietf_encrypt_detached(buf + 4, buf + 5 + cases[i].len,
								   NULL, buf + 4, 1 + cases[i].len,
								   buf, 4, NULL, nonce, key_a);
		REQUIRE(frame_dec_new(key_a, &dec) == 0);
		CHECK_INT_EQ(feed(dec, buf, 4 + body, 0, &g), -EBADMSG);
		CHECK_INT_EQ(g.n, 0);
		if (i == 1 || i == 3)
			printf("# %s\n", frame_dec_reason(dec));
		frame_dec_free(dec);
	}
}

TEST(stream_slicing)
{
	const size_t sizes[] = {0, 3, 100, 5000, 70000, 1};
	size_t total = 0, off[8] = {0};
	struct frame_enc *enc;
	uint8_t *stream;

	for (size_t i = 0; i < 6; i++)
		total += FRAME_LEN(sizes[i]);
	stream = malloc(total);
	REQUIRE(stream != NULL);
	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	randombytes_buf(big_in, 70000);
	for (size_t i = 0; i < 6; i++) {
		int n = frame_enc_write(enc, i == 5 ? FRAME_DATA : FRAME_DATA, big_in, sizes[i],
					stream + off[i], total - off[i]);
		REQUIRE(n > 0);
		off[i + 1] = off[i] + (size_t)n;
	}
	frame_enc_free(enc);

	const size_t steps[] = {1, 2, 3, 7, 16, 4095, 65536, 0};
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		struct frame_dec *dec;
		struct got g = {0};

		REQUIRE(frame_dec_new(key_a, &dec) == 0);
		CHECK_INT_EQ(feed(dec, stream, total, steps[s], &g), 6);
		for (int i = 0; i < g.n; i++) {
			CHECK_INT_EQ(g.f[i].len, sizes[i]);
			CHECK(memcmp(g.copy[i], big_in, sizes[i]) == 0);
		}
		CHECK_INT_EQ(frame_dec_pending(dec), 0);
		CHECK(dec->cap <= FRAME_MAX_BODY);
		got_free(&g);
		frame_dec_free(dec);
	}

	/* random slicing, deterministic */
	uint32_t x = 12345;
	for (int round = 0; round < 20; round++) {
		struct frame_dec *dec;
		struct got g = {0};
		size_t pos = 0;
		int r = 0;

		REQUIRE(frame_dec_new(key_a, &dec) == 0);
		while (pos < total && r >= 0) {
			x = x * 1103515245u + 12345u;
			size_t step = 1 + (x >> 8) % 9000;
			if (step > total - pos)
				step = total - pos;
			r = feed(dec, stream + pos, step, 0, &g);
			pos += step;
		}
		CHECK_INT_EQ(r, 6);
		got_free(&g);
		frame_dec_free(dec);
	}
	free(stream);
}

/* An idle connection gives the decoder's buffer back; a frame half read
 * keeps it, and frames decode as before either way. */
TEST(trim_releases_the_buffer_between_frames)
{
	size_t len = 70000, total = 2 * FRAME_LEN(len);
	uint8_t *stream = malloc(total);
	struct frame_enc *enc;
	struct frame_dec *dec;
	struct got g = {0};

	REQUIRE(stream != NULL);
	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	randombytes_buf(big_in, len);
	REQUIRE(frame_enc_write(enc, FRAME_DATA, big_in, len, stream, total) > 0);
	REQUIRE(frame_enc_write(enc, FRAME_DATA, big_in, len, stream + FRAME_LEN(len),
				total - FRAME_LEN(len)) > 0);
	frame_enc_free(enc);
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	CHECK(!frame_dec_trim(dec)); /* nothing to give back yet */
	/* half of the first frame: kept */
	CHECK_INT_EQ(feed(dec, stream, FRAME_LEN(len) / 2, 0, &g), 0);
	CHECK(dec->buf != NULL);
	CHECK(!frame_dec_trim(dec));
	CHECK(dec->buf != NULL);
	CHECK_INT_EQ(feed(dec, stream + FRAME_LEN(len) / 2, FRAME_LEN(len) - FRAME_LEN(len) / 2, 0,
			  &g), 1);
	/* between frames: given back */
	CHECK(frame_dec_trim(dec));
	CHECK(dec->buf == NULL && dec->cap == 0);
	/* the next frame, fed in pieces, still decodes */
	CHECK_INT_EQ(feed(dec, stream + FRAME_LEN(len), FRAME_LEN(len), 4096, &g), 2);
	for (int i = 0; i < g.n; i++)
		CHECK(g.f[i].len == len && memcmp(g.copy[i], big_in, len) == 0);
	CHECK(!frame_dec_trim(NULL));
	got_free(&g);
	frame_dec_free(dec);
	free(stream);
}

/* The rest of a body read straight into the decoder decodes as fed; a
 * tampered one fails the same; a wrong count is refused harmlessly. */
TEST(body_read_in_place)
{
	size_t len = 300000, flen = FRAME_LEN(len);
	uint8_t *stream = malloc(2 * flen);
	struct frame_enc *enc;
	struct frame_dec *dec;
	struct frame f;
	size_t used = 0, room = 0;

	REQUIRE(stream != NULL);
	REQUIRE(frame_enc_new(key_a, &enc) == 0);
	randombytes_buf(big_in, len);
	REQUIRE(frame_enc_write(enc, FRAME_DATA, big_in, len, stream, flen) > 0);
	REQUIRE(frame_enc_write(enc, FRAME_DATA, big_in, len, stream + flen, flen) > 0);
	frame_enc_free(enc);

	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	CHECK(frame_dec_body_room(dec, &room) == NULL); /* no header yet */
	/* the header and a little of the body through feed */
	CHECK_INT_EQ(frame_dec_feed(dec, stream, 1000, &used, &f), 0);
	CHECK_INT_EQ(used, 1000);
	uint8_t *at = frame_dec_body_room(dec, &room);
	REQUIRE(at != NULL);
	CHECK_INT_EQ(room, flen - 1000);
	CHECK_INT_EQ(frame_dec_body_add(dec, room + 1, &f), -EINVAL); /* too many */
	size_t pos = 1000;
	int r = 0;
	while (r == 0) {
		at = frame_dec_body_room(dec, &room);
		REQUIRE(at != NULL);
		size_t n = room > 65536 ? 65536 : room;
		memcpy(at, stream + pos, n);
		pos += n;
		r = frame_dec_body_add(dec, n, &f);
	}
	CHECK_INT_EQ(r, 1);
	CHECK(f.type == FRAME_DATA && f.len == len && memcmp(f.payload, big_in, len) == 0);
	CHECK(frame_dec_body_room(dec, &room) == NULL); /* between frames */

	/* the second frame: header only through feed, the whole body in place,
	 * one byte flipped */
	CHECK_INT_EQ(frame_dec_feed(dec, stream + flen, 4, &used, &f), 0);
	at = frame_dec_body_room(dec, &room);
	REQUIRE(at != NULL);
	CHECK_INT_EQ(room, flen - 4);
	memcpy(at, stream + flen + 4, room);
	at[room / 2] ^= 1;
	CHECK_INT_EQ(frame_dec_body_add(dec, room, &f), -EBADMSG);
	CHECK(frame_dec_body_room(dec, &room) == NULL);
	CHECK_INT_EQ(frame_dec_body_add(dec, 1, &f), -EBADMSG); /* final */
	frame_dec_free(dec);
	free(stream);
}

TEST(used_stops_at_frame_end)
{
	uint8_t buf[256];
	size_t off[4] = {0}, used = 0;
	struct frame_dec *dec;
	struct frame f;

	REQUIRE(encode3(buf, off) == 0);
	REQUIRE(frame_dec_new(key_a, &dec) == 0);
	CHECK_INT_EQ(frame_dec_feed(dec, buf, off[3], &used, &f), 1);
	CHECK_INT_EQ(used, off[1]);
	CHECK_INT_EQ(frame_dec_feed(dec, buf + off[1], off[3] - off[1], &used, &f), 1);
	CHECK_INT_EQ(used, off[2] - off[1]);
	CHECK(f.len == 3 && memcmp(f.payload, "fr1", 3) == 0);
	CHECK_INT_EQ(frame_dec_feed(dec, NULL, 0, &used, &f), 0);
	CHECK_INT_EQ(used, 0);
	frame_dec_free(dec);
}

int main(void)
{
	if (sodium_init() < 0)
		return 99;
	randombytes_buf(key_a, sizeof(key_a));
	randombytes_buf(key_b, sizeof(key_b));
	big_in = malloc(FRAME_MAX_LEN + 1);
	big_out = malloc(FRAME_MAX_LEN + 1);
	if (!big_in || !big_out)
		return 99;
	RUN(roundtrip_sizes);
	RUN(ping_pong_close);
	RUN(encoder_refuses);
	RUN(zero_copy_in_place);
	RUN(layout_matches_spec);
	RUN(test_vector);
	RUN(libcrypto_and_libsodium_agree);
	RUN(tamper_every_byte);
	RUN(replay_reorder_drop);
	RUN(wrong_key_or_direction);
	RUN(truncated_frame);
	RUN(oversized_length_refused_before_allocation);
	RUN(counter_exhaustion);
	RUN(rekey_sender_and_receiver);
	RUN(rekey_on_request);
	RUN(rekey_wire_and_vector);
	RUN(rekey_boundary_attacks);
	RUN(peer_sends_malformed_plaintext);
	RUN(stream_slicing);
	RUN(used_stops_at_frame_end);
	RUN(trim_releases_the_buffer_between_frames);
	RUN(body_read_in_place);
	free(big_in);
	free(big_out);
	return tap_done();
}
