/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_ENGINE_INT_H
#define TANDEM_SYNC_ENGINE_INT_H

/* The engine itself (engine.c; tests reach into it): the parts it owns are
 * in their own headers (docs/SYNC.md "Parts and threads"). */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "sync/apply.h"
#include "sync/blocks.h"
#include "sync/conflict.h"
#include "sync/disk.h"
#include "sync/engine.h"
#include "sync/fetch.h"
#include "sync/hold.h"
#include "sync/index.h"
#include "sync/lazy_fetch.h"
#include "sync/lazy_int.h"
#include "sync/msg.h"
#include "sync/rentry.h"
#include "sync/scan.h"
#include "sync/serve.h"
#include "sync/vv.h"
#include "sync/work.h"
#include "sync/xfer.h"

/* Memory for the peer's entries held before applying (see engine.c): the
 * array of struct rentry and their strings. At the cap, what is held is
 * applied (docs/SYNC.md "Holding a burst"). */
#define ENGINE_BATCH_BYTES ((size_t)8 << 20)
#define ENGINE_ALLOC_OVERHEAD RENTRY_ALLOC_OVERHEAD
#define ENGINE_SCAN_DELAY_MS 40		    /* quiet time after an inotify event */
#define ENGINE_MSG_BUF (SYNC_BLOCK_DATA_HEADER_LEN + SYNC_BLOCK_MAX + 64)

struct engine {
	struct engine_opts opts;
	struct engine_io io;
	struct index *idx;
	struct scan *scan;
	int rootfd;
	uint8_t self_dev[VV_DEVICE_LEN];
	char stopped[ERR_LEN]; /* "" while syncing */
	/* The loop's monotonic ms, as the last entry point was given it
	 * (engine.h "Time"): what the parts read instead of a clock. */
	uint64_t now_ms;

	/* local scanning */
	uint64_t scan_due_ms; /* 0: none */
	bool scanning;

	/* the peer */
	bool up;
	bool sent_start, got_start;
	bool got_done;		      /* the first INDEX_DONE arrived */
	bool peer_known;
	uint8_t peer_dev[VV_DEVICE_LEN];
	uint64_t peer_done_seq; /* its last INDEX_DONE */
	uint64_t peer_applied;	/* stored: its changes we have applied */
	uint64_t send_seq;	/* our changes sent up to here */
	bool done_owed;		/* an INDEX_DONE must follow what we sent */

	/* the batch being received */
	struct rentry *batch;
	size_t nbatch, batch_cap;
	size_t batch_str; /* bytes of the entries' strings (engine_batch_room) */

	struct xfer xfer; /* our requests in flight, for the fetcher and the lazy fetcher */

	struct disk disk;	 /* opening parents, refusals */
	struct fetcher *fetch; /* the peer's content we do not have */
	struct applier *apply; /* the peer's changes made here */

	struct server *serve; /* the peer's requests */

	uint64_t refused; /* the peer's entries with names reserved for tandem */

	/* Lazy mode: the placeholders (shared with FUSE threads, its own
	 * lock) and the fetcher of their blocks. */
	struct lazy *lazy;
	struct lazy_fetcher *lazyf;

	uint8_t *buf; /* ENGINE_MSG_BUF bytes, for messages we build */

	/* The files the mount has open for writing (FUSE threads, its own
	 * lock): the scanner leaves them unpublished (hold.h). */
	struct hold *hold;
};

/* engine.c, for tests */
/* The string bytes counted for an entry with these lengths (target_len 0:
 * none), allocation overhead included. */
size_t engine_rentry_str_bytes(size_t path_len, size_t target_len);
/*
 * Whether one more entry, with need bytes of strings, fits in a batch of n
 * entries in an array of cap slots with str bytes of strings, all within
 * max bytes (ENGINE_BATCH_BYTES). Returns the array's capacity to hold it:
 * cap when that fits; else, when n < cap, a smaller one (above n) that
 * does; when n == cap, a larger one (at most double) as large as max
 * allows. 0 when no slot is left: apply the batch first.
 */
size_t engine_batch_room(size_t n, size_t cap, size_t str, size_t need, size_t max);

/*
 * The batch held (e->batch), applied by the applier, then freed. final: the
 * peer's INDEX_DONE came; else the batch is only full (ENGINE_BATCH_BYTES),
 * and what waits for entries still to come (a directory to empty) is kept
 * in e->batch for the next call, within half the cap.
 */
void engine_apply_batch(struct engine *e, bool final);

#endif
