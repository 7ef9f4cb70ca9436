/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_SCAN_INT_H
#define TANDEM_SYNC_SCAN_INT_H

/*
 * Private to the scanner (scan.c, scan_walk.c, scan_hash.c, scan_map.c) and
 * its unit test. The design note is in scan.h.
 */

#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "base/map.h"
#include "sync/scan.h"

#define SCAN_QUEUE_MAX 64    /* jobs handed to the hasher thread at once */
#define SCAN_WARNED_MAX 4096 /* special files remembered as already logged */
#define SCAN_SYNC_TRIES 3    /* scan_path_now: hashes of a file that keeps changing */
#define SCAN_NAMED_MAX 8192  /* paths named by events held for the next scan; more: walks */

/* One inotify watch: its directory (share-relative, "" for the root). */
struct scan_wd {
	int wd;
	bool dirty;
	unsigned gen; /* the full scan that last (re)added it */
	char *path;
	size_t len;
};

/* A file to hash, and then its result. */
struct scan_job {
	struct scan_job *next;
	char *path; /* NUL-terminated, len bytes */
	size_t len;
	uint64_t size_hint; /* for scan_stats */
	int err;	    /* result: 0, -EAGAIN (changed while hashed), -errno */
	struct stat st;	    /* result: the file as hashed */
	uint8_t hash[INDEX_HASH_LEN];
	uint8_t *blob; /* result: blocks_manifest_encode() form */
	size_t blob_len;
};

typedef void (*scan_hook_fn)(const char *path, void *userdata);

/* Lock order: lock is a leaf; never held across a syscall but the eventfd write. */
struct scan_hasher {
	pthread_t thread;
	bool started;
	int rootfd; /* borrowed from struct scan */
	int efd;    /* eventfd: results waiting */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct scan_job *jobs, *jobs_tail; /* protected by lock */
	unsigned njobs;			   /* protected by lock */
	struct scan_job *done, *done_tail; /* protected by lock */
	bool stop;			   /* protected by lock */
	scan_hook_fn hook;		   /* protected by lock; tests only */
	void *hook_ud;			   /* protected by lock */
};

struct scan {
	struct index *idx;
	char *root;
	char root_q[128];
	int rootfd; /* O_PATH|O_DIRECTORY */
	dev_t root_dev;
	ino_t root_ino;
	int ifd; /* inotify */
	int root_wd;
	struct map wds; /* wd (an int's bytes) -> struct scan_wd *, owned here */
	size_t ndirty; /* entries of wds with dirty set */
	/*
	 * Files an event named (a path -> its watch's wd): the next scan looks
	 * at each of them alone instead of walking their directory, unless
	 * that directory is dirty anyway (scan_walk.c, queue_named).
	 */
	struct map named;
	uint64_t walked; /* directories walked since scan_new (tests, the debug log) */
	unsigned gen;
	bool full;
	bool watch_warned;
	struct scan_hasher h;
	struct scan_job *backlog, *backlog_tail; /* not yet handed to the hasher */
	struct map inflight;			 /* paths queued or being hashed (a set) */
	uint64_t pend_files, pend_bytes;
	struct map warned;	   /* special files already logged (a set) */
	struct index_entry e, e2;  /* scratch, about 8 KiB each */
	scan_placeholder_fn placeholder;
	void *placeholder_ud;
	scan_moved_fn moved;
	void *moved_ud;
	bool hash_inline; /* scan_set_hash_inline: no hasher thread at work */
	scan_held_fn held; /* scan_set_held_check */
	void *held_ud;
	struct map deferred; /* files left unpublished (a set of paths) */
	bool retry;	     /* scan_retry_held: the next walk looks at them again */
	struct map gone;       /* held deletions: path -> struct gone (scan_gone.c) */
	uint64_t gone_last_ms; /* when the newest of them was found */
	uint64_t gone_due_ms;  /* when the next is due (scan_deadline); UINT64_MAX: none */
};

/*
 * e is path's live entry and st its disk state: if path is a placeholder
 * (scan_set_placeholder_check) with e's size, records st's metadata with
 * e's hash and returns the changes (>= 0); -ENOENT when it is not one (hash
 * it), other -errno on an index error.
 */
