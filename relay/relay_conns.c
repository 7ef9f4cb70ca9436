/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "relay_conns.h"

#define CLIENT_BUCKETS 4096 /* a power of 2 */
#define GROUPS_MAX 64
#define RESERVE_MAX 64

struct client {
	struct relay_client_key key;
	unsigned n;
	struct client *next;
};

struct relay_conns {
	unsigned per_client, group_max, reserve, ngroups;
	unsigned open[GROUPS_MAX];	/* tracked connections per group */
	struct relay_conn *head, *tail; /* by since_ms */
	struct client *clients[CLIENT_BUCKETS];
	uint8_t hkey[crypto_shorthash_KEYBYTES];
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
	randombytes_buf(t->hkey, sizeof(t->hkey));
	*ret = t;
	return 0;
}

void relay_conns_free(struct relay_conns *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < CLIENT_BUCKETS; i++)
		while (t->clients[i]) {
			struct client *c = t->clients[i];
			t->clients[i] = c->next;
			free(c);
		}
	free(t);
}

static struct client **client_slot(struct relay_conns *t, const struct relay_client_key *key)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;
	struct client **pp;

	crypto_shorthash(h, key->b, sizeof(key->b), t->hkey);
	memcpy(&v, h, sizeof(v));
	pp = &t->clients[v & (CLIENT_BUCKETS - 1)];
	while (*pp && memcmp((*pp)->key.b, key->b, sizeof(key->b)) != 0)
		pp = &(*pp)->next;
	return pp;
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
	struct client **pp = client_slot(t, &c->key);

	if (*pp && t->per_client && (*pp)->n >= t->per_client)
		return -EUSERS;
	if (!*pp) {
		*pp = calloc(1, sizeof(**pp));
		if (!*pp)
			return -ENOMEM;
		(*pp)->key = c->key;
	}
	(*pp)->n++;
	c->counted = true;
	return 0;
}

static void client_del(struct relay_conns *t, struct relay_conn *c)
{
	struct client **pp = client_slot(t, &c->key);
	struct client *cl = *pp;

	if (!c->counted || !cl)
		return;
	c->counted = false;
	if (--cl->n > 0)
		return;
	*pp = cl->next;
	free(cl);
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
	struct client **pp = client_slot(t, key);

	return *pp ? (*pp)->n : 0;
}

unsigned relay_conns_group_count(const struct relay_conns *t, unsigned group)
{
	return group < t->ngroups ? t->open[group] : 0;
}
