/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_CONTROL_CLIENT_H
#define TANDEM_CONTROL_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#include "base/paths.h"

/*
 * The client side of the daemon's control socket (docs/DAEMON.md): used by
 * `tandem up` (is one running already?), `tandem status` and `tandem
 * down`. One JSON object per line both ways. Blocking, with timeouts.
 */

#define CONTROL_SOCKET_NAME "tandem.sock"
#define CONTROL_PATH_MAX 108 /* sizeof(sun_path) */
#define CONTROL_REPLY_MAX 65536

/* <runtime>/tandem.sock into out. Returns 0, or -ENAMETOOLONG when it does not
 * fit a Unix socket address. */
int control_path_get(const struct tandem_paths *paths, char out[static CONTROL_PATH_MAX])
	__attribute__((warn_unused_result));

struct control_client;

/*
 * Connects to the socket at path. Returns 0 and *ret, or -ENOENT (no socket
 * file), -ECONNREFUSED (a socket file nobody listens on: a crashed
 * daemon's), or another -errno.
 */
int control_client_open(const char *path, struct control_client **ret)
	__attribute__((warn_unused_result));

/*
 * Sends one request line (req, a JSON object without newline) and reads the
 * reply line within timeout_ms. Returns 0 with the parsed reply in *ret
 * (json_decref it) and, when ret_raw is not NULL, the raw line (without
 * newline, owned by c, valid until the next call); or -ETIMEDOUT,
 * -ECONNRESET (the daemon closed without answering), -EPROTO (the reply is
 * not a JSON object or is too long), another -errno.
 */
int control_client_call(struct control_client *c, const char *req, int timeout_ms, json_t **ret,
			const char **ret_raw) __attribute__((warn_unused_result));

/* Waits until the daemon closes the connection. Returns 0, or -ETIMEDOUT. */
int control_client_wait_close(struct control_client *c, int timeout_ms);

void control_client_free(struct control_client *c);

#endif
