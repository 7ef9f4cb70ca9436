/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include <sodium.h>

#include "identity/record.h"
#include "tap.h"

static struct identity *alice, *mallory;

static void sample(struct peer_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->flags = RECORD_FLAG_INBOUND;
	rec->timestamp = 1700000000;
	rec->naddrs = 2;
	rec->addrs[0].family = 6;
	inet_pton(AF_INET6, "2001:db8::7", rec->addrs[0].ip);
	rec->addrs[0].port = 40001;
	rec->addrs[1].family = 4;
	inet_pton(AF_INET, "192.0.2.9", rec->addrs[1].ip);
	rec->addrs[1].port = 40002;
}

TEST(roundtrip)
{
	struct peer_record rec, got;
	uint8_t blob[RECORD_BLOB_MAX];
	int n;

	sample(&rec);
	n = record_seal(alice, &rec, 100, blob, sizeof(blob));
	REQUIRE(n > 0);
	CHECK(n <= RECORD_BLOB_MAX);
	memset(&got, 0, sizeof(got));
	CHECK_INT_EQ(record_open(&alice->fp, 100, blob, (size_t)n, &got), 0);
	CHECK(memcmp(got.pk, alice->pk, 32) == 0);
	CHECK_INT_EQ(got.flags, RECORD_FLAG_INBOUND);
	CHECK_INT_EQ(got.timestamp, 1700000000);
	CHECK_INT_EQ(got.naddrs, 2);
	CHECK(memcmp(&got.addrs[0], &rec.addrs[0], sizeof(rec.addrs[0])) == 0);
	CHECK(memcmp(&got.addrs[1], &rec.addrs[1], sizeof(rec.addrs[1])) == 0);

	char txt[RECORD_ADDR_TEXT_MAX];
	record_addr_format(&got.addrs[0], txt);
	CHECK_STR_EQ(txt, "[2001:db8::7]:40001");
	record_addr_format(&got.addrs[1], txt);
	CHECK_STR_EQ(txt, "192.0.2.9:40002");

	/* zero addresses is fine (a peer that accepts no inbound connections) */
	rec.naddrs = 0;
	rec.flags = 0;
	n = record_seal(alice, &rec, 100, blob, sizeof(blob));
	REQUIRE(n > 0);
	CHECK_INT_EQ(record_open(&alice->fp, 100, blob, (size_t)n, &got), 0);
	CHECK_INT_EQ(got.naddrs, 0);
}

TEST(no_plaintext_in_blob)
{
	struct peer_record rec;
	uint8_t blob[RECORD_BLOB_MAX];
	int n;

	sample(&rec);
	n = record_seal(alice, &rec, 100, blob, sizeof(blob));
	REQUIRE(n > 0);
	CHECK(memmem(blob, (size_t)n, alice->pk, 8) == NULL);
	CHECK(memmem(blob, (size_t)n, alice->fp.b, 8) == NULL);
	CHECK(memmem(blob, (size_t)n, rec.addrs[0].ip, 8) == NULL);
	CHECK(memmem(blob, (size_t)n, rec.addrs[1].ip, 4) == NULL);
	/* two seals of the same record differ (random nonce) */
	uint8_t blob2[RECORD_BLOB_MAX];
	int n2 = record_seal(alice, &rec, 100, blob2, sizeof(blob2));
	CHECK(n2 == n && memcmp(blob, blob2, (size_t)n) != 0);
}

TEST(tamper_every_byte)
{
	struct peer_record rec, got;
	uint8_t blob[RECORD_BLOB_MAX];
	int n, rejected = 0;

	sample(&rec);
	n = record_seal(alice, &rec, 7, blob, sizeof(blob));
	REQUIRE(n > 0);
	for (int i = 0; i < n; i++) {
		blob[i] ^= 0x20;
		int r = record_open(&alice->fp, 7, blob, (size_t)n, &got);
		if (r == -EBADMSG || (i == 0 && r == -EPROTONOSUPPORT))
			rejected++;
		blob[i] ^= 0x20;
	}
	CHECK_INT_EQ(rejected, n);
	/* truncated at every length */
	int trunc_rejected = 0;
	for (int len = 0; len < n; len++)
		trunc_rejected += record_open(&alice->fp, 7, blob, (size_t)len, &got) < 0;
	CHECK_INT_EQ(trunc_rejected, n);
	/* appended garbage */
	blob[n] = 0;
	CHECK(record_open(&alice->fp, 7, blob, (size_t)n + 1, &got) < 0);
}

