/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Relayed connections without sockets: the rendezvous table's decisions
 * (pair, wait, replace, refuse, expire, caps) and the core's checks of a
 * GET /v1/splice request (docs/RELAY.md, "Relayed connections").
 */
#include <errno.h>
#include <stdint.h>

#include <jansson.h>

#include "base/encoding.h"
#include "relay_core.h"
#include "relay_pairing.h"
#include "tap.h"

static void key_set(struct relay_half *h, uint8_t client, int side)
{
	memset(h, 0, sizeof(*h));
	h->key.b[0] = 4;
	h->key.b[1] = client;
	h->side = side;
}

TEST(pair_two_sides)
{
	struct relay_pairing *t = NULL;
	struct relay_half a, b, c, *other = NULL;
	uint8_t tok[32];

	memset(tok, 7, sizeof(tok));
	REQUIRE(relay_pairing_new(4, 0, 1000, &t) == 0);
	key_set(&a, 1, 1);
	key_set(&b, 2, 2);
	key_set(&c, 3, 1);
	CHECK_INT_EQ(relay_pairing_join(t, tok, &a, 0, &other), RELAY_PAIR_WAIT);
	CHECK(other == NULL);
	CHECK_INT_EQ(relay_pairing_waiting(t), 1);
	CHECK_INT_EQ(relay_pairing_join(t, tok, &b, 10, &other), RELAY_PAIR_PAIRED);
	CHECK(other == &a);
	CHECK(a.session && a.session == b.session);
	CHECK_INT_EQ(relay_pairing_waiting(t), 0);
	CHECK_INT_EQ(relay_pairing_paired(t), 1);
	/* a third connection, of either side, is refused while the two are spliced */
	CHECK_INT_EQ(relay_pairing_join(t, tok, &c, 20, &other), RELAY_PAIR_BUSY);
	CHECK(c.session == NULL);
	c.side = 2;
	CHECK_INT_EQ(relay_pairing_join(t, tok, &c, 20, &other), RELAY_PAIR_BUSY);
	/* a paired session is never given up by the wait deadline */
	int64_t wake = 0;
	CHECK(relay_pairing_expired(t, 1000000, &wake) == NULL);
	CHECK(wake == INT64_MAX);
	/* the session lasts until both have left */
	CHECK(relay_pairing_leave(t, &a) == &b);
	CHECK_INT_EQ(relay_pairing_paired(t), 1);
	CHECK_INT_EQ(relay_pairing_join(t, tok, &c, 30, &other), RELAY_PAIR_BUSY);
	CHECK(relay_pairing_leave(t, &b) == NULL);
	CHECK_INT_EQ(relay_pairing_paired(t), 0);
	CHECK(relay_pairing_leave(t, &b) == NULL); /* no-op */
	/* the token is free again */
	CHECK_INT_EQ(relay_pairing_join(t, tok, &c, 40, &other), RELAY_PAIR_WAIT);
	CHECK(relay_pairing_leave(t, &c) == NULL);
	CHECK_INT_EQ(relay_pairing_waiting(t), 0);
	relay_pairing_free(t);
}

TEST(same_side_replaces)
{
	struct relay_pairing *t = NULL;
	struct relay_half a, a2, b, *other = NULL;
	uint8_t tok[32];
	int64_t wake = 0;

	memset(tok, 1, sizeof(tok));
	REQUIRE(relay_pairing_new(4, 1, 1000, &t) == 0);
	key_set(&a, 1, 2);
	key_set(&a2, 1, 2); /* the same client reconnects: its limit of 1 is not in the way */
	key_set(&b, 2, 1);
	CHECK_INT_EQ(relay_pairing_join(t, tok, &a, 0, &other), RELAY_PAIR_WAIT);
	CHECK_INT_EQ(relay_pairing_join(t, tok, &a2, 500, &other), RELAY_PAIR_WAIT);
	CHECK(other == &a);
	CHECK(a.session == NULL);
	CHECK_INT_EQ(relay_pairing_client_count(t, &a.key), 1);
	CHECK_INT_EQ(relay_pairing_waiting(t), 1);
	/* the newer one waits a full wait time from its own arrival */
	CHECK(relay_pairing_expired(t, 1000, &wake) == NULL);
	CHECK_INT_EQ(wake, 1500);
	CHECK_INT_EQ(relay_pairing_join(t, tok, &b, 1200, &other), RELAY_PAIR_PAIRED);
	CHECK(other == &a2);
	(void)relay_pairing_leave(t, &a2);
	(void)relay_pairing_leave(t, &b);
	CHECK_INT_EQ(relay_pairing_client_count(t, &a.key), 0);
	relay_pairing_free(t);
}

