/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Design note. The handshake is SIGMA-I ("sign and MAC") over one
 * ephemeral-ephemeral X25519 exchange, with the MAC played by an AEAD under
 * keys derived from the DH and the transcript:
 *
 *   - forward secrecy: the only DH is between fresh ephemeral keys, wiped
 *     as soon as the handshake secret exists;
 *   - authentication: each side signs the transcript hash with its Ed25519
 *     identity, under a role-specific label, and the verifier checks the
 *     key against the pinned fingerprint before anything else;
 *   - key confirmation: each identity+signature travels AEAD-encrypted
 *     under a key only the holder of the right DH secret has, with the
 *     transcript hash as associated data;
 *   - the transcript is every handshake byte on the wire (magic, version,
 *     types and lengths included), so nothing can be changed unnoticed and
 *     the traffic keys depend on all of it.
 *
 * msg1 ends with a MAC keyed from the responder's fingerprint (WireGuard's
 * mac1 idea): the responder checks it with one hash before doing any
 * public-key work, so junk costs nothing and only a dialer that knows the
 * fingerprint gets msg2, which reveals the responder's key. The
 * initiator's identity is revealed only to a responder that proved its
 * own identity first. Byte layout and key schedule:
 * docs/CHANNEL.md. Every error is final and wipes the secrets.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "base/cursor.h"
#include "chan/hs_internal.h"

#define LBL_MAC1_KEY "tandem/v1/chan/msg1-mac-key"
#define LBL_TRANSCRIPT "tandem/v1/chan/transcript"
#define LBL_HS_SECRET "tandem/v1/chan/handshake-secret"
#define LBL_KEY_MSG2 "tandem/v1/chan/key-msg2"
#define LBL_KEY_MSG3 "tandem/v1/chan/key-msg3"
#define LBL_SIG_R "tandem/v1/chan/sig-responder"
#define LBL_SIG_I "tandem/v1/chan/sig-initiator"
#define LBL_MASTER "tandem/v1/chan/master"
#define LBL_I2R "tandem/v1/chan/traffic-i2r"
#define LBL_R2I "tandem/v1/chan/traffic-r2i"
#define LBL_SESSION "tandem/v1/chan/session-id"

#define TYPE_MSG1 1
#define TYPE_MSG2 2
#define TYPE_MSG3 3

#define PLAIN_LEN (IDENTITY_PK_LEN + IDENTITY_SIG_LEN) /* pk || sig inside msg2, msg3 */
/* Longest signed input: label + transcript hash + two public keys. */
#define SIGNED_MAX (sizeof(LBL_SIG_I) + HS_HASH_LEN + 2 * IDENTITY_PK_LEN)

const uint8_t hs_magic[HS_MAGIC_LEN] = {0x89, 'T', 'D', 'M'};

static const uint8_t zero_nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

static const char *state_name(enum hs_state st)
{
	switch (st) {
	case HS_ST_I_WRITE1:
		return "sending message 1";
	case HS_ST_I_READ2:
		return "waiting for message 2";
	case HS_ST_I_WRITE3:
		return "sending message 3";
	case HS_ST_R_READ1:
		return "waiting for message 1";
	case HS_ST_R_WRITE2:
		return "sending message 2";
	case HS_ST_R_READ3:
		return "waiting for message 3";
	case HS_ST_DONE:
		return "complete";
	case HS_ST_SPLIT:
		return "finished";
	case HS_ST_FAILED:
		break;
	}
	return "failed";
}

static void secrets_wipe(struct hs *hs)
{
	sodium_memzero(hs->e_sk, sizeof(hs->e_sk));
	sodium_memzero(hs->dh, sizeof(hs->dh));
	sodium_memzero(hs->hs_secret, sizeof(hs->hs_secret));
}

__attribute__((format(printf, 3, 4))) static int hs_fail(struct hs *hs, int err, const char *fmt,
							 ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(hs->reason, sizeof(hs->reason), fmt, ap);
	va_end(ap);
	secrets_wipe(hs);
	hs->state = HS_ST_FAILED;
	hs->err = err;
	return err;
}

/* BLAKE2b-out(key, label || NUL || a || b); key may be NULL. */
static void kdf(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen, const char *label,
		const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, key, key ? keylen : 0, outlen);
	crypto_generichash_update(&st, (const uint8_t *)label, strlen(label) + 1);
	if (alen)
		crypto_generichash_update(&st, a, alen);
	if (blen)
		crypto_generichash_update(&st, b, blen);
	crypto_generichash_final(&st, out, outlen);
	sodium_memzero(&st, sizeof(st));
}

