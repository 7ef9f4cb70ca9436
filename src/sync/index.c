/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The persistent index on SQLite; the design note is in index.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <sqlite3.h>

#include "base/log.h"
#include "sync/index_int.h"
#include "sync/lazy.h"

#define INDEX_APP_ID 0x746e646d /* "tndm" */
#define BUSY_TIMEOUT_MS 5000

#define COLS INDEX_COLS

static const char schema_sql[] =
	"CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value);"
	"CREATE TABLE entries ("
	" path BLOB NOT NULL UNIQUE," /* share-relative, bytes as on disk */
	" type INTEGER NOT NULL,"     /* enum index_type */
	" mode INTEGER NOT NULL,"
	" size INTEGER NOT NULL,"
	" mtime_ns INTEGER NOT NULL,"
	" hash BLOB,"		     /* 32 bytes, NULL for directories */
	" target BLOB,"		     /* symlink target, NULL otherwise */
	" deleted INTEGER NOT NULL," /* 1 = tombstone */
	" vv BLOB NOT NULL,"	     /* vv_encode() form */
	" seq INTEGER NOT NULL UNIQUE,"
	" dev INTEGER NOT NULL DEFAULT 0," /* local stat identity, never sent */
	" ino INTEGER NOT NULL DEFAULT 0,"
	" ctime_ns INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX entries_ino ON entries (ino, dev);"
	"CREATE TABLE peers (device BLOB PRIMARY KEY NOT NULL, applied_seq INTEGER NOT NULL);";

int index_seterr(struct index *idx, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_setv(&idx->err, fmt, ap);
	va_end(ap);
	return r;
}

static int errno_from_sqlite(sqlite3 *db, int rc)
{
	int e;

	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_MISUSE:
	case SQLITE_RANGE:
		return -EINVAL;
	case SQLITE_CANTOPEN:
		e = db ? sqlite3_system_errno(db) : 0;
		return e > 0 ? -e : -EACCES;
	default:
		e = db ? sqlite3_system_errno(db) : 0;
		return e > 0 ? -e : -EIO;
	}
}

int index_damaged(struct index *idx, const char *why)
{
	return index_seterr(
		idx, -EBADMSG,
		"index %s is damaged (%s): move it aside and restart; the folder is then "
		"rescanned and reconciled with the peer as on first contact",
		idx->file_q, why);
}

/* Maps a failed SQLite call to -errno and keeps its message. */
int index_fail(struct index *idx, int rc)
{
	int r = errno_from_sqlite(idx->db, rc);

	if (r == 0)
		r = -EIO;
	if (r == -EBADMSG)
		return index_damaged(idx, sqlite3_errstr(rc));
	return index_seterr(idx, r, "index %s: %s", idx->file_q,
			    idx->db ? sqlite3_errmsg(idx->db) : sqlite3_errstr(rc));
}

