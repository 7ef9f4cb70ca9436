/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_ENGINE_H
#define TANDEM_SYNC_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <jansson.h>

#include "base/err.h"

/*
 * The sync engine: keeps the share identical with the peer's, both ways.
 * It owns the index (index.h) and the local scanner (scan.h), speaks the
 * sync messages (msg.h, docs/SYNC-PROTOCOL.md) over whatever connection
 * the daemon gives it, and changes the share only beneath its root,
 * through path_open_parent(). It knows nothing of sockets, frames or FUSE:
 * the daemon hands it messages and a way to send them (engine_io).
 *
 * Design note (docs/SYNC.md has the long form).
 * - Index exchange: after HELLO each side sends START (its device id, the
 *   highest of the other's sequence numbers it has applied); each answers
 *   with the changes after that, then INDEX_DONE, and from then on with
 *   every new change as it happens, each burst closed by INDEX_DONE.
 * - A burst (everything up to INDEX_DONE) is applied as one batch, so a
 *   renamed directory arrives as tombstones and new entries together and
 *   the files are moved locally instead of fetched: dirs first (parents
 *   first), then files and symlinks (content found locally is moved or
 *   copied; the rest is fetched), then file deletions, then directory
 *   deletions (deepest first). What is held is capped in bytes
 *   (ENGINE_BATCH_BYTES): at the cap the batch is applied before INDEX_DONE,
 *   and what waits for deletions still to come (a directory to empty) is
 *   kept for the next batch.
 * - Versions: the version vectors decide (vv.h). Newer: apply. Older or
 *   equal: ignore. Concurrent: conflict.h decides the same way on both
 *   sides; only the side that holds the losing edit makes the conflict
 *   copy, which then syncs like any file.
 * - The applied sequence of the peer is stored only up to the first change
 *   not yet applied (a fetch in progress), so a restart re-asks for what
 *   is missing and nothing is skipped.
 * - Content: files are fetched in 1 MiB blocks, many requests in flight,
 *   each block verified against the manifest (itself checked against the
 *   file hash) before it is written to a temp file beside the target,
 *   which is fsynced and renamed into place. A temp file left by an
 *   interrupted transfer is reused: its blocks that verify are not asked
 *   for again.
 * - Before the engine replaces or deletes a local path it rescans that
 *   path (scan_path_now), so an edit the scanner has not seen yet is
 *   recorded and conflicts instead of being overwritten.
 *
 * Threads: everything runs on the daemon's loop thread (the scanner's
 * hasher thread is internal to scan.c, the fetcher's block workers to
 * fetch.c), except engine_ensure() and engine_ensure_stop(), which only
 * touch the lazy table under its lock, and engine_write_open/close/publish,
 * which only touch the write holds (hold.h) under theirs. The parts the engine is made of,
 * and which thread owns which: docs/SYNC.md "Parts and threads".
 */

struct engine;

struct engine_io {
	void *ud;
	/* Sends one message as one DATA frame. Returns 0, or -errno when the
	 * connection is gone (the engine then waits for engine_on_down). */
	int (*send)(void *ud, const uint8_t *msg, size_t len);
	/* Bytes of message the connection takes now without queueing beyond
	 * its buffer. The engine sends a message only when it fits. */
	size_t (*room)(void *ud);
	/* Closes the connection after a protocol error (why: a sentence), and
	 * logs why with the peer's address: the engine does not know it. */
	void (*close)(void *ud, const char *why);
	/* Optional: path (share-relative, NUL-terminated) changed on disk
	 * because of the peer (for the FUSE adapter's cache). May be NULL. */
	void (*changed)(void *ud, const char *path);
};

struct engine_opts {
	const char *root;	/* the share directory (absolute) */
	const char *index_file; /* the SQLite index */
	uint64_t rate_bps;	/* cap on block data served, bytes/s; 0 = none */
	/* Lazy mode (docs/SYNC.md "Lazy mode"): remote files become sparse
	 * placeholders, their blocks fetched by engine_ensure(). */
	bool lazy;
	uint64_t cache_max; /* lazy: remote content kept, bytes; 0 = unlimited */
	/* lazy: a file ensured this recently is being read, never emptied;
	 * 0 = LAZY_EVICT_AGE_MS (a test knob shortens it) */
	uint64_t evict_age_ms;
	/* Permission bits cleared from every mode the peer sends before it is
	 * applied here (the daemon's umask at start, docs/SYNC.md "Modes"). */
	uint32_t mode_mask;
	/* Make the peer's symlinks that point outside the share too (docs/SYNC.md
	 * "Symlinks"); false: they are refused and only kept in the index. */
	bool symlinks_all;
	/* Verify and write received blocks, and hash local files, on the loop
	 * thread (deterministic simulation, fuzzing); false: ENGINE_WORKERS
	 * threads and the scanner's hasher thread do. */
	bool no_workers;
};

#define ENGINE_CACHE_MAX_DEFAULT ((uint64_t)10 << 30)
#define ENGINE_STATUS_SPECIAL_MAX 5 /* special files named by engine_status */

