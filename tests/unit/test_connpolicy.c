/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdint.h>

#include "daemon/connpolicy.h"
#include "tap.h"

/* A peer that accepts, we accept too, we are the lower fingerprint; nothing
 * up, nothing under way, waiting since t=1000. */
static struct connpolicy_state base_state(enum connpolicy_relay relay)
{
	return (struct connpolicy_state){
		.relay = relay,
		.have_rec = true,
		.peer_accepts = true,
		.we_accept = true,
		.self_lower = true,
		.waiting_since_ms = 1000,
		.fallback_ms = 3000,
		.relay_after_ms = 5000,
	};
}

TEST(who_dials_first)
{
	/* peer accepts: the lower fingerprint dials, or the side that accepts nothing */
	CHECK(connpolicy_dial_first(true, true, true));
	CHECK(!connpolicy_dial_first(true, true, false));
	CHECK(connpolicy_dial_first(true, false, false));
	CHECK(connpolicy_dial_first(true, false, true));
	/* peer accepts nothing: never first */
	CHECK(!connpolicy_dial_first(false, true, true));
	CHECK(!connpolicy_dial_first(false, false, true));
	/* exactly one of two peers that both accept is first */
	for (int lower = 0; lower < 2; lower++)
		CHECK(connpolicy_dial_first(true, true, lower) !=
		      connpolicy_dial_first(true, true, !lower));
}

TEST(which_connection_to_keep)
{
	struct connpolicy_cand out = {.outbound = true, .path = CONN_PATH_DIRECT};
	struct connpolicy_cand in = {.outbound = false, .path = CONN_PATH_DIRECT};
	struct connpolicy_cand rel_out = {.outbound = true, .path = CONN_PATH_RELAYED};
	struct connpolicy_cand rel_in = {.outbound = false, .path = CONN_PATH_RELAYED};

	/* the same side made both: the newer */
	CHECK(connpolicy_keep_new(&out, &out, true));
	CHECK(connpolicy_keep_new(&in, &in, false));
	CHECK(connpolicy_keep_new(&rel_in, &rel_in, true));
	/* one each: the one made by the lower fingerprint */
	CHECK(!connpolicy_keep_new(&out, &in, true)); /* we are lower, old is ours */
	CHECK(connpolicy_keep_new(&in, &out, true));  /* we are lower, new is ours */
	CHECK(connpolicy_keep_new(&out, &in, false)); /* peer is lower, new is its */
	CHECK(!connpolicy_keep_new(&in, &out, false));
	/* both sides agree: our "outbound" is the peer's "inbound" */
	for (int lower = 0; lower < 2; lower++)
		for (int old_out = 0; old_out < 2; old_out++) {
			struct connpolicy_cand o = {.outbound = old_out};
			struct connpolicy_cand n = {.outbound = !old_out};
			struct connpolicy_cand po = {.outbound = !old_out};
			struct connpolicy_cand pn = {.outbound = old_out};
			CHECK(connpolicy_keep_new(&o, &n, lower) ==
			      connpolicy_keep_new(&po, &pn, !lower));
		}
	/* direct beats relayed, whoever made them and whichever is newer */
	CHECK(connpolicy_keep_new(&rel_out, &in, true));
	CHECK(connpolicy_keep_new(&rel_in, &out, false));
	CHECK(!connpolicy_keep_new(&in, &rel_out, true));
	CHECK(!connpolicy_keep_new(&out, &rel_in, false));
}

TEST(retry_backs_off_with_jitter)
{
	struct backoff b = {200, 10000};

	CHECK(connpolicy_retry_at(&b, 5000, 0, 0) == 5100);
	CHECK(connpolicy_retry_at(&b, 5000, 1, 0) == 5200);
	CHECK(connpolicy_retry_at(&b, 5000, 50, 0) == 10000);
	for (uint32_t r = 0; r < 100000; r += 7919) {
		uint64_t t = connpolicy_retry_at(&b, 5000, 3, r * 2654435761u);
		CHECK(t >= 5000 + 800 && t <= 5000 + 1600);
	}
}

