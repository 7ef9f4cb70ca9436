/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_INDEX_INT_H
#define TANDEM_SYNC_INDEX_INT_H

/*
 * Private to the index module (index.c, index_query.c): the handle and the
 * helpers both files share. Nothing outside src/sync/index*.c includes it.
 */

#include <sqlite3.h>

#include "sync/index.h"

/* The columns row_read() expects, in this order. */
#define INDEX_COLS                                                                                 \
	"path, type, mode, size, mtime_ns, hash, target, deleted, vv, seq, dev, ino, ctime_ns"

struct index {
	sqlite3 *db;
	uint8_t device[VV_DEVICE_LEN];
	uint64_t seq;	  /* highest local sequence handed out */
	uint64_t op_seq;  /* seq when the current internal savepoint began */
	uint64_t tx_seq;  /* seq when index_begin ran */
	char file_q[128]; /* quoted file name for messages */
	struct err err;	  /* the last failure; index_errmsg() */
	sqlite3_stmt *st_get, *st_get_ino, *st_upsert, *st_meta_seq, *st_next_under;
	sqlite3_stmt *st_get_hash, *st_manifest_get, *st_manifest_put; /* index_query.c */
	bool opened;	     /* the "open" mark is set: clear it on close */
	uint64_t lazy_moves; /* lazy rows moved by renames (index_lazy.c) */
};

/* Sets idx->errmsg from fmt and returns r. */
int index_seterr(struct index *idx, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Maps a failed SQLite call (rc) to -errno and keeps its message. */
int index_fail(struct index *idx, int rc);

/* -EBADMSG with a sentence saying the file is damaged (why) and what to do. */
int index_damaged(struct index *idx, const char *why);

/* Prepares the cached statement *st once; later calls reset it. 0 or -errno. */
int index_prep(struct index *idx, sqlite3_stmt **st, const char *sql);

/* Reads and validates one row of INDEX_COLS into e: 0 or -EBADMSG. */
int index_row_read(struct index *idx, sqlite3_stmt *st, struct index_entry *e);

/* Checks a path with path_check(), message in errmsg: 0 or -errno. */
int index_check_path(struct index *idx, const char *p, size_t len);

/* Runs sql (INDEX_COLS rows) with up to two blobs bound, calling fn for each row. */
int index_iterate(struct index *idx, const char *sql, const void *b1, size_t l1, const void *b2,
		  size_t l2, int64_t i1, index_visit_fn fn, void *userdata);

/* Creates what a schema-1 file may lack (tables added before release). */
int index_schema_extend(struct index *idx);

#endif