TEST(wrong_bucket_or_fp)
{
	struct peer_record rec, got;
	uint8_t blob[RECORD_BLOB_MAX];
	int n;

	sample(&rec);
	n = record_seal(alice, &rec, 7, blob, sizeof(blob));
	REQUIRE(n > 0);
	CHECK_INT_EQ(record_open(&alice->fp, 8, blob, (size_t)n, &got), -EBADMSG);
	CHECK_INT_EQ(record_open(&alice->fp, 6, blob, (size_t)n, &got), -EBADMSG);
	CHECK_INT_EQ(record_open(&mallory->fp, 7, blob, (size_t)n, &got), -EBADMSG);
	blob[0] = 2;
	CHECK_INT_EQ(record_open(&alice->fp, 7, blob, (size_t)n, &got), -EPROTONOSUPPORT);
}

/*
 * Someone who knows alice's fingerprint can compute her record key and
 * token, so can seal a record that decrypts: it must still be rejected,
 * because the key inside is not alice's.
 */
TEST(impostor_record_rejected)
{
	uint8_t plain_blob[RECORD_BLOB_MAX];
	struct peer_record rec, got;
	struct identity fake;
	int n;

	sample(&rec);
	/* mallory's keys, but alice's fingerprint for the sealing keys */
	fake = *mallory;
	fake.fp = alice->fp;
	n = record_seal(&fake, &rec, 7, plain_blob, sizeof(plain_blob));
	REQUIRE(n > 0);
	CHECK_INT_EQ(record_open(&alice->fp, 7, plain_blob, (size_t)n, &got), -EKEYREJECTED);
}

TEST(invalid_records_refused_at_seal)
{
	struct peer_record rec;
	uint8_t blob[RECORD_BLOB_MAX];

	sample(&rec);
	rec.addrs[0].port = 0;
	CHECK_INT_EQ(record_seal(alice, &rec, 1, blob, sizeof(blob)), -EINVAL);
	sample(&rec);
	rec.addrs[1].family = 5;
	CHECK_INT_EQ(record_seal(alice, &rec, 1, blob, sizeof(blob)), -EINVAL);
	sample(&rec);
	rec.naddrs = RECORD_MAX_ADDRS + 1;
	CHECK_INT_EQ(record_seal(alice, &rec, 1, blob, sizeof(blob)), -EINVAL);
	sample(&rec);
	CHECK_INT_EQ(record_seal(alice, &rec, 1, blob, 40), -EMSGSIZE);
	/* the maximum fits */
	sample(&rec);
	rec.naddrs = RECORD_MAX_ADDRS;
	for (int i = 0; i < RECORD_MAX_ADDRS; i++)
		rec.addrs[i] = rec.addrs[0];
	CHECK(record_seal(alice, &rec, 1, blob, sizeof(blob)) > 0);
}

TEST(sockaddr_conversions)
{
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(8480) };
	struct sockaddr_storage ss;
	struct record_addr a;
	socklen_t len;

	in6.sin6_addr = in6addr_loopback;
	CHECK_INT_EQ(record_addr_from_sockaddr((struct sockaddr *)&in6, &a), 0);
	CHECK_INT_EQ(a.family, 6);
	CHECK_INT_EQ(a.port, 8480);
	record_addr_to_sockaddr(&a, &ss, &len);
	CHECK_INT_EQ(len, sizeof(in6));
	CHECK(memcmp(&((struct sockaddr_in6 *)&ss)->sin6_addr, &in6addr_loopback, 16) == 0);
	in6.sin6_port = 0;
	CHECK_INT_EQ(record_addr_from_sockaddr((struct sockaddr *)&in6, &a), -EINVAL);
	struct sockaddr un = { .sa_family = AF_UNIX };
	CHECK_INT_EQ(record_addr_from_sockaddr(&un, &a), -EAFNOSUPPORT);
}

/* The sealed plaintext, byte for byte (docs: magic, flags, key, time,
 * addresses, extension length, signature), so a change of the encoder
 * cannot change the wire format unnoticed. */
