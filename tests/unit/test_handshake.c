/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>

#include <sodium.h>

#include "chan/handshake.h"
#include "chan/hs_internal.h"
#include "tap.h"

/* docs/CHANNEL.md, "Test vector" */
#define TV_I2R "8561ef9f81185a4d89e5cbe656fc6dbbe759e03355dd9041b2675a75ee2aab9d"
#define TV_R2I "518a6f2744ffb2d820249563d29558079aa054d5c52eebc1b0c3c0910dbc183d"

static struct identity *alice, *bob, *mallory;

struct run {
	struct hs *i, *r;
	uint8_t m1[HS_MSG_MAX], m2[HS_MSG_MAX], m3[HS_MSG_MAX];
	int n1, n2, n3;
	int err_i, err_r; /* first error each side saw */
};

static void run_free(struct run *x)
{
	hs_free(x->i);
	hs_free(x->r);
	x->i = x->r = NULL;
}

static void b2b(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen, const char *label,
		const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, key, keylen, outlen);
	crypto_generichash_update(&st, (const uint8_t *)label, strlen(label) + 1);
	crypto_generichash_update(&st, a, alen);
	crypto_generichash_update(&st, b, blen);
	crypto_generichash_final(&st, out, outlen);
}

/* msg1's MAC as docs/CHANNEL.md defines it, for a dialer that knows fp. */
static void msg1_remac(uint8_t *m1, const struct fingerprint *fp)
{
	uint8_t k[32];

	b2b(k, 32, NULL, 0, "tandem/v1/chan/msg1-mac-key", fp->b, FP_BYTES, NULL, 0);
	crypto_generichash(m1 + 40, 16, m1, 40, k, 32);
}

/* Hands msg to hs the way a daemon would: header first, then the whole. */
static int deliver(struct hs *hs, const uint8_t *msg, size_t len)
{
	int r;

	r = hs_header_parse(hs, msg, len < HS_HEADER_LEN ? len : HS_HEADER_LEN);
	if (r < 0)
		return r;
	return hs_read(hs, msg, len);
}

/*
 * A full handshake between initiator ia (pinning rfp) and responder ra
 * (pinning ifp). When tmsg is 1..3, byte tbyte of that message is xored
 * with tmask on the wire.
 */
static int run_hs(struct run *x, const struct identity *ia, const struct fingerprint *rfp,
		  const struct identity *ra, const struct fingerprint *ifp, int tmsg, int tbyte,
		  uint8_t tmask)
{
	uint8_t wire[HS_MSG_MAX];

	memset(x, 0, sizeof(*x));
	if (hs_new(HS_INITIATOR, ia, rfp, &x->i) < 0 || hs_new(HS_RESPONDER, ra, ifp, &x->r) < 0)
		return -ENOMEM;

	x->n1 = hs_write(x->i, x->m1, sizeof(x->m1));
	if (x->n1 < 0)
		return x->err_i = x->n1;
	memcpy(wire, x->m1, (size_t)x->n1);
	if (tmsg == 1)
		wire[tbyte] ^= tmask;
	x->err_r = deliver(x->r, wire, (size_t)x->n1);
	if (x->err_r < 0)
		return x->err_r;

	x->n2 = hs_write(x->r, x->m2, sizeof(x->m2));
	if (x->n2 < 0)
		return x->err_r = x->n2;
	memcpy(wire, x->m2, (size_t)x->n2);
	if (tmsg == 2)
		wire[tbyte] ^= tmask;
	x->err_i = deliver(x->i, wire, (size_t)x->n2);
	if (x->err_i < 0)
		return x->err_i;

	x->n3 = hs_write(x->i, x->m3, sizeof(x->m3));
	if (x->n3 < 0)
		return x->err_i = x->n3;
	memcpy(wire, x->m3, (size_t)x->n3);
	if (tmsg == 3)
		wire[tbyte] ^= tmask;
	x->err_r = deliver(x->r, wire, (size_t)x->n3);
	return x->err_r;
}

static int run_ok(struct run *x)
{
	return run_hs(x, alice, &bob->fp, bob, &alice->fp, 0, 0, 0);
}

