/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RECORD_H
#define TANDEM_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "identity/derive.h"
#include "identity/identity.h"

/*
 * The peer record a peer publishes on the relay: how to reach it (listen
 * addresses), its identity key, and when it was made, signed by the
 * identity and sealed with XChaCha20-Poly1305 under the record key of the
 * current bucket. Sans-IO: bytes in, structs out. Byte layout in
 * docs/PROTOCOL.md ("Relay record").
 */

#define RECORD_MAX_ADDRS 8
#define RECORD_MAX_EXT 256
#define RECORD_VERSION 1
#define RECORD_FLAG_INBOUND 0x01u /* the peer accepts incoming connections */

/* Extension entries (docs/PROTOCOL.md §4): type, length, value; a reader
 * skips types it does not know. */
#define RECORD_EXT_OBSERVED 1 /* the address and port the relay saw (punch port) */

/* Largest sealed blob: version + nonce + plaintext + tag. */
#define RECORD_PLAIN_MAX (4 + 1 + 32 + 8 + 1 + RECORD_MAX_ADDRS * 19 + 2 + RECORD_MAX_EXT + 64)
#define RECORD_BLOB_MAX (1 + 24 + RECORD_PLAIN_MAX + 16)
#define RECORD_ADDR_TEXT_MAX 64 /* "[v6]:port" */

struct record_addr {
	uint8_t family;	 /* 4 or 6 */
	uint8_t ip[16];	 /* IPv4 in the first 4 bytes, the rest zero */
	uint16_t port;	 /* host order, never 0 */
};

struct peer_record {
	uint8_t flags;
	uint8_t pk[IDENTITY_PK_LEN];
	uint64_t timestamp; /* unix seconds when made */
	uint8_t naddrs;
	struct record_addr addrs[RECORD_MAX_ADDRS];
	/* Extension RECORD_EXT_OBSERVED: where the relay saw a connection
	 * from the peer's punch port come from (its public address and port
	 * behind NAT); the peer tries TCP simultaneous opens from that port
	 * (docs/DAEMON.md, "Hole punching"). */
	bool has_observed;
	struct record_addr observed;
};

/*
 * Seals rec (rec->pk is taken from id) for bucket into out. Returns the
 * blob length, -EINVAL for a malformed rec (too many addresses, port 0, bad
 * family), or -EMSGSIZE when outlen is too small (RECORD_BLOB_MAX fits).
 */
int record_seal(const struct identity *id, const struct peer_record *rec, uint64_t bucket,
		uint8_t *out, size_t outlen) __attribute__((warn_unused_result));

/*
 * Opens a blob fetched for fingerprint fp in bucket. Checks, in order: the
 * version (-EPROTONOSUPPORT), the AEAD tag (-EBADMSG: wrong key or
 * tampered), the layout, consuming every byte (-EBADMSG), that the key
 * inside hashes to fp (-EKEYREJECTED), and the signature (-EBADMSG).
 * Extension entries of unknown types are skipped; a known one that is
 * malformed, or entries that overrun the extension, are -EBADMSG.
 * *ret is written only on success.
 */
int record_open(const struct fingerprint *fp, uint64_t bucket, const uint8_t *blob, size_t len,
		struct peer_record *ret) __attribute__((warn_unused_result));

/* Conversions between record addresses and sockaddrs / text. */
int record_addr_from_sockaddr(const struct sockaddr *sa, struct record_addr *ret);
void record_addr_to_sockaddr(const struct record_addr *a, struct sockaddr_storage *ret,
			     socklen_t *ret_len);
/* "[2001:db8::1]:4000" or "192.0.2.1:4000". */
void record_addr_format(const struct record_addr *a, char out[static RECORD_ADDR_TEXT_MAX]);

#endif
