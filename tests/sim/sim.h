/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SIM_H
#define TANDEM_SIM_H

/*
 * The deterministic simulation of two sync engines (docs/SIM.md).
 *
 * sim.c runs one seed: two engines over their own temp trees and indexes,
 * joined by an in-memory channel, driven step by step by a seeded PRNG in
 * virtual time. sim_fs.c is the user: random operations on the trees, the
 * model of what was written and deleted, and the checks at the end.
 * Everything the run does goes into a trace hash: the same seed gives the
 * same hash, bit for bit.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "st_rand.h"
#include "sync/engine.h"

#define SIM_PATH_MAX 512
#define SIM_FAIL_LEN 1024

/* xoshiro256** seeded through splitmix64 (the selftest's st_rand), never rand(). */
struct sim_rng {
	struct st_rand r;
};

void sim_rng_seed(struct sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(struct sim_rng *r);
/* In [0, n) (next % n: a bias below 2^-40 for the small n used); 0 when n is 0. */
uint64_t sim_rng_below(struct sim_rng *r, uint64_t n);
/* True with probability permille / 1000. */
bool sim_rng_chance(struct sim_rng *r, unsigned permille);

struct sim_msg {
	struct sim_msg *next;
	size_t len;
	uint8_t data[];
};

/* One direction of the channel: ordered, as the protocol's stream is. */
struct sim_queue {
	struct sim_msg *head, *tail;
	size_t n, bytes;
};

struct sim;

struct sim_peer {
	struct sim *sim;
	int id; /* 0: A, 1: B */
	char name;
	bool lazy;
	char root[SIM_PATH_MAX];
	char index[SIM_PATH_MAX];
	struct engine *e;
	struct sim_queue out; /* to the other peer */
	uint64_t sent;	      /* messages */
};

/* What the user did to one path (sim_fs.c). */
struct sim_prec {
	char *path;
	uint64_t w_op, w_epoch; /* last write (or write beneath it) */
	uint64_t d_op, d_epoch; /* last deletion (or rename away) */
	uint64_t wep[2];	/* epoch + 1 of each side's last write at or beneath it */
	bool conc;		/* both sides wrote at or beneath it in one epoch */
};

/* A content version a user wrote: its file hash (the index's). */
struct sim_ver {
	uint8_t h[32];
	bool dead; /* overwritten or deleted by a user who had it */
	uint64_t op;
	char side;
	uint64_t size;
};

struct sim_stats {
	uint64_t ops, ops_skipped, msgs, bytes, drops, crashes, hard_crashes, settles, ensures,
		ensure_fail, conflicts, steps;
};

struct sim {
	uint64_t seed;
	bool lazy;
	bool trace;
	bool no_type_clash; /* names are of one kind: no file/directory clashes */
	int verbose;
	unsigned nops;
	char base[256]; /* this run's temp directory */
	struct sim_rng rng;
	crypto_generichash_state th;
	uint64_t now_ms; /* virtual monotonic time */
	int64_t wall_ns; /* virtual wall clock for mtimes */
	struct sim_peer p[2];
	bool conn;	     /* the channel is up (engine_on_up on both) */
	char cur;	     /* the peer whose engine runs (for its log lines) */
	size_t room_cap;     /* bytes a direction holds */
	unsigned down_steps; /* partition: steps until the channel comes back */
	uint64_t epoch;	     /* settles so far: a barrier of full sync */
	uint64_t opno;
	unsigned crashes_left;
	bool failed;
	char fail[SIM_FAIL_LEN];
	struct sim_stats st;
	/* the model (sim_fs.c) */
	struct sim_prec *prec;
	size_t nprec, prec_cap;
	struct sim_ver *ver;
	size_t nver, ver_cap;
	char touched[2][SIM_PATH_MAX]; /* by the current operation (first, last) */
};

/* sim.c */
void sim_trace(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_failf(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Lazy mode: runs engine_ensure of path (whole file) on a helper thread as
 * FUSE would, the loop going on here until it returns. Its result. */
int sim_ensure(struct sim *s, struct sim_peer *p, const char *path);
/* Delivers and runs everything until nothing moves (not a barrier). */
void sim_drain(struct sim *s);
/* Connection up, everything delivered and both engines idle: a barrier
 * (epoch + 1); a failure when they do not get there. */
void sim_settle(struct sim *s);

/* sim_fs.c */
int sim_fs_rmtree(const char *path);
/* One random user operation on peer p (or on both: a concurrent edit). */
void sim_fs_op(struct sim *s, struct sim_peer *p);
void sim_fs_concurrent(struct sim *s);
/* The invariants after quiescence; failures through sim_failf. */
void sim_fs_check(struct sim *s);
void sim_fs_model_free(struct sim *s);
/* The engine made path (a conflict copy). */
void sim_fs_engine_wrote(struct sim *s, const char *path);
/* Directory mtimes are the kernel's clock's after the engine wrote in them:
 * virtual ones before a restart's full scan records them. */
void sim_fs_dir_mtimes(struct sim *s, const struct sim_peer *p);

#endif