TEST(happy_path)
{
	struct hs_keys ki, kr, ki2, kr2;
	struct run x;

	REQUIRE(run_ok(&x) == 0);
	CHECK_INT_EQ(x.n1, HS_MSG1_LEN);
	CHECK_INT_EQ(x.n2, HS_MSG2_LEN);
	CHECK_INT_EQ(x.n3, HS_MSG3_LEN);
	CHECK(memcmp(x.m1, hs_magic, HS_MAGIC_LEN) == 0);
	CHECK(memcmp(x.m2, hs_magic, HS_MAGIC_LEN) == 0);
	CHECK(memcmp(x.m3, hs_magic, HS_MAGIC_LEN) == 0);
	CHECK(hs_done(x.i) && hs_done(x.r));
	CHECK_INT_EQ(hs_want(x.i), HS_WANT_DONE);
	CHECK_INT_EQ(hs_want(x.r), HS_WANT_DONE);
	CHECK_STR_EQ(hs_reason(x.i), "");
	REQUIRE(hs_split(x.i, &ki) == 0);
	REQUIRE(hs_split(x.r, &kr) == 0);
	CHECK_INT_EQ(hs_want(x.i), HS_WANT_NOTHING);
	/* crosswise equal, per direction different */
	CHECK(sodium_memcmp(ki.tx, kr.rx, HS_KEY_LEN) == 0);
	CHECK(sodium_memcmp(ki.rx, kr.tx, HS_KEY_LEN) == 0);
	CHECK(sodium_memcmp(ki.tx, ki.rx, HS_KEY_LEN) != 0);
	CHECK(sodium_memcmp(ki.session_id, kr.session_id, HS_SESSION_ID_LEN) == 0);
	CHECK(sodium_memcmp(ki.session_id, ki.tx, HS_KEY_LEN) != 0);
	CHECK(!sodium_is_zero(ki.tx, HS_KEY_LEN) && !sodium_is_zero(ki.rx, HS_KEY_LEN));
	/* each learned the other's identity */
	CHECK(memcmp(ki.peer_pk, bob->pk, IDENTITY_PK_LEN) == 0);
	CHECK(memcmp(kr.peer_pk, alice->pk, IDENTITY_PK_LEN) == 0);
	CHECK(fp_equal(&ki.peer_fp, &bob->fp));
	CHECK(fp_equal(&kr.peer_fp, &alice->fp));
	/* handshake secrets are gone after the split */
	CHECK(sodium_is_zero(x.i->hs_secret, sizeof(x.i->hs_secret)));
	CHECK(sodium_is_zero(x.r->e_sk, sizeof(x.r->e_sk)));
	CHECK(sodium_is_zero(x.r->dh, sizeof(x.r->dh)));
	/* no identity key in the clear on the wire */
	CHECK(memmem(x.m2, (size_t)x.n2, bob->pk, 8) == NULL);
	CHECK(memmem(x.m3, (size_t)x.n3, alice->pk, 8) == NULL);
	run_free(&x);

	/* a second connection gets fresh keys (ephemeral DH) */
	REQUIRE(run_ok(&x) == 0);
	REQUIRE(hs_split(x.i, &ki2) == 0);
	REQUIRE(hs_split(x.r, &kr2) == 0);
	CHECK(sodium_memcmp(ki.tx, ki2.tx, HS_KEY_LEN) != 0);
	CHECK(sodium_memcmp(kr.tx, kr2.tx, HS_KEY_LEN) != 0);
	CHECK(sodium_memcmp(ki.session_id, ki2.session_id, HS_SESSION_ID_LEN) != 0);
	run_free(&x);
	sodium_memzero(&ki, sizeof(ki));
	sodium_memzero(&kr, sizeof(kr));
}

TEST(roles_swapped)
{
	struct hs_keys ki, kr;
	struct run x;

	/* bob dials alice this time */
	REQUIRE(run_hs(&x, bob, &alice->fp, alice, &bob->fp, 0, 0, 0) == 0);
	REQUIRE(hs_split(x.i, &ki) == 0);
	REQUIRE(hs_split(x.r, &kr) == 0);
	CHECK(sodium_memcmp(ki.tx, kr.rx, HS_KEY_LEN) == 0);
	CHECK(sodium_memcmp(ki.rx, kr.tx, HS_KEY_LEN) == 0);
	CHECK(memcmp(ki.peer_pk, alice->pk, IDENTITY_PK_LEN) == 0);
	CHECK(memcmp(kr.peer_pk, bob->pk, IDENTITY_PK_LEN) == 0);
	run_free(&x);
}

/*
 * Recomputes the whole key schedule from docs/CHANNEL.md with libsodium
 * alone, from the wire bytes and the ephemeral secrets, and checks that
 * the implementation agrees. Ephemeral keys are pinned so the run is a
 * fixed test vector.
 */
