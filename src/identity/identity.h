/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_IDENTITY_H
#define TANDEM_IDENTITY_H

#include <stdint.h>

#include "identity/fingerprint.h"

/*
 * A peer's long-term identity: an Ed25519 key pair made from a 32-byte
 * seed. The seed lives in sodium_malloc'd memory (guarded, locked) and is
 * wiped by identity_free(). The key file is "<dir>/identity.key", mode
 * 0600, one line: "tandem-identity-v1 <base64url seed>".
 */

#define IDENTITY_FILE "identity.key"
#define IDENTITY_SEED_LEN 32
#define IDENTITY_PK_LEN 32
#define IDENTITY_SIG_LEN 64

struct identity {
	uint8_t pk[IDENTITY_PK_LEN];
	struct fingerprint fp;
	uint8_t *seed;	/* sodium_malloc, IDENTITY_SEED_LEN */
	uint8_t *sk;	/* sodium_malloc, 64: ed25519 secret key (seed || pk) */
};

/* New random identity (or from a fixed seed when seed != NULL, for tests).
 * Returns 0 or -ENOMEM. */
int identity_new(const uint8_t *seed, struct identity **ret)
	__attribute__((warn_unused_result));
void identity_free(struct identity *id);

/*
 * Writes the identity into dir/identity.key, creating dir (0700) if
 * needed. Never overwrites: returns -EEXIST if the file exists. The file is
 * written under a temporary name, fsynced, and linked into place, so a
 * crash leaves either no identity or a complete one.
 */
int identity_save(const struct identity *id, const char *dir)
	__attribute__((warn_unused_result));

/*
 * Loads dir/identity.key. Returns 0, -ENOENT when there is none, -EBADMSG
 * when the file is malformed, or another -errno. *ret_world_readable is
 * set when the file's mode lets group or others read it (the caller
 * warns).
 */
int identity_load(const char *dir, struct identity **ret, int *ret_world_readable)
	__attribute__((warn_unused_result));

/* Ed25519 signature over msg. */
void identity_sign(const struct identity *id, const uint8_t *msg, size_t len,
		   uint8_t sig[static IDENTITY_SIG_LEN]);

/* Returns 0 when sig is a valid signature of msg by pk, else -EBADMSG. */
int identity_verify(const uint8_t pk[static IDENTITY_PK_LEN], const uint8_t *msg, size_t len,
		    const uint8_t sig[static IDENTITY_SIG_LEN]) __attribute__((warn_unused_result));

#endif
