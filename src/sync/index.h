/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_INDEX_H
#define TANDEM_SYNC_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "sync/path.h"
#include "sync/vv.h"

/*
 * The sync engine's persistent index: one SQLite file per peer holding
 * what we know of every path in the share, including deletions.
 *
 * Design note.
 * - Every change to an entry (local edit, applied remote change, delete,
 *   rename) takes the next local sequence number, so "what changed since
 *   the peer last saw seq S" is a range scan (index_changes_since). The
 *   counter never goes back, even when tombstones are collected.
 * - A deletion is a tombstone (deleted = true, version bumped, new seq);
 *   it stays, so a deletion made while the peer was away is sent to it
 *   instead of its copy coming back.
 * - A rename is a deletion of every old path and a creation of the same
 *   entry (hash, size, mode, stat identity) at the new path, in one
 *   transaction: the peer learns both and can rename its copy instead of
 *   fetching the content again.
 * - The file uses WAL with synchronous=NORMAL: commits are not fsynced
 *   (a burst of 10,000 small files would otherwise pay one fsync per
 *   batch, seconds in all); a power cut may lose the last commits, and
 *   the scanner finds those changes again on disk. A sequence number we
 *   have announced to the peer must still never be handed out again (the
 *   peer would skip the new change as already applied), so an index not
 *   closed cleanly jumps its counter by 2^20 at open, written with a full
 *   sync before any number is handed out.
 * - Rows read back are validated like peer data (lengths, enums, the path
 *   gate); a damaged row is -EBADMSG, never a crash.
 *
 * Threads: an index is used by one thread at a time (the engine thread);
 * the connection is opened SQLITE_OPEN_NOMUTEX and the handle caches the
 * sequence counter. Only one handle per file may write.
 */

#define INDEX_HASH_LEN 32
#define INDEX_TARGET_MAX PATH_REL_MAX /* symlink target bytes */
#define INDEX_SCHEMA_VERSION 1

enum index_type {
	INDEX_FILE = 1, /* same numbers as enum sync_kind */
	INDEX_DIR = 2,
	INDEX_SYMLINK = 3,
};

/*
 * One path's state. Caller-owned and self-contained (no pointers), so a
 * copy stays valid after the index changes; it is about 8 KiB.
 */
struct index_entry {
	char path[PATH_REL_MAX + 1]; /* NUL-terminated, passes path_check() */
	size_t path_len;
	enum index_type type;
	uint32_t mode; /* within 0777 */
	uint64_t size; /* <= INT64_MAX; 0 for directories */
	int64_t mtime_ns;
	bool has_hash; /* false for directories; required for live files and symlinks */
	uint8_t hash[INDEX_HASH_LEN];	   /* content, or the target for symlinks */
	char target[INDEX_TARGET_MAX + 1]; /* symlinks only, NUL-terminated */
	size_t target_len;		   /* 1..INDEX_TARGET_MAX for live symlinks, else 0 */
	bool deleted;			   /* tombstone */
	struct vv vv;
	uint64_t seq; /* local sequence of the last change; set by the index */
	/* Local-only stat identity (never sent): ino 0 means unknown. */
	uint64_t dev;
	uint64_t ino;
	int64_t ctime_ns;
};

struct index;

/*
 * Called for each entry by the iteration functions. e is valid during the
 * call only. Return 0 to go on, > 0 to stop (the iteration returns that
 * value), < 0 to stop with that error. The callback may read the index
 * (index_get...) but must not change it.
 */
typedef int (*index_visit_fn)(const struct index_entry *e, void *userdata);

/*
 * Opens (creating when missing) the index at file: WAL, synchronous=NORMAL,
 * foreign_keys on, quick_check run. A new index gets a random device id.
 * Returns 0 and sets *ret (free with index_free); *ret is untouched on
 * failure and err (may be NULL) gets a sentence saying
 * what failed and what to do:
 * -EBADMSG: not a database, not a tandem index, or damaged;
 * -EPROTONOSUPPORT: written by a newer tandem (schema version too high);
 * another -errno (-EACCES, -ENOENT for a missing directory, -EIO, -ENOMEM).
 */
