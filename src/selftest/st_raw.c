/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Hand-built sync messages for hostile tests (st_raw.h). */
#include <string.h>

#include "st_raw.h"

static size_t put_int(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return n;
}

static size_t put(uint8_t *p, const void *src, size_t n)
{
	if (n)
		memcpy(p, src, n);
	return n;
}

size_t st_raw_entry(uint8_t *out, size_t cap, const struct sync_entry *e)
{
	size_t need = 2 + e->path_len + 52 + 1 + (size_t)e->nvv * 16 + 8, n = 0;

	if (e->kind == SYNC_KIND_SYMLINK)
		need += 2 + e->target_len;
	if (need > cap || e->nvv > SYNC_VV_MAX)
		return 0;
	n += put_int(out + n, e->path_len, 2);
	n += put(out + n, e->path, e->path_len);
	n += put_int(out + n, e->kind, 1);
	n += put_int(out + n, e->flags, 1);
	n += put_int(out + n, e->mode, 2);
	n += put_int(out + n, e->size, 8);
	n += put_int(out + n, (uint64_t)e->mtime_ns, 8);
	n += put(out + n, e->hash, SYNC_HASH_LEN);
	if (e->kind == SYNC_KIND_SYMLINK) {
		n += put_int(out + n, e->target_len, 2);
		n += put(out + n, e->target, e->target_len);
	}
	n += put_int(out + n, e->nvv, 1);
	for (unsigned i = 0; i < e->nvv; i++) {
		n += put(out + n, e->vv[i].device, SYNC_DEVICE_LEN);
		n += put_int(out + n, e->vv[i].counter, 8);
	}
	n += put_int(out + n, e->seq, 8);
	return n;
}

size_t st_raw_index(uint8_t *out, size_t cap, const struct sync_entry *e, size_t n)
{
	size_t len = 3, w;

	if (cap < len || n > UINT16_MAX)
		return 0;
	out[0] = SYNC_MSG_INDEX_UPDATE;
	put_int(out + 1, n, 2);
	for (size_t i = 0; i < n; i++) {
		w = st_raw_entry(out + len, cap - len, &e[i]);
		if (w == 0)
			return 0;
		len += w;
	}
	return len;
}

size_t st_raw_request(uint8_t *out, size_t cap, uint8_t type, uint32_t req_id, const char *path,
		      size_t path_len, const uint8_t hash[static SYNC_HASH_LEN], uint32_t index,
		      uint64_t offset, uint32_t len)
{
	size_t need = 1 + 4 + 2 + path_len + SYNC_HASH_LEN, n = 0;

	if (type == SYNC_MSG_BLOCK_REQUEST)
		need += 4 + 8 + 4;
	else if (type != SYNC_MSG_MANIFEST_REQUEST)
		return 0;
	if (need > cap || path_len > UINT16_MAX)
		return 0;
	n += put_int(out + n, type, 1);
	n += put_int(out + n, req_id, 4);
	n += put_int(out + n, path_len, 2);
	n += put(out + n, path, path_len);
	n += put(out + n, hash, SYNC_HASH_LEN);
	if (type == SYNC_MSG_BLOCK_REQUEST) {
		n += put_int(out + n, index, 4);
		n += put_int(out + n, offset, 8);
		n += put_int(out + n, len, 4);
	}
	return n;
}
