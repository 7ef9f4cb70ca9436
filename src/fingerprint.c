/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "base/err.h"
#include "encoding.h"
#include "fingerprint.h"

static const char fp_label[] = "tandem/v1/fingerprint";
static const char fp_check_label[] = "tandem/v1/fingerprint-check";

void fp_from_pubkey(const uint8_t pk[static 32], struct fingerprint *ret)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, FP_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)fp_label, sizeof(fp_label) - 1);
	crypto_generichash_update(&st, pk, 32);
	crypto_generichash_final(&st, ret->b, FP_BYTES);
}

/* 20-bit checksum over the fingerprint bytes, as 3 bytes (last 4 bits zero). */
static void fp_checksum(const uint8_t b[static FP_BYTES], uint8_t out[static 3])
{
	crypto_generichash_state st;
	uint8_t h[16];

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const uint8_t *)fp_check_label,
				  sizeof(fp_check_label) - 1);
	crypto_generichash_update(&st, b, FP_BYTES);
	crypto_generichash_final(&st, h, sizeof(h));
	out[0] = h[0];
	out[1] = h[1];
	out[2] = h[2] & 0xf0;
}

void fp_format(const struct fingerprint *fp, char out[static FP_TEXT_LEN + 1])
{
	char raw[FP_CHARS + 1];
	uint8_t check[3];
	size_t o = 0;

	base32_encode_bits(fp->b, FP_BYTES * 8, raw);
	fp_checksum(fp->b, check);
	base32_encode_bits(check, FP_CHECK_CHARS * 5, raw + FP_DATA_CHARS);
	for (size_t i = 0; i < FP_CHARS; i++) {
		if (i && i % 4 == 0)
			out[o++] = '-';
		out[o++] = raw[i];
	}
	out[o] = '\0';
}

static const char *fp_char_hint(char c)
{
	switch (c) {
	case '0':
		return " (the digit 0 is not used; did you mean the letter O?)";
	case '1':
		return " (the digit 1 is not used; did you mean the letter I or L?)";
	case '8':
		return " (the digit 8 is not used; did you mean the letter B?)";
	case '9':
		return " (the digit 9 is not used)";
	default:
		return "";
	}
}

int fp_parse(const char *s, struct fingerprint *ret, struct err *err)
{
	char raw[FP_CHARS];
	size_t n = 0, pos = 0;
	uint8_t data[FP_BYTES], check[3], want[3];

	err_clear(err);
	if (!s || !*s) {
		err_set(err, "the fingerprint is empty");
		return -EINVAL;
	}
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '-' || isspace(c))
			continue;
		pos++;
		if (base32_value((char)c) < 0) {
			if (isprint(c))
				err_set(err,
					"invalid character '%c' at position %zu%s; fingerprints "
					"use "
					"only the letters A-Z and the digits 2-7",
					c, pos, fp_char_hint((char)c));
			else
				err_set(err,
					"invalid byte 0x%02x at position %zu; fingerprints use "
					"only the letters A-Z and the digits 2-7",
					c, pos);
			return -EINVAL;
		}
		if (n < FP_CHARS)
			raw[n] = (char)toupper(c);
		n++;
	}
	if (n != FP_CHARS) {
		err_set(err, "the fingerprint has %zu character%s, expected %d (%d groups of 4)", n,
			n == 1 ? "" : "s", FP_CHARS, FP_CHARS / 4);
		return -EINVAL;
	}
	if (base32_decode_bits(raw, FP_DATA_CHARS, data) < 0 ||
	    base32_decode_bits(raw + FP_DATA_CHARS, FP_CHECK_CHARS, check) < 0) {
		err_set(err, "the fingerprint is not valid base32");
		return -EINVAL;
	}
	fp_checksum(data, want);
	if (sodium_memcmp(want, check, sizeof(want)) != 0) {
		err_set(err, "the fingerprint's checksum does not match: it has a typo; copy it "
			     "again from 'tandem id' on the other machine");
		return -EINVAL;
	}
	memcpy(ret->b, data, FP_BYTES);
	return 0;
}

bool fp_equal(const struct fingerprint *a, const struct fingerprint *b)
{
	return sodium_memcmp(a->b, b->b, FP_BYTES) == 0;
}
