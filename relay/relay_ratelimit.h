/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_RATELIMIT_H
#define TANDEM_RELAY_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "relay_addr.h"

/*
 * Per-client token buckets. Each client (relay_addr_key_derive) gets a
 * bucket of `burst` requests that refills at `per_minute` requests per
 * minute. The table has a fixed number of slots allocated up front, so
 * no number of clients can grow memory: an entry whose bucket has refilled
 * completely is idle and dropped (it would behave exactly like a new one);
 * when every slot is busy, the least recently seen client is dropped, which
 * at worst hands that client a fresh bucket. Slots are found through a
 * SipHash table with a random key, so chosen addresses cannot collide on
 * purpose.
 *
 * Not thread-safe: the caller (relay_core) serialises access.
 */

struct relay_ratelimit;

/* Most clients the table can track at once. */
#define RELAY_RATELIMIT_CLIENTS_MAX (1u << 22)

/*
 * per_minute >= 1, burst >= 1 (at most 1,000,000 each), 1 <= max_clients <=
 * RELAY_RATELIMIT_CLIENTS_MAX. Returns 0, -EINVAL or -ENOMEM; *ret is set on
 * success only.
 */
int relay_ratelimit_new(unsigned per_minute, unsigned burst, size_t max_clients,
			struct relay_ratelimit **ret) __attribute__((warn_unused_result));
void relay_ratelimit_free(struct relay_ratelimit *rl);

/*
 * Takes one token from the client's bucket at time now_ms (a monotonic
 * clock; a clock going backwards refills nothing). Returns 0 when the
 * request may go on, else the number of milliseconds (> 0) until a token
 * will be available.
 */
int64_t relay_ratelimit_take(struct relay_ratelimit *rl, const struct relay_client_key *key,
			     int64_t now_ms);

/* Clients currently tracked (after dropping idle ones at now_ms). */
size_t relay_ratelimit_count(struct relay_ratelimit *rl, int64_t now_ms);

#endif
