/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_LAZY_INT_H
#define TANDEM_SYNC_LAZY_INT_H

/*
 * The lazy table (lazy.c): every placeholder the engine placed, with its
 * presence bitmap, and the ensure seam FUSE threads call. The lazy fetcher
 * (lazy_fetch.h) is its client on the loop. The design note is in lazy.c.
 *
 * Threads and the lock. mu is the table's only lock (and the engine's
 * only one), never held across a syscall; nothing else is taken under it.
 * FUSE threads (lazy_ensure, lazy_ensure_stop) touch only the fields
 * marked "protected by mu", under it. The loop writes those under mu and
 * reads them without it (it is their only writer); every other field is
 * the loop's alone. The lazy fetcher uses the table through the functions
 * below, and works on the loop's fields of a file (want, asked, inflight,
 * m, fd, dirty) on the loop too.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "base/map.h"
#include "sync/blocks.h"
#include "sync/disk.h"
#include "sync/index.h"
#include "sync/msg.h"
#include "sync/scan.h"
#include "sync/xfer.h"

#define LAZY_READAHEAD ((uint64_t)4 << 20)
#define LAZY_READAHEAD_MAX ((uint64_t)64 << 20) /* for a sequential reader */
#define LAZY_EVICT_AGE_MS 3000 /* a file ensured this recently is being read */
#define LAZY_PERSIST_MS 5000	/* presence bitmaps of unfinished files: this often */
#define LAZY_EVICT_RETRY_MS 2000 /* still over the cache limit: evict again after this */
#define LAZY_RETIRED_MAX 32	  /* replaced placeholders remembered */

struct lazy_file {
	char *path;
	size_t path_len;
	uint8_t hash[SYNC_HASH_LEN];
	uint64_t size;	  /* <= BLOCKS_FILE_MAX: file_new refuses more */
	uint64_t nblocks; /* blocks_count(size) */
	uint8_t *have;	/* presence bitmap; protected by mu (loop reads freely) */
	uint64_t nhave; /* protected by mu */
	uint64_t used;	/* mono ms of the last ensure; protected by mu */
	/* the loop's own */
	struct lazy_file *anext; /* lazy->active */
	bool active;
	uint8_t *want;	/* blocks to fetch */
	uint8_t *asked; /* blocks in flight */
	uint32_t inflight;
	struct blocks_manifest *m;
	uint32_t manifest_req;
	int fd; /* O_RDWR while active, else -1 */
	uint64_t ino; /* the placeholder's inode, 0: not known yet */
	bool dirty; /* have not yet persisted */
	bool seen;  /* lazy_reload: the row is still there */
	uint64_t ra;	/* readahead now: doubles while the reads are sequential */
	uint64_t ra_end; /* end of what the last ensure asked for */
	char *moved_from; /* the user moved it here from there (moved_check), or NULL */
};

struct ensure_wait {
	struct ensure_wait *next; /* in new or wait; protected by mu */
	const char *path;	  /* the caller's, valid while it waits */
	uint64_t ino;		  /* the caller's file, 0: not known */
	uint64_t off, len;
	int result;
	bool done;
};

static inline bool lazy_bit_get(const uint8_t *b, uint64_t i)
{
	return (b[i / 8] >> (i % 8)) & 1;
}

static inline void lazy_bit_set(uint8_t *b, uint64_t i)
{
	b[i / 8] |= (uint8_t)(1U << (i % 8));
}

static inline void lazy_bit_clear(uint8_t *b, uint64_t i)
{
	b[i / 8] &= (uint8_t)~(1U << (i % 8));
}

/* Given at creation; the engine owns every pointer. */
struct lazy_ctx {
	bool on; /* lazy mode; false: an empty table, lazy_ensure answers 0 */
	struct index *idx;
	struct scan *scan;
	struct disk *disk;
	struct xfer *xfer; /* requests of a file forgotten are dropped here */
	int rootfd;
};

struct lazy {
	struct lazy_ctx c;
	pthread_mutex_t mu;
	pthread_cond_t cond;	     /* an ensure was answered; a caller left */
	struct map tab;		     /* path -> struct lazy_file; protected by mu */
	struct ensure_wait *new;     /* asked, not yet seen by the loop; protected by mu */
	struct ensure_wait *wait;    /* seen, waiting for blocks; protected by mu */
	bool up;		     /* the peer can send; protected by mu */
	bool closing;		     /* lazy_ensure_stop ran; protected by mu */
	unsigned callers;	     /* threads inside lazy_ensure; protected by mu */
	int efd;		     /* eventfd: new has entries */
	/* placeholders replaced or deleted while incomplete, newest last; a
	 * reader may still hold one open (ring; protected by mu) */
	struct lazy_file *retired[LAZY_RETIRED_MAX];
	unsigned retired_next;
	/* the loop's */
	struct lazy_file *active; /* files with blocks wanted or in flight */
	uint64_t bytes;		  /* present bytes of tracked files */
	uint64_t moves;		  /* index_lazy_moves() last seen */
	uint64_t persist_due_ms;  /* lazy_persist_all() then; 0: nothing dirty waits */
	uint64_t now_ms;	  /* the loop's, as the last call was given it */
};

