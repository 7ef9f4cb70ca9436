/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Chaos scenarios, faults off the network: a daemon killed (SIGKILL) at a
 * random point of a transfer, the relay stopped and started again, the
 * receiver's disk full, the sender's file rewritten while it is sent, one
 * peer's clock an hour ahead.
 *
 * Every scenario runs the same small mixed workload on both sides, each in
 * its own directory ("a/" on side a, "b/" on side b, so no edit is ever
 * concurrent and no conflict copy may appear): creates, appends, same-size
 * rewrites, renames, deletes, and one file of a few MiB. Every random
 * choice (which side, which delay) comes from one st_rand seeded with the
 * scenario's seed (`selftest --seed` replays it). The end is always
 * the same: both trees equal (content hashes, modes, mtimes), each side's
 * changes there as it made them (nothing lost, nothing resurrected), no
 * conflict copy, both daemons alive, connected and idle; the fault
 * counters are noted.
 *
 * Suite chaos-big runs each of them with one more file in the workload:
 * "huge.bin" of ST_CHAOS_HUGE_SIZE, made on side a during the changes (on
 * the sender for disk-full, where it is what overflows the disk), checked
 * like the others.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"
#include "st_chaos_host.h"
#include "st_fuse.h"
#include "st_rand.h"
#include "st_sync.h"

#define MIB (1024ULL * 1024)
#define START_MS 10000
#define CONVERGE_MS 60000
#define HUGE_CONVERGE_MS 600000 /* the scenario's deadline comes first */
#define BASE_FILES 8
#define BIG_SIZE (4 * MIB)
#define RATE "4194304"	    /* 4 MiB/s: the big file takes about a second */
#define SLOW_RATE "4194304" /* 4 MiB/s: a rewrite lands while the file is sent */
#define DISK_SIZE "6m"	    /* the receiver's small file system */
#define DISK_FREED "64m"    /* ... once space is freed */
#define HUGE_FREED "192m"   /* ... with a huge file on its way */
#define FULL_SIZE (8 * MIB) /* more than it holds */
#define SKEW_S 3600

static const char *const side_dir[2] = {"a", "b"};

/* The scenario's own seed (selftest --seed replays it). */
static uint64_t chaos_seed(struct st_env *env)
{
	st_note(env, "chaos seed: %" PRIu64 " (the scenario's)", env->seed);
	return env->seed;
}

/* Random text of len bytes (len < cap). */
static void rand_text(struct st_rand *rnd, char *buf, size_t len)
{
	static const char abc[] = "abcdefghijklmnopqrstuvwxyz0123456789 \n";

	for (size_t i = 0; i < len; i++)
		buf[i] = abc[st_rand_below(rnd, sizeof(abc) - 1)];
}

static int put_text(const struct st_pair *p, int side, const char *rel, struct st_rand *rnd,
		    size_t len)
{
	char buf[8192];

	if (len > sizeof(buf))
		len = sizeof(buf);
	rand_text(rnd, buf, len);
	return st_pair_write(p, side, rel, buf, len);
}

/* Each side's own directory with BASE_FILES small files f0..f7. */
static int wl_base(struct st_env *env, struct st_pair *p, struct st_rand *rnd)
{
	char path[ST_PATH_MAX], rel[64];

	for (int s = 0; s < 2; s++) {
		if (!st_pair_path(p, s, side_dir[s], path) || mkdir(path, 0755) < 0) {
			st_note(env, "cannot make %s: %s", path, strerror(errno));
			return -1;
		}
		for (int i = 0; i < BASE_FILES; i++) {
			snprintf(rel, sizeof(rel), "%s/f%d", side_dir[s], i);
			if (put_text(p, s, rel, rnd, 100 + st_rand_below(rnd, 4000)) < 0) {
				st_note(env, "cannot write %s on %s", rel, st_side_name(s));
				return -1;
			}
		}
	}
	return 0;
}

/*
 * Round r (0 or 1) of mixed changes in side's own directory: two new
 * files, an append, a same-size rewrite, a rename and a delete; with big,
 * also a new random file of big bytes ("big.bin", its hash in hash).
 * Returns 0 or -1 (noted).
 */
