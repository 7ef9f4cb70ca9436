/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_LAZY_H
#define TANDEM_SYNC_LAZY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sync/index.h"

/*
 * Lazy (on-demand) content, the index side: one row per remote file the
 * engine placed as a sparse placeholder instead of fetching it, keyed by
 * path, with the content hash it stands for, its size, and a presence
 * bitmap of its 1 MiB blocks (bit i of byte i / 8: block i is on disk and
 * verified). A row whose bitmap is full is a complete file that stays
 * tracked so the cache limit can evict it again.
 *
 * A trigger drops the row when the path's entry changes content (hash or
 * size), is deleted, or goes away, in the same transaction: a local edit
 * or a new remote version is never mistaken for the placeholder's data.
 * index_rename moves the row with the file (the table always exists) and
 * counts that (index_lazy_moves), so the engine knows to reload its copy.
 * The engine checks the row's hash against the entry anyway.
 *
 * Threads: like the index, the engine's loop thread only.
 */

struct lazy_row {
	const char *path; /* NUL-terminated, valid during the callback only */
	size_t path_len;
	uint8_t hash[INDEX_HASH_LEN];
	uint64_t size;
	const uint8_t *bits; /* lazy_bits_len(size) bytes */
	size_t bits_len;
};

/* Bytes of the presence bitmap of a file of size bytes. */
size_t lazy_bits_len(uint64_t size);

/* Creates the table and trigger when missing. Returns 0 or -errno. */
int index_lazy_init(struct index *idx) __attribute__((warn_unused_result));

/* Stores (replaces) path's row. bits_len must be lazy_bits_len(size). 0 or -errno. */
int index_lazy_put(struct index *idx, const char *path, size_t len,
		   const uint8_t hash[static INDEX_HASH_LEN], uint64_t size, const uint8_t *bits,
		   size_t bits_len) __attribute__((warn_unused_result));

/* Drops path's row (none is fine). Returns 0 or -errno. */
int index_lazy_del(struct index *idx, const char *path, size_t len)
	__attribute__((warn_unused_result));

/*
 * Fills *ret with path's row; ret->bits is a malloc'd copy the caller
 * frees, ret->path is path. Returns 0, -ENOENT, -EBADMSG (damaged row).
 */
int index_lazy_get(struct index *idx, const char *path, size_t len, struct lazy_row *ret,
		   uint8_t **ret_bits) __attribute__((warn_unused_result));

/* A rename moves from's lazy row (if any) to to, replacing one there (index
 * renames and the engine's local moves both call it). 0 or -errno. */
int index_lazy_move(struct index *idx, const char *from, size_t from_len, const char *to,
		    size_t to_len) __attribute__((warn_unused_result));

/* How many lazy rows renames have moved since the index was opened. */
uint64_t index_lazy_moves(const struct index *idx);

/* Calls fn for every row (path order). fn returns 0 to go on, else stops
 * with that value. fn must not change the index. Returns 0, fn's value, -errno. */
int index_lazy_foreach(struct index *idx, int (*fn)(const struct lazy_row *r, void *ud), void *ud)
	__attribute__((warn_unused_result));

#endif
