/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_TAP_H
#define TANDEM_TAP_H

/*
 * Tiny TAP producer for unit tests. Each TEST(name) is a function; RUN(name)
 * runs it and prints "ok N - name" or "not ok N - name". CHECK(expr) records
 * a failure with file:line and the expression, and goes on; REQUIRE(expr)
 * returns from the test. tap_done() prints the plan and the closing line,
 * and returns the exit status.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed_total, tap_failed_cur;

#define TEST(name) static void test_##name(void)

#define CHECK(expr)                                                                      \
	do {                                                                             \
		if (!(expr)) {                                                           \
			printf("#   %s:%d: check failed: %s\n", __FILE__, __LINE__, #expr);  \
			tap_failed_cur++;                                                \
		}                                                                        \
	} while (0)

#define REQUIRE(expr)                                                                    \
	do {                                                                             \
		if (!(expr)) {                                                           \
			printf("#   %s:%d: requirement failed: %s\n", __FILE__, __LINE__,    \
			       #expr);                                                   \
			tap_failed_cur++;                                                \
			return;                                                          \
		}                                                                        \
	} while (0)

#define CHECK_INT_EQ(a, b)                                                               \
	do {                                                                             \
		long long _a = (long long)(a), _b = (long long)(b);                      \
		if (_a != _b) {                                                          \
			printf("#   %s:%d: %s == %s failed: %lld != %lld\n", __FILE__,       \
			       __LINE__, #a, #b, _a, _b);                                \
			tap_failed_cur++;                                                \
		}                                                                        \
	} while (0)

#define CHECK_STR_EQ(a, b)                                                               \
	do {                                                                             \
		const char *_a = (a), *_b = (b);                                         \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                                 \
			printf("#   %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,   \
			       __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); \
			tap_failed_cur++;                                                \
		}                                                                        \
	} while (0)

#define RUN(name)                                                                        \
	do {                                                                             \
		tap_failed_cur = 0;                                                      \
		test_##name();                                                           \
		tap_n++;                                                                 \
		if (tap_failed_cur) {                                                    \
			tap_failed_total++;                                              \
			printf("not ok %d - %s\n", tap_n, #name);                        \
		} else {                                                                 \
			printf("ok %d - %s\n", tap_n, #name);                            \
		}                                                                        \
		fflush(stdout);                                                          \
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	printf("# %d passed, %d failed\n", tap_n - tap_failed_total, tap_failed_total);
	return tap_failed_total ? 1 : 0;
}

#endif
