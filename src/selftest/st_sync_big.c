/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sync scenarios: large files, atomic replacement, resume, and the big ones of the slow suite. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "st_sync.h"

#define MIB (1024ULL * 1024)
#define START_MS 10000
/*
 * The bound is 2 s for every change, 64 MiB included (hashed, sent,
 * verified, fsynced: well under a second on an idle 2-core machine since
 * hashing uses SHA-NI and the receiver verifies on workers). The check
 * allows 4 times that (three times more in sanitizer builds), because
 * `meson test` runs other suites beside this one on the same two cores;
 * the time is always noted.
 */
#define LARGE_LATENCY_FACTOR 4
#define LARGE_SIZE (64 * MIB)
/* The sender's rate makes the whole file take about 2 s (5 s in the slow
 * suite), so the kill lands midway even on a loaded machine. */
#define RESUME_SIZE (48 * MIB)
#define RESUME_RATE "25165824" /* 24 MiB/s */
#define RESUME_BIG_SIZE (256 * MIB)
#define RESUME_BIG_RATE "50331648" /* 48 MiB/s */
#define RSS_MAX_KIB (64 * 1024)
#define READER_CATCH_UP_MS 5000

/*
 * A thread that reads a file over and over while it is being replaced and
 * sorts what it saw: absent, the old content, the new content, or anything
 * else (a half-written file: always a failure).
 */
struct reader {
	char path[ST_PATH_MAX];
	uint8_t old_hash[32], new_hash[32];
	bool has_old;
	atomic_bool stop;
	atomic_uint fresh; /* read by the scenario while the reader runs */
	unsigned absent, old, bad;
	uint64_t bad_size;
	pthread_t thread;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint8_t h[32];
	uint64_t size;

	while (!atomic_load(&r->stop)) {
		int e = st_hash_file(r->path, h, &size);
		if (e == -ENOENT)
			r->absent++;
		else if (e == 0 && !memcmp(h, r->new_hash, 32))
			r->fresh++;
		else if (e == 0 && r->has_old && !memcmp(h, r->old_hash, 32))
			r->old++;
		else if (e == 0 && !r->bad++)
			r->bad_size = size;
		poll(NULL, 0, e == -ENOENT ? 2 : 10); /* leave the daemons some CPU */
	}
	return NULL;
}

static int reader_start(struct reader *r)
{
	atomic_init(&r->stop, false);
	atomic_init(&r->fresh, 0);
	return -pthread_create(&r->thread, NULL, reader_main, r);
}

static void reader_stop(struct reader *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
}

/*
 * A 64 MiB random file made on one side while the other side's file is
 * read in a loop; the reader sees only complete versions. First created
 * a -> b (absent or new), then replaced b -> a (old or new, never absent).
 */
