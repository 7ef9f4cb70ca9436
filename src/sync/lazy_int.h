/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_LAZY_INT_H
#define TANDEM_SYNC_LAZY_INT_H

/* Private to lazy.c (the table, the ensure seam) and lazy_fetch.c (blocks, the cache limit). */

#include <stdbool.h>
#include <stdint.h>

#include "sync/engine_int.h"

#define LAZY_BUCKETS 4096
#define LAZY_READAHEAD ((uint64_t)4 << 20)
#define LAZY_READAHEAD_MAX ((uint64_t)64 << 20) /* for a sequential reader */
#define LAZY_EVICT_AGE_MS 3000 /* a file ensured this recently is being read */
#define LAZY_PERSIST_MS 5000	/* presence bitmaps of unfinished files: this often */
#define LAZY_EVICT_RETRY_MS 2000 /* still over the cache limit: evict again after this */

struct lazy_file {
	struct lazy_file *hnext; /* bucket chain; protected by lz_mu */
	char *path;
	size_t path_len;
	uint8_t hash[SYNC_HASH_LEN];
	uint64_t size;	  /* <= BLOCKS_FILE_MAX: file_new refuses more */
	uint64_t nblocks; /* blocks_count(size) */
	uint8_t *have;	/* presence bitmap; protected by lz_mu (loop reads freely) */
	uint64_t nhave; /* protected by lz_mu */
	uint64_t used;	/* mono ms of the last ensure; protected by lz_mu */
	/* the loop's own */
	struct lazy_file *anext; /* e->lz_active */
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
};

struct ensure_wait {
	struct ensure_wait *next; /* in lz_new or lz_wait; protected by lz_mu */
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

/* lazy.c: the table. The loop calls these, except where they say otherwise. */
/* path's file, or NULL. Caller holds lz_mu, or is the loop. */
struct lazy_file *lazy_find(struct engine *e, const char *path);
uint64_t lazy_present_bytes(const struct lazy_file *z);
/* Answers waiters whose range is present; fail: those on fail_path (NULL: all) get -EIO. */
void lazy_wake(struct engine *e, bool fail, const char *fail_path);
/* Closes z's fd and takes it off the active list. */
void lazy_deactivate(struct engine *e, struct lazy_file *z);
/* Writes z's bitmap to the index after fdatasync of its data. */
void lazy_persist(struct engine *e, struct lazy_file *z);
/* Persists every dirty file's bitmap after one syncfs of the store. */
void lazy_persist_all(struct engine *e);
/* Drops z from the table and the index (its path changed). */
void lazy_forget(struct engine *e, struct lazy_file *z);

/* lazy_fetch.c */
static inline uint64_t lazy_evict_age_ms(const struct engine *e)
{
	return e->opts.evict_age_ms ? e->opts.evict_age_ms : LAZY_EVICT_AGE_MS;
}

/* Empties clean files, least recently ensured first, until under cache_max. */
void lazy_evict(struct engine *e);

#endif
