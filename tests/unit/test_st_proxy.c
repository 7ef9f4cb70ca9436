/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The selftest's fault proxy (src/selftest/st_proxy.c) in-process, over
 * [::1]: a client connects to the proxy, which forwards to a listener of
 * this test. Timing checks are lower bounds only (a loaded machine makes
 * everything later, never earlier); the rest checks bytes and counters.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "selftest/st_proxy.h"
#include "selftest/st_rand.h"
#include "tap.h"

#define WAIT_MS 5000

struct link {
	struct st_proxy *p;
	int lfd;  /* our listener, the proxy's target */
	int a, b; /* a: connected to the proxy; b: what the proxy connected to us */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int connect_to(const char *addr)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin6_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1));
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A proxy with seed and faults ab set before the connection, and one
 * connection through it. */
static int link_open(struct link *l, uint64_t seed, const struct st_proxy_faults *ab)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	socklen_t sl = sizeof(sa);
	char target[64];
	struct pollfd pf;

	memset(l, 0, sizeof(*l));
	l->a = l->b = l->lfd = -1;
	if (st_proxy_new(seed, &l->p) < 0)
		return -1;
	if (ab)
		st_proxy_set(l->p, ST_PROXY_AB, ab);
	l->lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->lfd < 0 || bind(l->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(l->lfd, 4) < 0 || getsockname(l->lfd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	snprintf(target, sizeof(target), "[::1]:%u", (unsigned)ntohs(sa.sin6_port));
	if (st_proxy_set_target(l->p, target) < 0)
		return -1;
	l->a = connect_to(st_proxy_addr(l->p));
	pf = (struct pollfd){.fd = l->lfd, .events = POLLIN};
	if (l->a < 0 || poll(&pf, 1, WAIT_MS) != 1)
		return -1;
	l->b = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
	return l->b < 0 ? -1 : 0;
}

static void link_close(struct link *l)
{
	if (l->a >= 0)
		close(l->a);
	if (l->b >= 0)
		close(l->b);
	if (l->lfd >= 0)
		close(l->lfd);
	st_proxy_free(l->p);
}

static void send_all(int fd, const void *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t k = send(fd, (const char *)buf + off, len - off, MSG_NOSIGNAL);
		if (k <= 0)
			return;
		off += (size_t)k;
	}
}

/*
 * Reads into buf until want bytes came, EOF, an error or ms passed.
 * Returns the bytes read; *ret_end gets 0 for EOF, the errno of an error,
 * -1 when it stopped for want or time.
 */
static size_t recv_some(int fd, void *buf, size_t want, unsigned ms, int *ret_end)
{
	uint64_t end = now_ms() + ms;
	size_t got = 0;

	*ret_end = -1;
	while (got < want) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		uint64_t now = now_ms();
		if (now >= end || poll(&pf, 1, (int)(end - now)) <= 0)
			break;
		ssize_t k = recv(fd, (char *)buf + got, want - got, 0);
		if (k <= 0) {
			*ret_end = k == 0 ? 0 : errno;
			break;
		}
		got += (size_t)k;
	}
	return got;
}

static void pattern(uint8_t *b, size_t n, uint64_t seed)
{
	struct st_rand r;

	st_rand_seed(&r, seed);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)st_rand_next(&r);
}

/* The counters of dir once field reached want (they follow the bytes a
 * little: the proxy counts after it sent), or after WAIT_MS. */
static void counters_wait(struct st_proxy *p, enum st_proxy_dir dir, size_t field, uint64_t want,
			  struct st_proxy_counters *c)
{
	uint64_t end = now_ms() + WAIT_MS;

	do {
		st_proxy_counters(p, dir, c);
		if (*(uint64_t *)((char *)c + field) >= want)
			return;
		poll(NULL, 0, 10);
	} while (now_ms() < end);
}

#define COUNTERS_WAIT(p, dir, name, want, c)                                                       \
	counters_wait((p), (dir), offsetof(struct st_proxy_counters, name), (want), (c))

static uint8_t out[1u << 20], in[1u << 20];

TEST(rand_repeats)
{
	struct st_rand x, y;
	bool differ = false;

	st_rand_seed(&x, 7);
	st_rand_seed(&y, 7);
	for (int i = 0; i < 100; i++)
		CHECK(st_rand_next(&x) == st_rand_next(&y));
	st_rand_seed(&y, 8);
	for (int i = 0; i < 10; i++)
		differ = differ || st_rand_next(&x) != st_rand_next(&y);
	CHECK(differ);
	for (int i = 0; i < 1000; i++)
		CHECK(st_rand_below(&x, 10) < 10);
	CHECK_INT_EQ(st_rand_below(&x, 1), 0);
	CHECK_INT_EQ(st_rand_below(&x, 0), 0);
}

