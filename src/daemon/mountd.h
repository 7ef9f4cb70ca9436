/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_MOUNTD_H
#define TANDEM_DAEMON_MOUNTD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "base/evloop.h"

struct engine;
struct tfs;

/*
 * The daemon's side of the FUSE mount (`tandem up --mount DIR`): the
 * engine syncs the store (STATE/store) exactly as a plain folder, and the
 * mount (fuse/tfs.h) shows that store at DIR. Everything here runs on the
 * loop thread. Without FUSE support built in, mountd_available() says so
 * and mountd_start() fails.
 */

struct mountd {
	struct tfs *tfs; /* NULL when not mounted */
	struct evloop *loop;
	struct engine *engine; /* serves the FUSE threads' reads and writes */
	const char *mount;     /* the mount point */
	struct ev_watch tfs_w; /* tfs_event_fd: the mount went away */
	/* The mount ended on its own (once): the owner says so and stops. */
	void (*on_gone)(void *ud);
	void *ud;
};

/*
 * Can this process mount? Returns 0, or -errno with a sentence in err
 * (what is missing, how to fix it, that --dir works without FUSE).
 */
int mountd_available(struct err *err) __attribute__((warn_unused_result));

/* Whether this tandem was built with FUSE support. */
bool mountd_built_in(void);

/*
 * Clears a stale mount at mount, mounts the store dir there and watches
 * for the mount going away (then on_gone(ud)). engine (syncd) serves the
 * reads; opts (checked by mountopt.h, NULL or "" for none) are more FUSE
 * mount options. Returns 0 or -errno with a sentence in err.
 */
int mountd_start(struct mountd *m, struct evloop *loop, struct engine *engine, const char *mount,
		 const char *opts, const char *dir, void (*on_gone)(void *ud), void *ud,
		 struct err *err)
	__attribute__((warn_unused_result));

/* The engine changed path in the store (share-relative): tell the kernel.
 * No-op without a mount. */
void mountd_changed(struct mountd *m, const char *path);

/* Unmounts (no-op without a mount). Returns after the mount is gone. */
void mountd_stop(struct mountd *m);

#endif
