/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_H
#define TANDEM_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/connpolicy.h"
#include "daemon/listen.h"
#include "identity/fingerprint.h"
#include "identity/identity.h"
#include "base/paths.h"

/*
 * The peer daemon behind `tandem up` (docs/DAEMON.md): one event loop on
 * the calling thread that owns the listening socket, the connections to
 * the peer, the control socket and the timers; the relay publisher and a
 * lookup worker run in their own threads.
 */

struct daemon_opts {
	const struct tandem_paths *paths;
	const char *home;	   /* --home as given, or NULL (for messages) */
	const struct identity *id; /* borrowed; outlives daemon_run */
	struct fingerprint peer;
	const char *relay_url;
	const char *dir; /* absolute path of the shared folder (with mount: the store) */
	/* --mount: absolute mount point; the share lives in dir (STATE/store)
	 * and is shown there through FUSE. NULL for a plain folder. */
	const char *mount;
	/* -o: more FUSE mount options, checked (mountopt.h); "" for none */
	const char *mount_opts;
	struct listen_spec listen;
	const char *sock_path; /* the control socket, fits sun_path */
	const char *log_path;  /* where a background daemon logs, or NULL */
	bool foreground;
	/* Cleared from the peer's modes (the process umask at `up`). */
	unsigned mode_mask;
	/* --symlinks=all: make the peer's symlinks that point outside the share. */
	bool symlinks_all;
	/* --cache-max: the most bytes of the peer's content a mount keeps
	 * (ENGINE_CACHE_MAX_DEFAULT unless given; 0: no limit). */
	uint64_t cache_max;
	/* --relay-data: relayed connections never, as a fallback, or always
	 * (then no direct connection either way: the daemon does not listen). */
	enum connpolicy_relay relay_data;
	/* Written once: "ok\n" when the control socket answers, or
	 * "error: <sentence>\n" when start-up failed; -1 for none. The daemon
	 * does not close it. */
	int ready_fd;
};

/*
 * Runs the daemon until SIGTERM, SIGINT or a "down" request. Must be called
 * from the process's only thread; blocks SIGTERM, SIGINT and SIGHUP.
 * Returns the process exit status: 0 after a clean stop, 1 when start-up
 * failed (the reason is logged and sent on ready_fd).
 */
int daemon_run(const struct daemon_opts *opts);

#endif
