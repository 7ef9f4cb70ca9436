/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/map.h"
#include "relay_store.h"

_Static_assert(RELAY_TOKEN_WRITERS > 1, "evicting a writer leaves the token's chain");

struct relay_owner;

struct relay_record {
	uint8_t token[RELAY_TOKEN_LEN];
	uint8_t secret_hash[crypto_generichash_BYTES];
	uint8_t *blob;
	size_t blob_len;
	int64_t expires_ms;
	uint64_t written;	    /* s->writes when last stored: the LRU order */
	uint64_t client; /* keyed hash of who last stored it (client_id) */
	size_t heap_idx;	    /* position in s->heap */
	struct relay_record *hnext; /* the next record under the same token */
	struct relay_owner *owner;  /* who created it, or NULL */
	struct relay_record *oprev, *onext; /* the owner's records */
};

/* A client with live records. */
struct relay_owner {
	struct relay_client_key key;
	size_t count;
	struct relay_record *records;
};

struct relay_store {
	size_t max, count;
	size_t max_per_client; /* 0: no limit */
	struct map owners;     /* client key -> struct relay_owner *, owned here */
	struct map tokens;     /* token -> its records, chained through hnext */
	struct relay_record **heap; /* min-heap on expires_ms, max entries */
	uint64_t expired_total;
	uint64_t evicted_total;
	uint64_t writes; /* stores so far */
	uint8_t hkey[crypto_shorthash_KEYBYTES];
};

int relay_store_new(size_t max_records, size_t max_per_client, struct relay_store **ret)
{
	struct relay_store *s;

	if (max_records < 1 || max_records > RELAY_RECORDS_MAX || max_per_client > max_records)
		return -EINVAL;
	if (sodium_init() < 0)
		return -ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	map_init(&s->owners, 0);
	map_init(&s->tokens, 0);
	s->heap = calloc(max_records, sizeof(*s->heap));
	if (!s->heap) {
		relay_store_free(s);
		return -ENOMEM;
	}
	s->max = max_records;
	s->max_per_client = max_per_client;
	randombytes_buf(s->hkey, sizeof(s->hkey));
	*ret = s;
	return 0;
}

static void record_free(struct relay_record *r)
{
	if (!r)
		return;
	free(r->blob);
	sodium_memzero(r, sizeof(*r));
	free(r);
}

void relay_store_free(struct relay_store *s)
{
	void *o;

	if (!s)
		return;
	if (s->heap)
		for (size_t i = 0; i < s->count; i++)
			record_free(s->heap[i]);
	for (size_t pos = 0; map_next(&s->owners, &pos, NULL, NULL, &o);)
		free(o);
	map_done(&s->owners);
	map_done(&s->tokens);
	free(s->heap);
	free(s);
}

/* The records stored under token (a chain through hnext), or NULL. */
static struct relay_record *token_records(const struct relay_store *s, const uint8_t *token)
{
	void *v;

	return map_get(&s->tokens, token, RELAY_TOKEN_LEN, &v) ? v : NULL;
}

static struct relay_owner *owner_find(const struct relay_store *s,
				      const struct relay_client_key *key)
{
	void *v;

	return map_get(&s->owners, key->b, sizeof(key->b), &v) ? v : NULL;
}

/* Counts r for the client key; the client's entry is made on its first record. */
static int owner_add(struct relay_store *s, const struct relay_client_key *key,
		     struct relay_record *r)
{
	struct relay_owner *o = owner_find(s, key);

	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o || map_put(&s->owners, key->b, sizeof(key->b), o, NULL) < 0) {
			free(o);
			return -ENOMEM;
		}
		o->key = *key;
	}
	r->owner = o;
	r->oprev = NULL;
	r->onext = o->records;
	if (o->records)
		o->records->oprev = r;
	o->records = r;
	o->count++;
	return 0;
}

