/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fuzzes the decoder of the relay's replies: the first byte picks the
 * request kind and status class, the rest is the body (seeds with several
 * writers' "records", a squatter's oversized and malformed entries among
 * them, in corpus/relay_reply/records-*); the same bytes also go to the
 * X-Tandem-Observed parser. */
#include <stdint.h>
#include <stdlib.h>

#include "relay_client/relay_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int statuses[] = { 200, 201, 204, 400, 404, 429, 503, 302 };
	struct relay_reply *rep;
	uint8_t sel;

	if (size < 1)
		return 0;
	rep = malloc(sizeof(*rep));
	if (!rep)
		return 0;
	sel = data[0];
	int r = relay_reply_parse((enum relay_reply_kind)(sel % 3), statuses[(sel >> 2) % 8],
				(const char *)data + 1, size - 1, rep);
	(void)r;
	/* whatever the body, what is kept fits what readers expect */
	if (rep->nrecords > RELAY_REPLY_RECORDS_MAX)
		abort();
	for (size_t i = 0; i < rep->nrecords; i++)
		if (rep->records[i].blob_len < 1 || rep->records[i].blob_len > RECORD_BLOB_MAX)
			abort();
	free(rep);
	/* the same bytes as an X-Tandem-Observed value: an address or nothing */
	struct record_addr a;
	if (relay_observed_parse((const char *)data + 1, size - 1, &a) == 0 &&
	    (a.port == 0 || (a.family != 4 && a.family != 6)))
		abort();
	return 0;
}
