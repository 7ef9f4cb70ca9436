/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_MOUNTD_H
#define TANDEM_DAEMON_MOUNTD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "daemon/daemon_int.h"

/*
 * The daemon's side of the FUSE mount (`tandem up --mount DIR`): the
 * engine syncs the store (STATE/store) exactly as a plain folder, and the
 * mount (fuse/tfs.h) shows that store at DIR. Everything here runs on the
 * loop thread. Without FUSE support built in, mountd_available() says so
 * and mountd_start() fails.
 */

/*
 * Can this process mount? Returns 0, or -errno with a sentence in err
 * (what is missing, how to fix it, that --dir works without FUSE).
 */
int mountd_available(struct err *err) __attribute__((warn_unused_result));

/* Whether this tandem was built with FUSE support. */
bool mountd_built_in(void);

/*
 * Clears a stale mount at d->opts->mount, mounts the store there and
 * watches for the mount going away. Call after syncd_start(). Returns 0 or
 * -errno with a sentence in err.
 */
int mountd_start(struct daemon *d, struct err *err) __attribute__((warn_unused_result));

/* The engine changed path in the store (share-relative): tell the kernel. */
void mountd_changed(struct daemon *d, const char *path);

/* Unmounts (no-op without a mount). Returns after the mount is gone. */
void mountd_stop(struct daemon *d);

#endif
