/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ST_INTERNAL_H
#define TANDEM_ST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "selftest.h"

/* Shared between the selftest's own files; not for scenarios. */

enum st_fuse_mode {
	ST_FUSE_AUTO,
	ST_FUSE_OFF,
	ST_FUSE_REQUIRED,
};
extern enum st_fuse_mode st_fuse_mode;

void st_children_add(pid_t pid);
void st_children_del(pid_t pid);

/* True when the in-process relay's log holds these bytes. */
bool st_logs_contain(const void *needle, size_t len);
size_t st_logs_size(void);

int st_relay_start(struct st_env *env);
void st_relay_stop(struct st_env *env);

/* The processes whose parent is this one (running or not yet reaped), at
 * most cap of them, found in /proc. Returns how many. */
int st_proc_children(pid_t *pids, int cap);
/* In a forked child before exec: no blocked signals, stdin from /dev/null,
 * stdout to out, stderr to err (-1: left alone). */
void st_child_stdio(int out, int err);
/* Its command line (cut to 63 bytes), or "?". */
void st_proc_comm(pid_t pid, char out[static 64]);
/* Reaps every child that ends within ms (none left: returns at once).
 * Returns how many were reaped. */
int st_reap_all(unsigned ms);

/* How long scenario s may run: its deadline_s, times 3 in a sanitizer build. */
uint64_t st_deadline_ms(const struct st_scenario *s);

#define JOBS_MAX 64
#define JOBS_MAX_DEFAULT 8

struct st_counts {
	int passed;
	int failed;
	int skipped;
	uint64_t bytes;		/* st_env's counters, summed */
	uint64_t faults;
};

/* The seed of scenario name in a run (or round) with seed run_seed. */
uint64_t st_seed_derive(uint64_t run_seed, const char *name);
/* "dir-dir", "mount-dir", or NULL for ST_PAIRING_DEFAULT. */
const char *st_pairing_name(enum st_pairing pairing);

struct st_jobs_opts {
	const char *exe;
	const char *relay_url;	/* the shared in-process relay */
	const char *base;	/* the run's temp dir */
	bool verbose;
	unsigned jobs;		/* at most this many at once, >= 2 */
	uint64_t seed;		/* the run's (or round's) seed */
	enum st_pairing pairing;
	int number0;		/* TAP number of the first scenario, minus 1 */
	int *results;		/* NULL, or gets each scenario's ST_PASS/FAIL/SKIP */
};

/*
 * Runs the n scenarios sel (numbered o->number0 + 1.. in TAP) each in a
 * child process, `tandem selftest --child N ...`, at most o->jobs at a
 * time, and prints their TAP lines in order as they finish; counts their
 * results (and the counters a child prints, "# counters: ..."). A child
 * that overruns its deadline and its own watchdog is killed, with what it
 * left running, and fails. This process must be a child subreaper. Returns
 * the number of teardown problems (processes left behind), described in
 * why (" ...;" each).
 */
int st_jobs_run(const struct st_jobs_opts *o, const struct st_scenario *const *sel, size_t n,
		struct st_counts *c, char *why, size_t whylen);

#endif
