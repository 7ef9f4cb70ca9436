/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Design note. The nonce of frame n in one direction is n itself (a 64-bit
 * counter, 4 zero bytes in front to make the 96-bit IETF nonce), and each
 * direction has its own key, so no (key, nonce) pair is ever used twice:
 * the encoder refuses to go past 2^64 - 2. The decoder never receives the
 * counter; it expects exactly the next value, so any replay, reordering or
 * loss is an authentication failure, and after the first failure the
 * decoder is dead (an attacker gets one forgery attempt per connection).
 * The length field is authenticated as associated data and capped before
 * allocation.
 *
 * Rekeying is a one-way ratchet, for forward secrecy inside a long
 * connection, not for the nonce space (2^64 frames cannot be reached). The
 * sender sets FRAME_REKEY in the type byte of the last frame under a key;
 * the bit is inside the AEAD, so nobody else can set, clear or move it.
 * After sealing (sender) or opening (receiver) that frame, each side hashes
 * the key into the next one, overwrites it, rekeys the cipher context and
 * restarts the counter at 0: the pair (key, nonce) stays unique, and a
 * frame of the old key arriving after the switch fails authentication like
 * any other forgery. The raw key is kept (in sodium_malloc memory, locked
 * and guarded) only to derive the next one.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "chan/frame_internal.h"

#define NONCE_LEN 12 /* the IETF construction's nonce */
#define BUF_MIN 4096
#define TYPE_MASK 0x7f

static const char rekey_label[] = "tandem/v1/chan/rekey"; /* hashed with its NUL */

static void nonce_make(uint64_t counter, uint8_t nonce[static NONCE_LEN])
{
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (56 - 8 * i));
}

/* A copy of src in sodium_malloc memory, or NULL. */
static uint8_t *key_dup(const uint8_t src[static FRAME_KEY_LEN])
{
	uint8_t *k = sodium_malloc(FRAME_KEY_LEN);

	if (k)
		memcpy(k, src, FRAME_KEY_LEN);
	return k;
}

/* Replaces key by the next one in place and installs it in ctx (encrypt 1,
 * decrypt 0). The old key is gone either way. Returns 0 or -EIO. */
static int key_ratchet(uint8_t key[static FRAME_KEY_LEN], EVP_CIPHER_CTX *ctx, int encrypt)
{
	uint8_t next[FRAME_KEY_LEN];
	int r = 0;

	if (crypto_generichash(next, sizeof(next), (const uint8_t *)rekey_label,
			       sizeof(rekey_label), key, FRAME_KEY_LEN) != 0)
		r = -EIO;
	memcpy(key, next, FRAME_KEY_LEN);
	sodium_memzero(next, sizeof(next));
	if (r == 0 && EVP_CipherInit_ex(ctx, NULL, NULL, key, NULL, encrypt) != 1)
		r = -EIO;
	return r;
}

static const char *type_name(unsigned type)
{
	switch (type) {
	case FRAME_DATA:
		return "DATA";
	case FRAME_PING:
		return "PING";
	case FRAME_PONG:
		return "PONG";
	case FRAME_CLOSE:
		return "CLOSE";
	}
	return "unknown";
}

/* Is len a valid payload length for type? -EINVAL (bad shape or type), -EMSGSIZE. */
static int payload_check(unsigned type, size_t len)
{
	switch (type) {
	case FRAME_DATA:
		return len <= FRAME_MAX_PAYLOAD ? 0 : -EMSGSIZE;
	case FRAME_PING:
	case FRAME_PONG:
		return len == FRAME_PING_LEN ? 0 : -EINVAL;
	case FRAME_CLOSE:
		return len >= 2 && len <= 2 + FRAME_CLOSE_TEXT_MAX ? 0 : -EINVAL;
	}
	return -EINVAL;
}

/* A ChaCha20-Poly1305 context holding key, for encrypt (1) or decrypt (0). */
static EVP_CIPHER_CTX *cipher_new(const uint8_t key[static FRAME_KEY_LEN], int encrypt)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (ctx && EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, NULL, encrypt) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

int frame_enc_new(const uint8_t key[static FRAME_KEY_LEN], struct frame_enc **ret)
{
	struct frame_enc *enc = calloc(1, sizeof(*enc));

	if (!enc)
		return -ENOMEM;
	enc->ctx = cipher_new(key, 1);
	enc->key = key_dup(key);
	if (!enc->ctx || !enc->key) {
		frame_enc_free(enc);
		return -ENOMEM;
	}
	enc->rekey_frames = FRAME_REKEY_FRAMES;
	*ret = enc;
	return 0;
}