/* Transcript hash: over every handshake byte so far. */
static void th(const struct hs *hs, uint8_t out[static HS_HASH_LEN])
{
	kdf(out, HS_HASH_LEN, NULL, 0, LBL_TRANSCRIPT, hs->transcript, hs->tlen, NULL, 0);
}

static void transcript_add(struct hs *hs, const uint8_t *p, size_t n)
{
	/* Message lengths are fixed and checked, so this always fits. */
	if (n > sizeof(hs->transcript) - hs->tlen)
		n = sizeof(hs->transcript) - hs->tlen;
	memcpy(hs->transcript + hs->tlen, p, n);
	hs->tlen += n;
}

static void header_put(uint8_t *out, uint8_t type, size_t body)
{
	struct wcursor w = wcursor_make(out, HS_HEADER_LEN);

	wcursor_put(&w, hs_magic, HS_MAGIC_LEN);
	wcursor_u8(&w, HS_VERSION);
	wcursor_u8(&w, type);
	wcursor_u16(&w, (uint16_t)body);
	assert(!w.bad && w.left == 0);
}

static void expected(const struct hs *hs, uint8_t *ret_type, size_t *ret_len)
{
	switch (hs->state) {
	case HS_ST_R_READ1:
		*ret_type = TYPE_MSG1;
		*ret_len = HS_MSG1_LEN;
		break;
	case HS_ST_I_READ2:
		*ret_type = TYPE_MSG2;
		*ret_len = HS_MSG2_LEN;
		break;
	case HS_ST_R_READ3:
		*ret_type = TYPE_MSG3;
		*ret_len = HS_MSG3_LEN;
		break;
	default:
		*ret_type = 0;
		*ret_len = 0;
		break;
	}
}

/*
 * Checks the len bytes of a header we have so far, in order: magic,
 * version, type, length. Returns the expected total length when the
 * header is complete and right, 0 when more bytes are needed, or fails hs.
 */
static int header_check(struct hs *hs, const uint8_t *buf, size_t len)
{
	size_t want, body;
	uint8_t type;

	if (hs->state == HS_ST_FAILED)
		return hs->err;
	expected(hs, &type, &want);
	if (!want)
		return hs_fail(hs, -EINVAL, "handshake message received while %s",
			       state_name(hs->state));
	for (size_t i = 0; i < len && i < HS_MAGIC_LEN; i++) {
		if (buf[i] != hs_magic[i]) {
			char hex[3 * HS_MAGIC_LEN + 1] = "";
			for (size_t j = 0; j < len && j < HS_MAGIC_LEN; j++)
				snprintf(hex + 3 * j, sizeof(hex) - 3 * j, "%s%02x", j ? " " : "",
					 buf[j]);
			return hs_fail(hs, -EBADMSG,
				       "the peer does not speak the tandem channel protocol "
				       "(first bytes %s)",
				       hex);
		}
	}
	if (len <= 4)
		return 0;
	if (buf[4] != HS_VERSION)
		return hs_fail(hs, -EPROTONOSUPPORT,
			       "the peer speaks secure channel version %u, this tandem speaks "
			       "version %u: upgrade the older side",
			       buf[4], HS_VERSION);
	if (len <= 5)
		return 0;
	if (buf[5] != type)
		return hs_fail(hs, -EBADMSG, "unexpected handshake message type %u while %s",
			       buf[5], state_name(hs->state));
	if (len < HS_HEADER_LEN)
		return 0;
	body = (size_t)buf[6] << 8 | buf[7];
	if (body != want - HS_HEADER_LEN)
		return hs_fail(hs, -EBADMSG,
			       "handshake message %u has a %zu-byte body, expected %zu", type, body,
			       want - HS_HEADER_LEN);
	return (int)want;
}

int hs_new(enum hs_role role, const struct identity *id, const struct fingerprint *peer_fp,
	   struct hs **ret)
{
	struct hs *hs;

	if (!id || !peer_fp || !ret || (role != HS_INITIATOR && role != HS_RESPONDER))
		return -EINVAL;
	hs = sodium_malloc(sizeof(*hs));
	if (!hs)
		return -ENOMEM;
	memset(hs, 0, sizeof(*hs));
	hs->role = role;
	hs->state = role == HS_INITIATOR ? HS_ST_I_WRITE1 : HS_ST_R_READ1;
	hs->id = id;
	hs->peer_fp = *peer_fp;
	randombytes_buf(hs->e_sk, sizeof(hs->e_sk));
	crypto_scalarmult_base(hs->e_pk, hs->e_sk);
	*ret = hs;
	return 0;
}

