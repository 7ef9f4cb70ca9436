/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Chaos scenarios (suite "chaos"): a pair whose connection runs through the
 * fault proxy (st_proxy.h), a mixed workload on both sides (creates, edits,
 * a same-size edit, a rename, a delete, files of some MiB), one kind of
 * network fault while it runs; then the fault is healed and both trees must
 * be identical, every change there and nothing resurrected, no conflict
 * copy (the two sides never touch the same file), both daemons connected
 * and idle again. The proxy's counters end up as TAP diagnostics.
 *
 * The same scenarios in suite "chaos-big" (slow) add a file of
 * ST_CHAOS_HUGE_SIZE, made on side a while the fault is on.
 *
 * The scenario's random choices (fault sizes, file contents) and the
 * proxy's come from the scenario's seed (env->seed): the run's
 * `# reproduce: tandem selftest --only NAME --seed S` replays them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st_fuse.h"
#include "st_proxy.h"
#include "st_rand.h"
#include "st_sync.h"

#define START_MS 20000
#define CONVERGE_MS 60000
#define HUGE_CONVERGE_MS 600000 /* the scenario's deadline comes first */
#define BIG_SIZE (2u << 20)
#define BIG2_SIZE (1u << 20)
#define FAULT_WAIT_MS 15000
#define PARTITION_HEARTBEAT "300" /* ms: dead after about a second, not three */

enum chaos_fault {
	CHAOS_LATENCY,
	CHAOS_BANDWIDTH,
	CHAOS_PARTITION,
	CHAOS_RESET,
	CHAOS_BITFLIP,
	CHAOS_HALFCLOSE,
	CHAOS_TRUNCATE,
	CHAOS_STALL,
};

struct chaos {
	struct st_env *env;
	struct st_pair pair;
	struct st_rand rand;
	uint64_t seed;
	uint64_t huge; /* size of a's huge.bin, or 0: none */
	uint8_t big_hash[2][32], big2_hash[2][32], huge_hash[32];
};

/* One side's own corner of the share: "wa" or "wb". */
static const char *corner(int side)
{
	return side ? "wb" : "wa";
}

static int rel(char out[static 64], int side, const char *name)
{
	return snprintf(out, 64, "%s/%s", corner(side), name);
}

/* Before the fault: a directory, four small files, a big one. */
static int workload_before(struct chaos *c)
{
	struct st_pair *p = &c->pair;
	char path[ST_PATH_MAX], r[64], text[128];

	for (int s = 0; s < 2; s++) {
		if (!st_pair_path(p, s, corner(s), path) || mkdir(path, 0755) < 0) {
			st_note(c->env, "cannot make %s: %s", path, strerror(errno));
			return -1;
		}
		for (int i = 1; i <= 4; i++) {
			int n = snprintf(text, sizeof(text), "doc %d of %s, seed %" PRIu64 "\n", i,
					 st_side_name(s), c->seed);
			char name[16];
			snprintf(name, sizeof(name), "doc%d.txt", i);
			rel(r, s, name);
			if (st_pair_write(p, s, r, text, (size_t)n) < 0)
				return -1;
		}
		rel(r, s, "big.bin");
		if (st_pair_put_random(p, s, r, st_rand_next(&c->rand), s ? BIG2_SIZE : BIG_SIZE,
				       c->big_hash[s]) < 0)
			return -1;
	}
	return 0;
}

/* While the fault is on: an append, a same-size edit, a rename, a delete, a new big file;
 * and a's huge one if any. */
