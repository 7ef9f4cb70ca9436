/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DERIVE_H
#define TANDEM_DERIVE_H

#include <stdint.h>
#include <time.h>

#include "identity/fingerprint.h"

/*
 * Key derivations for the relay (docs/PROTOCOL.md, "Relay record").
 *
 * Everything a peer puts on the relay is derived from the fingerprint of the
 * record's owner and the current time bucket, so the relay sees unlinkable
 * tokens and opaque blobs, while anyone who knows the fingerprint can find
 * and read the record:
 *
 *   token        = BLAKE2b-256(key = fp, "tandem/v1/relay-token\0"  || u64be(bucket))
 *   record key   = BLAKE2b-256(key = fp, "tandem/v1/record-key\0"   || u64be(bucket))
 *   write secret = BLAKE2b-256(key = seed, "tandem/v1/write-secret\0" || token)
 *
 * The write secret needs the identity's secret seed: only the owner can
 * replace or delete its record. Buckets are RELAY_BUCKET_SECONDS long.
 */

#define RELAY_BUCKET_SECONDS 3600
#define DERIVE_KEY_LEN 32

/* The bucket number of unix time t with buckets of len seconds. */
uint64_t derive_bucket(time_t t, unsigned len);

void derive_relay_token(const struct fingerprint *fp, uint64_t bucket,
			uint8_t out[static DERIVE_KEY_LEN]);
void derive_record_key(const struct fingerprint *fp, uint64_t bucket,
		       uint8_t out[static DERIVE_KEY_LEN]);
void derive_write_secret(const uint8_t seed[static 32], const uint8_t token[static DERIVE_KEY_LEN],
			 uint8_t out[static DERIVE_KEY_LEN]);

#endif
