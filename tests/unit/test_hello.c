/* SPDX-License-Identifier: GPL-2.0-or-later */
/* HELLO, the first DATA message on a channel (src/daemon/hello.c). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "daemon/hello.h"
#include "tap.h"

TEST(round_trip)
{
	uint8_t buf[CONN_HELLO_MAX];
	struct conn_hello h;
	int n = conn_hello_write(CONN_PROTO_VERSION, "tandem 0.1.0", 12, buf, sizeof(buf));

	REQUIRE(n == 4 + 12);
	CHECK_INT_EQ(buf[0], CONN_MSG_HELLO);
	REQUIRE(conn_hello_parse(buf, (size_t)n, &h) == 0);
	CHECK_INT_EQ(h.version, CONN_PROTO_VERSION);
	CHECK_INT_EQ(h.software_len, 12);
	CHECK_STR_EQ(h.software, "tandem 0.1.0");
}

TEST(long_software_is_cut)
{
	char sw[CONN_SOFTWARE_MAX + 20];
	uint8_t buf[CONN_HELLO_MAX];
	struct conn_hello h;
	int n;

	memset(sw, 'x', sizeof(sw));
	n = conn_hello_write(7, sw, sizeof(sw), buf, sizeof(buf));
	REQUIRE(n == CONN_HELLO_MAX);
	REQUIRE(conn_hello_parse(buf, (size_t)n, &h) == 0);
	CHECK_INT_EQ(h.version, 7);
	CHECK_INT_EQ(h.software_len, CONN_SOFTWARE_MAX);
	CHECK_INT_EQ(conn_hello_write(1, "abc", 3, buf, 6), -EMSGSIZE);
}

/* Every truncation and one byte too many are refused, *ret untouched. */
TEST(consumes_exactly_everything)
{
	uint8_t buf[CONN_HELLO_MAX + 1];
	struct conn_hello h = { .version = 99 };
	int n = conn_hello_write(1, "peer", 4, buf, sizeof(buf));

	REQUIRE(n == 8);
	for (int i = 0; i < n; i++)
		CHECK_INT_EQ(conn_hello_parse(buf, (size_t)i, &h), -EBADMSG);
	buf[n] = 0;
	CHECK_INT_EQ(conn_hello_parse(buf, (size_t)n + 1, &h), -EBADMSG);
	buf[0] = CONN_MSG_HELLO + 1;
	CHECK_INT_EQ(conn_hello_parse(buf, (size_t)n, &h), -EBADMSG);
	CHECK_INT_EQ(h.version, 99);
}

int main(void)
{
	RUN(round_trip);
	RUN(long_software_is_cut);
	RUN(consumes_exactly_everything);
	return tap_done();
}