static int exec(struct index *idx, const char *sql)
{
	int rc = sqlite3_exec(idx->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : index_fail(idx, rc);
}

/* Prepares a cached statement once; later calls reset it. */
int index_prep(struct index *idx, sqlite3_stmt **st, const char *sql)
{
	int rc;

	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
		return 0;
	}
	rc = sqlite3_prepare_v3(idx->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
	return rc == SQLITE_OK ? 0 : index_fail(idx, rc);
}

/* Internal savepoint: every public change is atomic, inside index_begin or not. */
static int op_begin(struct index *idx)
{
	int r = exec(idx, "SAVEPOINT op");

	if (r == 0)
		idx->op_seq = idx->seq;
	return r;
}

static int op_end(struct index *idx, int r)
{
	if (r >= 0) {
		int q = exec(idx, "RELEASE op");

		if (q == 0)
			return r;
		r = q;
	}
	(void)sqlite3_exec(idx->db, "ROLLBACK TO op; RELEASE op", NULL, NULL, NULL);
	idx->seq = idx->op_seq;
	return r;
}

int index_check_path(struct index *idx, const char *p, size_t len)
{
	struct err err;
	int r = path_check(p, len, &err);

	if (r < 0)
		return index_seterr(idx, r, "%s", err.msg);
	return 0;
}

static int col_int(sqlite3_stmt *st, int i, int64_t *ret)
{
	if (sqlite3_column_type(st, i) != SQLITE_INTEGER)
		return -1;
	*ret = sqlite3_column_int64(st, i);
	return 0;
}

/* Reads and validates one row of COLS; the file is not trusted. */
int index_row_read(struct index *idx, sqlite3_stmt *st, struct index_entry *e)
{
	int64_t type, mode, size, mtime, deleted, seq, dev, ino, ctime;
	const void *p;
	int n, r;

	p = sqlite3_column_blob(st, 0);
	n = sqlite3_column_bytes(st, 0);
	if (!p || n < 1 || n > PATH_REL_MAX)
		return index_damaged(idx, "an entry has a missing or overlong path");
	if (path_check(p, (size_t)n, NULL) < 0)
		return index_damaged(idx, "an entry has an invalid path");
	memcpy(e->path, p, (size_t)n);
	e->path[n] = '\0';
	e->path_len = (size_t)n;

	if (col_int(st, 1, &type) || col_int(st, 2, &mode) || col_int(st, 3, &size) ||
	    col_int(st, 4, &mtime) || col_int(st, 7, &deleted) || col_int(st, 9, &seq) ||
	    col_int(st, 10, &dev) || col_int(st, 11, &ino) || col_int(st, 12, &ctime))
		return index_damaged(idx, "an entry has a non-integer field");
	if (type < INDEX_FILE || type > INDEX_SYMLINK || (mode & ~(int64_t)0777) || size < 0 ||
	    (deleted != 0 && deleted != 1) || seq < 1)
		return index_damaged(idx, "an entry has an out-of-range field");
	e->type = (enum index_type)type;
	e->mode = (uint32_t)mode;
	e->size = (uint64_t)size;
	e->mtime_ns = mtime;
	e->deleted = deleted;
	e->seq = (uint64_t)seq;
	e->dev = (uint64_t)dev;
	e->ino = (uint64_t)ino;
	e->ctime_ns = ctime;

	e->has_hash = sqlite3_column_type(st, 5) != SQLITE_NULL;
	if (e->has_hash) {
		p = sqlite3_column_blob(st, 5);
		n = sqlite3_column_bytes(st, 5);
		if (!p || n != INDEX_HASH_LEN)
			return index_damaged(idx, "an entry has a hash that is not 32 bytes");
		memcpy(e->hash, p, INDEX_HASH_LEN);
	} else {
		memset(e->hash, 0, sizeof(e->hash));
	}

	e->target_len = 0;
	e->target[0] = '\0';
	if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
		p = sqlite3_column_blob(st, 6);
		n = sqlite3_column_bytes(st, 6);
		if (n > INDEX_TARGET_MAX || (n > 0 && (!p || memchr(p, 0, (size_t)n))))
			return index_damaged(idx, "an entry has an invalid symlink target");
		if (n > 0)
			memcpy(e->target, p, (size_t)n);
		e->target[n] = '\0';
		e->target_len = (size_t)n;
	}

	p = sqlite3_column_blob(st, 8);
	n = sqlite3_column_bytes(st, 8);
	if (!p || vv_decode(p, (size_t)n, &e->vv) < 0)
		return index_damaged(idx, "an entry has an invalid version vector");

	r = 0;
	if (!e->deleted && e->type != INDEX_DIR && !e->has_hash)
		r = index_damaged(idx, "a file or symlink entry has no hash");
	else if (e->type == INDEX_DIR && e->has_hash)
		r = index_damaged(idx, "a directory entry has a hash");
	else if (e->type != INDEX_SYMLINK && e->target_len)
		r = index_damaged(idx, "an entry that is not a symlink has a target");
	else if (e->type == INDEX_SYMLINK && !e->deleted && !e->target_len)
		r = index_damaged(idx, "a symlink entry has no target");
	return r;
}

static int check_entry(struct index *idx, const struct index_entry *e)
{
	int r = index_check_path(idx, e->path, e->path_len);

	if (r < 0)
		return r;
	if (e->type < INDEX_FILE || e->type > INDEX_SYMLINK)
		return index_seterr(idx, -EINVAL, "entry type %d is unknown", (int)e->type);
	if (e->mode & ~0777U)
		return index_seterr(idx, -EINVAL, "mode %#o has bits beyond 0777", e->mode);
	if (e->size > INT64_MAX)
		return index_seterr(idx, -EINVAL, "size %" PRIu64 " is too large", e->size);
	if (e->type == INDEX_DIR && (e->has_hash || e->size))
		return index_seterr(idx, -EINVAL, "a directory has no hash and size 0");
	if (e->type != INDEX_DIR && !e->deleted && !e->has_hash)
		return index_seterr(idx, -EINVAL, "a file or symlink needs a hash");
	if (e->type != INDEX_SYMLINK && e->target_len)
		return index_seterr(idx, -EINVAL, "only a symlink has a target");
	if (e->target_len > INDEX_TARGET_MAX)
		return index_seterr(idx, -ENAMETOOLONG,
				    "the symlink target is longer than %d bytes", INDEX_TARGET_MAX);
	if (e->type == INDEX_SYMLINK && !e->deleted && !e->target_len)
		return index_seterr(idx, -EINVAL, "a symlink needs a target");
	if (memchr(e->target, 0, e->target_len))
		return index_seterr(idx, -EINVAL, "the symlink target contains a NUL byte");
	if (!vv_is_canonical(&e->vv))
		return index_seterr(idx, -EINVAL, "the version vector is not canonical");
	return 0;
}

