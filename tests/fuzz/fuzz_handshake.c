/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzzes the handshake state machine. Identities come from fixed seeds
 * (alice dials bob, each pins the other); ephemeral keys stay random.
 * Byte 0 picks what the rest of the input is:
 *
 *   0  msg1 for a fresh responder, as is and (when long enough) with a
 *      correct MAC, as someone who knows the responder's fingerprint makes
 *   1  msg2 for an initiator that sent a real msg1
 *   2  xored onto the plaintext (pk || sig) of a real msg2, resealed with
 *      the real handshake key: reaches the fingerprint and signature checks
 *   3  msg3 for a responder that got a real msg1 and sent msg2
 *   4  like 2, for msg3
 *   5  a program driving both sides: write, deliver, reflect, flip bytes,
 *      truncate, in any order
 *
 * Oracles: an unmodified exchange must succeed, and whenever both sides
 * finish, their keys must agree crosswise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chan/handshake.h"
#include "chan/hs_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct identity *alice, *bob;

static void check(int ok)
{
	if (!ok)
		abort();
}

static int deliver(struct hs *hs, const uint8_t *msg, size_t len)
{
	int r = 0;

	/* the header as it trickles in, like a daemon reading a socket */
	for (size_t k = 0; k <= len && k <= HS_HEADER_LEN && r == 0; k++)
		r = hs_header_parse(hs, msg, k);
	if (r < 0) {
		check(hs_want(hs) == HS_WANT_NOTHING);
		check(hs_reason(hs)[0] != '\0');
		return r;
	}
	r = hs_read(hs, msg, len);
	if (r < 0)
		check(hs_want(hs) == HS_WANT_NOTHING && hs_reason(hs)[0] != '\0');
	return r;
}

static void keys_agree(struct hs *i, struct hs *r)
{
	struct hs_keys ki, kr;

	check(hs_split(i, &ki) == 0 && hs_split(r, &kr) == 0);
	check(memcmp(ki.tx, kr.rx, HS_KEY_LEN) == 0 && memcmp(ki.rx, kr.tx, HS_KEY_LEN) == 0);
	check(memcmp(ki.tx, ki.rx, HS_KEY_LEN) != 0);
	check(memcmp(ki.peer_pk, bob->pk, 32) == 0 && memcmp(kr.peer_pk, alice->pk, 32) == 0);
}

static void b2b(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen, const char *label,
		const uint8_t *a, size_t alen)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, key, keylen, outlen);
	crypto_generichash_update(&st, (const uint8_t *)label, strlen(label) + 1);
	crypto_generichash_update(&st, a, alen);
	crypto_generichash_final(&st, out, outlen);
}

/* Puts the MAC for bob's fingerprint into a msg1 (docs/CHANNEL.md). */
static void msg1_remac(uint8_t *m)
{
	uint8_t k[32];

	b2b(k, sizeof(k), NULL, 0, "tandem/v1/chan/msg1-mac-key", bob->fp.b, FP_BYTES);
	crypto_generichash(m + HS_MSG1_LEN - HS_MAC_LEN, HS_MAC_LEN, m, HS_MSG1_LEN - HS_MAC_LEN, k,
			   sizeof(k));
}

/*
 * Decrypts the 112 bytes at c (pk || sig || tag) under the handshake key
 * named label with AD = transcript hash of t[0..tlen), xors in the fuzz
 * bytes, and seals it again in place. Returns whether anything changed.
 */
static int reseal(const struct hs *r, const char *label, const uint8_t *t, size_t tlen, uint8_t *c,
		  const uint8_t *in, size_t n)
{
	uint8_t th[64], k[32], plain[96], nonce[12] = {0};
	int changed = 0;

	b2b(th, sizeof(th), NULL, 0, "tandem/v1/chan/transcript", t, tlen);
	b2b(k, sizeof(k), r->hs_secret, 32, label, NULL, 0);
	check(crypto_aead_chacha20poly1305_ietf_decrypt_detached(plain, NULL, c, 96, c + 96, th, 64,
								 nonce, k) == 0);
	for (size_t i = 0; i < n && i < sizeof(plain); i++) {
		plain[i] ^= in[i];
		changed |= in[i] != 0;
	}
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(c, c + 96, NULL, plain, 96, th, 64, NULL,
							   nonce, k);
	return changed;
}