/* The table: its lock and cond at once; its files after the index (lazy
 * mode). 0 and *ret, or -errno (*ret is then set anyway, for lazy_free). */
int lazy_new(const struct lazy_ctx *c, struct lazy **ret) __attribute__((warn_unused_result));
/* Stops the ensures, waits for the threads inside lazy_ensure to leave,
 * persists the bitmaps and frees everything. */
void lazy_free(struct lazy *lz);

/* engine_ensure() (engine.h), on a FUSE thread. */
int lazy_ensure(struct lazy *lz, const char *path, const struct stat *st, uint64_t off,
		uint64_t len, int timeout_ms);
int lazy_ensure_fd(const struct lazy *lz);
/* Any thread: ensures waiting and to come fail at once. */
void lazy_ensure_stop(struct lazy *lz);
/* The loop: takes the ensures waiting (the eventfd) and marks their ranges wanted. */
void lazy_on_ensure(struct lazy *lz, uint64_t now_ms);

/* Tracks path as a placeholder of content hash (no block present), the
 * file ino. 0 or -errno. */
int lazy_track(struct lazy *lz, const char *path, size_t len, const uint8_t *hash, uint64_t size,
	       uint64_t ino);
/* The applier is about to replace or delete the file at path: if it is an
 * incomplete placeholder, its inode and present blocks are kept for the
 * readers that have it open (lazy_ensure answers them). */
void lazy_retire(struct lazy *lz, const char *path);
/* The peer's entry for path says it no longer has the version of content
 * hash the user moved away from there (our entry: deleted): a placeholder
 * of it left at path is retired, one the user moved elsewhere is removed
 * (its content can never come) and its deletion recorded. */
void lazy_version_gone(struct lazy *lz, const char *path, const uint8_t *hash);
/* The applier deleted the file at path: a placeholder there is forgotten. */
void lazy_gone(struct lazy *lz, const char *path);
/* Whether path with content hash is tracked and not complete (never served). */
bool lazy_partial(struct lazy *lz, const char *path, const uint8_t *hash);
/* Whether a placeholder not complete is tracked beneath the directory path. */
bool lazy_partial_beneath(struct lazy *lz, const char *path, size_t len);
/* Reloads the table when renames moved rows in the index (cheap when not). */
void lazy_check_moves(struct lazy *lz);
/* The applier moved the file at from to to (a local move instead of a
 * fetch): its placeholder mark, if any, moves with it; one at to is dropped. */
int lazy_moved(struct lazy *lz, const char *from, size_t from_len, const char *to,
	       size_t to_len);
void lazy_on_up(struct lazy *lz);
/* The peer is gone: drops what is wanted and in flight, persists, fails the waiters. */
void lazy_on_down(struct lazy *lz);
/* The timer of lazy_persist_all(). */
uint64_t lazy_deadline(const struct lazy *lz);
void lazy_tick(struct lazy *lz, uint64_t now_ms);

/* For the lazy fetcher (loop). */
/* The first file with blocks wanted or in flight (then z->anext), or NULL. */
struct lazy_file *lazy_active(struct lazy *lz);
/* Present bytes of the tracked files. */
uint64_t lazy_bytes(const struct lazy *lz);
/* Some bitmaps are dirty: lazy_persist_all() within LAZY_PERSIST_MS. */
void lazy_persist_later(struct lazy *lz);
/* Calls fn for every tracked file until it returns non-zero (that value);
 * fn must not change the table. 0 when it went through. */
int lazy_foreach(struct lazy *lz, int (*fn)(struct lazy_file *z, void *ud), void *ud);
/* path's file, or NULL. Caller holds mu, or is the loop. */
struct lazy_file *lazy_find(struct lazy *lz, const char *path);
uint64_t lazy_present_bytes(const struct lazy_file *z);
/* Marks block i of z present (verified and written). */
void lazy_mark(struct lazy *lz, struct lazy_file *z, uint64_t i);
/* Marks no block of z present (before its data is punched out). */
void lazy_unmark_all(struct lazy *lz, struct lazy_file *z);
/* When z was last ensured (mono ms), read under mu. */
uint64_t lazy_used(struct lazy *lz, const struct lazy_file *z);
/* Answers waiters whose range is present; fail: those on fail_path (NULL: all) get -EIO. */
void lazy_wake(struct lazy *lz, bool fail, const char *fail_path);
/* Closes z's fd and takes it off the active list. */
void lazy_deactivate(struct lazy *lz, struct lazy_file *z);
/* Writes z's bitmap to the index after fdatasync of its data. */
void lazy_persist(struct lazy *lz, struct lazy_file *z);
/* Persists every dirty file's bitmap after one syncfs of the store. */
void lazy_persist_all(struct lazy *lz);
/* Drops z from the table and the index (its path changed). */
void lazy_forget(struct lazy *lz, struct lazy_file *z);

#endif