/* Writes e (checked) with vector vv under the next sequence, stored in *ret_seq. */
static int store(struct index *idx, const struct index_entry *e, const struct vv *vv,
		 uint64_t *ret_seq)
{
	uint8_t vbuf[VV_ENC_MAX];
	uint64_t seq = idx->seq + 1;
	sqlite3_stmt *st;
	int r, rc, vlen;

	if (idx->seq >= INT64_MAX)
		return index_seterr(idx, -EOVERFLOW, "the sequence counter is exhausted");
	vlen = vv_encode(vv, vbuf, sizeof(vbuf));
	if (vlen < 0)
		return index_seterr(idx, vlen, "the version vector is not canonical");
	r = index_prep(
		idx, &idx->st_upsert,
		"INSERT INTO entries (" COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
		" ?11, ?12, ?13) ON CONFLICT (path) DO UPDATE SET type = excluded.type,"
		" mode = excluded.mode, size = excluded.size, mtime_ns = excluded.mtime_ns,"
		" hash = excluded.hash, target = excluded.target, deleted = excluded.deleted,"
		" vv = excluded.vv, seq = excluded.seq, dev = excluded.dev, ino = excluded.ino,"
		" ctime_ns = excluded.ctime_ns");
	if (r < 0)
		return r;
	st = idx->st_upsert;
	sqlite3_bind_blob(st, 1, e->path, (int)e->path_len, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, (int)e->type);
	sqlite3_bind_int(st, 3, (int)e->mode);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)e->size);
	sqlite3_bind_int64(st, 5, e->mtime_ns);
	if (e->has_hash)
		sqlite3_bind_blob(st, 6, e->hash, INDEX_HASH_LEN, SQLITE_TRANSIENT);
	if (e->type == INDEX_SYMLINK && e->target_len)
		sqlite3_bind_blob(st, 7, e->target, (int)e->target_len, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 8, e->deleted);
	sqlite3_bind_blob(st, 9, vbuf, vlen, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)seq);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)e->dev);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)e->ino);
	sqlite3_bind_int64(st, 13, e->ctime_ns);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return index_fail(idx, rc);

	r = index_prep(idx, &idx->st_meta_seq, "UPDATE meta SET value = ?1 WHERE key = 'seq'");
	if (r < 0)
		return r;
	sqlite3_bind_int64(idx->st_meta_seq, 1, (sqlite3_int64)seq);
	rc = sqlite3_step(idx->st_meta_seq);
	sqlite3_reset(idx->st_meta_seq);
	if (rc != SQLITE_DONE)
		return index_fail(idx, rc);
	idx->seq = seq;
	*ret_seq = seq;
	return 0;
}