static void pin_ephemeral(struct hs *hs, uint8_t fill)
{
	memset(hs->e_sk, fill, 32);
	crypto_scalarmult_base(hs->e_pk, hs->e_sk);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

TEST(key_schedule_matches_spec)
{
	uint8_t t[HS_MSG1_LEN + HS_MSG2_LEN + HS_MSG3_LEN], ei_sk[32], dh[32], th2[64], th3[64],
		thf[64], hs_secret[32], k2[32], k3[32], master[32], i2r[32], r2i[32], sid[32],
		plain[96], signed_data[200], nonce[12] = {0};
	struct hs_keys ki, kr;
	struct run x;
	size_t n;

	memset(&x, 0, sizeof(x));
	REQUIRE(hs_new(HS_INITIATOR, alice, &bob->fp, &x.i) == 0);
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &x.r) == 0);
	pin_ephemeral(x.i, 0x11);
	pin_ephemeral(x.r, 0x22);
	memset(ei_sk, 0x11, 32);
	x.n1 = hs_write(x.i, x.m1, sizeof(x.m1));
	REQUIRE(deliver(x.r, x.m1, (size_t)x.n1) == 0);
	x.n2 = hs_write(x.r, x.m2, sizeof(x.m2));
	REQUIRE(deliver(x.i, x.m2, (size_t)x.n2) == 0);
	x.n3 = hs_write(x.i, x.m3, sizeof(x.m3));
	REQUIRE(deliver(x.r, x.m3, (size_t)x.n3) == 0);
	REQUIRE(hs_split(x.i, &ki) == 0);
	REQUIRE(hs_split(x.r, &kr) == 0);

	/* layout */
	const uint8_t h1[8] = {0x89, 'T', 'D', 'M', 1, 1, 0, 48};
	const uint8_t h2[8] = {0x89, 'T', 'D', 'M', 1, 2, 0, 144};
	const uint8_t h3[8] = {0x89, 'T', 'D', 'M', 1, 3, 0, 112};
	CHECK(memcmp(x.m1, h1, 8) == 0);
	CHECK(memcmp(x.m2, h2, 8) == 0);
	CHECK(memcmp(x.m3, h3, 8) == 0);
	memcpy(t, x.m1, 56);
	memcpy(t + 56, x.m2, 152);
	memcpy(t + 208, x.m3, 120);

	/* msg1's MAC, keyed from the responder's fingerprint */
	uint8_t mk[32], mac[16];
	b2b(mk, 32, NULL, 0, "tandem/v1/chan/msg1-mac-key", bob->fp.b, 20, NULL, 0);
	crypto_generichash(mac, 16, x.m1, 40, mk, 32);
	CHECK(memcmp(mac, x.m1 + 40, 16) == 0);

	/* dh, th2, handshake secret, k2 */
	REQUIRE(crypto_scalarmult(dh, ei_sk, x.m2 + 8) == 0);
	b2b(th2, 64, NULL, 0, "tandem/v1/chan/transcript", t, 96, NULL, 0);
	b2b(hs_secret, 32, NULL, 0, "tandem/v1/chan/handshake-secret", dh, 32, th2, 64);
	b2b(k2, 32, hs_secret, 32, "tandem/v1/chan/key-msg2", NULL, 0, NULL, 0);
	REQUIRE(crypto_aead_chacha20poly1305_ietf_decrypt_detached(
			plain, NULL, x.m2 + 40, 96, x.m2 + 136, th2, 64, nonce, k2) == 0);
	CHECK(memcmp(plain, bob->pk, 32) == 0);
	n = 0;
	memcpy(signed_data, "tandem/v1/chan/sig-responder", 29); /* with its NUL */
	n += 29;
	memcpy(signed_data + n, th2, 64);
	n += 64;
	memcpy(signed_data + n, bob->pk, 32);
	n += 32;
	CHECK(crypto_sign_verify_detached(plain + 32, signed_data, n, bob->pk) == 0);

	/* th3, k3, msg3 */
	b2b(th3, 64, NULL, 0, "tandem/v1/chan/transcript", t, 216, NULL, 0);
	b2b(k3, 32, hs_secret, 32, "tandem/v1/chan/key-msg3", NULL, 0, NULL, 0);
	REQUIRE(crypto_aead_chacha20poly1305_ietf_decrypt_detached(
			plain, NULL, x.m3 + 8, 96, x.m3 + 104, th3, 64, nonce, k3) == 0);
	CHECK(memcmp(plain, alice->pk, 32) == 0);
	n = 0;
	memcpy(signed_data, "tandem/v1/chan/sig-initiator", 29);
	n += 29;
	memcpy(signed_data + n, th3, 64);
	n += 64;
	memcpy(signed_data + n, alice->pk, 32);
	n += 32;
	memcpy(signed_data + n, bob->pk, 32);
	n += 32;
	CHECK(crypto_sign_verify_detached(plain + 32, signed_data, n, alice->pk) == 0);

	/* traffic keys */
	b2b(thf, 64, NULL, 0, "tandem/v1/chan/transcript", t, 328, NULL, 0);
	b2b(master, 32, hs_secret, 32, "tandem/v1/chan/master", thf, 64, NULL, 0);
	b2b(i2r, 32, master, 32, "tandem/v1/chan/traffic-i2r", NULL, 0, NULL, 0);
	b2b(r2i, 32, master, 32, "tandem/v1/chan/traffic-r2i", NULL, 0, NULL, 0);
	b2b(sid, 32, master, 32, "tandem/v1/chan/session-id", NULL, 0, NULL, 0);
	CHECK(memcmp(ki.tx, i2r, 32) == 0);
	CHECK(memcmp(kr.rx, i2r, 32) == 0);
	CHECK(memcmp(ki.rx, r2i, 32) == 0);
	CHECK(memcmp(kr.tx, r2i, 32) == 0);
	CHECK(memcmp(ki.session_id, sid, 32) == 0);

	/* the test vector printed in docs/CHANNEL.md */
	char h[65];
	hex(i2r, 32, h);
	printf("# test vector: traffic-i2r %s\n", h);
	CHECK_STR_EQ(h, TV_I2R);
	hex(r2i, 32, h);
	printf("# test vector: traffic-r2i %s\n", h);
	CHECK_STR_EQ(h, TV_R2I);
	run_free(&x);
}

