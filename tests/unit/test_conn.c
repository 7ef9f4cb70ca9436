/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Two connections driven in-process through their ops, over a socketpair
 * on one event loop: no daemon, no connection manager. This is how a
 * second transport plugs in (conn_adopt: a stream that reaches the peer).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "base/clock.h"
#include "base/evloop.h"
#include "daemon/conn.h"
#include "tap.h"

static struct identity *alice, *bob, *mallory;

struct side {
	struct conn *c;
	int up, msgs, rooms, closed;
	bool was_up;
	char error[ERR_LEN];
	uint8_t msg[64];
	size_t msglen;
};

static void on_up(struct conn *c, void *ud)
{
	struct side *s = ud;

	CHECK(c == s->c);
	s->up++;
}

static void on_msg(struct conn *c, void *ud, const uint8_t *msg, size_t len)
{
	struct side *s = ud;

	(void)c;
	s->msgs++;
	s->msglen = len < sizeof(s->msg) ? len : sizeof(s->msg);
	memcpy(s->msg, msg, s->msglen);
}

static void on_room(struct conn *c, void *ud)
{
	struct side *s = ud;

	(void)c;
	s->rooms++;
}

static void on_closed(struct conn *c, void *ud, bool was_up, const char *error)
{
	struct side *s = ud;

	CHECK(c->state == CONN_DEAD);
	s->closed++;
	s->was_up = was_up;
	snprintf(s->error, sizeof(s->error), "%s", error ? error : "");
}

static const struct conn_ops ops = {
	.on_up = on_up, .on_msg = on_msg, .on_room = on_room, .on_closed = on_closed};

static struct conn_env env_for(struct evloop *l, const struct identity *id,
			       const struct identity *peer)
{
	return (struct conn_env){.loop = l,
				 .id = id,
				 .peer = &peer->fp,
				 .ping_ms = 1000,
				 .dead_ms = 3000,
				 .connect_ms = 5000,
				 .handshake_ms = 10000,
				 .rekey_frames = FRAME_REKEY_FRAMES,
				 .rekey_ms = 3600 * 1000};
}

/* Runs the loop and both connections' timers until done() or 5 s. */
static void run_until(struct evloop *l, struct side *a, struct side *b,
		      bool (*done)(const struct side *a, const struct side *b))
{
	uint64_t end = clock_mono_ms() + 5000;

	while (!done(a, b) && clock_mono_ms() < end) {
		CHECK(evloop_run_once(l, clock_mono_ms() + 50) >= 0);
		uint64_t now = clock_mono_ms();
		if (a->c->state != CONN_DEAD && conn_deadline(a->c) <= now)
			conn_tick(a->c, now);
		if (b->c->state != CONN_DEAD && conn_deadline(b->c) <= now)
			conn_tick(b->c, now);
	}
}

static bool both_up(const struct side *a, const struct side *b)
{
	return (a->up && b->up) || a->closed || b->closed;
}

static bool got_msg(const struct side *a, const struct side *b)
{
	(void)a;
	return b->msgs > 0 || b->closed;
}

static bool both_closed(const struct side *a, const struct side *b)
{
	return a->closed && b->closed;
}

