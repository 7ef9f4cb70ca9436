/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_ENGINE_INT_H
#define TANDEM_SYNC_ENGINE_INT_H

/* The engine's shared state: engine.c, apply.c, fetch.c and serve.c. */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "sync/blocks.h"
#include "sync/conflict.h"
#include "sync/engine.h"
#include "sync/index.h"
#include "sync/msg.h"
#include "sync/scan.h"
#include "sync/vv.h"
#include "sync/work.h"

/* Memory for the peer's entries held before applying (see engine.c): the
 * array of struct rentry and their strings. At the cap, what is held is
 * applied (docs/SYNC.md "Holding a burst"). */
#define ENGINE_BATCH_BYTES ((size_t)8 << 20)
#define ENGINE_ALLOC_OVERHEAD 16	    /* counted per string allocated */
#define ENGINE_SERVE_MAX 512		    /* requests from the peer waiting */
#define ENGINE_REQS_MAX 128		    /* our requests in flight */
#define ENGINE_WINDOW ((uint64_t)32 << 20)  /* block bytes we have asked for, not yet received */
#define ENGINE_FETCH_ACTIVE 64		    /* files being fetched at once */
#define ENGINE_SCAN_DELAY_MS 40		    /* quiet time after an inotify event */
#define ENGINE_RETRY_MS 2000		    /* a failed fetch is tried again after */
#define ENGINE_COMMIT_MS 100		    /* completed small files committed together */
#define ENGINE_WORKERS 2		    /* threads verifying and writing blocks */
#define ENGINE_JOBS 8			    /* blocks (1 MiB each) with them at most */
#define ENGINE_MSG_BUF (SYNC_BLOCK_DATA_HEADER_LEN + SYNC_BLOCK_MAX + 64)
#define LAZY_RETIRED_MAX 32		    /* replaced placeholders remembered */

/* A remote entry, held until its batch is applied (compact: no 8 KiB arrays). */
struct rentry {
	char *path; /* NUL-terminated copy, passed path_check() */
	size_t path_len;
	uint8_t kind; /* enum sync_kind */
	bool deleted;
	uint16_t mode;
	uint64_t size;
	int64_t mtime_ns;
	uint8_t hash[SYNC_HASH_LEN];
	char *target; /* symlinks: NUL-terminated, or NULL */
	size_t target_len;
	struct vv vv;
	uint64_t seq;
	bool defer; /* tried again after the batch's deletions */
	bool carry; /* kept for the next batch (apply_batch before INDEX_DONE) */
};

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
	int dirfd; /* the target's directory (O_PATH), -1 before opening */
	const char *name; /* last component, inside r.path */
	char tmpname[64];
	int tmpfd;
	int dfd; /* the temp file again with O_DIRECT, for whole blocks; -1: none */
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
	uint64_t rate_bps;
	uint64_t rate_mark_ms, rate_mark_bytes;
	uint8_t *have; /* block bitmap: verified in the temp file */
	uint64_t not_before_ms; /* queued for a retry: not before */
	unsigned jobs;		/* blocks with the workers */
	uint32_t gen;		/* bumped on a restart: older jobs' results are stale */
	bool dead;		/* freed but for its jobs */
	bool nospace;		/* its last write failed: the disk is full */
};

struct lazy_file;
struct ensure_wait;

struct req {
	uint32_t id; /* 0: slot free */
	struct fetch *f;
	struct lazy_file *lz; /* a lazy fetch's request (f is NULL) */
	uint32_t block;
	uint32_t len;
	bool manifest;
};

struct block_job;

struct serve_req {
	enum sync_msg_type type; /* BLOCK_REQUEST or MANIFEST_REQUEST */
	uint32_t req_id;
	char *path;
	size_t path_len;
	uint8_t hash[SYNC_HASH_LEN];
	uint32_t block;
	uint64_t offset;
	uint32_t len;
	uint32_t manifest_next; /* MANIFEST chunks: the next first */
	uint8_t *manifest;	/* decoded blob, for chunking */
	size_t manifest_len;
};

struct engine {
	struct engine_opts opts;
	struct engine_io io;
	struct index *idx;
	struct scan *scan;
	int rootfd;
	uint8_t self_dev[VV_DEVICE_LEN];
	char stopped[ENGINE_ERR_LEN]; /* "" while syncing */
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

