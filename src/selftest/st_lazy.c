/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Lazy mode without FUSE: side b runs with TANDEM_TEST_LAZY=1 and the real
 * option --cache-max, and the hidden control command "ensure" stands in
 * for a FUSE read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "control_client.h"
#include "st_sync.h"

#define MIB (1024ULL * 1024)
#define BIG_SIZE (24 * MIB)
#define OTHER_SIZE (8 * MIB)
#define KEEP_SIZE (12 * MIB)
#define CACHE_MAX "30M" /* up --cache-max: less than all the files together */
#define ENSURE_TIMEOUT_MS 15000
/* what a spurious local edit would take to show, 15 times over: the
 * engine scans 40 ms after an inotify event (ENGINE_SCAN_DELAY_MS) */
#define QUIET_MS 600

#define ST_REQUIRE_VOID(env, expr)                                                       \
	do {                                                                             \
		if (!(expr)) {                                                           \
			st_fail((env), __FILE__, __LINE__, "%s", #expr);                 \
			return;                                                          \
		}                                                                        \
	} while (0)

/* The ensure seam: 0 on {"ok":true}, -1 on an error answer, -2 no answer. */
static int ensure(const struct st_pair *p, int side, const char *path, uint64_t off, int64_t len)
{
	struct control_client *c = NULL;
	char sock[600], req[512];
	json_t *ans = NULL;
	int r = -2;

	snprintf(sock, sizeof(sock), "%s/%s", p->peer[side].home, CONTROL_SOCKET_NAME);
	snprintf(req, sizeof(req), "{\"cmd\":\"ensure\",\"path\":\"%s\",\"offset\":%llu,\"length\":%lld}",
		 path, (unsigned long long)off, (long long)len);
	if (control_client_open(sock, &c) < 0)
		return -2;
	if (control_client_call(c, req, ENSURE_TIMEOUT_MS, &ans, NULL) == 0 && ans)
		r = json_is_true(json_object_get(ans, "ok")) ? 0 : -1;
	json_decref(ans);
	control_client_free(c);
	return r;
}

static int64_t received(struct st_env *env, const struct st_pair *p, int side)
{
	json_t *st = st_pair_status(env, p, side);
	int64_t n = st ? st_jint(st, "bytes_received", -1) : -1;

	json_decref(st);
	return n;
}

/* bytes_received of side once no more arrive (the readahead of an ensure
 * may still be on its way when the ensure returns): the same twice, 300 ms
 * apart, within about 6 s; else the last figure. */
static int64_t received_settled(struct st_env *env, const struct st_pair *p, int side)
{
	int64_t last = received(env, p, side), now = last;

	for (int i = 0; i < 20 && st_left_ms(env) > 500; i++) {
		st_sleep_ms(env, 300);
		now = received(env, p, side);
		if (now == last)
			break;
		last = now;
	}
	return now;
}

/* Whether len bytes at off are the same on both sides. */
static bool same_range(const struct st_pair *p, const char *rel, uint64_t off, size_t len)
{
	char pa[ST_PATH_MAX], pb[ST_PATH_MAX];
	uint8_t *a = malloc(len), *b = malloc(len);
	bool ok = false;
	int fa, fb;

	st_pair_path(p, 0, rel, pa);
	st_pair_path(p, 1, rel, pb);
	fa = open(pa, O_RDONLY | O_CLOEXEC);
	fb = open(pb, O_RDONLY | O_CLOEXEC);
	if (a && b && fa >= 0 && fb >= 0 && pread(fa, a, len, (off_t)off) == (ssize_t)len &&
	    pread(fb, b, len, (off_t)off) == (ssize_t)len)
		ok = memcmp(a, b, len) == 0;
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	free(a);
	free(b);
	return ok;
}

/* Bytes allocated on disk for rel on side, or -1. */
static int64_t allocated(const struct st_pair *p, int side, const char *rel)
{
	char path[ST_PATH_MAX];
	struct stat st;

	st_pair_path(p, side, rel, path);
	return stat(path, &st) == 0 ? (int64_t)st.st_blocks * 512 : -1;
}

static bool same_file(const struct st_pair *p, const char *rel)
{
	char pa[ST_PATH_MAX], pb[ST_PATH_MAX];
	uint8_t ha[32], hb[32];

	st_pair_path(p, 0, rel, pa);
	st_pair_path(p, 1, rel, pb);
	return st_hash_file(pa, ha, NULL) == 0 && st_hash_file(pb, hb, NULL) == 0 &&
	       memcmp(ha, hb, 32) == 0;
}

static bool is_idle(json_t *st, const void *arg)
{
	(void)arg;
	return st_jstr_is(st, "state", "connected") && st_jstr_is(st, "sync_state", "idle");
}

static bool not_connected(json_t *st, const void *arg)
{
	(void)arg;
	return !st_jstr_is(st, "state", "connected");
}

static int wait_idle(struct st_env *env, struct st_pair *p)
{
	for (int i = 0; i < 2; i++) {
		json_t *st = st_pair_status_wait(env, p, i, is_idle, NULL, 20000, "connected and idle");
		if (!st)
			return -1;
		json_decref(st);
	}
	return 0;
}

static int lazy_up(struct st_env *env, struct st_pair *p)
{
	int r;

	setenv("TANDEM_TEST_LAZY", "1", 1);
	p->up_extra[1] = "--cache-max=" CACHE_MAX;
	r = st_pair_up(env, p, 1);
	unsetenv("TANDEM_TEST_LAZY");
	return r;
}

/* Placeholders at once, ranges on demand, nothing twice, whole files. */
static void placeholders_and_ranges(struct st_env *env, struct st_pair *p)
{
	char pa[ST_PATH_MAX], pb[ST_PATH_MAX];
	struct stat sa, sb;
	int64_t r0, r1, r2;

	/* 1. listed at once as placeholders with the right size, mode and mtime */
	for (int i = 0; i < 3; i++) {
		const char *rel = i == 0 ? "big.bin" : i == 1 ? "d/other.bin" : "small.txt";
		st_pair_path(p, 0, rel, pa);
		st_pair_path(p, 1, rel, pb);
		ST_CHECK(env, stat(pa, &sa) == 0 && stat(pb, &sb) == 0);
		ST_CHECK(env, sa.st_size == sb.st_size);
		ST_CHECK(env, (sa.st_mode & 0777) == (sb.st_mode & 0777));
		ST_CHECK(env, sa.st_mtim.tv_sec == sb.st_mtim.tv_sec &&
				      sa.st_mtim.tv_nsec == sb.st_mtim.tv_nsec);
	}
	ST_CHECK(env, allocated(p, 1, "big.bin") < (int64_t)MIB);

	/* 2. a middle range: only its blocks and the readahead */
	r0 = received(env, p, 1);
	ST_CHECK(env, ensure(p, 1, "big.bin", 10 * MIB + 100, 1000) == 0);
	r1 = received_settled(env, p, 1);
	st_note(env, "an ensure of 1000 bytes of a 24 MiB file moved %lld bytes",
		(long long)(r1 - r0));
	ST_CHECK(env, r1 - r0 >= (int64_t)MIB && r1 - r0 <= (int64_t)(6 * MIB));
	ST_CHECK(env, same_range(p, "big.bin", 10 * MIB, MIB));
	ST_CHECK(env, allocated(p, 1, "big.bin") < (int64_t)(8 * MIB));

	/* 3. the same range again: nothing moves */
	ST_CHECK(env, ensure(p, 1, "big.bin", 10 * MIB + 100, 1000) == 0);
	r2 = received_settled(env, p, 1);
	ST_CHECK(env, r2 == r1);

	/* 4. the whole file: complete, and no edit for the scanner */
	ST_CHECK(env, ensure(p, 1, "big.bin", 0, -1) == 0);
	ST_CHECK(env, ensure(p, 1, "small.txt", 0, -1) == 0);
	ST_CHECK(env, same_file(p, "big.bin"));
	ST_CHECK(env, same_file(p, "small.txt"));
	st_sleep_ms(env, QUIET_MS);
	ST_CHECK(env, wait_idle(env, p) == 0);
	ST_CHECK(env, received(env, p, 0) == 0); /* b sent nothing back */
	ST_CHECK(env, st_pair_conflicts_all(p, 0) == 0 && st_pair_conflicts_all(p, 1) == 0);
}

/* A placeholder renamed on the lazy side keeps its mark: an ensure of the
 * new name fetches, never reads holes as data. */
static void renamed(struct st_env *env, struct st_pair *p)
{
	char from[ST_PATH_MAX], to[ST_PATH_MAX];
	uint64_t t0;
	bool there = false;

	st_pair_path(p, 1, "mv.bin", from);
	st_pair_path(p, 1, "mv2.bin", to);
	ST_REQUIRE_VOID(env, rename(from, to) == 0);
	ST_CHECK(env, ensure(p, 1, "mv2.bin", 0, -1) == 0);
	t0 = clock_mono_ms();
	while (clock_mono_ms() - t0 < 10000 && !(there = st_pair_exists(p, 0, "mv2.bin")))
		st_sleep_ms(env, 50);
	ST_CHECK(env, there);
	ST_CHECK(env, same_file(p, "mv2.bin"));
	ST_CHECK(env, !st_pair_exists(p, 0, "mv.bin"));
}

/* Placeholders the peer renames (a file, and a directory of them) move on
 * this side without a fetch and keep their mark: the new names fetch when
 * read, never read holes as data. The files are removed afterwards, so the
 * cache limit of eviction() sees what it expects. */
static void peer_renamed(struct st_env *env, struct st_pair *p)
{
	static const char *const moved[] = {"pr2.bin", "pd2/x.bin", "pd2/y.txt"};
	char from[ST_PATH_MAX], to[ST_PATH_MAX];
	uint64_t t0;
	bool there = false;

	ST_REQUIRE_VOID(env, allocated(p, 1, "pr.bin") == 0 && allocated(p, 1, "pd/x.bin") == 0);
	st_pair_path(p, 0, "pr.bin", from);
	st_pair_path(p, 0, "pr2.bin", to);
	ST_REQUIRE_VOID(env, rename(from, to) == 0);
	st_pair_path(p, 0, "pd", from);
	st_pair_path(p, 0, "pd2", to);
	ST_REQUIRE_VOID(env, rename(from, to) == 0);
	t0 = clock_mono_ms();
	while (clock_mono_ms() - t0 < 10000 &&
	       !(there = st_pair_exists(p, 1, "pr2.bin") && st_pair_exists(p, 1, "pd2/y.txt") &&
			 !st_pair_exists(p, 1, "pr.bin") && !st_pair_exists(p, 1, "pd")))
		st_sleep_ms(env, 50);
	ST_REQUIRE_VOID(env, there);
	ST_CHECK(env, wait_idle(env, p) == 0);
	/* moved, not fetched: still holes */
	ST_CHECK(env, allocated(p, 1, "pr2.bin") == 0 && allocated(p, 1, "pd2/x.bin") == 0);
	for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
		ST_CHECK(env, ensure(p, 1, moved[i], 0, -1) == 0);
		ST_CHECK(env, same_file(p, moved[i]));
	}
	ST_CHECK(env, st_pair_rm(p, 0, "pr2.bin") == 0 && st_pair_rm(p, 0, "pd2") == 0);
	t0 = clock_mono_ms();
	while (clock_mono_ms() - t0 < 10000 && (there = st_pair_exists(p, 1, "pd2")))
		st_sleep_ms(env, 50);
	ST_CHECK(env, !there);
}

