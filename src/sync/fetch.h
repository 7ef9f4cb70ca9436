/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_FETCH_H
#define TANDEM_SYNC_FETCH_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "sync/blocks.h"
#include "sync/disk.h"
#include "sync/index.h"
#include "sync/link.h"
#include "sync/rentry.h"
#include "sync/work.h"
#include "sync/xfer.h"

/*
 * The fetcher: the peer's files whose content we do not have, queued by
 * the applier (fetch_queue), fetched a manifest and blocks at a time
 * through the transfer table, each block verified (by FETCH_WORKERS
 * threads, or on the loop) before it is written to a temp file beside the
 * target, and handed back complete (ops->commit) to be put in place.
 * A temp file left by an interrupted transfer is named after the path and
 * content hash, so the next attempt asks only for blocks that do not
 * verify. Threads: the loop, except block_run() on the worker threads
 * (work.h), which touch only their job.
 */

#define FETCH_ACTIVE 64	    /* files being fetched at once */
#define FETCH_RETRY_MS 2000 /* a failed fetch is tried again after */
#define FETCH_COMMIT_MS 100 /* completed small files committed together */
#define FETCH_WORKERS 2	    /* threads verifying and writing blocks */
#define FETCH_JOBS 8	    /* blocks (1 MiB each) with them at most */
/* A block this small is verified and written on the loop: a hop to a worker
 * and back (a dup'ed fd, a wakeup each way) costs more than its hash */
#define FETCH_INLINE_MAX ((uint32_t)64 << 10)
/* a file of ours holding the wanted content is copied, on the loop, up to */
#define FETCH_LOCAL_MAX ((uint64_t)64 << 20)

#define FETCH_TMP_NAME_MAX 64 /* a temp file's name and its NUL fit */

enum fetch_state {
	FETCH_QUEUED = 0,
	FETCH_MANIFEST, /* manifest asked for */
	FETCH_BLOCKS,	/* blocks flowing */
	FETCH_CLOSING,	/* every block written; waiting to be committed */
};

struct fetch {
	struct fetch *next;
	struct rentry r;
	enum fetch_state state;
	int dirfd;	  /* the target's directory (O_PATH), -1 before opening */
	const char *name; /* last component, inside r.path */
	char tmpname[FETCH_TMP_NAME_MAX];
	int tmpfd;
	int dfd;      /* the temp file again with O_DIRECT, for whole blocks; -1: none */
	bool resumed; /* the temp file existed */
	bool update;  /* replaces a live file or link of ours */
	struct blocks_manifest *m;
	uint32_t manifest_req;
	uint32_t next_block;
	uint32_t inflight;
	uint32_t blocks_done;
	uint64_t bytes_done;
	uint64_t bytes_reused; /* already in the temp file */
	uint64_t start_ms;
	uint8_t *have;		/* block bitmap: verified in the temp file */
	uint64_t not_before_ms; /* queued for a retry: not before */
	unsigned jobs;		/* blocks with the workers */
	uint32_t gen;		/* bumped on a restart: older jobs' results are stale */
	bool dead;		/* freed but for its jobs */
	bool nospace;		/* its last write failed: the disk is full */
};

/* What the fetcher asks of its owner (the engine). */
struct fetch_ops {
	/* f is complete in its temp file (fsynced when synced): check it,
	 * set its metadata and rename it into place (the applier). 0, or
	 * -errno (-ESTALE: ours stays, the download is dropped; -EAGAIN: its
	 * directory is not at its path any more, it is fetched again). */
	int (*commit)(void *ud, struct fetch *f, bool synced);
	/* Fetches ended: record how far the peer's changes are applied. */
	void (*applied)(void *ud);
	/* More can be sent: pump everything (index, server, lazy, fetcher). */
	void (*pump)(void *ud);
};

/* Given at creation; the engine owns every pointer (they outlive the fetcher). */
struct fetch_ctx {
	struct index *idx;
	struct xfer *xfer;
	struct disk *disk;
	struct sync_link link;
	uint8_t *buf; /* scratch of ENGINE_MSG_BUF bytes, lent during a call */
	size_t buf_len;
	const struct fetch_ops *ops;
	void *ud;
	bool no_workers; /* verify and write blocks on the loop */
};