static int workload_during(struct chaos *c)
{
	struct st_pair *p = &c->pair;
	char r[64], r2[64], from[ST_PATH_MAX], to[ST_PATH_MAX];

	for (int s = 0; s < 2; s++) {
		rel(r, s, "doc1.txt");
		if (st_pair_append(p, s, r, "appended while the link is bad\n") < 0)
			return -1;
		rel(r, s, "doc2.txt");
		char text[128];
		int n = snprintf(text, sizeof(text), "DOC 2 OF %s, SEED %" PRIu64 "\n",
				 s ? "B" : "A", c->seed);
		if (st_pair_write(p, s, r, text, (size_t)n) < 0)
			return -1;
		rel(r, s, "doc3.txt");
		rel(r2, s, "doc3-renamed.txt");
		if (!st_pair_path(p, s, r, from) || !st_pair_path(p, s, r2, to) ||
		    rename(from, to) < 0)
			return -1;
		rel(r, s, "doc4.txt");
		if (st_pair_rm(p, s, r) < 0)
			return -1;
		rel(r, s, "big2.bin");
		if (st_pair_put_random(p, s, r, st_rand_next(&c->rand), BIG2_SIZE,
				       c->big2_hash[s]) < 0)
			return -1;
	}
	if (c->huge) {
		rel(r, 0, "huge.bin");
		if (st_pair_put_random(p, 0, r, st_rand_next(&c->rand), c->huge, c->huge_hash) < 0)
			return -1;
		st_note(c->env, "%s made on a (%s), %" PRIu64 " bytes", r,
			p->kind[0] == ST_SIDE_MOUNT ? "a mount" : "a directory", c->huge);
	}
	return 0;
}

/* What must hold on both sides once converged. */
static void check_result(struct chaos *c)
{
	struct st_env *env = c->env;
	struct st_pair *p = &c->pair;
	char r[64], path[ST_PATH_MAX];
	uint8_t h[32];

	for (int s = 0; s < 2; s++) {
		for (int t = 0; t < 2; t++) {
			rel(r, s, "doc3.txt");
			ST_CHECK(env, !st_pair_exists(p, t, r)); /* renamed away */
			rel(r, s, "doc4.txt");
			ST_CHECK(env, !st_pair_exists(p, t, r)); /* not resurrected */
			rel(r, s, "doc3-renamed.txt");
			ST_CHECK(env, st_pair_exists(p, t, r));
			rel(r, s, "big.bin");
			ST_CHECK(env, st_pair_path(p, t, r, path) &&
					      st_hash_file(path, h, NULL) == 0 &&
					      memcmp(h, c->big_hash[s], 32) == 0);
			rel(r, s, "big2.bin");
			ST_CHECK(env, st_pair_path(p, t, r, path) &&
					      st_hash_file(path, h, NULL) == 0 &&
					      memcmp(h, c->big2_hash[s], 32) == 0);
		}
		if (c->huge) {
			rel(r, 0, "huge.bin");
			ST_CHECK(env, st_pair_path(p, s, r, path) &&
					      st_hash_file(path, h, NULL) == 0 &&
					      memcmp(h, c->huge_hash, 32) == 0);
		}
		ST_CHECK(env, st_pair_conflicts_all(p, s) == 0);
	}
}

static void note_counters(struct chaos *c)
{
	char line[512];

	if (!c->pair.proxy)
		return;
	for (int d = 0; d < 2; d++) {
		st_proxy_format(c->pair.proxy, (enum st_proxy_dir)d, line, sizeof(line));
		st_note(c->env, "%s", line);
	}
}

/* Waits until the counter at field of dir is above was (or ms). */
static bool counter_wait(struct chaos *c, enum st_proxy_dir dir, size_t field, uint64_t was,
			 unsigned ms)
{
	uint64_t end = st_now_ms() + ms;
	struct st_proxy_counters k;

	for (;;) {
		st_proxy_counters(c->pair.proxy, dir, &k);
		if (*(uint64_t *)((char *)&k + field) > was)
			return true;
		if (st_now_ms() >= end || st_left_ms(c->env) < 100)
			return false;
		st_sleep_ms(c->env, 50);
	}
}

#define COUNTER(dir, name) offsetof(struct st_proxy_counters, name)

static uint64_t counter(struct chaos *c, enum st_proxy_dir dir, size_t field)
{
	struct st_proxy_counters k;

	st_proxy_counters(c->pair.proxy, dir, &k);
	return *(uint64_t *)((char *)&k + field);
}

/* A byte fault (f's reset/half-close/truncate) on a->b, one connection at a
 * time, `rounds` times: each round sends a new file so the bytes come. */
