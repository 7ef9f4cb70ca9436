/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_SCAN_H
#define TANDEM_SYNC_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "sync/index.h"

/*
 * Local change detection for a share kept as a directory: the plain-dir
 * peer's folder, and the FUSE peer's backing store. It turns what is on
 * disk into index entries (index_put_local / index_delete_local /
 * index_rename), so the engine only ever looks at the index.
 *
 * Design note.
 * - inotify watches every directory of the share; an event marks its
 *   directory dirty. scan_run() re-reads only dirty directories (a new
 *   directory recursively), or the whole tree after a queue overflow, at
 *   start, and on scan_request_full().
 * - A file whose type, size, mtime, mode, inode and ctime all match its
 *   index entry is unchanged and not read. Otherwise its content is hashed
 *   (src/sync/blocks.h) on the hasher thread, never on the caller's; the
 *   result comes back through scan_hash_fd(), and scan_on_hash_done()
 *   re-stats the file: if it changed while being hashed, it is hashed
 *   again later. The block list (manifest) is stored in the index beside
 *   the entry (index_manifest_put), so serving a file never re-hashes it.
 *   A directory counts as changed only when its mode does (its size and
 *   mtime follow its entries); a new identity is stored with index_set_stat.
 * - Directories, symlinks and metadata-only changes (chmod, touch of an
 *   unchanged file: same size, ino and content) are recorded at once.
 * - Renames: a path that is new on disk and whose (dev, ino) is a live
 *   index entry whose path is gone from disk is a rename (index_rename):
 *   files and whole directories move without re-sending content. Found
 *   by the scan itself, so it also works for renames made while the
 *   daemon was down. A moved file whose size, mtime and mode are unchanged
 *   keeps its hash (the move itself changes its ctime).
 * - Excluded from sync (never indexed, events ignored): the root marker
 *   SCAN_MARKER, temp files whose name starts with SCAN_TMP_PREFIX (the
 *   engine's downloads in progress), and special files (FIFOs, sockets,
 *   devices: skipped with one log line each).
 * - Abandoned downloads: a temp file named exactly as the engine names its
 *   own (scan_engine_tmp) and not modified for SCAN_TMP_MAX_AGE_S is
 *   deleted by the walk that meets it, with a log line. Younger ones stay:
 *   an interrupted transfer resumes from its temp file.
 * - Safety: the root is held open. Before deleting anything from the
 *   index, every scan checks that the root path still names the directory
 *   held open (same dev and ino, not unlinked) and that the marker file is
 *   still there. If not (the share was removed, replaced, or a mount under
 *   it went away), scan_run() returns -ESTALE with a sentence in err and
 *   changes nothing: syncing must stop; it never reads that as "delete
 *   everything". At start, a missing marker with a non-empty index is the
 *   same error; with an empty index the marker is created.
 * - Held deletions: a recursive removal (rm -rf of the share, a folder
 *   moved away in parts) deletes the files before the marker and the root,
 *   so a scan in between finds a healthy root and files gone. A path a
 *   scan finds gone is therefore held, not recorded: it is recorded by the
 *   first scan_run() at or after scan_deadline(), once no new deletion was
 *   found for SCAN_GONE_QUIET_MS (the burst is over) or it waited
 *   SCAN_GONE_MAX_MS, if that scan finds the root and marker in place after
 *   its walk and the path still gone. A scan that finds the root gone
 *   drops them all. Renames are not deletions and are recorded at once.
 *   scan_path_now() records what it finds gone at once (the engine calls
 *   it before it applies the peer's change there, which wins over a
 *   deletion: scan_path_now's tombstone never removes the peer's file).
 *
 * Threads: every function runs on one thread (the engine's loop), except
 * the internal hasher thread, which only reads files and hands results
 * back. Nothing here blocks on the network.
 */

#define SCAN_MARKER ".tandem"
#define SCAN_TMP_PREFIX ".tandem-tmp-"
#define SCAN_TMP_MAX_AGE_S (7 * 24 * 3600) /* a week, so a weekend away still resumes */
#define SCAN_GONE_QUIET_MS 1000 /* held deletions: the burst is over after this */
#define SCAN_GONE_MAX_MS 10000	/* ... and none waits longer than this */

struct scan;

/* Whether the share path (len bytes) is excluded from sync (see above). */
bool scan_excluded(const char *path, size_t len);
/* Whether name is one of the engine's temp file names: SCAN_TMP_PREFIX and
 * 24 hex digits (a download), or 16 and ".lazy" or ".lnk" (a placeholder,
 * a symlink being placed). A user's own ".tandem-tmp-notes" is not. */
bool scan_engine_tmp(const char *name);

/*
 * Opens the share rooted at root (an existing directory: -ENOENT or
 * -ENOTDIR otherwise) for scanning with idx, checks or creates the marker
 * (-ESTALE as above), starts the inotify watch and the hasher thread. No
 * scan runs yet: the first scan_run() is a full one. Returns 0 and *ret, or
 * -errno with a sentence in err (may be NULL).
 */
int scan_new(const char *root, struct index *idx, struct scan **ret, struct err *err)
	__attribute__((warn_unused_result));

/* Stops the hasher thread, closes the fds. NULL is a no-op. */
void scan_free(struct scan *s);

/*
 * Lazy mode: fn(ud, path, size) says whether the file at path (share
 * relative, size bytes on disk) is a placeholder whose missing blocks are
 * still holes. Its content is then the index's, never what is on disk: a
 * change of its mtime (a utime without an open) is recorded as metadata
 * with the index's hash, not hashed (the holes would read as zeros and be
 * published as the file's content). Called on the scanning thread.
 */
