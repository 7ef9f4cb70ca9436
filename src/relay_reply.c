/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "encoding.h"
#include "log.h"
#include "relay_reply.h"

/* A relay's text reaches logs and `tandem status`: escaped (log.h). */
static void copy_printable(char *dst, size_t dstlen, const char *src)
{
	log_escape(src, strlen(src), dst, dstlen, 0);
}

static int fail(struct relay_reply *ret, const char *why)
{
	snprintf(ret->message, sizeof(ret->message), "%s", why);
	return -EPROTO;
}

int relay_reply_parse(enum relay_reply_kind kind, int status, const char *body, size_t len,
		      struct relay_reply *ret)
{
	json_error_t jerr;
	json_t *root = NULL, *v;
	int r = 0;

	memset(ret, 0, sizeof(*ret));
	ret->status = status;
	ret->expires_in = -1;

	if (len > RELAY_REPLY_MAX)
		return fail(ret, "the reply is too large");

	if (status >= 200 && status < 300 && kind == RELAY_REPLY_EMPTY)
		return 0;

	if (len > 0)
		root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);

	if (status < 200 || status >= 300) {
		/* An error: take what we can, never fail on the body. */
		if (root && json_is_object(root)) {
			v = json_object_get(root, "error");
			if (json_is_string(v))
				copy_printable(ret->error, sizeof(ret->error), json_string_value(v));
			v = json_object_get(root, "message");
			if (json_is_string(v))
				copy_printable(ret->message, sizeof(ret->message),
					       json_string_value(v));
		}
		goto out;
	}

	if (!root || !json_is_object(root)) {
		r = fail(ret, "the reply body is not a JSON object");
		goto out;
	}
	v = json_object_get(root, "expires_in");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 86400 * 365) {
			r = fail(ret, "\"expires_in\" is not a sane number of seconds");
			goto out;
		}
		ret->expires_in = (long)json_integer_value(v);
	}
	if (kind == RELAY_REPLY_RECORD) {
		const char *s;
		int n;

		v = json_object_get(root, "blob");
		if (!json_is_string(v)) {
			r = fail(ret, "the reply has no \"blob\" string");
			goto out;
		}
		s = json_string_value(v);
		n = b64url_decode(s, json_string_length(v), ret->blob, sizeof(ret->blob));
		if (n == -EMSGSIZE) {
			r = fail(ret, "the record in the reply is larger than any tandem record");
			goto out;
		}
		if (n <= 0) {
			r = fail(ret, "the record in the reply is not valid base64url");
			goto out;
		}
		ret->blob_len = (size_t)n;
	}
out:
	json_decref(root);
	return r;
}
