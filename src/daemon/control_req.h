/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_CONTROL_REQ_H
#define TANDEM_DAEMON_CONTROL_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/*
 * One control socket request line (docs/DAEMON.md, "Control socket"),
 * parsed without any daemon state so it can be fuzzed
 * (tests/fuzz/fuzz_control.c). A request is a JSON object with a "cmd"
 * string: "status", "down", or (only in builds with the selftest,
 * HAVE_SELFTEST) the hidden test seam "ensure" with "path"
 * (string), "offset" and "length" (integers; length -1 or absent: the
 * whole file).
 */

#define CONTROL_REQUEST_MAX 4096 /* bytes of one request line */

enum control_cmd {
	CONTROL_CMD_STATUS,
	CONTROL_CMD_DOWN,
	CONTROL_CMD_ENSURE,
};

struct control_request {
	enum control_cmd cmd;
	char *path;   /* ensure: malloc'd, NUL-free; else NULL */
	uint64_t off; /* ensure */
	uint64_t len; /* ensure: UINT64_MAX for the whole file */
};

/*
 * Parses one request line of len bytes (no newline). Returns 0 and *ret
 * (free with control_request_done), or a negative errno with the error
 * code for the reply in *ret_code ("bad_request", "unknown_command") and a
 * sentence in err (printable ASCII, valid as a JSON string): -EINVAL for
 * a malformed request, -ENOENT for an unknown command, -ENOMEM.
 */
int control_request_parse(const char *buf, size_t len, struct control_request *ret,
			  const char **ret_code, struct err *err)
	__attribute__((warn_unused_result));

void control_request_done(struct control_request *req);

#endif
