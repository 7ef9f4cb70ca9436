/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_CHAN_HS_INTERNAL_H
#define TANDEM_CHAN_HS_INTERNAL_H

/*
 * The inside of struct hs, for handshake.c and for the unit tests and fuzz
 * harnesses only (they pin ephemeral keys to get test vectors, and seal
 * fuzzed plaintexts with the real handshake keys). Nothing else includes
 * this.
 */

#include "chan/handshake.h"

enum hs_state {
	HS_ST_I_WRITE1,
	HS_ST_I_READ2,
	HS_ST_I_WRITE3,
	HS_ST_R_READ1,
	HS_ST_R_WRITE2,
	HS_ST_R_READ3,
	HS_ST_DONE,
	HS_ST_SPLIT,
	HS_ST_FAILED,
};

#define HS_TRANSCRIPT_MAX (HS_MSG1_LEN + HS_MSG2_LEN + HS_MSG3_LEN)
#define HS_HASH_LEN 64

/* Lives in sodium_malloc memory: every field is wiped by hs_free(). */
struct hs {
	enum hs_role role;
	enum hs_state state;
	int err; /* the final error once HS_ST_FAILED */
	const struct identity *id;
	struct fingerprint peer_fp; /* pinned */
	uint8_t e_sk[32];	    /* ephemeral X25519 secret */
	uint8_t e_pk[32];
	uint8_t dh[32]; /* X25519(e_sk, peer ephemeral) until hs_secret exists */
	uint8_t hs_secret[32];
	uint8_t peer_pk[IDENTITY_PK_LEN];      /* once authenticated */
	uint8_t transcript[HS_TRANSCRIPT_MAX]; /* every handshake byte so far */
	size_t tlen;
	char reason[HS_REASON_LEN];
};

#endif