TEST(impostor_responder_rejected)
{
	char want[FP_TEXT_LEN + 1], have[FP_TEXT_LEN + 1];
	struct hs_keys k;
	struct run x;

	/* alice dials bob, mallory answers: she skips the msg1 MAC check (an
	 * identity with her keys and bob's fingerprint does that) */
	struct identity fake = *mallory;
	fake.fp = bob->fp;
	CHECK_INT_EQ(run_hs(&x, alice, &bob->fp, &fake, &alice->fp, 0, 0, 0), -EKEYREJECTED);
	CHECK_INT_EQ(x.err_i, -EKEYREJECTED);
	fp_format(&bob->fp, want);
	fp_format(&mallory->fp, have);
	CHECK(strstr(hs_reason(x.i), "peer presented key with fingerprint ") != NULL);
	CHECK(strstr(hs_reason(x.i), want) != NULL);
	CHECK(strstr(hs_reason(x.i), have) != NULL);
	printf("# %s\n", hs_reason(x.i));
	/* final: nothing more, no keys */
	CHECK_INT_EQ(hs_want(x.i), HS_WANT_NOTHING);
	CHECK_INT_EQ(hs_write(x.i, x.m3, sizeof(x.m3)), -EKEYREJECTED);
	CHECK_INT_EQ(hs_split(x.i, &k), -EKEYREJECTED);
	CHECK(sodium_is_zero(x.i->hs_secret, sizeof(x.i->hs_secret)));
	run_free(&x);
}