int st_sync_large_file(struct st_env *env)
{
	struct st_pair p;
	struct reader rd;
	uint8_t hash[2][32], got[32];
	char path[ST_PATH_MAX];

	if (st_pair_start(env, &p, "", START_MS) < 0) {
		ST_CHECK(env, !"the pair started and became idle");
		goto out;
	}
	for (int from = 0; from < 2 && !env->failures; from++) {
		int to = 1 - from;
		struct st_expect exp = { .from = from, .prefix = "big.bin" };
		int64_t took;

		memset(&rd, 0, sizeof(rd));
		st_pair_path(&p, to, "big.bin", rd.path);
		rd.has_old = from == 1;
		if (from == 1)
			memcpy(rd.old_hash, hash[0], 32);
		/* the reader knows the new content before it exists: write it aside first */
		if (st_pair_put_random(&p, from, "big.bin", 7 + from, LARGE_SIZE, hash[from]) < 0) {
			ST_CHECK(env, !"the big file was written");
			break;
		}
		memcpy(rd.new_hash, hash[from], 32);
		ST_CHECK(env, reader_start(&rd) == 0);
		exp.want = st_pair_snapshot(env, &p, from);
		took = st_wait_converged(env, &p, &exp, 1, 60000);
		/* converged: the reader gets to read the new version at least once
		 * (a 64 MiB read can take longer than noticing the convergence) */
		for (uint64_t end = st_now_ms() + READER_CATCH_UP_MS;
		     took >= 0 && !atomic_load(&rd.fresh) && st_now_ms() < end && st_left_ms(env);)
			st_sleep_ms(env, 20);
		reader_stop(&rd);
		st_tree_free(exp.want);
		st_note(env, "64 MiB %s -> %s: there after %llu ms (%.0f MiB/s), idle after %lld ms",
			st_side_name(from), st_side_name(to), (unsigned long long)exp.reached_ms,
			exp.reached_ms ? 64.0 * 1000 / (double)exp.reached_ms : 0.0,
			(long long)took);
		st_note(env, "the reader on %s saw: %u absent, %u old, %u new, %u other",
			st_side_name(to), rd.absent, rd.old, atomic_load(&rd.fresh), rd.bad);
		ST_CHECK(env, took >= 0);
		ST_CHECK(env, exp.reached_ms <= st_latency_max_ms() * LARGE_LATENCY_FACTOR);
		if (rd.bad)
			st_note(env, "a half-made file of %llu bytes was visible",
				(unsigned long long)rd.bad_size);
		ST_CHECK(env, rd.bad == 0);
		ST_CHECK(env, from == 0 || rd.absent == 0);
		ST_CHECK(env, atomic_load(&rd.fresh) > 0);
		st_pair_path(&p, to, "big.bin", path);
		ST_CHECK(env, st_hash_file(path, got, NULL) == 0 && !memcmp(got, hash[from], 32));
	}
out:
	st_pair_cleanup(env, &p);
	return ST_PASS;
}

/*
 * size bytes from a to b, a serving at rate; a is killed (SIGKILL) half
 * way and started again: b gets the rest, not everything again.
 *
 * What b receives for the file counts, not its bytes_received alone: a
 * mount side gets the file by a copy under a temp name and a rename, and a
 * slow copy (ASan) is published under the temp name part-way (the mount
 * publishes what its store's scanner sees, not on close), so b receives
 * some of that too, before the kill.
 */
static void resume_run(struct st_env *env, uint64_t size, const char *rate)
{
	struct st_pair p;
	uint8_t hash[32], got[32];
	char path[ST_PATH_MAX];
	int64_t recv_kill, done_kill, recv_end, took;
	json_t *st;

	if (st_pair_make(env, &p, "") < 0) {
		ST_CHECK(env, !"the pair was made");
		goto out;
	}
	p.rate_bps[0] = rate;
	if (st_pair_up(env, &p, 0) < 0 || st_pair_up(env, &p, 1) < 0 ||
	    st_wait_converged(env, &p, NULL, 0, START_MS) < 0) {
		ST_CHECK(env, !"the pair started and became idle");
		goto out;
	}
	/*
	 * The kill must land while the transfer runs. On a machine loaded by
	 * parallel scenarios it was once seen too late (the file already
	 * complete on b): that says nothing about resuming, so the scenario
	 * then tries once more with a new file, and fails if that misses too.
	 */
	for (int attempt = 0; attempt < 2; attempt++) {
		const char *name = attempt ? "resume2.bin" : "resume.bin";
		if (st_pair_put_random(&p, 0, name, 256 + (uint64_t)attempt, size, hash) <
		    0) {
			ST_CHECK(env, !"the file was written");
			goto out;
		}
		struct st_file_bytes half = {.path = name, .bytes = (int64_t)size / 2};
		st = st_pair_status_wait(env, &p, 1, st_has_received, &half, 30000, "half-way");
		recv_kill = st_jint(st, "bytes_received", -1);
		done_kill = st_download_done(st, name);
		json_decref(st);
		if (recv_kill < 0 || done_kill < 0) {
			ST_CHECK(env, !"b received half of the file");
			goto out;
		}
		st_pair_kill(env, &p, 0);
		st_note(env, "killed a when b had %lld of %llu bytes", (long long)done_kill,
			(unsigned long long)size);
		bool early = st_pair_exists(&p, 1, name);
		if (early && attempt == 0) {
			st_note(env, "the file was complete on b before the kill landed: once more");
			ST_CHECK(env, st_pair_up(env, &p, 0) == 0);
			ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, 40000) >= 0);
			continue;
		}
		ST_CHECK(env, done_kill < (int64_t)size * 9 / 10);
		ST_CHECK(env, !early);
		ST_CHECK(env, st_pair_up(env, &p, 0) == 0);
		took = st_wait_converged(env, &p, NULL, 0, 40000);
		st_note(env, "a restarted; converged after %lld ms", (long long)took);
		ST_CHECK(env, took >= 0);
		/* the file's bytes before the kill, and all b received after it */
		st = st_pair_status(env, &p, 1);
		recv_end = done_kill + st_jint(st, "bytes_received", -1) - recv_kill;
		json_decref(st);
		st_note(env, "b received %lld bytes in all for a %llu-byte file (%.2fx)",
			(long long)recv_end, (unsigned long long)size,
			(double)recv_end / (double)size);
		/* what was on its way at the kill counts as received, not as done,
		 * and is reused after it: so no lower bound of size here, but b
		 * says what it reused, at least what it had done at the kill */
		ST_CHECK(env, recv_end < (int64_t)size * 13 / 10);
		long long reused = st_reused_mib(&p.peer[1], name);
		st_note(env, "b reused %lld MiB of the interrupted transfer", reused);
		ST_CHECK(env, reused >= done_kill >> 20);
		st_pair_path(&p, 1, name, path);
		ST_CHECK(env, st_hash_file(path, got, NULL) == 0 && !memcmp(got, hash, 32));
		break;
	}