TEST(direct_only_like_today)
{
	struct connpolicy_state s = base_state(CONNPOLICY_RELAY_NEVER);
	struct connpolicy_action a;

	/* designated dialer: at once */
	a = connpolicy_next(&s, 2000);
	CHECK_INT_EQ(a.verb, CONNPOLICY_DIAL);
	CHECK_INT_EQ(a.path, CONN_PATH_DIRECT);
	CHECK_INT_EQ(a.at_ms, 2000);
	/* ... but not before the backoff */
	s.backoff_until_ms = 2500;
	CHECK_INT_EQ(connpolicy_next(&s, 2000).at_ms, 2500);
	s.backoff_until_ms = 0;
	/* the other side: fallback_ms after it started waiting */
	s.self_lower = false;
	a = connpolicy_next(&s, 2000);
	CHECK_INT_EQ(a.verb, CONNPOLICY_DIAL);
	CHECK_INT_EQ(a.at_ms, 4000);
	s.backoff_until_ms = 9000;
	CHECK_INT_EQ(connpolicy_next(&s, 2000).at_ms, 9000);
	/* never at 0 (0 means "none planned" to the caller) */
	s = base_state(CONNPOLICY_RELAY_NEVER);
	CHECK_INT_EQ(connpolicy_next(&s, 0).at_ms, 1);
	/* nothing to do: connected, a round under way, no record, stopping */
	s = base_state(CONNPOLICY_RELAY_NEVER);
	s.active = true;
	CHECK_INT_EQ(connpolicy_next(&s, 2000).verb, CONNPOLICY_WAIT);
	CHECK(connpolicy_next(&s, 2000).at_ms == UINT64_MAX);
	s = base_state(CONNPOLICY_RELAY_NEVER);
	s.dialing = true;
	CHECK_INT_EQ(connpolicy_next(&s, 2000).verb, CONNPOLICY_WAIT);
	s = base_state(CONNPOLICY_RELAY_NEVER);
	s.have_rec = false;
	CHECK_INT_EQ(connpolicy_next(&s, 2000).verb, CONNPOLICY_WAIT);
	s = base_state(CONNPOLICY_RELAY_NEVER);
	s.stopping = true;
	CHECK_INT_EQ(connpolicy_next(&s, 2000).verb, CONNPOLICY_WAIT);
	/* the peer accepts nothing: we wait for it to dial ... */
	s = base_state(CONNPOLICY_RELAY_NEVER);
	s.peer_accepts = false;
	CHECK_INT_EQ(connpolicy_next(&s, 2000).verb, CONNPOLICY_WAIT);
	/* ... and when we accept nothing either, there is no way */
	s.we_accept = false;
	CHECK_INT_EQ(connpolicy_next(&s, 2000).verb, CONNPOLICY_NO_WAY);
	s.active = true; /* an old connection is still up: nothing to say yet */
	CHECK_INT_EQ(connpolicy_next(&s, 2000).verb, CONNPOLICY_WAIT);
}

TEST(fallback_to_relayed)
{
	struct connpolicy_state s = base_state(CONNPOLICY_RELAY_FALLBACK);
	struct connpolicy_action a;

	/* direct first */
	a = connpolicy_next(&s, 2000);
	CHECK_INT_EQ(a.path, CONN_PATH_DIRECT);
	CHECK_INT_EQ(a.at_ms, 2000);
	/* a direct round is under way (or failing): relayed relay_after_ms
	 * after we started waiting */
	s.dialing = true;
	a = connpolicy_next(&s, 2000);
	CHECK_INT_EQ(a.verb, CONNPOLICY_DIAL);
	CHECK_INT_EQ(a.path, CONN_PATH_RELAYED);
	CHECK_INT_EQ(a.at_ms, 6000);
	/* backoff between direct rounds: the earlier of the two */
	s.dialing = false;
	s.backoff_until_ms = 8000;
	a = connpolicy_next(&s, 2000);
	CHECK_INT_EQ(a.path, CONN_PATH_RELAYED);
	CHECK_INT_EQ(a.at_ms, 6000);
	s.backoff_until_ms = 6000; /* a tie: direct */
	a = connpolicy_next(&s, 2000);
	CHECK_INT_EQ(a.path, CONN_PATH_DIRECT);
	s.backoff_until_ms = 8000;
	/* a relayed attempt failed: its own backoff */
	s.relay_backoff_until_ms = 12000;
	a = connpolicy_next(&s, 7000);
	CHECK_INT_EQ(a.path, CONN_PATH_DIRECT);
	CHECK_INT_EQ(a.at_ms, 8000);
	s.dialing = true;
	a = connpolicy_next(&s, 7000);
	CHECK_INT_EQ(a.path, CONN_PATH_RELAYED);
	CHECK_INT_EQ(a.at_ms, 12000);
	/* a relayed attempt under way: only direct */
	s.relay_dialing = true;
	CHECK_INT_EQ(connpolicy_next(&s, 7000).verb, CONNPOLICY_WAIT);
	/* no record yet: no relayed attempt either (the rendezvous token needs
	 * the peer's public key, which comes with its record) */
	s = base_state(CONNPOLICY_RELAY_FALLBACK);
	s.have_rec = false;
	CHECK_INT_EQ(connpolicy_next(&s, 2000).verb, CONNPOLICY_WAIT);
	s.relay = CONNPOLICY_RELAY_ALWAYS;
	CHECK_INT_EQ(connpolicy_next(&s, 2000).verb, CONNPOLICY_WAIT);
	/* neither accepts: relayed at once, no "no way" */
	s = base_state(CONNPOLICY_RELAY_FALLBACK);
	s.peer_accepts = s.we_accept = false;
	a = connpolicy_next(&s, 2000);
	CHECK_INT_EQ(a.verb, CONNPOLICY_DIAL);
	CHECK_INT_EQ(a.path, CONN_PATH_RELAYED);
	CHECK_INT_EQ(a.at_ms, 2000);
	/* only the peer accepts nothing: it may still dial us, so wait first */
	s.we_accept = true;
	a = connpolicy_next(&s, 2000);
	CHECK_INT_EQ(a.path, CONN_PATH_RELAYED);
	CHECK_INT_EQ(a.at_ms, 6000);
}