void frame_enc_free(struct frame_enc *enc)
{
	if (enc) {
		EVP_CIPHER_CTX_free(enc->ctx); /* wipes the key */
		sodium_free(enc->key);	       /* wipes it too */
		free(enc);
	}
}

void frame_enc_set_rekey_frames(struct frame_enc *enc, uint64_t frames)
{
	enc->rekey_frames = frames ? frames : 1;
}

void frame_enc_rekey(struct frame_enc *enc)
{
	enc->rekey_wanted = true;
}

uint64_t frame_enc_epoch(const struct frame_enc *enc)
{
	return enc->epoch;
}

uint64_t frame_dec_epoch(const struct frame_dec *dec)
{
	return dec->epoch;
}

/* Seals len bytes at buf in place, with aad, under counter; tag goes to tag. */
static int seal(EVP_CIPHER_CTX *ctx, uint64_t counter, const uint8_t *aad, size_t aad_len,
		uint8_t *buf, size_t len, uint8_t tag[static FRAME_TAG_LEN])
{
	uint8_t nonce[NONCE_LEN];
	int n;

	nonce_make(counter, nonce);
	if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1 ||
	    EVP_EncryptUpdate(ctx, buf, &n, buf, (int)len) != 1 || (size_t)n != len ||
	    EVP_EncryptFinal_ex(ctx, buf + len, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, FRAME_TAG_LEN, tag) != 1)
		return -EIO;
	return 0;
}

/* Opens len bytes at src into dst (which may be src), or -EBADMSG. */
static int open_box(EVP_CIPHER_CTX *ctx, uint64_t counter, const uint8_t *aad, size_t aad_len,
		    const uint8_t *src, size_t len, const uint8_t *tag, uint8_t *dst)
{
	uint8_t nonce[NONCE_LEN];
	int n;

	nonce_make(counter, nonce);
	if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, FRAME_TAG_LEN, (void *)tag) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1 ||
	    EVP_DecryptUpdate(ctx, dst, &n, src, (int)len) != 1 || (size_t)n != len ||
	    EVP_DecryptFinal_ex(ctx, dst + len, &n) != 1)
		return -EBADMSG;
	return 0;
}

int frame_enc_write(struct frame_enc *enc, enum frame_type type, const uint8_t *payload, size_t len,
		    uint8_t *out, size_t outlen)
{
	size_t body;
	bool last;
	int r;

	r = payload_check(type, len);
	if (r < 0)
		return r;
	if (len && !payload)
		return -EINVAL;
	if (!enc->ctx)
		return -EIO;
	if (enc->counter == UINT64_MAX)
		return -EOVERFLOW;
	if (!out || outlen < FRAME_LEN(len))
		return -EMSGSIZE;
	body = 1 + len + FRAME_TAG_LEN;
	if (len)
		memmove(out + FRAME_PAYLOAD_OFFSET, payload, len);
	out[0] = (uint8_t)(body >> 24);
	out[1] = (uint8_t)(body >> 16);
	out[2] = (uint8_t)(body >> 8);
	out[3] = (uint8_t)body;
	/* rekey_frames 0 (set only by unit tests) never rekeys on count */
	last = enc->rekey_wanted || (enc->rekey_frames && enc->counter >= enc->rekey_frames - 1);
	out[FRAME_HEADER_LEN] = (uint8_t)(type | (last ? FRAME_REKEY : 0));
	r = seal(enc->ctx, enc->counter, out, FRAME_HEADER_LEN, out + FRAME_HEADER_LEN, 1 + len,
		 out + FRAME_PAYLOAD_OFFSET + len);
	if (r < 0)
		return r;
	if (!last) {
		enc->counter++;
		return (int)FRAME_LEN(len);
	}
	if (key_ratchet(enc->key, enc->ctx, 1) < 0) {
		EVP_CIPHER_CTX_free(enc->ctx); /* never seal again under a key we left */
		enc->ctx = NULL;
		return -EIO;
	}
	enc->counter = 0;
	enc->epoch++;
	enc->rekey_wanted = false;
	return (int)FRAME_LEN(len);
}