TEST(impostor_initiator_rejected)
{
	char want[FP_TEXT_LEN + 1], have[FP_TEXT_LEN + 1];
	struct run x;

	/* mallory dials bob, who expects alice */
	CHECK_INT_EQ(run_hs(&x, mallory, &bob->fp, bob, &alice->fp, 0, 0, 0), -EKEYREJECTED);
	CHECK_INT_EQ(x.err_i, 0); /* mallory got bob's genuine msg2 */
	CHECK_INT_EQ(x.err_r, -EKEYREJECTED);
	fp_format(&alice->fp, want);
	fp_format(&mallory->fp, have);
	CHECK(strstr(hs_reason(x.r), want) != NULL);
	CHECK(strstr(hs_reason(x.r), have) != NULL);
	CHECK(!hs_done(x.r));
	run_free(&x);

	/* alice dials bob, but bob pinned someone else */
	CHECK_INT_EQ(run_hs(&x, alice, &bob->fp, bob, &mallory->fp, 0, 0, 0), -EKEYREJECTED);
	CHECK_INT_EQ(x.err_r, -EKEYREJECTED);
	run_free(&x);

	/* alice dials bob with another fingerprint pinned: bob, an honest
	 * responder, refuses msg1 (its MAC is not for him) without a word */
	CHECK_INT_EQ(run_hs(&x, alice, &mallory->fp, bob, &alice->fp, 0, 0, 0), -EBADMSG);
	CHECK_INT_EQ(x.err_r, -EBADMSG);
	CHECK(strstr(hs_reason(x.r), "not made for this peer") != NULL);
	printf("# %s\n", hs_reason(x.r));
	CHECK(!hs_done(x.r));
	run_free(&x);
	/* same, bob skipping the MAC check: alice rejects bob's key */
	struct identity fake = *bob;
	fake.fp = mallory->fp;
	CHECK_INT_EQ(run_hs(&x, alice, &mallory->fp, &fake, &alice->fp, 0, 0, 0), -EKEYREJECTED);
	CHECK_INT_EQ(x.err_i, -EKEYREJECTED);
	run_free(&x);
}

TEST(tamper_every_byte)
{
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	const int lens[4] = {0, HS_MSG1_LEN, HS_MSG2_LEN, HS_MSG3_LEN};
	int tries = 0, rejected = 0, unexpected = 0;
	struct run x;

	for (int m = 1; m <= 3; m++) {
		for (int b = 0; b < lens[m]; b++) {
			for (size_t k = 0; k < sizeof(masks); k++) {
				int r = run_hs(&x, alice, &bob->fp, bob, &alice->fp, m, b,
					       masks[k]);
				tries++;
				/* the version byte gets its own error, everything else EBADMSG */
				if (r == -EBADMSG || (b == 4 && r == -EPROTONOSUPPORT))
					rejected++;
				/* never may both sides end up with keys */
				if (hs_done(x.i) && hs_done(x.r))
					unexpected++;
				/* a flipped msg1 is caught by the responder or by the
				 * initiator at msg2, msg2 by the initiator, msg3 by the
				 * responder */
				if (m == 2 && x.err_i >= 0)
					unexpected++;
				if (m == 3 && x.err_r >= 0)
					unexpected++;
				run_free(&x);
			}
		}
	}
	CHECK_INT_EQ(rejected, tries);
	CHECK_INT_EQ(unexpected, 0);
}

TEST(truncated_and_oversized)
{
	uint8_t buf[HS_MSG_MAX + 16];
	struct run x;
	int bad = 0, total = 0;

	for (int m = 1; m <= 3; m++) {
		REQUIRE(run_ok(&x) == 0);
		const uint8_t *msg = m == 1 ? x.m1 : m == 2 ? x.m2 : x.m3;
		int len = m == 1 ? x.n1 : m == 2 ? x.n2 : x.n3;
		memcpy(buf, msg, (size_t)len);
		run_free(&x);
		for (int cut = 0; cut <= len + 1; cut++) {
			struct hs *i = NULL, *r = NULL;
			uint8_t tmp[HS_MSG_MAX];
			int n = 0, e;

			if (cut == len)
				continue;
			buf[len] = 0; /* the extra byte of len + 1 */
			REQUIRE(hs_new(HS_INITIATOR, alice, &bob->fp, &i) == 0);
			REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &r) == 0);
			/* bring the receiver to the state that expects message m */
			if (m >= 2) {
				n = hs_write(i, tmp, sizeof(tmp));
				REQUIRE(deliver(r, tmp, (size_t)n) == 0);
				n = hs_write(r, tmp, sizeof(tmp));
			}
			if (m == 3) {
				REQUIRE(deliver(i, tmp, (size_t)n) == 0);
				n = hs_write(i, tmp, sizeof(tmp));
			}
			(void)n;
			e = hs_read(m == 2 ? i : r, buf, (size_t)cut);
			total++;
			bad += e == -EBADMSG;
			hs_free(i);
			hs_free(r);
		}
	}
	CHECK_INT_EQ(bad, total);

	/* a header announcing a longer (or the longest) body is refused at once */
	struct hs *r;
	REQUIRE(run_ok(&x) == 0);
	memcpy(buf, x.m1, HS_MSG1_LEN);
	run_free(&x);
	buf[6] = 0xff;
	buf[7] = 0xff;
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &r) == 0);
	CHECK_INT_EQ(hs_header_parse(r, buf, HS_HEADER_LEN), -EBADMSG);
	printf("# %s\n", hs_reason(r));
	hs_free(r);
	buf[6] = 0;
	buf[7] = 33;
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &r) == 0);
	CHECK_INT_EQ(hs_header_parse(r, buf, HS_HEADER_LEN), -EBADMSG);
	hs_free(r);
}

