/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include <sodium.h>

#include "identity/derive.h"

uint64_t derive_bucket(time_t t, unsigned len)
{
	if (t < 0)
		t = 0;
	if (len == 0)
		len = RELAY_BUCKET_SECONDS;
	return (uint64_t)t / len;
}

static void put_u64be(uint8_t out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* BLAKE2b-256 keyed with key, over label (with its NUL) || data. */
static void kdf(const uint8_t *key, size_t keylen, const char *label, const uint8_t *data,
		size_t datalen, uint8_t out[static DERIVE_KEY_LEN])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, key, keylen, DERIVE_KEY_LEN);
	crypto_generichash_update(&st, (const uint8_t *)label, strlen(label) + 1);
	crypto_generichash_update(&st, data, datalen);
	crypto_generichash_final(&st, out, DERIVE_KEY_LEN);
	sodium_memzero(&st, sizeof(st));
}

void derive_relay_token(const struct fingerprint *fp, uint64_t bucket,
			uint8_t out[static DERIVE_KEY_LEN])
{
	uint8_t b[8];

	put_u64be(b, bucket);
	kdf(fp->b, FP_BYTES, "tandem/v1/relay-token", b, sizeof(b), out);
}

void derive_record_key(const struct fingerprint *fp, uint64_t bucket,
		       uint8_t out[static DERIVE_KEY_LEN])
{
	uint8_t b[8];

	put_u64be(b, bucket);
	kdf(fp->b, FP_BYTES, "tandem/v1/record-key", b, sizeof(b), out);
}

void derive_write_secret(const uint8_t seed[static 32], const uint8_t token[static DERIVE_KEY_LEN],
			 uint8_t out[static DERIVE_KEY_LEN])
{
	kdf(seed, 32, "tandem/v1/write-secret", token, DERIVE_KEY_LEN, out);
}
