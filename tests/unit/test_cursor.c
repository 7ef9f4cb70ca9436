/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "base/cursor.h"
#include "tap.h"

TEST(reads_big_endian)
{
	static const uint8_t b[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
				    0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
	struct cursor c = cursor_make(b, sizeof(b));

	CHECK_INT_EQ(cursor_u8(&c), 0x01);
	CHECK_INT_EQ(cursor_u16(&c), 0x0203);
	CHECK_INT_EQ(cursor_u32(&c), 0x04050607);
	CHECK(cursor_u64(&c) == 0x08090a0b0c0d0e0fULL);
	CHECK(cursor_done(&c));
}

TEST(short_read_is_sticky)
{
	static const uint8_t b[] = {0xaa, 0xbb, 0xcc};
	struct cursor c = cursor_make(b, sizeof(b));
	uint8_t dst[2] = {7, 7};

	CHECK_INT_EQ(cursor_u32(&c), 0);
	CHECK(c.bad);
	/* Nothing was consumed, and nothing later reads although it would fit. */
	CHECK_INT_EQ(c.left, 3);
	CHECK_INT_EQ(cursor_u8(&c), 0);
	CHECK(cursor_take(&c, 0) == NULL);
	cursor_copy(&c, dst, 2);
	CHECK(dst[0] == 7 && dst[1] == 7);
	CHECK(!cursor_done(&c));
}

TEST(take_and_copy)
{
	static const uint8_t b[] = {1, 2, 3, 4, 5};
	struct cursor c = cursor_make(b, sizeof(b));
	uint8_t dst[2];
	const uint8_t *p;

	p = cursor_take(&c, 0);
	CHECK(p == b && c.left == 5);
	p = cursor_take(&c, 3);
	CHECK(p == b);
	cursor_copy(&c, dst, 2);
	CHECK(dst[0] == 4 && dst[1] == 5);
	CHECK(cursor_done(&c));
	CHECK(cursor_take(&c, 1) == NULL && c.bad);
}

TEST(empty_buffer)
{
	struct cursor c = cursor_make(NULL, 0);

	CHECK(cursor_done(&c));
	CHECK_INT_EQ(cursor_u8(&c), 0);
	CHECK(c.bad);
}

TEST(str8_and_str16)
{
	static const uint8_t b[] = {3, 'a', 'b', 'c', 0, 2, 'x', 'y', 0};
	struct cursor c = cursor_make(b, sizeof(b));
	const uint8_t *s;
	size_t n;

	s = cursor_str8(&c, 3, &n);
	CHECK(s && n == 3 && memcmp(s, "abc", 3) == 0);
	s = cursor_str16(&c, 2, &n);
	CHECK(s && n == 2 && memcmp(s, "xy", 2) == 0);
	s = cursor_str8(&c, 10, &n);
	CHECK(n == 0 && !c.bad && cursor_done(&c));
	(void)s;
}

TEST(str_over_cap_reads_nothing_behind_it)
{
	static const uint8_t b[] = {0, 5, 'h', 'e', 'l', 'l', 'o'};
	struct cursor c = cursor_make(b, sizeof(b));
	size_t n = 99;

	CHECK(cursor_str16(&c, 4, &n) == NULL);
	CHECK(c.bad && n == 0);
	CHECK_INT_EQ(c.left, 5); /* only the length was read */
}

TEST(str_longer_than_buffer)
{
	static const uint8_t b[] = {9, 'a', 'b'};
	struct cursor c = cursor_make(b, sizeof(b));
	size_t n = 99;

	CHECK(cursor_str8(&c, 255, &n) == NULL);
	CHECK(c.bad && n == 0);
}

TEST(writes_big_endian)
{
	uint8_t b[15];
	struct wcursor w = wcursor_make(b, sizeof(b));
	static const uint8_t want[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
				       0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};

	wcursor_u8(&w, 0x01);
	wcursor_u16(&w, 0x0203);
	wcursor_u32(&w, 0x04050607);
	wcursor_u64(&w, 0x08090a0b0c0d0e0fULL);
	CHECK(!w.bad && w.left == 0);
	CHECK(memcmp(b, want, sizeof(b)) == 0);
}

TEST(writer_overflow_is_sticky)
{
	uint8_t b[4] = {0, 0, 0, 0xee};
	struct wcursor w = wcursor_make(b, 3);

	wcursor_u16(&w, 0x1122);
	wcursor_u16(&w, 0x3344); /* does not fit: nothing written */
	CHECK(w.bad && w.left == 1);
	wcursor_u8(&w, 0x55); /* would fit, but the cursor is bad */
	CHECK(b[0] == 0x11 && b[1] == 0x22 && b[2] == 0 && b[3] == 0xee);
	wcursor_put(&w, NULL, 0);
	CHECK(w.bad);
}

TEST(writer_strings_round_trip)
{
	uint8_t b[32];
	struct wcursor w = wcursor_make(b, sizeof(b));
	struct cursor c;
	const uint8_t *s;
	size_t n;

	wcursor_str8(&w, "tandem", 6);
	wcursor_str16(&w, "", 0);
	wcursor_uint(&w, 0xabcdef, 3);
	REQUIRE(!w.bad);
	c = cursor_make(b, sizeof(b) - w.left);
	s = cursor_str8(&c, 64, &n);
	CHECK(s && n == 6 && memcmp(s, "tandem", 6) == 0);
	(void)cursor_str16(&c, 64, &n);
	CHECK(n == 0);
	CHECK_INT_EQ(cursor_uint(&c, 3), 0xabcdef);
	CHECK(cursor_done(&c));
}

TEST(writer_refuses_too_long_string)
{
	static uint8_t big[300];
	uint8_t b[400];
	struct wcursor w = wcursor_make(b, sizeof(b));

	wcursor_str8(&w, big, sizeof(big));
	CHECK(w.bad && w.left == sizeof(b));
}

int main(void)
{
	RUN(reads_big_endian);
	RUN(short_read_is_sticky);
	RUN(take_and_copy);
	RUN(empty_buffer);
	RUN(str8_and_str16);
	RUN(str_over_cap_reads_nothing_behind_it);
	RUN(str_longer_than_buffer);
	RUN(writes_big_endian);
	RUN(writer_overflow_is_sticky);
	RUN(writer_strings_round_trip);
	RUN(writer_refuses_too_long_string);
	return tap_done();
}