TEST(out_of_order_and_repeated)
{
	uint8_t tmp[HS_MSG_MAX];
	struct hs_keys k;
	struct run a, x;
	struct hs *h;

	REQUIRE(run_ok(&a) == 0); /* messages of another session */

	/* responder gets msg3 or msg2 first */
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &h) == 0);
	CHECK_INT_EQ(deliver(h, a.m3, (size_t)a.n3), -EBADMSG);
	CHECK_INT_EQ(hs_want(h), HS_WANT_NOTHING);
	hs_free(h);
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &h) == 0);
	CHECK_INT_EQ(deliver(h, a.m2, (size_t)a.n2), -EBADMSG);
	hs_free(h);

	/* initiator reads before writing, or gets msg1/msg3 for msg2 */
	REQUIRE(hs_new(HS_INITIATOR, alice, &bob->fp, &h) == 0);
	CHECK_INT_EQ(hs_read(h, a.m2, (size_t)a.n2), -EINVAL);
	CHECK_INT_EQ(hs_write(h, tmp, sizeof(tmp)), -EINVAL); /* failed for good */
	hs_free(h);
	REQUIRE(hs_new(HS_INITIATOR, alice, &bob->fp, &h) == 0);
	REQUIRE(hs_write(h, tmp, sizeof(tmp)) == HS_MSG1_LEN);
	CHECK_INT_EQ(deliver(h, tmp, HS_MSG1_LEN), -EBADMSG); /* its own msg1 reflected */
	hs_free(h);
	REQUIRE(hs_new(HS_INITIATOR, alice, &bob->fp, &h) == 0);
	REQUIRE(hs_write(h, tmp, sizeof(tmp)) == HS_MSG1_LEN);
	CHECK_INT_EQ(deliver(h, a.m3, (size_t)a.n3), -EBADMSG);
	hs_free(h);

	/* responder writes before reading */
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &h) == 0);
	CHECK_INT_EQ(hs_write(h, tmp, sizeof(tmp)), -EINVAL);
	hs_free(h);

	/* msg1 repeated: while the responder should write, and after it wrote */
	memset(&x, 0, sizeof(x));
	REQUIRE(hs_new(HS_INITIATOR, alice, &bob->fp, &x.i) == 0);
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &x.r) == 0);
	x.n1 = hs_write(x.i, x.m1, sizeof(x.m1));
	REQUIRE(deliver(x.r, x.m1, (size_t)x.n1) == 0);
	CHECK(deliver(x.r, x.m1, (size_t)x.n1) < 0);
	run_free(&x);
	memset(&x, 0, sizeof(x));
	REQUIRE(hs_new(HS_INITIATOR, alice, &bob->fp, &x.i) == 0);
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &x.r) == 0);
	x.n1 = hs_write(x.i, x.m1, sizeof(x.m1));
	REQUIRE(deliver(x.r, x.m1, (size_t)x.n1) == 0);
	x.n2 = hs_write(x.r, x.m2, sizeof(x.m2));
	CHECK_INT_EQ(deliver(x.r, x.m1, (size_t)x.n1), -EBADMSG);
	/* msg2 repeated to the initiator */
	REQUIRE(deliver(x.i, x.m2, (size_t)x.n2) == 0);
	CHECK(deliver(x.i, x.m2, (size_t)x.n2) < 0);
	run_free(&x);

	/* anything after completion */
	REQUIRE(run_ok(&x) == 0);
	CHECK(hs_split(x.i, &k) == 0);
	CHECK_INT_EQ(hs_split(x.i, &k), -EINVAL);
	CHECK(deliver(x.r, x.m3, (size_t)x.n3) < 0);
	CHECK_INT_EQ(hs_want(x.r), HS_WANT_NOTHING);
	CHECK(deliver(x.i, x.m2, (size_t)x.n2) < 0);
	CHECK(hs_write(x.i, tmp, sizeof(tmp)) < 0);
	run_free(&x);

	/* split before completion */
	REQUIRE(hs_new(HS_INITIATOR, alice, &bob->fp, &h) == 0);
	CHECK_INT_EQ(hs_split(h, &k), -EINVAL);
	hs_free(h);
	run_free(&a);
}