static int byte_fault_rounds(struct chaos *c, struct st_proxy_faults f, size_t field, int rounds)
{
	char r[64], name[32];

	for (int i = 0; i < rounds; i++) {
		uint64_t was = counter(c, ST_PROXY_AB, field);
		uint64_t n = 16384 + st_rand_below(&c->rand, 256 * 1024);
		if (f.reset_after)
			f.reset_after = n;
		if (f.halfclose_after)
			f.halfclose_after = n;
		if (f.truncate_after)
			f.truncate_after = n;
		f.shots = 1;
		st_proxy_set(c->pair.proxy, ST_PROXY_AB, &f);
		snprintf(name, sizeof(name), "round%d.bin", i);
		rel(r, 0, name);
		if (st_pair_put_random(&c->pair, 0, r, st_rand_next(&c->rand), 1u << 20, NULL) < 0)
			return -1;
		if (!counter_wait(c, ST_PROXY_AB, field, was, FAULT_WAIT_MS)) {
			st_note(c->env, "round %d: the fault after %" PRIu64 " bytes never struck",
				i, n);
			return -1;
		}
		st_note(c->env, "round %d: struck after %" PRIu64 " bytes of a->b", i, n);
	}
	return 0;
}

/* Waits until either side's log has text (or ms). */
static bool either_log_wait(struct chaos *c, const char *text, unsigned ms)
{
	uint64_t end = st_now_ms() + ms;

	for (;;) {
		if (st_peer_log_has(&c->pair.peer[0], text) ||
		    st_peer_log_has(&c->pair.peer[1], text))
			return true;
		if (st_now_ms() >= end || st_left_ms(c->env) < 100)
			return false;
		st_sleep_ms(c->env, 50);
	}
}

static bool is_connected(json_t *st, const void *arg)
{
	(void)arg;
	return st_jstr_is(st, "state", "connected");
}