static void owner_remove(struct relay_store *s, struct relay_record *r)
{
	struct relay_owner *o = r->owner;

	if (!o)
		return;
	if (r->oprev)
		r->oprev->onext = r->onext;
	else
		o->records = r->onext;
	if (r->onext)
		r->onext->oprev = r->oprev;
	r->owner = NULL;
	if (--o->count > 0)
		return;
	(void)map_del(&s->owners, o->key.b, sizeof(o->key.b), NULL);
	free(o);
}

static void secret_hash(const uint8_t *secret, uint8_t out[static crypto_generichash_BYTES])
{
	crypto_generichash(out, crypto_generichash_BYTES, secret, RELAY_SECRET_LEN, NULL, 0);
}

/* ---- the expiry heap ---- */

static void heap_set(struct relay_store *s, size_t i, struct relay_record *r)
{
	s->heap[i] = r;
	r->heap_idx = i;
}

static void heap_up(struct relay_store *s, size_t i)
{
	struct relay_record *r = s->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (s->heap[parent]->expires_ms <= r->expires_ms)
			break;
		heap_set(s, i, s->heap[parent]);
		i = parent;
	}
	heap_set(s, i, r);
}

static void heap_down(struct relay_store *s, size_t i)
{
	struct relay_record *r = s->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->count)
			break;
		if (c + 1 < s->count && s->heap[c + 1]->expires_ms < s->heap[c]->expires_ms)
			c++;
		if (r->expires_ms <= s->heap[c]->expires_ms)
			break;
		heap_set(s, i, s->heap[c]);
		i = c;
	}
	heap_set(s, i, r);
}

static void heap_fix(struct relay_store *s, size_t i)
{
	if (i > 0 && s->heap[(i - 1) / 2]->expires_ms > s->heap[i]->expires_ms)
		heap_up(s, i);
	else
		heap_down(s, i);
}

/* Unlinks r from the table and the heap and frees it. */
static void record_remove(struct relay_store *s, struct relay_record *r)
{
	struct relay_record **pp =
		(struct relay_record **)map_ref(&s->tokens, r->token, RELAY_TOKEN_LEN);
	size_t i = r->heap_idx;

	while (pp && *pp && *pp != r)
		pp = &(*pp)->hnext;
	if (pp && *pp)
		*pp = r->hnext;
	if (!token_records(s, r->token))
		(void)map_del(&s->tokens, r->token, RELAY_TOKEN_LEN, NULL);
	owner_remove(s, r);
	s->count--;
	if (i != s->count) {
		heap_set(s, i, s->heap[s->count]);
		heap_fix(s, i);
	}
	s->heap[s->count] = NULL;
	record_free(r);
}

void relay_store_expire(struct relay_store *s, int64_t now_ms)
{
	while (s->count > 0 && s->heap[0]->expires_ms <= now_ms) {
		record_remove(s, s->heap[0]);
		s->expired_total++;
	}
}

size_t relay_store_count(struct relay_store *s, int64_t now_ms)
{
	relay_store_expire(s, now_ms);
	return s->count;
}

static bool token_eq(const struct relay_record *r, const uint8_t *token)
{
	return memcmp(r->token, token, RELAY_TOKEN_LEN) == 0;
}

/* The most recently written record under token, or NULL. */
static struct relay_record *record_newest(struct relay_store *s, const uint8_t *token)
{
	struct relay_record *best = NULL;

	for (struct relay_record *r = token_records(s, token); r; r = r->hnext)
		if (token_eq(r, token) && (!best || r->written > best->written))
			best = r;
	return best;
}

int relay_store_get(struct relay_store *s, const uint8_t token[static RELAY_TOKEN_LEN],
		    int64_t now_ms, const uint8_t **ret_blob, size_t *ret_len,
		    int64_t *ret_expires_ms)
{
	struct relay_record *r;

	relay_store_expire(s, now_ms);
	r = record_newest(s, token);
	if (!r)
		return -ENOENT;
	*ret_blob = r->blob;
	*ret_len = r->blob_len;
	*ret_expires_ms = r->expires_ms;
	return 0;
}

