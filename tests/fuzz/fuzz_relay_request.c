/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzzes the relay's request handling (relay_core) without sockets. The
 * input is up to 8 requests separated by "\n\n\n". A request is a flags
 * byte, then method, path, Authorization and X-Tandem-Write-Secret values
 * on their own lines, then the body (the rest). Flags:
 *   bit 0: no Authorization     bit 1: no write secret
 *   bit 2: Content-Length known bit 3: Content-Length above the cap
 *   bit 4: body_too_large       bit 5: duplicate header
 *   bit 6-7: clock step before the request: 0, 999 ms, 10 s, 1 h
 * The requests run against one fresh core with small limits (2 records,
 * 5 requests a minute, TTL at most 10 s), so capacity, expiry and rate
 * limiting are reachable. Every field is copied into its own allocation
 * so that ASan sees any read past its end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay_core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REQUESTS 8

static char *field_dup(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* Next line of [*p, end): returns its start and length, advances *p. */
static const uint8_t *line_next(const uint8_t **p, const uint8_t *end, size_t *ret_len)
{
	const uint8_t *start = *p;
	const uint8_t *nl = memchr(start, '\n', (size_t)(end - start));

	if (!nl) {
		*ret_len = (size_t)(end - start);
		*p = end;
	} else {
		*ret_len = (size_t)(nl - start);
		*p = nl + 1;
	}
	return start;
}

static void run_one(struct relay_core *core, const uint8_t *p, size_t n, int idx, int64_t *clock_ms)
{
	static const int64_t steps[4] = {0, 999, 10000, 3600000};
	const uint8_t *end = p + n, *f[4];
	size_t flen[4];
	struct relay_request req;
	struct relay_response resp;
	char *s[4] = {NULL, NULL, NULL, NULL};
	uint8_t *body = NULL;
	uint8_t flags;

	if (n < 1)
		return;
	flags = p[0];
	p++;
	for (int i = 0; i < 4; i++)
		f[i] = line_next(&p, end, &flen[i]);
	for (int i = 0; i < 4; i++) {
		s[i] = field_dup(f[i], flen[i]);
		if (!s[i])
			goto out;
	}
	body = malloc(end > p ? (size_t)(end - p) : 1);
	if (!body)
		goto out;
	if (end > p)
		memcpy(body, p, (size_t)(end - p));
	*clock_ms += steps[flags >> 6];

	memset(&req, 0, sizeof(req));
	req.method = s[0];
	req.path = s[1];
	req.authorization = (flags & 1) ? NULL : s[2];
	req.write_secret = (flags & 2) ? NULL : s[3];
	req.body = body;
	req.body_len = (size_t)(end - p);
	req.content_length_known = (flags & 4) != 0;
	req.content_length = req.body_len + ((flags & 8) ? 100000 : 0);
	req.body_too_large = (flags & 16) != 0;
	req.duplicate_header = (flags & 32) != 0;
	req.client.b[0] = 6;
	req.client.b[1] = (uint8_t)(idx & 1);
	req.now_ms = *clock_ms;
	/* like the HTTP layer: admit on the headers, then handle the rest */
	if (idx & 2) {
		if (relay_core_admit(core, &req, &resp)) {
			relay_core_response_done(&resp);
			goto out;
		}
		req.admitted = true;
	}
	relay_core_handle(core, &req, &resp);
	if (resp.status < 200 || resp.status > 599 || (resp.body_len && !resp.body))
		abort();
	relay_core_response_done(&resp);
out:
	for (int i = 0; i < 4; i++)
		free(s[i]);
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay_core_config cfg;
	struct relay_core *core = NULL;
	const uint8_t *p = data, *end = data + size;
	int64_t clock_ms = 1000;

	relay_core_config_init(&cfg);
	cfg.max_records = 2;
	cfg.rate = 5;
	cfg.rate_clients = 2;
	cfg.default_ttl = 5;
	cfg.max_ttl = 10;
	if (relay_core_new(&cfg, clock_ms, &core) < 0)
		return 0;
	for (int i = 0; i < MAX_REQUESTS && p < end; i++) {
		const uint8_t *sep = memmem(p, (size_t)(end - p), "\n\n\n", 3);
		const uint8_t *stop = sep ? sep : end;
		run_one(core, p, (size_t)(stop - p), i, &clock_ms);
		p = sep ? sep + 3 : end;
	}
	relay_core_free(core);
	return 0;
}
