/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "base/cursor.h"
#include "identity/record.h"

#define RECORD_MAGIC "TDR1"
#define RECORD_SIG_LABEL "tandem/v1/record-sig"
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define EXT_OBSERVED_LEN 19 /* family, 16 bytes of IP, port */

static void aad_build(uint64_t bucket, const struct fingerprint *fp, uint8_t aad[1 + 32])
{
	uint8_t token[DERIVE_KEY_LEN];

	derive_relay_token(fp, bucket, token);
	aad[0] = RECORD_VERSION;
	memcpy(aad + 1, token, sizeof(token));
}

static bool addr_valid(const struct record_addr *a)
{
	if (a->port == 0)
		return false;
	if (a->family == 4) {
		for (int i = 4; i < 16; i++)
			if (a->ip[i])
				return false;
		return true;
	}
	return a->family == 6;
}

static void sig_input(const uint8_t aad[33], const uint8_t *body, size_t len,
		      crypto_sign_state *st)
{
	crypto_sign_init(st);
	crypto_sign_update(st, (const uint8_t *)RECORD_SIG_LABEL, sizeof(RECORD_SIG_LABEL));
	crypto_sign_update(st, aad + 1, 32);
	crypto_sign_update(st, body, len);
}

int record_seal(const struct identity *id, const struct peer_record *rec, uint64_t bucket,
		uint8_t *out, size_t outlen)
{
	uint8_t plain[RECORD_PLAIN_MAX];
	uint8_t key[DERIVE_KEY_LEN], aad[33];
	crypto_sign_state st;
	struct wcursor w = wcursor_make(plain, sizeof(plain));
	size_t n;
	unsigned long long clen;

	if (rec->naddrs > RECORD_MAX_ADDRS)
		return -EINVAL;
	for (unsigned i = 0; i < rec->naddrs; i++)
		if (!addr_valid(&rec->addrs[i]))
			return -EINVAL;
	if (rec->has_observed && !addr_valid(&rec->observed))
		return -EINVAL;

	wcursor_put(&w, RECORD_MAGIC, 4);
	wcursor_u8(&w, rec->flags);
	wcursor_put(&w, id->pk, IDENTITY_PK_LEN);
	wcursor_u64(&w, rec->timestamp);
	wcursor_u8(&w, rec->naddrs);
	for (unsigned i = 0; i < rec->naddrs; i++) {
		const struct record_addr *a = &rec->addrs[i];
		wcursor_u8(&w, a->family);
		wcursor_put(&w, a->ip, 16);
		wcursor_u16(&w, a->port);
	}
	if (rec->has_observed) {
		const struct record_addr *a = &rec->observed;
		wcursor_u16(&w, 2 + EXT_OBSERVED_LEN); /* extension length */
		wcursor_u8(&w, RECORD_EXT_OBSERVED);
		wcursor_u8(&w, EXT_OBSERVED_LEN);
		wcursor_u8(&w, a->family);
		wcursor_put(&w, a->ip, 16);
		wcursor_u16(&w, a->port);
	} else {
		wcursor_u16(&w, 0); /* extension length: none */
	}
	if (w.bad || w.left < IDENTITY_SIG_LEN)
		return -EINVAL;
	n = sizeof(plain) - w.left;

	aad_build(bucket, &id->fp, aad);
	sig_input(aad, plain, n, &st);
	crypto_sign_final_create(&st, plain + n, NULL, id->sk);
	n += IDENTITY_SIG_LEN;

	if (outlen < 1 + NONCE_LEN + n + TAG_LEN)
		return -EMSGSIZE;
	out[0] = RECORD_VERSION;
	randombytes_buf(out + 1, NONCE_LEN);
	derive_record_key(&id->fp, bucket, key);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 1 + NONCE_LEN, &clen, plain, n, aad,
						   sizeof(aad), NULL, out + 1, key);
	sodium_memzero(key, sizeof(key));
	return (int)(1 + NONCE_LEN + clen);
}

/* The extension entries: type, length, value each; unknown types skipped. */
static int ext_parse(const uint8_t *ext, size_t len, struct peer_record *rec)
{
	struct cursor c = cursor_make(ext, len);

	while (c.left > 0 && !c.bad) {
		uint8_t type = cursor_u8(&c);
		uint8_t n = cursor_u8(&c);
		const uint8_t *v = cursor_take(&c, n);
		if (!v)
			return -EBADMSG;
		if (type != RECORD_EXT_OBSERVED)
			continue;
		if (n != EXT_OBSERVED_LEN || rec->has_observed)
			return -EBADMSG;
		rec->observed.family = v[0];
		memcpy(rec->observed.ip, v + 1, 16);
		rec->observed.port = (uint16_t)(v[17] << 8 | v[18]);
		if (!addr_valid(&rec->observed))
			return -EBADMSG;
		rec->has_observed = true;
	}
	return c.bad ? -EBADMSG : 0;
}

