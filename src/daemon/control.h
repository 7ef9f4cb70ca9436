/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_CONTROL_H
#define TANDEM_DAEMON_CONTROL_H

#include <jansson.h>

#include "base/err.h"
#include "base/evloop.h"
#include "daemon/control_req.h"
#include "daemon/control_status.h"

/*
 * The control socket server (docs/DAEMON.md, "Control socket"): a Unix
 * stream socket, mode 0600, one JSON object per line both ways. Requests:
 * {"cmd":"status"} and {"cmd":"down"}. It knows nothing of the daemon's
 * parts: what it answers comes through struct control_ops. Loop thread
 * only.
 */

#define CONTROL_CLIENTS_MAX 16
#define CONTROL_REPLY_BUF_MAX 65536

struct engine;
struct ctl_client;

struct control_ops {
	/* Fills *st for a status request (every field; st is zeroed). */
	void (*status)(void *ud, struct daemon_status *st);
	/* Adds the keys of parts that speak JSON themselves (the sync
	 * engine's engine_status) to the status object o. May be NULL. */
	void (*status_more)(void *ud, json_t *o);
	/* `tandem down`: stop the daemon (the reply is queued already). */
	void (*down)(void *ud);
	/* The engine for the hidden "ensure" request of selftest builds, or
	 * NULL when there is none. May be NULL. */
	struct engine *(*engine)(void *ud);
};

struct control {
	struct evloop *loop;
	const char *sock_path;
	const struct control_ops *ops;
	void *ud;
	struct ev_watch listen_w; /* fd -1 when not listening */
	struct ctl_client *clients;
	unsigned nclients;
};

/* Binds sock_path (a stale socket file must be gone already) and watches
 * it. Returns 0 or -errno with a sentence in err. */
int control_open(struct control *ctl, struct evloop *loop, const char *sock_path,
		 const struct control_ops *ops, void *ud, struct err *err)
	__attribute__((warn_unused_result));

/* Frees the clients closed since the last call. */
void control_reap(struct control *ctl);

/* Closes every client and the listening socket, and removes the socket
 * file. No-op when not open. */
void control_close(struct control *ctl);

#endif
