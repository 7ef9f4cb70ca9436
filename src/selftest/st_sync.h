/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ST_SYNC_H
#define TANDEM_ST_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "selftest.h"
#include "st_daemon.h"
#include "st_proxy.h"

/*
 * The sync scenarios (suites "sync" and "slow") and their helpers.
 *
 * A scenario works on a pair: two daemons paired with each other, side 0
 * ("a", ana) and side 1 ("b", ben). Each side has a kind: when FUSE can be
 * used (st_fuse.h), side a is a mount (`up --mount`) and side b a plain
 * directory (`up --dir`), so every scenario that changes both sides runs
 * mount -> dir and dir -> mount; else both are plain directories. A scenario
 * body never builds a path itself: it goes through st_pair_path() and the
 * other st_pair_* helpers. While a mount side's daemon is not running, its
 * paths are those of its store (STATE/store), all that exists of its share
 * then, so changes "made while that peer is down" land where the daemon
 * finds them at start. A scenario that needs a plain directory on one side
 * (the share root removed) says so with st_pair_need_dir().
 *
 * Convergence is the daemons' word and ours: both report sync_state "idle"
 * and both trees compare equal (st_tree_*: type, content hash, mode & 0777,
 * mtime in ns for files and symlinks, symlink targets; directory mtimes are
 * not compared; the root's ".tandem" marker and ".tandem-tmp-*" downloads
 * are ignored).
 *
 * Every wait honours the scenario's deadline. Not thread-safe: one
 * scenario thread, except where a function says otherwise.
 */

enum st_side_kind {
	ST_SIDE_DIR = 0,
	ST_SIDE_MOUNT = 1,
};

#define ST_PATH_MAX 1024

struct st_pair {
	struct st_peer peer[2];
	enum st_side_kind kind[2];
	char stage[512];	 /* scratch dir outside both shares, same file system */
	const char *rate_bps[2]; /* TANDEM_TEST_RATE_BPS of each side's daemon, or NULL */
	const char *up_extra[2]; /* one more argument for side's `tandem up`, or NULL */
	bool allow_errors[2];	 /* error lines in this side's log are expected */
	bool stale[2];		 /* a mount side killed: its dead mount is expected */
	const char *listen[2];	 /* --listen of each side's daemon (NULL: [::1]:0) */
	const char *advertise[2]; /* TANDEM_TEST_ADVERTISE of each side, or NULL */
	const char *relay_after_ms[2]; /* TANDEM_TEST_RELAY_AFTER_MS of each side, or NULL */
	struct st_proxy *proxy;	 /* between them (st_pair_start_proxied), or NULL */
};

/* "a" or "b". */
const char *st_side_name(int side);

/* Identities, homes, shares and the stage dir; nothing runs yet. tag makes
 * the names unique when a scenario uses several pairs ("" or "2"...).
 * Returns 0 or -1 (noted). */
int st_pair_make(struct st_env *env, struct st_pair *p, const char *tag);
/* The same with two plain directories, whatever FUSE can do. */
int st_pair_make_dirs(struct st_env *env, struct st_pair *p, const char *tag);

/* Starts side's daemon (with its rate knob). Returns 0 or -1 (noted). */
int st_pair_up(struct st_env *env, struct st_pair *p, int side);
/* st_pair_make + both up + connected and idle within ms. Returns 0 or -1. */
int st_pair_start(struct st_env *env, struct st_pair *p, const char *tag, unsigned ms);
/*
 * A pair (mount: st_pair_make, else st_pair_make_dirs) whose connection
 * runs through a fault proxy seeded with seed, in p->proxy: side b listens
 * on [::1] and publishes the proxy's address instead (TANDEM_TEST_ADVERTISE),
 * side a accepts nothing (--listen none) and so dials the proxy, which
 * forwards to b's listener. So ST_PROXY_AB is a's bytes to b. Both up,
 * connected and idle within ms; st_pair_cleanup frees the proxy. (b's
 * listener is on a new port each time b starts: after a restart of b,
 * st_proxy_set_target again.) Returns 0 or -1 (noted).
 */
int st_pair_start_proxied(struct st_env *env, struct st_pair *p, const char *tag, bool mount,
			  uint64_t seed, unsigned ms);
/* Clean stop of side's daemon (tandem down). Returns 0 or -1 (noted). */
int st_pair_down(struct st_env *env, struct st_pair *p, int side);
/* SIGKILL side's daemon and reap it. */
void st_pair_kill(struct st_env *env, struct st_pair *p, int side);
/* Stops what runs, checks both logs (sanitizer reports always fail; error
 * lines fail unless allow_errors), dumps the log ends when the scenario
 * failed. For the end of every scenario. */
void st_pair_cleanup(struct st_env *env, struct st_pair *p);

/* Skips unless side is a plain directory (returns ST_SKIP), else 0. */
int st_pair_need_dir(struct st_env *env, const struct st_pair *p, int side, const char *why);

