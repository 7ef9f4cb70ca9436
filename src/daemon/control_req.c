/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"

#include "base/err.h"
#include "daemon/control_req.h"
#include "log.h"

static int fail(const char **ret_code, const char *code, struct err *err, int r, const char *fmt,
		...) __attribute__((format(printf, 5, 6)));

static int fail(const char **ret_code, const char *code, struct err *err, int r, const char *fmt,
		...)
{
	va_list ap;

	va_start(ap, fmt);
	err_setv(err, fmt, ap);
	va_end(ap);
	*ret_code = code;
	return r;
}

#if HAVE_SELFTEST
/* The hidden test seam of control.c, only in builds with the selftest. */
static int parse_ensure(json_t *req, struct control_request *r, const char **ret_code,
			struct err *err)
{
	json_t *p = json_object_get(req, "path"), *o = json_object_get(req, "offset"),
	       *l = json_object_get(req, "length");

	if (!json_is_string(p) || (o && !json_is_integer(o)) || (l && !json_is_integer(l)))
		return fail(ret_code, "bad_request", err, -EINVAL,
			    "ensure needs \"path\", \"offset\", \"length\"");
	r->path = strdup(json_string_value(p));
	if (!r->path)
		return fail(ret_code, "internal", err, -ENOMEM, "out of memory");
	r->off = o && json_integer_value(o) > 0 ? (uint64_t)json_integer_value(o) : 0;
	r->len = l && json_integer_value(l) >= 0 ? (uint64_t)json_integer_value(l) : UINT64_MAX;
	return 0;
}
#endif

int control_request_parse(const char *buf, size_t len, struct control_request *ret,
			  const char **ret_code, struct err *err)
{
	struct control_request r = {0};
	json_error_t jerr;
	json_t *req, *cmd;
	const char *name;
	int rc = 0;

	err_clear(err);
	req = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	cmd = req ? json_object_get(req, "cmd") : NULL;
	if (!json_is_object(req) || !json_is_string(cmd)) {
		char q[2 * JSON_ERROR_TEXT_LENGTH + 8];
		/* jansson's text quotes the request itself: raw bytes */
		rc = fail(ret_code, "bad_request", err, -EINVAL,
			  "a request is one JSON object per line with a \"cmd\" string, e.g. "
			  "{\"cmd\":\"status\"}%s%s",
			  req ? "" : "; this one does not parse: ",
			  req ? "" : log_quote(jerr.text, sizeof(jerr.text), q, sizeof(q)));
		goto out;
	}
	name = json_string_value(cmd);
	if (strcmp(name, "status") == 0) {
		r.cmd = CONTROL_CMD_STATUS;
	} else if (strcmp(name, "down") == 0) {
		r.cmd = CONTROL_CMD_DOWN;
#if HAVE_SELFTEST
	} else if (strcmp(name, "ensure") == 0) {
		r.cmd = CONTROL_CMD_ENSURE;
		rc = parse_ensure(req, &r, ret_code, err);
#endif
	} else {
		char q[64];
		rc = fail(ret_code, "unknown_command", err, -ENOENT,
			  "unknown command %s; this daemon knows \"status\" and \"down\"",
			  log_quote(name, 32, q, sizeof(q)));
	}
out:
	json_decref(req);
	if (rc == 0)
		*ret = r;
	return rc;
}

void control_request_done(struct control_request *req)
{
	free(req->path);
	req->path = NULL;
}
