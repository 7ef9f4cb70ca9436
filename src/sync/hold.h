/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_HOLD_H
#define TANDEM_SYNC_HOLD_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Write holds: the files the FUSE mount has open for writing, so that the
 * scanner does not publish a file while its writer is still at work (a
 * reader on the peer sees a file absent or whole, never part-written).
 * docs/FUSE.md "Publishing" has the rules; in short, a file the mount has
 * open for writing is published on the last close, on fsync, on a rename,
 * and at the latest HOLD_MAX_MS after the scanner first left a change of it
 * unpublished (a log file kept open is still synced).
 *
 * Files are named by their inode (st_dev, st_ino): a hold follows the file
 * through renames, and the scanner knows both from its stat. Each entry
 * counts the mount's write handles of the inode.
 *
 * Threads: hold_open, hold_close and hold_publish are called by FUSE
 * threads; everything else by the engine's loop. One lock (a leaf, never
 * held across a syscall but the eventfd write) guards the table. The
 * eventfd (hold_fd) is readable when a close or a publish concerns a file
 * the scanner left unpublished: the loop then scans it again.
 */

#define HOLD_MAX_MS 30000 /* a file open for writing is published at least this often */

struct hold;

/* An empty table with its eventfd. Returns 0 and *ret, or -errno. */
int hold_new(struct hold **ret) __attribute__((warn_unused_result));
/* NULL is a no-op. No other thread may use h any more. */
void hold_free(struct hold *h);

/* ---- FUSE threads ---- */

/* One more write handle of the inode. Returns 0, or -ENOMEM (not held). */
int hold_open(struct hold *h, uint64_t dev, uint64_t ino) __attribute__((warn_unused_result));
/* One write handle fewer (one hold_open that returned 0 each); the last
 * one ends the hold. */
void hold_close(struct hold *h, uint64_t dev, uint64_t ino);
/* The writer fsynced or renamed it: its content as it is now may go out
 * (once; later writes are held again). No-op for an inode not held. */
void hold_publish(struct hold *h, uint64_t dev, uint64_t ino);

/* ---- the loop ---- */

/* eventfd to watch for EPOLLIN (hold_on_event). */
int hold_fd(const struct hold *h);
/* Drains the eventfd. Returns whether a held file the scanner left
 * unpublished may now go out (scan what it deferred again). */
bool hold_on_event(struct hold *h);

/*
 * The scanner found the file (dev, ino) changed: whether to leave it
 * unpublished for now. true while the mount has it open for writing, no
 * publish point (hold_publish) came since the last time it went out, and
 * it has been left unpublished for less than HOLD_MAX_MS (now_ms: the
 * loop's clock). false for a file not held, and once for a publish point,
 * which the call consumes.
 */
bool hold_defer(struct hold *h, uint64_t dev, uint64_t ino, uint64_t now_ms);

/* When a file left unpublished reaches HOLD_MAX_MS (UINT64_MAX: none). */
uint64_t hold_deadline(struct hold *h);
/* Marks the files that reached HOLD_MAX_MS by now_ms for publishing.
 * Returns whether there were any (scan what was deferred again). */
bool hold_expire(struct hold *h, uint64_t now_ms);

/* Inodes held (tests, status). */
unsigned hold_count(struct hold *h);

#endif
