/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The splice rendezvous table (relay_pairing.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/map.h"
#include "relay_pairing.h"

struct relay_pairing {
	unsigned max_sessions, per_client;
	int64_t wait_ms;
	struct map sessions; /* token -> struct relay_session */
	struct map clients;  /* client key -> its count of halves (> 0) */
	unsigned waiting, paired;
	struct relay_session *wait_head, *wait_tail; /* WAITING, by deadline */
};

int relay_pairing_new(unsigned max_sessions, unsigned per_client, int64_t wait_ms,
		      struct relay_pairing **ret)
{
	struct relay_pairing *t;

	if (max_sessions < 1 || max_sessions > RELAY_PAIR_SESSIONS_MAX || wait_ms <= 0)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->max_sessions = max_sessions;
	t->per_client = per_client;
	t->wait_ms = wait_ms;
	map_init(&t->sessions, 0);
	map_init(&t->clients, 0);
	*ret = t;
	return 0;
}

void relay_pairing_free(struct relay_pairing *t)
{
	size_t pos = 0;
	void *v;

	if (!t)
		return;
	while (map_next(&t->sessions, &pos, NULL, NULL, &v)) {
		struct relay_session *s = v;
		for (int i = 0; i < 2; i++)
			if (s->half[i])
				s->half[i]->session = NULL;
		free(s);
	}
	map_done(&t->sessions);
	map_done(&t->clients); /* the values are counts */
	free(t);
}

static uintptr_t client_count(const struct relay_pairing *t, const struct relay_client_key *key)
{
	void **v = map_ref(&t->clients, key->b, sizeof(key->b));

	return v ? (uintptr_t)*v : 0;
}

static int client_add(struct relay_pairing *t, const struct relay_client_key *key)
{
	uintptr_t n = client_count(t, key);

	if (map_put(&t->clients, key->b, sizeof(key->b), (void *)(n + 1), NULL) < 0)
		return -ENOMEM;
	return 0;
}

static void client_del(struct relay_pairing *t, const struct relay_client_key *key)
{
	uintptr_t n = client_count(t, key);

	if (n > 1)
		*map_ref(&t->clients, key->b, sizeof(key->b)) = (void *)(n - 1);
	else if (n == 1)
		(void)map_del(&t->clients, key->b, sizeof(key->b), NULL);
}

static void wait_unlink(struct relay_pairing *t, struct relay_session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		t->wait_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		t->wait_tail = s->prev;
	s->prev = s->next = NULL;
}

/* Every wait lasts wait_ms, so appending keeps the list ordered. */
static void wait_append(struct relay_pairing *t, struct relay_session *s, int64_t now_ms)
{
	s->deadline_ms = now_ms + t->wait_ms;
	s->prev = t->wait_tail;
	s->next = NULL;
	if (t->wait_tail)
		t->wait_tail->next = s;
	else
		t->wait_head = s;
	t->wait_tail = s;
}

static void session_free(struct relay_pairing *t, struct relay_session *s)
{
	(void)map_del(&t->sessions, s->token, sizeof(s->token), NULL);
	if (s->state == RELAY_SESSION_WAITING) {
		wait_unlink(t, s);
		t->waiting--;
	} else {
		t->paired--;
	}
	free(s);
}

/* h stops being a member of its session (the session stays). */
static void half_detach(struct relay_pairing *t, struct relay_half *h)
{
	struct relay_session *s = h->session;

	client_del(t, &h->key);
	s->half[h->side - 1] = NULL;
	h->session = NULL;
}

static void half_attach(struct relay_session *s, struct relay_half *h)
{
	s->half[h->side - 1] = h;
	h->session = s;
}

enum relay_pair_result relay_pairing_join(struct relay_pairing *t,
					  const uint8_t token[static RELAY_PAIR_TOKEN_LEN],
					  struct relay_half *h, int64_t now_ms,
					  struct relay_half **ret_other)
{
	struct relay_session *s = NULL;
	struct relay_half *old;
	void *v;
	uintptr_t n;

	*ret_other = NULL;
	if (h->side != 1 && h->side != 2)
		return RELAY_PAIR_NOMEM; /* a programmer's error: the core checks the side */
	if (map_get(&t->sessions, token, RELAY_PAIR_TOKEN_LEN, &v))
		s = v;
	if (s && s->state == RELAY_SESSION_PAIRED)
		return RELAY_PAIR_BUSY;
	old = s ? s->half[h->side - 1] : NULL;
	/* the half h replaces gives its place back first */
	n = client_count(t, &h->key);
	if (old && memcmp(old->key.b, h->key.b, sizeof(h->key.b)) == 0)
		n--;
	if (t->per_client && n >= t->per_client)
		return RELAY_PAIR_PER_CLIENT;
	if (!s && t->waiting + t->paired >= t->max_sessions)
		return RELAY_PAIR_FULL;
	if (client_add(t, &h->key) < 0)
		return RELAY_PAIR_NOMEM;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || map_put(&t->sessions, token, RELAY_PAIR_TOKEN_LEN, s, NULL) < 0) {
			free(s);
			client_del(t, &h->key);
			return RELAY_PAIR_NOMEM;
		}
		memcpy(s->token, token, RELAY_PAIR_TOKEN_LEN);
		s->state = RELAY_SESSION_WAITING;
		t->waiting++;
		wait_append(t, s, now_ms);
		half_attach(s, h);
		return RELAY_PAIR_WAIT;
	}
	if (old) {
		/* the same side again: the newer connection waits in its place */
		half_detach(t, old);
		half_attach(s, h);
		wait_unlink(t, s);
		wait_append(t, s, now_ms);
		*ret_other = old;
		return RELAY_PAIR_WAIT;
	}
	/* the other side waits: pair */
	wait_unlink(t, s);
	t->waiting--;
	t->paired++;
	s->state = RELAY_SESSION_PAIRED;
	half_attach(s, h);
	*ret_other = s->half[2 - h->side];
	return RELAY_PAIR_PAIRED;
}

struct relay_half *relay_pairing_leave(struct relay_pairing *t, struct relay_half *h)
{
	struct relay_session *s = h->session;
	struct relay_half *other;

	if (!s)
		return NULL;
	half_detach(t, h);
	other = s->half[2 - h->side];
	if (!other)
		session_free(t, s);
	return other;
}

struct relay_half *relay_pairing_expired(struct relay_pairing *t, int64_t now_ms,
					 int64_t *ret_wake_ms)
{
	struct relay_session *s = t->wait_head;
	struct relay_half *h;

	if (!s || s->deadline_ms > now_ms) {
		*ret_wake_ms = s ? s->deadline_ms : INT64_MAX;
		return NULL;
	}
	h = s->half[0] ? s->half[0] : s->half[1];
	half_detach(t, h);
	session_free(t, s);
	return h;
}

unsigned relay_pairing_waiting(const struct relay_pairing *t)
{
	return t->waiting;
}

unsigned relay_pairing_paired(const struct relay_pairing *t)
{
	return t->paired;
}

unsigned relay_pairing_client_count(const struct relay_pairing *t,
				    const struct relay_client_key *key)
{
	return (unsigned)client_count(t, key);
}