void hs_free(struct hs *hs)
{
	if (hs)
		sodium_free(hs); /* wipes everything */
}

enum hs_want hs_want(const struct hs *hs)
{
	switch (hs->state) {
	case HS_ST_I_WRITE1:
	case HS_ST_I_WRITE3:
	case HS_ST_R_WRITE2:
		return HS_WANT_WRITE;
	case HS_ST_I_READ2:
	case HS_ST_R_READ1:
	case HS_ST_R_READ3:
		return HS_WANT_READ;
	case HS_ST_DONE:
		return HS_WANT_DONE;
	case HS_ST_SPLIT:
	case HS_ST_FAILED:
		break;
	}
	return HS_WANT_NOTHING;
}

bool hs_done(const struct hs *hs)
{
	return hs->state == HS_ST_DONE;
}

const char *hs_reason(const struct hs *hs)
{
	return hs->reason;
}

static int dh_compute(struct hs *hs, const uint8_t peer_e[static 32])
{
	if (crypto_scalarmult(hs->dh, hs->e_sk, peer_e) != 0 || sodium_is_zero(hs->dh, 32))
		return hs_fail(hs, -EBADMSG, "the peer sent a degenerate ephemeral key");
	sodium_memzero(hs->e_sk, sizeof(hs->e_sk));
	return 0;
}

/* After msg2's header and e_R are in the transcript: th2, the handshake secret. */
static void hs_secret_derive(struct hs *hs, uint8_t th2[static HS_HASH_LEN])
{
	th(hs, th2);
	kdf(hs->hs_secret, sizeof(hs->hs_secret), NULL, 0, LBL_HS_SECRET, hs->dh, sizeof(hs->dh),
	    th2, HS_HASH_LEN);
	sodium_memzero(hs->dh, sizeof(hs->dh));
}

static size_t signed_build(uint8_t out[static SIGNED_MAX], const char *label,
			   const uint8_t h[static HS_HASH_LEN], const uint8_t *pk1,
			   const uint8_t *pk2)
{
	size_t n = strlen(label) + 1;

	memcpy(out, label, n);
	memcpy(out + n, h, HS_HASH_LEN);
	n += HS_HASH_LEN;
	memcpy(out + n, pk1, IDENTITY_PK_LEN);
	n += IDENTITY_PK_LEN;
	if (pk2) {
		memcpy(out + n, pk2, IDENTITY_PK_LEN);
		n += IDENTITY_PK_LEN;
	}
	return n;
}

/* Encrypts our pk || sig(label, h, pk, other) into out (PLAIN_LEN + 16-byte tag). */
static void identity_seal(struct hs *hs, const char *sig_label, const char *key_label,
			  const uint8_t h[static HS_HASH_LEN], const uint8_t *other_pk,
			  uint8_t *out)
{
	uint8_t signed_data[SIGNED_MAX], plain[PLAIN_LEN], key[HS_KEY_LEN];
	size_t n;

	n = signed_build(signed_data, sig_label, h, hs->id->pk, other_pk);
	memcpy(plain, hs->id->pk, IDENTITY_PK_LEN);
	identity_sign(hs->id, signed_data, n, plain + IDENTITY_PK_LEN);
	kdf(key, sizeof(key), hs->hs_secret, sizeof(hs->hs_secret), key_label, NULL, 0, NULL, 0);
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, out + PLAIN_LEN, NULL, plain,
							   PLAIN_LEN, h, HS_HASH_LEN, NULL,
							   zero_nonce, key);
	sodium_memzero(key, sizeof(key));
}

/*
 * Decrypts the peer's pk || sig, checks pk against the pinned fingerprint
 * and the signature (label, h, pk, mine). Fills hs->peer_pk on success.
 */
