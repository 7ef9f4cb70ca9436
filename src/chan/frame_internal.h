/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_CHAN_FRAME_INTERNAL_H
#define TANDEM_CHAN_FRAME_INTERNAL_H

/*
 * The inside of the frame encoder and decoder, for frame.c and the unit
 * tests only (they move counters to the end of their range and look at
 * the decoder's buffer). Nothing else includes this.
 */

#include <stdbool.h>

#include <openssl/evp.h>

#include "chan/frame.h"

#define FRAME_REASON_LEN 160

/*
 * The cipher is libcrypto's ChaCha20-Poly1305 (RFC 8439, the same bytes as
 * libsodium's crypto_aead_chacha20poly1305_ietf, about 3x faster here with
 * its AVX-512 code); ctx holds the key, set once, and each frame sets only
 * its nonce. EVP_CIPHER_CTX_free wipes it.
 */
struct frame_enc {
	EVP_CIPHER_CTX *ctx; /* NULL once a rekey failed */
	uint8_t *key;	     /* FRAME_KEY_LEN bytes of sodium_malloc: the next key's source */
	uint64_t counter;    /* of the next frame; UINT64_MAX is never used */
	uint64_t epoch;
	uint64_t rekey_frames; /* frames per key */
	bool rekey_wanted;     /* the next frame ends the key */
};

/* buf is malloc'd, wiped before it is freed. */
struct frame_dec {
	EVP_CIPHER_CTX *ctx; /* NULL once the decoder failed */
	uint8_t *key;	     /* as in frame_enc; NULL once the decoder failed */
	uint64_t counter;    /* expected for the next frame */
	uint64_t epoch;
	uint8_t hdr[FRAME_HEADER_LEN];
	size_t hdr_have;
	size_t body_len; /* of the current frame, once hdr is complete */
	size_t have;	 /* body bytes in buf */
	uint8_t *buf;
	size_t cap;  /* allocated size of buf, at most FRAME_MAX_BODY */
	bool closed; /* a CLOSE was received */
	int err;
	char reason[FRAME_REASON_LEN];
};

#endif