/* The peer gone: missing ranges fail in bounded time, present ones work. */
static void peer_gone(struct st_env *env, struct st_pair *p)
{
	json_t *st;
	uint64_t t0;

	ST_REQUIRE_VOID(env, st_pair_down(env, p, 0) == 0);
	st = st_pair_status_wait(env, p, 1, not_connected, NULL, 10000, "the peer gone");
	ST_CHECK(env, st != NULL);
	json_decref(st);
	t0 = clock_mono_ms();
	ST_CHECK(env, ensure(p, 1, "d/other.bin", 0, 100) == -1);
	st_note(env, "an ensure with the peer gone failed after %llu ms",
		(unsigned long long)(clock_mono_ms() - t0));
	ST_CHECK(env, clock_mono_ms() - t0 < 10000);
	ST_CHECK(env, ensure(p, 1, "big.bin", 5 * MIB, MIB) == 0);

	/* back: ensure works again */
	ST_REQUIRE_VOID(env, st_pair_up(env, p, 0) == 0);
	ST_CHECK(env, wait_idle(env, p) == 0);
	ST_CHECK(env, ensure(p, 1, "d/other.bin", 0, 100) == 0);
	ST_CHECK(env, same_range(p, "d/other.bin", 0, MIB));
}

/* Over the cache limit: the least recently used clean file is emptied. */
static void eviction(struct st_env *env, struct st_pair *p)
{
	int64_t r0;

	st_sleep_ms(env, ST_EVICT_AGE_MS + 300); /* big.bin is no longer "being read" */
	ST_CHECK(env, ensure(p, 1, "d/other.bin", 0, -1) == 0);
	ST_CHECK(env, same_file(p, "d/other.bin"));
	/* the eviction runs when the fetch burst ends, just after the ensure
	 * returned: give it a moment on a loaded machine */
	for (int i = 0; i < 100 && allocated(p, 1, "big.bin") >= (int64_t)MIB; i++)
		st_sleep_ms(env, 50);
	st_note(env, "after the limit: big.bin holds %lld bytes",
		(long long)allocated(p, 1, "big.bin"));
	ST_CHECK(env, allocated(p, 1, "big.bin") < (int64_t)MIB);
	r0 = received(env, p, 1);
	ST_CHECK(env, ensure(p, 1, "big.bin", 3 * MIB, 10) == 0);
	ST_CHECK(env, received(env, p, 1) > r0);
	ST_CHECK(env, same_range(p, "big.bin", 3 * MIB, MIB));
	ST_CHECK(env, st_pair_conflicts_all(p, 0) == 0 && st_pair_conflicts_all(p, 1) == 0);
}