static int identity_open(struct hs *hs, unsigned msgno, const char *sig_label,
			 const char *key_label, const uint8_t h[static HS_HASH_LEN],
			 const uint8_t *my_pk, const uint8_t *in)
{
	uint8_t signed_data[SIGNED_MAX], plain[PLAIN_LEN], key[HS_KEY_LEN];
	struct fingerprint got;
	size_t n;
	int r;

	kdf(key, sizeof(key), hs->hs_secret, sizeof(hs->hs_secret), key_label, NULL, 0, NULL, 0);
	r = crypto_aead_chacha20poly1305_ietf_decrypt_detached(
		plain, NULL, in, PLAIN_LEN, in + PLAIN_LEN, h, HS_HASH_LEN, zero_nonce, key);
	sodium_memzero(key, sizeof(key));
	if (r != 0) {
		r = hs_fail(hs, -EBADMSG,
			    "handshake message %u failed authentication (tampered, corrupted or "
			    "not meant for this connection)",
			    msgno);
		goto out;
	}
	fp_from_pubkey(plain, &got);
	if (!fp_equal(&got, &hs->peer_fp)) {
		char have[FP_TEXT_LEN + 1], want[FP_TEXT_LEN + 1];

		fp_format(&got, have);
		fp_format(&hs->peer_fp, want);
		r = hs_fail(hs, -EKEYREJECTED,
			    "peer presented key with fingerprint %s, expected %s", have, want);
		goto out;
	}
	n = signed_build(signed_data, sig_label, h, plain, my_pk);
	if (identity_verify(plain, signed_data, n, plain + IDENTITY_PK_LEN) != 0) {
		r = hs_fail(hs, -EBADMSG, "the peer's handshake signature (message %u) is invalid",
			    msgno);
		goto out;
	}
	memcpy(hs->peer_pk, plain, IDENTITY_PK_LEN);
	r = 0;
out:
	sodium_memzero(plain, sizeof(plain));
	return r;
}

/* msg1's MAC over its first 40 bytes, keyed from the responder's fingerprint. */
static void msg1_mac(const struct fingerprint *fp, const uint8_t *msg,
		     uint8_t out[static HS_MAC_LEN])
{
	uint8_t key[32];

	kdf(key, sizeof(key), NULL, 0, LBL_MAC1_KEY, fp->b, FP_BYTES, NULL, 0);
	crypto_generichash(out, HS_MAC_LEN, msg, HS_MSG1_LEN - HS_MAC_LEN, key, sizeof(key));
}

static int msg1_write(struct hs *hs, uint8_t *out)
{
	header_put(out, TYPE_MSG1, HS_MSG1_LEN - HS_HEADER_LEN);
	memcpy(out + HS_HEADER_LEN, hs->e_pk, 32);
	msg1_mac(&hs->peer_fp, out, out + HS_MSG1_LEN - HS_MAC_LEN);
	transcript_add(hs, out, HS_MSG1_LEN);
	hs->state = HS_ST_I_READ2;
	return HS_MSG1_LEN;
}

static int msg1_read(struct hs *hs, const uint8_t *msg)
{
	uint8_t mac[HS_MAC_LEN];
	int r;

	msg1_mac(&hs->id->fp, msg, mac);
	if (sodium_memcmp(mac, msg + HS_MSG1_LEN - HS_MAC_LEN, HS_MAC_LEN) != 0)
		return hs_fail(hs, -EBADMSG,
			       "handshake message 1 was not made for this peer: the dialer does "
			       "not have this peer's fingerprint pinned, or is not tandem");
	r = dh_compute(hs, msg + HS_HEADER_LEN);
	if (r < 0)
		return r;
	transcript_add(hs, msg, HS_MSG1_LEN);
	hs->state = HS_ST_R_WRITE2;
	return 0;
}

static int msg2_write(struct hs *hs, uint8_t *out)
{
	uint8_t th2[HS_HASH_LEN];
	const size_t head = HS_HEADER_LEN + 32;

	header_put(out, TYPE_MSG2, HS_MSG2_LEN - HS_HEADER_LEN);
	memcpy(out + HS_HEADER_LEN, hs->e_pk, 32);
	transcript_add(hs, out, head);
	hs_secret_derive(hs, th2);
	identity_seal(hs, LBL_SIG_R, LBL_KEY_MSG2, th2, NULL, out + head);
	transcript_add(hs, out + head, HS_MSG2_LEN - head);
	hs->state = HS_ST_R_READ3;
	return HS_MSG2_LEN;
}

static int msg2_read(struct hs *hs, const uint8_t *msg)
{
	uint8_t th2[HS_HASH_LEN];
	const size_t head = HS_HEADER_LEN + 32;
	int r;

	r = dh_compute(hs, msg + HS_HEADER_LEN);
	if (r < 0)
		return r;
	transcript_add(hs, msg, head);
	hs_secret_derive(hs, th2);
	r = identity_open(hs, 2, LBL_SIG_R, LBL_KEY_MSG2, th2, NULL, msg + head);
	if (r < 0)
		return r;
	transcript_add(hs, msg + head, HS_MSG2_LEN - head);
	hs->state = HS_ST_I_WRITE3;
	return 0;
}