/* Each path's own time, whichever connpolicy_next names first. */
TEST(each_path_due)
{
	struct connpolicy_state s = base_state(CONNPOLICY_RELAY_FALLBACK);

	/* a direct round under way: direct none, relayed at its time */
	s.dialing = true;
	CHECK(connpolicy_due(&s, 2000, CONN_PATH_DIRECT) == UINT64_MAX);
	CHECK_INT_EQ(connpolicy_due(&s, 2000, CONN_PATH_RELAYED), 6000);
	/* both due: both times, not only the earlier */
	s.dialing = false;
	s.backoff_until_ms = 9000;
	CHECK_INT_EQ(connpolicy_due(&s, 2000, CONN_PATH_DIRECT), 9000);
	CHECK_INT_EQ(connpolicy_due(&s, 2000, CONN_PATH_RELAYED), 6000);
	/* relayed and up: direct goes on, relayed none */
	s.active = true;
	s.active_path = CONN_PATH_RELAYED;
	CHECK_INT_EQ(connpolicy_due(&s, 2000, CONN_PATH_DIRECT), 9000);
	CHECK(connpolicy_due(&s, 2000, CONN_PATH_RELAYED) == UINT64_MAX);
	/* never: no relayed time; stopping: nothing */
	s.active = false;
	s.relay = CONNPOLICY_RELAY_NEVER;
	CHECK(connpolicy_due(&s, 2000, CONN_PATH_RELAYED) == UINT64_MAX);
	s.relay = CONNPOLICY_RELAY_FALLBACK;
	s.stopping = true;
	CHECK(connpolicy_due(&s, 2000, CONN_PATH_DIRECT) == UINT64_MAX);
	CHECK(connpolicy_due(&s, 2000, CONN_PATH_RELAYED) == UINT64_MAX);
}

TEST(climb_back_to_direct)
{
	struct connpolicy_state s = base_state(CONNPOLICY_RELAY_FALLBACK);
	struct connpolicy_action a;

	/* relayed and up: keep trying direct, never another relayed */
	s.active = true;
	s.active_path = CONN_PATH_RELAYED;
	s.backoff_until_ms = 20000;
	a = connpolicy_next(&s, 15000);
	CHECK_INT_EQ(a.verb, CONNPOLICY_DIAL);
	CHECK_INT_EQ(a.path, CONN_PATH_DIRECT);
	CHECK_INT_EQ(a.at_ms, 20000);
	s.dialing = true;
	CHECK_INT_EQ(connpolicy_next(&s, 15000).verb, CONNPOLICY_WAIT);
	/* direct and up: nothing */
	s.dialing = false;
	s.active_path = CONN_PATH_DIRECT;
	CHECK_INT_EQ(connpolicy_next(&s, 15000).verb, CONNPOLICY_WAIT);
}

TEST(always_relayed)
{
	struct connpolicy_state s = base_state(CONNPOLICY_RELAY_ALWAYS);
	struct connpolicy_action a;

	a = connpolicy_next(&s, 2000);
	CHECK_INT_EQ(a.verb, CONNPOLICY_DIAL);
	CHECK_INT_EQ(a.path, CONN_PATH_RELAYED);
	CHECK_INT_EQ(a.at_ms, 2000);
	s.relay_backoff_until_ms = 2500;
	CHECK_INT_EQ(connpolicy_next(&s, 2000).at_ms, 2500);
	/* up (relayed): no direct attempts */
	s.active = true;
	s.active_path = CONN_PATH_RELAYED;
	CHECK_INT_EQ(connpolicy_next(&s, 2000).verb, CONNPOLICY_WAIT);
	CHECK_STR_EQ(conn_path_name(CONN_PATH_DIRECT), "direct");
	CHECK_STR_EQ(conn_path_name(CONN_PATH_RELAYED), "relayed");
}

int main(void)
{
	RUN(who_dials_first);
	RUN(which_connection_to_keep);
	RUN(each_path_due);
	RUN(retry_backs_off_with_jitter);
	RUN(direct_only_like_today);
	RUN(fallback_to_relayed);
	RUN(climb_back_to_direct);
	RUN(always_relayed);
	return tap_done();
}
