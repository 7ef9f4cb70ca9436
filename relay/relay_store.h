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
 * A token holds up to RELAY_TOKEN_WRITERS records, one per write secret
 * (docs/RELAY.md "Several writers per token"): anyone who can compute a
 * token can add a record next to the owner's, but cannot replace or delete
 * it, and a reader gets them all and keeps the one whose signature it
 * trusts. When a token is full, a new writer pushes out the least recently
 * written record of the client (IPv4 address or IPv6 /64) that holds the
 * most records under the token, the newcomer's own client included: one
 * client can only churn its own records and never displaces a client that
 * holds fewer.
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
#define RELAY_TOKEN_WRITERS 8 /* records under one token */

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
 * next call on the store) and *ret_expires_ms of its most recently written
 * record, or -ENOENT.
 */
int relay_store_get(struct relay_store *s, const uint8_t token[static RELAY_TOKEN_LEN],
		    int64_t now_ms, const uint8_t **ret_blob, size_t *ret_len,
		    int64_t *ret_expires_ms) __attribute__((warn_unused_result));

/*
 * Every live record under token, most recently written first: fills up to
 * max entries of out (pointers valid until the next call on the store) and
 * returns how many (0: none).
 */
size_t relay_store_get_all(struct relay_store *s, const uint8_t token[static RELAY_TOKEN_LEN],
			   int64_t now_ms, struct relay_store_entry *out, size_t max);

/*
 * Stores blob (1..RELAY_BLOB_MAX bytes, copied) under token until
 * expires_ms, as the record of the writer that holds secret (32 bytes),
 * sent from client (NULL: the zero key for eviction, and counted for
 * nobody). Returns RELAY_STORE_REPLACED when that writer had a record there
 * (it stays counted for the client that created it), RELAY_STORE_CREATED
 * when it is new (a full token first loses one record, see above), or:
 * -EACCES  secret is NULL and the token has records (they are unchanged);
 * -ENOKEY  secret is NULL and the token has none;
 * -ENOSPC  the record is new and the store is full; *ret_retry_ms is the
 *          time until the earliest record expires (> 0);
 * -EDQUOT  the record is new and client holds max_per_client records;
 *          *ret_retry_ms is the time until its earliest one expires (> 0);
 * -EINVAL  bad blob size or expiry not after now_ms; -ENOMEM.
 */
int relay_store_put(struct relay_store *s, const uint8_t token[static RELAY_TOKEN_LEN],
		    const struct relay_client_key *client, const uint8_t *secret,
		    const uint8_t *blob, size_t blob_len, int64_t expires_ms, int64_t now_ms,
		    int64_t *ret_retry_ms) __attribute__((warn_unused_result));

/*
 * Deletes the record of the writer holding secret under token. Returns 0,
 * -ENOENT (no record under token), or -EACCES (secret NULL, or none of the
 * token's records is that writer's).
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

/* Records pushed out of a full token by a new writer since then. */
uint64_t relay_store_evicted_total(const struct relay_store *s);

#endif
