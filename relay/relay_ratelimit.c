/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "relay_ratelimit.h"

/*
 * Tokens are kept in fixed point: one request costs RL_UNIT units and a
 * bucket gains `per_minute` units per millisecond, so per_minute requests
 * a minute come back exactly, with integer arithmetic only.
 */
#define RL_UNIT 60000
#define RL_NONE UINT32_MAX
#define RL_RATE_MAX 1000000u

struct rl_entry {
	struct relay_client_key key;
	int64_t units;	     /* tokens * RL_UNIT, 0..capacity */
	int64_t last_ms;     /* last refill */
	uint32_t hnext;	     /* hash chain, or free list */
	uint32_t prev, next; /* LRU list: head is the most recently seen */
};

struct relay_ratelimit {
	int64_t rate;	  /* units per ms */
	int64_t capacity; /* units */
	int64_t full_ms;  /* time to refill an empty bucket */
	size_t max, count;
	uint32_t mask; /* buckets - 1 */
	uint32_t *buckets;
	struct rl_entry *pool;
	uint32_t free_head;
	uint32_t lru_head, lru_tail;
	uint8_t hkey[crypto_shorthash_KEYBYTES];
};

static uint32_t key_bucket(const struct relay_ratelimit *rl, const struct relay_client_key *key)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, key->b, sizeof(key->b), rl->hkey);
	memcpy(&v, h, sizeof(v));
	return (uint32_t)(v & rl->mask);
}

int relay_ratelimit_new(unsigned per_minute, unsigned burst, size_t max_clients,
			struct relay_ratelimit **ret)
{
	struct relay_ratelimit *rl;
	size_t nb = 16;

	if (per_minute < 1 || per_minute > RL_RATE_MAX || burst < 1 || burst > RL_RATE_MAX ||
	    max_clients < 1 || max_clients > RELAY_RATELIMIT_CLIENTS_MAX)
		return -EINVAL;
	if (sodium_init() < 0)
		return -ENOMEM;
	while (nb < max_clients)
		nb <<= 1;
	rl = calloc(1, sizeof(*rl));
	if (!rl)
		return -ENOMEM;
	rl->buckets = malloc(nb * sizeof(*rl->buckets));
	rl->pool = calloc(max_clients, sizeof(*rl->pool));
	if (!rl->buckets || !rl->pool) {
		relay_ratelimit_free(rl);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nb; i++)
		rl->buckets[i] = RL_NONE;
	for (size_t i = 0; i < max_clients; i++)
		rl->pool[i].hnext = i + 1 < max_clients ? (uint32_t)(i + 1) : RL_NONE;
	rl->free_head = 0;
	rl->lru_head = rl->lru_tail = RL_NONE;
	rl->mask = (uint32_t)(nb - 1);
	rl->max = max_clients;
	rl->rate = per_minute;
	rl->capacity = (int64_t)burst * RL_UNIT;
	rl->full_ms = (rl->capacity + rl->rate - 1) / rl->rate;
	randombytes_buf(rl->hkey, sizeof(rl->hkey));
	*ret = rl;
	return 0;
}

void relay_ratelimit_free(struct relay_ratelimit *rl)
{
	if (!rl)
		return;
	free(rl->buckets);
	free(rl->pool);
	free(rl);
}

static void lru_unlink(struct relay_ratelimit *rl, uint32_t i)
{
	struct rl_entry *e = &rl->pool[i];

	if (e->prev != RL_NONE)
		rl->pool[e->prev].next = e->next;
	else
		rl->lru_head = e->next;
	if (e->next != RL_NONE)
		rl->pool[e->next].prev = e->prev;
	else
		rl->lru_tail = e->prev;
	e->prev = e->next = RL_NONE;
}

static void lru_push_head(struct relay_ratelimit *rl, uint32_t i)
{
	struct rl_entry *e = &rl->pool[i];

	e->prev = RL_NONE;
	e->next = rl->lru_head;
	if (rl->lru_head != RL_NONE)
		rl->pool[rl->lru_head].prev = i;
	rl->lru_head = i;
	if (rl->lru_tail == RL_NONE)
		rl->lru_tail = i;
}

static void entry_remove(struct relay_ratelimit *rl, uint32_t i)
{
	uint32_t *pp = &rl->buckets[key_bucket(rl, &rl->pool[i].key)];

	while (*pp != RL_NONE && *pp != i)
		pp = &rl->pool[*pp].hnext;
	if (*pp == i)
		*pp = rl->pool[i].hnext;
	lru_unlink(rl, i);
	rl->pool[i].hnext = rl->free_head;
	rl->free_head = i;
	rl->count--;
}

/* Drops entries that have been quiet long enough to be full again. The LRU
 * tail is the longest quiet, so this stops at the first busy entry. */
static void sweep(struct relay_ratelimit *rl, int64_t now_ms)
{
	while (rl->lru_tail != RL_NONE) {
		const struct rl_entry *e = &rl->pool[rl->lru_tail];
		if (now_ms < e->last_ms || now_ms - e->last_ms < rl->full_ms)
			break;
		entry_remove(rl, rl->lru_tail);
	}
}

static uint32_t entry_find(struct relay_ratelimit *rl, const struct relay_client_key *key,
			   uint32_t bucket)
{
	for (uint32_t i = rl->buckets[bucket]; i != RL_NONE; i = rl->pool[i].hnext)
		if (memcmp(rl->pool[i].key.b, key->b, sizeof(key->b)) == 0)
			return i;
	return RL_NONE;
}

int64_t relay_ratelimit_take(struct relay_ratelimit *rl, const struct relay_client_key *key,
			     int64_t now_ms)
{
	uint32_t bucket = key_bucket(rl, key), i;
	struct rl_entry *e;

	sweep(rl, now_ms);
	i = entry_find(rl, key, bucket);
	if (i == RL_NONE) {
		if (rl->free_head == RL_NONE)
			entry_remove(rl, rl->lru_tail);
		i = rl->free_head;
		e = &rl->pool[i];
		rl->free_head = e->hnext;
		memcpy(&e->key, key, sizeof(*key));
		e->units = rl->capacity;
		e->last_ms = now_ms;
		e->hnext = rl->buckets[bucket];
		rl->buckets[bucket] = i;
		rl->count++;
	} else {
		e = &rl->pool[i];
		lru_unlink(rl, i);
		if (now_ms > e->last_ms) {
			int64_t elapsed = now_ms - e->last_ms;
			if (elapsed >= rl->full_ms)
				e->units = rl->capacity;
			else
				e->units += elapsed * rl->rate;
			if (e->units > rl->capacity)
				e->units = rl->capacity;
			e->last_ms = now_ms;
		}
	}
	lru_push_head(rl, i);
	if (e->units >= RL_UNIT) {
		e->units -= RL_UNIT;
		return 0;
	}
	return (RL_UNIT - e->units + rl->rate - 1) / rl->rate;
}

size_t relay_ratelimit_count(struct relay_ratelimit *rl, int64_t now_ms)
{
	sweep(rl, now_ms);
	return rl->count;
}