struct fetcher {
	struct fetch_ctx c;
	struct fetch *fetches; /* queued and active, in order */
	struct fetch *fetch_tail;
	unsigned nfetch;
	unsigned nfetch_update; /* of nfetch: replacing a live file of ours */
	unsigned nactive;
	struct fetch *closing; /* written, waiting for the next commit */
	uint64_t commit_due_ms;
	uint64_t retry_due_ms;
	uint64_t now_ms;   /* the loop's, as the last call was given it */
	int nospace_err;   /* -ENOSPC/-EDQUOT while a fetch waits for disk space, else 0 */
	bool nospace_lazy; /* the last block written into a placeholder found no space */
	uint64_t bytes_received;
	uint64_t refused;
	struct work *work;	     /* verifies and writes received blocks; NULL: the loop does */
	struct block_job *jobs_free; /* spare job buffers */
	unsigned njobs_free;
};

/* The name of the temp file that path's content hash is fetched into,
 * beside path: SCAN_TMP_PREFIX and 24 hex digits (scan_engine_tmp). */
void fetch_tmp_name(const char *path, size_t len, const uint8_t hash[static SYNC_HASH_LEN],
		    char out[static FETCH_TMP_NAME_MAX]);

/* 0 and *ret, or -ENOMEM. */
int fetcher_new(const struct fetch_ctx *c, struct fetcher **ret)
	__attribute__((warn_unused_result));
/* Stops the workers, drops every fetch (temp files stay for a resume). */
void fetcher_free(struct fetcher *fe);

/* Queues the peer's file r; update: it replaces a live file or link of ours
 * (for the counts in status). When a live file of ours (the index says
 * where) holds r's content (up to FETCH_LOCAL_MAX bytes), it is copied
 * into the temp file at once, verified, and committed as a download,
 * without asking the peer. 0 or -errno. */
int fetch_queue(struct fetcher *fe, const struct rentry *r, bool update, uint64_t now_ms);
/* The peer deleted r->path (r is its tombstone): a fetch of that path is
 * dropped and its temp file removed, and so is the temp file of r's
 * content that an interrupted download left (what they hold can never be
 * put in place now). dirfd: r's directory, or -1 (opened here). */
void fetch_forget(struct fetcher *fe, const struct rentry *r, int dirfd);
/* The peer's entry r for a path replaces its older ones there: a fetch of
 * an older entry of that path (queued, or complete and waiting for its
 * commit) is dropped with its temp file, but one of r's own content when r
 * is a live file (fetch_queue takes r's metadata into it). Whatever the
 * verdict on r: the peer no longer holds that version there, and its
 * commit would decide against what our path holds then, not against r. */
void fetch_supersede(struct fetcher *fe, const struct rentry *r);
/* Asks for what fits in the window and the connection. */
void fetch_pump(struct fetcher *fe, uint64_t now_ms);
/* Commits what is done and drops every fetch (the peer is gone, or syncing stopped). */
void fetch_on_down(struct fetcher *fe, uint64_t now_ms);
void fetch_tick(struct fetcher *fe, uint64_t now_ms);
uint64_t fetch_deadline(const struct fetcher *fe);
/* The lowest seq of the peer's changes not yet in place (0: none). */
uint64_t fetch_min_pending_seq(const struct fetcher *fe);
/* Whether anything is being fetched or waits for its commit. */
bool fetch_busy(const struct fetcher *fe);
void fetch_status(const struct fetcher *fe, json_t *transfers, uint64_t now_ms);
/* null, or while the disk holding the share is full {"files": pending
 * downloads, "error": the errno text}. */
json_t *fetch_disk_full(const struct fetcher *fe);
/* A write of path's content failed with r (-ENOSPC or -EDQUOT): the disk is
 * full (logged once). lazy: a placeholder's block (the lazy fetcher). */
void fetch_nospace_set(struct fetcher *fe, const char *path, int r, bool lazy);
/* A placeholder's block was written: the disk has room again for it. */
void fetch_nospace_lazy_clear(struct fetcher *fe);
/* The worker threads' results (work_fd); -1: no workers. */
int fetch_work_fd(const struct fetcher *fe);
void fetch_on_work(struct fetcher *fe, uint64_t now_ms);

#endif