TEST(plaintext_layout)
{
	struct peer_record rec;
	uint8_t blob[RECORD_BLOB_MAX], plain[RECORD_PLAIN_MAX], key[DERIVE_KEY_LEN], aad[33];
	unsigned long long plen;
	const size_t npub = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	static const uint8_t head[] = {'T', 'D', 'R', '1', RECORD_FLAG_INBOUND};
	static const uint8_t tail[] = {
		0x00, 0x00, 0x00, 0x00, 0x65, 0x53, 0xf1, 0x00, /* 1700000000 */
		2,						/* addresses */
		6,    0x20, 0x01, 0x0d, 0xb8, 0,    0,	  0,	0,    0,    0, 0, 0, 0,
		0,    0,    7,	  0x9c, 0x41, 4,    192,  0,	2,    9,    0, 0, 0, 0,
		0,    0,    0,	  0,	0,    0,    0,	  0,	0x9c, 0x42, 0, 0, /* no extension */
	};
	int n;

	sample(&rec);
	n = record_seal(alice, &rec, 100, blob, sizeof(blob));
	REQUIRE(n > 0 && blob[0] == RECORD_VERSION);
	aad[0] = RECORD_VERSION;
	derive_relay_token(&alice->fp, 100, aad + 1);
	derive_record_key(&alice->fp, 100, key);
	REQUIRE(crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, blob + 1 + npub,
							   (size_t)n - 1 - npub, aad, sizeof(aad),
							   blob + 1, key) == 0);
	REQUIRE(plen == sizeof(head) + 32 + sizeof(tail) + 64);
	CHECK(memcmp(plain, head, sizeof(head)) == 0);
	CHECK(memcmp(plain + sizeof(head), alice->pk, 32) == 0);
	CHECK(memcmp(plain + sizeof(head) + 32, tail, sizeof(tail)) == 0);
}

/* Seals a hand-made plaintext body (before the signature) as a writer
 * would, so records with extension entries this version does not write can
 * be tried. Returns the blob length. */
static int seal_body(const uint8_t *body, size_t len, uint8_t *blob)
{
	uint8_t plain[RECORD_PLAIN_MAX], key[DERIVE_KEY_LEN], aad[33];
	const size_t npub = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	static const char label[] = "tandem/v1/record-sig";
	crypto_sign_state st;
	unsigned long long clen;

	memcpy(plain, body, len);
	aad[0] = RECORD_VERSION;
	derive_relay_token(&alice->fp, 100, aad + 1);
	crypto_sign_init(&st);
	crypto_sign_update(&st, (const uint8_t *)label, sizeof(label));
	crypto_sign_update(&st, aad + 1, 32);
	crypto_sign_update(&st, plain, len);
	crypto_sign_final_create(&st, plain + len, NULL, alice->sk);
	blob[0] = RECORD_VERSION;
	randombytes_buf(blob + 1, npub);
	derive_record_key(&alice->fp, 100, key);
	crypto_aead_xchacha20poly1305_ietf_encrypt(blob + 1 + npub, &clen, plain, len + 64, aad,
						   sizeof(aad), NULL, blob + 1, key);
	return (int)(1 + npub + clen);
}

/* A body with no address and the extension bytes ext. */
static size_t body_with_ext(uint8_t *out, const uint8_t *ext, size_t extlen)
{
	size_t n = 0;

	memcpy(out, "TDR1", 4);
	n = 4;
	out[n++] = 0;
	memcpy(out + n, alice->pk, 32);
	n += 32;
	memset(out + n, 0, 8);
	n += 8;
	out[n++] = 0; /* no address */
	out[n++] = (uint8_t)(extlen >> 8);
	out[n++] = (uint8_t)extlen;
	memcpy(out + n, ext, extlen);
	return n + extlen;
}

/* The observed address (extension 1) goes through seal and open; its bytes
 * are as documented; records without it still open (and old readers skip
 * the whole extension). */
TEST(observed_roundtrip_and_layout)
{
	struct peer_record rec, got;
	uint8_t blob[RECORD_BLOB_MAX], plain[RECORD_PLAIN_MAX], key[DERIVE_KEY_LEN], aad[33];
	unsigned long long plen;
	const size_t npub = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	static const uint8_t ext[] = {
		0,   21,		  /* extension length */
		1,   19,		  /* RECORD_EXT_OBSERVED, 19 bytes */
		4,   198, 51, 100, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0f, 0xa1, /* :4001 */
	};
	int n;

	sample(&rec);
	rec.has_observed = true;
	rec.observed.family = 4;
	inet_pton(AF_INET, "198.51.100.50", rec.observed.ip);
	rec.observed.port = 4001;
	n = record_seal(alice, &rec, 100, blob, sizeof(blob));
	REQUIRE(n > 0);
	memset(&got, 0, sizeof(got));
	CHECK_INT_EQ(record_open(&alice->fp, 100, blob, (size_t)n, &got), 0);
	CHECK(got.has_observed);
	CHECK(memcmp(&got.observed, &rec.observed, sizeof(rec.observed)) == 0);
	CHECK_INT_EQ(got.naddrs, 2);

	aad[0] = RECORD_VERSION;
	derive_relay_token(&alice->fp, 100, aad + 1);
	derive_record_key(&alice->fp, 100, key);
	REQUIRE(crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, blob + 1 + npub,
							   (size_t)n - 1 - npub, aad, sizeof(aad),
							   blob + 1, key) == 0);
	/* magic, flags, key, time, count, 2 addresses, then the extension */
	REQUIRE(plen == 4 + 1 + 32 + 8 + 1 + 2 * 19 + sizeof(ext) + 64);
	CHECK(memcmp(plain + 4 + 1 + 32 + 8 + 1 + 2 * 19, ext, sizeof(ext)) == 0);

	/* an observed address must be valid to be sealed */
	rec.observed.port = 0;
	CHECK_INT_EQ(record_seal(alice, &rec, 100, blob, sizeof(blob)), -EINVAL);

	sample(&rec);
	n = record_seal(alice, &rec, 100, blob, sizeof(blob));
	REQUIRE(n > 0);
	CHECK_INT_EQ(record_open(&alice->fp, 100, blob, (size_t)n, &got), 0);
	CHECK(!got.has_observed);
}

