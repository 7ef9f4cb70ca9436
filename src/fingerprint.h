/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_FINGERPRINT_H
#define TANDEM_FINGERPRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/*
 * A fingerprint names a peer: the first 160 bits of
 * BLAKE2b("tandem/v1/fingerprint" || ed25519 public key).
 *
 * Shown to humans as 32 base32 characters for the 160 bits followed by a
 * 4-character (20-bit) checksum, in 9 groups of 4 joined by dashes:
 *   K7QF-2M4X-....-....-....-....-....-....-CCCC
 * The checksum catches typos before anything goes to the network. Parsing
 * accepts any case, with or without dashes and whitespace.
 */

#define FP_BYTES 20
#define FP_DATA_CHARS 32  /* 160 bits / 5 */
#define FP_CHECK_CHARS 4  /* 20 bits */
#define FP_CHARS (FP_DATA_CHARS + FP_CHECK_CHARS)
#define FP_TEXT_LEN (FP_CHARS + FP_CHARS / 4 - 1) /* with dashes, without NUL */

struct fingerprint {
	uint8_t b[FP_BYTES];
};

/* Fingerprint of an ed25519 public key. */
void fp_from_pubkey(const uint8_t pk[static 32], struct fingerprint *ret);

/* Formats fp as dashed groups into out (FP_TEXT_LEN + 1 bytes). */
void fp_format(const struct fingerprint *fp, char out[static FP_TEXT_LEN + 1]);

/*
 * Parses a fingerprint typed by a human. Returns 0 and fills *ret, or
 * -EINVAL and writes a sentence into err that names the problem (wrong
 * length, the bad character and its position, checksum mismatch).
 * *ret is untouched on failure.
 */
int fp_parse(const char *s, struct fingerprint *ret, struct err *err)
	__attribute__((warn_unused_result));

/* Constant-time equality. */
bool fp_equal(const struct fingerprint *a, const struct fingerprint *b);

#endif