static int wl_mix(struct st_env *env, struct st_pair *p, int side, int r, struct st_rand *rnd,
		  uint64_t big, uint8_t hash[32])
{
	const char *d = side_dir[side];
	char rel[64], rel2[64], from[ST_PATH_MAX], to[ST_PATH_MAX], buf[8192];
	ssize_t n;
	int b = 4 * (r & 1);

	for (int i = 0; i < 2; i++) {
		snprintf(rel, sizeof(rel), "%s/new%d-%d", d, r, i);
		if (put_text(p, side, rel, rnd, 1 + st_rand_below(rnd, 6000)) < 0)
			goto fail;
	}
	snprintf(rel, sizeof(rel), "%s/f%d", d, b);
	rand_text(rnd, buf, 200);
	buf[200] = '\0';
	if (st_pair_append(p, side, rel, buf) < 0)
		goto fail;
	snprintf(rel, sizeof(rel), "%s/f%d", d, b + 1);
	n = st_pair_read(p, side, rel, buf, sizeof(buf));
	if (n <= 0 || put_text(p, side, rel, rnd, (size_t)n) < 0)
		goto fail;
	snprintf(rel, sizeof(rel), "%s/f%d", d, b + 2);
	snprintf(rel2, sizeof(rel2), "%s/moved%d", d, b + 2);
	if (!st_pair_path(p, side, rel, from) || !st_pair_path(p, side, rel2, to) ||
	    rename(from, to) < 0)
		goto fail;
	snprintf(rel, sizeof(rel), "%s/f%d", d, b + 3);
	if (st_pair_rm(p, side, rel) < 0)
		goto fail;
	if (big) {
		snprintf(rel, sizeof(rel), "%s/big.bin", d);
		if (st_pair_put_random(p, side, rel, st_rand_next(rnd), big, hash) < 0)
			goto fail;
	}
	return 0;
fail:
	st_note(env, "round %d of changes on %s failed at %s: %s", r, st_side_name(side), rel,
		strerror(errno));
	return -1;
}

/* With huge, side's huge.bin of that size (its hash in hash); else nothing. */
static int wl_huge(struct st_env *env, struct st_pair *p, int side, struct st_rand *rnd,
		   uint64_t huge, uint8_t hash[32])
{
	char rel[64];
	int r;

	if (!huge)
		return 0;
	snprintf(rel, sizeof(rel), "%s/huge.bin", side_dir[side]);
	r = st_pair_put_random(p, side, rel, st_rand_next(rnd), huge, hash);
	if (r < 0) {
		st_note(env, "cannot make %s on %s: %s", rel, st_side_name(side), strerror(-r));
		return -1;
	}
	st_note(env, "%s made on %s (%s), %" PRIu64 " bytes", rel, st_side_name(side),
		p->kind[side] == ST_SIDE_MOUNT ? "a mount" : "a directory", huge);
	return 0;
}

/* Side s's tree as it made it, to be seen on both sides. */
static int want_one(struct st_env *env, struct st_pair *p, struct st_expect exp[2], int s)
{
	st_tree_free(exp[s].want);
	exp[s] = (struct st_expect){.from = s, .prefix = side_dir[s]};
	exp[s].want = st_pair_snapshot(env, p, s);
	return exp[s].want ? 0 : -1;
}

static int want_both(struct st_env *env, struct st_pair *p, struct st_expect exp[2])
{
	return want_one(env, p, exp, 0) < 0 || want_one(env, p, exp, 1) < 0 ? -1 : 0;
}

static void want_free(struct st_expect exp[2])
{
	for (int s = 0; s < 2; s++) {
		st_tree_free(exp[s].want);
		exp[s].want = NULL;
	}
}

static int tmp_count;

static int count_tmp(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (!strncmp(path + ftw->base, ".tandem-tmp-", 12))
		tmp_count++;
	return 0;
}

/* Downloads' temp files left on side (in its store for a mount), or -1. */
static int tmp_files(const struct st_pair *p, int side)
{
	char root[ST_PATH_MAX];

	if (p->kind[side] == ST_SIDE_MOUNT)
		snprintf(root, sizeof(root), "%s/state/store", p->peer[side].home);
	else if (!st_pair_path(p, side, "", root))
		return -1;
	tmp_count = 0;
	return nftw(root, count_tmp, 8, FTW_PHYS) == 0 ? tmp_count : -1;
}

/*
 * The end of every scenario: converged with both sides' changes, no
 * conflict copy, no temp file left, both daemons alive and connected.
 */
