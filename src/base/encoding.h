/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ENCODING_H
#define TANDEM_ENCODING_H

#include <stddef.h>
#include <stdint.h>

/*
 * Text encodings used on the wire and for humans. Pure functions, no
 * allocation, safe on any input.
 */

/* Length of the unpadded base64url text for n bytes (without NUL). */
#define B64URL_LEN(n) ((((n) / 3) * 4) + (((n) % 3) ? ((n) % 3) + 1 : 0))

/* RFC 4648 base32 alphabet, upper case: A-Z 2-7. */
extern const char base32_alphabet[32];

/* Value of a base32 character (either case), or -1. */
int base32_value(char c);

/*
 * Encodes nbits bits of in (MSB first) into base32, nbits a multiple of 5.
 * out must hold nbits/5 + 1 bytes; it is NUL-terminated.
 */
void base32_encode_bits(const uint8_t *in, size_t nbits, char *out);

/*
 * Decodes nchars base32 characters into in-order bits. out must hold
 * (nchars*5 + 7)/8 bytes; trailing bits of the last byte are zero.
 * Returns 0, or -EINVAL on a character outside the alphabet.
 */
int base32_decode_bits(const char *in, size_t nchars, uint8_t *out);

/*
 * base64url without padding. Encode: out must hold B64URL_LEN(n)+1 bytes.
 * Returns the text length.
 */
size_t b64url_encode(const uint8_t *in, size_t n, char *out, size_t outlen);

/*
 * Decodes exactly len characters of base64url (no padding, no whitespace).
 * Returns the number of bytes written to out (at most outlen), or -EINVAL
 * for bad characters or padding, -EMSGSIZE if it does not fit.
 */
int b64url_decode(const char *in, size_t len, uint8_t *out, size_t outlen)
	__attribute__((warn_unused_result));

#endif
