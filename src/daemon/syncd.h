/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_SYNCD_H
#define TANDEM_DAEMON_SYNCD_H

#include "base/err.h"
#include "base/evloop.h"
#include "daemon/daemon.h"
#include "sync/engine.h"

/*
 * The daemon's side of the sync engine: creates it on the shared folder
 * and watches its fds on the loop. The engine's transport (send, room,
 * close) and its change notices come through the engine_io its owner
 * gives (the daemon wires them to the connection manager and the mount):
 * syncd knows neither. Loop thread only.
 */
struct syncd {
	struct engine *engine; /* NULL when not started */
	struct evloop *loop;
	struct ev_watch inotify_w;
	struct ev_watch hash_w;
	struct ev_watch work_w;
	struct ev_watch ensure_w; /* lazy mode's ensure requests */
	struct ev_watch hold_w;	  /* files the mount had open for writing may go out */
};

/* Starts the sync engine on o->dir (index in the state dir) with io as
 * its transport and watches its fds. Returns 0 or -errno with a sentence
 * in err. */
int syncd_start(struct syncd *s, struct evloop *loop, const struct daemon_opts *o,
		const struct engine_io *io, struct err *err) __attribute__((warn_unused_result));

/* Stops it (saving nothing more: the index is always committed). No-op
 * when not started. */
void syncd_stop(struct syncd *s);

#endif