TEST(wait_deadline)
{
	struct relay_pairing *t = NULL;
	struct relay_half a, b, c, *other = NULL;
	uint8_t t1[32], t2[32];
	int64_t wake = 0;

	memset(t1, 1, sizeof(t1));
	memset(t2, 2, sizeof(t2));
	REQUIRE(relay_pairing_new(4, 0, 1000, &t) == 0);
	key_set(&a, 1, 1);
	key_set(&b, 2, 1);
	key_set(&c, 3, 2);
	CHECK(relay_pairing_expired(t, 0, &wake) == NULL);
	CHECK(wake == INT64_MAX);
	CHECK_INT_EQ(relay_pairing_join(t, t1, &a, 0, &other), RELAY_PAIR_WAIT);
	CHECK_INT_EQ(relay_pairing_join(t, t2, &b, 300, &other), RELAY_PAIR_WAIT);
	CHECK(relay_pairing_expired(t, 999, &wake) == NULL);
	CHECK_INT_EQ(wake, 1000);
	CHECK(relay_pairing_expired(t, 1000, &wake) == &a);
	CHECK(a.session == NULL);
	CHECK(relay_pairing_expired(t, 1000, &wake) == NULL);
	CHECK_INT_EQ(wake, 1300);
	/* after its deadline the token is new: the late side waits in turn */
	CHECK_INT_EQ(relay_pairing_join(t, t1, &c, 1100, &other), RELAY_PAIR_WAIT);
	CHECK(other == NULL);
	CHECK(relay_pairing_expired(t, 5000, &wake) == &b);
	CHECK(relay_pairing_expired(t, 5000, &wake) == &c);
	CHECK_INT_EQ(relay_pairing_waiting(t), 0);
	relay_pairing_free(t);
}

TEST(caps)
{
	struct relay_pairing *t = NULL;
	struct relay_half h[6], *other = NULL;
	uint8_t tok[6][32];

	REQUIRE(relay_pairing_new(3, 2, 1000, &t) == 0);
	for (int i = 0; i < 6; i++)
		memset(tok[i], i + 1, 32);
	/* per client: two halves of client 1, the third refused */
	key_set(&h[0], 1, 1);
	key_set(&h[1], 1, 1);
	key_set(&h[2], 1, 2);
	CHECK_INT_EQ(relay_pairing_join(t, tok[0], &h[0], 0, &other), RELAY_PAIR_WAIT);
	CHECK_INT_EQ(relay_pairing_join(t, tok[1], &h[1], 0, &other), RELAY_PAIR_WAIT);
	CHECK_INT_EQ(relay_pairing_join(t, tok[0], &h[2], 0, &other), RELAY_PAIR_PER_CLIENT);
	CHECK(h[2].session == NULL);
	CHECK_INT_EQ(relay_pairing_client_count(t, &h[0].key), 2);
	/* in total: 3 sessions; a 4th token is refused, pairing into one is not */
	key_set(&h[3], 2, 1);
	key_set(&h[4], 3, 1);
	key_set(&h[5], 4, 2);
	CHECK_INT_EQ(relay_pairing_join(t, tok[2], &h[3], 0, &other), RELAY_PAIR_WAIT);
	CHECK_INT_EQ(relay_pairing_join(t, tok[3], &h[4], 0, &other), RELAY_PAIR_FULL);
	CHECK_INT_EQ(relay_pairing_join(t, tok[0], &h[5], 0, &other), RELAY_PAIR_PAIRED);
	CHECK(other == &h[0]);
	/* a half that leaves gives its client's place back */
	(void)relay_pairing_leave(t, &h[1]);
	CHECK_INT_EQ(relay_pairing_client_count(t, &h[0].key), 1);
	CHECK_INT_EQ(relay_pairing_join(t, tok[3], &h[4], 0, &other), RELAY_PAIR_WAIT);
	/* no per-client limit with 0 */
	relay_pairing_free(t);
	REQUIRE(relay_pairing_new(10, 0, 1000, &t) == 0);
	for (int i = 0; i < 6; i++) {
		key_set(&h[i], 9, 1);
		CHECK_INT_EQ(relay_pairing_join(t, tok[i], &h[i], 0, &other), RELAY_PAIR_WAIT);
	}
	relay_pairing_free(t);
	CHECK_INT_EQ(relay_pairing_new(0, 0, 1000, &t), -EINVAL);
	CHECK_INT_EQ(relay_pairing_new(1, 0, 0, &t), -EINVAL);
}

/* ---- the core's checks of GET /v1/splice ---- */

