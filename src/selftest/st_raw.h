/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ST_RAW_H
#define TANDEM_ST_RAW_H

#include <stddef.h>
#include <stdint.h>

#include "sync/msg.h"

/*
 * Sync messages written by hand, as docs/SYNC-PROTOCOL.md lays them out,
 * without any of the checks of src/sync/msg.c: what a hostile peer sends
 * (a path with "..", a NUL, a name over NAME_MAX, ...). Independent of the
 * real encoder on purpose; tests/unit/test_st_raw.c proves both write the
 * same bytes for valid input. Pure functions, any thread.
 */

/* Writes entry e into out. Returns the bytes written, 0 when cap is too
 * small or e->nvv is over SYNC_VV_MAX. */
size_t st_raw_entry(uint8_t *out, size_t cap, const struct sync_entry *e);

/* An INDEX_UPDATE with the n entries (count n, whatever it is). Returns its
 * length, or 0 when cap is too small. */
size_t st_raw_index(uint8_t *out, size_t cap, const struct sync_entry *e, size_t n);

/*
 * A MANIFEST_REQUEST (type SYNC_MSG_MANIFEST_REQUEST: index, offset and len
 * are not written) or a BLOCK_REQUEST for path_len bytes of path. Returns
 * its length, or 0 when cap is too small or type is another.
 */
size_t st_raw_request(uint8_t *out, size_t cap, uint8_t type, uint32_t req_id, const char *path,
		      size_t path_len, const uint8_t hash[static SYNC_HASH_LEN], uint32_t index,
		      uint64_t offset, uint32_t len);

#endif