static int msg3_write(struct hs *hs, uint8_t *out)
{
	uint8_t th3[HS_HASH_LEN];

	header_put(out, TYPE_MSG3, HS_MSG3_LEN - HS_HEADER_LEN);
	transcript_add(hs, out, HS_HEADER_LEN);
	th(hs, th3);
	identity_seal(hs, LBL_SIG_I, LBL_KEY_MSG3, th3, hs->peer_pk, out + HS_HEADER_LEN);
	transcript_add(hs, out + HS_HEADER_LEN, HS_MSG3_LEN - HS_HEADER_LEN);
	hs->state = HS_ST_DONE;
	return HS_MSG3_LEN;
}

static int msg3_read(struct hs *hs, const uint8_t *msg)
{
	uint8_t th3[HS_HASH_LEN];
	int r;

	transcript_add(hs, msg, HS_HEADER_LEN);
	th(hs, th3);
	r = identity_open(hs, 3, LBL_SIG_I, LBL_KEY_MSG3, th3, hs->id->pk, msg + HS_HEADER_LEN);
	if (r < 0)
		return r;
	transcript_add(hs, msg + HS_HEADER_LEN, HS_MSG3_LEN - HS_HEADER_LEN);
	hs->state = HS_ST_DONE;
	return 0;
}

int hs_write(struct hs *hs, uint8_t *out, size_t outlen)
{
	size_t need;

	switch (hs->state) {
	case HS_ST_I_WRITE1:
		need = HS_MSG1_LEN;
		break;
	case HS_ST_R_WRITE2:
		need = HS_MSG2_LEN;
		break;
	case HS_ST_I_WRITE3:
		need = HS_MSG3_LEN;
		break;
	case HS_ST_FAILED:
		return hs->err;
	default:
		return hs_fail(hs, -EINVAL, "handshake write attempted while %s",
			       state_name(hs->state));
	}
	if (!out || outlen < need)
		return -EMSGSIZE;
	switch (hs->state) {
	case HS_ST_I_WRITE1:
		return msg1_write(hs, out);
	case HS_ST_R_WRITE2:
		return msg2_write(hs, out);
	default:
		return msg3_write(hs, out);
	}
}

int hs_header_parse(struct hs *hs, const uint8_t *buf, size_t len)
{
	if (!buf)
		len = 0;
	return header_check(hs, buf, len);
}

int hs_read(struct hs *hs, const uint8_t *msg, size_t len)
{
	int r;

	r = header_check(hs, msg, msg ? len : 0);
	if (r < 0)
		return r;
	if (r == 0 || (size_t)r != len)
		return hs_fail(hs, -EBADMSG,
			       "handshake message of %zu bytes while %s: wrong length", len,
			       state_name(hs->state));
	switch (hs->state) {
	case HS_ST_R_READ1:
		return msg1_read(hs, msg);
	case HS_ST_I_READ2:
		return msg2_read(hs, msg);
	default:
		return msg3_read(hs, msg);
	}
}

int hs_split(struct hs *hs, struct hs_keys *ret)
{
	uint8_t thf[HS_HASH_LEN], master[32];

	if (hs->state != HS_ST_DONE)
		return hs->state == HS_ST_FAILED ? hs->err : -EINVAL;
	th(hs, thf);
	kdf(master, sizeof(master), hs->hs_secret, sizeof(hs->hs_secret), LBL_MASTER, thf,
	    sizeof(thf), NULL, 0);
	kdf(hs->role == HS_INITIATOR ? ret->tx : ret->rx, HS_KEY_LEN, master, sizeof(master),
	    LBL_I2R, NULL, 0, NULL, 0);
	kdf(hs->role == HS_INITIATOR ? ret->rx : ret->tx, HS_KEY_LEN, master, sizeof(master),
	    LBL_R2I, NULL, 0, NULL, 0);
	kdf(ret->session_id, HS_SESSION_ID_LEN, master, sizeof(master), LBL_SESSION, NULL, 0, NULL,
	    0);
	sodium_memzero(master, sizeof(master));
	memcpy(ret->peer_pk, hs->peer_pk, IDENTITY_PK_LEN);
	ret->peer_fp = hs->peer_fp;
	secrets_wipe(hs);
	hs->state = HS_ST_SPLIT;
	return 0;
}
