/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cache limit of a mount as a user sets it (`tandem up --cache-max`):
 * a mount started with --cache-max 4M reads two 3 MiB files of the peer.
 * Once both are here (6 MiB > 4 MiB) the one read first, and not since, is
 * emptied in the store again, stays listed with its size, and reads back
 * whole (fetched anew). With the default limit (10 GiB) nothing is emptied.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st_fuse.h"
#include "st_sync.h"

#define FILE_SIZE (3u << 20)
#define CACHE_MAX "4M"
#define WAIT_MS 15000

static bool idle(json_t *st, const void *arg)
{
	(void)arg;
	return st_jstr_is(st, "state", "connected") && st_jstr_is(st, "sync_state", "idle");
}

/* Bytes allocated to rel in the mount side's store (not through the mount,
 * which never reports holes), or -1. */
static int64_t stored(const struct st_pair *p, const char *rel)
{
	char path[ST_PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/state/store/%s", p->peer[0].home, rel);
	return stat(path, &st) == 0 ? (int64_t)st.st_blocks * 512 : -1;
}

/* Reads rel whole through the mount: true when it hashes to want. */
static bool read_whole(const struct st_pair *p, const char *rel, const uint8_t want[32])
{
	char mp[ST_PATH_MAX];
	uint8_t got[32];
	uint64_t size = 0;

	st_pair_path(p, 0, rel, mp);
	return st_hash_file(mp, got, &size) == 0 && size == FILE_SIZE && !memcmp(got, want, 32);
}

static bool listed(struct st_env *env, const struct st_pair *p, const char *rel)
{
	char mp[ST_PATH_MAX];
	struct stat st;

	st_pair_path(p, 0, rel, mp);
	for (uint64_t end = st_now_ms() + WAIT_MS; st_now_ms() < end && st_left_ms(env) > 0;) {
		if (stat(mp, &st) == 0 && st.st_size == FILE_SIZE)
			return true;
		usleep(20000);
	}
	return false;
}

int st_fuse_cache_max(struct st_env *env)
{
	struct st_pair p;
	uint8_t ha[32], hb[32];
	int64_t n;
	int r = st_fuse_need(env);

	if (r)
		return r;
	ST_REQUIRE(env, st_pair_make(env, &p, "") == 0);
	ST_CHECK(env, st_pair_put_random(&p, 1, "a.bin", 21, FILE_SIZE, ha) == 0);
	ST_CHECK(env, st_pair_put_random(&p, 1, "b.bin", 22, FILE_SIZE, hb) == 0);
	p.up_extra[0] = "--cache-max=" CACHE_MAX;
	if (env->failures || st_pair_up(env, &p, 0) < 0 || st_pair_up(env, &p, 1) < 0)
		goto out;
	for (int i = 0; i < 2; i++) {
		json_t *st = st_pair_status_wait(env, &p, i, idle, NULL, WAIT_MS,
						 "connected and idle");
		ST_CHECK(env, st != NULL);
		json_decref(st);
	}
	ST_CHECK(env, listed(env, &p, "a.bin") && listed(env, &p, "b.bin"));
	if (env->failures)
		goto out;
	/* a.bin read whole: all of it in the store, under the limit */
	ST_CHECK(env, read_whole(&p, "a.bin", ha));
	ST_CHECK(env, stored(&p, "a.bin") >= (int64_t)FILE_SIZE);
	/* a file ensured in the last ST_EVICT_AGE_MS is never emptied */
	st_sleep_ms(env, ST_EVICT_AGE_MS + 300);
	/* b.bin too: 6 MiB, over the limit; a.bin (read before) is emptied */
	ST_CHECK(env, read_whole(&p, "b.bin", hb));
	for (uint64_t end = st_now_ms() + WAIT_MS;
	     st_now_ms() < end && st_left_ms(env) > 0 && stored(&p, "a.bin") >= (1 << 20);)
		usleep(50000);
	n = stored(&p, "a.bin");
	st_note(env, "with --cache-max " CACHE_MAX ": a.bin keeps %lld bytes in the store, b.bin %lld",
		(long long)n, (long long)stored(&p, "b.bin"));
	ST_CHECK(env, n >= 0 && n < (1 << 20));
	ST_CHECK(env, stored(&p, "b.bin") >= (int64_t)FILE_SIZE);
	/* still listed with its size, and it reads back whole */
	ST_CHECK(env, listed(env, &p, "a.bin"));
	ST_CHECK(env, read_whole(&p, "a.bin", ha));
	ST_CHECK(env, st_pair_conflicts_all(&p, 0) == 0 && st_pair_conflicts_all(&p, 1) == 0);
out:
	st_pair_cleanup(env, &p);
	return env->failures ? ST_FAIL : ST_PASS;
}
