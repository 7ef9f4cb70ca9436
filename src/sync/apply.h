/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_APPLY_H
#define TANDEM_SYNC_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sync/disk.h"
#include "sync/fetch.h"
#include "sync/index.h"
#include "sync/lazy_int.h"
#include "sync/rentry.h"
#include "sync/scan.h"
#include "sync/vv.h"

/*
 * The applier: a batch of the peer's entries applied to the share, each
 * after a fresh look at the path (scan_path_now) and the verdict of
 * decide() (decide.h): directories, files and links made or moved
 * locally, content queued with the fetcher (or placed as a placeholder in
 * lazy mode), conflict copies, deletions. It also puts a fetched file in
 * place (apply_commit_fetch), deciding again. Loop thread only; the engine
 * owns it; it calls down into the fetcher's queue, the lazy table and the
 * disk operations, never up.
 */

/* Given at creation; the engine owns every pointer. */
struct apply_ctx {
	struct index *idx;
	struct scan *scan;
	struct disk *disk;
	struct fetcher *fetch;
	struct lazy *lazy;
	bool lazy_mode;		 /* files become placeholders, not fetches */
	bool symlinks_all;	 /* make the peer's links that point outside the share */
	uint8_t self_dev[VV_DEVICE_LEN]; /* ours */
	/* Optional: path changed on disk because of the peer. */
	void (*changed)(void *ud, const char *path);
	void *ud;
};

struct applier {
	struct apply_ctx c;
	uint8_t peer_dev[VV_DEVICE_LEN]; /* the peer's device id (its START) */
	uint64_t now_ms;
	uint64_t conflicts; /* conflict copies made */
	uint64_t refused;   /* the peer's entries refused */
};

int applier_new(const struct apply_ctx *c, struct applier **ret)
	__attribute__((warn_unused_result));
void applier_free(struct applier *a);
/* The peer's device id, from its START. */
void apply_set_peer(struct applier *a, const uint8_t dev[static VV_DEVICE_LEN]);

/*
 * Applies the batch (*batch, *n entries, an array of *cap, *str bytes of
 * strings as engine_batch_room() counts them), then frees it. final: the
 * peer's INDEX_DONE came; else the batch is only full, and what waits for
 * entries still to come (a directory to empty) is kept at the front of
 * *batch for the next call, within half of max bytes; *n, *cap and *str
 * then describe what is kept.
 */
void apply_batch(struct applier *a, struct rentry **batch, size_t *n, size_t *cap, size_t *str,
		 size_t max, bool final, uint64_t now_ms);

/* f is complete in its temp file (data fsynced when synced): decides again
 * against what the path holds now, writes f's metadata, fsyncs it and
 * renames it into place. 0 or -errno (-ESTALE: ours stays, f is dropped). */
int apply_commit_fetch(struct applier *a, struct fetch *f, bool synced, uint64_t now_ms);

#endif
