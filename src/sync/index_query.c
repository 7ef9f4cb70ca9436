/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Index queries beyond the core entry API: manifests, lookups, counts. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "sync/index_int.h"
#include "sync/lazy.h"

int index_manifest_put(struct index *idx, const uint8_t hash[static INDEX_HASH_LEN],
		       const uint8_t *blob, size_t len)
{
	sqlite3_stmt *st;
	int r, rc;

	if (len == 0 || len > INT_MAX)
		return index_seterr(idx, -EINVAL, "a manifest of %zu bytes cannot be stored", len);
	r = index_prep(idx, &idx->st_manifest_put,
		       "INSERT INTO manifests (hash, blob) VALUES (?1, ?2)"
		       " ON CONFLICT (hash) DO UPDATE SET blob = excluded.blob");
	if (r < 0)
		return r;
	st = idx->st_manifest_put;
	sqlite3_bind_blob(st, 1, hash, INDEX_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, blob, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	r = rc == SQLITE_DONE ? 0 : index_fail(idx, rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int index_manifest_get(struct index *idx, const uint8_t hash[static INDEX_HASH_LEN],
		       uint8_t **ret_blob, size_t *ret_len)
{
	sqlite3_stmt *st;
	const void *p;
	uint8_t *copy;
	int r, rc, n;

	r = index_prep(idx, &idx->st_manifest_get, "SELECT blob FROM manifests WHERE hash = ?1");
	if (r < 0)
		return r;
	st = idx->st_manifest_get;
	sqlite3_bind_blob(st, 1, hash, INDEX_HASH_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = index_seterr(idx, -ENOENT, "no manifest for this hash");
		goto cleanup;
	}
	if (rc != SQLITE_ROW) {
		r = index_fail(idx, rc);
		goto cleanup;
	}
	p = sqlite3_column_blob(st, 0);
	n = sqlite3_column_bytes(st, 0);
	if (sqlite3_column_type(st, 0) != SQLITE_BLOB || !p || n < 1) {
		r = index_damaged(idx, "a manifest row is empty or not a blob");
		goto cleanup;
	}
	copy = malloc((size_t)n);
	if (!copy) {
		r = index_seterr(idx, -ENOMEM, "out of memory");
		goto cleanup;
	}
	memcpy(copy, p, (size_t)n);
	*ret_blob = copy;
	*ret_len = (size_t)n;
	r = 0;
cleanup:
	sqlite3_reset(st);
	return r;
}

int index_manifest_gc(struct index *idx)
{
	int rc;

	rc = sqlite3_exec(idx->db,
			  "DELETE FROM manifests WHERE hash NOT IN (SELECT hash FROM entries"
			  " WHERE deleted = 0 AND type = 1 AND hash IS NOT NULL)",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	return sqlite3_changes(idx->db);
}

int index_get_by_hash(struct index *idx, const uint8_t hash[static INDEX_HASH_LEN],
		      struct index_entry *ret)
{
	sqlite3_stmt *st;
	int r, rc;

	r = index_prep(idx, &idx->st_get_hash,
		       "SELECT " INDEX_COLS " FROM entries WHERE hash = ?1 AND deleted = 0"
		       " AND type = 1 LIMIT 1");
	if (r < 0)
		return r;
	st = idx->st_get_hash;
	sqlite3_bind_blob(st, 1, hash, INDEX_HASH_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = index_row_read(idx, st, ret);
	else if (rc == SQLITE_DONE)
		r = index_seterr(idx, -ENOENT, "no live file with this hash");
	else
		r = index_fail(idx, rc);
	sqlite3_reset(st);
	return r;
}

int index_count_live(struct index *idx, uint64_t *ret_files, uint64_t *ret_dirs,
		     uint64_t *ret_links)
{
	uint64_t n[INDEX_SYMLINK + 1] = {0};
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(
		idx->db, "SELECT type, count(*) FROM entries WHERE deleted = 0 GROUP BY type", -1,
		&st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t type = sqlite3_column_int64(st, 0), cnt = sqlite3_column_int64(st, 1);

		if (type < INDEX_FILE || type > INDEX_SYMLINK || cnt < 0) {
			r = index_damaged(idx, "an entry has an out-of-range type");
			goto cleanup;
		}
		n[type] = (uint64_t)cnt;
	}
	if (rc != SQLITE_DONE) {
		r = index_fail(idx, rc);
		goto cleanup;
	}
	*ret_files = n[INDEX_FILE];
	*ret_dirs = n[INDEX_DIR];
	*ret_links = n[INDEX_SYMLINK];
cleanup:
	sqlite3_finalize(st);
	return r;
}

int index_foreach_child(struct index *idx, const char *dir, size_t len, index_visit_fn fn,
			void *userdata)
{
	char lo[PATH_REL_MAX + 2], hi[PATH_REL_MAX + 2];
	int r;

	if (len == 0)
		return index_iterate(idx,
				     "SELECT " INDEX_COLS " FROM entries WHERE deleted = 0"
				     " AND instr(path, x'2f') = 0 ORDER BY path",
				     NULL, 0, NULL, 0, 0, fn, userdata);
	r = index_check_path(idx, dir, len);
	if (r < 0)
		return r;
	memcpy(lo, dir, len);
	lo[len] = '/';
	memcpy(hi, dir, len);
	hi[len] = '0';
	/* Beneath dir (the range), and no '/' after the prefix. */
	return index_iterate(idx,
			     "SELECT " INDEX_COLS " FROM entries WHERE path >= ?1 AND path < ?2"
			     " AND deleted = 0 AND instr(substr(path, length(?1) + 1), x'2f') = 0"
			     " ORDER BY path",
			     lo, len + 1, hi, len + 1, 0, fn, userdata);
}
