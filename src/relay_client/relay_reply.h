/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_REPLY_H
#define TANDEM_RELAY_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "identity/record.h"

/*
 * Decoding of the relay's JSON replies (docs/RELAY.md), sans-IO so it can
 * be fuzzed. The HTTP code that reads the reply caps the body at
 * RELAY_REPLY_MAX bytes before calling this.
 */

/* A relay's largest GET reply: 8 writers' records of up to 4096 bytes in
 * base64url, the newest twice (docs/RELAY.md), is about 50 KB. */
#define RELAY_REPLY_MAX 65536
#define RELAY_MSG_LEN 256
#define RELAY_REPLY_RECORDS_MAX 16 /* records kept from one reply */

struct relay_reply_record {
	uint8_t blob[RECORD_BLOB_MAX];
	size_t blob_len;
	long expires_in; /* -1 if absent */
};

struct relay_reply {
	int status;
	/* GET 200: the records that can be tandem records, in the relay's
	 * order (most recently written first); the reader still has to open
	 * and verify each */
	struct relay_reply_record records[RELAY_REPLY_RECORDS_MAX];
	size_t nrecords;
	size_t skipped;			/* entries of "records" that cannot be one */
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
 * a reason in ret->message. A record reply with "records" (an array) is
 * read from there, and an entry that cannot be a tandem record (not an
 * object, no "blob", not base64url, larger than RECORD_BLOB_MAX, beyond
 * RELAY_REPLY_RECORDS_MAX) is skipped, not fatal: anyone may add records
 * under a token. Without "records" (a relay older than that), "blob" is
 * the one record. For an error status the body is read for
 * "error"/"message" when it is JSON, and ignored otherwise (a proxy may
 * answer HTML). Returns 0 or -EPROTO. ret is always initialised.
 */
int relay_reply_parse(enum relay_reply_kind kind, int status, const char *body, size_t len,
		      struct relay_reply *ret) __attribute__((warn_unused_result));

/*
 * Parses the value of the relay's X-Tandem-Observed header (docs/RELAY.md):
 * "A.B.C.D:PORT" or "[IPv6]:PORT", PORT 1..65535 in decimal; spaces before
 * and CR/LF after are allowed, nothing else. Refused (-EINVAL, *ret
 * untouched): anything longer than an address, host names, zone ids,
 * IPv4-mapped, unspecified and multicast addresses. Reads exactly len
 * bytes of text (no NUL needed). Returns 0 and *ret, or -EINVAL. What it
 * returns is only an address to try a hole punch to, never trusted
 * further (the secure channel authenticates whoever answers there).
 */
int relay_observed_parse(const char *text, size_t len, struct record_addr *ret)
	__attribute__((warn_unused_result));

#endif
