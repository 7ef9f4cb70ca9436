/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/map.h"
#include "relay_conns.h"

#define GROUPS_MAX 64
#define RESERVE_MAX 64

struct relay_conns {
	unsigned per_client, group_max, reserve, ngroups;
	unsigned open[GROUPS_MAX];	/* tracked connections per group */
	struct relay_conn *head, *tail; /* by since_ms */
	struct map clients;		/* client key -> its count of connections (> 0) */
};

unsigned relay_conns_reserve(unsigned group_max)
{
	unsigned r = group_max / 8;

	return r > RESERVE_MAX ? RESERVE_MAX : r;
}

int relay_conns_new(unsigned per_client, unsigned group_max, unsigned ngroups,
		    struct relay_conns **ret)
{
	struct relay_conns *t;

	if (group_max < 1 || ngroups < 1 || ngroups > GROUPS_MAX)
		return -EINVAL;
	if (sodium_init() < 0)
		return -ENOMEM;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->per_client = per_client;
	t->group_max = group_max;
	t->reserve = relay_conns_reserve(group_max);
	t->ngroups = ngroups;
	map_init(&t->clients, 0);
	*ret = t;
	return 0;
}

void relay_conns_free(struct relay_conns *t)
{
	if (!t)
		return;
	map_done(&t->clients); /* the values are counts, not pointers */
	free(t);
}

/* The number of connections counted for key (0: none). */
static uintptr_t client_count(const struct relay_conns *t, const struct relay_client_key *key)
{
	void **v = map_ref(&t->clients, key->b, sizeof(key->b));

	return v ? (uintptr_t)*v : 0;
}

static void list_append(struct relay_conns *t, struct relay_conn *c)
{
	c->next = NULL;
	c->prev = t->tail;
	if (t->tail)
		t->tail->next = c;
	else
		t->head = c;
	t->tail = c;
}

static void list_unlink(struct relay_conns *t, struct relay_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		t->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		t->tail = c->prev;
	c->prev = c->next = NULL;
}

/* Counts c for its client; -EUSERS when the client is at its limit. */
static int client_add(struct relay_conns *t, struct relay_conn *c)
{
	uintptr_t n = client_count(t, &c->key);

	if (n && t->per_client && n >= t->per_client)
		return -EUSERS;
	if (map_put(&t->clients, c->key.b, sizeof(c->key.b), (void *)(n + 1), NULL) < 0)
		return -ENOMEM;
	c->counted = true;
	return 0;
}

static void client_del(struct relay_conns *t, struct relay_conn *c)
{
	uintptr_t n = client_count(t, &c->key);

	if (!c->counted || !n)
		return;
	c->counted = false;
	if (n > 1)
		*map_ref(&t->clients, c->key.b, sizeof(c->key.b)) = (void *)(n - 1);
	else
		(void)map_del(&t->clients, c->key.b, sizeof(c->key.b), NULL);
}

int relay_conns_open(struct relay_conns *t, struct relay_conn *c, int64_t now_ms,
		     struct relay_conn **ret_evict)
{
	int r;

	*ret_evict = NULL;
	if (c->group >= t->ngroups)
		c->group = t->ngroups - 1;
	c->since_ms = now_ms;
	c->counted = c->answering = c->closing = false;
	list_append(t, c);
	t->open[c->group]++;
	r = client_add(t, c);
	if (r < 0) {
		c->closing = true;
		return r;
	}
	if (t->reserve && t->open[c->group] > t->group_max - t->reserve) {
		for (struct relay_conn *o = t->head; o; o = o->next) {
			if (o != c && o->group == c->group && !o->answering && !o->closing) {
				o->closing = true;
				*ret_evict = o;
				break;
			}
		}
	}
	return 0;
}

void relay_conns_close(struct relay_conns *t, struct relay_conn *c)
{
	client_del(t, c);
	list_unlink(t, c);
	if (t->open[c->group] > 0)
		t->open[c->group]--;
}

void relay_conns_answering(struct relay_conns *t, struct relay_conn *c)
{
	(void)t;
	c->answering = true;
}

void relay_conns_done(struct relay_conns *t, struct relay_conn *c, int64_t now_ms)
{
	list_unlink(t, c);
	c->since_ms = now_ms;
	c->answering = false;
	list_append(t, c);
}

struct relay_conn *relay_conns_expired(struct relay_conns *t, int64_t now_ms, int64_t deadline_ms,
				       int64_t *ret_wake_ms)
{
	for (struct relay_conn *c = t->head; c; c = c->next) {
		if (c->answering || c->closing)
			continue;
		if (c->since_ms + deadline_ms <= now_ms) {
			c->closing = true;
			return c;
		}
		*ret_wake_ms = c->since_ms + deadline_ms;
		return NULL;
	}
	/* anything opened from now on starts reading at now_ms or later */
	*ret_wake_ms = now_ms + deadline_ms;
	return NULL;
}

unsigned relay_conns_client_count(struct relay_conns *t, const struct relay_client_key *key)
{
	return (unsigned)client_count(t, key);
}

unsigned relay_conns_group_count(const struct relay_conns *t, unsigned group)
{
	return group < t->ngroups ? t->open[group] : 0;
}