/* Ranges fetched before a restart are still there after it: the presence
 * marks of an unfinished file are written when the daemon stops. */
static void restart_keeps_ranges(struct st_env *env, struct st_pair *p)
{
	int64_t held, r0;

	ST_REQUIRE_VOID(env, ensure(p, 1, "keep.bin", 0, 100) == 0);
	ST_CHECK(env, wait_idle(env, p) == 0);
	held = allocated(p, 1, "keep.bin");
	st_note(env, "before the restart keep.bin holds %lld bytes", (long long)held);
	ST_CHECK(env, held >= (int64_t)MIB && held < (int64_t)KEEP_SIZE); /* unfinished */
	ST_REQUIRE_VOID(env, st_pair_down(env, p, 1) == 0);
	ST_REQUIRE_VOID(env, lazy_up(env, p) == 0);
	ST_REQUIRE_VOID(env, wait_idle(env, p) == 0);
	r0 = received(env, p, 1);
	ST_CHECK(env, ensure(p, 1, "keep.bin", 0, (int64_t)MIB) == 0);
	st_note(env, "after the restart: %lld bytes received before the ensure, %lld after",
		(long long)r0, (long long)received(env, p, 1));
	ST_CHECK(env, received(env, p, 1) == r0); /* nothing fetched again */
	ST_CHECK(env, same_range(p, "keep.bin", 0, MIB));
	ST_CHECK(env, ensure(p, 1, "keep.bin", 0, -1) == 0);
	ST_CHECK(env, same_file(p, "keep.bin"));
}

