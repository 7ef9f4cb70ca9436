/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_TFS_H
#define TANDEM_TFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/*
 * tfs: the FUSE mount of a tandem share.
 *
 * The mount is a thin libfuse3 low-level adapter over a backing directory
 * (the local store). The sync engine owns that directory exactly as it owns
 * a plain-directory peer's folder; the mount only passes operations through
 * to it. No libfuse type appears in this header.
 *
 * Hidden names: the root-level ".tandem" marker and every name that starts
 * with ".tandem-tmp-" (the engine's temp files) are invisible through the
 * mount (lookup and unlink answer ENOENT, readdir skips them) and cannot be
 * created through it (EPERM).
 *
 * Threads: tfs_mount() starts the libfuse worker threads (signals blocked)
 * and a notifier thread that sends kernel cache invalidations. Everything
 * else may be called from any one thread; see each function.
 */

struct tfs;

/*
 * Hooks the daemon plugs in. All optional; a zeroed struct (or NULL) means
 * "every file is complete in the backing directory".
 *
 * ensure: called from a FUSE worker thread before the mount touches file
 * data, so that a later phase can fetch data that is not local yet:
 *   - read and copy_file_range (source): the range being read;
 *   - open for writing without O_TRUNC, and truncate: the whole file
 *     (off 0, len UINT64_MAX, meaning "to the end");
 * relpath is the file's path relative to the backing root ("a/b.txt", no
 * leading slash), valid only during the call. The callback must not wait
 * more than timeout_ms without progress (never forever on the network); it returns
 * 0 when the range is now local, or -errno, which the operation then
 * answers (use -EIO when the peer is unreachable). It must not call back
 * into tfs. st is the backing file's fstat. When the open file has no path
 * any more (it was unlinked or replaced meanwhile) relpath is NULL: the
 * hook says whether that old version holds the range.
 *
 * write_open, write_close, write_publish: the files open for writing, so
 * that the daemon publishes a file when its writer is done with it, not
 * part-written (docs/FUSE.md "Publishing"). Called from FUSE worker
 * threads with the backing file's (st_dev, st_ino): write_open when an
 * open or create for writing starts (before the backing open of an
 * existing file, so its O_TRUNC is held too; just after a create), and
 * write_close for each of them when its handle is released, before the
 * backing fd is closed (also for an open that failed after write_open);
 * write_publish after a successful fsync of a handle and after a rename
 * (for the file renamed, and with RENAME_EXCHANGE the other one too;
 * regular files only). They must not block or call back into tfs.
 * write_open returns 0 or -errno: the open then goes on unheld (the file
 * is published as the store's scanner sees it).
 */
struct tfs_hooks {
	int (*ensure)(void *ud, const char *relpath, const struct stat *st, uint64_t off,
		      uint64_t len, int timeout_ms);
	int ensure_timeout_ms; /* passed to ensure; 0 means 10000 */
	int (*write_open)(void *ud, uint64_t dev, uint64_t ino);
	void (*write_close)(void *ud, uint64_t dev, uint64_t ino);
	void (*write_publish)(void *ud, uint64_t dev, uint64_t ino);
	/* More mount options after tandem's own, comma separated (allow_other,
	 * ro ...), checked by the caller (src/daemon/mountopt.h); NULL: none.
	 * Read only by tfs_mount. */
	const char *mount_opts;
};

/*
 * Can this process mount with FUSE? Checks that the FUSE device (dev, or
 * /dev/fuse when dev is NULL; tests pass another) can be opened read-write
 * and, unless running as root, that fusermount3 is on PATH.
 * Returns 0, or -errno with a sentence in err saying what is missing, how
 * to fix it, and that --dir works without FUSE.
 */
int tfs_check_available(const char *dev, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * If mountpoint is a dead FUSE mount (a crashed daemon left it; stat says
 * ENOTCONN), detach it lazily so a new mount can proceed. Returns 0 when the
 * mountpoint is usable (nothing to do, or cleared), -EBUSY when it is a live
 * FUSE mount (another daemon serves it), other -errno with err filled.
 */
int tfs_clear_stale(const char *mountpoint, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Mounts the backing directory backing_rootfd (any fd of the directory; tfs
 * keeps its own duplicate, the caller keeps ownership of its fd) at
 * mountpoint with default_permissions, fsname=tandem, subtype=tandem, and
 * serves it from its own threads. hooks (copied; may be NULL) and ud stay
 * the caller's. Returns 0 once the mount answers requests, with *ret owning
 * the mount; or -errno with err filled (the libfuse reason included) and
 * *ret untouched. libfuse's log output goes through log.h.
 */
int tfs_mount(const char *mountpoint, int backing_rootfd, const struct tfs_hooks *hooks, void *ud,
	      struct tfs **ret, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Tells the kernel that relpath ("" or "." for the root) changed in the
 * backing directory (content, attributes, created, removed or renamed), so
 * readers through the mount see the change without a remount. Thread-safe,
 * never blocks on the kernel: it queues the path, and the notifier thread
 * sends the invalidations outside every request and lock. Call it after the
 * change is complete in the backing directory; for a rename, call it for
 * both the old and the new path.
 */
void tfs_invalidate(struct tfs *tfs, const char *relpath);

/* Invalidates every inode the kernel knows (after a rescan, say). Same rules. */
void tfs_invalidate_all(struct tfs *tfs);

/*
 * Waits until every invalidation queued before the call has been sent to
 * the kernel (for tests, and for a caller that must know readers see the
 * change). Never call it from a FUSE request or a hook: an invalidation
 * can wait for a request in flight.
 */
void tfs_invalidate_flush(struct tfs *tfs);

/*
 * An fd (eventfd, CLOEXEC, owned by tfs) that becomes readable when the
 * session has ended on its own (someone ran fusermount3 -u, or the
 * connection was aborted), for the daemon's epoll loop. Call tfs_unmount()
 * then.
 */
int tfs_event_fd(const struct tfs *tfs);

/*
 * Unmounts (lazily, aborting the connection, if the mount is busy), stops
 * and joins every thread, frees tfs. NULL is a no-op. Not async-signal-safe:
 * call it from normal thread context, e.g. after a signalfd or sigwait
 * reported SIGTERM; never from a FUSE request or a hook.
 */
void tfs_unmount(struct tfs *tfs);

#endif
