/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_CHAN_HANDSHAKE_H
#define TANDEM_CHAN_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity/fingerprint.h"
#include "identity/identity.h"

/*
 * The secure channel handshake (docs/CHANNEL.md), sans-IO: the caller moves
 * the bytes, this module only turns messages into state and state into
 * messages.
 *
 * Three messages, SIGMA-I over ephemeral X25519 with Ed25519 identities:
 *
 *   msg1  I -> R   magic, version, e_I, mac(pinned fp_R)       (56 bytes)
 *   msg2  R -> I   e_R, AEAD(pk_R, sig_R(transcript))          (152 bytes)
 *   msg3  I -> R   AEAD(pk_I, sig_I(transcript, pk_R))         (120 bytes)
 *
 * Both sides know the other's fingerprint beforehand (pinned). Each
 * message starts with an 8-byte header (magic, version, type, body length)
 * so the reader knows how much to read, and junk is rejected on its first
 * byte. msg1 carries a MAC keyed from the responder's fingerprint: a
 * responder answers only dialers that know whom they dial, and rejects
 * anything else with one hash, before any public-key operation. After
 * msg3 both sides hold two traffic keys, one per direction.
 *
 * Driving it (one struct hs per connection, one thread at a time):
 *
 *   hs_new(role, id, &pinned_fp, &hs);
 *   while (!hs_done(hs)) {
 *           if (hs_want(hs) == HS_WANT_WRITE)
 *                   n = hs_write(hs, out, sizeof(out));   send n bytes
 *           else    read HS_HEADER_LEN bytes (or fewer: junk fails early),
 *                   n = hs_header_parse(hs, buf, have);   read up to n bytes
 *                   hs_read(hs, buf, n);
 *   }
 *   hs_split(hs, &keys);  hs_free(hs);
 *
 * Any error is final: the hs stays failed, every later call returns the
 * same error and hs_reason() says why in one human sentence. Bytes after
 * msg3 in the same TCP read already belong to the frame layer.
 */

#define HS_MAGIC_LEN 4
#define HS_HEADER_LEN 8 /* magic(4) version(1) type(1) body length(2, big-endian) */
#define HS_VERSION 1
#define HS_KEY_LEN 32
#define HS_SESSION_ID_LEN 32
#define HS_MAC_LEN 16
#define HS_MSG1_LEN (HS_HEADER_LEN + 32 + HS_MAC_LEN)
#define HS_MSG2_LEN (HS_HEADER_LEN + 32 + 32 + 64 + 16)
#define HS_MSG3_LEN (HS_HEADER_LEN + 32 + 64 + 16)
#define HS_MSG_MAX HS_MSG2_LEN /* largest handshake message, header included */
#define HS_REASON_LEN 256

extern const uint8_t hs_magic[HS_MAGIC_LEN]; /* 0x89 'T' 'D' 'M' */

enum hs_role {
	HS_INITIATOR, /* opened the TCP connection; writes msg1 */
	HS_RESPONDER, /* accepted it; reads msg1 */
};

enum hs_want {
	HS_WANT_WRITE,	 /* call hs_write() and send the bytes */
	HS_WANT_READ,	 /* read the next message: hs_header_parse(), then hs_read() */
	HS_WANT_DONE,	 /* hs_split() */
	HS_WANT_NOTHING, /* failed, or already split: close the connection */
};

/* What a finished handshake hands to the frame layer. Wipe it with
 * sodium_memzero() once the keys are copied into frame_enc/frame_dec. */
struct hs_keys {
	uint8_t tx[HS_KEY_LEN];		       /* key for frames we send */
	uint8_t rx[HS_KEY_LEN];		       /* key for frames we receive */
	uint8_t session_id[HS_SESSION_ID_LEN]; /* equal on both sides; not a key */
	uint8_t peer_pk[IDENTITY_PK_LEN];      /* the authenticated peer identity */
	struct fingerprint peer_fp;
};

struct hs;

/*
 * New handshake state for one connection. id is borrowed and must outlive
 * the hs; peer_fp is the pinned fingerprint of the only peer accepted.
 * Makes a fresh ephemeral X25519 key. Returns 0, -EINVAL or -ENOMEM.
 */
int hs_new(enum hs_role role, const struct identity *id, const struct fingerprint *peer_fp,
	   struct hs **ret) __attribute__((warn_unused_result));

/* Wipes every secret and frees. NULL is a no-op. */
void hs_free(struct hs *hs);

/* What the caller should do next. */
enum hs_want hs_want(const struct hs *hs);

/* True once both messages of ours are written and the peer's read: call hs_split(). */
bool hs_done(const struct hs *hs);

/*
 * Writes the next outgoing message into out. Returns its length (> 0),
 * -EMSGSIZE when outlen is too small (HS_MSG_MAX always fits; the state
 * is unchanged), or -EINVAL when it is not our turn to write (the hs
 * fails).
 */
int hs_write(struct hs *hs, uint8_t *out, size_t outlen) __attribute__((warn_unused_result));

/*
 * Looks at the first len bytes received of the next incoming message
 * (len may be less than HS_HEADER_LEN). Returns the full length of the
 * message (header included) once the header is complete and acceptable,
 * 0 when more bytes are needed to decide, or:
 *   -EBADMSG          not a tandem handshake (bad magic: an HTTP request
 *                     fails on its first byte), unexpected message type,
 *                     wrong body length for the type
 *   -EPROTONOSUPPORT  a tandem peer speaking another channel version
 *   -EINVAL           we are not waiting for a message
 * Errors are final (the hs fails).
 */
int hs_header_parse(struct hs *hs, const uint8_t *buf, size_t len)
	__attribute__((warn_unused_result));

/*
 * Consumes exactly one complete incoming message of len bytes. Returns 0,
 * or (final) -EBADMSG (garbage, wrong length, unexpected type, a msg1 not
 * made for our fingerprint, failed authentication, bad signature,
 * degenerate key), -EPROTONOSUPPORT
 * (other version), -EKEYREJECTED (the peer's identity key does not match
 * the pinned fingerprint; hs_reason() names both fingerprints), -EINVAL
 * (not waiting for a message: out of order, repeated, or after the end).
 */
int hs_read(struct hs *hs, const uint8_t *msg, size_t len) __attribute__((warn_unused_result));

/*
 * Hands out the traffic keys and the peer's identity once hs_done(), and
 * wipes the handshake secrets (the hs can only be freed afterwards).
 * Returns 0, or -EINVAL when the handshake is not complete (or was split).
 */
int hs_split(struct hs *hs, struct hs_keys *ret) __attribute__((warn_unused_result));

/* A sentence saying why the handshake failed ("" while it has not). Owned
 * by hs; peer-controlled parts are numbers or fingerprints only. */
const char *hs_reason(const struct hs *hs);

#endif
