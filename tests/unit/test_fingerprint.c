/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ctype.h>
#include <errno.h>

#include <sodium.h>

#include "fingerprint.h"
#include "identity.h"
#include "tap.h"

static void fixed_fp(struct fingerprint *fp, char txt[FP_TEXT_LEN + 1])
{
	uint8_t pk[32];

	memset(pk, 0x42, sizeof(pk));
	fp_from_pubkey(pk, fp);
	fp_format(fp, txt);
}

TEST(format_shape)
{
	struct fingerprint fp;
	char txt[FP_TEXT_LEN + 1];

	fixed_fp(&fp, txt);
	CHECK_INT_EQ(strlen(txt), 44);
	CHECK_INT_EQ(FP_BYTES * 8 >= 160, 1);
	for (int i = 0; i < 44; i++) {
		if (i % 5 == 4)
			CHECK(txt[i] == '-');
		else
			CHECK((txt[i] >= 'A' && txt[i] <= 'Z') || (txt[i] >= '2' && txt[i] <= '7'));
	}
}

TEST(known_answer)
{
	/*
	 * Pins the derivation, computed independently with Python's hashlib:
	 * changing it would change every user's fingerprint.
	 */
	struct fingerprint fp;
	char txt[FP_TEXT_LEN + 1];

	fixed_fp(&fp, txt);
	CHECK_STR_EQ(txt, "I3T2-FNDA-6QEH-SH76-MVQV-VMPQ-ZHE2-SH4I-KYFS");
}

TEST(parse_accepts_variants)
{
	struct fingerprint fp, got;
	struct err err;
	char txt[FP_TEXT_LEN + 1], v[128];

	fixed_fp(&fp, txt);
	CHECK_INT_EQ(fp_parse(txt, &got, &err), 0);
	CHECK(fp_equal(&fp, &got));

	/* lower case */
	for (size_t i = 0; i <= strlen(txt); i++)
		v[i] = (char)tolower((unsigned char)txt[i]);
	memset(&got, 0, sizeof(got));
	CHECK_INT_EQ(fp_parse(v, &got, &err), 0);
	CHECK(fp_equal(&fp, &got));

	/* no dashes */
	size_t o = 0;
	for (size_t i = 0; txt[i]; i++)
		if (txt[i] != '-')
			v[o++] = txt[i];
	v[o] = '\0';
	memset(&got, 0, sizeof(got));
	CHECK_INT_EQ(fp_parse(v, &got, &err), 0);
	CHECK(fp_equal(&fp, &got));

	/* spaces instead of dashes, surrounding whitespace, mixed case */
	o = 0;
	v[o++] = ' ';
	for (size_t i = 0; txt[i]; i++) {
		char c = txt[i] == '-' ? ' ' : txt[i];
		v[o++] = (i % 3) ? (char)tolower((unsigned char)c) : c;
	}
	v[o++] = '\n';
	v[o] = '\0';
	memset(&got, 0, sizeof(got));
	CHECK_INT_EQ(fp_parse(v, &got, &err), 0);
	CHECK(fp_equal(&fp, &got));
}

TEST(parse_rejects_with_reason)
{
	struct fingerprint fp, got;
	struct err err;
	char txt[FP_TEXT_LEN + 1], v[128];

	fixed_fp(&fp, txt);
	memset(&got, 0xee, sizeof(got));

	CHECK_INT_EQ(fp_parse("", &got, &err), -EINVAL);
	CHECK(strstr(err.msg, "empty") != NULL);

	/* too short: drop the last group */
	memcpy(v, txt, 39);
	v[39] = '\0';
	CHECK_INT_EQ(fp_parse(v, &got, &err), -EINVAL);
	CHECK(strstr(err.msg, "32 characters, expected 36") != NULL);

	/* too long */
	snprintf(v, sizeof(v), "%s-AAAA", txt);
	CHECK_INT_EQ(fp_parse(v, &got, &err), -EINVAL);
	CHECK(strstr(err.msg, "40 characters, expected 36") != NULL);
	CHECK(fp_parse("A", &got, &err) < 0 &&
	      strstr(err.msg, "has 1 character, expected 36") != NULL);

	/* bad character: the digit 0, with a hint and its position */
	snprintf(v, sizeof(v), "%s", txt);
	v[6] = '0'; /* position 6 without dashes */
	CHECK_INT_EQ(fp_parse(v, &got, &err), -EINVAL);
	CHECK(strstr(err.msg, "'0'") != NULL);
	CHECK(strstr(err.msg, "position 6") != NULL);
	CHECK(strstr(err.msg, "letter O") != NULL);

	v[6] = '!';
	CHECK_INT_EQ(fp_parse(v, &got, &err), -EINVAL);
	CHECK(strstr(err.msg, "'!'") != NULL);

	v[6] = '\x01';
	CHECK_INT_EQ(fp_parse(v, &got, &err), -EINVAL);
	CHECK(strstr(err.msg, "0x01") != NULL);

	/* every single-character typo is caught by the checksum */
	int caught = 0, tried = 0;
	for (size_t i = 0; txt[i]; i++) {
		if (txt[i] == '-')
			continue;
		snprintf(v, sizeof(v), "%s", txt);
		v[i] = v[i] == 'A' ? 'B' : 'A';
		tried++;
		if (fp_parse(v, &got, &err) == -EINVAL && strstr(err.msg, "typo"))
			caught++;
	}
	CHECK_INT_EQ(caught, tried);

	/* *ret untouched on failure */
	struct fingerprint ee;
	memset(&ee, 0xee, sizeof(ee));
	CHECK(memcmp(&got, &ee, sizeof(ee)) == 0);
}

TEST(distinct_keys_distinct_fps)
{
	struct identity *a, *b;

	REQUIRE(identity_new(NULL, &a) == 0);
	REQUIRE(identity_new(NULL, &b) == 0);
	CHECK(!fp_equal(&a->fp, &b->fp));
	identity_free(a);
	identity_free(b);
}

int main(void)
{
	if (sodium_init() < 0)
		return 99;
	RUN(format_shape);
	RUN(known_answer);
	RUN(parse_accepts_variants);
	RUN(parse_rejects_with_reason);
	RUN(distinct_keys_distinct_fps);
	return tap_done();
}
