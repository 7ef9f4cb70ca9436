/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_CONTROL_H
#define TANDEM_DAEMON_CONTROL_H

#include "base/err.h"
#include "daemon/control_req.h"
#include "daemon/daemon_int.h"

/*
 * The control socket server (docs/DAEMON.md, "Control socket"): a Unix
 * stream socket, mode 0600, one JSON object per line both ways. Requests:
 * {"cmd":"status"} and {"cmd":"down"}. Loop thread only.
 */

#define CONTROL_CLIENTS_MAX 16
#define CONTROL_REPLY_BUF_MAX 65536

/* Binds opts->sock_path (a stale socket file must be gone already) and
 * watches it. Returns 0 or -errno with a sentence in err. */
int control_open(struct daemon *d, struct err *err) __attribute__((warn_unused_result));

/* Frees the clients closed since the last call. */
void control_reap(struct daemon *d);

/* Closes every client and the listening socket, and removes the socket file. */
void control_close(struct daemon *d);

#endif
