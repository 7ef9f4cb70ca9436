/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_HELLO_H
#define TANDEM_DAEMON_HELLO_H

#include <stddef.h>
#include <stdint.h>

/*
 * HELLO, the first DATA message each side sends once the channel is up
 * (docs/DAEMON.md, "HELLO"): type 1, the protocol version (u16, big
 * endian), the software's length (u8, at most CONN_SOFTWARE_MAX) and that
 * many bytes of free text ("tandem 0.4.0"). Sans-IO, so it can be fuzzed
 * (tests/fuzz/fuzz_hello.c).
 */

/* DATA payloads start with a message type (docs/DAEMON.md, "HELLO"). */
enum conn_msg {
	CONN_MSG_HELLO = 1,
};
#define CONN_PROTO_VERSION 1
#define CONN_SOFTWARE_MAX 64
#define CONN_HELLO_MAX (4 + CONN_SOFTWARE_MAX)

struct conn_hello {
	unsigned version;
	size_t software_len;
	char software[CONN_SOFTWARE_MAX + 1]; /* NUL-terminated; may hold NULs (peer text) */
};

/* Decodes one HELLO payload: all of it, nothing more. Returns 0 and
 * *ret, or -EBADMSG (*ret untouched). */
int conn_hello_parse(const uint8_t *p, size_t len, struct conn_hello *ret)
	__attribute__((warn_unused_result));

/* Encodes a HELLO; software longer than CONN_SOFTWARE_MAX is cut. Returns
 * the length, or -EMSGSIZE when cap is too small. */
int conn_hello_write(unsigned version, const char *software, size_t software_len, uint8_t *buf,
		     size_t cap) __attribute__((warn_unused_result));

#endif