/* A local edit of a complete lazy file syncs back like any edit. */
static void edit_back(struct st_env *env, struct st_pair *p)
{
	uint64_t t0 = clock_mono_ms();
	bool ok = false;

	ST_REQUIRE_VOID(env, st_pair_append(p, 1, "d/other.bin", "an edit on b\n") == 0);
	while (clock_mono_ms() - t0 < 15000 && !(ok = same_file(p, "d/other.bin")))
		st_sleep_ms(env, 100);
	ST_CHECK(env, ok);
	ST_CHECK(env, st_pair_conflicts_all(p, 0) == 0);
}

int st_lazy_ensure(struct st_env *env)
{
	struct st_pair p;
	char path[ST_PATH_MAX];

	ST_REQUIRE(env, st_pair_make(env, &p, "") == 0);
	ST_CHECK(env, st_pair_put_random(&p, 0, "big.bin", 11, BIG_SIZE, NULL) == 0);
	ST_CHECK(env, mkdir(st_pair_path(&p, 0, "d", path), 0755) == 0);
	ST_CHECK(env, st_pair_put_random(&p, 0, "d/other.bin", 12, OTHER_SIZE, NULL) == 0);
	ST_CHECK(env, st_pair_write(&p, 0, "small.txt", "small\n", 6) == 0);
	ST_CHECK(env, st_pair_put_random(&p, 0, "mv.bin", 13, 3 * MIB, NULL) == 0);
	ST_CHECK(env, st_pair_put_random(&p, 0, "pr.bin", 14, MIB + MIB / 2, NULL) == 0);
	ST_CHECK(env, st_pair_put_random(&p, 0, "keep.bin", 16, KEEP_SIZE, NULL) == 0);
	ST_CHECK(env, mkdir(st_pair_path(&p, 0, "pd", path), 0755) == 0);
	ST_CHECK(env, st_pair_put_random(&p, 0, "pd/x.bin", 15, 300000, NULL) == 0);
	ST_CHECK(env, st_pair_write(&p, 0, "pd/y.txt", "why\n", 4) == 0);
	ST_CHECK(env, chmod(st_pair_path(&p, 0, "small.txt", path), 0640) == 0);
	ST_CHECK(env, st_pair_set_mtime(&p, 0, "big.bin", 1600000000, 123456789) == 0);
	if (env->failures || st_pair_up(env, &p, 0) < 0 || lazy_up(env, &p) < 0 ||
	    wait_idle(env, &p) < 0) {
		ST_CHECK(env, !"the pair started and became idle");
		goto out;
	}
	placeholders_and_ranges(env, &p);
	if (!env->failures)
		renamed(env, &p);
	if (!env->failures)
		peer_renamed(env, &p);
	if (!env->failures)
		peer_gone(env, &p);
	if (!env->failures)
		eviction(env, &p);
	if (!env->failures)
		restart_keeps_ranges(env, &p);
	if (!env->failures)
		edit_back(env, &p);
out:
	st_pair_cleanup(env, &p);
	return env->failures ? ST_FAIL : ST_PASS;
}