	/* fetches */
	struct fetch *fetches; /* queued and active, in order */
	struct fetch *fetch_tail;
	unsigned nfetch;
	unsigned nfetch_update; /* of nfetch: replacing a live file of ours */
	unsigned nactive;
	struct fetch *closing; /* written, waiting for the next commit */
	uint64_t commit_due_ms;
	struct req reqs[ENGINE_REQS_MAX];
	unsigned nreqs;
	uint32_t next_req_id;
	uint64_t window; /* bytes requested, not yet received */
	uint64_t retry_due_ms;

	/* serving the peer */
	struct serve_req serve[ENGINE_SERVE_MAX];
	unsigned serve_head, serve_n;
	char *srv_path; /* the file held open for serving */
	uint8_t srv_hash[SYNC_HASH_LEN];
	int srv_fd;
	uint64_t rate_tokens;
	uint64_t rate_ms;
	uint64_t rate_due_ms;

	/* counters */
	uint64_t bytes_sent, bytes_received;
	uint64_t conflicts;
	uint64_t refused;
	int nospace_err; /* -ENOSPC/-EDQUOT while a fetch waits for disk space, else 0 */
	bool nospace_lazy; /* the last block written into a placeholder found no space */

	/*
	 * Lazy mode (lazy.c). Lock order: lz_mu is the only engine lock and is
	 * never held across a syscall. The table's structure and each file's
	 * have/nhave/used are written by the loop under lz_mu and read by FUSE
	 * threads under it; the loop reads them without it.
	 */
	pthread_mutex_t lz_mu;
	pthread_cond_t lz_cond;		 /* an ensure was answered; a caller left */
	struct lazy_file **lz_tab;	 /* LAZY_BUCKETS chains; protected by lz_mu */
	struct ensure_wait *lz_new;	 /* asked, not yet seen by the loop; protected by lz_mu */
	struct ensure_wait *lz_wait;	 /* seen, waiting for blocks; protected by lz_mu */
	bool lz_up;			 /* the peer can send; protected by lz_mu */
	bool lz_closing;		 /* engine_free runs; protected by lz_mu */
	unsigned lz_callers;		 /* threads inside engine_ensure; protected by lz_mu */
	int lz_efd;			 /* eventfd: lz_new has entries */
	struct lazy_file *lz_active;	 /* files with blocks wanted or in flight (loop) */
	uint64_t lz_bytes;		 /* present bytes of tracked files (loop) */
	uint64_t lz_moves;		 /* index_lazy_moves() last seen (loop) */
	uint64_t lz_persist_due_ms;	 /* lazy_persist_all() then; 0: nothing dirty waits */
	uint64_t lz_evict_due_ms;	 /* lazy_evict() again then; 0: under the limit */
	/* placeholders replaced or deleted while incomplete, newest last; a
	 * reader may still hold one open (ring; protected by lz_mu) */
	struct lazy_file *lz_retired[LAZY_RETIRED_MAX];
	unsigned lz_retired_next;

	uint8_t *buf; /* ENGINE_MSG_BUF bytes, for messages we build */
	struct work *work; /* verifies and writes received blocks; NULL: the loop does */
	struct block_job *jobs_free; /* spare job buffers */
	unsigned njobs_free;
};

/* A mode from the peer as it is applied here: within 0777, minus the mask. */
static inline uint16_t engine_peer_mode(const struct engine *e, uint32_t mode)
{
	return (uint16_t)(mode & 0777 & ~e->opts.mode_mask);
}

/* Nanoseconds since the epoch (may be negative) as a timespec. */
static inline struct timespec engine_ns_to_ts(int64_t ns)
{
	struct timespec t = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};

	if (t.tv_nsec < 0) {
		t.tv_nsec += 1000000000;
		t.tv_sec -= 1;
	}
	return t;
}