static void chaos_end(struct st_env *env, struct st_pair *p, struct st_expect exp[2], bool huge)
{
	int64_t took =
		st_wait_converged(env, p, exp, exp ? 2 : 0, huge ? HUGE_CONVERGE_MS : CONVERGE_MS);

	st_note(env, "converged after %lld ms", (long long)took);
	ST_CHECK(env, took >= 0);
	for (int s = 0; s < 2; s++) {
		int c = st_pair_conflicts_all(p, s);
		if (c != 0)
			st_note(env, "%s holds %d conflict copies", st_side_name(s), c);
		ST_CHECK(env, c == 0);
		ST_CHECK(env, p->peer[s].pid > 0 && kill(p->peer[s].pid, 0) == 0);
		if (took < 0)
			continue;
		int t = tmp_files(p, s);
		if (t != 0)
			st_note(env, "%s holds %d temp files after converging", st_side_name(s), t);
		ST_CHECK(env, t == 0);
	}
}

static int pair_make(struct st_env *env, struct st_pair *p, bool mount)
{
	const char *why;

	if (mount && (why = st_fuse_unusable()) != NULL)
		return st_skip(env, "no mount<->dir pairing here: %s", why);
	if ((mount ? st_pair_make(env, p, "") : st_pair_make_dirs(env, p, "")) < 0) {
		st_note(env, "the pair was not made");
		return ST_FAIL;
	}
	return 0;
}

static int pair_up_both(struct st_env *env, struct st_pair *p)
{
	if (st_pair_up(env, p, 0) < 0 || st_pair_up(env, p, 1) < 0 ||
	    st_wait_converged(env, p, NULL, 0, START_MS) < 0) {
		st_note(env, "the pair did not start and become idle");
		return -1;
	}
	return 0;
}

/* Base files on both sides, synced. */
static int base_synced(struct st_env *env, struct st_pair *p, struct st_rand *rnd)
{
	if (wl_base(env, p, rnd) < 0 || st_wait_converged(env, p, NULL, 0, CONVERGE_MS) < 0) {
		st_note(env, "the base files did not sync");
		return -1;
	}
	return 0;
}

/*
 * A thread that hashes one file over and over and sorts what it saw:
 * absent, a known good version, or anything else (half-written: a failure).
 * Errors other than ENOENT (a mount being restarted) are not counted.
 */
