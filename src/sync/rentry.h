/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_RENTRY_H
#define TANDEM_SYNC_RENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sync/conflict.h"
#include "sync/index.h"
#include "sync/msg.h"
#include "sync/vv.h"

#define RENTRY_ALLOC_OVERHEAD 16 /* counted per string allocated */

/* A remote entry, held until its batch is applied (compact: no 8 KiB arrays). */
struct rentry {
	char *path; /* NUL-terminated copy, passed path_check() */
	size_t path_len;
	uint8_t kind; /* enum sync_kind */
	bool deleted;
	uint16_t mode;
	uint64_t size;
	int64_t mtime_ns;
	uint8_t hash[SYNC_HASH_LEN];
	char *target; /* symlinks: NUL-terminated, or NULL */
	size_t target_len;
	struct vv vv;
	uint64_t seq;
	bool defer; /* tried again after the batch's deletions */
	bool carry; /* kept for the next batch (apply_batch before INDEX_DONE) */
};

/* Frees r's strings (r itself is the caller's). */
void rentry_free(struct rentry *r);
/* A deep copy. 0 or -ENOMEM (dst then holds nothing). */
int rentry_copy(struct rentry *dst, const struct rentry *src);
/* r as an index entry (no stat identity, seq 0). */
void rentry_to_index(const struct rentry *r, struct index_entry *ret);
/* x as a version for conflict.h, made by device dev. */
void entry_to_version(const struct index_entry *x, const uint8_t dev[static VV_DEVICE_LEN],
		      struct conflict_version *ret);
/* The string bytes counted for an entry with these lengths (target_len 0:
 * none), allocation overhead included. */
size_t rentry_str_bytes(size_t path_len, size_t target_len);

#endif
