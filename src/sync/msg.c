/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/cursor.h"
#include "sync/msg.h"
#include "sync/path.h"

/* Fixed part of an entry: kind, flags, mode, size, mtime, hash. */
#define ENTRY_FIXED_LEN (1 + 1 + 2 + 8 + 8 + SYNC_HASH_LEN)
/* The smallest entry: a 1-byte path, no target, an empty vector. */
#define ENTRY_LEN_MIN (2 + 1 + ENTRY_FIXED_LEN + 1 + 8)
#define VV_ITEM_LEN (SYNC_DEVICE_LEN + 8)
#define BLOCK_REQUEST_LEN(path_len) (1 + 4 + 2 + (path_len) + SYNC_HASH_LEN + 4 + 8 + 4)
#define BLOCK_ERROR_LEN(text_len) (1 + 4 + 2 + 1 + (text_len))
#define MANIFEST_REQUEST_LEN(path_len) (1 + 4 + 2 + (path_len) + SYNC_HASH_LEN)
#define MANIFEST_HEADER_LEN (1 + 4 + SYNC_HASH_LEN + 8 + 4 + 4 + 4 + 4)

_Static_assert(SYNC_PATH_MAX == PATH_REL_MAX, "paths on the wire are share paths");
_Static_assert(SYNC_ENTRY_LEN_MAX == 2 + SYNC_PATH_MAX + ENTRY_FIXED_LEN + 2 + SYNC_TARGET_MAX + 1 +
					     SYNC_VV_MAX * VV_ITEM_LEN + 8,
	       "SYNC_ENTRY_LEN_MAX matches the layout");
_Static_assert(SYNC_INDEX_HEADER_LEN + SYNC_ENTRY_LEN_MAX <= SYNC_INDEX_MSG_MAX,
	       "any entry fits in an INDEX_UPDATE");
_Static_assert(SYNC_INDEX_HEADER_LEN + SYNC_INDEX_ENTRIES_MAX * ENTRY_LEN_MIN <= SYNC_INDEX_MSG_MAX,
	       "the entry cap is reachable");
_Static_assert(SYNC_INDEX_MSG_MAX <= SYNC_MSG_MAX, "INDEX_UPDATE fits in a frame");
_Static_assert(SYNC_BLOCK_DATA_HEADER_LEN + (size_t)SYNC_BLOCK_MAX <= SYNC_MSG_MAX,
	       "a full block fits in a frame");
_Static_assert(MANIFEST_HEADER_LEN + (size_t)SYNC_MANIFEST_HASHES_MAX * SYNC_HASH_LEN <=
		       SYNC_MSG_MAX,
	       "a full manifest chunk fits in a frame");
_Static_assert(BLOCK_REQUEST_LEN(SYNC_PATH_MAX) <= SYNC_MSG_MAX, "requests fit in a frame");
_Static_assert(SYNC_ERROR_TEXT_MAX <= UINT8_MAX, "the text length is one byte");
_Static_assert(SYNC_MANIFEST_BLOCK_MIN <= SYNC_BLOCK_MAX, "block size range");
_Static_assert(SYNC_MSG_MAX <= INT32_MAX, "lengths are returned as int");
_Static_assert(SYNC_FILE_MAX <= SYNC_OFFSET_MAX, "a file's bytes have offsets");

