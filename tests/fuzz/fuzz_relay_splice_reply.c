/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fuzzes the decoder of the relay's answer to a splice request
 * (relay_splice_reply_parse): the first byte's bit 0 says whether the
 * relay closed the connection, the rest is what it sent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay_client/relay_splice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay_splice_reply rep;
	uint8_t *copy;
	int r;

	if (size < 1)
		return 0;
	copy = malloc(size - 1 ? size - 1 : 1); /* its own allocation: ASan sees overreads */
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	r = relay_splice_reply_parse(copy, size - 1, data[0] & 1, &rep);
	/* a complete answer never claims more than it was given, a 101 only its head */
	if (r > 0 && (size_t)r > size - 1)
		abort();
	if (r > 0 && rep.status == 101 && r > RELAY_SPLICE_HEAD_MAX)
		abort();
	if (memchr(rep.error, '\0', sizeof(rep.error)) == NULL ||
	    memchr(rep.message, '\0', sizeof(rep.message)) == NULL)
		abort();
	free(copy);
	return 0;
}
