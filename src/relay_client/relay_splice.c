/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Relayed connections, the client's side (relay_splice.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "base/encoding.h"
#include "relay_client/relay_splice.h"

static const char key_label[] = "tandem/v1/splice-key";
static const char token_label[] = "tandem/v1/splice-token";

int relay_splice_token(const struct identity *me, const uint8_t peer_pk[static IDENTITY_PK_LEN],
		       uint64_t bucket, uint8_t out[static RELAY_SPLICE_TOKEN_LEN])
{
	uint8_t x_me[crypto_scalarmult_BYTES], x_peer[crypto_scalarmult_BYTES];
	uint8_t dh[crypto_scalarmult_BYTES], key[32], be[8];
	const uint8_t *lo, *hi;
	crypto_generichash_state st;
	int r = -EINVAL, c = memcmp(me->pk, peer_pk, IDENTITY_PK_LEN);

	if (c == 0)
		return -EINVAL;
	lo = c < 0 ? me->pk : peer_pk;
	hi = c < 0 ? peer_pk : me->pk;
	if (crypto_sign_ed25519_pk_to_curve25519(x_peer, peer_pk) != 0)
		goto out;
	if (crypto_sign_ed25519_sk_to_curve25519(x_me, me->sk) != 0)
		goto out;
	/* fails on an all-zero result (a small-order peer key) */
	if (crypto_scalarmult(dh, x_me, x_peer) != 0)
		goto out;
	crypto_generichash_init(&st, NULL, 0, sizeof(key));
	crypto_generichash_update(&st, (const uint8_t *)key_label, sizeof(key_label));
	crypto_generichash_update(&st, dh, sizeof(dh));
	crypto_generichash_update(&st, lo, IDENTITY_PK_LEN);
	crypto_generichash_update(&st, hi, IDENTITY_PK_LEN);
	crypto_generichash_final(&st, key, sizeof(key));
	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(bucket >> (56 - 8 * i));
	crypto_generichash_init(&st, key, sizeof(key), RELAY_SPLICE_TOKEN_LEN);
	crypto_generichash_update(&st, (const uint8_t *)token_label, sizeof(token_label));
	crypto_generichash_update(&st, be, sizeof(be));
	crypto_generichash_final(&st, out, RELAY_SPLICE_TOKEN_LEN);
	r = 0;
out:
	sodium_memzero(x_me, sizeof(x_me));
	sodium_memzero(dh, sizeof(dh));
	sodium_memzero(key, sizeof(key));
	sodium_memzero(&st, sizeof(st));
	return r;
}

int relay_splice_side(const struct identity *me, const uint8_t peer_pk[static IDENTITY_PK_LEN])
{
	return memcmp(me->pk, peer_pk, IDENTITY_PK_LEN) < 0 ? 1 : 2;
}

/* Printable ASCII without blanks: what a host or a path may hold here. */
static bool plain(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

int relay_splice_request_format(const char *host, const char *prefix,
				const uint8_t token[static RELAY_SPLICE_TOKEN_LEN], int side,
				char *buf, size_t len)
{
	char tok[B64URL_LEN(RELAY_SPLICE_TOKEN_LEN) + 1];
	int n;

	if ((side != 1 && side != 2) || !*host || !plain(host) || !plain(prefix) ||
	    (*prefix && *prefix != '/'))
		return -EINVAL;
	b64url_encode(token, RELAY_SPLICE_TOKEN_LEN, tok, sizeof(tok));
	n = snprintf(buf, len,
		     "GET %s/v1/splice HTTP/1.1\r\n"
		     "Host: %s\r\n"
		     "Connection: Upgrade\r\n"
		     "Upgrade: " RELAY_SPLICE_PROTOCOL "\r\n"
		     "Authorization: Bearer %s\r\n"
		     "X-Tandem-Splice-Side: %d\r\n"
		     "User-Agent: tandem\r\n"
		     "\r\n",
		     prefix, host, tok, side);
	sodium_memzero(tok, sizeof(tok));
	if (n < 0 || (size_t)n >= len)
		return -EMSGSIZE;
	return n;
}

/* The value of header name in head (n bytes, lines end in CRLF), copied into out; false if absent.
 */
static bool header_get(const char *head, size_t n, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);
	const char *p = memchr(head, '\n', n), *end = head + n;

	while (p && p + 1 < end) {
		const char *line = p + 1, *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			break;
		if ((size_t)(eol - line) > nl && line[nl] == ':' &&
		    strncasecmp(line, name, nl) == 0) {
			const char *v = line + nl + 1, *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			size_t k = (size_t)(ve - v) < outlen - 1 ? (size_t)(ve - v) : outlen - 1;
			memcpy(out, v, k);
			out[k] = '\0';
			return true;
		}
		p = eol;
	}
	return false;
}

