/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_LAZY_FETCH_H
#define TANDEM_SYNC_LAZY_FETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "sync/disk.h"
#include "sync/fetch.h"
#include "sync/index.h"
#include "sync/lazy_int.h"
#include "sync/link.h"
#include "sync/xfer.h"

/*
 * The lazy fetcher: asks for the blocks lazy_on_ensure() marked wanted
 * (manifest first for a multi-block file), through the transfer table,
 * verifies each, writes it into its placeholder in place and marks it
 * present in the lazy table; and keeps the cache limit (emptying clean
 * files, least recently ensured first). Loop thread only: a client of the
 * lazy table (lazy_int.h), the transfer table and, for the full-disk
 * state, the fetcher.
 */

/* Given at creation; the engine owns every pointer. */
struct lazy_fetch_ctx {
	struct lazy *lz;
	struct xfer *xfer;
	struct fetcher *fetch; /* the full-disk state is shared with it */
	struct index *idx;
	struct disk *disk;
	struct sync_link link;
	uint8_t *buf; /* scratch of ENGINE_MSG_BUF bytes, lent during a call */
	size_t buf_len;
	uint64_t cache_max;    /* remote content kept, bytes; 0 = unlimited */
	uint64_t evict_age_ms; /* a file ensured this recently is not emptied */
	/* A manifest came: more can be asked for (the engine pumps). */
	void (*pump)(void *ud);
	void *ud;
};

struct lazy_fetcher {
	struct lazy_fetch_ctx c;
	uint64_t evict_due_ms; /* lazy_evict() again then; 0: under the limit */
	uint64_t now_ms;
	uint64_t bytes_received;
	uint64_t refused;
};

int lazy_fetcher_new(const struct lazy_fetch_ctx *c, struct lazy_fetcher **ret)
	__attribute__((warn_unused_result));
void lazy_fetcher_free(struct lazy_fetcher *lf);

/* Asks for wanted blocks while the window and the connection allow. */
void lazy_pump(struct lazy_fetcher *lf, uint64_t now_ms);
uint64_t lazy_fetch_deadline(const struct lazy_fetcher *lf);
void lazy_fetch_tick(struct lazy_fetcher *lf, uint64_t now_ms);

/*
 * The peer asked us for the content hash of path, which is here only as a
 * placeholder not complete: nobody can ever fill it (the peer asks because
 * it has not got that content under this name any more, and only the peer
 * could fill it; sim bug 8). Blocks asked for it are dropped. Unless it
 * changed since it was indexed or is open for writing (the scanner decides
 * then), or has no hole and hashes to its content (it was complete: marked
 * so, and served at the next request; the hash is read on this thread),
 * the placeholder is removed from the disk and the table; the caller
 * records the deletion (scan_path_now), a change of ours that the peer
 * takes. Returns 1 when removed, 0 when left, -errno. Loop thread.
 */
int lazy_fetch_drop(struct lazy_fetcher *lf, const char *path, const uint8_t *hash);

#endif