struct watch {
	char path[ST_PATH_MAX];
	uint8_t good[32];
	atomic_bool stop;
	unsigned absent, whole, bad;
	uint64_t bad_size;
	pthread_t thread;
	bool running;
};

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	uint8_t h[32];
	uint64_t size;

	while (!atomic_load(&w->stop)) {
		int e = st_hash_file(w->path, h, &size);
		if (e == -ENOENT)
			w->absent++;
		else if (e == 0 && !memcmp(h, w->good, 32))
			w->whole++;
		else if (e == 0 && !w->bad++)
			w->bad_size = size;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void watch_start(struct st_env *env, struct watch *w, const struct st_pair *p, int side,
			const char *rel, const uint8_t good[32])
{
	memset(w, 0, sizeof(*w));
	st_pair_path(p, side, rel, w->path);
	memcpy(w->good, good, 32);
	atomic_init(&w->stop, false);
	w->running = pthread_create(&w->thread, NULL, watch_main, w) == 0;
	ST_CHECK(env, w->running);
}

static void watch_stop(struct st_env *env, struct watch *w, const char *what)
{
	if (!w->running)
		return;
	atomic_store(&w->stop, true);
	pthread_join(w->thread, NULL);
	w->running = false;
	st_note(env, "%s seen: %u times absent, %u times whole, %u times otherwise", what,
		w->absent, w->whole, w->bad);
	if (w->bad)
		st_note(env, "a half-written file of %" PRIu64 " bytes was visible", w->bad_size);
	ST_CHECK(env, w->bad == 0);
}

static bool hash_is(const struct st_pair *p, int side, const char *rel, const uint8_t want[32])
{
	char path[ST_PATH_MAX];
	uint8_t got[32];

	return st_pair_path(p, side, rel, path) && st_hash_file(path, got, NULL) == 0 &&
	       !memcmp(got, want, 32);
}

/* With huge: from's huge.bin whole on both sides. */
static void huge_check(struct st_env *env, const struct st_pair *p, int from, uint64_t huge,
		       const uint8_t hash[32])
{
	char rel[64];

	if (!huge)
		return;
	snprintf(rel, sizeof(rel), "%s/huge.bin", side_dir[from]);
	for (int s = 0; s < 2; s++)
		ST_CHECK(env, hash_is(p, s, rel, hash));
}

/* ---- chaos-kill ---- */

static int chaos_kill(struct st_env *env, bool mount, uint64_t huge)
{
	struct st_rand rnd;
	struct st_pair p;
	struct st_expect exp[2] = {{0}};
	struct watch w = {0};
	uint8_t hash[32], huge_hash[32];
	char rel[64];
	int r;

	st_rand_seed(&rnd, chaos_seed(env));
	r = pair_make(env, &p, mount);
	if (r)
		return r;
	p.rate_bps[0] = p.rate_bps[1] = RATE;
	if (pair_up_both(env, &p) < 0 || base_synced(env, &p, &rnd) < 0) {
		ST_CHECK(env, !"the pair started with its base files");
		goto out;
	}
	int sender = (int)st_rand_below(&rnd, 2), victim = (int)st_rand_below(&rnd, 2);
	/* the big file takes about a second at RATE: most kills land in it */
	unsigned delay = (unsigned)st_rand_below(&rnd, 900),
		 down = (unsigned)st_rand_below(&rnd, 800);

	if (wl_huge(env, &p, 0, &rnd, huge, huge_hash) < 0 ||
	    wl_mix(env, &p, 1 - sender, 0, &rnd, 0, NULL) < 0 ||
	    wl_mix(env, &p, sender, 0, &rnd, BIG_SIZE, hash) < 0)
		goto fail;
	uint64_t t_big = st_now_ms();
	snprintf(rel, sizeof(rel), "%s/big.bin", side_dir[sender]);
	watch_start(env, &w, &p, 1 - sender, rel, hash);
	if (want_both(env, &p, exp) < 0)
		goto fail;
	if (st_now_ms() - t_big < delay)
		st_sleep_ms(env, (unsigned)(delay - (st_now_ms() - t_big)));
	delay = (unsigned)(st_now_ms() - t_big);
	json_t *st = st_pair_status(env, &p, 1 - sender);
	int64_t got = st_jint(st, "bytes_received", -1);
	json_decref(st);
	st_pair_kill(env, &p, victim);
	bool there = hash_is(&p, 1 - sender, rel, hash);
	st_note(env,
		"faults: SIGKILL to %s (%s) %u ms after the big file was made, %s (the big file "
		"%s) "
		"after %lld bytes received; restarted %u ms later",
		st_side_name(victim), victim == sender ? "the sender" : "the receiver", delay,
		there ? "after the transfer" : "mid-transfer", there ? "there" : "not there yet",
		(long long)got, down);
	/* the survivor goes on changing its own files meanwhile */
	if (wl_mix(env, &p, 1 - victim, 1, &rnd, 0, NULL) < 0)
		goto fail;
	st_sleep_ms(env, down);
	ST_CHECK(env, st_pair_up(env, &p, victim) == 0);
	if (want_both(env, &p, exp) < 0)
		goto fail;
	chaos_end(env, &p, exp, huge);
	watch_stop(env, &w, "the receiver's big.bin");
	ST_CHECK(env, hash_is(&p, 1 - sender, rel, hash));
	huge_check(env, &p, 0, huge, huge_hash);
	goto out;
fail:
	ST_CHECK(env, !"the workload ran");
out:
	watch_stop(env, &w, "the receiver's big.bin");
	want_free(exp);
	st_pair_cleanup(env, &p);
	return ST_PASS;
}

int st_chaos_kill_dir(struct st_env *env)
{
	return chaos_kill(env, false, 0);
}

int st_chaos_kill_mount(struct st_env *env)
{
	return chaos_kill(env, true, 0);
}

/* ---- chaos-relay-restart ---- */

static bool relay_fine(json_t *st, const void *arg)
{
	(void)arg;
	return json_is_null(json_object_get(st, "relay_error")) &&
	       st_jstr_is(st, "state", "connected");
}

static int chaos_relay_restart(struct st_env *env, bool mount, uint64_t huge)
{
	struct st_rand rnd;
	struct st_pair p;
	struct st_expect exp[2] = {{0}};
	uint8_t hash[32], huge_hash[32];
	bool stopped = false;
	int r;

	st_rand_seed(&rnd, chaos_seed(env));
	r = pair_make(env, &p, mount);
	if (r)
		return r;
	p.rate_bps[0] = p.rate_bps[1] = RATE;
	if (pair_up_both(env, &p) < 0 || base_synced(env, &p, &rnd) < 0) {
		ST_CHECK(env, !"the pair started with its base files");
		goto out;
	}
	int sender = (int)st_rand_below(&rnd, 2);
	unsigned delay = (unsigned)st_rand_below(&rnd, 800);
	unsigned down = 500 + (unsigned)st_rand_below(&rnd, 2000);

	if (wl_huge(env, &p, 0, &rnd, huge, huge_hash) < 0)
		goto fail;
	for (int s = 0; s < 2; s++)
		if (wl_mix(env, &p, s, 0, &rnd, s == sender ? BIG_SIZE : 0, hash) < 0)
			goto fail;
	st_sleep_ms(env, delay);
	relay_server_stop(env->relay);
	stopped = true;
	/* both sides go on changing while the relay is away */
	for (int s = 0; s < 2; s++)
		if (wl_mix(env, &p, s, 1, &rnd, 0, NULL) < 0)
			goto fail;
	st_sleep_ms(env, down);
	ST_CHECK(env, relay_server_start(env->relay) == 0);
	stopped = false;
	const char *url = relay_server_url(env->relay, 0);
	ST_CHECK(env, url && !strcmp(url, env->relay_url));
	env->faults++;
	st_note(env, "faults: relay stopped %u ms into the changes, started again after %u ms",
		delay, down);
	if (want_both(env, &p, exp) < 0)
		goto fail;
	chaos_end(env, &p, exp, huge);
	char rel[64];
	snprintf(rel, sizeof(rel), "%s/big.bin", side_dir[sender]);
	ST_CHECK(env, hash_is(&p, 1 - sender, rel, hash));
	huge_check(env, &p, 0, huge, huge_hash);
	/* and both publish to the relay again */
	for (int s = 0; s < 2; s++) {
		json_t *st = st_pair_status_wait(env, &p, s, relay_fine, NULL, 15000,
						 "without a relay error");
		ST_CHECK(env, st != NULL);
		st_note(env, "%s: %lld reconnects", st_side_name(s),
			(long long)st_jint(st, "reconnects", -1));
		json_decref(st);
	}
	goto out;
fail:
	ST_CHECK(env, !"the workload ran");
out:
	if (stopped)
		ST_CHECK(env, relay_server_start(env->relay) == 0);
	want_free(exp);
	st_pair_cleanup(env, &p);
	return ST_PASS;
}

int st_chaos_relay_restart_dir(struct st_env *env)
{
	return chaos_relay_restart(env, false, 0);
}

int st_chaos_relay_restart_mount(struct st_env *env)
{
	return chaos_relay_restart(env, true, 0);
}

/* ---- chaos-disk-full ---- */

static bool disk_full(json_t *st, const void *arg)
{
	(void)arg;
	return st_jint(json_object_get(st, "disk_full"), "files", 0) > 0;
}

static bool disk_fine(json_t *st, const void *arg)
{
	(void)arg;
	return json_is_null(json_object_get(st, "disk_full"));
}

static int chaos_disk_full(struct st_env *env, bool fuse, uint64_t huge)
{
	struct st_rand rnd;
	struct st_pair p;
	struct st_expect exp[2] = {{0}};
	struct watch w = {0};
	struct st_proc_out out;
	uint8_t hash[32], huge_hash[32];
	char root[ST_PATH_MAX], big[64];
	bool mounted = false;
	int r;

	st_rand_seed(&rnd, chaos_seed(env));
	r = pair_make(env, &p, fuse);
	if (r)
		return r;
	/*
	 * The receiver's share on a file system of DISK_SIZE made for the test:
	 * b's directory, or with FUSE the store behind a's mount (a mount
	 * receiving, a directory sending).
	 */
	int rx = fuse ? 0 : 1, tx = 1 - rx;
	const char *rxn = st_side_name(rx);
	if (p.kind[rx] == ST_SIDE_MOUNT)
		snprintf(root, sizeof(root), "%s/state/store", p.peer[rx].home);
	else
		snprintf(root, sizeof(root), "%s", p.peer[rx].dir);
	snprintf(big, sizeof(big), "%s/big.bin", side_dir[tx]);
	if (mount("tandem-chaos", root, "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=" DISK_SIZE ",mode=0755") < 0) {
		r = errno;
		st_pair_cleanup(env, &p);
		return st_skip(env, "cannot mount a small tmpfs for the share: %s", strerror(r));
	}
	mounted = true;
	if (pair_up_both(env, &p) < 0 || base_synced(env, &p, &rnd) < 0) {
		ST_CHECK(env, !"the pair started with its base files");
		goto out;
	}
	for (int s = 0; s < 2; s++)
		if (wl_mix(env, &p, s, 0, &rnd, 0, NULL) < 0)
			goto fail;
	if (st_wait_converged(env, &p, NULL, 0, CONVERGE_MS) < 0 || want_both(env, &p, exp) < 0)
		goto fail;
	/* the sender sends more than the receiver's disk holds, and small files */
	if (wl_mix(env, &p, tx, 1, &rnd, FULL_SIZE, hash) < 0 ||
	    wl_huge(env, &p, tx, &rnd, huge, huge_hash) < 0)
		goto fail;
	watch_start(env, &w, &p, rx, big, hash);
	/* only the sender changes now (a mount receiver's placeholder of the
	 * big file cannot be read while the disk is full: no snapshot of it) */
	if (want_one(env, &p, exp, tx) < 0)
		goto fail;
	json_t *st =
		st_pair_status_wait(env, &p, rx, disk_full, NULL, 20000, "aware of the full disk");
	ST_CHECK(env, st != NULL);
	json_t *df = json_object_get(st, "disk_full");
	st_note(env, "%s's disk_full: %lld files wait, %s", rxn,
		(long long)st_jint(df, "files", -1),
		json_string_value(json_object_get(df, "error")) ?: "(no error text)");
	json_decref(st);
	const char *argv[] = {"--home", p.peer[rx].home, "status", NULL};
	ST_CHECK(env, st_run_tandem(env, &out, argv) == 0);
	if (!strstr(out.out, "the disk holding the share is full"))
		st_note(env, "%s's status says: %s", rxn, out.out);
	ST_CHECK(env, strstr(out.out, "the disk holding the share is full") != NULL);
	ST_CHECK(env, strstr(out.out, "free space to resume") != NULL);
	/* a mount lists the peer's file at once (a placeholder: its reads
	 * give the content or EIO, the watch checks that), a directory only
	 * once it is whole */
	if (p.kind[rx] == ST_SIDE_DIR)
		ST_CHECK(env, !st_pair_exists(&p, rx, big));
	/* free space: it resumes by itself, with the blocks already in its temp file */
	st = st_pair_status(env, &p, rx);
	int64_t recv_full = st_jint(st, "bytes_received", -1);
	json_decref(st);
	const char *freed = huge ? HUGE_FREED : DISK_FREED;
	char opts[32];
	snprintf(opts, sizeof(opts), "size=%s", freed);
	ST_CHECK(env, mount("tandem-chaos", root, "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV,
			    opts) == 0);
	env->faults++;
	st_note(env, "faults: %s's share filled up (%s) by a %llu MiB file%s, then grew to %s", rxn,
		DISK_SIZE, (unsigned long long)(FULL_SIZE / MIB), huge ? " and the huge one" : "",
		freed);
	chaos_end(env, &p, exp, huge);
	watch_stop(env, &w, "the receiver's big.bin");
	ST_CHECK(env, hash_is(&p, rx, big, hash));
	huge_check(env, &p, tx, huge, huge_hash);
	st = st_pair_status(env, &p, rx);
	st_note(env,
		"%s received %lld bytes after space was freed, for files of %llu (the "
		"blocks in its temp files were kept)",
		rxn, (long long)(st_jint(st, "bytes_received", -1) - recv_full),
		(unsigned long long)(FULL_SIZE + huge));
	ST_CHECK(env, st_jint(st, "bytes_received", -1) - recv_full < (int64_t)(FULL_SIZE + huge));
	json_decref(st);
	st = st_pair_status_wait(env, &p, rx, disk_fine, NULL, 5000, "without a full disk");
	ST_CHECK(env, st != NULL);
	json_decref(st);
	goto out;
fail:
	ST_CHECK(env, !"the workload ran");
out:
	watch_stop(env, &w, "the receiver's big.bin");
	want_free(exp);
	st_pair_cleanup(env, &p);
	if (mounted && umount2(root, MNT_DETACH) < 0)
		st_note(env, "cannot unmount %s: %s", root, strerror(errno));
	return ST_PASS;
}

int st_chaos_disk_full_dir(struct st_env *env)
{
	return chaos_disk_full(env, false, 0);
}

/* The mount side receives: its store is the small file system. */
int st_chaos_disk_full_mount(struct st_env *env)
{
	return chaos_disk_full(env, true, 0);
}

/* ---- chaos-changing-file ---- */

/* Rewrites rel on side in place, 256 KiB at a time with a pause between,
 * with size bytes from rnd. Returns 0 or -errno. */
static int rewrite_slowly(struct st_env *env, const struct st_pair *p, int side, const char *rel,
			  uint64_t size, struct st_rand *rnd)
{
	enum { CHUNK = 256 * 1024 };
	char path[ST_PATH_MAX];
	uint64_t *buf = malloc(CHUNK);
	int fd, r = 0;

	if (!buf || !st_pair_path(p, side, rel, path)) {
		free(buf);
		return -ENOMEM;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		free(buf);
		return r;
	}
	for (uint64_t off = 0; off < size && r == 0; off += CHUNK) {
		size_t len = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
		for (size_t i = 0; i < CHUNK / 8; i++)
			buf[i] = st_rand_next(rnd);
		if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
			r = -EIO;
		st_sleep_ms(env, 10 + (unsigned)st_rand_below(rnd, 30));
	}
	if (ftruncate(fd, (off_t)size) < 0 && r == 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	free(buf);
	return r;
}

static int chaos_changing_file(struct st_env *env, bool mount, uint64_t huge)
{
	struct st_rand rnd;
	struct st_pair p;
	struct st_expect exp[2] = {{0}};
	uint8_t hash[32], final[32], huge_hash[32];
	char rel[64], path[ST_PATH_MAX];
	int r, rewrites;

	st_rand_seed(&rnd, chaos_seed(env));
	r = pair_make(env, &p, mount);
	if (r)
		return r;
	int sender = (int)st_rand_below(&rnd, 2);
	p.rate_bps[sender] = SLOW_RATE;
	if (pair_up_both(env, &p) < 0 || base_synced(env, &p, &rnd) < 0) {
		ST_CHECK(env, !"the pair started with its base files");
		goto out;
	}
	json_t *st = st_pair_status(env, &p, 1 - sender);
	int64_t recv0 = st_jint(st, "bytes_received", -1);
	json_decref(st);
	for (int s = 0; s < 2; s++)
		if (wl_mix(env, &p, s, 0, &rnd, s == sender ? BIG_SIZE : 0, hash) < 0)
			goto fail;
	/* while big.bin is on its way, its sender rewrites it in place, again and
	 * again, the last time a bit longer */
	snprintf(rel, sizeof(rel), "%s/big.bin", side_dir[sender]);
	rewrites = 2 + (int)st_rand_below(&rnd, 3);
	for (int k = 0; k < rewrites; k++) {
		st_sleep_ms(env, 100 + (unsigned)st_rand_below(&rnd, 400));
		uint64_t size = k + 1 < rewrites ? BIG_SIZE : BIG_SIZE + 100000;
		if (rewrite_slowly(env, &p, sender, rel, size, &rnd) < 0)
			goto fail;
		/* a's huge file after the first rewrite: big.bin is already on its way */
		if (k == 0 && wl_huge(env, &p, 0, &rnd, huge, huge_hash) < 0)
			goto fail;
	}
	env->faults += (uint64_t)rewrites;
	st_note(env, "faults: %s rewrote %s %d times while sending it", st_side_name(sender), rel,
		rewrites);
	ST_CHECK(env, st_pair_path(&p, sender, rel, path) && st_hash_file(path, final, NULL) == 0);
	if (want_both(env, &p, exp) < 0)
		goto fail;
	chaos_end(env, &p, exp, huge);
	ST_CHECK(env, hash_is(&p, 1 - sender, rel, final));
	huge_check(env, &p, 0, huge, huge_hash);
	st = st_pair_status(env, &p, 1 - sender);
	st_note(env, "%s received %lld bytes of content meanwhile, for a final file of %llu",
		st_side_name(1 - sender), (long long)(st_jint(st, "bytes_received", -1) - recv0),
		(unsigned long long)(BIG_SIZE + 100000));
	json_decref(st);
	goto out;
fail:
	ST_CHECK(env, !"the workload ran");
out:
	want_free(exp);
	st_pair_cleanup(env, &p);
	return ST_PASS;
}

int st_chaos_changing_file_dir(struct st_env *env)
{
	return chaos_changing_file(env, false, 0);
}

int st_chaos_changing_file_mount(struct st_env *env)
{
	return chaos_changing_file(env, true, 0);
}

/* ---- chaos-clock-skew ---- */

/* Sets the mtime of every file under side's own dir SKEW_S into the future,
 * as that side's clock would have made them. */
static int skew_mtimes(const struct st_pair *p, int side)
{
	char rel[64];
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	for (int r = 0; r < 2; r++)
		for (int i = 0; i < 2; i++) {
			snprintf(rel, sizeof(rel), "%s/new%d-%d", side_dir[side], r, i);
			if (st_pair_exists(p, side, rel) &&
			    st_pair_set_mtime(p, side, rel, now.tv_sec + SKEW_S, now.tv_nsec) < 0)
				return -1;
		}
	for (int i = 0; i < 2; i++) {
		snprintf(rel, sizeof(rel), "%s/%s", side_dir[side], i ? "huge.bin" : "big.bin");
		if (st_pair_exists(p, side, rel) &&
		    st_pair_set_mtime(p, side, rel, now.tv_sec + SKEW_S, 123456789) < 0)
			return -1;
	}
	return 0;
}

static int chaos_clock_skew(struct st_env *env, bool mount, uint64_t huge)
{
	struct st_rand rnd;
	struct st_pair p;
	struct st_expect exp[2] = {{0}};
	uint8_t hash[32], huge_hash[32];
	int r;

	st_rand_seed(&rnd, chaos_seed(env));
	r = pair_make(env, &p, mount);
	if (r)
		return r;
	/*
	 * a's clock is an hour ahead: it publishes its relay record in the next
	 * hour's bucket. b accepts no connections, so they pair only if b finds
	 * a's record.
	 */
	setenv("TANDEM_TEST_CLOCK_OFFSET_S", "3600", 1);
	r = st_pair_up(env, &p, 0);
	unsetenv("TANDEM_TEST_CLOCK_OFFSET_S");
	if (r < 0 || st_peer_up(env, &p.peer[1], p.peer[0].fp, "none") < 0 ||
	    st_wait_converged(env, &p, NULL, 0, START_MS) < 0) {
		ST_CHECK(env, !"the pair started and became idle");
		goto out;
	}
	env->faults++;
	st_note(env, "faults: a's clock %d s ahead; paired", SKEW_S);
	if (base_synced(env, &p, &rnd) < 0) {
		ST_CHECK(env, !"the base files synced");
		goto out;
	}
	if (wl_huge(env, &p, 0, &rnd, huge, huge_hash) < 0)
		goto fail;
	for (int s = 0; s < 2; s++)
		if (wl_mix(env, &p, s, 0, &rnd, s == 0 ? BIG_SIZE : 0, hash) < 0)
			goto fail;
	if (skew_mtimes(&p, 0) < 0)
		goto fail;
	/* trees compare mtimes to the ns: a's future ones arrive as sent */
	if (want_both(env, &p, exp) < 0)
		goto fail;
	chaos_end(env, &p, exp, huge);
	ST_CHECK(env, hash_is(&p, 1, "a/big.bin", hash));
	huge_check(env, &p, 0, huge, huge_hash);
	goto out;
fail:
	ST_CHECK(env, !"the workload ran");
out:
	want_free(exp);
	st_pair_cleanup(env, &p);
	return ST_PASS;
}

int st_chaos_clock_skew_dir(struct st_env *env)
{
	return chaos_clock_skew(env, false, 0);
}

int st_chaos_clock_skew_mount(struct st_env *env)
{
	return chaos_clock_skew(env, true, 0);
}

/* Suite chaos-big: the same, with a huge file (see the top). */
#define CHAOS_BIG(name, run, mount)                                                                \
	int st_chaos_big_##name(struct st_env *env)                                                \
	{                                                                                          \
		return run(env, mount, ST_CHAOS_HUGE_SIZE);                                        \
	}

CHAOS_BIG(kill_dir, chaos_kill, false)
CHAOS_BIG(kill_mount, chaos_kill, true)
CHAOS_BIG(relay_restart_dir, chaos_relay_restart, false)
CHAOS_BIG(relay_restart_mount, chaos_relay_restart, true)
CHAOS_BIG(disk_full_dir, chaos_disk_full, false)
CHAOS_BIG(disk_full_mount, chaos_disk_full, true)
CHAOS_BIG(changing_file_dir, chaos_changing_file, false)
CHAOS_BIG(changing_file_mount, chaos_changing_file, true)
CHAOS_BIG(clock_skew_dir, chaos_clock_skew, false)
CHAOS_BIG(clock_skew_mount, chaos_clock_skew, true)
