/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/punch.h"
#include "tap.h"

/* Both records carry an observed address, no direct path since T0. */
#define T0 1800000000000ull /* a multiple of every slot length */

static struct punch_facts facts(uint64_t now)
{
	return (struct punch_facts){
		.have_port = true,
		.peer_observed = true,
		.family_ok = true,
		.now_ms = now,
		.since_ms = T0,
	};
}

TEST(when_not_to_punch)
{
	struct punch_facts f = facts(T0 + 100);

	CHECK(punch_next_slot(&f) != 0);
	f.have_port = false;
	CHECK_INT_EQ(punch_next_slot(&f), 0);
	f = facts(T0 + 100);
	f.peer_observed = false; /* an older peer, or no relay answer yet */
	CHECK_INT_EQ(punch_next_slot(&f), 0);
	f = facts(T0 + 100);
	f.family_ok = false;
	CHECK_INT_EQ(punch_next_slot(&f), 0);
	f = facts(T0 + 100);
	f.direct_up = true;
	CHECK_INT_EQ(punch_next_slot(&f), 0);
	f = facts(T0 + 100);
	f.running = true;
	CHECK_INT_EQ(punch_next_slot(&f), 0);
	f = facts(T0 + 100);
	f.stopping = true;
	CHECK_INT_EQ(punch_next_slot(&f), 0);
}

TEST(slots)
{
	struct punch_facts f;

	/* dialing first: no slot in the first PUNCH_AFTER_MS */
	f = facts(T0 + 700);
	CHECK_INT_EQ(punch_next_slot(&f), T0 + PUNCH_SLOT_MS);
	f = facts(T0 + 700);
	f.since_ms = T0 - PUNCH_AFTER_MS + 1;
	CHECK_INT_EQ(punch_next_slot(&f), T0 + PUNCH_SLOT_MS);
	/* a slot that began just now is joined: start at once */
	f = facts(T0 + 700);
	f.since_ms = T0 - PUNCH_AFTER_MS;
	CHECK_INT_EQ(punch_next_slot(&f), T0);
	/* later in a slot: the next one */
	f = facts(T0 + PUNCH_JOIN_MS);
	CHECK_INT_EQ(punch_next_slot(&f), T0 + PUNCH_SLOT_MS);
	f = facts(T0 + 9999);
	CHECK_INT_EQ(punch_next_slot(&f), T0 + PUNCH_SLOT_MS);
	/* never the same slot twice */
	f = facts(T0 + 700);
	f.since_ms = T0 - PUNCH_AFTER_MS;
	f.last_slot_ms = T0;
	CHECK_INT_EQ(punch_next_slot(&f), T0 + PUNCH_SLOT_MS);
	f = facts(T0 + PUNCH_SLOT_MS + 100);
	f.last_slot_ms = T0 + PUNCH_SLOT_MS;
	CHECK_INT_EQ(punch_next_slot(&f), T0 + 2 * PUNCH_SLOT_MS);
	/* two clocks 1.2 s apart: when the one behind starts a slot, the one
	 * ahead (which may have started it already) is still in it, or starts
	 * it then */
	for (uint64_t t = T0 + 3000; t < T0 + 50000; t += 333) {
		struct punch_facts a = facts(t);
		uint64_t sa = punch_next_slot(&a);
		struct punch_facts b = facts(sa + 1200);
		CHECK_INT_EQ(punch_next_slot(&b), sa);
	}
	/* after the first minute only every PUNCH_SLOW_SLOT_MS */
	f = facts(T0 + PUNCH_EAGER_MS + 2000);
	f.last_slot_ms = T0 + PUNCH_EAGER_MS;
	CHECK_INT_EQ(punch_next_slot(&f), T0 + 2 * PUNCH_SLOW_SLOT_MS);
	CHECK_INT_EQ(punch_next_slot(&f) % PUNCH_SLOW_SLOT_MS, 0);
	/* ... and a slow slot under way is joined */
	f = facts(T0 + 2 * PUNCH_SLOW_SLOT_MS + 500);
	f.last_slot_ms = T0 + PUNCH_EAGER_MS;
	CHECK_INT_EQ(punch_next_slot(&f), T0 + 2 * PUNCH_SLOW_SLOT_MS);
	/* the peer counts "since" from a later moment: the slow slots are
	 * still shared */
	for (uint64_t since = T0; since < T0 + 60000; since += 7000) {
		f = facts(T0 + 5 * PUNCH_SLOW_SLOT_MS + 3000);
		f.since_ms = since;
		f.last_slot_ms = T0 + 5 * PUNCH_SLOW_SLOT_MS;
		CHECK_INT_EQ(punch_next_slot(&f) % PUNCH_SLOW_SLOT_MS, 0);
	}
}

