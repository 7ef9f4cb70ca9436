/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzzes the frame stream decoder (fixed key 32 x 0x42). Input:
 *
 *   byte 0, bit 7 clear: the rest is a raw byte stream from the peer;
 *   byte 0, bit 7 set:   the rest is a list of records
 *                        type(1) length(2, big-endian) payload(length),
 *                        each sealed as frame n exactly as docs/CHANNEL.md
 *                        says (any type byte, any length), so the fuzzer
 *                        reaches the plaintext checks behind the tag; a
 *                        type byte with bit 7 set ends its key, and the
 *                        next record is sealed under the next key at
 *                        counter 0 (the model's own BLAKE2b ratchet);
 *   byte 0, bits 0-6:    the slice size the stream is fed in (0: at once).
 *
 * In the second mode the decoder's output is checked against an
 * independent model: the valid records come out unchanged, in order, up to
 * the first invalid one or the first CLOSE, and nothing after.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chan/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KEY_BYTE 0x42
#define MAX_RECORDS 64

struct rec {
	uint8_t type;
	const uint8_t *p;
	size_t len;
};

static uint8_t key[FRAME_KEY_LEN];

static void check(int ok)
{
	if (!ok)
		abort();
}

static int model_valid(const struct rec *r)
{
	switch (r->type & 0x7f) {
	case FRAME_DATA:
		return r->len <= FRAME_MAX_PAYLOAD;
	case FRAME_PING:
	case FRAME_PONG:
		return r->len == FRAME_PING_LEN;
	case FRAME_CLOSE:
		return r->len >= 2 && r->len <= 2 + FRAME_CLOSE_TEXT_MAX;
	}
	return 0;
}

static size_t seal(const uint8_t *k, uint64_t counter, const struct rec *r, uint8_t *out)
{
	uint8_t nonce[12] = {0};
	size_t body = 1 + r->len + FRAME_TAG_LEN;

	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (56 - 8 * i));
	out[0] = (uint8_t)(body >> 24);
	out[1] = (uint8_t)(body >> 16);
	out[2] = (uint8_t)(body >> 8);
	out[3] = (uint8_t)body;
	out[4] = r->type;
	if (r->len)
		memcpy(out + 5, r->p, r->len);
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(out + 4, out + 5 + r->len, NULL, out + 4,
							   1 + r->len, out, 4, NULL, nonce, k);
	return 4 + body;
}

/* Feeds stream in slices of step; calls back on each frame. Returns the
 * decoder's final result (< 0 error, else 0). */
static int drive(const uint8_t *stream, size_t len, size_t step, const struct rec *recs,
		 size_t nrecs, size_t *ret_frames)
{
	struct frame_dec *dec;
	size_t off = 0, frames = 0;
	int r = 0;

	if (frame_dec_new(key, &dec) < 0)
		abort();
	while (off < len && r >= 0) {
		size_t chunk = step && len - off > step ? step : len - off, pos = 0;

		while (pos < chunk) {
			struct frame f;
			size_t used = 0;

			r = frame_dec_feed(dec, stream + off + pos, chunk - pos, &used, &f);
			if (r < 0)
				break;
			check(used <= chunk - pos);
			pos += used;
			if (r == 0) {
				check(pos == chunk);
				continue;
			}
			check(f.type >= FRAME_DATA && f.type <= FRAME_CLOSE);
			check(f.len <= FRAME_MAX_PAYLOAD);
			if (recs) {
				const struct rec *e;

				check(frames < nrecs);
				e = &recs[frames];
				check(model_valid(e) && f.type == (e->type & 0x7f));
				check(f.rekey == !!(e->type & 0x80));
				if (f.type == FRAME_CLOSE) {
					check(f.len == e->len - 2);
					check(f.close_code == (e->p[0] << 8 | e->p[1]));
					check(!f.len || memcmp(f.payload, e->p + 2, f.len) == 0);
				} else {
					check(f.len == e->len);
					check(!f.len || memcmp(f.payload, e->p, f.len) == 0);
				}
			}
			frames++;
		}
		off += chunk;
	}
	check(frame_dec_pending(dec) <= FRAME_HEADER_LEN + FRAME_MAX_BODY);
	frame_dec_free(dec);
	*ret_frames = frames;
	return r < 0 ? r : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct rec recs[MAX_RECORDS];
	size_t nrecs = 0, off, frames, expect = 0, slen = 0;
	uint8_t *stream;
	int r;

	if (!ready) {
		if (sodium_init() < 0)
			abort();
		memset(key, KEY_BYTE, sizeof(key));
		ready = 1;
	}
	if (size < 1)
		return 0;
	size_t step = data[0] & 0x7f;

	if (!(data[0] & 0x80)) {
		(void)drive(data + 1, size - 1, step, NULL, 0, &frames);
		return 0;
	}

	off = 1;
	while (size - off >= 3 && nrecs < MAX_RECORDS) {
		size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
		if (len > size - off - 3)
			len = size - off - 3;
		recs[nrecs].type = data[off];
		recs[nrecs].p = data + off + 3;
		recs[nrecs].len = len;
		nrecs++;
		off += 3 + len;
	}
	stream = malloc(size + nrecs * FRAME_OVERHEAD + 1);
	if (!stream)
		return 0;
	{
		static const char label[] = "tandem/v1/chan/rekey";
		uint8_t k[FRAME_KEY_LEN];
		uint64_t ctr = 0;

		memcpy(k, key, sizeof(k));
		for (size_t i = 0; i < nrecs; i++) {
			slen += seal(k, ctr++, &recs[i], stream + slen);
			if (recs[i].type & 0x80) {
				uint8_t next[FRAME_KEY_LEN];

				crypto_generichash(next, sizeof(next), (const uint8_t *)label,
						   sizeof(label), k, sizeof(k));
				memcpy(k, next, sizeof(k));
				ctr = 0;
			}
		}
	}

	/* the model: valid records up to the first invalid one or CLOSE */
	while (expect < nrecs && model_valid(&recs[expect])) {
		expect++;
		if (recs[expect - 1].type == FRAME_CLOSE)
			break;
	}
	r = drive(stream, slen, step, recs, nrecs, &frames);
	check(frames == expect);
	check((r < 0) == (expect < nrecs));
	free(stream);
	return 0;
}
