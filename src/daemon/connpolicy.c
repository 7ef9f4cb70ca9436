/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "daemon/connpolicy.h"

const char *conn_path_name(enum conn_path p)
{
	return p == CONN_PATH_RELAYED ? "relayed" : "direct";
}

bool connpolicy_dial_first(bool peer_accepts, bool we_accept, bool self_lower)
{
	return peer_accepts && (!we_accept || self_lower);
}

bool connpolicy_keep_new(const struct connpolicy_cand *old, const struct connpolicy_cand *cand_new,
			 bool self_lower)
{
	if (old->path != cand_new->path)
		return cand_new->path == CONN_PATH_DIRECT;
	if (old->outbound == cand_new->outbound)
		return true;
	/* keep the one made by the lower fingerprint */
	return old->outbound != self_lower;
}

uint64_t connpolicy_retry_at(const struct backoff *b, uint64_t now, unsigned failures, uint32_t rnd)
{
	return now + backoff_delay_ms(b, failures, 0, rnd);
}

static uint64_t at_least(uint64_t t, uint64_t floor)
{
	return t < floor ? floor : t;
}

/* When the next direct round starts, or UINT64_MAX for none. */
static uint64_t direct_at(const struct connpolicy_state *s, uint64_t now)
{
	uint64_t t;

	if (s->relay == CONNPOLICY_RELAY_ALWAYS || !s->have_rec || s->dialing || !s->peer_accepts)
		return UINT64_MAX;
	if (s->active && s->active_path == CONN_PATH_DIRECT)
		return UINT64_MAX;
	t = connpolicy_dial_first(s->peer_accepts, s->we_accept, s->self_lower)
		    ? now
		    : s->waiting_since_ms + s->fallback_ms;
	t = at_least(t, s->backoff_until_ms);
	return t ? t : 1;
}

/* When the next relayed attempt starts, or UINT64_MAX for none. */
static uint64_t relayed_at(const struct connpolicy_state *s, uint64_t now)
{
	bool direct_impossible = s->have_rec && !s->peer_accepts && !s->we_accept;
	uint64_t t;

	if (s->relay == CONNPOLICY_RELAY_NEVER || !s->have_rec || s->active || s->relay_dialing)
		return UINT64_MAX;
	if (s->relay == CONNPOLICY_RELAY_ALWAYS || direct_impossible)
		t = now;
	else
		t = s->waiting_since_ms + s->relay_after_ms;
	t = at_least(t, s->relay_backoff_until_ms);
	return t ? t : 1;
}

uint64_t connpolicy_due(const struct connpolicy_state *s, uint64_t now, enum conn_path path)
{
	if (s->stopping)
		return UINT64_MAX;
	return path == CONN_PATH_DIRECT ? direct_at(s, now) : relayed_at(s, now);
}

struct connpolicy_action connpolicy_next(const struct connpolicy_state *s, uint64_t now)
{
	struct connpolicy_action a = {
		.verb = CONNPOLICY_WAIT, .path = CONN_PATH_DIRECT, .at_ms = UINT64_MAX};
	uint64_t d, r;

	if (s->stopping)
		return a;
	d = direct_at(s, now);
	r = relayed_at(s, now);
	if (d == UINT64_MAX && r == UINT64_MAX) {
		if (!s->active && !s->dialing && !s->relay_dialing && s->have_rec &&
		    !s->peer_accepts && !s->we_accept && s->relay == CONNPOLICY_RELAY_NEVER)
			a.verb = CONNPOLICY_NO_WAY;
		return a;
	}
	a.verb = CONNPOLICY_DIAL;
	if (d <= r) {
		a.at_ms = d;
	} else {
		a.path = CONN_PATH_RELAYED;
		a.at_ms = r;
	}
	return a;
}