int scan_placeholder_meta(struct scan *s, const char *path, size_t len, const struct stat *st,
			  struct index_entry *e);

/*
 * st (at path, not path's entry's inode; live: path's entry is live) is a
 * placeholder the user moved here (scan_set_moved_check): records path
 * with the content it stands for, or its deletion when the placeholder had
 * to go. Returns the changes, -ENOENT when it is not one (hash it), other
 * -errno. Uses s->e.
 */
int scan_moved_placeholder(struct scan *s, const char *path, size_t len, const struct stat *st,
			   bool live);

/* scan_map.c */
struct scan_wd *scan_wdmap_get(struct map *m, int wd);
int scan_wdmap_set(struct map *m, int wd, const char *path, size_t len, struct scan_wd **ret);
void scan_wdmap_del(struct map *m, int wd);
/* The next watch of a walk (*pos = 0 first), or NULL; no changes meanwhile. */
struct scan_wd *scan_wdmap_next(struct map *m, size_t *pos);
void scan_wdmap_done(struct map *m);

/* scan_hash.c */
int scan_hasher_start(struct scan_hasher *h, int rootfd);
void scan_hasher_stop(struct scan_hasher *h);
/* Hands j over; -EAGAIN when SCAN_QUEUE_MAX jobs are waiting (j untouched). */
int scan_hasher_push(struct scan_hasher *h, struct scan_job *j);
/* Takes every finished job (a list), after draining the eventfd. */
struct scan_job *scan_hasher_take(struct scan_hasher *h);
/* Hashes j->path beneath rootfd on this thread, filling j's result fields. */
void scan_hash_job(int rootfd, struct scan_job *j);
void scan_job_free(struct scan_job *j);
/* Tests: fn runs on the hasher thread after each file is read, before the re-stat. */
void scan_set_hash_hook(struct scan *s, scan_hook_fn fn, void *userdata);

/* scan_gone.c: held deletions (scan.h). e is a live entry found gone from
 * disk at now_ms: held, 0, or -ENOMEM. */
int scan_gone_hold(struct scan *s, const struct index_entry *e, uint64_t now_ms);
/* Records the deletions that are due at now_ms and still gone, inside the
 * caller's transaction, after its root check. Changes or -errno. */
int scan_gone_release(struct scan *s, uint64_t now_ms);
/* Forgets every held deletion (the root is gone). */
void scan_gone_drop(struct scan *s);

/* scan_walk.c: the scan itself. Returns changes or -errno (err set). */
int scan_walk_run(struct scan *s, uint64_t now_ms, struct err *err);

/* scan.c helpers shared with scan_walk.c */
enum index_type scan_kind(const struct stat *st); /* 0: special file */
static inline int64_t scan_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}
bool scan_unchanged(const struct index_entry *e, const struct stat *st);
/* e is live with hash and st's size, mtime and mode: only the stat identity moved. */
bool scan_same_content(const struct index_entry *e, const struct stat *st, const uint8_t *hash);
/* A live entry that is missing from disk on purpose: the peer's symlink out
 * of the share that was not made here (apply.c refuse_symlink). Its absence
 * is no deletion. */
bool scan_off_disk(const struct index_entry *e);
void scan_entry_init(struct index_entry *e, const char *path, size_t len, const struct stat *st);
int scan_lstat(struct scan *s, const char *path, struct stat *ret);
int scan_check_root(struct scan *s, struct err *err);
/* Watches the directory open as dirfd (path in the share). Returns its wd or -1. */
int scan_watch(struct scan *s, int dirfd, const char *path, size_t len);
void scan_warn_special(struct scan *s, const char *path, size_t len);
int scan_delete_tree(struct scan *s, const char *path, size_t len);
int scan_apply(struct scan *s, const char *path, size_t len, const struct stat *st, bool now,
	       struct err *err);
int scan_enqueue(struct scan *s, const char *path, size_t len, uint64_t size);
/* Whether the changed file at path (st) stays unpublished for now
 * (scan_set_held_check); if so it is remembered for scan_retry_held(). */
bool scan_defer(struct scan *s, const char *path, size_t len, const struct stat *st);
void scan_feed(struct scan *s);

#endif