int record_open(const struct fingerprint *fp, uint64_t bucket, const uint8_t *blob, size_t len,
		struct peer_record *ret)
{
	uint8_t plain[RECORD_PLAIN_MAX];
	uint8_t key[DERIVE_KEY_LEN], aad[33];
	unsigned long long plen;
	struct peer_record rec;
	struct fingerprint got;
	struct cursor c;
	crypto_sign_state st;
	const uint8_t *sig, *ext;
	size_t body_len;
	int r;

	if (len < 1)
		return -EBADMSG;
	if (blob[0] != RECORD_VERSION)
		return -EPROTONOSUPPORT;
	if (len < 1 + NONCE_LEN + TAG_LEN || len - 1 - NONCE_LEN - TAG_LEN > RECORD_PLAIN_MAX)
		return -EBADMSG;

	aad_build(bucket, fp, aad);
	derive_record_key(fp, bucket, key);
	r = crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, blob + 1 + NONCE_LEN,
						       len - 1 - NONCE_LEN, aad, sizeof(aad),
						       blob + 1, key);
	sodium_memzero(key, sizeof(key));
	if (r != 0)
		return -EBADMSG;

	memset(&rec, 0, sizeof(rec));
	c = cursor_make(plain, plen);
	const uint8_t *magic = cursor_take(&c, 4);
	if (!magic || memcmp(magic, RECORD_MAGIC, 4) != 0)
		return -EBADMSG;
	rec.flags = cursor_u8(&c);
	const uint8_t *pk = cursor_take(&c, IDENTITY_PK_LEN);
	if (pk)
		memcpy(rec.pk, pk, IDENTITY_PK_LEN);
	rec.timestamp = cursor_u64(&c);
	rec.naddrs = cursor_u8(&c);
	if (rec.naddrs > RECORD_MAX_ADDRS)
		return -EBADMSG;
	for (unsigned i = 0; i < rec.naddrs; i++) {
		struct record_addr *a = &rec.addrs[i];
		const uint8_t *ip;
		a->family = cursor_u8(&c);
		ip = cursor_take(&c, 16);
		if (ip)
			memcpy(a->ip, ip, 16);
		a->port = cursor_u16(&c);
		if (!c.bad && !addr_valid(a))
			return -EBADMSG;
	}
	uint16_t ext_len = cursor_u16(&c);
	if (ext_len > RECORD_MAX_EXT)
		return -EBADMSG;
	ext = cursor_take(&c, ext_len);
	if (ext && ext_parse(ext, ext_len, &rec) < 0)
		return -EBADMSG;
	body_len = plen - c.left;
	sig = cursor_take(&c, IDENTITY_SIG_LEN);
	if (c.bad || c.left != 0)
		return -EBADMSG;

	fp_from_pubkey(rec.pk, &got);
	if (!fp_equal(&got, fp))
		return -EKEYREJECTED;
	sig_input(aad, plain, body_len, &st);
	if (crypto_sign_final_verify(&st, sig, rec.pk) != 0)
		return -EBADMSG;
	*ret = rec;
	return 0;
}

int record_addr_from_sockaddr(const struct sockaddr *sa, struct record_addr *ret)
{
	struct record_addr a = { 0 };

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		a.family = 4;
		memcpy(a.ip, &in->sin_addr, 4);
		a.port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		a.family = 6;
		memcpy(a.ip, &in6->sin6_addr, 16);
		a.port = ntohs(in6->sin6_port);
	} else {
		return -EAFNOSUPPORT;
	}
	if (a.port == 0)
		return -EINVAL;
	*ret = a;
	return 0;
}

void record_addr_to_sockaddr(const struct record_addr *a, struct sockaddr_storage *ret,
			     socklen_t *ret_len)
{
	memset(ret, 0, sizeof(*ret));
	if (a->family == 4) {
		struct sockaddr_in *in = (struct sockaddr_in *)ret;
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, a->ip, 4);
		in->sin_port = htons(a->port);
		*ret_len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, a->ip, 16);
		in6->sin6_port = htons(a->port);
		*ret_len = sizeof(*in6);
	}
}

void record_addr_format(const struct record_addr *a, char out[static RECORD_ADDR_TEXT_MAX])
{
	char ip[INET6_ADDRSTRLEN];

	if (a->family == 4) {
		inet_ntop(AF_INET, a->ip, ip, sizeof(ip));
		snprintf(out, RECORD_ADDR_TEXT_MAX, "%s:%u", ip, a->port);
	} else {
		inet_ntop(AF_INET6, a->ip, ip, sizeof(ip));
		snprintf(out, RECORD_ADDR_TEXT_MAX, "[%s]:%u", ip, a->port);
	}
}