TEST(adopted_stream_carries_messages)
{
	struct evloop *l;
	struct side a = {0}, b = {0};
	struct conn_env ea, eb;
	static const uint8_t hi[] = {0x02, 'h', 'i'};
	int sv[2];

	REQUIRE(evloop_new(&l) == 0);
	ea = env_for(l, alice, bob);
	eb = env_for(l, bob, alice);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	REQUIRE(conn_adopt(&ea, &ops, &a, 1, sv[0], true, CONN_PATH_RELAYED, "the relay", &a.c) ==
		0);
	REQUIRE(conn_adopt(&eb, &ops, &b, 2, sv[1], false, CONN_PATH_RELAYED, "the relay", &b.c) ==
		0);
	CHECK(a.c->outbound && !b.c->outbound);
	CHECK(a.c->path == CONN_PATH_RELAYED);
	CHECK_STR_EQ(a.c->addr, "the relay");
	/* nothing is sent before the handshake is done */
	CHECK_INT_EQ(conn_send_data(a.c, hi, sizeof(hi)), -ENOTCONN);
	CHECK_INT_EQ(conn_room(a.c), 0);

	run_until(l, &a, &b, both_up);
	CHECK_INT_EQ(a.up, 1);
	CHECK_INT_EQ(b.up, 1);
	CHECK(a.c->state == CONN_UP && b.c->state == CONN_UP);
	CHECK(conn_room(a.c) > 1000);

	/* a DATA message after the HELLOs reaches the other side's on_msg */
	CHECK_INT_EQ(conn_send_data(a.c, hi, sizeof(hi)), 0);
	run_until(l, &a, &b, got_msg);
	CHECK_INT_EQ(b.msgs, 1);
	CHECK(b.msglen == sizeof(hi) && memcmp(b.msg, hi, sizeof(hi)) == 0);
	CHECK_INT_EQ(a.msgs, 0); /* the HELLO itself is conn's */

	/* a normal close: no error on our side, the peer's CLOSE reason on its side */
	conn_close(a.c, FRAME_CLOSE_NORMAL, "shutting down");
	CHECK_INT_EQ(a.closed, 1);
	CHECK(a.was_up);
	CHECK_STR_EQ(a.error, "");
	run_until(l, &a, &b, both_closed);
	CHECK_INT_EQ(b.closed, 1);
	CHECK(b.was_up);
	CHECK(strstr(b.error, "shutting down") != NULL);
	conn_close(a.c, FRAME_CLOSE_NORMAL, "again"); /* no-op */
	CHECK_INT_EQ(a.closed, 1);
	conn_free(a.c);
	conn_free(b.c);
	conn_free(NULL);
	evloop_free(l);
}

TEST(impostor_is_refused_with_a_reason)
{
	struct evloop *l;
	struct side a = {0}, b = {0};
	struct conn_env ea, eb;
	int sv[2];

	REQUIRE(evloop_new(&l) == 0);
	/* mallory dials bob, who expects alice */
	ea = env_for(l, mallory, bob);
	eb = env_for(l, bob, alice);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	REQUIRE(conn_adopt(&ea, &ops, &a, 1, sv[0], true, CONN_PATH_DIRECT, "[::1]:1", &a.c) == 0);
	REQUIRE(conn_adopt(&eb, &ops, &b, 2, sv[1], false, CONN_PATH_DIRECT, "[::1]:2", &b.c) == 0);
	run_until(l, &a, &b, both_closed);
	CHECK_INT_EQ(a.up + b.up, 0);
	CHECK_INT_EQ(b.closed, 1);
	CHECK(!b.was_up);
	CHECK(strstr(b.error, "refused a connection from [::1]:2") != NULL);
	CHECK_INT_EQ(a.closed, 1);
	CHECK(a.error[0] != '\0');
	conn_free(a.c);
	conn_free(b.c);
	evloop_free(l);
}

TEST(garbage_closes_only_that_connection)
{
	struct evloop *l;
	struct side b = {0};
	struct conn_env eb;
	int sv[2];

	REQUIRE(evloop_new(&l) == 0);
	eb = env_for(l, bob, alice);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	REQUIRE(conn_adopt(&eb, &ops, &b, 1, sv[1], false, CONN_PATH_DIRECT, "[::1]:3", &b.c) == 0);
	REQUIRE(send(sv[0], "GET / HTTP/1.1\r\n\r\n", 18, MSG_NOSIGNAL) == 18);
	for (int i = 0; i < 100 && !b.closed; i++)
		CHECK(evloop_run_once(l, clock_mono_ms() + 50) >= 0);
	CHECK_INT_EQ(b.closed, 1);
	CHECK(!b.was_up);
	CHECK(strstr(b.error, "refused a connection from [::1]:3") != NULL);
	close(sv[0]);
	conn_free(b.c);
	evloop_free(l);
}

int main(void)
{
	uint8_t seed[IDENTITY_SEED_LEN];

	if (sodium_init() < 0)
		return 99;
	memset(seed, 0xa1, sizeof(seed));
	if (identity_new(seed, &alice) < 0)
		return 99;
	memset(seed, 0xb0, sizeof(seed));
	if (identity_new(seed, &bob) < 0)
		return 99;
	memset(seed, 0x3e, sizeof(seed));
	if (identity_new(seed, &mallory) < 0)
		return 99;
	RUN(adopted_stream_carries_messages);
	RUN(impostor_is_refused_with_a_reason);
	RUN(garbage_closes_only_that_connection);
	identity_free(alice);
	identity_free(bob);
	identity_free(mallory);
	return tap_done();
}
