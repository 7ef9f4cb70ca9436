/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The send buffer of a non-blocking socket (src/daemon/dio.c). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/dio.h"
#include "tap.h"

/* A socketpair whose sender takes little at a time, so flushes are partial. */
static void small_pair(int sv[2])
{
	int sz = 4096;

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	(void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
}

static size_t drain(int fd, uint8_t *into, size_t at, size_t cap)
{
	for (;;) {
		ssize_t n = recv(fd, into + at, cap - at, MSG_DONTWAIT);
		if (n <= 0)
			return at;
		at += (size_t)n;
	}
}

/*
 * Appends, partial flushes and reads interleaved: the reader gets every
 * byte in order, the queue never holds more than max, and what a partial
 * send left is kept (moved to the front only when room is needed).
 */
TEST(partial_flushes_keep_the_stream_in_order)
{
	enum { MAX = 64 * 1024, TOTAL = 3 * 1024 * 1024 };
	uint8_t *src = malloc(TOTAL), *got = malloc(TOTAL);
	struct dio_buf b;
	size_t sent = 0, recvd = 0;
	int sv[2], rounds = 0, partial = 0;

	REQUIRE(src && got);
	for (size_t i = 0; i < TOTAL; i++)
		src[i] = (uint8_t)(i * 7 + i / 251);
	small_pair(sv);
	dio_buf_init(&b, MAX);
	while (recvd < TOTAL && rounds++ < 100000) {
		size_t chunk = 1000 + (size_t)(rounds % 7) * 3001;
		if (chunk > TOTAL - sent)
			chunk = TOTAL - sent;
		if (chunk && dio_buf_append(&b, src + sent, chunk) == 0)
			sent += chunk;
		CHECK(b.len <= MAX && b.cap <= MAX);
		size_t before = b.len;
		CHECK_INT_EQ(dio_buf_flush(&b, sv[0]), 0);
		partial += b.len && b.len < before;
		recvd = drain(sv[1], got, recvd, TOTAL);
	}
	CHECK(recvd == TOTAL);
	CHECK(memcmp(src, got, TOTAL) == 0);
	CHECK(partial > 0); /* the test did what it says */
	CHECK_INT_EQ(b.len, 0);
	dio_buf_free(&b);
	close(sv[0]);
	close(sv[1]);
	free(src);
	free(got);
}

TEST(reserve_is_bounded_by_max)
{
	struct dio_buf b;
	uint8_t *dst;

	dio_buf_init(&b, 8192);
	CHECK_INT_EQ(dio_buf_reserve(&b, 8193, &dst), -ENOBUFS);
	REQUIRE(dio_buf_reserve(&b, 6000, &dst) == 0);
	memset(dst, 'x', 6000);
	b.len += 6000;
	CHECK_INT_EQ(dio_buf_reserve(&b, 3000, &dst), -ENOBUFS);
	CHECK_INT_EQ(dio_buf_append(&b, "y", 1), 0);
	dio_buf_free(&b);
}

TEST(trim_gives_the_memory_back_only_when_empty)
{
	struct dio_buf b;
	static uint8_t big[100000];
	int sv[2];

	small_pair(sv);
	dio_buf_init(&b, 1 << 20);
	REQUIRE(dio_buf_append(&b, big, sizeof(big)) == 0);
	dio_buf_trim(&b); /* bytes queued: kept */
	CHECK(b.data != NULL && b.len == sizeof(big));
	size_t recvd = 0;
	static uint8_t sink[100000];
	for (int i = 0; i < 10000 && b.len; i++) {
		CHECK_INT_EQ(dio_buf_flush(&b, sv[0]), 0);
		recvd = drain(sv[1], sink, recvd, sizeof(sink));
	}
	CHECK_INT_EQ(b.len, 0);
	dio_buf_trim(&b);
	CHECK(b.data == NULL && b.cap == 0);
	CHECK_INT_EQ(dio_buf_append(&b, "z", 1), 0); /* usable again */
	dio_buf_free(&b);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	RUN(partial_flushes_keep_the_stream_in_order);
	RUN(reserve_is_bounded_by_max);
	RUN(trim_gives_the_memory_back_only_when_empty);
	return tap_done();
}