static void entry_fill(const struct relay_record *r, struct relay_store_entry *e)
{
	e->token = r->token;
	e->blob = r->blob;
	e->blob_len = r->blob_len;
	e->expires_ms = r->expires_ms;
}

size_t relay_store_get_all(struct relay_store *s, const uint8_t token[static RELAY_TOKEN_LEN],
			   int64_t now_ms, struct relay_store_entry *out, size_t max)
{
	const struct relay_record *found[RELAY_TOKEN_WRITERS];
	size_t n = 0;

	relay_store_expire(s, now_ms);
	for (struct relay_record *r = token_records(s, token); r; r = r->hnext) {
		size_t i;

		if (!token_eq(r, token) || n >= RELAY_TOKEN_WRITERS)
			continue;
		/* insertion sort, newest first: at most RELAY_TOKEN_WRITERS */
		for (i = n; i > 0 && found[i - 1]->written < r->written; i--)
			found[i] = found[i - 1];
		found[i] = r;
		n++;
	}
	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++)
		entry_fill(found[i], &out[i]);
	return n;
}

static bool secret_matches(const struct relay_record *r, const uint8_t *hash)
{
	return sodium_memcmp(hash, r->secret_hash, crypto_generichash_BYTES) == 0;
}

/* The client, as a SipHash of its key under the store's random key: the
 * store needs only equality, not the address. */
static uint64_t client_id(const struct relay_store *s, const struct relay_client_key *k)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, k->b, sizeof(k->b), s->hkey);
	memcpy(&v, h, sizeof(v));
	return v;
}

/*
 * The record a new writer from client pushes out of a full token: the least
 * recently written one of the client holding the most records there, the
 * newcomer counted for its client.
 */
static struct relay_record *evict_pick(struct relay_record *const *recs, size_t n,
				       uint64_t client)
{
	struct relay_record *victim = NULL;
	size_t victim_held = 0;

	for (size_t i = 0; i < n; i++) {
		size_t held = recs[i]->client == client ? 1 : 0;

		for (size_t j = 0; j < n; j++)
			held += recs[j]->client == recs[i]->client;
		if (!victim || held > victim_held ||
		    (held == victim_held && recs[i]->written < victim->written)) {
			victim = recs[i];
			victim_held = held;
		}
	}
	return victim;
}