typedef bool (*scan_placeholder_fn)(void *ud, const char *path, uint64_t size);
void scan_set_placeholder_check(struct scan *s, scan_placeholder_fn fn, void *ud);

/*
 * Writes in progress (the FUSE mount, sync/hold.h): fn(ud, dev, ino) says
 * whether a regular file found changed on disk is to stay unpublished for
 * now (its writer has it open). Such a file keeps its index entry as it
 * was (none for a new file; a rename that changed it records the old path
 * as deleted) and is not hashed; scan_retry_held() has the next scan_run()
 * look at it again. Called on the scanning thread, by scan_run() and
 * scan_on_hash_done() (a file written on while it was hashed), never by
 * scan_path_now(): what the engine is about to replace is recorded as it
 * is, so it can conflict instead of being lost.
 */
typedef bool (*scan_held_fn)(void *ud, uint64_t dev, uint64_t ino);
void scan_set_held_check(struct scan *s, scan_held_fn fn, void *ud);
/* The files left unpublished so far are looked at again by the next
 * scan_run(). Returns whether there are any (then a scan is wanted). */
bool scan_retry_held(struct scan *s);

/*
 * Lazy mode: a regular file at path whose inode is not path's entry's (new
 * there, or renamed there in a way the scanner did not take for a rename:
 * touched on the way, or its old name recorded as deleted first). fn(ud,
 * path, st, false, ret_hash) says whether it is a placeholder the engine
 * placed at another path, moved here by the user, its missing blocks still
 * holes: 0 no (hash it); 1 yes, the content it stands for in ret_hash (the
 * scanner records path with it, then calls fn(ud, path, st, true, NULL):
 * the placeholder's mark moves to path, 0 or -errno); 2 a placeholder whose
 * content can never come (the peer replaced it), removed from disk: nothing
 * to record. Never its holes as content. Called on the scanning thread.
 */
typedef int (*scan_moved_fn)(void *ud, const char *path, const struct stat *st, bool claim,
			     uint8_t *ret_hash);
void scan_set_moved_check(struct scan *s, scan_moved_fn fn, void *ud);

/* The share root, held open (O_PATH|O_DIRECTORY); owned by s. */
int scan_root_fd(const struct scan *s);

/* fd to watch for EPOLLIN: inotify events are waiting (scan_on_inotify). */
int scan_inotify_fd(const struct scan *s);

/* fd to watch for EPOLLIN: hash results are waiting (scan_on_hash_done). */
int scan_hash_fd(const struct scan *s);

/*
 * Reads the waiting inotify events and marks directories dirty (a full
 * rescan on IN_Q_OVERFLOW). Returns 1 when a scan is now wanted (the
 * caller runs scan_run() after a short quiet period), 0 when not, -errno.
 */
int scan_on_inotify(struct scan *s) __attribute__((warn_unused_result));

/* The next scan_run() walks the whole tree. */
void scan_request_full(struct scan *s);

/* Whether anything is waiting: dirty directories, a full scan, hash jobs,
 * held deletions. */
bool scan_pending(const struct scan *s);

/* When scan_run() is due for held deletions (the caller's clock, in ms);
 * UINT64_MAX when none are held. */
uint64_t scan_deadline(const struct scan *s);

/*
 * Brings the index up to date with the dirty part of the tree (all of it
 * when a full scan is due), in one index transaction, now_ms being the
 * caller's monotonic clock (for held deletions, above). Files that need
 * hashing are queued to the hasher thread. Returns the number of index
 * changes made (0: none), -ESTALE (root gone, see above; err says what
 * and what to do; held deletions are dropped), or another -errno with err
 * set.
 */
int scan_run(struct scan *s, uint64_t now_ms, struct err *err) __attribute__((warn_unused_result));

/*
 * Stores the finished hash jobs (index_put_local and the manifest).
 * Returns the number of index changes made, or -errno with err set.
 */
int scan_on_hash_done(struct scan *s, struct err *err) __attribute__((warn_unused_result));

/*
 * Brings path's entry up to date with the disk now, hashing on this thread
 * when needed. The engine calls it before it replaces or deletes a local
 * path, so an edit not yet seen by a scan is recorded (and can conflict)
 * instead of being overwritten. A directory new to the index (or moved
 * there) is watched and walked with everything beneath it. Returns 1 when
 * the index changed, 0 when it was already current, -errno.
 */
int scan_path_now(struct scan *s, const char *path, size_t len, struct err *err)
	__attribute__((warn_unused_result));

/*
 * Tests (the deterministic simulation, tests/sim): on, queued files are
 * hashed on the calling thread when scan_run() or scan_on_hash_done()
 * hands them over, and their results wait as the hasher thread's would
 * (scan_hash_fd() readable), all of them at once: which results one
 * scan_on_hash_done() stores no longer depends on a thread's timing.
 */
void scan_set_hash_inline(struct scan *s, bool on);

/* Files and bytes waiting to be hashed (status). */
void scan_stats(const struct scan *s, uint64_t *ret_files, uint64_t *ret_bytes);

/*
 * The special files (FIFOs, sockets, device nodes) the walks met that are
 * still there: never synced, local to this side (status "not synced").
 * Returns how many (at most SCAN_WARNED_MAX are remembered) and calls
 * fn(path, ud) for the first max of them; forgets those that are gone.
 */
uint64_t scan_special(struct scan *s, size_t max, void (*fn)(const char *path, void *ud),
		      void *ud);

#endif
