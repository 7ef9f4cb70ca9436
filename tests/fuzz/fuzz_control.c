/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzzes the control socket's request parser (src/daemon/control_req.c):
 * the input is one request line as a client may send it (at most
 * CONTROL_REQUEST_MAX bytes). A request that fails must say why in a
 * sentence that can go into the JSON reply (printable, NUL-terminated) and
 * carry a known error code; one that parses is rebuilt as canonical JSON,
 * which must parse to the same request.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemon/control_req.h"
#include "fuzz_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static json_t *rebuild(const struct control_request *req)
{
	static const char *const names[] = {"status", "down", "ensure"};
	json_t *o = json_pack("{s:s}", "cmd", names[req->cmd]);

	check(o != NULL);
	if (req->cmd == CONTROL_CMD_ENSURE) {
		check(json_object_set_new(o, "path", json_string(req->path)) == 0);
		check(json_object_set_new(o, "offset", json_integer((json_int_t)req->off)) == 0);
		check(json_object_set_new(
			      o, "length",
			      json_integer(req->len == UINT64_MAX ? -1 : (json_int_t)req->len)) ==
		      0);
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct control_request req, again;
	struct err err;
	const char *code = NULL;
	char *text;
	json_t *o;
	int r;

	if (size > CONTROL_REQUEST_MAX)
		return 0;
	memset(err.msg, 'X', sizeof(err.msg));
	r = control_request_parse((const char *)data, size, &req, &code, &err);
	if (r < 0) {
		size_t n = strnlen(err.msg, sizeof(err.msg));
		check(r == -EINVAL || r == -ENOENT || r == -ENOMEM);
		check(n > 0 && n < sizeof(err.msg));
		check(code &&
		      (strcmp(code, "bad_request") == 0 || strcmp(code, "unknown_command") == 0 ||
		       strcmp(code, "internal") == 0));
		check(fuzz_text_printable(err.msg, n));
		/* the reply control.c builds from it */
		o = json_pack("{s:s, s:s}", "error", code, "message", err.msg);
		check(o != NULL);
		json_decref(o);
		return 0;
	}
	check(req.cmd == CONTROL_CMD_STATUS || req.cmd == CONTROL_CMD_DOWN ||
	      req.cmd == CONTROL_CMD_ENSURE);
	check((req.cmd == CONTROL_CMD_ENSURE) == (req.path != NULL));
	check(req.cmd != CONTROL_CMD_ENSURE || req.off <= INT64_MAX);

	o = rebuild(&req);
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	check(text != NULL);
	r = control_request_parse(text, strlen(text), &again, &code, &err);
	check(r == 0 && again.cmd == req.cmd && again.off == req.off && again.len == req.len);
	check((!req.path && !again.path) ||
	      (req.path && again.path && strcmp(req.path, again.path) == 0));
	free(text);
	control_request_done(&again);
	control_request_done(&req);
	check(req.path == NULL);
	return 0;
}
