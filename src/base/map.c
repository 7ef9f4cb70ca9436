/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/map.h"

_Static_assert(crypto_shorthash_KEYBYTES == 16, "the map's seed is a SipHash key");
_Static_assert(crypto_shorthash_BYTES == 8, "SipHash gives 64 bits");

#define MAP_CAP_MIN 16

struct map_slot {
	char *key; /* NULL: empty */
	size_t len;
	uint64_t hash;
	void *value;
};

void map_init(struct map *m, unsigned flags)
{
	memset(m, 0, sizeof(*m));
	if (!(flags & MAP_FIXED_SEED))
		randombytes_buf(m->seed, sizeof(m->seed));
}

void map_done(struct map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->v[i].key);
	free(m->v);
	m->v = NULL;
	m->cap = m->n = 0;
}

static uint64_t hash_key(const struct map *m, const void *key, size_t len)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, key, len, m->seed);
	memcpy(&v, h, sizeof(v));
	return v;
}

/* The slot holding key, or the empty slot where it would go. cap > 0. */
static size_t find(const struct map *m, const void *key, size_t len, uint64_t h)
{
	size_t mask = m->cap - 1, i = (size_t)h & mask;

	while (m->v[i].key && !(m->v[i].hash == h && m->v[i].len == len &&
				(len == 0 || memcmp(m->v[i].key, key, len) == 0)))
		i = (i + 1) & mask;
	return i;
}

static int grow(struct map *m)
{
	size_t cap = m->cap ? m->cap * 2 : MAP_CAP_MIN;
	struct map bigger = *m;

	if (cap < m->cap || cap > SIZE_MAX / sizeof(*m->v))
		return -ENOMEM;
	bigger.v = calloc(cap, sizeof(*bigger.v));
	if (!bigger.v)
		return -ENOMEM;
	bigger.cap = cap;
	for (size_t i = 0; i < m->cap; i++) {
		struct map_slot *s = &m->v[i];

		if (s->key)
			bigger.v[find(&bigger, s->key, s->len, s->hash)] = *s;
	}
	free(m->v);
	*m = bigger;
	return 0;
}

bool map_get(const struct map *m, const void *key, size_t len, void **ret_value)
{
	size_t i;

	if (!m->n)
		return false;
	i = find(m, key, len, hash_key(m, key, len));
	if (!m->v[i].key)
		return false;
	if (ret_value)
		*ret_value = m->v[i].value;
	return true;
}

void **map_ref(const struct map *m, const void *key, size_t len)
{
	size_t i;

	if (!m->n)
		return NULL;
	i = find(m, key, len, hash_key(m, key, len));
	return m->v[i].key ? &m->v[i].value : NULL;
}

int map_put(struct map *m, const void *key, size_t len, void *value, void **ret_old)
{
	uint64_t h = hash_key(m, key, len);
	struct map_slot *s;
	char *copy;

	if (m->cap) {
		s = &m->v[find(m, key, len, h)];
		if (s->key) {
			if (ret_old)
				*ret_old = s->value;
			s->value = value;
			return 0;
		}
	}
	if (len == SIZE_MAX)
		return -ENOMEM;
	copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, key, len);
	copy[len] = '\0';
	if ((m->n + 1) * 4 > m->cap * 3 && grow(m) < 0) {
		free(copy);
		return -ENOMEM;
	}
	s = &m->v[find(m, key, len, h)];
	*s = (struct map_slot){.key = copy, .len = len, .hash = h, .value = value};
	m->n++;
	return 1;
}

bool map_del(struct map *m, const void *key, size_t len, void **ret_value)
{
	size_t mask, i, j;

	if (!m->n)
		return false;
	mask = m->cap - 1;
	i = find(m, key, len, hash_key(m, key, len));
	if (!m->v[i].key)
		return false;
	if (ret_value)
		*ret_value = m->v[i].value;
	free(m->v[i].key);
	m->v[i].key = NULL;
	m->n--;
	/* Backward shift: pull later entries of the run into the hole when
	 * their home slot allows it, so lookups never need tombstones. */
	for (j = (i + 1) & mask; m->v[j].key; j = (j + 1) & mask) {
		size_t home = (size_t)m->v[j].hash & mask;

		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->v[i] = m->v[j];
			m->v[j].key = NULL;
			i = j;
		}
	}
	return true;
}

bool map_next(const struct map *m, size_t *pos, const void **ret_key, size_t *ret_len,
	      void **ret_value)
{
	for (size_t i = *pos; i < m->cap; i++) {
		const struct map_slot *s = &m->v[i];

		if (!s->key)
			continue;
		if (ret_key)
			*ret_key = s->key;
		if (ret_len)
			*ret_len = s->len;
		if (ret_value)
			*ret_value = s->value;
		*pos = i + 1;
		return true;
	}
	*pos = m->cap;
	return false;
}