static void copy_printable(char *dst, size_t len, const char *src)
{
	size_t i = 0;

	for (; src && *src && i + 1 < len; src++)
		dst[i++] = ((unsigned char)*src < 0x20 || *src == 0x7f) ? ' ' : *src;
	dst[i] = '\0';
}

static int proto_error(struct relay_splice_reply *ret, const char *why)
{
	snprintf(ret->message, sizeof(ret->message), "%s", why);
	return -EPROTO;
}

int relay_splice_reply_parse(const uint8_t *buf, size_t len, bool eof,
			     struct relay_splice_reply *ret)
{
	const char *s = (const char *)buf, *head_end = NULL;
	char v[128];
	size_t head_len, body_len = 0;

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i + 3 < len && i < RELAY_SPLICE_HEAD_MAX; i++) {
		if (memcmp(s + i, "\r\n\r\n", 4) == 0) {
			head_end = s + i + 4;
			break;
		}
	}
	if (len >= 5 && strncmp(s, "HTTP/", 5) != 0)
		return proto_error(ret, "the relay's answer is not HTTP");
	if (!head_end) {
		if (len >= RELAY_SPLICE_HEAD_MAX)
			return proto_error(ret, "the relay's answer has a head over 8 KiB");
		return eof ? proto_error(ret, "the relay closed the connection before answering")
			   : 0;
	}
	head_len = (size_t)(head_end - s);
	if (head_len < 13 || strncmp(s, "HTTP/1.", 7) != 0 || s[8] != ' ' || s[9] < '1' ||
	    s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9' ||
	    (s[12] != ' ' && s[12] != '\r'))
		return proto_error(ret, "the relay's answer has no HTTP/1.1 status line");
	ret->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	if (ret->status == 101) {
		if (!header_get(s, head_len, "Upgrade", v, sizeof(v)) ||
		    strcasecmp(v, RELAY_SPLICE_PROTOCOL) != 0)
			return proto_error(ret, "the relay switched to a protocol other than "
						"tandem-splice/1");
		return (int)head_len;
	}
	if (ret->status < 200)
		return proto_error(ret, "the relay sent an unexpected informational answer");
	if (header_get(s, head_len, "Retry-After", v, sizeof(v))) {
		unsigned long ra = strtoul(v, NULL, 10);
		ret->retry_after = ra > 86400 ? 86400 : (uint32_t)ra;
	}
	if (header_get(s, head_len, "Content-Length", v, sizeof(v))) {
		unsigned long cl = strtoul(v, NULL, 10);
		if (cl > RELAY_SPLICE_REPLY_MAX - head_len)
			return proto_error(ret, "the relay's refusal is too large");
		body_len = cl;
	} else if (!eof) {
		return 0; /* no length: the body ends with the connection */
	} else {
		body_len = len - head_len;
	}
	if (len - head_len < body_len)
		return eof ? proto_error(ret, "the relay's refusal was cut short") : 0;
	/* the body of a refusal: {"error":..,"message":..}, or anything (a proxy's page) */
	json_t *root = json_loadb(head_end, body_len, 0, NULL);
	if (root && json_is_object(root)) {
		json_t *e = json_object_get(root, "error"), *m = json_object_get(root, "message");
		if (json_is_string(e))
			copy_printable(ret->error, sizeof(ret->error), json_string_value(e));
		if (json_is_string(m))
			copy_printable(ret->message, sizeof(ret->message), json_string_value(m));
	}
	json_decref(root);
	return (int)(head_len + body_len);
}
