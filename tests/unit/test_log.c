/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The escaper for peer-supplied strings on their way to logs and terminals. */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "tap.h"

TEST(escape_controls_and_esc)
{
	char out[64];
	const char s[] = "a\nb\x1b[31mc\r\t\x7f";

	log_escape(s, strlen(s), out, sizeof(out), 0);
	CHECK_STR_EQ(out, "a\\x0ab\\x1b[31mc\\x0d\\x09\\x7f");
	log_escape(s, strlen(s), out, sizeof(out), LOG_ESC_QUOTE);
	CHECK_STR_EQ(out, "\"a\\x0ab\\x1b[31mc\\x0d\\x09\\x7f\"");
	CHECK(!strchr(out, '\n') && !strchr(out, '\x1b'));
}

TEST(escape_quotes_backslashes_and_high_bytes)
{
	char out[64];

	log_escape("say \"hi\" \\ caf\xc3\xa9", 18, out, sizeof(out), LOG_ESC_QUOTE);
	CHECK_STR_EQ(out, "\"say \\\"hi\\\" \\\\ caf\xc3\xa9\"");
	/* unquoted: a '"' needs no escape, a backslash still does (\x.. stays unambiguous) */
	log_escape("say \"hi\" \\ caf\xc3\xa9", 18, out, sizeof(out), 0);
	CHECK_STR_EQ(out, "say \"hi\" \\\\ caf\xc3\xa9");
	/* an 8-bit CSI (0x9b) is escaped too */
	log_escape("\2332J", 3, out, sizeof(out), 0); /* octal 233 = 0x9b */
	CHECK_STR_EQ(out, "\\x9b2J");
}

/* Printable UTF-8 stays readable; what is not UTF-8, or would change how a
 * terminal shows the line, is escaped byte by byte. */
TEST(escape_utf8)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9" },		/* été */
		{ "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac" },	/* CJK */
		{ "\xf0\x9f\x93\x81", "\xf0\x9f\x93\x81" },		/* U+1F4C1 */
		{ "\xc2\x9b" "2J", "\\xc2\\x9b2J" },		/* C1 CSI as UTF-8 */
		{ "a\xe2\x80\xaetxt.exe", "a\\xe2\\x80\\xaetxt.exe" },	/* U+202E RLO */
		{ "\xe2\x81\xa6x", "\\xe2\\x81\\xa6x" },		/* U+2066 LRI */
		{ "\xe2\x80\xa8", "\\xe2\\x80\\xa8" },			/* U+2028 */
		{ "\xef\xbb\xbf", "\\xef\\xbb\\xbf" },			/* BOM */
		{ "\xc0\xaf", "\\xc0\\xaf" },				/* overlong '/' */
		{ "\xe0\x80\xaf", "\\xe0\\x80\\xaf" },			/* overlong, 3 bytes */
		{ "\xed\xa0\x80", "\\xed\\xa0\\x80" },			/* a surrogate */
		{ "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80" },		/* past U+10FFFF */
		{ "x\xc3", "x\\xc3" },					/* cut short */
		{ "\xa9\xc3\xa9", "\\xa9\xc3\xa9" },			/* stray continuation */
		{ "\xc3\x1b", "\\xc3\\x1b" },				/* lead byte, then ESC */
	};
	char out[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		log_escape(cases[i].in, strlen(cases[i].in), out, sizeof(out), 0);
		CHECK_STR_EQ(out, cases[i].want);
	}
	/* a character is kept whole or not at all when the output is cut */
	for (size_t len = 8; len < 16; len++) {
		char o2[16];
		const char *e = "\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5";
		log_escape(e, strlen(e), o2, len, 0);
		CHECK(strlen(o2) < len);
		CHECK(strlen(o2) >= 3 && strcmp(o2 + strlen(o2) - 3, "...") == 0);
		CHECK((strlen(o2) - 3) % 3 == 0);
	}
}

TEST(escape_bounds)
{
	char out[16], tiny[4] = "xyz";
	char big[3000];

	/* n bytes at most, and never past a NUL */
	CHECK_STR_EQ(log_escape("abcdef", 3, out, sizeof(out), 0), "abc");
	CHECK_STR_EQ(log_escape("ab\0cd", 5, out, sizeof(out), LOG_ESC_QUOTE), "\"ab\"");
	CHECK_STR_EQ(log_escape(NULL, 3, out, sizeof(out), 0), "(null)");
	CHECK_STR_EQ(log_escape("", 0, out, sizeof(out), LOG_ESC_QUOTE), "\"\"");
	/* too small for anything: empty */
	log_escape("abc", 3, tiny, sizeof(tiny), 0);
	CHECK_STR_EQ(tiny, "");
	/* long input is cut with "...", and the output always fits */
	memset(big, '\n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_escape(big, strlen(big), out, sizeof(out), LOG_ESC_QUOTE);
	CHECK(strlen(out) < sizeof(out));
	CHECK(strstr(out, "...\"") != NULL);
	CHECK(!strchr(out, '\n'));
	for (size_t len = 8; len < 39; len++) {
		char o2[40];
		memset(o2, 'Z', sizeof(o2));
		log_escape(big, strlen(big), o2, len, LOG_ESC_QUOTE);
		CHECK(strlen(o2) < len);
		CHECK(o2[len] == 'Z'); /* nothing written past outlen */
	}
}

TEST(quote_str_macro)
{
	char line[4200];
	char path[4096];

	snprintf(line, sizeof(line), "got %s and %s", LOG_Q("x\ny"), LOG_Q(NULL));
	CHECK_STR_EQ(line, "got \"x\\x0ay\" and (null)");
	/* a 4 KiB path fits the buffer, cut */
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	CHECK(strlen(LOG_Q(path)) < LOG_QUOTE_LEN);
	CHECK_STR_EQ(log_quote("a\x1b", 2, line, sizeof(line)), "\"a\\x1b\"");
}

int main(void)
{
	RUN(escape_controls_and_esc);
	RUN(escape_utf8);
	RUN(escape_quotes_backslashes_and_high_bytes);
	RUN(escape_bounds);
	RUN(quote_str_macro);
	return tap_done();
}