static __attribute__((format(printf, 2, 3))) int why_set(struct err *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_setv(why, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* The checks below are shared by encoders and decoders: 0 or -EBADMSG with a reason in why. */

static int path_valid(const char *p, size_t len, struct err *why)
{
	struct err e;

	if (len > 0 && !p)
		return why_set(why, "no path");
	if (path_check(p ? p : "", len, &e) < 0)
		return why_set(why, "bad path: %s", e.msg);
	return 0;
}

static int range_valid(uint64_t offset, uint64_t len, struct err *why)
{
	if (len > SYNC_OFFSET_MAX || offset > SYNC_OFFSET_MAX - len)
		return why_set(why, "offset %llu + length %llu is past the largest file offset",
			       (unsigned long long)offset, (unsigned long long)len);
	return 0;
}

static int entry_valid(const struct sync_entry *e, struct err *why)
{
	int r = path_valid(e->path, e->path_len, why);

	if (r < 0)
		return r;
	if (e->kind != SYNC_KIND_FILE && e->kind != SYNC_KIND_DIR && e->kind != SYNC_KIND_SYMLINK)
		return why_set(why, "unknown entry type %u", e->kind);
	if (e->flags & ~SYNC_ENTRY_FLAGS_KNOWN)
		return why_set(why, "unknown flags 0x%02x", e->flags);
	if (e->mode & ~0777U)
		return why_set(why, "mode 0%o has bits outside 0777", e->mode);
	if (e->size > SYNC_FILE_MAX)
		return why_set(why, "file size %llu is more than %llu bytes (1 TiB)",
			       (unsigned long long)e->size, (unsigned long long)SYNC_FILE_MAX);
	if (e->kind == SYNC_KIND_DIR && (e->size != 0 || !all_zero(e->hash, SYNC_HASH_LEN)))
		return why_set(why, "a directory with a size or a content hash");
	if (e->kind == SYNC_KIND_SYMLINK) {
		if (e->target_len > SYNC_TARGET_MAX)
			return why_set(why, "symlink target of %zu bytes, more than %d",
				       e->target_len, SYNC_TARGET_MAX);
		if (e->target_len == 0 && !(e->flags & SYNC_ENTRY_DELETED))
			return why_set(why, "a symlink with an empty target");
		if (e->target_len > 0 && !e->target)
			return why_set(why, "no symlink target");
		if (e->target_len > 0 && memchr(e->target, '\0', e->target_len))
			return why_set(why, "a NUL byte in a symlink target");
	} else if (e->target_len != 0) {
		return why_set(why, "a symlink target on an entry that is not a symlink");
	}
	if (e->nvv > SYNC_VV_MAX)
		return why_set(why, "version vector of %u entries, more than %d", e->nvv,
			       SYNC_VV_MAX);
	for (unsigned i = 0; i < e->nvv; i++)
		for (unsigned j = 0; j < i; j++)
			if (memcmp(e->vv[i].device, e->vv[j].device, SYNC_DEVICE_LEN) == 0)
				return why_set(why, "device id repeated in the version vector");
	return 0;
}

static size_t entry_len(const struct sync_entry *e)
{
	size_t n = 2 + e->path_len + ENTRY_FIXED_LEN + 1 + e->nvv * VV_ITEM_LEN + 8;

	if (e->kind == SYNC_KIND_SYMLINK)
		n += 2 + e->target_len;
	return n;
}

static void entry_write(struct wcursor *w, const struct sync_entry *e)
{
	wcursor_uint(w, e->path_len, 2);
	wcursor_put(w, e->path, e->path_len);
	wcursor_uint(w, e->kind, 1);
	wcursor_uint(w, e->flags, 1);
	wcursor_uint(w, e->mode, 2);
	wcursor_uint(w, e->size, 8);
	wcursor_uint(w, (uint64_t)e->mtime_ns, 8);
	wcursor_put(w, e->hash, SYNC_HASH_LEN);
	if (e->kind == SYNC_KIND_SYMLINK) {
		wcursor_uint(w, e->target_len, 2);
		wcursor_put(w, e->target, e->target_len);
	}
	wcursor_uint(w, e->nvv, 1);
	for (unsigned i = 0; i < e->nvv; i++) {
		wcursor_put(w, e->vv[i].device, SYNC_DEVICE_LEN);
		wcursor_uint(w, e->vv[i].counter, 8);
	}
	wcursor_uint(w, e->seq, 8);
}

/* Parses and checks one entry; every length is checked before what it counts is read. */
static int entry_parse(struct cursor *r, struct sync_entry *e, struct err *why)
{
	uint16_t n;

	memset(e, 0, sizeof(*e));
	n = cursor_u16(r);
	if (n > SYNC_PATH_MAX)
		return why_set(why, "path of %u bytes, more than %d", n, SYNC_PATH_MAX);
	e->path = (const char *)cursor_take(r, n);
	e->path_len = n;
	e->kind = cursor_u8(r);
	e->flags = cursor_u8(r);
	e->mode = cursor_u16(r);
	e->size = cursor_u64(r);
	e->mtime_ns = (int64_t)cursor_u64(r);
	cursor_copy(r, e->hash, SYNC_HASH_LEN);
	if (r->bad)
		return why_set(why, "truncated");
	if (e->kind == SYNC_KIND_SYMLINK) {
		n = cursor_u16(r);
		if (n > SYNC_TARGET_MAX)
			return why_set(why, "symlink target of %u bytes, more than %d", n,
				       SYNC_TARGET_MAX);
		e->target = (const char *)cursor_take(r, n);
		e->target_len = n;
	}
	e->nvv = cursor_u8(r);
	if (e->nvv > SYNC_VV_MAX)
		return why_set(why, "version vector of %u entries, more than %d", e->nvv,
			       SYNC_VV_MAX);
	for (unsigned i = 0; i < e->nvv; i++) {
		cursor_copy(r, e->vv[i].device, SYNC_DEVICE_LEN);
		e->vv[i].counter = cursor_u64(r);
	}
	e->seq = cursor_u64(r);
	if (r->bad)
		return why_set(why, "truncated");
	return entry_valid(e, why);
}

static int block_request_valid(const struct sync_block_request *q, struct err *why)
{
	int r = path_valid(q->path, q->path_len, why);

	if (r < 0)
		return r;
	if (q->len == 0 || q->len > SYNC_BLOCK_MAX)
		return why_set(why, "length %u is not within 1..%u", q->len, SYNC_BLOCK_MAX);
	return range_valid(q->offset, q->len, why);
}

static int block_data_valid(const struct sync_block_data *d, struct err *why)
{
	if (d->len > SYNC_BLOCK_MAX)
		return why_set(why, "%zu bytes of data, more than %u", d->len, SYNC_BLOCK_MAX);
	if (d->len > 0 && !d->data)
		return why_set(why, "no data");
	return range_valid(d->offset, d->len, why);
}

static int block_error_valid(const struct sync_block_error *b, struct err *why)
{
	if (b->code < SYNC_BLOCK_ERR_NOT_FOUND || b->code > SYNC_BLOCK_ERR_REFUSED)
		return why_set(why, "unknown error code %u", b->code);
	if (b->text_len > SYNC_ERROR_TEXT_MAX)
		return why_set(why, "text of %zu bytes, more than %d", b->text_len,
			       SYNC_ERROR_TEXT_MAX);
	if (b->text_len > 0 && (!b->text || memchr(b->text, '\0', b->text_len)))
		return why_set(why, "a NUL byte in the text");
	return 0;
}

static int manifest_valid(const struct sync_manifest *m, struct err *why)
{
	uint64_t blocks;

	if (m->size > SYNC_FILE_MAX)
		return why_set(why, "file size %llu is more than %llu bytes (1 TiB)",
			       (unsigned long long)m->size, (unsigned long long)SYNC_FILE_MAX);
	if (m->block_size < SYNC_MANIFEST_BLOCK_MIN || m->block_size > SYNC_BLOCK_MAX)
		return why_set(why, "block size %u is not within %u..%u", m->block_size,
			       SYNC_MANIFEST_BLOCK_MIN, SYNC_BLOCK_MAX);
	blocks = m->size / m->block_size + (m->size % m->block_size != 0);
	if (blocks != m->block_count)
		return why_set(why, "%u blocks for %llu bytes in blocks of %u", m->block_count,
			       (unsigned long long)m->size, m->block_size);
	if (m->n > SYNC_MANIFEST_HASHES_MAX)
		return why_set(why, "%u hashes, more than %d", m->n, SYNC_MANIFEST_HASHES_MAX);
	if ((uint64_t)m->first + m->n > m->block_count)
		return why_set(why, "hashes %u..%u of %u blocks", m->first, m->first + m->n,
			       m->block_count);
	if (m->n == 0 && m->block_count != 0)
		return why_set(why, "no hashes in a chunk of a non-empty file");
	if (m->n > 0 && !m->hashes)
		return why_set(why, "no hashes");
	return 0;
}

/* Decoders of each type: the type byte is consumed, trailing bytes are checked by the caller. */

static int index_update_parse(struct cursor *r, struct sync_index_update *u, struct err *why)
{
	struct sync_entry e;
	unsigned count;

	if (1 + r->left > SYNC_INDEX_MSG_MAX)
		return why_set(why, "%zu bytes, more than %zu", 1 + r->left, SYNC_INDEX_MSG_MAX);
	count = cursor_u16(r);
	if (r->bad)
		return why_set(why, "truncated");
	if (count == 0)
		return why_set(why, "no entries");
	if (count > SYNC_INDEX_ENTRIES_MAX)
		return why_set(why, "%u entries, more than %d", count, SYNC_INDEX_ENTRIES_MAX);
	if (r->left / ENTRY_LEN_MIN < count)
		return why_set(why, "%u entries cannot fit in %zu bytes", count, r->left);
	u->count = count;
	u->entries = r->p;
	for (unsigned i = 0; i < count; i++)
		if (entry_parse(r, &e, why) < 0) {
			err_prefix(why, "entry %u: ", i);
			return -EBADMSG;
		}
	u->len = (size_t)(r->p - u->entries);
	return 0;
}

static int path_parse(struct cursor *r, const char **ret_path, size_t *ret_len, struct err *why)
{
	uint16_t n = cursor_u16(r);

	if (n > SYNC_PATH_MAX)
		return why_set(why, "path of %u bytes, more than %d", n, SYNC_PATH_MAX);
	*ret_path = (const char *)cursor_take(r, n);
	*ret_len = n;
	return 0;
}

static int block_request_parse(struct cursor *r, struct sync_block_request *q, struct err *why)
{
	q->req_id = cursor_u32(r);
	if (path_parse(r, &q->path, &q->path_len, why) < 0)
		return -EBADMSG;
	cursor_copy(r, q->hash, SYNC_HASH_LEN);
	q->index = cursor_u32(r);
	q->offset = cursor_u64(r);
	q->len = cursor_u32(r);
	if (r->bad)
		return why_set(why, "truncated");
	return block_request_valid(q, why);
}

static int block_data_parse(struct cursor *r, struct sync_block_data *d, struct err *why)
{
	uint32_t n;

	d->req_id = cursor_u32(r);
	d->offset = cursor_u64(r);
	n = cursor_u32(r);
	if (n > SYNC_BLOCK_MAX)
		return why_set(why, "%u bytes of data, more than %u", n, SYNC_BLOCK_MAX);
	d->data = cursor_take(r, n);
	d->len = n;
	if (r->bad)
		return why_set(why, "truncated");
	return block_data_valid(d, why);
}

static int block_error_parse(struct cursor *r, struct sync_block_error *b, struct err *why)
{
	uint8_t n;

	b->req_id = cursor_u32(r);
	b->code = cursor_u16(r);
	n = cursor_u8(r);
	if (n > SYNC_ERROR_TEXT_MAX)
		return why_set(why, "text of %u bytes, more than %d", n, SYNC_ERROR_TEXT_MAX);
	b->text = (const char *)cursor_take(r, n);
	b->text_len = n;
	if (r->bad)
		return why_set(why, "truncated");
	return block_error_valid(b, why);
}

static int manifest_request_parse(struct cursor *r, struct sync_manifest_request *q,
				  struct err *why)
{
	q->req_id = cursor_u32(r);
	if (path_parse(r, &q->path, &q->path_len, why) < 0)
		return -EBADMSG;
	cursor_copy(r, q->hash, SYNC_HASH_LEN);
	if (r->bad)
		return why_set(why, "truncated");
	return path_valid(q->path, q->path_len, why);
}

static int manifest_parse(struct cursor *r, struct sync_manifest *m, struct err *why)
{
	m->req_id = cursor_u32(r);
	cursor_copy(r, m->hash, SYNC_HASH_LEN);
	m->size = cursor_u64(r);
	m->block_size = cursor_u32(r);
	m->block_count = cursor_u32(r);
	m->first = cursor_u32(r);
	m->n = cursor_u32(r);
	if (r->bad)
		return why_set(why, "truncated");
	if (m->n > SYNC_MANIFEST_HASHES_MAX)
		return why_set(why, "%u hashes, more than %d", m->n, SYNC_MANIFEST_HASHES_MAX);
	m->hashes = cursor_take(r, (size_t)m->n * SYNC_HASH_LEN);
	if (r->bad)
		return why_set(why, "truncated");
	return manifest_valid(m, why);
}

const char *msg_type_name(unsigned type)
{
	switch (type) {
	case 1:
		return "HELLO";
	case SYNC_MSG_INDEX_UPDATE:
		return "INDEX_UPDATE";
	case SYNC_MSG_INDEX_DONE:
		return "INDEX_DONE";
	case SYNC_MSG_BLOCK_REQUEST:
		return "BLOCK_REQUEST";
	case SYNC_MSG_BLOCK_DATA:
		return "BLOCK_DATA";
	case SYNC_MSG_BLOCK_ERROR:
		return "BLOCK_ERROR";
	case SYNC_MSG_MANIFEST_REQUEST:
		return "MANIFEST_REQUEST";
	case SYNC_MSG_MANIFEST:
		return "MANIFEST";
	case SYNC_MSG_CANCEL:
		return "CANCEL";
	case SYNC_MSG_START:
		return "START";
	default:
		return "unknown";
	}
}

int msg_decode(const uint8_t *buf, size_t len, struct sync_msg *ret, struct err *err)
{
	struct err why;
	struct sync_msg m;
	struct cursor r;
	int rc = -EBADMSG;

	err_clear(&why);
	memset(&m, 0, sizeof(m));
	if (len == 0) {
		err_set(&why, "an empty message");
		goto out;
	}
	if (len > SYNC_MSG_MAX) {
		err_set(&why, "a message of %zu bytes, more than %zu", len, SYNC_MSG_MAX);
		goto out;
	}
	r = (struct cursor){.p = buf + 1, .left = len - 1};
	m.type = buf[0];
	switch (buf[0]) {
	case SYNC_MSG_INDEX_UPDATE:
		rc = index_update_parse(&r, &m.index_update, &why);
		break;
	case SYNC_MSG_INDEX_DONE:
		m.index_done.seq = cursor_u64(&r);
		rc = r.bad ? why_set(&why, "truncated") : 0;
		break;
	case SYNC_MSG_BLOCK_REQUEST:
		rc = block_request_parse(&r, &m.block_request, &why);
		break;
	case SYNC_MSG_BLOCK_DATA:
		rc = block_data_parse(&r, &m.block_data, &why);
		break;
	case SYNC_MSG_BLOCK_ERROR:
		rc = block_error_parse(&r, &m.block_error, &why);
		break;
	case SYNC_MSG_MANIFEST_REQUEST:
		rc = manifest_request_parse(&r, &m.manifest_request, &why);
		break;
	case SYNC_MSG_MANIFEST:
		rc = manifest_parse(&r, &m.manifest, &why);
		break;
	case SYNC_MSG_CANCEL:
		m.cancel.req_id = cursor_u32(&r);
		rc = r.bad ? why_set(&why, "truncated") : 0;
		break;
	case SYNC_MSG_START: {
		const uint8_t *dev = cursor_take(&r, SYNC_DEVICE_LEN);
		m.start.since = cursor_u64(&r);
		const uint8_t *exp = cursor_take(&r, SYNC_DEVICE_LEN);
		if (r.bad) {
			rc = why_set(&why, "truncated");
			break;
		}
		memcpy(m.start.device, dev, SYNC_DEVICE_LEN);
		memcpy(m.start.expect, exp, SYNC_DEVICE_LEN);
		rc = 0;
		break;
	}
	case 0:
	case 1:
		err_set(&why, "message type %u is not a sync message", buf[0]);
		goto out;
	default:
		rc = -EPROTONOSUPPORT;
		err_set(&why, "unknown message type %u", buf[0]);
		goto out;
	}
	if (rc < 0)
		goto out;
	if (r.left > 0) {
		rc = why_set(&why, "%zu bytes left over", r.left);
		goto out;
	}
	*ret = m;
	return 0;
out:
	if (err) {
		if (len > 0 && buf[0] >= SYNC_MSG_INDEX_UPDATE && buf[0] <= SYNC_MSG_TYPE_LAST)
			err_set(err, "%s: %s", msg_type_name(buf[0]), why.msg);
		else
			err_set(err, "%s", why.msg);
	}
	return rc;
}

void msg_index_iter_init(struct msg_index_iter *it, const struct sync_index_update *u)
{
	it->p = u->entries;
	it->left = u->len;
	it->remaining = u->count;
}

int msg_index_next(struct msg_index_iter *it, struct sync_entry *ret)
{
	struct sync_entry e;
	struct cursor r = {.p = it->p, .left = it->left};

	if (it->remaining == 0)
		return 0;
	if (entry_parse(&r, &e, NULL) < 0) {
		it->remaining = 0;
		return -EBADMSG;
	}
	it->p = r.p;
	it->left = r.left;
	it->remaining--;
	*ret = e;
	return 1;
}

int msg_index_writer_init(struct msg_index_writer *w, uint8_t *buf, size_t outlen)
{
	if (outlen < SYNC_INDEX_HEADER_LEN)
		return -EMSGSIZE;
	w->buf = buf;
	w->cap = outlen < SYNC_INDEX_MSG_MAX ? outlen : SYNC_INDEX_MSG_MAX;
	w->len = SYNC_INDEX_HEADER_LEN;
	w->count = 0;
	buf[0] = SYNC_MSG_INDEX_UPDATE;
	buf[1] = 0;
	buf[2] = 0;
	return 0;
}

int msg_index_add(struct msg_index_writer *w, const struct sync_entry *e)
{
	struct wcursor out;
	size_t n;

	if (entry_valid(e, NULL) < 0)
		return -EINVAL;
	n = entry_len(e);
	if (w->count >= SYNC_INDEX_ENTRIES_MAX || n > w->cap - w->len)
		return -EMSGSIZE;
	out = (struct wcursor){.p = w->buf + w->len, .left = w->cap - w->len};
	entry_write(&out, e);
	assert(!out.bad && out.left == w->cap - w->len - n);
	w->len += n;
	w->count++;
	return 0;
}

int msg_index_finish(struct msg_index_writer *w)
{
	if (w->count == 0)
		return -EINVAL;
	w->buf[1] = (uint8_t)(w->count >> 8);
	w->buf[2] = (uint8_t)w->count;
	return (int)w->len;
}

int msg_block_data_header(uint8_t *buf, size_t outlen, uint32_t req_id, uint64_t offset, size_t len)
{
	struct wcursor w = {.p = buf, .left = outlen};

	if (len > SYNC_BLOCK_MAX || range_valid(offset, len, NULL) < 0)
		return -EINVAL;
	if (outlen < SYNC_BLOCK_DATA_HEADER_LEN + len)
		return -EMSGSIZE;
	wcursor_uint(&w, SYNC_MSG_BLOCK_DATA, 1);
	wcursor_uint(&w, req_id, 4);
	wcursor_uint(&w, offset, 8);
	wcursor_uint(&w, len, 4);
	return SYNC_BLOCK_DATA_HEADER_LEN;
}

static int block_data_encode(const struct sync_block_data *d, uint8_t *buf, size_t outlen)
{
	int r;

	if (block_data_valid(d, NULL) < 0)
		return -EINVAL;
	if (outlen < SYNC_BLOCK_DATA_HEADER_LEN + d->len)
		return -EMSGSIZE;
	/* The data first: it may overlap the header's place. */
	if (d->len > 0 && d->data != buf + SYNC_BLOCK_DATA_HEADER_LEN)
		memmove(buf + SYNC_BLOCK_DATA_HEADER_LEN, d->data, d->len);
	r = msg_block_data_header(buf, outlen, d->req_id, d->offset, d->len);
	if (r < 0)
		return r;
	return (int)(SYNC_BLOCK_DATA_HEADER_LEN + d->len);
}

int msg_encode(const struct sync_msg *m, uint8_t *buf, size_t outlen)
{
	struct wcursor w = {.p = buf, .left = outlen};
	size_t need;

	switch (m->type) {
	case SYNC_MSG_INDEX_DONE:
		need = 1 + 8;
		break;
	case SYNC_MSG_BLOCK_REQUEST:
		if (block_request_valid(&m->block_request, NULL) < 0)
			return -EINVAL;
		need = BLOCK_REQUEST_LEN(m->block_request.path_len);
		break;
	case SYNC_MSG_BLOCK_DATA:
		return block_data_encode(&m->block_data, buf, outlen);
	case SYNC_MSG_BLOCK_ERROR:
		if (block_error_valid(&m->block_error, NULL) < 0)
			return -EINVAL;
		need = BLOCK_ERROR_LEN(m->block_error.text_len);
		break;
	case SYNC_MSG_MANIFEST_REQUEST:
		if (path_valid(m->manifest_request.path, m->manifest_request.path_len, NULL) < 0)
			return -EINVAL;
		need = MANIFEST_REQUEST_LEN(m->manifest_request.path_len);
		break;
	case SYNC_MSG_MANIFEST:
		if (manifest_valid(&m->manifest, NULL) < 0)
			return -EINVAL;
		need = MANIFEST_HEADER_LEN + (size_t)m->manifest.n * SYNC_HASH_LEN;
		break;
	case SYNC_MSG_CANCEL:
		need = 1 + 4;
		break;
	case SYNC_MSG_START:
		need = 1 + SYNC_DEVICE_LEN + 8 + SYNC_DEVICE_LEN;
		break;
	case SYNC_MSG_INDEX_UPDATE: /* msg_index_writer_init() and friends */
	default:
		return -EINVAL;
	}
	if (outlen < need)
		return -EMSGSIZE;

	wcursor_uint(&w, m->type, 1);
	switch (m->type) {
	case SYNC_MSG_INDEX_DONE:
		wcursor_uint(&w, m->index_done.seq, 8);
		break;
	case SYNC_MSG_BLOCK_REQUEST: {
		const struct sync_block_request *q = &m->block_request;
		wcursor_uint(&w, q->req_id, 4);
		wcursor_uint(&w, q->path_len, 2);
		wcursor_put(&w, q->path, q->path_len);
		wcursor_put(&w, q->hash, SYNC_HASH_LEN);
		wcursor_uint(&w, q->index, 4);
		wcursor_uint(&w, q->offset, 8);
		wcursor_uint(&w, q->len, 4);
		break;
	}
	case SYNC_MSG_BLOCK_ERROR: {
		const struct sync_block_error *b = &m->block_error;
		wcursor_uint(&w, b->req_id, 4);
		wcursor_uint(&w, b->code, 2);
		wcursor_uint(&w, b->text_len, 1);
		wcursor_put(&w, b->text, b->text_len);
		break;
	}
	case SYNC_MSG_MANIFEST_REQUEST: {
		const struct sync_manifest_request *q = &m->manifest_request;
		wcursor_uint(&w, q->req_id, 4);
		wcursor_uint(&w, q->path_len, 2);
		wcursor_put(&w, q->path, q->path_len);
		wcursor_put(&w, q->hash, SYNC_HASH_LEN);
		break;
	}
	case SYNC_MSG_MANIFEST: {
		const struct sync_manifest *f = &m->manifest;
		wcursor_uint(&w, f->req_id, 4);
		wcursor_put(&w, f->hash, SYNC_HASH_LEN);
		wcursor_uint(&w, f->size, 8);
		wcursor_uint(&w, f->block_size, 4);
		wcursor_uint(&w, f->block_count, 4);
		wcursor_uint(&w, f->first, 4);
		wcursor_uint(&w, f->n, 4);
		wcursor_put(&w, f->hashes, (size_t)f->n * SYNC_HASH_LEN);
		break;
	}
	case SYNC_MSG_CANCEL:
		wcursor_uint(&w, m->cancel.req_id, 4);
		break;
	case SYNC_MSG_START:
		wcursor_put(&w, m->start.device, SYNC_DEVICE_LEN);
		wcursor_uint(&w, m->start.since, 8);
		wcursor_put(&w, m->start.expect, SYNC_DEVICE_LEN);
		break;
	default:
		break;
	}
	assert(!w.bad && outlen - w.left == need);
	return (int)need;
}