/*
 * Time: every entry point the loop calls takes the loop's monotonic clock
 * in milliseconds as its last argument (now_ms; the daemon passes
 * clock_mono_ms(), a simulation its own clock; never 0, never going
 * back). The engine never reads a
 * clock on the loop, so the same calls give the same run. Only
 * engine_ensure(), on a FUSE thread, waits in real time.
 */

/*
 * Opens the index, starts the scanner (scan.h: root checks, marker) and
 * schedules the first full scan. Returns 0 and *ret, or -errno with a
 * sentence in err (may be NULL) saying what failed and what to do.
 */
int engine_new(const struct engine_opts *opts, const struct engine_io *io, struct engine **ret,
	       struct err *err, uint64_t now_ms) __attribute__((warn_unused_result));

void engine_free(struct engine *e);

/* The fds the daemon watches for EPOLLIN, with what to call. */
int engine_inotify_fd(const struct engine *e);
int engine_hash_fd(const struct engine *e);
void engine_on_inotify(struct engine *e, uint64_t now_ms);
void engine_on_hash(struct engine *e, uint64_t now_ms);
/* Received blocks verified by the worker threads (-1: no workers). */
int engine_work_fd(const struct engine *e);
void engine_on_work(struct engine *e, uint64_t now_ms);

/*
 * Lazy mode: makes bytes [off, off + len) of path (share-relative) present
 * on disk, fetching what is missing (plus readahead) from the peer; len
 * UINT64_MAX means the whole file. Thread-safe: called from any thread but
 * the loop's (it waits for the loop). Returns 0 when the range is there
 * (at once when it already was, or when path is not a placeholder), -EIO
 * when the peer is not connected, the fetch failed, or timeout_ms passed
 * without a block of the file arriving (a long range waits on while blocks
 * come, never timeout_ms without one); -EINVAL for a path path_check()
 * refuses. Not lazy: 0.
 * st is the caller's file as it is now (NULL: not known). When its inode is
 * not the file tracked at path, or path is NULL (the caller's file was
 * unlinked), the caller has a version the peer replaced or deleted: 0 when
 * it was complete or has the range, else -EIO at once (what is missing can
 * never come). Never 0 for a hole that stands for data. When its size is
 * not the placeholder's, it is the user's file now (a truncate fetched what
 * stays first): 0.
 */
int engine_ensure(struct engine *e, const char *path, const struct stat *st, uint64_t off,
		  uint64_t len, int timeout_ms);
/* eventfd to watch for EPOLLIN: ensure requests wait (engine_on_ensure). */
int engine_ensure_fd(const struct engine *e);
/* The loop stops serving ensures (shutdown, before the mount goes): those
 * waiting and those to come fail with -EIO at once, instead of waiting
 * their timeout for a loop that is busy unmounting. Any thread. */
void engine_ensure_stop(struct engine *e);
void engine_on_ensure(struct engine *e, uint64_t now_ms);

/*
 * Writes through the FUSE mount (docs/FUSE.md "Publishing"): while the
 * mount has a file open for writing, the engine does not publish what the
 * scanner finds of it; it does on the last close, on fsync and on a rename
 * (engine_write_publish), and at the latest HOLD_MAX_MS (sync/hold.h, 30 s)
 * after it first left a change of it unpublished. The file is named by its
 * backing inode (st_dev, st_ino). A plain-directory peer calls none of
 * these. Thread-safe: FUSE threads call them (never the loop's own lock).
 * engine_write_open returns 0 or -ENOMEM (then the file is not held: do
 * not call engine_write_close for it).
 */
int engine_write_open(struct engine *e, uint64_t dev, uint64_t ino)
	__attribute__((warn_unused_result));
void engine_write_close(struct engine *e, uint64_t dev, uint64_t ino);
void engine_write_publish(struct engine *e, uint64_t dev, uint64_t ino);
/* eventfd to watch for EPOLLIN: a held file may go out (engine_on_hold). */
int engine_hold_fd(const struct engine *e);
void engine_on_hold(struct engine *e, uint64_t now_ms);

/* Timers: when engine_tick() next has work (monotonic ms, UINT64_MAX: none). */
uint64_t engine_deadline(const struct engine *e);
void engine_tick(struct engine *e, uint64_t now_ms);

/* The connection to the peer is up (HELLO seen) / gone. */
void engine_on_up(struct engine *e, uint64_t now_ms);
void engine_on_down(struct engine *e, uint64_t now_ms);

/*
 * One DATA message from the peer (type byte first; never HELLO). Returns 0,
 * or -EBADMSG after it closed the connection through io->close (logged).
 */
int engine_on_msg(struct engine *e, const uint8_t *msg, size_t len, uint64_t now_ms);

/* The connection can take more: send what waits. */
void engine_pump(struct engine *e, uint64_t now_ms);

/* Adds the sync keys of `tandem status` to obj (docs/DAEMON.md). */
void engine_status(struct engine *e, json_t *obj, uint64_t now_ms);

/* Whether syncing has stopped for good (share root gone); the reason. */
const char *engine_stopped(const struct engine *e);

#endif