/* The path of rel (share-relative, "" for the root) on side, in out.
 * Returns out, or NULL when it does not fit. */
const char *st_pair_path(const struct st_pair *p, int side, const char *rel,
			 char out[static ST_PATH_MAX]);

/* Removes a path on side recursively (files, links, dirs). Returns 0 or -errno. */
int st_pair_rm(const struct st_pair *p, int side, const char *rel);
/* Writes len bytes to rel on side in place (O_TRUNC, mode 0644). Returns 0 or -errno. */
int st_pair_write(const struct st_pair *p, int side, const char *rel, const void *data,
		  size_t len);
/* Appends. Returns 0 or -errno. */
int st_pair_append(const struct st_pair *p, int side, const char *rel, const char *text);
/* Sets the mtime of rel on side (no symlink follow). Returns 0 or -errno. */
int st_pair_set_mtime(const struct st_pair *p, int side, const char *rel, int64_t sec, long nsec);
/* Reads rel on side into buf (at most cap-1 bytes, NUL-terminated).
 * Returns the length, or -errno. */
ssize_t st_pair_read(const struct st_pair *p, int side, const char *rel, char *buf, size_t cap);
/* Whether rel exists on side (lstat). */
bool st_pair_exists(const struct st_pair *p, int side, const char *rel);
/*
 * Makes rel on side a random file of size bytes from seed, so that it never
 * appears half-written there: written in the stage dir, then renamed into
 * the share (on a mount side: copied to a temp file beside rel, renamed). hash (may be NULL) gets its BLAKE2b-256. Returns 0 or -errno.
 */
int st_pair_put_random(const struct st_pair *p, int side, const char *rel, uint64_t seed,
		       uint64_t size, uint8_t hash[32]);

/*
 * The conflict copies of rel on side: the names beside it of the form
 * "STEM.sync-conflict-YYYYMMDD-HHMMSS-PEER.EXT" for rel "STEM.EXT" (PEER:
 * letters and digits). Returns how many there are and puts the first one
 * (share-relative) in first, or -errno.
 */
int st_pair_conflicts(const struct st_pair *p, int side, const char *rel,
		      char first[static ST_PATH_MAX]);
/* Entries on side whose name holds ".sync-conflict-", or -errno. */
int st_pair_conflicts_all(const struct st_pair *p, int side);

/* The status of side's daemon over its control socket (json_decref it), or
 * NULL when it does not answer. */
json_t *st_pair_status(struct st_env *env, const struct st_pair *p, int side);
/* An integer member of o, or def when absent or not an integer. */
int64_t st_jint(json_t *o, const char *key, int64_t def);
/* Whether o's string member key equals want. */
bool st_jstr_is(json_t *o, const char *key, const char *want);

typedef bool (*st_status_pred)(json_t *st, const void *arg);
/* Polls side's status until pred holds or ms passed (or the deadline).
 * Returns that status (json_decref it) or NULL, noting the last one seen. */
json_t *st_pair_status_wait(struct st_env *env, const struct st_pair *p, int side,
			    st_status_pred pred, const void *arg, unsigned ms, const char *what);

/* bytes_done of the download of path in status st, or -1. */
int64_t st_download_done(json_t *st, const char *path);
/* An st_status_pred: the download of path has at least bytes done. */
struct st_file_bytes {
	const char *path;
	int64_t bytes;
};
bool st_has_received(json_t *st, const void *arg /* struct st_file_bytes */);
/* The MiB peer's log says it reused for path ("received "P": N MiB in T ms
 * (R MiB reused from an interrupted transfer)", files of 16 MiB or more),
 * or -1. */
long long st_reused_mib(const struct st_peer *peer, const char *path);

/* A snapshot of a share. */
struct st_tree;

/* Scans root. prev (may be NULL) is an older snapshot of the same root
 * whose content hashes are reused for files whose inode, size, mtime and
 * ctime did not change; so are those of big files (1 MiB or more) seen by
 * any earlier scan. Returns NULL when the tree changed under the scan or
 * cannot be read. */
struct st_tree *st_tree_scan(const char *root, const struct st_tree *prev);
void st_tree_free(struct st_tree *t);
size_t st_tree_count(const struct st_tree *t);
/*
 * Compares the entries of x and y whose paths are prefix or lie under it
 * (prefix NULL or "": all). With env, notes up to 8 differences, naming
 * the trees xname and yname. Returns true when they are equal.
 */
bool st_tree_equal(struct st_env *env, const struct st_tree *x, const struct st_tree *y,
		   const char *prefix, const char *xname, const char *yname);
/* Entries whose last component holds needle. */
size_t st_tree_count_name(const struct st_tree *t, const char *needle);
/* Snapshot of side (NULL on failure). */
struct st_tree *st_pair_tree(const struct st_pair *p, int side, const struct st_tree *prev);
/* The tree of side as the expected state after a change: st_pair_tree()
 * again until one scan goes through (a scan fails when the engine changes
 * another part of the tree under it), for up to 5 s; NULL then, noted. */