TEST(target_parse)
{
	struct st_proxy *p;

	REQUIRE(st_proxy_new(0, &p) == 0);
	CHECK(strncmp(st_proxy_addr(p), "[::1]:", 6) == 0);
	CHECK_INT_EQ(st_proxy_set_target(p, "[::1]:80"), 0);
	CHECK_INT_EQ(st_proxy_set_target(p, "127.0.0.1:80"), 0);
	static const char *const bad[] = {
		"",	  ":80",	  "[::1]",	    "[::1]:0",	"[::1]:65536", "[::1]:8x",
		"::1:80", "localhost:80", "[127.0.0.1]:80", "1.2.3:80", "[]:80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT_EQ(st_proxy_set_target(p, bad[i]), -EINVAL);
	st_proxy_free(p);
	st_proxy_free(NULL);
}

TEST(forwards_both_ways)
{
	struct link l;
	struct st_proxy_counters c;
	int end;

	REQUIRE(link_open(&l, 1, NULL) == 0);
	pattern(out, 200000, 1);
	send_all(l.a, out, 200000);
	CHECK_INT_EQ(recv_some(l.b, in, 200000, WAIT_MS, &end), 200000);
	CHECK(memcmp(in, out, 200000) == 0);
	send_all(l.b, "pong", 4);
	CHECK_INT_EQ(recv_some(l.a, in, 4, WAIT_MS, &end), 4);
	CHECK(memcmp(in, "pong", 4) == 0);
	/* a's FIN reaches b, then b's reaches a */
	shutdown(l.a, SHUT_WR);
	CHECK_INT_EQ(recv_some(l.b, in, 1, WAIT_MS, &end), 0);
	CHECK_INT_EQ(end, 0);
	shutdown(l.b, SHUT_WR);
	CHECK_INT_EQ(recv_some(l.a, in, 1, WAIT_MS, &end), 0);
	CHECK_INT_EQ(end, 0);
	COUNTERS_WAIT(l.p, ST_PROXY_AB, bytes, 200000, &c);
	CHECK_INT_EQ(c.conns, 1);
	CHECK_INT_EQ(c.bytes, 200000);
	CHECK_INT_EQ(c.delayed, 0);
	COUNTERS_WAIT(l.p, ST_PROXY_BA, bytes, 4, &c);
	CHECK_INT_EQ(c.bytes, 4);
	st_proxy_print(l.p, stdout); /* "# proxy a->b: ..." */
	link_close(&l);
}

TEST(latency_delays)
{
	struct st_proxy_faults f = {.latency_ms = 200, .jitter_ms = 50};
	struct st_proxy_counters c;
	struct link l;
	uint64_t t0;
	int end;

	REQUIRE(link_open(&l, 2, &f) == 0);
	t0 = now_ms();
	send_all(l.a, "x", 1);
	CHECK_INT_EQ(recv_some(l.b, in, 1, WAIT_MS, &end), 1);
	CHECK(now_ms() - t0 >= 190);
	/* the other way has no latency */
	t0 = now_ms();
	send_all(l.b, "y", 1);
	CHECK_INT_EQ(recv_some(l.a, in, 1, WAIT_MS, &end), 1);
	/* order kept under jitter */
	for (int i = 0; i < 50; i++)
		out[i] = (uint8_t)i, send_all(l.a, &out[i], 1);
	CHECK_INT_EQ(recv_some(l.b, in, 50, WAIT_MS, &end), 50);
	CHECK(memcmp(in, out, 50) == 0);
	COUNTERS_WAIT(l.p, ST_PROXY_AB, delayed, 51, &c);
	CHECK_INT_EQ(c.delayed, 51);
	st_proxy_counters(l.p, ST_PROXY_BA, &c);
	CHECK_INT_EQ(c.delayed, 0);
	link_close(&l);
}

TEST(bandwidth_capped)
{
	struct st_proxy_faults f = {.rate_bps = 200000};
	struct st_proxy_counters c;
	struct link l;
	uint64_t t0, ms, w0, w;
	int end;

	REQUIRE(link_open(&l, 3, &f) == 0);
	pattern(out, 200000, 3);
	t0 = now_ms();
	w0 = st_proxy_wakeups(l.p);
	send_all(l.a, out, 200000);
	CHECK_INT_EQ(recv_some(l.b, in, 200000, 3 * WAIT_MS, &end), 200000);
	ms = now_ms() - t0;
	w = st_proxy_wakeups(l.p) - w0;
	printf("# 200000 bytes at 200000 B/s took %llu ms, %llu wakeups of the proxy\n",
	       (unsigned long long)ms, (unsigned long long)w);
	/* a wakeup per rate tick (5 ms) and per socket event, not a spin: it
	 * once polled with a timeout of 0 while the rate held data back, some
	 * 100,000 times a second */
	CHECK(w < 20 * (ms + 1));
	CHECK(ms >= 800); /* a second's worth, less the first burst */
	CHECK(memcmp(in, out, 200000) == 0);
	COUNTERS_WAIT(l.p, ST_PROXY_AB, delayed, 100001, &c);
	CHECK(c.delayed > 100000);
	link_close(&l);
}

TEST(partition_forwards_nothing)
{
	struct st_proxy_counters c;
	struct link l;
	int end;

	REQUIRE(link_open(&l, 4, NULL) == 0);
	st_proxy_partition(l.p, true);
	send_all(l.a, "hello", 5);
	send_all(l.b, "olleh", 5);
	CHECK_INT_EQ(recv_some(l.b, in, 5, 300, &end), 0);
	CHECK_INT_EQ(end, -1); /* no EOF, no error: it looks alive */
	CHECK_INT_EQ(recv_some(l.a, in, 5, 10, &end), 0);
	CHECK_INT_EQ(end, -1);
	CHECK_INT_EQ(st_proxy_open_conns(l.p), 1);
	/* a new connection during the partition is accepted, and silent too */
	int a2 = connect_to(st_proxy_addr(l.p));
	CHECK(a2 >= 0);
	send_all(a2, "x", 1);
	CHECK_INT_EQ(recv_some(a2, in, 1, 100, &end), 0);
	CHECK_INT_EQ(end, -1);
	close(a2);
	/* healed: what waited goes on */
	st_proxy_partition(l.p, false);
	CHECK_INT_EQ(recv_some(l.b, in, 5, WAIT_MS, &end), 5);
	CHECK(memcmp(in, "hello", 5) == 0);
	CHECK_INT_EQ(recv_some(l.a, in, 5, WAIT_MS, &end), 5);
	CHECK(memcmp(in, "olleh", 5) == 0);
	COUNTERS_WAIT(l.p, ST_PROXY_AB, delayed, 6, &c);
	CHECK_INT_EQ(c.partitions, 1);
	CHECK_INT_EQ(c.delayed, 6); /* "hello", and the second connection's "x" */
	link_close(&l);
}

TEST(stall_then_resume)
{
	struct st_proxy_counters c;
	struct link l;
	uint64_t t0;
	int end;

	REQUIRE(link_open(&l, 5, NULL) == 0);
	t0 = now_ms();
	st_proxy_stall(l.p, ST_PROXY_BA, 300);
	send_all(l.b, "abc", 3);
	send_all(l.a, "def", 3);
	CHECK_INT_EQ(recv_some(l.b, in, 3, WAIT_MS, &end), 3); /* a->b is not stalled */
	CHECK_INT_EQ(recv_some(l.a, in, 3, WAIT_MS, &end), 3);
	CHECK(memcmp(in, "abc", 3) == 0);
	CHECK(now_ms() - t0 >= 290);
	COUNTERS_WAIT(l.p, ST_PROXY_BA, delayed, 3, &c);
	CHECK_INT_EQ(c.stalls, 1);
	CHECK_INT_EQ(c.delayed, 3);
	link_close(&l);
}

TEST(reset_after_bytes)
{
	struct st_proxy_faults f = {.reset_after = 1000};
	struct st_proxy_counters c;
	struct link l;
	int end;

	REQUIRE(link_open(&l, 6, &f) == 0);
	pattern(out, 5000, 6);
	send_all(l.a, out, 5000);
	size_t got = recv_some(l.b, in, 5000, WAIT_MS, &end);
	printf("# the reader got %zu bytes, then %s\n", got, end > 0 ? strerror(end) : "no error");
	CHECK(got <= 1000);
	CHECK(memcmp(in, out, got) == 0);
	CHECK_INT_EQ(end, ECONNRESET);
	/* the writer's side is reset too */
	recv_some(l.a, in, 1, WAIT_MS, &end);
	CHECK_INT_EQ(end, ECONNRESET);
	st_proxy_counters(l.p, ST_PROXY_AB, &c);
	CHECK_INT_EQ(c.resets, 1);
	CHECK_INT_EQ(c.bytes, 1000);
	link_close(&l);
}

TEST(reset_shots_and_timed)
{
	struct st_proxy_faults f = {.reset_after = 10, .shots = 1};
	struct st_proxy_counters c;
	struct link l;
	int end, a2, b2;

	REQUIRE(link_open(&l, 7, &f) == 0);
	send_all(l.a, "0123456789abcdef", 16);
	recv_some(l.b, in, 16, WAIT_MS, &end);
	CHECK_INT_EQ(end, ECONNRESET);
	/* the one shot is spent: a second connection is left alone... */
	a2 = connect_to(st_proxy_addr(l.p));
	REQUIRE(a2 >= 0);
	b2 = accept4(l.lfd, NULL, NULL, SOCK_CLOEXEC);
	REQUIRE(b2 >= 0);
	send_all(a2, "0123456789abcdef", 16);
	CHECK_INT_EQ(recv_some(b2, in, 16, WAIT_MS, &end), 16);
	/* ...until a timed reset */
	st_proxy_reset_at(l.p, 50);
	recv_some(b2, in, 1, WAIT_MS, &end);
	CHECK_INT_EQ(end, ECONNRESET);
	st_proxy_counters(l.p, ST_PROXY_AB, &c);
	CHECK_INT_EQ(c.resets, 2);
	CHECK_INT_EQ(c.conns, 2);
	close(a2);
	close(b2);
	link_close(&l);
}

TEST(halfclose_one_way)
{
	struct st_proxy_faults f = {.halfclose_after = 1000};
	struct st_proxy_counters c;
	struct link l;
	int end;

	REQUIRE(link_open(&l, 8, &f) == 0);
	pattern(out, 3000, 8);
	send_all(l.a, out, 3000);
	CHECK_INT_EQ(recv_some(l.b, in, 3000, WAIT_MS, &end), 1000);
	CHECK_INT_EQ(end, 0); /* EOF */
	CHECK(memcmp(in, out, 1000) == 0);
	/* b -> a still works */
	send_all(l.b, "still here", 10);
	CHECK_INT_EQ(recv_some(l.a, in, 10, WAIT_MS, &end), 10);
	CHECK(memcmp(in, "still here", 10) == 0);
	COUNTERS_WAIT(l.p, ST_PROXY_AB, dropped, 2000, &c);
	CHECK_INT_EQ(c.halfcloses, 1);
	CHECK_INT_EQ(c.dropped, 2000);
	link_close(&l);
}

TEST(truncate_closes)
{
	struct st_proxy_faults f = {.truncate_after = 777};
	struct st_proxy_counters c;
	struct link l;
	int end;

	REQUIRE(link_open(&l, 9, &f) == 0);
	pattern(out, 3000, 9);
	send_all(l.a, out, 3000);
	CHECK_INT_EQ(recv_some(l.b, in, 3000, WAIT_MS, &end), 777);
	CHECK_INT_EQ(end, 0);
	CHECK(memcmp(in, out, 777) == 0);
	CHECK_INT_EQ(recv_some(l.a, in, 1, WAIT_MS, &end), 0);
	CHECK_INT_EQ(end, 0);
	st_proxy_counters(l.p, ST_PROXY_AB, &c);
	CHECK_INT_EQ(c.truncates, 1);
	link_close(&l);
}

/* Sends 64 KiB through a proxy seeded with seed that flips one bit in
 * [1000, 2000); returns the offset * 8 + bit of the difference, -1 when
 * there is not exactly one flipped bit. */
static long one_flip(uint64_t seed)
{
	struct st_proxy_faults f = {.flip_from = 1000, .flip_to = 2000, .flip_bits = 1};
	struct st_proxy_counters c;
	struct link l;
	long where = -1;
	int end, bits = 0;

	if (link_open(&l, seed, &f) < 0) {
		link_close(&l);
		return -1;
	}
	pattern(out, 65536, 10);
	send_all(l.a, out, 65536);
	if (recv_some(l.b, in, 65536, WAIT_MS, &end) == 65536) {
		for (long i = 0; i < 65536; i++) {
			uint8_t x = in[i] ^ out[i];
			for (int b = 0; b < 8; b++) {
				if (x & (1u << b)) {
					bits++;
					where = i * 8 + b;
				}
			}
		}
	}
	st_proxy_counters(l.p, ST_PROXY_AB, &c);
	link_close(&l);
	if (bits != 1 || c.flips != 1)
		return -1;
	return where;
}

TEST(bitflip_one_bit_in_range)
{
	long w = one_flip(11);

	printf("# seed 11 flips bit %ld of byte %ld\n", w % 8, w / 8);
	CHECK(w >= 1000 * 8 && w < 2000 * 8);
}

TEST(bitflip_same_seed_same_bit)
{
	long x = one_flip(12), y = one_flip(12), z = one_flip(13);

	CHECK(x >= 0);
	CHECK_INT_EQ(x, y);
	CHECK(z >= 0 && z != x);
}

int main(void)
{
	RUN(rand_repeats);
	RUN(target_parse);
	RUN(forwards_both_ways);
	RUN(latency_delays);
	RUN(bandwidth_capped);
	RUN(partition_forwards_nothing);
	RUN(stall_then_resume);
	RUN(reset_after_bytes);
	RUN(reset_shots_and_timed);
	RUN(halfclose_one_way);
	RUN(truncate_closes);
	RUN(bitflip_one_bit_in_range);
	RUN(bitflip_same_seed_same_bit);
	return tap_done();
}
