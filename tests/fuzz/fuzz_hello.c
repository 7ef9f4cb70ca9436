/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzzes the HELLO decoder (src/daemon/hello.c), the first DATA message a
 * peer sends once the channel is up. Whatever decodes must re-encode to
 * exactly the input (the encoding is canonical), one byte short never
 * fits, and the software text the daemon logs must come out of log_quote
 * printable and bounded. A payload that fails to decode leaves the output
 * untouched.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/hello.h"
#include "fuzz_text.h"
#include "base/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t out[CONN_HELLO_MAX];
	char q[4 * CONN_SOFTWARE_MAX + 8];
	struct conn_hello h, untouched;
	size_t qlen;
	int r;

	memset(&h, 0xa5, sizeof(h));
	untouched = h;
	r = conn_hello_parse(data, size, &h);
	if (r < 0) {
		check(r == -EBADMSG);
		check(memcmp(&h, &untouched, sizeof(h)) == 0);
		return 0;
	}
	check(size >= 4 && size <= CONN_HELLO_MAX && data[0] == CONN_MSG_HELLO);
	check(h.version <= 0xffff && h.software_len == size - 4);
	check(h.software[h.software_len] == '\0');

	r = conn_hello_write(h.version, h.software, h.software_len, out, sizeof(out));
	check(r > 0 && (size_t)r == size && memcmp(out, data, size) == 0);
	check(conn_hello_write(h.version, h.software, h.software_len, out, size - 1) == -EMSGSIZE);

	/* what on_hello() logs: printable text, quoted, within the buffer */
	log_quote(h.software, h.software_len, q, sizeof(q));
	qlen = strlen(q);
	check(qlen >= 2 && qlen < sizeof(q) && q[0] == '"' && q[qlen - 1] == '"');
	check(fuzz_text_printable(q, qlen));
	/* the whole name fits: nothing is cut */
	check(strstr(q, "...") == NULL || memmem(h.software, h.software_len, "...", 3));
	return 0;
}