struct st_tree *st_pair_snapshot(struct st_env *env, const struct st_pair *p, int side);

/* One change made on side from, to be seen on the other side. */
struct st_expect {
	int from;
	const char *prefix;	 /* the part of the share the change is in */
	struct st_tree *want;	 /* from's tree right after the change */
	uint64_t reached_ms;	 /* out: ms until the other side showed it (0: never) */
};

/*
 * Waits, at most ms (and the deadline), until both daemons are idle, both
 * trees are equal, and each expectation holds on both sides; records when
 * each expectation was first seen on the receiving side. Returns the ms it
 * took, or -1 with the differences noted.
 */
int64_t st_wait_converged(struct st_env *env, struct st_pair *p, struct st_expect *exp, size_t n,
			  unsigned ms);

/* BLAKE2b-256 of a file; size (may be NULL) gets its size. Returns 0 or -errno. */
int st_hash_file(const char *path, uint8_t hash[32], uint64_t *size);
/* Writes size random bytes from seed to path (O_EXCL), hash as above.
 * Returns 0 or -errno. */
int st_write_random(const char *path, uint64_t seed, uint64_t size, uint8_t hash[32]);
/* Peak resident set of pid in KiB (VmHWM), or -1. */
long st_vmhwm_kib(pid_t pid);
/* Whether this binary (and so every daemon) runs under AddressSanitizer. */
bool st_sanitized(void);
/*
 * The bound for a change to reach the other side: 2000 ms, times 3
 * in a sanitizer build (which runs the same code several times slower).
 */
unsigned st_latency_max_ms(void);
/* Sleeps ms, or less when the deadline is nearer. */
void st_sleep_ms(struct st_env *env, unsigned ms);

/* Scenarios (st_scenarios.c registers them). */
int st_sync_changes(struct st_env *env);
int st_sync_first_contact(struct st_env *env);
int st_sync_offline(struct st_env *env);
int st_sync_rename_dir(struct st_env *env);
int st_sync_rename_dir_big(struct st_env *env);
int st_sync_large_file(struct st_env *env);
int st_sync_resume(struct st_env *env);
int st_sync_resume_big(struct st_env *env);
int st_chan_rekey(struct st_env *env);
int st_sync_status(struct st_env *env);
int st_sync_conflict(struct st_env *env);
int st_sync_root_gone(struct st_env *env);
int st_sync_overflow(struct st_env *env);
int st_sync_1gib(struct st_env *env);
int st_sync_4gib(struct st_env *env);
int st_lazy_ensure(struct st_env *env);
/* st_chaos.c: the pair through the fault proxy (suite chaos) */
int st_chaos_latency(struct st_env *env);
int st_chaos_bandwidth(struct st_env *env);
int st_chaos_partition(struct st_env *env);
int st_chaos_reset(struct st_env *env);
int st_chaos_bitflip(struct st_env *env);
int st_chaos_halfclose(struct st_env *env);
int st_chaos_truncate(struct st_env *env);
int st_chaos_stall(struct st_env *env);
int st_chaos_latency_mount(struct st_env *env);
int st_chaos_bandwidth_mount(struct st_env *env);
int st_chaos_reset_mount(struct st_env *env);
int st_chaos_halfclose_mount(struct st_env *env);
int st_chaos_truncate_mount(struct st_env *env);
int st_chaos_stall_mount(struct st_env *env);
int st_chaos_partition_mount(struct st_env *env);
int st_chaos_bitflip_mount(struct st_env *env);

/* Suite chaos-big (slow): each of the above plus a file of this size made
 * on side a while the fault is on (st_chaos.c, st_chaos_host.c). */
#define ST_CHAOS_HUGE_SIZE (64ULL << 20)
int st_chaos_big_latency(struct st_env *env);
int st_chaos_big_bandwidth(struct st_env *env);
int st_chaos_big_partition(struct st_env *env);
int st_chaos_big_reset(struct st_env *env);
int st_chaos_big_bitflip(struct st_env *env);
int st_chaos_big_halfclose(struct st_env *env);
int st_chaos_big_truncate(struct st_env *env);
int st_chaos_big_stall(struct st_env *env);
int st_chaos_big_latency_mount(struct st_env *env);
int st_chaos_big_bandwidth_mount(struct st_env *env);
int st_chaos_big_partition_mount(struct st_env *env);
int st_chaos_big_reset_mount(struct st_env *env);
int st_chaos_big_bitflip_mount(struct st_env *env);
int st_chaos_big_halfclose_mount(struct st_env *env);
int st_chaos_big_truncate_mount(struct st_env *env);
int st_chaos_big_stall_mount(struct st_env *env);

#endif