TEST(replay_from_another_session)
{
	uint8_t m2[HS_MSG_MAX];
	struct run a;
	struct hs *r, *i;
	int n;

	REQUIRE(run_ok(&a) == 0);
	/* a recorded msg1 starts a new session on a fresh responder... */
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &r) == 0);
	CHECK_INT_EQ(deliver(r, a.m1, (size_t)a.n1), 0);
	n = hs_write(r, m2, sizeof(m2));
	CHECK_INT_EQ(n, HS_MSG2_LEN);
	CHECK(memcmp(m2, a.m2, (size_t)n) != 0);
	/* ...but the recorded msg3 does not finish it */
	CHECK_INT_EQ(deliver(r, a.m3, (size_t)a.n3), -EBADMSG);
	CHECK(!hs_done(r));
	hs_free(r);
	/* a recorded msg2 does not fool a fresh initiator */
	REQUIRE(hs_new(HS_INITIATOR, alice, &bob->fp, &i) == 0);
	REQUIRE(hs_write(i, m2, sizeof(m2)) == HS_MSG1_LEN);
	CHECK_INT_EQ(deliver(i, a.m2, (size_t)a.n2), -EBADMSG);
	hs_free(i);
	run_free(&a);
}

TEST(wrong_version)
{
	uint8_t buf[HS_MSG_MAX];
	struct run a, x;
	struct hs *r;

	REQUIRE(run_ok(&a) == 0);
	memcpy(buf, a.m1, HS_MSG1_LEN);
	buf[4] = 2;
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &r) == 0);
	CHECK_INT_EQ(hs_header_parse(r, buf, 5), -EPROTONOSUPPORT);
	CHECK(strstr(hs_reason(r), "version 2") != NULL);
	printf("# %s\n", hs_reason(r));
	CHECK_INT_EQ(hs_read(r, buf, HS_MSG1_LEN), -EPROTONOSUPPORT);
	hs_free(r);
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &r) == 0);
	CHECK_INT_EQ(hs_read(r, buf, HS_MSG1_LEN), -EPROTONOSUPPORT);
	hs_free(r);
	/* a responder answering in another version */
	CHECK_INT_EQ(run_hs(&x, alice, &bob->fp, bob, &alice->fp, 2, 4, 0x01), -EPROTONOSUPPORT);
	CHECK_INT_EQ(x.err_i, -EPROTONOSUPPORT);
	run_free(&x);
	run_free(&a);
}

TEST(junk_rejected_on_first_byte)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	static const uint8_t tls[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
	static const char ssh[] = "SSH-2.0-OpenSSH_9.2\r\n";
	struct hs *r;

	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &r) == 0);
	CHECK_INT_EQ(hs_header_parse(r, NULL, 0), 0);
	CHECK_INT_EQ(hs_header_parse(r, (const uint8_t *)http, 1), -EBADMSG);
	CHECK(strstr(hs_reason(r), "does not speak the tandem channel protocol") != NULL);
	CHECK(strstr(hs_reason(r), "47") != NULL);
	printf("# %s\n", hs_reason(r));
	hs_free(r);
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &r) == 0);
	CHECK_INT_EQ(hs_header_parse(r, tls, 1), -EBADMSG);
	hs_free(r);
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &r) == 0);
	CHECK_INT_EQ(hs_read(r, (const uint8_t *)ssh, HS_MSG1_LEN), -EBADMSG);
	hs_free(r);
	/* the magic's first byte right, the second wrong */
	const uint8_t almost[] = {0x89, 'P', 'N', 'G'};
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &r) == 0);
	CHECK_INT_EQ(hs_header_parse(r, almost, 1), 0);
	CHECK_INT_EQ(hs_header_parse(r, almost, 2), -EBADMSG);
	hs_free(r);
}

TEST(header_parse_incremental)
{
	uint8_t m[HS_MSG_MAX];
	struct hs *i, *r;
	int n;

	REQUIRE(hs_new(HS_INITIATOR, alice, &bob->fp, &i) == 0);
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &r) == 0);
	n = hs_write(i, m, sizeof(m));
	for (int k = 0; k < HS_HEADER_LEN; k++)
		CHECK_INT_EQ(hs_header_parse(r, m, (size_t)k), 0);
	CHECK_INT_EQ(hs_header_parse(r, m, HS_HEADER_LEN), HS_MSG1_LEN);
	CHECK_INT_EQ(hs_header_parse(r, m, (size_t)n), HS_MSG1_LEN);
	CHECK_INT_EQ(hs_read(r, m, (size_t)n), 0);
	CHECK_INT_EQ(hs_want(r), HS_WANT_WRITE);
	/* not waiting for a message now */
	CHECK_INT_EQ(hs_header_parse(r, m, HS_HEADER_LEN), -EINVAL);
	hs_free(i);
	hs_free(r);
}

