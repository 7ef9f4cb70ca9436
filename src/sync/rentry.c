/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The peer's entries as the engine holds them (rentry.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sync/rentry.h"

void rentry_free(struct rentry *r)
{
	free(r->path);
	free(r->target);
	r->path = r->target = NULL;
}

int rentry_copy(struct rentry *dst, const struct rentry *src)
{
	*dst = *src;
	dst->path = strdup(src->path);
	dst->target = src->target ? strdup(src->target) : NULL;
	if (!dst->path || (src->target && !dst->target)) {
		rentry_free(dst);
		return -ENOMEM;
	}
	return 0;
}

void rentry_to_index(const struct rentry *r, struct index_entry *x)
{
	memset(x, 0, offsetof(struct index_entry, target));
	memcpy(x->path, r->path, r->path_len + 1);
	x->path_len = r->path_len;
	x->type = (enum index_type)r->kind;
	x->mode = r->mode;
	x->size = r->kind == SYNC_KIND_DIR ? 0 : r->size;
	x->mtime_ns = r->mtime_ns;
	x->has_hash = r->kind != SYNC_KIND_DIR;
	memcpy(x->hash, r->hash, INDEX_HASH_LEN);
	x->target_len = 0;
	x->target[0] = '\0';
	if (r->kind == SYNC_KIND_SYMLINK && r->target) {
		memcpy(x->target, r->target, r->target_len + 1);
		x->target_len = r->target_len;
	}
	x->deleted = r->deleted;
	x->vv = r->vv;
	x->seq = 0;
	x->dev = x->ino = 0;
	x->ctime_ns = 0;
}

void entry_to_version(const struct index_entry *x, const uint8_t dev[static VV_DEVICE_LEN],
		      struct conflict_version *v)
{
	memset(v, 0, sizeof(*v));
	memcpy(v->device, dev, CONFLICT_DEVICE_LEN);
	v->mtime_ns = x->mtime_ns;
	v->size = x->size;
	memcpy(v->hash, x->hash, CONFLICT_HASH_LEN);
	v->deleted = x->deleted;
}

size_t rentry_str_bytes(size_t path_len, size_t target_len)
{
	size_t n = path_len + 1 + RENTRY_ALLOC_OVERHEAD;

	if (target_len)
		n += target_len + 1 + RENTRY_ALLOC_OVERHEAD;
	return n;
}