int index_open(const char *file, struct index **ret, struct err *err)
	__attribute__((warn_unused_result));

/* Closes the database. A transaction still open is rolled back. NULL is a no-op. */
void index_free(struct index *idx);

/* The message of the last failure on idx (SQLite's text or ours); never NULL. */
const char *index_errmsg(const struct index *idx);

/* Our own device id (the one in our version vector entries). */
void index_device_id(const struct index *idx, uint8_t ret[static VV_DEVICE_LEN]);

/* The highest local sequence number handed out (0 for a new index). */
uint64_t index_seq(const struct index *idx);

/* The paired peer's device id: 0 and *ret set, or -ENOENT when not yet known. */
int index_peer_get(struct index *idx, uint8_t ret[static VV_DEVICE_LEN])
	__attribute__((warn_unused_result));

/* Stores the peer's device id. Returns 0 (also when it is already the same),
 * -EEXIST when a different peer is stored, -EINVAL for our own id. */
int index_peer_set(struct index *idx, const uint8_t id[static VV_DEVICE_LEN])
	__attribute__((warn_unused_result));

/* The highest sequence of device's changes that we have applied: sets *ret
 * (0 when none yet) and returns 0, or -errno. */
int index_peer_seq_get(struct index *idx, const uint8_t device[static VV_DEVICE_LEN], uint64_t *ret)
	__attribute__((warn_unused_result));

/* Records that device's changes up to seq are applied (store it in the same
 * transaction as the changes). Returns 0 or -errno. */
int index_peer_seq_set(struct index *idx, const uint8_t device[static VV_DEVICE_LEN], uint64_t seq)
	__attribute__((warn_unused_result));

/*
 * Explicit transaction: every change until index_commit is applied
 * atomically and costs one fsync. Without one, each call is its own
 * transaction. Nested index_begin is -EBUSY. index_rollback also restores
 * the sequence counter. Return 0 or -errno (see index_errmsg).
 */
int index_begin(struct index *idx) __attribute__((warn_unused_result));
int index_commit(struct index *idx) __attribute__((warn_unused_result));
int index_rollback(struct index *idx);

/*
 * Records a local change to e->path: the stored version vector (empty for
 * a new path) gets our counter bumped, the entry gets the next sequence,
 * and e->vv and e->seq are set to what was stored. e->vv on input is
 * ignored. Returns 0; -EINVAL (message in index_errmsg) or -ENAMETOOLONG
 * for an invalid entry; -ENOSPC when the vector is full; another -errno.
 */
int index_put_local(struct index *idx, struct index_entry *e) __attribute__((warn_unused_result));

/*
 * Stores an entry as received from the peer (after the engine decided to
 * accept it): e->vv is kept as given, the entry gets the next local
 * sequence (written to e->seq). Same returns as index_put_local.
 */
int index_put_remote(struct index *idx, struct index_entry *e) __attribute__((warn_unused_result));

/*
 * Marks path deleted (a tombstone): version bumped, next sequence, stat
 * identity cleared; the other fields keep their last values. Returns 1 when
 * it did, 0 when it was already a tombstone (nothing changed), -ENOENT when
 * unknown, -EINVAL for a bad path.
 */
int index_delete_local(struct index *idx, const char *path, size_t len)
	__attribute__((warn_unused_result));

/*
 * Renames from (a file, or a directory and everything beneath it) to to, in
 * one transaction: each old path becomes a tombstone (its vector bumped) and
 * the same entry is created at the new path with the vector of that path's
 * own history (any tombstone already there) and a new counter of ours, not
 * the old entry's vector (docs/SYNC.md "Renames and version vectors"), each
 * with its own new sequence. Paths that merely share the prefix ("ab" for
 * "a") are untouched. Returns the number of entries moved; -ENOENT when
 * from is not a live entry; -EEXIST when a target path is live; -EINVAL
 * when to is from or beneath it or a path is invalid; -ENAMETOOLONG when a
 * new path would be too long. On failure nothing changed.
 */
int index_rename(struct index *idx, const char *from, size_t from_len, const char *to,
		 size_t to_len) __attribute__((warn_unused_result));

/* Updates only the local stat identity of path (no new sequence: it is not
 * a change the peer sees). Returns 0, -ENOENT, -EINVAL. */
