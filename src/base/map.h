/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_BASE_MAP_H
#define TANDEM_BASE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The one hash map: keys are byte strings (any length, any bytes), values
 * are pointers. Open addressing with linear probing and backward-shift
 * deletion; the table doubles at 3/4 full and never shrinks (map_done
 * frees it).
 *
 * Ownership: the map owns a copy of every key (NUL-terminated after its
 * len bytes, so a string key reads back as a C string); it never owns the
 * values. map_put and map_del hand a replaced or removed value back, and
 * map_done frees only the keys and the table: free the values first
 * (walk with map_next).
 *
 * Keys are hashed with SipHash (libsodium's crypto_shorthash) under a
 * random per-map key, so keys a peer or client chooses cannot be made to
 * collide. MAP_FIXED_SEED uses a fixed key instead, for code that must
 * run the same way every time (iteration order follows the hash).
 *
 * Not thread-safe: the owner locks if it shares a map.
 */

struct map_slot;

struct map {
	struct map_slot *v;
	size_t cap; /* 0 or a power of two */
	size_t n;
	uint8_t seed[16];
};

enum {
	MAP_FIXED_SEED = 1U << 0,
};

/* An empty map (allocates nothing). flags: 0 or MAP_FIXED_SEED. */
void map_init(struct map *m, unsigned flags);
/* Frees the keys and the table, not the values; m is empty afterwards. */
void map_done(struct map *m);

static inline size_t map_count(const struct map *m)
{
	return m->n;
}

/* true and *ret_value (if not NULL) when key is there. */
bool map_get(const struct map *m, const void *key, size_t len, void **ret_value);
/* Where key's value is stored, to read or change in place, or NULL when key
 * is not there. Valid until the next map_put or map_del. */
void **map_ref(const struct map *m, const void *key, size_t len);
/*
 * Sets key to value. Returns 1 when the key was added, 0 when it was there
 * (its old value goes to *ret_old if not NULL), -ENOMEM (map unchanged).
 */
int map_put(struct map *m, const void *key, size_t len, void *value, void **ret_old)
	__attribute__((warn_unused_result));
/* Removes key. Returns true and its value in *ret_value (if not NULL), or
 * false when it was not there. */
bool map_del(struct map *m, const void *key, size_t len, void **ret_value);

/*
 * Walks the entries: start with *pos = 0; each call returns true with the
 * next entry (key copy, its length, value; any ret_ may be NULL), false at
 * the end. The map must not change during a walk.
 */
bool map_next(const struct map *m, size_t *pos, const void **ret_key, size_t *ret_len,
	      void **ret_value);

#endif