static int chaos_run(struct st_env *env, enum chaos_fault fault, bool mount, uint64_t huge)
{
	struct chaos c = {.env = env, .huge = huge};
	struct st_proxy_faults f = {0};
	struct st_proxy *px;
	int64_t ms;
	int r;

	if (mount && st_fuse_unusable())
		return st_skip(env, "no FUSE here: %s", st_fuse_unusable());
	c.seed = env->seed;
	st_note(env, "chaos seed: %" PRIu64 " (the scenario's)", c.seed);
	st_rand_seed(&c.rand, c.seed);
	if (fault == CHAOS_PARTITION)
		st_heartbeat_set(PARTITION_HEARTBEAT);
	r = st_pair_start_proxied(env, &c.pair, "", mount, st_rand_next(&c.rand), START_MS);
	st_heartbeat_set(NULL);
	if (r < 0 || (mount && c.pair.kind[0] != ST_SIDE_MOUNT)) {
		ST_CHECK(env, !"the pair through the proxy started");
		goto out;
	}
	px = c.pair.proxy;
	/* the connection really runs through the proxy */
	ST_CHECK(env, counter(&c, ST_PROXY_AB, COUNTER(ST_PROXY_AB, conns)) >= 1);
	ST_CHECK(env, st_proxy_open_conns(px) == 1);
	if (workload_before(&c) < 0) {
		ST_CHECK(env, !"the workload before the fault");
		goto out;
	}

	switch (fault) {
	case CHAOS_LATENCY:
		f.latency_ms = 20 + (unsigned)st_rand_below(&c.rand, 30);
		f.jitter_ms = 5 + (unsigned)st_rand_below(&c.rand, 20);
		st_note(env, "latency %u ms + jitter up to %u ms both ways", f.latency_ms,
			f.jitter_ms);
		st_proxy_set(px, ST_PROXY_AB, &f);
		st_proxy_set(px, ST_PROXY_BA, &f);
		env->faults += 2; /* both ways shaped */
		ST_CHECK(env, workload_during(&c) == 0);
		break;
	case CHAOS_BANDWIDTH:
		f.rate_bps = 4000000 + st_rand_below(&c.rand, 4000000);
		st_note(env, "bandwidth capped at %" PRIu64 " B/s both ways", f.rate_bps);
		st_proxy_set(px, ST_PROXY_AB, &f);
		st_proxy_set(px, ST_PROXY_BA, &f);
		env->faults += 2;
		ST_CHECK(env, workload_during(&c) == 0);
		break;
	case CHAOS_PARTITION:
		st_proxy_partition(px, true);
		ST_CHECK(env, workload_during(&c) == 0);
		/* three missed heartbeats (PARTITION_HEARTBEAT): a side gives the other up */
		ST_CHECK(env, either_log_wait(&c, "is dead: no frame", FAULT_WAIT_MS));
		st_proxy_partition(px, false);
		break;
	case CHAOS_RESET:
		f.reset_after = 1;
		ST_CHECK(env, workload_during(&c) == 0);
		ST_CHECK(env, byte_fault_rounds(&c, f, COUNTER(ST_PROXY_AB, resets), 3) == 0);
		/* and once at a time rather than after bytes, once they are back */
		{
			uint64_t was = counter(&c, ST_PROXY_AB, COUNTER(ST_PROXY_AB, resets));
			json_t *st = st_pair_status_wait(env, &c.pair, 0, is_connected, NULL,
							 FAULT_WAIT_MS, "connected");
			ST_CHECK(env, st != NULL);
			json_decref(st);
			st_proxy_reset_at(px, (unsigned)st_rand_below(&c.rand, 500));
			ST_CHECK(env, counter_wait(&c, ST_PROXY_AB, COUNTER(ST_PROXY_AB, resets),
						   was, FAULT_WAIT_MS));
		}
		break;
	case CHAOS_HALFCLOSE:
		f.halfclose_after = 1;
		ST_CHECK(env, workload_during(&c) == 0);
		ST_CHECK(env, byte_fault_rounds(&c, f, COUNTER(ST_PROXY_AB, halfcloses), 2) == 0);
		break;
	case CHAOS_TRUNCATE:
		f.truncate_after = 1;
		ST_CHECK(env, workload_during(&c) == 0);
		ST_CHECK(env, byte_fault_rounds(&c, f, COUNTER(ST_PROXY_AB, truncates), 2) == 0);
		break;
	case CHAOS_BITFLIP: {
		/* one bit in the a->b stream, past the handshake, inside the big file */
		f.flip_from = 64 * 1024;
		f.flip_to = 768 * 1024;
		f.flip_bits = 1;
		f.shots = 1;
		st_proxy_set(px, ST_PROXY_AB, &f);
		ST_CHECK(env, workload_during(&c) == 0);
		ST_CHECK(env, counter_wait(&c, ST_PROXY_AB, COUNTER(ST_PROXY_AB, flips), 0,
					   FAULT_WAIT_MS));
		ST_CHECK(env, st_peer_log_wait(env, &c.pair.peer[1], "failed authentication",
					       FAULT_WAIT_MS));
		st_note(env, "flips caught by the AEAD (b's log): %u",
			st_peer_log_count(&c.pair.peer[1], "failed authentication", NULL));
		break;
	}
	case CHAOS_STALL: {
		/* shorter than three heartbeats: the connection lives through it */
		uint64_t conns = counter(&c, ST_PROXY_AB, COUNTER(ST_PROXY_AB, conns));
		st_proxy_stall(px, ST_PROXY_AB, 1500 + (unsigned)st_rand_below(&c.rand, 500));
		st_proxy_stall(px, ST_PROXY_BA, 1000 + (unsigned)st_rand_below(&c.rand, 500));
		ST_CHECK(env, workload_during(&c) == 0);
		st_sleep_ms(env, 2000);
		/* the big files were on their way: held, not lost */
		ST_CHECK(env, counter(&c, ST_PROXY_AB, COUNTER(ST_PROXY_AB, delayed)) > 0);
		ST_CHECK(env, counter(&c, ST_PROXY_AB, COUNTER(ST_PROXY_AB, conns)) == conns);
		break;
	}
	}

	/* the faults that stay on while converging: latency and bandwidth; the rest healed */
	if (fault != CHAOS_LATENCY && fault != CHAOS_BANDWIDTH)
		st_proxy_clear(px);
	ms = st_wait_converged(env, &c.pair, NULL, 0, huge ? HUGE_CONVERGE_MS : CONVERGE_MS);
	ST_CHECK(env, ms >= 0);
	if (ms >= 0) {
		st_note(env, "converged %" PRId64 " ms after the fault", ms);
		check_result(&c);
	}
	ST_CHECK(env, st_proxy_open_conns(px) >= 1);
out:
	note_counters(&c);
	st_pair_cleanup(env, &c.pair);
	return env->failures ? ST_FAIL : ST_PASS;
}