/* Extension entries: unknown types are skipped (a newer writer), a known
 * one must be well formed, and entries may not overrun the extension. */
TEST(extension_entries)
{
	uint8_t body[RECORD_PLAIN_MAX], blob[RECORD_BLOB_MAX];
	struct peer_record got;
	static const uint8_t obs[] = {1, 19, 6, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
				      0, 0, 0,	0,    0,    0,	  0,    2, 0x1f, 0x90};
	uint8_t ext[64];
	size_t bl;
	int n;

	/* an unknown entry, then the observed address: read */
	ext[0] = 77;
	ext[1] = 3;
	memset(ext + 2, 0xee, 3);
	memcpy(ext + 5, obs, sizeof(obs));
	bl = body_with_ext(body, ext, 5 + sizeof(obs));
	n = seal_body(body, bl, blob);
	memset(&got, 0, sizeof(got));
	CHECK_INT_EQ(record_open(&alice->fp, 100, blob, (size_t)n, &got), 0);
	CHECK(got.has_observed);
	CHECK_INT_EQ(got.observed.family, 6);
	CHECK_INT_EQ(got.observed.port, 8080);
	CHECK_INT_EQ(got.observed.ip[15], 2);

	/* only unknown entries: no observed address */
	bl = body_with_ext(body, ext, 5);
	n = seal_body(body, bl, blob);
	CHECK_INT_EQ(record_open(&alice->fp, 100, blob, (size_t)n, &got), 0);
	CHECK(!got.has_observed);

	/* an entry longer than what is left */
	ext[1] = 9;
	bl = body_with_ext(body, ext, 5);
	n = seal_body(body, bl, blob);
	CHECK_INT_EQ(record_open(&alice->fp, 100, blob, (size_t)n, &got), -EBADMSG);

	/* a lone type byte */
	bl = body_with_ext(body, ext, 1);
	n = seal_body(body, bl, blob);
	CHECK_INT_EQ(record_open(&alice->fp, 100, blob, (size_t)n, &got), -EBADMSG);

	/* the observed entry with the wrong length, port 0, a bad family, twice */
	memcpy(ext, obs, sizeof(obs));
	ext[1] = 18;
	bl = body_with_ext(body, ext, 20);
	n = seal_body(body, bl, blob);
	CHECK_INT_EQ(record_open(&alice->fp, 100, blob, (size_t)n, &got), -EBADMSG);
	memcpy(ext, obs, sizeof(obs));
	ext[19] = ext[20] = 0;
	bl = body_with_ext(body, ext, sizeof(obs));
	n = seal_body(body, bl, blob);
	CHECK_INT_EQ(record_open(&alice->fp, 100, blob, (size_t)n, &got), -EBADMSG);
	memcpy(ext, obs, sizeof(obs));
	ext[2] = 5;
	bl = body_with_ext(body, ext, sizeof(obs));
	n = seal_body(body, bl, blob);
	CHECK_INT_EQ(record_open(&alice->fp, 100, blob, (size_t)n, &got), -EBADMSG);
	memcpy(ext, obs, sizeof(obs));
	memcpy(ext + sizeof(obs), obs, sizeof(obs));
	bl = body_with_ext(body, ext, 2 * sizeof(obs));
	n = seal_body(body, bl, blob);
	CHECK_INT_EQ(record_open(&alice->fp, 100, blob, (size_t)n, &got), -EBADMSG);
}

int main(void)
{
	if (sodium_init() < 0)
		return 99;
	if (identity_new(NULL, &alice) < 0 || identity_new(NULL, &mallory) < 0)
		return 99;
	RUN(roundtrip);
	RUN(plaintext_layout);
	RUN(observed_roundtrip_and_layout);
	RUN(extension_entries);
	RUN(no_plaintext_in_blob);
	RUN(tamper_every_byte);
	RUN(wrong_bucket_or_fp);
	RUN(impostor_record_rejected);
	RUN(invalid_records_refused_at_seal);
	RUN(sockaddr_conversions);
	identity_free(alice);
	identity_free(mallory);
	return tap_done();
}
