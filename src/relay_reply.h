/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_REPLY_H
#define TANDEM_RELAY_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

/*
 * Decoding of the relay's JSON replies (docs/RELAY.md), sans-IO so it can
 * be fuzzed. The HTTP code that reads the reply caps the body at
 * RELAY_REPLY_MAX bytes before calling this.
 */

#define RELAY_REPLY_MAX 16384
#define RELAY_MSG_LEN 256

struct relay_reply {
	int status;
	uint8_t blob[RECORD_BLOB_MAX];	/* GET 200 */
	size_t blob_len;
	long expires_in;		/* GET 200, POST 200/201; -1 if absent */
	char error[64];			/* error code of an error reply, or "" */
	char message[RELAY_MSG_LEN];	/* relay's human message, or "" */
};

enum relay_reply_kind {
	RELAY_REPLY_RECORD,	/* a fetched record: blob required */
	RELAY_REPLY_STORED,	/* answer to a POST */
	RELAY_REPLY_EMPTY,	/* answer to a DELETE */
};

/*
 * Parses a reply with HTTP status `status` to a request of `kind`. For a
 * success status the body must be what the API promises, else -EPROTO with
 * a reason in ret->message. For an error status the body is read for
 * "error"/"message" when it is JSON, and ignored otherwise (a proxy may
 * answer HTML). Returns 0 or -EPROTO. ret is always initialised.
 */
int relay_reply_parse(enum relay_reply_kind kind, int status, const char *body, size_t len,
		      struct relay_reply *ret) __attribute__((warn_unused_result));

#endif
