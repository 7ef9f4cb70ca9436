/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The lazy-content table of the index (lazy.h). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "sync/blocks.h"
#include "sync/index_int.h"
#include "sync/lazy.h"

size_t lazy_bits_len(uint64_t size)
{
	return blocks_count(size) / 8 + 1;
}

int index_lazy_put(struct index *idx, const char *path, size_t len,
		   const uint8_t hash[static INDEX_HASH_LEN], uint64_t size, const uint8_t *bits,
		   size_t bits_len)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	r = index_check_path(idx, path, len);
	if (r < 0)
		return r;
	if (size > BLOCKS_FILE_MAX || bits_len != lazy_bits_len(size) || bits_len > INT_MAX)
		return index_seterr(idx, -EINVAL, "a bad presence bitmap");
	rc = sqlite3_prepare_v2(idx->db,
				"INSERT INTO lazy (path, hash, size, bits) VALUES (?1, ?2, ?3, ?4)"
				" ON CONFLICT (path) DO UPDATE SET hash = excluded.hash,"
				" size = excluded.size, bits = excluded.bits",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	sqlite3_bind_blob(st, 1, path, (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, hash, INDEX_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)size);
	sqlite3_bind_blob(st, 4, bits, (int)bits_len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	r = rc == SQLITE_DONE ? 0 : index_fail(idx, rc);
	sqlite3_finalize(st);
	return r;
}

uint64_t index_lazy_moves(const struct index *idx)
{
	return idx->lazy_moves;
}

/* Reads and checks one row (path, hash, size, bits). */
static int row_read(struct index *idx, sqlite3_stmt *st, char *pathbuf, struct lazy_row *r)
{
	const void *p = sqlite3_column_blob(st, 0), *h = sqlite3_column_blob(st, 1);
	const void *b = sqlite3_column_blob(st, 3);
	int plen = sqlite3_column_bytes(st, 0), hlen = sqlite3_column_bytes(st, 1);
	int blen = sqlite3_column_bytes(st, 3);
	int64_t size = sqlite3_column_int64(st, 2);

	if (!p || plen < 1 || plen > PATH_REL_MAX || !h || hlen != INDEX_HASH_LEN || !b ||
	    size < 0 || (uint64_t)size > BLOCKS_FILE_MAX ||
	    (size_t)blen != lazy_bits_len((uint64_t)size))
		return index_damaged(idx, "a lazy-content row is malformed");
	memcpy(pathbuf, p, (size_t)plen);
	pathbuf[plen] = '\0';
	if (index_check_path(idx, pathbuf, (size_t)plen) < 0)
		return index_damaged(idx, "a lazy-content row has a bad path");
	r->path = pathbuf;
	r->path_len = (size_t)plen;
	memcpy(r->hash, h, INDEX_HASH_LEN);
	r->size = (uint64_t)size;
	r->bits = b;
	r->bits_len = (size_t)blen;
	return 0;
}

int index_lazy_get(struct index *idx, const char *path, size_t len, struct lazy_row *ret,
		   uint8_t **ret_bits)
{
	char pathbuf[PATH_REL_MAX + 1];
	sqlite3_stmt *st = NULL;
	struct lazy_row row;
	uint8_t *copy;
	int r, rc;

	rc = sqlite3_prepare_v2(idx->db, "SELECT path, hash, size, bits FROM lazy WHERE path = ?1",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	sqlite3_bind_blob(st, 1, path, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = index_seterr(idx, -ENOENT, "no lazy-content row");
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = index_fail(idx, rc);
		goto out;
	}
	r = row_read(idx, st, pathbuf, &row);
	if (r < 0)
		goto out;
	copy = malloc(row.bits_len);
	if (!copy) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(copy, row.bits, row.bits_len);
	row.path = path;
	row.bits = copy;
	*ret = row;
	*ret_bits = copy;
out:
	sqlite3_finalize(st);
	return r;
}

int index_lazy_foreach(struct index *idx, int (*fn)(const struct lazy_row *r, void *ud), void *ud)
{
	char pathbuf[PATH_REL_MAX + 1];
	sqlite3_stmt *st = NULL;
	struct lazy_row row;
	int r = 0, rc;

	rc = sqlite3_prepare_v2(idx->db, "SELECT path, hash, size, bits FROM lazy ORDER BY path",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = row_read(idx, st, pathbuf, &row);
		if (r == 0)
			r = fn(&row, ud);
		if (r != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = index_fail(idx, rc);
out:
	sqlite3_finalize(st);
	return r;
}