/* The punch port is reserved, and an attempt binds it next to the
 * reservation (SO_REUSEADDR; the relay client's requests do the same). */
TEST(port_and_attempt_connects)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);
	struct record_addr to = {.family = 4, .ip = {127, 0, 0, 1}};
	struct punch_attempt a;
	uint16_t port = 0;
	int hold, lfd, fd = -1;
	enum punch_poll st = PUNCH_RUNNING;

	hold = punch_port_open(&port);
	REQUIRE(hold >= 0);
	CHECK(port != 0);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(lfd, 4) == 0);
	REQUIRE(getsockname(lfd, (struct sockaddr *)&sin, &sl) == 0);
	to.port = ntohs(sin.sin_port);

	punch_attempt_start(&a, port, &to, 1000, PUNCH_WINDOW_MS);
	CHECK(a.running);
	for (uint64_t now = 1000; now < 1000 + PUNCH_WINDOW_MS && st == PUNCH_RUNNING;
	     now += PUNCH_POLL_MS) {
		usleep(1000);
		st = punch_attempt_poll(&a, now, &fd);
	}
	CHECK_INT_EQ(st, PUNCH_CONNECTED);
	REQUIRE(fd >= 0);
	/* from the punch port */
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	REQUIRE(getsockname(fd, (struct sockaddr *)&me, &ml) == 0);
	CHECK_INT_EQ(ntohs(me.sin_port), port);
	CHECK_INT_EQ(punch_attempt_deadline(&a), UINT64_MAX);
	close(fd);
	close(lfd);
	close(hold);
}

/* Nobody answers: the attempt retries with fresh sockets and gives up when
 * its window ends, whatever happened. */
TEST(attempt_gives_up_at_window_end)
{
	struct record_addr to = {.family = 4, .ip = {127, 0, 0, 1}};
	struct punch_attempt a;
	uint16_t port = 0, closed_port = 0;
	int hold, other, fd = -1;
	enum punch_poll st = PUNCH_RUNNING;
	uint64_t now = 5000, gave_up = 0;

	hold = punch_port_open(&port);
	REQUIRE(hold >= 0);
	other = punch_port_open(&closed_port); /* bound, not listening: refused */
	REQUIRE(other >= 0);
	to.port = closed_port;
	punch_attempt_start(&a, port, &to, now, 2000);
	while (st == PUNCH_RUNNING && now < 20000) {
		uint64_t d = punch_attempt_deadline(&a);
		CHECK(d <= 5000 + 2000);
		now = d > now ? d : now + 1;
		usleep(200);
		st = punch_attempt_poll(&a, now, &fd);
		gave_up = now;
	}
	CHECK_INT_EQ(st, PUNCH_GAVE_UP);
	CHECK(gave_up <= 5000 + 2000);
	CHECK(gave_up >= 5000 + 2000 - PUNCH_POLL_MS);
	CHECK(a.tries > 1);
	CHECK_INT_EQ(a.last_error, -ECONNREFUSED);
	CHECK_INT_EQ(a.fd, -1);
	CHECK_INT_EQ(punch_attempt_deadline(&a), UINT64_MAX);
	/* stop is idempotent */
	punch_attempt_stop(&a);
	close(hold);
	close(other);
}

int main(void)
{
	RUN(when_not_to_punch);
	RUN(slots);
	RUN(port_and_attempt_connects);
	RUN(attempt_gives_up_at_window_end);
	return tap_done();
}