static struct relay_core *core;

static void handle(const char *method, const char *auth, const char *upgrade,
		   const char *connection, const char *side, struct relay_response *resp)
{
	struct relay_request req = {
		.method = method,
		.path = "/v1/splice",
		.authorization = auth,
		.upgrade = upgrade,
		.connection = connection,
		.splice_side = side,
		.now_ms = 1000,
	};

	relay_core_handle(core, &req, resp);
}

static bool error_is(struct relay_response *resp, int status, const char *code)
{
	json_t *root = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
	const char *got = root ? json_string_value(json_object_get(root, "error")) : NULL;
	bool ok = resp->status == status && !resp->splice && got && strcmp(got, code) == 0;

	if (!ok)
		printf("#   got %d %s, want %d %s\n", resp->status, got ? got : "-", status, code);
	json_decref(root);
	relay_core_response_done(resp);
	return ok;
}

TEST(core_splice_checks)
{
	struct relay_core_config cfg;
	struct relay_response resp;
	uint8_t tok[32];
	char auth[80], b64[64];

	relay_core_config_init(&cfg);
	cfg.rate = 0;
	REQUIRE(relay_core_new(&cfg, 0, &core) == 0);
	memset(tok, 0x5a, sizeof(tok));
	b64url_encode(tok, sizeof(tok), b64, sizeof(b64));
	snprintf(auth, sizeof(auth), "Bearer %s", b64);

	handle("GET", auth, "tandem-splice/1", "Upgrade", "1", &resp);
	CHECK_INT_EQ(resp.status, 101);
	CHECK(resp.splice);
	CHECK_INT_EQ(resp.splice_side, 1);
	CHECK(memcmp(resp.splice_token, tok, 32) == 0);
	relay_core_response_done(&resp);
	/* tokens in lists and any case, as HTTP allows */
	handle("GET", auth, "foo/2, Tandem-Splice/1", "keep-alive, upgrade", "2", &resp);
	CHECK(resp.splice && resp.splice_side == 2);
	relay_core_response_done(&resp);

	handle("GET", auth, NULL, "Upgrade", "1", &resp);
	CHECK(resp.upgrade && strcmp(resp.upgrade, "tandem-splice/1") == 0);
	CHECK(error_is(&resp, 426, "upgrade_required"));
	handle("GET", auth, "websocket", "Upgrade", "1", &resp);
	CHECK(error_is(&resp, 426, "upgrade_required"));
	handle("GET", auth, "tandem-splice/1", NULL, "1", &resp);
	CHECK(error_is(&resp, 426, "upgrade_required"));
	handle("GET", auth, "tandem-splice/10", "Upgrade", "1", &resp);
	CHECK(error_is(&resp, 426, "upgrade_required"));
	handle("GET", NULL, "tandem-splice/1", "Upgrade", "1", &resp);
	CHECK(resp.www_authenticate);
	CHECK(error_is(&resp, 401, "unauthorized"));
	handle("GET", "Bearer AAAA", "tandem-splice/1", "Upgrade", "1", &resp);
	CHECK(error_is(&resp, 401, "unauthorized"));
	handle("GET", auth, "tandem-splice/1", "Upgrade", NULL, &resp);
	CHECK(error_is(&resp, 400, "invalid_side"));
	handle("GET", auth, "tandem-splice/1", "Upgrade", "3", &resp);
	CHECK(error_is(&resp, 400, "invalid_side"));
	handle("GET", auth, "tandem-splice/1", "Upgrade", "12", &resp);
	CHECK(error_is(&resp, 400, "invalid_side"));
	handle("POST", auth, "tandem-splice/1", "Upgrade", "1", &resp);
	CHECK(resp.allow && strcmp(resp.allow, "GET") == 0);
	CHECK(error_is(&resp, 405, "method_not_allowed"));
	struct relay_request req = {
		.method = "GET",
		.path = "/v1/splice",
		.authorization = auth,
		.upgrade = "tandem-splice/1",
		.connection = "Upgrade",
		.splice_side = "1",
		.duplicate_header = true,
	};
	relay_core_handle(core, &req, &resp);
	CHECK(error_is(&resp, 400, "duplicate_header"));
	req.duplicate_header = false;
	req.content_length_known = true;
	req.content_length = 5;
	relay_core_handle(core, &req, &resp);
	CHECK(error_is(&resp, 400, "unexpected_body"));
	relay_core_free(core);
}

int main(void)
{
	RUN(pair_two_sides);
	RUN(same_side_replaces);
	RUN(wait_deadline);
	RUN(caps);
	RUN(core_splice_checks);
	return tap_done();
}