int relay_store_put(struct relay_store *s, const uint8_t token[static RELAY_TOKEN_LEN],
		    const struct relay_client_key *client, const uint8_t *secret,
		    const uint8_t *blob, size_t blob_len, int64_t expires_ms, int64_t now_ms,
		    int64_t *ret_retry_ms)
{
	static const struct relay_client_key nobody;
	struct relay_record *mine[RELAY_TOKEN_WRITERS];
	struct relay_record *r, *own = NULL, **head;
	struct relay_owner *o;
	uint8_t h[crypto_generichash_BYTES];
	size_t n = 0;
	uint64_t who;
	uint8_t *copy;

	if (!blob || blob_len < 1 || blob_len > RELAY_BLOB_MAX || expires_ms <= now_ms)
		return -EINVAL;
	who = client_id(s, client ? client : &nobody);
	relay_store_expire(s, now_ms);
	if (secret)
		secret_hash(secret, h);
	for (r = token_records(s, token); r; r = r->hnext) {
		if (!token_eq(r, token))
			continue;
		if (secret && !own && secret_matches(r, h))
			own = r;
		if (n < RELAY_TOKEN_WRITERS)
			mine[n++] = r;
	}
	sodium_memzero(h, sizeof(h));
	if (own) {
		copy = malloc(blob_len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, blob, blob_len);
		free(own->blob);
		own->blob = copy;
		own->blob_len = blob_len;
		own->expires_ms = expires_ms;
		own->written = ++s->writes;
		own->client = who;
		heap_fix(s, own->heap_idx);
		return RELAY_STORE_REPLACED;
	}
	if (!secret)
		return n ? -EACCES : -ENOKEY;
	if (n < RELAY_TOKEN_WRITERS && s->count >= s->max) {
		/* heap[0] expires after now_ms: it survived the sweep above */
		*ret_retry_ms = s->heap[0]->expires_ms - now_ms;
		return -ENOSPC;
	}
	o = client && s->max_per_client ? owner_find(s, client) : NULL;
	if (o && o->count >= s->max_per_client) {
		int64_t first = o->records->expires_ms;
		for (r = o->records->onext; r; r = r->onext)
			if (r->expires_ms < first)
				first = r->expires_ms;
		/* every record of o expires after now_ms: they survived the sweep */
		*ret_retry_ms = first - now_ms;
		return -EDQUOT;
	}
	r = calloc(1, sizeof(*r));
	copy = malloc(blob_len);
	if (!r || !copy) {
		free(r);
		free(copy);
		return -ENOMEM;
	}
	/* The token's entry first (n > 0: it has one, and keeps it through the
	 * eviction below), so nothing can fail after the first change. */
	if (!n && map_put(&s->tokens, token, RELAY_TOKEN_LEN, NULL, NULL) < 0) {
		free(r);
		free(copy);
		return -ENOMEM;
	}
	if (client && owner_add(s, client, r) < 0) {
		if (!n)
			(void)map_del(&s->tokens, token, RELAY_TOKEN_LEN, NULL);
		free(r);
		free(copy);
		return -ENOMEM;
	}
	if (n >= RELAY_TOKEN_WRITERS) {
		record_remove(s, evict_pick(mine, n, who));
		s->evicted_total++;
	}
	memcpy(r->token, token, RELAY_TOKEN_LEN);
	secret_hash(secret, r->secret_hash);
	memcpy(copy, blob, blob_len);
	r->blob = copy;
	r->blob_len = blob_len;
	r->expires_ms = expires_ms;
	r->written = ++s->writes;
	r->client = who;
	head = (struct relay_record **)map_ref(&s->tokens, token, RELAY_TOKEN_LEN);
	r->hnext = *head; /* reserved above */
	*head = r;
	heap_set(s, s->count, r);
	s->count++;
	heap_up(s, s->count - 1);
	return RELAY_STORE_CREATED;
}

int relay_store_delete(struct relay_store *s, const uint8_t token[static RELAY_TOKEN_LEN],
		       const uint8_t *secret, int64_t now_ms)
{
	uint8_t h[crypto_generichash_BYTES];
	struct relay_record *r, *own = NULL;
	bool any = false;

	relay_store_expire(s, now_ms);
	if (secret)
		secret_hash(secret, h);
	for (r = token_records(s, token); r; r = r->hnext) {
		if (!token_eq(r, token))
			continue;
		any = true;
		if (secret && !own && secret_matches(r, h))
			own = r;
	}
	sodium_memzero(h, sizeof(h));
	if (!any)
		return -ENOENT;
	if (!own)
		return -EACCES;
	record_remove(s, own);
	return 0;
}

void relay_store_foreach(struct relay_store *s, int64_t now_ms, relay_store_visit_fn fn,
			 void *userdata)
{
	relay_store_expire(s, now_ms);
	for (size_t i = 0; i < s->count; i++) {
		const struct relay_record *r = s->heap[i];
		struct relay_store_entry e;

		entry_fill(r, &e);
		fn(&e, userdata);
	}
}

size_t relay_store_client_count(struct relay_store *s, const struct relay_client_key *client,
				int64_t now_ms)
{
	struct relay_owner *o;

	relay_store_expire(s, now_ms);
	o = owner_find(s, client);
	return o ? o->count : 0;
}

uint64_t relay_store_expired_total(const struct relay_store *s)
{
	return s->expired_total;
}

uint64_t relay_store_evicted_total(const struct relay_store *s)
{
	return s->evicted_total;
}
