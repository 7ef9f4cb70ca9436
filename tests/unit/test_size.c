/* SPDX-License-Identifier: GPL-2.0-or-later */
/* size_parse: `tandem up --cache-max SIZE` and `cache-max = SIZE`. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "size.h"
#include "tap.h"

static void ok(const char *s, uint64_t want)
{
	struct err err = {.msg = ""};
	uint64_t got = 12345;
	int r = size_parse(s, &got, &err);

	if (r != 0 || got != want)
		printf("# '%s': r=%d got %llu want %llu (%s)\n", s, r, (unsigned long long)got,
		       (unsigned long long)want, err.msg);
	CHECK(r == 0 && got == want);
}

/* Refused with -EINVAL, *ret untouched, and err says what is wrong and
 * names the value and the accepted form. */
static void bad(const char *s, const char *needle)
{
	struct err err = {.msg = ""};
	uint64_t got = 12345;
	int r = size_parse(s, &got, &err);

	if (r != -EINVAL || got != 12345 || !strstr(err.msg, needle))
		printf("# '%s': r=%d got %llu err \"%s\" (want \"%s\" in it)\n", s ? s : "(null)",
		       r, (unsigned long long)got, err.msg, needle);
	CHECK(r == -EINVAL);
	CHECK(got == 12345);
	CHECK(strstr(err.msg, needle) != NULL);
}

TEST(plain_bytes)
{
	ok("0", 0);
	ok("1", 1);
	ok("31457280", 31457280);
	ok("007", 7);
	ok("18446744073709551615", UINT64_MAX);
}

TEST(suffixes)
{
	ok("1K", 1024);
	ok("1k", 1024);
	ok("512M", 512ULL << 20);
	ok("30m", 30ULL << 20);
	ok("10G", 10ULL << 30);
	ok("2T", 2ULL << 40);
	ok("10GiB", 10ULL << 30);
	ok("10gib", 10ULL << 30);
	ok("4KiB", 4096);
	ok("0G", 0);
	ok("16777215T", 16777215ULL << 40);
}

TEST(refused)
{
	bad(NULL, "no size");
	bad("", "no size");
	bad("M", "'M'");
	bad("-1", "'-1'");
	bad("+1", "'+1'");
	bad(" 1", "' 1'");
	bad("1 ", "'1 '");
	bad("1 G", "'1 G'");
	bad("1.5G", "'1.5G'");
	bad("1,5G", "'1,5G'");
	bad("10X", "'10X'");
	bad("10GG", "'10GG'");
	bad("10Gi", "'10Gi'");
	bad("10GB", "'10GB'");
	bad("10GiBs", "'10GiBs'");
	bad("0x10", "'0x10'");
	bad("1e9", "'1e9'");
	/* every refusal names the accepted form */
	bad("10X", "K, M, G or T");
}

TEST(overflow)
{
	bad("18446744073709551616", "too large");
	bad("99999999999999999999999", "too large");
	bad("16777216T", "too large");
	bad("17179869184G", "too large");
}

TEST(long_value_cut)
{
	char big[400];
	struct err err;
	uint64_t v;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(size_parse(big, &v, &err) == -EINVAL);
	CHECK(strlen(err.msg) < ERR_LEN);
	CHECK(strstr(err.msg, "K, M, G or T") != NULL);
}

int main(void)
{
	RUN(plain_bytes);
	RUN(suffixes);
	RUN(refused);
	RUN(overflow);
	RUN(long_value_cut);
	return tap_done();
}
