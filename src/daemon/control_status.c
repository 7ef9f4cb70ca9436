/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "daemon/control_status.h"

static json_t *str_or_null(const char *s)
{
	return s && s[0] ? json_string(s) : json_null();
}

json_t *control_status_json(const struct daemon_status *st)
{
	const struct connmgr_status *c = &st->conn;
	const char *state = st->stopping ? "stopping" : c->connected ? "connected" : "connecting";
	json_t *o, *w;

	o = json_pack(
		"{s:s, s:s, s:s, s:o, s:I, s:s, s:o, s:o, s:o, s:o, s:I, s:o, s:i, s:i, "
		"s:[], s:s, s:s, s:o, s:o}",
		"state", state, "peer", st->peer, "self", st->self, "rtt_ms",
		c->connected && c->srtt_us ? json_real((double)c->srtt_us / 1000.0) : json_null(),
		"pid", (json_int_t)st->pid, "relay", st->relay, "relay_error",
		str_or_null(st->relay_error), "peer_addr",
		c->connected ? json_string(c->peer_addr) : json_null(), "path",
		c->connected ? json_string(conn_path_name(c->path)) : json_null(),
		"connected_since",
		c->connected_since ? json_integer(c->connected_since) : json_null(), "reconnects",
		(json_int_t)c->reconnects, "last_error", str_or_null(c->last_error),
		"files_in_sync", 0, "files_pending", 0, "transfers", "dir", st->dir, "version",
		st->version, "listen", str_or_null(st->listen), "mount", str_or_null(st->mount));
	if (!o)
		return NULL;
	w = json_array();
	if (w && st->warning && st->warning[0])
		json_array_append_new(w, json_string(st->warning));
	json_object_set_new(o, "warnings", w ? w : json_null());
	return o;
}
