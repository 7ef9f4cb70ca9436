/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_STORE_H
#define TANDEM_RELAY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "relay_addr.h"

/*
 * The relay's records, in memory. A record is an opaque blob stored under
 * a 32-byte token until it expires. With it the store keeps only a
 * BLAKE2b hash of the write secret the record was created with; replacing
 * or deleting needs the same secret (compared in constant time).
 *
 * Expiry is lazy: every call first drops the records whose time has come
 * (a min-heap ordered by expiry, so that costs O(log n) per expired
 * record), so an expired record is never returned and never counts
 * against max_records. Lookups go through a SipHash table with a random
 * key, so chosen tokens cannot be made to collide.
 *
 * Every record counts against the client that created it (an IPv4 address
 * or an IPv6 /64, relay_addr_key_derive): a client holds at most
 * max_per_client live records, so that a few clients cannot fill the
 * store. Replacing a record does not count again, and the record stays
 * with the client that created it; expiry and deletion give the slot back.
 *
 * Times are milliseconds of a monotonic clock, passed in by the caller.
 * Not thread-safe: the caller (relay_core) serialises access.
 */

#define RELAY_TOKEN_LEN 32
#define RELAY_SECRET_LEN 32
#define RELAY_BLOB_MAX 4096
#define RELAY_RECORDS_MAX 1000000u

struct relay_store;

/* What relay_store_put did. */
enum {
	RELAY_STORE_REPLACED = 0,
	RELAY_STORE_CREATED = 1,
};

/* A record as handed to relay_store_foreach (pointers valid during the call). */
struct relay_store_entry {
	const uint8_t *token; /* RELAY_TOKEN_LEN bytes */
	const uint8_t *blob;
	size_t blob_len;
	int64_t expires_ms;
};

typedef void (*relay_store_visit_fn)(const struct relay_store_entry *e, void *userdata);

/*
 * 1 <= max_records <= RELAY_RECORDS_MAX; max_per_client <= max_records, 0
 * for no per-client limit. Returns 0, -EINVAL or -ENOMEM.
 */
int relay_store_new(size_t max_records, size_t max_per_client, struct relay_store **ret)
	__attribute__((warn_unused_result));
void relay_store_free(struct relay_store *s);

/* Drops every record expired at now_ms. */
void relay_store_expire(struct relay_store *s, int64_t now_ms);

/* Live records at now_ms. */
size_t relay_store_count(struct relay_store *s, int64_t now_ms);

/*
 * Looks up token. Returns 0 and sets *ret_blob, *ret_len (valid until the
 * next call on the store) and *ret_expires_ms, or -ENOENT.
 */
int relay_store_get(struct relay_store *s, const uint8_t token[static RELAY_TOKEN_LEN],
		    int64_t now_ms, const uint8_t **ret_blob, size_t *ret_len,
		    int64_t *ret_expires_ms) __attribute__((warn_unused_result));

/*
 * Stores blob (1..RELAY_BLOB_MAX bytes, copied) under token until
 * expires_ms. secret is the writer's 32-byte write secret or NULL when the
 * request had none; client is who sends it (NULL: counted for nobody).
 * Returns RELAY_STORE_CREATED, RELAY_STORE_REPLACED, or:
 * -EACCES  the record exists and secret is NULL or is not the one it was
 *          created with (the record is left as it was);
 * -ENOKEY  the record is new and secret is NULL;
 * -ENOSPC  the record is new and the store is full; *ret_retry_ms is the
 *          time until the earliest record expires (> 0);
 * -EDQUOT  the record is new and client holds max_per_client records;
 *          *ret_retry_ms is the time until its earliest one expires (> 0);
 * -EINVAL  bad blob size or expiry not after now_ms; -ENOMEM.
 */
int relay_store_put(struct relay_store *s, const uint8_t token[static RELAY_TOKEN_LEN],
		    const uint8_t *secret, const struct relay_client_key *client,
		    const uint8_t *blob, size_t blob_len, int64_t expires_ms, int64_t now_ms,
		    int64_t *ret_retry_ms) __attribute__((warn_unused_result));

/*
 * Deletes the record under token if secret matches. Returns 0, -ENOENT, or
 * -EACCES (secret NULL or not matching).
 */
int relay_store_delete(struct relay_store *s, const uint8_t token[static RELAY_TOKEN_LEN],
		       const uint8_t *secret, int64_t now_ms) __attribute__((warn_unused_result));

/* Calls fn for every live record at now_ms. fn must not call into the store. */
void relay_store_foreach(struct relay_store *s, int64_t now_ms, relay_store_visit_fn fn,
			 void *userdata);

/* Live records of client at now_ms. */
size_t relay_store_client_count(struct relay_store *s, const struct relay_client_key *client,
				int64_t now_ms);

/* Records dropped by expiry since the store was created. */
uint64_t relay_store_expired_total(const struct relay_store *s);

#endif