out:
	st_pair_cleanup(env, &p);
}

int st_sync_resume(struct st_env *env)
{
	resume_run(env, RESUME_SIZE, RESUME_RATE);
	return ST_PASS;
}

int st_sync_resume_big(struct st_env *env)
{
	resume_run(env, RESUME_BIG_SIZE, RESUME_BIG_RATE);
	return ST_PASS;
}

/* One file of size bytes a -> b, hash-verified; with rss, both daemons'
 * peak RSS must stay under 64 MiB. */
static void one_big_file(struct st_env *env, uint64_t size, bool rss)
{
	struct st_pair p;
	uint8_t hash[32], got[32];
	char path[ST_PATH_MAX];
	uint64_t t0;
	int64_t took;

	if (st_pair_start(env, &p, "", START_MS) < 0) {
		ST_CHECK(env, !"the pair started and became idle");
		goto out;
	}
	t0 = st_now_ms();
	if (st_pair_put_random(&p, 0, "huge.bin", 1, size, hash) < 0) {
		ST_CHECK(env, !"the file was written");
		goto out;
	}
	st_note(env, "wrote %llu MiB in %llu ms", (unsigned long long)(size / MIB),
		(unsigned long long)(st_now_ms() - t0));
	t0 = st_now_ms();
	took = st_wait_converged(env, &p, NULL, 0, (unsigned)(st_left_ms(env) - 10000));
	st_note(env, "%llu MiB a -> b converged after %lld ms (%.0f MiB/s, hashing included)",
		(unsigned long long)(size / MIB), (long long)took,
		took > 0 ? (double)size / MIB * 1000 / (double)took : 0.0);
	ST_CHECK(env, took >= 0);
	st_pair_path(&p, 1, "huge.bin", path);
	ST_CHECK(env, st_hash_file(path, got, NULL) == 0 && !memcmp(got, hash, 32));
	for (int s = 0; rss && s < 2; s++) {
		long kib = st_vmhwm_kib(p.peer[s].pid);
		st_note(env, "%s's daemon peak RSS (VmHWM): %ld KiB", st_side_name(s), kib);
		if (st_sanitized())
			continue; /* its shadow memory says nothing about the daemon */
		ST_CHECK(env, kib > 0 && kib < RSS_MAX_KIB);
	}
	if (rss && st_sanitized())
		st_note(env, "an ASan build: the 64 MiB bound is not checked");
out:
	st_pair_cleanup(env, &p);
}

