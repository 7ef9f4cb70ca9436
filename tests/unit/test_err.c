/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "base/err.h"
#include "tap.h"

static void fill(char *s, size_t n, char c)
{
	memset(s, c, n);
	s[n] = '\0';
}

TEST(set_and_prefix)
{
	struct err e;

	err_set(&e, "disk %s", "full");
	CHECK_STR_EQ(e.msg, "disk full");
	err_prefix(&e, "cannot write %s: ", "a.txt");
	CHECK_STR_EQ(e.msg, "cannot write a.txt: disk full");
	err_prefix(&e, "sync: ");
	CHECK_STR_EQ(e.msg, "sync: cannot write a.txt: disk full");
	err_clear(&e);
	CHECK_STR_EQ(e.msg, "");
	CHECK(!err_is_set(&e));
	err_prefix(&e, "x: ");
	CHECK_STR_EQ(e.msg, "x: ");
}

TEST(null_is_allowed)
{
	err_set(NULL, "nothing %d", 1);
	err_prefix(NULL, "nothing %d", 2);
	err_clear(NULL);
	CHECK(!err_is_set(NULL));
}

TEST(own_message_as_argument)
{
	struct err e;

	err_set(&e, "inner");
	err_set(&e, "outer (%s)", e.msg);
	CHECK_STR_EQ(e.msg, "outer (inner)");
}

TEST(exactly_full_is_not_cut)
{
	static char s[ERR_LEN];
	struct err e;

	fill(s, ERR_LEN - 1, 'a');
	err_set(&e, "%s", s);
	CHECK_INT_EQ(strlen(e.msg), ERR_LEN - 1);
	CHECK(strstr(e.msg, "...") == NULL);
}

TEST(too_long_shows_the_cut_and_keeps_both_ends)
{
	static char s[ERR_LEN + 200];
	struct err e;

	fill(s, sizeof(s) - 1, 'm');
	memcpy(s, "HEAD", 4);
	memcpy(s + sizeof(s) - 1 - 4, "TAIL", 4);
	err_set(&e, "%s", s);
	CHECK_INT_EQ(strlen(e.msg), ERR_LEN - 1);
	CHECK(strncmp(e.msg, "HEAD", 4) == 0);
	CHECK(strcmp(e.msg + ERR_LEN - 1 - 4, "TAIL") == 0);
	CHECK(strstr(e.msg, "...") != NULL);
}

TEST(longer_than_scratch_is_cut_at_the_end)
{
	static char s[3 * ERR_LEN];
	struct err e;

	fill(s, sizeof(s) - 1, 'z');
	err_set(&e, "%s", s);
	CHECK_INT_EQ(strlen(e.msg), ERR_LEN - 1);
	CHECK(strcmp(e.msg + ERR_LEN - 4, "...") == 0);
}

/* Three layers, each adding context in front: the daemon's words, then the
 * engine's, then the cause. When it no longer fits, both ends survive. */
TEST(deep_nesting_keeps_context_and_cause)
{
	static char path[700];
	struct err e;

	fill(path, sizeof(path) - 1, 'p');
	err_set(&e, "cannot open %s: No space left on device", path);
	err_prefix(&e, "cannot load the index: ");
	err_prefix(&e, "cannot sync %s: ", path);
	CHECK_INT_EQ(strlen(e.msg), ERR_LEN - 1);
	CHECK(strncmp(e.msg, "cannot sync ppp", 15) == 0);
	CHECK(strstr(e.msg, "...") != NULL);
	CHECK(strcmp(e.msg + strlen(e.msg) - strlen(": No space left on device"),
		     ": No space left on device") == 0);
}

TEST(cut_never_splits_utf8)
{
	static char s[2 * ERR_LEN];
	struct err e;
	size_t n = 0;

	/* "é" (c3 a9) over and over, shifted by one byte so a naive cut would split one. */
	s[n++] = 'x';
	while (n + 2 < sizeof(s) - 1) {
		s[n++] = (char)0xc3;
		s[n++] = (char)0xa9;
	}
	s[n] = '\0';
	err_set(&e, "%s", s);
	for (size_t i = 0; e.msg[i]; i++) {
		unsigned char c = (unsigned char)e.msg[i];

		if (c == 0xc3)
			CHECK((unsigned char)e.msg[i + 1] == 0xa9);
		if (c == 0xa9)
			CHECK(i > 0 && (unsigned char)e.msg[i - 1] == 0xc3);
	}
	CHECK(strstr(e.msg, "...") != NULL);
}

TEST(long_prefix_is_cut_visibly)
{
	static char p[ERR_LEN + 50];
	struct err e;

	fill(p, sizeof(p) - 1, 'q');
	err_set(&e, "the cause");
	err_prefix(&e, "%s: ", p);
	CHECK_INT_EQ(strlen(e.msg), ERR_LEN - 1);
	CHECK(strstr(e.msg, "...") != NULL);
	CHECK(strcmp(e.msg + strlen(e.msg) - 9, "the cause") == 0);
}

int main(void)
{
	RUN(set_and_prefix);
	RUN(null_is_allowed);
	RUN(own_message_as_argument);
	RUN(exactly_full_is_not_cut);
	RUN(too_long_shows_the_cut_and_keeps_both_ends);
	RUN(longer_than_scratch_is_cut_at_the_end);
	RUN(deep_nesting_keeps_context_and_cause);
	RUN(cut_never_splits_utf8);
	RUN(long_prefix_is_cut_visibly);
	return tap_done();
}
