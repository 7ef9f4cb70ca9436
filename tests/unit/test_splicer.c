/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The relayed transport's dialer thread (src/daemon/splicer.c) against a
 * fake relay on [::1] that answers one connection with a canned reply:
 * a splice (101 and the peer's first bytes), the relay's refusals, a
 * cancel that must not cut the next attempt short, a stop with a socket
 * nobody took.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/splicer.h"
#include "tap.h"

struct fake {
	int lfd;
	char url[64];
	/* the reply to each connection in turn; NULL: answer nothing until
	 * the client hangs up */
	const char *reply[2];
	int n; /* connections to answer */
	pthread_t thread;
};

static void answer(struct fake *f, const char *reply)
{
	char buf[2048];
	size_t len = 0;
	int fd = accept(f->lfd, NULL, NULL);

	if (fd < 0)
		return;
	while (len < sizeof(buf) - 1) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	if (reply) {
		ssize_t n = send(fd, reply, strlen(reply), MSG_NOSIGNAL);
		(void)n;
	}
	/* until the client hangs up (a splice: once it read the bytes) */
	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	close(fd);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	for (int i = 0; i < f->n; i++)
		answer(f, f->reply[i]);
	return NULL;
}

static void fake_start2(struct fake *f, const char *reply, const char *then)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	socklen_t sl = sizeof(sa);

	f->reply[0] = reply;
	f->reply[1] = then;
	f->n = then ? 2 : 1;
	f->lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(f->lfd >= 0);
	REQUIRE(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	REQUIRE(listen(f->lfd, 4) == 0);
	REQUIRE(getsockname(f->lfd, (struct sockaddr *)&sa, &sl) == 0);
	snprintf(f->url, sizeof(f->url), "http://[::1]:%u", ntohs(sa.sin6_port));
	REQUIRE(pthread_create(&f->thread, NULL, fake_main, f) == 0);
}

static void fake_start(struct fake *f, const char *reply)
{
	fake_start2(f, reply, NULL);
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
}

/* Waits for the attempt's outcome (at most 10 s). */
static bool take(struct splicer *s, struct splicer_result *res)
{
	struct pollfd p = {.fd = splicer_notify_fd(s), .events = POLLIN};

	for (int i = 0; i < 100; i++) {
		if (splicer_take(s, res))
			return true;
		(void)poll(&p, 1, 100);
	}
	return false;
}

static const uint8_t token[RELAY_SPLICE_TOKEN_LEN] = {1, 2, 3};

#define SPLICED                                                                                    \
	"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: tandem-splice/1\r\n"  \
	"\r\npeer's first bytes"

TEST(spliced)
{
	struct fake f;
	struct splicer *s;
	struct splicer_result res;
	struct err err;
	char buf[64] = "";

	fake_start(&f, SPLICED);
	REQUIRE(splicer_start(f.url, &s, &err) == 0);
	CHECK(!splicer_busy(s));
	CHECK(!splicer_take(s, &res)); /* nothing asked, nothing there */
	splicer_dial(s, token, 1, 5000);
	CHECK(splicer_busy(s));
	REQUIRE(take(s, &res));
	CHECK(!splicer_busy(s));
	CHECK_INT_EQ(res.err, 0);
	REQUIRE(res.fd >= 0);
	/* the head is gone, the peer's bytes are next */
	CHECK_INT_EQ(recv(res.fd, buf, 18, MSG_WAITALL), 18);
	CHECK_STR_EQ(buf, "peer's first bytes");
	close(res.fd);
	splicer_stop(s);
	fake_stop(&f);
}

TEST(refusals)
{
	static const struct {
		const char *reply;
		int err;
		uint32_t retry_after;
	} cases[] = {
		{"HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\n\r\n", -ETIMEDOUT, 0},
		{"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n",
		 -EAGAIN, 7},
		{"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 10\r\nContent-Length: 0\r\n\r\n",
		 -EBUSY, 10},
		{"HTTP/1.1 409 Conflict\r\nContent-Length: 0\r\n\r\n", -EEXIST, 0},
		{"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", -ENOENT, 0},
		{"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n", -EPROTO, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake f;
		struct splicer *s;
		struct splicer_result res;
		struct err err;

		fake_start(&f, cases[i].reply);
		REQUIRE(splicer_start(f.url, &s, &err) == 0);
		splicer_dial(s, token, 2, 5000);
		REQUIRE(take(s, &res));
		if (res.err != cases[i].err)
			printf("# case %zu: %d (%s)\n", i, res.err, res.message);
		CHECK_INT_EQ(res.err, cases[i].err);
		CHECK_INT_EQ(res.fd, -1);
		CHECK_INT_EQ(res.retry_after, cases[i].retry_after);
		CHECK(res.message[0] != '\0');
		splicer_stop(s);
		fake_stop(&f);
	}
}

/* A cancelled attempt ends at once; the cancel does not reach the next one. */
TEST(cancel_then_again)
{
	struct fake f, g;
	struct splicer *s;
	struct splicer_result res;
	struct err err;

	fake_start(&f, NULL);
	REQUIRE(splicer_start(f.url, &s, &err) == 0);
	splicer_dial(s, token, 1, 30000);
	usleep(100 * 1000);
	splicer_cancel(s);
	REQUIRE(take(s, &res));
	CHECK_INT_EQ(res.err, -ECANCELED);
	splicer_stop(s);
	fake_stop(&f);

	/* the same splicer, cancelled after its attempt ended by itself */
	fake_start2(&g, "HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\n\r\n", SPLICED);
	REQUIRE(splicer_start(g.url, &s, &err) == 0);
	splicer_dial(s, token, 1, 5000);
	struct pollfd p = {.fd = splicer_notify_fd(s), .events = POLLIN};
	CHECK(poll(&p, 1, 5000) == 1);
	splicer_cancel(s); /* too late: the result is there */
	REQUIRE(take(s, &res));
	CHECK_INT_EQ(res.err, -ETIMEDOUT);
	splicer_dial(s, token, 1, 5000);
	REQUIRE(take(s, &res));
	CHECK_INT_EQ(res.err, 0);
	if (res.fd >= 0)
		close(res.fd);
	splicer_stop(s);
	fake_stop(&g);
}

/* Stopped with a spliced socket nobody took: it closes it (the fake relay
 * sees the hang-up and its thread ends). */
TEST(stop_with_result)
{
	struct fake f;
	struct splicer *s;
	struct err err;

	fake_start(&f, SPLICED);
	REQUIRE(splicer_start(f.url, &s, &err) == 0);
	splicer_dial(s, token, 1, 5000);
	struct pollfd p = {.fd = splicer_notify_fd(s), .events = POLLIN};
	CHECK(poll(&p, 1, 5000) == 1);
	splicer_stop(s);
	fake_stop(&f);
}

int main(void)
{
	RUN(spliced);
	RUN(refusals);
	RUN(cancel_then_again);
	RUN(stop_with_result);
	return tap_done();
}