int st_chaos_latency(struct st_env *env)
{
	return chaos_run(env, CHAOS_LATENCY, false, 0);
}

int st_chaos_bandwidth(struct st_env *env)
{
	return chaos_run(env, CHAOS_BANDWIDTH, false, 0);
}

int st_chaos_partition(struct st_env *env)
{
	return chaos_run(env, CHAOS_PARTITION, false, 0);
}

int st_chaos_reset(struct st_env *env)
{
	return chaos_run(env, CHAOS_RESET, false, 0);
}

int st_chaos_bitflip(struct st_env *env)
{
	return chaos_run(env, CHAOS_BITFLIP, false, 0);
}

int st_chaos_halfclose(struct st_env *env)
{
	return chaos_run(env, CHAOS_HALFCLOSE, false, 0);
}

int st_chaos_truncate(struct st_env *env)
{
	return chaos_run(env, CHAOS_TRUNCATE, false, 0);
}

int st_chaos_stall(struct st_env *env)
{
	return chaos_run(env, CHAOS_STALL, false, 0);
}

int st_chaos_latency_mount(struct st_env *env)
{
	return chaos_run(env, CHAOS_LATENCY, true, 0);
}

int st_chaos_partition_mount(struct st_env *env)
{
	return chaos_run(env, CHAOS_PARTITION, true, 0);
}

int st_chaos_bitflip_mount(struct st_env *env)
{
	return chaos_run(env, CHAOS_BITFLIP, true, 0);
}

int st_chaos_bandwidth_mount(struct st_env *env)
{
	return chaos_run(env, CHAOS_BANDWIDTH, true, 0);
}

int st_chaos_reset_mount(struct st_env *env)
{
	return chaos_run(env, CHAOS_RESET, true, 0);
}

int st_chaos_halfclose_mount(struct st_env *env)
{
	return chaos_run(env, CHAOS_HALFCLOSE, true, 0);
}

int st_chaos_truncate_mount(struct st_env *env)
{
	return chaos_run(env, CHAOS_TRUNCATE, true, 0);
}

int st_chaos_stall_mount(struct st_env *env)
{
	return chaos_run(env, CHAOS_STALL, true, 0);
}

/* Suite chaos-big: the same, with a's huge file. */
#define CHAOS_BIG(name, fault, mount)                                                              \
	int st_chaos_big_##name(struct st_env *env)                                                \
	{                                                                                          \
		return chaos_run(env, fault, mount, ST_CHAOS_HUGE_SIZE);                           \
	}

CHAOS_BIG(latency, CHAOS_LATENCY, false)
CHAOS_BIG(bandwidth, CHAOS_BANDWIDTH, false)
CHAOS_BIG(partition, CHAOS_PARTITION, false)
CHAOS_BIG(reset, CHAOS_RESET, false)
CHAOS_BIG(bitflip, CHAOS_BITFLIP, false)
CHAOS_BIG(halfclose, CHAOS_HALFCLOSE, false)
CHAOS_BIG(truncate, CHAOS_TRUNCATE, false)
CHAOS_BIG(stall, CHAOS_STALL, false)
CHAOS_BIG(latency_mount, CHAOS_LATENCY, true)
CHAOS_BIG(bandwidth_mount, CHAOS_BANDWIDTH, true)
CHAOS_BIG(partition_mount, CHAOS_PARTITION, true)
CHAOS_BIG(reset_mount, CHAOS_RESET, true)
CHAOS_BIG(bitflip_mount, CHAOS_BITFLIP, true)
CHAOS_BIG(halfclose_mount, CHAOS_HALFCLOSE, true)
CHAOS_BIG(truncate_mount, CHAOS_TRUNCATE, true)
CHAOS_BIG(stall_mount, CHAOS_STALL, true)