int frame_enc_write_ping(struct frame_enc *enc, enum frame_type type, uint64_t value, uint8_t *out,
			 size_t outlen)
{
	uint8_t p[FRAME_PING_LEN];

	if (type != FRAME_PING && type != FRAME_PONG)
		return -EINVAL;
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(value >> (56 - 8 * i));
	return frame_enc_write(enc, type, p, sizeof(p), out, outlen);
}

int frame_enc_write_close(struct frame_enc *enc, uint16_t code, const char *text, uint8_t *out,
			  size_t outlen)
{
	uint8_t p[2 + FRAME_CLOSE_TEXT_MAX];
	size_t n = text ? strnlen(text, FRAME_CLOSE_TEXT_MAX + 1) : 0;

	if (n > FRAME_CLOSE_TEXT_MAX)
		return -EINVAL;
	p[0] = (uint8_t)(code >> 8);
	p[1] = (uint8_t)code;
	if (n)
		memcpy(p + 2, text, n);
	return frame_enc_write(enc, FRAME_CLOSE, p, 2 + n, out, outlen);
}

int frame_dec_new(const uint8_t key[static FRAME_KEY_LEN], struct frame_dec **ret)
{
	struct frame_dec *dec;

	dec = calloc(1, sizeof(*dec));
	if (!dec)
		return -ENOMEM;
	dec->ctx = cipher_new(key, 0);
	dec->key = key_dup(key);
	if (!dec->ctx || !dec->key) {
		frame_dec_free(dec);
		return -ENOMEM;
	}
	*ret = dec;
	return 0;
}

static void buf_release(struct frame_dec *dec)
{
	if (dec->buf) {
		sodium_memzero(dec->buf, dec->cap);
		free(dec->buf);
	}
	dec->buf = NULL;
	dec->cap = 0;
}

bool frame_dec_trim(struct frame_dec *dec)
{
	if (!dec || dec->hdr_have != 0 || dec->have != 0 || !dec->buf)
		return false;
	buf_release(dec);
	return true;
}

void frame_dec_free(struct frame_dec *dec)
{
	if (!dec)
		return;
	buf_release(dec);
	EVP_CIPHER_CTX_free(dec->ctx); /* wipes the key */
	sodium_free(dec->key);
	free(dec);
}

size_t frame_dec_pending(const struct frame_dec *dec)
{
	return dec->hdr_have + dec->have;
}

const char *frame_dec_reason(const struct frame_dec *dec)
{
	return dec->reason;
}

__attribute__((format(printf, 3, 4))) static int dec_fail(struct frame_dec *dec, int err,
							  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dec->reason, sizeof(dec->reason), fmt, ap);
	va_end(ap);
	dec->err = err;
	buf_release(dec);
	EVP_CIPHER_CTX_free(dec->ctx); /* the key goes at once */
	dec->ctx = NULL;
	sodium_free(dec->key);
	dec->key = NULL;
	return err;
}

/* The 4 header bytes are in: check the length, then make room for the body. */
static int header_accept(struct frame_dec *dec)
{
	size_t len, cap;
	uint8_t *nb;

	len = (size_t)dec->hdr[0] << 24 | (size_t)dec->hdr[1] << 16 | (size_t)dec->hdr[2] << 8 |
	      dec->hdr[3];
	if (len > FRAME_MAX_BODY)
		return dec_fail(dec, -EMSGSIZE,
				"the peer announced a frame of %zu bytes, the limit is %zu", len,
				(size_t)FRAME_MAX_BODY);
	if (len < FRAME_MIN_BODY)
		return dec_fail(dec, -EBADMSG,
				"the peer announced a frame of %zu bytes, the minimum is %u", len,
				FRAME_MIN_BODY);
	if (dec->closed)
		return dec_fail(dec, -EBADMSG, "the peer sent a frame after CLOSE");
	if (dec->counter == UINT64_MAX)
		return dec_fail(dec, -EOVERFLOW, "the receive frame counter is exhausted");
	if (len > dec->cap) {
		cap = dec->cap * 2;
		if (cap < BUF_MIN)
			cap = BUF_MIN;
		if (cap < len)
			cap = len;
		if (cap > FRAME_MAX_BODY)
			cap = FRAME_MAX_BODY;
		nb = malloc(cap);
		if (!nb)
			return dec_fail(dec, -ENOMEM, "out of memory for a %zu-byte frame", len);
		buf_release(dec);
		dec->buf = nb;
		dec->cap = cap;
	}
	dec->body_len = len;
	dec->have = 0;
	return 0;
}

