/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include <sodium.h>

#include "record.h"
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

int main(void)
{
	if (sodium_init() < 0)
		return 99;
	if (identity_new(NULL, &alice) < 0 || identity_new(NULL, &mallory) < 0)
		return 99;
	RUN(roundtrip);
	RUN(plaintext_layout);
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
