/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzzes the record decoder. Encrypted blobs from strangers are mostly
 * stopped by the AEAD tag, so besides feeding raw input as a blob, the
 * harness seals the input with the right key (as an attacker who knows
 * the fingerprint can) to reach the plaintext parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "identity/derive.h"
#include "identity/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fingerprint fp;
	static int ready;
	struct peer_record rec;
	uint8_t blob[RECORD_BLOB_MAX + 64];
	uint8_t key[32], aad[33];
	unsigned long long clen;
	const uint64_t bucket = 42;

	if (!ready) {
		if (sodium_init() < 0)
			abort();
		memset(fp.b, 0x5a, sizeof(fp.b));
		ready = 1;
	}
	int r = record_open(&fp, bucket, data, size, &rec);

	(void)r;

	/* The same bytes as a plaintext, properly sealed. */
	if (size > RECORD_PLAIN_MAX + 8)
		return 0;
	blob[0] = RECORD_VERSION;
	memset(blob + 1, 0, 24);
	derive_record_key(&fp, bucket, key);
	aad[0] = RECORD_VERSION;
	derive_relay_token(&fp, bucket, aad + 1);
	crypto_aead_xchacha20poly1305_ietf_encrypt(blob + 25, &clen, data, size, aad, sizeof(aad),
						   NULL, blob + 1, key);
	r = record_open(&fp, bucket, blob, 25 + clen, &rec);
	(void)r;
	return 0;
}
