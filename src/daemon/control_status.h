/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_CONTROL_STATUS_H
#define TANDEM_DAEMON_CONTROL_STATUS_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"
#include "daemon/connmgr.h"

/*
 * The status object of the control socket (docs/DAEMON.md, "Control
 * socket"): each part of the daemon fills its own struct (the connection
 * manager its connmgr_status; the daemon the rest), and
 * control_status_json() alone turns them into JSON. The sync engine's keys
 * are added by the engine itself (engine_status), after these.
 */
struct daemon_status {
	bool stopping;
	const char *peer; /* fingerprints, as text */
	const char *self;
	long long pid;
	const char *relay;	   /* the relay URL */
	char relay_error[ERR_LEN]; /* "" when none */
	const char *warning;	   /* the setup warning, NULL or "" when none */
	const char *dir;
	const char *mount;  /* NULL or "" without --mount */
	const char *listen; /* NULL or "" with --listen none */
	const char *version;
	struct connmgr_status conn;
};

/* Returns a new JSON object (the caller owns it), or NULL when out of
 * memory. */
json_t *control_status_json(const struct daemon_status *st);

#endif
