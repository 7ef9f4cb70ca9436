/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "base/encoding.h"
#include "base/log.h"
#include "relay_client/relay_reply.h"

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

/* Decodes a "blob" member into *rec. Returns 0, or -EPROTO with a reason. */
static int blob_parse(json_t *v, struct relay_reply_record *rec, struct relay_reply *ret)
{
	int n;

	if (!json_is_string(v))
		return fail(ret, "the reply has no \"blob\" string");
	n = b64url_decode(json_string_value(v), json_string_length(v), rec->blob,
			  sizeof(rec->blob));
	if (n == -EMSGSIZE)
		return fail(ret, "the record in the reply is larger than any tandem record");
	if (n <= 0)
		return fail(ret, "the record in the reply is not valid base64url");
	rec->blob_len = (size_t)n;
	rec->expires_in = -1;
	return 0;
}

/* "records": [{"blob":..,"expires_in":..}, ..]; bad entries are skipped. */
static int records_parse(json_t *arr, struct relay_reply *ret)
{
	size_t i;
	json_t *e;

	if (!json_is_array(arr))
		return fail(ret, "\"records\" in the reply is not an array");
	/* clang-format off */
	json_array_foreach(arr, i, e) {
		struct relay_reply_record *rec = &ret->records[ret->nrecords];
		json_t *x;

		if (ret->nrecords >= RELAY_REPLY_RECORDS_MAX || !json_is_object(e) ||
		    blob_parse(json_object_get(e, "blob"), rec, ret) < 0) {
			ret->skipped++;
			continue;
		}
		x = json_object_get(e, "expires_in");
		if (json_is_integer(x) && json_integer_value(x) >= 0 &&
		    json_integer_value(x) <= 86400 * 365)
			rec->expires_in = (long)json_integer_value(x);
		ret->nrecords++;
	}
	/* clang-format on */
	ret->message[0] = '\0'; /* a skipped entry is not the reply's fault */
	return 0;
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
		v = json_object_get(root, "records");
		if (v)
			r = records_parse(v, ret);
		else
			r = blob_parse(json_object_get(root, "blob"), &ret->records[0], ret);
		if (r == 0 && !v) {
			ret->records[0].expires_in = ret->expires_in;
			ret->nrecords = 1;
		}
	}
out:
	json_decref(root);
	return r;
}

int relay_observed_parse(const char *text, size_t len, struct record_addr *ret)
{
	char buf[RECORD_ADDR_TEXT_MAX], host[INET6_ADDRSTRLEN];
	struct record_addr a = {0};
	const char *p, *colon;
	size_t n, hl;
	unsigned long port = 0;

	while (len && text[0] == ' ') {
		text++;
		len--;
	}
	while (len && (text[len - 1] == '\r' || text[len - 1] == '\n'))
		len--;
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (strlen(buf) != len)
		return -EINVAL; /* a NUL inside */

	colon = strrchr(buf, ':');
	if (!colon)
		return -EINVAL;
	/* the port: 1..5 digits, 1..65535 */
	n = strlen(colon + 1);
	if (n < 1 || n > 5)
		return -EINVAL;
	for (p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port < 1 || port > 65535)
		return -EINVAL;
	a.port = (uint16_t)port;

	if (buf[0] == '[') {
		hl = (size_t)(colon - buf);
		if (hl < 3 || buf[hl - 1] != ']' || hl - 2 >= sizeof(host))
			return -EINVAL;
		memcpy(host, buf + 1, hl - 2);
		host[hl - 2] = '\0';
		struct in6_addr in6;
		if (inet_pton(AF_INET6, host, &in6) != 1 || IN6_IS_ADDR_V4MAPPED(&in6) ||
		    IN6_IS_ADDR_UNSPECIFIED(&in6) || IN6_IS_ADDR_MULTICAST(&in6))
			return -EINVAL;
		a.family = 6;
		memcpy(a.ip, &in6, 16);
	} else {
		hl = (size_t)(colon - buf);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, buf, hl);
		host[hl] = '\0';
		struct in_addr in4;
		/* inet_pton takes only four decimal parts, no leading zeros */
		if (inet_pton(AF_INET, host, &in4) != 1)
			return -EINVAL;
		uint32_t h = ntohl(in4.s_addr);
		if (h == 0 || (h >> 28) == 0xe)
			return -EINVAL;
		a.family = 4;
		memcpy(a.ip, &in4, 4);
	}
	*ret = a;
	return 0;
}