/* index_get without the path check (path already checked). */
static int get(struct index *idx, const char *path, size_t len, struct index_entry *ret)
{
	int r, rc;

	r = index_prep(idx, &idx->st_get, "SELECT " COLS " FROM entries WHERE path = ?1");
	if (r < 0)
		return r;
	sqlite3_bind_blob(idx->st_get, 1, path, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(idx->st_get);
	if (rc == SQLITE_ROW)
		r = index_row_read(idx, idx->st_get, ret);
	else if (rc == SQLITE_DONE)
		r = -ENOENT;
	else
		r = index_fail(idx, rc);
	sqlite3_reset(idx->st_get);
	return r;
}

static int load_state(struct index *idx)
{
	sqlite3_stmt *st = NULL;
	int64_t seq = 0, maxseq = 0;
	int r = 0, rc;
	const void *p;

	rc = sqlite3_prepare_v2(idx->db,
				"SELECT (SELECT value FROM meta WHERE key = 'device_id'),"
				" (SELECT value FROM meta WHERE key = 'seq'),"
				" (SELECT ifnull(max(seq), 0) FROM entries)",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = index_fail(idx, rc);
		goto cleanup;
	}
	p = sqlite3_column_blob(st, 0);
	if (!p || sqlite3_column_bytes(st, 0) != VV_DEVICE_LEN || col_int(st, 1, &seq) ||
	    col_int(st, 2, &maxseq) || seq < 0 || maxseq < 0) {
		r = index_damaged(idx, "the device id or sequence counter is missing or invalid");
		goto cleanup;
	}
	memcpy(idx->device, p, VV_DEVICE_LEN);
	idx->seq = (uint64_t)(seq > maxseq ? seq : maxseq);
cleanup:
	sqlite3_finalize(st);
	return r;
}

static int create_schema(struct index *idx)
{
	uint8_t dev[VV_DEVICE_LEN];
	sqlite3_stmt *st = NULL;
	char sql[96];
	int r, rc;

	if (getrandom(dev, sizeof(dev), 0) != (ssize_t)sizeof(dev))
		return index_seterr(idx, -errno, "cannot get random bytes for the device id: %s",
				    strerror(errno));
	r = exec(idx, schema_sql);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(
		idx->db, "INSERT INTO meta (key, value) VALUES ('device_id', ?1), ('seq', 0)", -1,
		&st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	sqlite3_bind_blob(st, 1, dev, sizeof(dev), SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return index_fail(idx, rc);
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = %d",
		 INDEX_APP_ID, INDEX_SCHEMA_VERSION);
	return exec(idx, sql);
}

static int pragma_int(struct index *idx, const char *sql, int64_t *ret)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(idx->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		r = rc == SQLITE_DONE ? index_damaged(idx, sql) : index_fail(idx, rc);
	else
		*ret = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r;
}

/* Checks (or creates) the schema inside one write transaction. */
/*
 * Commits are not fsynced (synchronous=NORMAL): a power cut may lose the
 * last ones, which the scanner finds again on disk. What must never happen
 * is a sequence number we already announced to the peer being handed out
 * again for another change (the peer would skip it as applied). So an
 * index that was not closed cleanly jumps its counter by INDEX_SEQ_GAP,
 * and that jump (with the "open" mark) is written with a full sync before
 * any new number is handed out.
 */
#define INDEX_SEQ_GAP ((uint64_t)1 << 20)

static int mark_open(struct index *idx)
{
	sqlite3_stmt *st = NULL;
	int64_t was_open = 0;
	int r, rc;

	rc = sqlite3_prepare_v2(idx->db, "SELECT value FROM meta WHERE key = 'open'", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	if (sqlite3_step(st) == SQLITE_ROW)
		was_open = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (was_open && idx->seq > 0) {
		if (idx->seq > INT64_MAX - INDEX_SEQ_GAP)
			return index_damaged(idx, "the sequence counter is exhausted");
		idx->seq += INDEX_SEQ_GAP;
	}
	rc = sqlite3_prepare_v2(idx->db,
				"INSERT INTO meta (key, value) VALUES ('open', 1), ('seq', ?1)"
				" ON CONFLICT (key) DO UPDATE SET value = excluded.value",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	sqlite3_bind_int64(st, 1, (int64_t)idx->seq);
	rc = sqlite3_step(st);
	r = rc == SQLITE_DONE ? 0 : index_fail(idx, rc);
	sqlite3_finalize(st);
	return r;
}

static int setup(struct index *idx)
{
	int64_t app_id, version, ntables;
	int r;

	r = exec(idx, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	if ((r = pragma_int(idx, "PRAGMA application_id", &app_id)) < 0 ||
	    (r = pragma_int(idx, "PRAGMA user_version", &version)) < 0 ||
	    (r = pragma_int(idx, "SELECT count(*) FROM sqlite_master", &ntables)) < 0)
		goto cleanup;
	if (app_id != INDEX_APP_ID && (app_id != 0 || ntables != 0 || version != 0)) {
		r = index_damaged(idx, "it is an SQLite database but not a tandem index");
		goto cleanup;
	}
	if (version > INDEX_SCHEMA_VERSION) {
		r = index_seterr(
			idx, -EPROTONOSUPPORT,
			"index %s has schema version %" PRId64 " but this tandem knows only up "
			"to %d: it was written by a newer tandem; run that version, or move "
			"the file aside to start a fresh index",
			idx->file_q, version, INDEX_SCHEMA_VERSION);
		goto cleanup;
	}
	if (version < 1) {
		r = create_schema(idx);
		if (r < 0)
			goto cleanup;
	}
	r = index_schema_extend(idx);
	if (r < 0)
		goto cleanup;
	r = load_state(idx);
	if (r < 0)
		goto cleanup;
	r = mark_open(idx);
	if (r < 0)
		goto cleanup;
	r = exec(idx, "COMMIT");
cleanup:
	if (r < 0)
		(void)sqlite3_exec(idx->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static int quick_check(struct index *idx)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *txt;
	char why[ERR_LEN / 2];
	int rc, r = 0;

	rc = sqlite3_prepare_v2(idx->db, "PRAGMA quick_check", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = index_fail(idx, rc);
		goto cleanup;
	}
	txt = sqlite3_column_text(st, 0);
	if (!txt || strcmp((const char *)txt, "ok") != 0) {
		snprintf(why, sizeof(why), "quick_check: %s",
			 txt ? (const char *)txt : "no result");
		for (char *c = why; *c; c++)
			if ((unsigned char)*c < 0x20)
				*c = ' ';
		r = index_damaged(idx, why);
	}
cleanup:
	sqlite3_finalize(st);
	return r;
}

int index_open(const char *file, struct index **ret, struct err *err)
{
	struct index *idx;
	int r, rc;

	idx = calloc(1, sizeof(*idx));
	if (!idx) {
		err_set(err, "out of memory");
		return -ENOMEM;
	}
	log_quote(file, strlen(file), idx->file_q, sizeof(idx->file_q));
	rc = sqlite3_open_v2(file, &idx->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		r = index_fail(idx, rc);
		goto cleanup;
	}
	sqlite3_extended_result_codes(idx->db, 1);
	sqlite3_busy_timeout(idx->db, BUSY_TIMEOUT_MS);
	r = quick_check(idx);
	if (r < 0)
		goto cleanup;
	/* Not "wal" on file systems without shared memory: then rollback journal it is. */
	/* FULL for the opening transaction (the "open" mark and a sequence
	 * jump must be on disk first), NORMAL after: see mark_open(). */
	r = exec(idx, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
		      " PRAGMA foreign_keys = ON");
	if (r < 0)
		goto cleanup;
	r = setup(idx);
	if (r < 0)
		goto cleanup;
	r = exec(idx, "PRAGMA synchronous = NORMAL");
	if (r < 0)
		goto cleanup;
	idx->opened = true;
	*ret = idx;
	return 0;
cleanup:
	err_set(err, "%s", idx->err.msg);
	index_free(idx);
	return r;
}

void index_free(struct index *idx)
{
	if (!idx)
		return;
	sqlite3_finalize(idx->st_get);
	sqlite3_finalize(idx->st_get_ino);
	sqlite3_finalize(idx->st_upsert);
	sqlite3_finalize(idx->st_meta_seq);
	sqlite3_finalize(idx->st_next_under);
	sqlite3_finalize(idx->st_get_hash);
	sqlite3_finalize(idx->st_manifest_get);
	sqlite3_finalize(idx->st_manifest_put);
	if (idx->db) {
		if (!sqlite3_get_autocommit(idx->db))
			(void)sqlite3_exec(idx->db, "ROLLBACK", NULL, NULL, NULL);
		if (idx->opened)
			(void)sqlite3_exec(idx->db,
					   "PRAGMA synchronous = FULL;"
					   " UPDATE meta SET value = 0 WHERE key = 'open'",
					   NULL, NULL, NULL);
		sqlite3_close(idx->db);
	}
	free(idx);
}

const char *index_errmsg(const struct index *idx)
{
	return idx->err.msg;
}

void index_device_id(const struct index *idx, uint8_t ret[static VV_DEVICE_LEN])
{
	memcpy(ret, idx->device, VV_DEVICE_LEN);
}

uint64_t index_seq(const struct index *idx)
{
	return idx->seq;
}

int index_peer_get(struct index *idx, uint8_t ret[static VV_DEVICE_LEN])
{
	sqlite3_stmt *st = NULL;
	const void *p;
	int rc, r;

	rc = sqlite3_prepare_v2(idx->db, "SELECT value FROM meta WHERE key = 'peer_id'", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = index_seterr(idx, -ENOENT, "no peer device id stored yet");
	} else if (rc != SQLITE_ROW) {
		r = index_fail(idx, rc);
	} else {
		p = sqlite3_column_blob(st, 0);
		if (!p || sqlite3_column_bytes(st, 0) != VV_DEVICE_LEN) {
			r = index_damaged(idx, "the peer device id is invalid");
		} else {
			memcpy(ret, p, VV_DEVICE_LEN);
			r = 0;
		}
	}
	sqlite3_finalize(st);
	return r;
}

int index_peer_set(struct index *idx, const uint8_t id[static VV_DEVICE_LEN])
{
	uint8_t cur[VV_DEVICE_LEN];
	sqlite3_stmt *st = NULL;
	int r, rc;

	if (memcmp(id, idx->device, VV_DEVICE_LEN) == 0)
		return index_seterr(idx, -EINVAL, "the peer's device id is our own");
	r = index_peer_get(idx, cur);
	if (r == 0)
		return memcmp(cur, id, VV_DEVICE_LEN) == 0
			       ? 0
			       : index_seterr(idx, -EEXIST, "index %s belongs to another peer",
					      idx->file_q);
	if (r != -ENOENT)
		return r;
	rc = sqlite3_prepare_v2(idx->db, "INSERT INTO meta (key, value) VALUES ('peer_id', ?1)", -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	sqlite3_bind_blob(st, 1, id, VV_DEVICE_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	r = rc == SQLITE_DONE ? 0 : index_fail(idx, rc);
	sqlite3_finalize(st);
	return r;
}

int index_peer_seq_get(struct index *idx, const uint8_t device[static VV_DEVICE_LEN], uint64_t *ret)
{
	sqlite3_stmt *st = NULL;
	int64_t v;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(idx->db, "SELECT applied_seq FROM peers WHERE device = ?1", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	sqlite3_bind_blob(st, 1, device, VV_DEVICE_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		*ret = 0;
	else if (rc != SQLITE_ROW)
		r = index_fail(idx, rc);
	else if (col_int(st, 0, &v) || v < 0)
		r = index_damaged(idx, "a peer sequence number is invalid");
	else
		*ret = (uint64_t)v;
	sqlite3_finalize(st);
	return r;
}

int index_peer_seq_set(struct index *idx, const uint8_t device[static VV_DEVICE_LEN], uint64_t seq)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	if (seq > INT64_MAX)
		return index_seterr(idx, -EINVAL, "peer sequence %" PRIu64 " is too large", seq);
	rc = sqlite3_prepare_v2(
		idx->db,
		"INSERT INTO peers (device, applied_seq) VALUES (?1, ?2)"
		" ON CONFLICT (device) DO UPDATE SET applied_seq = excluded.applied_seq",
		-1, &st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	sqlite3_bind_blob(st, 1, device, VV_DEVICE_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
	rc = sqlite3_step(st);
	r = rc == SQLITE_DONE ? 0 : index_fail(idx, rc);
	sqlite3_finalize(st);
	return r;
}

int index_begin(struct index *idx)
{
	int r;

	if (!sqlite3_get_autocommit(idx->db))
		return index_seterr(idx, -EBUSY, "a transaction is already open");
	r = exec(idx, "BEGIN IMMEDIATE");
	if (r == 0)
		idx->tx_seq = idx->seq;
	return r;
}

int index_commit(struct index *idx)
{
	if (sqlite3_get_autocommit(idx->db))
		return index_seterr(idx, -EINVAL, "no transaction is open");
	return exec(idx, "COMMIT");
}

int index_rollback(struct index *idx)
{
	int r;

	if (sqlite3_get_autocommit(idx->db))
		return 0;
	r = exec(idx, "ROLLBACK");
	idx->seq = idx->tx_seq;
	return r;
}

/*
 * Our counter in vv goes up, to at least the sequence number the change is
 * about to get (store()'s). Our counters then grow across paths: a vector
 * carried to another path (a rename by a peer of an older version, which
 * gave the new path the old one's vector) never holds a counter of ours as
 * high as a new change there, so the peer's renamed file cannot dominate a
 * file we made under that name.
 */
static int bump(struct index *idx, struct vv *vv)
{
	int r = vv_bump(vv, idx->device);

	if (r < 0)
		return r;
	for (unsigned i = 0; i < vv->n; i++)
		if (memcmp(vv->e[i].device, idx->device, VV_DEVICE_LEN) == 0 &&
		    vv->e[i].counter <= idx->seq)
			vv->e[i].counter = idx->seq + 1;
	return 0;
}

static int put(struct index *idx, struct index_entry *e, int local)
{
	struct index_entry *cur = NULL;
	struct vv vv = e->vv;
	uint64_t seq;
	int r;

	r = check_entry(idx, e);
	if (r < 0)
		return r;
	if (local) {
		cur = malloc(sizeof(*cur));
		if (!cur)
			return index_seterr(idx, -ENOMEM, "out of memory");
	}
	r = op_begin(idx);
	if (r < 0)
		goto cleanup;
	if (local) {
		r = get(idx, e->path, e->path_len, cur);
		if (r == 0)
			vv = cur->vv;
		else if (r == -ENOENT)
			vv_init(&vv);
		if (r == 0 || r == -ENOENT) {
			r = bump(idx, &vv);
			if (r < 0)
				index_seterr(idx, r, "cannot bump the version vector of %s",
					     LOG_Q(e->path));
		}
	}
	if (r >= 0)
		r = store(idx, e, &vv, &seq);
	r = op_end(idx, r);
	if (r >= 0) {
		e->vv = vv;
		e->seq = seq;
	}
cleanup:
	free(cur);
	return r;
}

int index_put_local(struct index *idx, struct index_entry *e)
{
	return put(idx, e, 1);
}

int index_put_remote(struct index *idx, struct index_entry *e)
{
	return put(idx, e, 0);
}

int index_delete_local(struct index *idx, const char *path, size_t len)
{
	struct index_entry *e;
	uint64_t seq;
	int r;

	r = index_check_path(idx, path, len);
	if (r < 0)
		return r;
	e = malloc(sizeof(*e));
	if (!e)
		return index_seterr(idx, -ENOMEM, "out of memory");
	r = op_begin(idx);
	if (r < 0)
		goto cleanup;
	r = get(idx, path, len, e);
	if (r == -ENOENT)
		r = index_seterr(idx, -ENOENT, "no entry for this path");
	if (r == 0 && !e->deleted) {
		r = bump(idx, &e->vv);
		if (r == 0) {
			e->deleted = true;
			e->dev = e->ino = 0;
			e->ctime_ns = 0;
			r = store(idx, e, &e->vv, &seq);
		}
		if (r == 0)
			r = 1;
	}
	r = op_end(idx, r);
cleanup:
	free(e);
	return r;
}

/*
 * Moves live entry *e to newpath: creation there first, then the tombstone.
 * A vector is the history of a path: the new entry's is what we knew at
 * newpath (its tombstone, if any) and a new counter of ours, never e's.
 * e's could hold the peer's counter of a later change elsewhere and so
 * dominate the peer's earlier write at newpath that we have not applied
 * yet (a download in flight): the peer overwrote it without a conflict
 * copy (docs/SIM.md bug 10). The tombstone of e's path takes e's vector and
 * our counter; the peer finds the move by content (apply.c), not by vector.
 */
static int move_one(struct index *idx, struct index_entry *e, struct index_entry *dst,
		    const char *newpath, size_t newlen)
{
	struct vv vv;
	uint64_t seq;
	int r;

	r = index_check_path(idx, newpath, newlen);
	if (r < 0)
		return r;
	vv_init(&vv);
	r = get(idx, newpath, newlen, dst);
	if (r == 0 && !dst->deleted)
		return index_seterr(idx, -EEXIST, "the rename target exists");
	if (r == 0)
		vv = dst->vv;
	else if (r == -ENOENT)
		r = 0;
	if (r == 0)
		r = bump(idx, &vv);
	if (r < 0)
		return r == -ENOSPC ? index_seterr(idx, r, "version vector full") : r;
	*dst = *e;
	memcpy(dst->path, newpath, newlen);
	dst->path[newlen] = '\0';
	dst->path_len = newlen;
	r = store(idx, dst, &vv, &seq);
	if (r == 0 && e->type == INDEX_FILE)
		r = index_lazy_move(idx, e->path, e->path_len, newpath, newlen);
	if (r < 0)
		return r;
	r = bump(idx, &e->vv);
	if (r < 0)
		return index_seterr(idx, r, "version vector full");
	e->deleted = true;
	e->dev = e->ino = 0;
	e->ctime_ns = 0;
	return store(idx, e, &e->vv, &seq);
}

/* The next path after *cur (exclusive) and below hi (exclusive), into cur. */
static int next_under(struct index *idx, char *cur, size_t *cur_len, const char *hi, size_t hi_len)
{
	const void *p;
	int r, rc, n;

	r = index_prep(idx, &idx->st_next_under,
		       "SELECT path FROM entries WHERE path > ?1 AND path < ?2 AND deleted = 0"
		       " ORDER BY path LIMIT 1");
	if (r < 0)
		return r;
	sqlite3_bind_blob(idx->st_next_under, 1, cur, (int)*cur_len, SQLITE_STATIC);
	sqlite3_bind_blob(idx->st_next_under, 2, hi, (int)hi_len, SQLITE_STATIC);
	rc = sqlite3_step(idx->st_next_under);
	if (rc == SQLITE_DONE) {
		r = 0;
	} else if (rc != SQLITE_ROW) {
		r = index_fail(idx, rc);
	} else {
		p = sqlite3_column_blob(idx->st_next_under, 0);
		n = sqlite3_column_bytes(idx->st_next_under, 0);
		if (!p || n < 1 || n > PATH_REL_MAX) {
			r = index_damaged(idx, "an entry has a missing or overlong path");
		} else {
			memcpy(cur, p, (size_t)n);
			cur[n] = '\0';
			*cur_len = (size_t)n;
			r = 1;
		}
	}
	sqlite3_reset(idx->st_next_under);
	return r;
}

struct rename_buf {
	struct index_entry e, dst;
	char cur[PATH_REL_MAX + 2];
	char hi[PATH_REL_MAX + 2];
	char newpath[PATH_REL_MAX + 1];
};

int index_rename(struct index *idx, const char *from, size_t from_len, const char *to,
		 size_t to_len)
{
	struct rename_buf *b;
	size_t cur_len;
	int r, moved = 0;

	if ((r = index_check_path(idx, from, from_len)) < 0 ||
	    (r = index_check_path(idx, to, to_len)) < 0)
		return r;
	if (to_len >= from_len && memcmp(to, from, from_len) == 0 &&
	    (to_len == from_len || to[from_len] == '/'))
		return index_seterr(idx, -EINVAL,
				    "cannot rename a path onto itself or beneath itself");
	b = malloc(sizeof(*b));
	if (!b)
		return index_seterr(idx, -ENOMEM, "out of memory");
	r = op_begin(idx);
	if (r < 0)
		goto cleanup;
	r = get(idx, from, from_len, &b->e);
	if (r == 0 && b->e.deleted)
		r = -ENOENT;
	if (r == -ENOENT)
		r = index_seterr(idx, -ENOENT, "the rename source does not exist");
	if (r == 0)
		r = move_one(idx, &b->e, &b->dst, to, to_len);
	if (r < 0)
		goto done;
	moved = 1;
	if (b->e.type != INDEX_DIR)
		goto done;
	/* Everything in [from "/", from "0"): '0' follows '/' in byte order. */
	memcpy(b->cur, from, from_len);
	b->cur[from_len] = '/';
	cur_len = from_len + 1;
	memcpy(b->hi, from, from_len);
	b->hi[from_len] = '0';
	while ((r = next_under(idx, b->cur, &cur_len, b->hi, from_len + 1)) == 1) {
		size_t newlen = to_len + cur_len - from_len;

		if (newlen > PATH_REL_MAX) {
			r = index_seterr(idx, -ENAMETOOLONG, "a renamed path would exceed %d bytes",
					 PATH_REL_MAX);
			break;
		}
		memcpy(b->newpath, to, to_len);
		memcpy(b->newpath + to_len, b->cur + from_len, cur_len - from_len);
		r = get(idx, b->cur, cur_len, &b->e);
		if (r == 0)
			r = move_one(idx, &b->e, &b->dst, b->newpath, newlen);
		if (r < 0)
			break;
		moved++;
	}
done:
	r = op_end(idx, r < 0 ? r : moved);
cleanup:
	free(b);
	return r;
}

int index_set_stat(struct index *idx, const char *path, size_t len, uint64_t dev, uint64_t ino,
		   int64_t ctime_ns)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	r = index_check_path(idx, path, len);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(
		idx->db, "UPDATE entries SET dev = ?2, ino = ?3, ctime_ns = ?4 WHERE path = ?1", -1,
		&st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	sqlite3_bind_blob(st, 1, path, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)dev);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)ino);
	sqlite3_bind_int64(st, 4, ctime_ns);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		r = index_fail(idx, rc);
	else if (sqlite3_changes(idx->db) == 0)
		r = index_seterr(idx, -ENOENT, "no entry for this path");
	sqlite3_finalize(st);
	return r;
}

int index_get(struct index *idx, const char *path, size_t len, struct index_entry *ret)
{
	int r = index_check_path(idx, path, len);

	return r < 0 ? r : get(idx, path, len, ret);
}

int index_get_by_ino(struct index *idx, uint64_t dev, uint64_t ino, struct index_entry *ret)
{
	int r, rc;

	if (ino == 0)
		return index_seterr(idx, -ENOENT, "inode 0 is never stored");
	r = index_prep(idx, &idx->st_get_ino,
		       "SELECT " COLS " FROM entries WHERE ino = ?1 AND dev = ?2 AND deleted = 0"
		       " LIMIT 1");
	if (r < 0)
		return r;
	sqlite3_bind_int64(idx->st_get_ino, 1, (sqlite3_int64)ino);
	sqlite3_bind_int64(idx->st_get_ino, 2, (sqlite3_int64)dev);
	rc = sqlite3_step(idx->st_get_ino);
	if (rc == SQLITE_ROW)
		r = index_row_read(idx, idx->st_get_ino, ret);
	else if (rc == SQLITE_DONE)
		r = index_seterr(idx, -ENOENT, "no live entry with this inode");
	else
		r = index_fail(idx, rc);
	sqlite3_reset(idx->st_get_ino);
	return r;
}

/* Runs a query over COLS, binding up to two blobs or one integer. */
int index_iterate(struct index *idx, const char *sql, const void *b1, size_t l1, const void *b2,
		  size_t l2, int64_t i1, index_visit_fn fn, void *userdata)
{
	struct index_entry *e;
	sqlite3_stmt *st = NULL;
	int r = 0, rc;

	e = malloc(sizeof(*e));
	if (!e)
		return index_seterr(idx, -ENOMEM, "out of memory");
	rc = sqlite3_prepare_v2(idx->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = index_fail(idx, rc);
		goto cleanup;
	}
	if (b1) {
		sqlite3_bind_blob(st, 1, b1, (int)l1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, b2, (int)l2, SQLITE_STATIC);
	} else if (sqlite3_bind_parameter_count(st) > 0) {
		sqlite3_bind_int64(st, 1, i1);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = index_row_read(idx, st, e);
		if (r == 0)
			r = fn(e, userdata);
		if (r != 0)
			goto cleanup;
	}
	if (rc != SQLITE_DONE)
		r = index_fail(idx, rc);
cleanup:
	sqlite3_finalize(st);
	free(e);
	return r;
}

int index_changes_since(struct index *idx, uint64_t since, index_visit_fn fn, void *userdata)
{
	if (since >= INT64_MAX)
		return 0;
	return index_iterate(idx, "SELECT " COLS " FROM entries WHERE seq > ?1 ORDER BY seq", NULL,
			     0, NULL, 0, (int64_t)since, fn, userdata);
}

int index_foreach_live(struct index *idx, index_visit_fn fn, void *userdata)
{
	return index_iterate(idx, "SELECT " COLS " FROM entries WHERE deleted = 0 ORDER BY path",
			     NULL, 0, NULL, 0, 0, fn, userdata);
}

int index_foreach_under(struct index *idx, const char *dir, size_t len, index_visit_fn fn,
			void *userdata)
{
	char lo[PATH_REL_MAX + 2], hi[PATH_REL_MAX + 2];
	int r = index_check_path(idx, dir, len);

	if (r < 0)
		return r;
	memcpy(lo, dir, len);
	lo[len] = '/';
	memcpy(hi, dir, len);
	hi[len] = '0';
	return index_iterate(
		idx, "SELECT " COLS " FROM entries WHERE path >= ?1 AND path < ?2 ORDER BY path",
		lo, len + 1, hi, len + 1, 0, fn, userdata);
}

int index_gc_tombstones(struct index *idx, uint64_t acked_seq)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	if (acked_seq > INT64_MAX)
		acked_seq = INT64_MAX;
	rc = sqlite3_prepare_v2(idx->db, "DELETE FROM entries WHERE deleted = 1 AND seq <= ?1", -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)acked_seq);
	rc = sqlite3_step(st);
	r = rc == SQLITE_DONE ? sqlite3_changes(idx->db) : index_fail(idx, rc);
	sqlite3_finalize(st);
	return r;
}

/* ---- the tables index_open() creates and index_rename() keeps in step
 * (here, not in index_query.c and index_lazy.c, which are built on this
 * file: lazy.h, index.h) ---- */

static const char lazy_sql[] =
	"CREATE TABLE IF NOT EXISTS lazy ("
	" path BLOB PRIMARY KEY NOT NULL," /* as in entries */
	" hash BLOB NOT NULL,"		   /* the content it stands for */
	" size INTEGER NOT NULL,"
	" bits BLOB NOT NULL);" /* presence of each block */
	"CREATE TRIGGER IF NOT EXISTS lazy_changed AFTER UPDATE ON entries"
	" WHEN new.deleted <> 0 OR new.hash IS NOT old.hash OR new.size <> old.size"
	" OR new.path IS NOT old.path"
	" BEGIN DELETE FROM lazy WHERE path = old.path; END;"
	"CREATE TRIGGER IF NOT EXISTS lazy_gone AFTER DELETE ON entries"
	" BEGIN DELETE FROM lazy WHERE path = old.path; END;";

int index_lazy_init(struct index *idx)
{
	int rc = sqlite3_exec(idx->db, lazy_sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : index_fail(idx, rc);
}

/*
 * Tables and indexes added after schema version 1 was first written; an
 * older file gets them on open (the software is unreleased, so there is no
 * migration beyond this).
 */
static const char extend_sql[] = "CREATE TABLE IF NOT EXISTS manifests ("
				 " hash BLOB PRIMARY KEY NOT NULL," /* file hash, 32 bytes */
				 " blob BLOB NOT NULL);" /* blocks_manifest_encode() form */
				 "CREATE INDEX IF NOT EXISTS entries_hash ON entries (hash);";

int index_schema_extend(struct index *idx)
{
	int rc = sqlite3_exec(idx->db, extend_sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	return index_lazy_init(idx); /* renames move its rows: always there */
}

int index_lazy_del(struct index *idx, const char *path, size_t len)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	rc = sqlite3_prepare_v2(idx->db, "DELETE FROM lazy WHERE path = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	sqlite3_bind_blob(st, 1, path, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	r = rc == SQLITE_DONE ? 0 : index_fail(idx, rc);
	sqlite3_finalize(st);
	return r;
}

int index_lazy_move(struct index *idx, const char *from, size_t from_len, const char *to,
		    size_t to_len)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	r = index_lazy_del(idx, to, to_len);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(idx->db, "UPDATE lazy SET path = ?2 WHERE path = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return index_fail(idx, rc);
	sqlite3_bind_blob(st, 1, from, (int)from_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, to, (int)to_len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	r = rc == SQLITE_DONE ? 0 : index_fail(idx, rc);
	if (r == 0 && sqlite3_changes(idx->db) > 0)
		idx->lazy_moves++;
	sqlite3_finalize(st);
	return r;
}