int st_sync_1gib(struct st_env *env)
{
	one_big_file(env, 1024 * MIB, false);
	return ST_PASS;
}

int st_sync_4gib(struct st_env *env)
{
	one_big_file(env, 4096 * MIB, true);
	return ST_PASS;
}

/*
 * 32 MiB a -> b between two real daemons whose send keys last at most
 * REKEY_FRAMES frames and REKEY_MS (the test knobs of docs/DAEMON.md):
 * the transfer crosses several rekeys in both directions, nothing
 * breaks the channel, and the file is hash-verified.
 */
#define REKEY_SIZE (32 * MIB)
#define REKEY_FRAMES "4" /* ~36 block frames: 8 switches a -> b at least */
#define REKEY_MS "1000"	 /* b sends little: its key ages out instead */
#define REKEY_MIN 4

int st_chan_rekey(struct st_env *env)
{
	static const char sent[] = "switched to the next send key with";
	static const char recvd[] = "switched to its next send key";
	struct st_pair p;
	uint8_t hash[32], got[32];
	char path[ST_PATH_MAX];
	unsigned n[2][2]; /* [side][0 sent, 1 received] */
	int64_t took;

	if (st_pair_make_dirs(env, &p, "") < 0) {
		ST_CHECK(env, !"the pair was made");
		goto out;
	}
	setenv("TANDEM_TEST_REKEY_FRAMES", REKEY_FRAMES, 1);
	setenv("TANDEM_TEST_REKEY_MS", REKEY_MS, 1);
	if (st_pair_up(env, &p, 0) < 0 || st_pair_up(env, &p, 1) < 0 ||
	    st_wait_converged(env, &p, NULL, 0, START_MS) < 0) {
		unsetenv("TANDEM_TEST_REKEY_FRAMES");
		unsetenv("TANDEM_TEST_REKEY_MS");
		ST_CHECK(env, !"the pair started and became idle");
		goto out;
	}
	unsetenv("TANDEM_TEST_REKEY_FRAMES");
	unsetenv("TANDEM_TEST_REKEY_MS");
	if (st_pair_put_random(&p, 0, "rekey.bin", 11, REKEY_SIZE, hash) < 0) {
		ST_CHECK(env, !"the file was written");
		goto out;
	}
	took = st_wait_converged(env, &p, NULL, 0, 120000);
	st_note(env, "%llu MiB a -> b converged after %lld ms",
		(unsigned long long)(REKEY_SIZE / MIB), (long long)took);
	ST_CHECK(env, took >= 0);
	st_pair_path(&p, 1, "rekey.bin", path);
	ST_CHECK(env, st_hash_file(path, got, NULL) == 0 && !memcmp(got, hash, 32));
	/* one connection all along: a broken channel would have reconnected */
	for (int s = 0; s < 2; s++) {
		ST_CHECK(env, !st_peer_log_has(&p.peer[s], "closing the connection with"));
		n[s][0] = st_peer_log_count(&p.peer[s], sent, NULL);
		n[s][1] = st_peer_log_count(&p.peer[s], recvd, NULL);
		st_note(env, "%s switched its send key %u times and saw the peer switch %u times",
			st_side_name(s), n[s][0], n[s][1]);
	}
	ST_CHECK(env, n[0][0] >= REKEY_MIN && n[1][1] >= REKEY_MIN);
	ST_CHECK(env, n[1][0] >= 1 && n[0][1] >= 1);
	/* idle, a PING a second is far from 40 frames: only the age of the
	 * key can make b switch again, and a sees it */
	unsigned was = n[0][1], now = was;
	for (uint64_t end = st_now_ms() + 15000; now == was && st_now_ms() < end && st_left_ms(env);
	     now = st_peer_log_count(&p.peer[0], recvd, NULL))
		st_sleep_ms(env, 200);
	st_note(env, "idle: a saw b switch %u more times", now - was);
	ST_CHECK(env, now > was);
out:
	st_pair_cleanup(env, &p);
	return ST_PASS;
}