/* Authenticates and decrypts the body at src (dec->buf or the caller's
 * input) into dec->buf, then checks the plaintext's shape. */
static int body_open(struct frame_dec *dec, const uint8_t *src, struct frame *ret)
{
	size_t clen = dec->body_len - FRAME_TAG_LEN, plen;
	uint64_t seq = dec->counter, epoch = dec->epoch;
	unsigned type;
	bool last;
	struct frame f;

	if (open_box(dec->ctx, seq, dec->hdr, FRAME_HEADER_LEN, src, clen, src + clen, dec->buf) <
	    0)
		return dec_fail(dec, -EBADMSG,
				"frame %llu failed authentication (tampered, replayed, "
				"reordered or lost data, or the wrong key; key %llu)",
				(unsigned long long)seq, (unsigned long long)epoch);
	dec->counter++;
	dec->hdr_have = 0;
	dec->have = 0;

	type = dec->buf[0] & TYPE_MASK;
	last = dec->buf[0] & FRAME_REKEY;
	plen = clen - 1;
	if (payload_check(type, plen) < 0) {
		if (type < FRAME_DATA || type > FRAME_CLOSE)
			return dec_fail(dec, -EBADMSG, "frame %llu has unknown type %u",
					(unsigned long long)seq, type);
		return dec_fail(dec, -EBADMSG, "frame %llu: %s with a malformed %zu-byte payload",
				(unsigned long long)seq, type_name(type), plen);
	}
	if (last) {
		if (key_ratchet(dec->key, dec->ctx, 0) < 0)
			return dec_fail(dec, -EIO, "cannot install the peer's next key");
		dec->counter = 0;
		dec->epoch++;
	}
	memset(&f, 0, sizeof(f));
	f.type = (enum frame_type)type;
	f.seq = seq;
	f.epoch = epoch;
	f.rekey = last;
	f.payload = dec->buf + 1;
	f.len = plen;
	if (type == FRAME_PING || type == FRAME_PONG) {
		for (int i = 0; i < 8; i++)
			f.ping = f.ping << 8 | f.payload[i];
	} else if (type == FRAME_CLOSE) {
		f.close_code = (uint16_t)(f.payload[0] << 8 | f.payload[1]);
		f.payload += 2;
		f.len -= 2;
		dec->closed = true;
	}
	*ret = f;
	return 1;
}

uint8_t *frame_dec_body_room(struct frame_dec *dec, size_t *ret_len)
{
	if (dec->err || dec->hdr_have < FRAME_HEADER_LEN || !dec->buf ||
	    dec->have >= dec->body_len)
		return NULL;
	*ret_len = dec->body_len - dec->have;
	return dec->buf + dec->have;
}

int frame_dec_body_add(struct frame_dec *dec, size_t n, struct frame *ret_frame)
{
	if (dec->err)
		return dec->err;
	if (dec->hdr_have < FRAME_HEADER_LEN || !dec->buf || n == 0 ||
	    n > dec->body_len - dec->have)
		return -EINVAL; /* a caller's bug: the decoder stays usable */
	dec->have += n;
	if (dec->have < dec->body_len)
		return 0;
	return body_open(dec, dec->buf, ret_frame);
}

int frame_dec_feed(struct frame_dec *dec, const uint8_t *data, size_t len, size_t *ret_used,
		   struct frame *ret_frame)
{
	const uint8_t *src;
	size_t used = 0, n;
	int r;

	if (dec->err)
		return dec->err;
	if (!data)
		len = 0;
	while (dec->hdr_have < FRAME_HEADER_LEN) {
		if (used == len) {
			*ret_used = used;
			return 0;
		}
		dec->hdr[dec->hdr_have++] = data[used++];
		if (dec->hdr_have == FRAME_HEADER_LEN) {
			r = header_accept(dec);
			if (r < 0)
				return r;
		}
	}
	n = dec->body_len - dec->have;
	if (n > len - used)
		n = len - used;
	if (dec->have == 0 && n == dec->body_len) {
		src = data + used; /* the whole body is in the input: no copy */
	} else {
		if (n)
			memcpy(dec->buf + dec->have, data + used, n);
		dec->have += n;
		if (dec->have < dec->body_len) {
			*ret_used = used + n;
			return 0;
		}
		src = dec->buf;
	}
	r = body_open(dec, src, ret_frame);
	if (r < 0)
		return r;
	*ret_used = used + n;
	return r;
}