TEST(degenerate_ephemeral_rejected)
{
	/* all zero, and the point of order 1 (u = 1): DH output all zero */
	static const uint8_t u1[32] = {1};
	uint8_t m[HS_MSG_MAX];
	struct run a;
	struct hs *r, *i;

	REQUIRE(run_ok(&a) == 0);
	memcpy(m, a.m1, HS_MSG1_LEN);
	memset(m + HS_HEADER_LEN, 0, 32);
	msg1_remac(m, &bob->fp); /* made by someone who knows bob's fingerprint */
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &r) == 0);
	CHECK_INT_EQ(deliver(r, m, HS_MSG1_LEN), -EBADMSG);
	CHECK(strstr(hs_reason(r), "degenerate") != NULL);
	hs_free(r);
	memcpy(m + HS_HEADER_LEN, u1, 32);
	msg1_remac(m, &bob->fp);
	REQUIRE(hs_new(HS_RESPONDER, bob, &alice->fp, &r) == 0);
	CHECK_INT_EQ(deliver(r, m, HS_MSG1_LEN), -EBADMSG);
	hs_free(r);
	/* in msg2 */
	memcpy(m, a.m2, HS_MSG2_LEN);
	memset(m + HS_HEADER_LEN, 0, 32);
	REQUIRE(hs_new(HS_INITIATOR, alice, &bob->fp, &i) == 0);
	uint8_t tmp[HS_MSG_MAX];
	REQUIRE(hs_write(i, tmp, sizeof(tmp)) > 0);
	CHECK_INT_EQ(deliver(i, m, HS_MSG2_LEN), -EBADMSG);
	CHECK(strstr(hs_reason(i), "degenerate") != NULL);
	hs_free(i);
	run_free(&a);
}

TEST(small_buffer_and_bad_args)
{
	uint8_t m[HS_MSG_MAX];
	struct hs *i;

	CHECK_INT_EQ(hs_new(HS_INITIATOR, NULL, &bob->fp, &i), -EINVAL);
	CHECK_INT_EQ(hs_new((enum hs_role)7, alice, &bob->fp, &i), -EINVAL);
	REQUIRE(hs_new(HS_INITIATOR, alice, &bob->fp, &i) == 0);
	CHECK_INT_EQ(hs_write(i, m, HS_MSG1_LEN - 1), -EMSGSIZE);
	CHECK_INT_EQ(hs_write(i, NULL, 0), -EMSGSIZE);
	CHECK_INT_EQ(hs_want(i), HS_WANT_WRITE); /* not fatal */
	CHECK_INT_EQ(hs_write(i, m, HS_MSG1_LEN), HS_MSG1_LEN);
	CHECK_INT_EQ(hs_read(i, NULL, 0), -EBADMSG);
	hs_free(i);
	hs_free(NULL);
}

int main(void)
{
	if (sodium_init() < 0)
		return 99;
	uint8_t seed[IDENTITY_SEED_LEN];
	memset(seed, 0xa1, sizeof(seed));
	if (identity_new(seed, &alice) < 0)
		return 99;
	memset(seed, 0xb0, sizeof(seed));
	if (identity_new(seed, &bob) < 0)
		return 99;
	memset(seed, 0x3e, sizeof(seed));
	if (identity_new(seed, &mallory) < 0)
		return 99;
	RUN(happy_path);
	RUN(roles_swapped);
	RUN(key_schedule_matches_spec);
	RUN(impostor_responder_rejected);
	RUN(impostor_initiator_rejected);
	RUN(tamper_every_byte);
	RUN(truncated_and_oversized);
	RUN(out_of_order_and_repeated);
	RUN(replay_from_another_session);
	RUN(wrong_version);
	RUN(junk_rejected_on_first_byte);
	RUN(header_parse_incremental);
	RUN(degenerate_ephemeral_rejected);
	RUN(small_buffer_and_bad_args);
	identity_free(alice);
	identity_free(bob);
	identity_free(mallory);
	return tap_done();
}