/* engine.c */
void engine_stop(struct engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int engine_send(struct engine *e, const uint8_t *msg, size_t len);
void engine_protocol_error(struct engine *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Records that remote changes up to what is safe are applied (in a transaction or not). */
int engine_store_applied(struct engine *e);
void rentry_free(struct rentry *r);
int rentry_copy(struct rentry *dst, const struct rentry *src);
void rentry_to_index(const struct rentry *r, struct index_entry *ret);
void entry_to_version(const struct index_entry *x, const uint8_t dev[static VV_DEVICE_LEN],
		      struct conflict_version *ret);

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
 * apply.c: the batch (e->batch), then frees it. final: the peer's
 * INDEX_DONE came; else the batch is only full (ENGINE_BATCH_BYTES), and
 * what waits for entries still to come (a directory to empty) is kept in
 * e->batch for the next call, within half the cap.
 */
void apply_batch(struct engine *e, bool final);
/* Writes a fetched file's metadata, fsyncs it (unless synced: the caller
 * made its data durable already) and renames it into place. */
int apply_commit_fetch(struct engine *e, struct fetch *f, bool synced);
/* Opens the directory of rel beneath the root (creating it); logs refusals. */
int apply_open_parent(struct engine *e, const char *rel, bool create, const char **ret_name);

/* Places a sparse placeholder for r (lazy mode; apply.c). */
int apply_place(struct engine *e, const struct rentry *r);

/* fetch.c */
struct req *fetch_req_new(struct engine *e);
void fetch_req_done(struct engine *e, struct req *q);
/* Queues the peer's file r; update: it replaces a live file or link of ours
 * (for the counts in status). */
int fetch_queue(struct engine *e, const struct rentry *r, bool update);
void fetch_pump(struct engine *e);
void fetch_on_manifest(struct engine *e, const struct sync_manifest *m);
void fetch_on_block(struct engine *e, const struct sync_block_data *b);
void fetch_on_error(struct engine *e, const struct sync_block_error *b);
void fetch_on_down(struct engine *e);
void fetch_tick(struct engine *e, uint64_t now);
void fetch_free_all(struct engine *e);
uint64_t fetch_min_pending_seq(const struct engine *e);
void fetch_status(struct engine *e, json_t *transfers);
/* null, or while the disk holding the share is full {"files": pending
 * downloads, "error": the errno text}. */
json_t *fetch_disk_full(const struct engine *e);
/* A write of path's content failed with r (-ENOSPC or -EDQUOT): the disk is
 * full (logged once). */
void fetch_nospace_set(struct engine *e, const char *path, int r);
/* Ends the full-disk state when nothing waits for space any more. */
void fetch_nospace_update(struct engine *e);
void fetch_on_work(struct engine *e);
void fetch_work_stop(struct engine *e);

/* lazy.c (lazy mode; every function on the loop thread) */
/* lazy_init: the lock, at once after calloc; lazy_open: the table, after the index. */
void lazy_init(struct engine *e);
int lazy_open(struct engine *e);
void lazy_done(struct engine *e);
/* Tracks path as a placeholder of content hash (no block present), the
 * file ino. 0 or -errno. */
int lazy_track(struct engine *e, const char *path, size_t len, const uint8_t *hash, uint64_t size,
	       uint64_t ino);
/* apply.c is about to replace or delete the file at path: if it is an
 * incomplete placeholder, its inode and present blocks are kept for the
 * readers that have it open (engine_ensure answers them). */
void lazy_retire(struct engine *e, const char *path);
/* apply.c deleted the file at path: a placeholder there is forgotten. */
void lazy_gone(struct engine *e, const char *path);
/* Whether path with content hash is tracked and not complete (never served). */
bool lazy_partial(struct engine *e, const char *path, const uint8_t *hash);
/* Reloads the table when renames moved rows in the index (cheap when not). */
void lazy_check_moves(struct engine *e);
/* The timer of lazy_persist_all(). */
void lazy_tick(struct engine *e, uint64_t now_ms);
/* apply.c moved the file at from to to (a local move instead of a fetch):
 * its placeholder mark, if any, moves with it; one at to is dropped. */
int lazy_moved(struct engine *e, const char *from, size_t from_len, const char *to,
	       size_t to_len);
void lazy_on_up(struct engine *e);
void lazy_on_down(struct engine *e);
void lazy_pump(struct engine *e);
void lazy_on_manifest(struct engine *e, struct req *q, const struct sync_manifest *m);
void lazy_on_block(struct engine *e, struct req *q, const struct sync_block_data *b);
void lazy_on_error(struct engine *e, struct req *q, const struct sync_block_error *b);

/* serve.c */
int serve_on_request(struct engine *e, const struct sync_msg *m);
void serve_on_cancel(struct engine *e, uint32_t req_id);
void serve_pump(struct engine *e);
void serve_on_down(struct engine *e);

#endif
