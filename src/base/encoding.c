/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "base/encoding.h"

const char base32_alphabet[32] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int base32_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

void base32_encode_bits(const uint8_t *in, size_t nbits, char *out)
{
	size_t o = 0;

	for (size_t bit = 0; bit + 5 <= nbits; bit += 5) {
		unsigned v = 0;
		for (size_t k = 0; k < 5; k++) {
			size_t b = bit + k;
			v = (v << 1) | ((in[b / 8] >> (7 - b % 8)) & 1u);
		}
		out[o++] = base32_alphabet[v];
	}
	out[o] = '\0';
}

int base32_decode_bits(const char *in, size_t nchars, uint8_t *out)
{
	size_t nbytes = (nchars * 5 + 7) / 8;

	memset(out, 0, nbytes);
	for (size_t i = 0; i < nchars; i++) {
		int v = base32_value(in[i]);
		if (v < 0)
			return -EINVAL;
		for (size_t k = 0; k < 5; k++) {
			size_t b = i * 5 + k;
			if ((v >> (4 - k)) & 1)
				out[b / 8] |= (uint8_t)(0x80u >> (b % 8));
		}
	}
	return 0;
}

size_t b64url_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	if (outlen < B64URL_LEN(n) + 1) {
		if (outlen)
			out[0] = '\0';
		return 0;
	}
	sodium_bin2base64(out, outlen, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return strlen(out);
}

int b64url_decode(const char *in, size_t len, uint8_t *out, size_t outlen)
{
	size_t bin_len = 0;
	const char *end = NULL;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return -EINVAL;
	}
	if (len % 4 == 1)
		return -EINVAL;
	if ((len / 4) * 3 + (len % 4 ? len % 4 - 1 : 0) > outlen)
		return -EMSGSIZE;
	if (sodium_base642bin(out, outlen, in, len, NULL, &bin_len, &end,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return -EINVAL;
	if (end != in + len)
		return -EINVAL;
	return (int)bin_len;
}