int index_set_stat(struct index *idx, const char *path, size_t len, uint64_t dev, uint64_t ino,
		   int64_t ctime_ns) __attribute__((warn_unused_result));

/* Fills *ret with path's entry (live or tombstone). Returns 0; -ENOENT;
 * -EINVAL for a bad path; -EBADMSG when the stored row is damaged. */
int index_get(struct index *idx, const char *path, size_t len, struct index_entry *ret)
	__attribute__((warn_unused_result));

/* Fills *ret with the live entry whose stat identity is (dev, ino); for
 * rename detection. Returns 0, -ENOENT, -EBADMSG. ino 0 is -ENOENT. */
int index_get_by_ino(struct index *idx, uint64_t dev, uint64_t ino, struct index_entry *ret)
	__attribute__((warn_unused_result));

/* Calls fn for every entry (tombstones included) with seq > since, in
 * sequence order. Returns 0, the callback's value, or -errno (-EBADMSG
 * for a damaged row). */
int index_changes_since(struct index *idx, uint64_t since, index_visit_fn fn, void *userdata)
	__attribute__((warn_unused_result));

/* Calls fn for every live entry in path order (a rescan looks for vanished
 * files with it). Returns like index_changes_since. */
int index_foreach_live(struct index *idx, index_visit_fn fn, void *userdata)
	__attribute__((warn_unused_result));

/* Calls fn for every entry strictly beneath directory dir (live and
 * tombstones), in path order. Returns like index_changes_since, -EINVAL
 * for a bad path. */
int index_foreach_under(struct index *idx, const char *dir, size_t len, index_visit_fn fn,
			void *userdata) __attribute__((warn_unused_result));

/* Calls fn for every live entry directly in directory dir (len 0: the
 * share root), in path order; a scan of one directory compares them with
 * the disk. Returns like index_changes_since, -EINVAL for a bad path. */
int index_foreach_child(struct index *idx, const char *dir, size_t len, index_visit_fn fn,
			void *userdata) __attribute__((warn_unused_result));

/*
 * Manifests (block lists, src/sync/blocks.h) are kept content-addressed:
 * one row per file hash, whatever paths have that content.
 *
 * index_manifest_put stores blob (len bytes, a blocks_manifest_encode()
 * result) under hash, replacing any row. Returns 0 or -errno.
 * index_manifest_get returns 0 and a malloc'd copy in *ret_blob and its
 * length in *ret_len (caller frees), -ENOENT when none, -errno.
 * index_manifest_gc drops manifests whose hash no live entry has; returns
 * the number dropped or -errno.
 */
int index_manifest_put(struct index *idx, const uint8_t hash[static INDEX_HASH_LEN],
		       const uint8_t *blob, size_t len) __attribute__((warn_unused_result));
int index_manifest_get(struct index *idx, const uint8_t hash[static INDEX_HASH_LEN],
		       uint8_t **ret_blob, size_t *ret_len) __attribute__((warn_unused_result));
int index_manifest_gc(struct index *idx) __attribute__((warn_unused_result));

/*
 * Fills *ret with a live file entry whose content hash is hash (any one of
 * them), to copy or move content locally instead of fetching it. Returns
 * 0, -ENOENT, -EBADMSG.
 */
int index_get_by_hash(struct index *idx, const uint8_t hash[static INDEX_HASH_LEN],
		      struct index_entry *ret) __attribute__((warn_unused_result));

/* Counts live entries of each type (files, dirs, symlinks): 0 or -errno. */
int index_count_live(struct index *idx, uint64_t *ret_files, uint64_t *ret_dirs,
		     uint64_t *ret_links) __attribute__((warn_unused_result));

/*
 * Forgets tombstones with seq <= acked_seq. Rule: pass the highest of OUR
 * sequence numbers that the peer has confirmed it applied (it stores that
 * as its peer seq for us and reports it when connecting). A tombstone the
 * peer has applied cannot be resurrected by it any more. Never pass a
 * guess. Returns the number of tombstones removed, or -errno.
 */
int index_gc_tombstones(struct index *idx, uint64_t acked_seq) __attribute__((warn_unused_result));

#endif