static void program(const uint8_t *in, size_t n, struct hs *i, struct hs *r)
{
	uint8_t bi[HS_MSG_MAX], br[HS_MSG_MAX];
	size_t li = 0, lr = 0;

	for (size_t pc = 0; pc < n; pc++) {
		uint8_t op = in[pc] & 7;
		uint8_t a = pc + 1 < n ? in[pc + 1] : 0, b = pc + 2 < n ? in[pc + 2] : 0;
		int w;

		switch (op) {
		case 0:
			w = hs_write(i, bi, sizeof(bi));
			li = w > 0 ? (size_t)w : 0;
			break;
		case 1:
			w = hs_write(r, br, sizeof(br));
			lr = w > 0 ? (size_t)w : 0;
			break;
		case 2:
			(void)deliver(r, bi, li);
			break;
		case 3:
			(void)deliver(i, br, lr);
			break;
		case 4:
		case 5:
			if (op == 4 && li)
				bi[a % li] ^= b;
			if (op == 5 && lr)
				br[a % lr] ^= b;
			pc += 2;
			break;
		case 6:
			if (li)
				li = a % li;
			pc++;
			break;
		case 7:
			if (in[pc] & 8)
				(void)deliver(i, bi, li);
			else
				(void)deliver(r, br, lr);
			break;
		}
	}
	if (hs_done(i) && hs_done(r))
		keys_agree(i, r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	uint8_t m1[HS_MSG_MAX], m2[HS_MSG_MAX], m3[HS_MSG_MAX], t[HS_TRANSCRIPT_MAX];
	struct hs *i = NULL, *r = NULL;
	const uint8_t *in;
	size_t n;
	int mode, changed;

	if (!ready) {
		uint8_t seed[IDENTITY_SEED_LEN];

		if (sodium_init() < 0)
			abort();
		memset(seed, 0xa1, sizeof(seed));
		if (identity_new(seed, &alice) < 0)
			abort();
		memset(seed, 0xb0, sizeof(seed));
		if (identity_new(seed, &bob) < 0)
			abort();
		ready = 1;
	}
	if (size < 1 || size > 4096)
		return 0;
	mode = data[0] % 6;
	in = data + 1;
	n = size - 1;
	if (hs_new(HS_INITIATOR, alice, &bob->fp, &i) < 0 ||
	    hs_new(HS_RESPONDER, bob, &alice->fp, &r) < 0)
		abort();

	switch (mode) {
	case 0:
		if (deliver(r, in, n) == 0)
			check(hs_write(r, m2, sizeof(m2)) == HS_MSG2_LEN);
		if (n < HS_MSG1_LEN || n > sizeof(t))
			break;
		hs_free(r);
		if (hs_new(HS_RESPONDER, bob, &alice->fp, &r) < 0)
			abort();
		memcpy(t, in, n);
		msg1_remac(t);
		if (deliver(r, t, n) == 0)
			check(hs_write(r, m2, sizeof(m2)) == HS_MSG2_LEN);
		break;
	case 1:
		check(hs_write(i, m1, sizeof(m1)) == HS_MSG1_LEN);
		if (deliver(i, in, n) == 0)
			check(hs_write(i, m3, sizeof(m3)) == HS_MSG3_LEN);
		break;
	case 2:
		check(hs_write(i, m1, sizeof(m1)) == HS_MSG1_LEN);
		check(deliver(r, m1, HS_MSG1_LEN) == 0);
		check(hs_write(r, m2, sizeof(m2)) == HS_MSG2_LEN);
		changed = reseal(r, "tandem/v1/chan/key-msg2", r->transcript, HS_MSG1_LEN + 40,
				 m2 + 40, in, n);
		if (deliver(i, m2, HS_MSG2_LEN) < 0) {
			check(changed);
			break;
		}
		check(hs_write(i, m3, sizeof(m3)) == HS_MSG3_LEN);
		if (deliver(r, m3, HS_MSG3_LEN) == 0)
			keys_agree(i, r);
		else
			check(changed);
		break;
	case 3:
	case 4:
		check(hs_write(i, m1, sizeof(m1)) == HS_MSG1_LEN);
		check(deliver(r, m1, HS_MSG1_LEN) == 0);
		check(hs_write(r, m2, sizeof(m2)) == HS_MSG2_LEN);
		if (mode == 3) {
			(void)deliver(r, in, n);
			break;
		}
		check(deliver(i, m2, HS_MSG2_LEN) == 0);
		check(hs_write(i, m3, sizeof(m3)) == HS_MSG3_LEN);
		memcpy(t, r->transcript, r->tlen);
		memcpy(t + r->tlen, m3, HS_HEADER_LEN);
		changed = reseal(r, "tandem/v1/chan/key-msg3", t, r->tlen + HS_HEADER_LEN,
				 m3 + HS_HEADER_LEN, in, n);
		if (deliver(r, m3, HS_MSG3_LEN) == 0)
			keys_agree(i, r);
		else
			check(changed);
		break;
	default:
		program(in, n, i, r);
		break;
	}
	hs_free(i);
	hs_free(r);
	return 0;
}
