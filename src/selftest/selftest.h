/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SELFTEST_H
#define TANDEM_SELFTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "st_rand.h"

/*
 * `tandem selftest`: proves tandem end to end on one machine. The harness
 * starts the relay in-process on [::1] with a port the OS picks, runs
 * `tandem` itself as child processes (each peer with its own --home), runs
 * scenarios against them and checks that everything is torn down.
 *
 * A scenario is a function with a deadline. It reports failures with
 * ST_CHECK (prints the expression and file:line as a TAP diagnostic and
 * goes on) or ST_REQUIRE (returns), and can skip with st_skip(). Every wait
 * inside a scenario goes through a helper that honours the deadline, and a
 * watchdog fails a scenario that overruns it anyway (and kills what it
 * started).
 *
 * With --jobs N > 1 (the default) each scenario runs in a child process of
 * its own, several at once (st_jobs.c); its process-wide state (the
 * environment, the children it reaps) is its own. With --jobs 1 they all
 * run in this process, one after another.
 *
 * Randomness: every run has a seed (printed first, `# seed: N`; random
 * unless --seed N), and each scenario gets its own seed, derived from the
 * run's and its name, in env->seed, with env->rand seeded from it: a
 * scenario draws every random choice it makes (timing, sizes, the fault it
 * injects) from env->rand, so `--only NAME --seed N` replays it exactly as
 * it ran in the full run.
 */

struct relay_server;
struct st_env;

enum st_result {
	ST_PASS = 0,
	ST_FAIL = 1,
	ST_SKIP = 77,
};

enum st_flags {
	/* Runs only when asked for by name or suite (--only, --suite), never by default. */
	ST_SLOW = 1U << 0,
	/*
	 * Looks at the in-process relay's state or logs, or stops it: run in a
	 * process of its own (--jobs > 1), it gets a relay of its own there.
	 */
	ST_OWN_RELAY = 1U << 1,
	/*
	 * Keeps the CPU busy for seconds (big files, many files): with --jobs > 1
	 * such scenarios start first and do not overlap each other, so that they
	 * neither starve one another nor end up last.
	 */
	ST_HEAVY = 1U << 2,
	/*
	 * Runs with either pairing (it makes its pair with st_pair_make(), which
	 * follows env->pairing): --soak picks one at random for each round.
	 */
	ST_PAIRINGS = 1U << 3,
	/* Not listed, and runs only when named with --only: a scenario that
	 * tests the runner itself (selftest-flaky fails on purpose). */
	ST_HIDDEN = 1U << 4,
	/*
	 * Takes seconds, mostly waiting (a slow link, quiet periods, timers):
	 * with --jobs > 1 it starts before the other light scenarios, so that
	 * the run does not end waiting for it alone (tests/bench/selftest-bench.sh
	 * shows which they are).
	 */
	ST_LONG = 1U << 5,
};

/* The two peers' kinds in a pair (st_sync.h). */
enum st_pairing {
	ST_PAIRING_DEFAULT = 0, /* mount<->dir when FUSE can be used, else dir<->dir */
	ST_PAIRING_DIR_DIR,	/* both plain directories */
	ST_PAIRING_MOUNT_DIR,	/* side a a FUSE mount, side b a plain directory */
};

struct st_scenario {
	const char *name;
	const char *suite;	/* group: "identity", "relay", ... */
	const char *summary;
	unsigned deadline_s;	/* times 3 in a sanitizer build */
	int (*run)(struct st_env *env);
	unsigned flags;		/* enum st_flags */
};

/* What a scenario sees. */
struct st_env {
	const char *exe;		/* path of this tandem binary */
	char base[256];			/* the run's temp dir */
	char dir[512];			/* this scenario's own dir under base */
	char relay_url[128];		/* the in-process relay */
	struct relay_server *relay;
	bool verbose;
	int failures;			/* checks failed in the current scenario */
	char skip_reason[256];
	uint64_t start_ms, deadline_ms; /* monotonic */
	uint64_t seed;			/* this scenario's, from the run's seed and its name */
	struct st_rand rand;		/* seeded with seed: every random choice comes from it */
	enum st_pairing pairing;	/* --pairing, or --soak's pick for an ST_PAIRINGS one */
	/* Counters the scenario (and its fault proxy) add to; --soak sums them. */
	uint64_t bytes;			/* bytes the peers sent each other */
	uint64_t faults;		/* faults injected (resets, kills, stalls, flips...) */
};

/* Output of a child process. */
struct st_proc_out {
	int status;		/* exit code, or 128+signal, or -1 on timeout */
	char out[8192];
	char err[8192];
};

#define ST_CHECK(env, expr)                                                              \
	do {                                                                             \
		if (!(expr))                                                             \
			st_fail((env), __FILE__, __LINE__, "%s", #expr);                 \
	} while (0)

#define ST_REQUIRE(env, expr)                                                            \
	do {                                                                             \
		if (!(expr)) {                                                           \
			st_fail((env), __FILE__, __LINE__, "%s", #expr);                 \
			return ST_FAIL;                                                  \
		}                                                                        \
	} while (0)

void st_fail(struct st_env *env, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A TAP diagnostic line ("# ..."), shown with --verbose or when the scenario fails. */
void st_note(struct st_env *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int st_skip(struct st_env *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

uint64_t st_now_ms(void);
/* ms left before the scenario's deadline (0 when past it). */
uint64_t st_left_ms(const struct st_env *env);

/*
 * Runs this tandem binary with argv (NULL-terminated, without argv[0]),
 * stdin from /dev/null, and collects its output, waiting at most until the
 * scenario's deadline (then kills it: status -1). Returns 0 or -errno.
 */
int st_run_tandem(struct st_env *env, struct st_proc_out *out, const char *const *argv);

/* Runs `sh -c script` the same way (stdin /dev/null, output collected,
 * killed at the deadline). Returns 0 or -errno. */
int st_run_sh(struct st_env *env, struct st_proc_out *out, const char *script);

/* A fresh directory under the scenario's dir; returns its path in out. */
int st_mkdir(struct st_env *env, const char *name, char out[static 512]);

/* Registered scenarios (selftest_scenarios.c). */
extern const struct st_scenario st_scenarios[];
extern const size_t st_scenarios_count;

/* `tandem selftest` entry point. */
int selftest_main(int argc, char **argv);
/* `tandem selftest` in the executable's command table (src/main.c). */
struct cli_ctx;
int cmd_selftest(struct cli_ctx *ctx, int argc, char **argv);

#endif
