/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The selftest runner: options, TAP, the in-process relay, teardown checks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "base/log.h"
#include "relay.h"
#include "selftest.h"
#include "st_fuse.h"
#include "st_internal.h"
#include "st_sync.h"

#define WATCHDOG_GRACE_MS 5000

enum st_fuse_mode st_fuse_mode = ST_FUSE_AUTO;

static const char selftest_help[] =
	"Usage: tandem selftest [OPTIONS]\n"
	"\n"
	"Prove tandem works on this machine: start a relay in-process on [::1],\n"
	"run tandem peers as child processes, each with its own identity and\n"
	"temporary directories, and run scenarios against them. Output is TAP and\n"
	"ends with 'N passed, N failed, N skipped'. Exit status 0 when nothing\n"
	"failed, 1 otherwise, 2 on a usage error.\n"
	"\n"
	"Options:\n"
	"  --list            list the scenarios and exit\n"
	"  --only NAME...    run only these scenarios (the arguments after --only)\n"
	"  --suite S         run only the scenarios of group S\n"
	"  --keep            keep the temporary directories and logs\n"
	"  --verbose         show every diagnostic, not only those of failures\n"
	"  --no-fuse         skip the FUSE scenarios\n"
	"  --require-fuse    fail, rather than skip, when FUSE cannot be used\n"
	"  -j, --jobs N      run up to N scenarios at once, each in a child process\n"
	"                    (default: 4 per CPU, at most 8); 1 runs\n"
	"                    them one after another in this process\n"
	"  --seed N          the run's seed (0 to 2^64-1; default: a random one)\n"
	"  --repeat N        run the scenarios N times, each round with a fresh seed;\n"
	"                    stop after the first round in which one fails\n"
	"  --soak DURATION   run random rounds until DURATION (30s, 10m, 1h) is up:\n"
	"                    each a random scenario of suite 'chaos' (or of --only,\n"
	"                    --suite) with a random pairing; ends with a summary\n"
	"  --pairing P       the peers of a pair: dir-dir, or mount-dir (FUSE)\n"
	"  -h, --help        show this help\n"
	"\n"
	"Slow scenarios (suite 'slow': gigabyte files, memory bounds) never run by\n"
	"default, only when named: --suite slow, or --only NAME. --list marks them.\n"
	"Suite 'chaos-big' (the chaos scenarios with a 64 MiB file) is slow too.\n"
	"\n"
	"Every run prints its seed first ('# seed: N'). Each scenario draws its\n"
	"random choices from a seed made of the run's seed and its name, so a\n"
	"failure says how to replay it alone:\n"
	"  # reproduce: tandem selftest --only NAME --seed S\n";

/* Children started by scenarios, so the watchdog can kill them. */
static pthread_mutex_t children_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t children[64];	/* protected by children_lock */

void st_children_add(pid_t pid)
{
	pthread_mutex_lock(&children_lock);
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
		if (!children[i]) {
			children[i] = pid;
			break;
		}
	}
	pthread_mutex_unlock(&children_lock);
}

void st_children_del(pid_t pid)
{
	pthread_mutex_lock(&children_lock);
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
		if (children[i] == pid)
			children[i] = 0;
	pthread_mutex_unlock(&children_lock);
}

static void children_kill_all(void)
{
	pthread_mutex_lock(&children_lock);
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
		if (children[i] > 0)
			kill(children[i], SIGKILL);
	pthread_mutex_unlock(&children_lock);
}

/* Relay log capture, for the privacy scenarios. */
static pthread_mutex_t logs_lock = PTHREAD_MUTEX_INITIALIZER;
static char *logs;		/* protected by logs_lock */
static size_t logs_len;		/* protected by logs_lock */
static bool logs_echo;		/* protected by logs_lock */

static void log_capture(enum log_level level, const char *msg, void *userdata)
{
	size_t n = strlen(msg);
	char *p;

	pthread_mutex_lock(&logs_lock);
	if (logs_len + n + 2 < (1u << 20)) {
		p = realloc(logs, logs_len + n + 2);
		if (p) {
			logs = p;
			memcpy(logs + logs_len, msg, n);
			logs[logs_len + n] = '\n';
			logs_len += n + 1;
			logs[logs_len] = '\0';
		}
	}
	if (logs_echo)
		printf("#   [relay] %s: %s\n", log_level_name(level), msg);
	pthread_mutex_unlock(&logs_lock);
}

bool st_logs_contain(const void *needle, size_t len)
{
	bool found;

	pthread_mutex_lock(&logs_lock);
	found = logs && len && memmem(logs, logs_len, needle, len) != NULL;
	pthread_mutex_unlock(&logs_lock);
	return found;
}

size_t st_logs_size(void)
{
	size_t n;

	pthread_mutex_lock(&logs_lock);
	n = logs_len;
	pthread_mutex_unlock(&logs_lock);
	return n;
}

/* Diagnostics of the current scenario, printed when it fails or with --verbose. */
static char diag[16384];
static size_t diag_len;

static __attribute__((format(printf, 1, 0))) void diag_add(const char *fmt, va_list ap)
{
	if (diag_len >= sizeof(diag) - 1)
		return;
	int n = vsnprintf(diag + diag_len, sizeof(diag) - diag_len, fmt, ap);
	if (n > 0)
		diag_len += (size_t)n < sizeof(diag) - diag_len ? (size_t)n : sizeof(diag) - diag_len - 1;
}

static __attribute__((format(printf, 1, 2))) void diag_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_add(fmt, ap);
	va_end(ap);
}

void st_fail(struct st_env *env, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	env->failures++;
	diag_printf("#   %s:%d: check failed: ", file, line);
	va_start(ap, fmt);
	diag_add(fmt, ap);
	va_end(ap);
	diag_printf("\n");
}

void st_note(struct st_env *env, const char *fmt, ...)
{
	va_list ap;

	/* seconds into the scenario: where its time goes */
	if (env->start_ms)
		diag_printf("#   [%.2f] ", (double)(st_now_ms() - env->start_ms) / 1000.0);
	else
		diag_printf("#   ");
	va_start(ap, fmt);
	diag_add(fmt, ap);
	va_end(ap);
	diag_printf("\n");
}

int st_skip(struct st_env *env, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(env->skip_reason, sizeof(env->skip_reason), fmt, ap);
	va_end(ap);
	return ST_SKIP;
}

uint64_t st_now_ms(void)
{
	return clock_mono_ms();
}

uint64_t st_left_ms(const struct st_env *env)
{
	uint64_t now = st_now_ms();
	return now >= env->deadline_ms ? 0 : env->deadline_ms - now;
}

int st_mkdir(struct st_env *env, const char *name, char out[static 512])
{
	if ((size_t)snprintf(out, 512, "%s/%s", env->dir, name) >= 512)
		return -ENAMETOOLONG;
	if (mkdir(out, 0700) < 0)
		return -errno;
	return 0;
}

uint64_t st_seed_derive(uint64_t run_seed, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a of the name */
	struct st_rand r;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	st_rand_seed(&r, run_seed ^ h);
	return st_rand_next(&r);
}

const char *st_pairing_name(enum st_pairing pairing)
{
	switch (pairing) {
	case ST_PAIRING_DIR_DIR: return "dir-dir";
	case ST_PAIRING_MOUNT_DIR: return "mount-dir";
	case ST_PAIRING_DEFAULT: break;
	}
	return NULL;
}

/* A decimal number of digits only, at most max. Returns 0 or -EINVAL. */
static int parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || (uint64_t)(*s - '0') > max ||
		    v > (max - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*ret = v;
	return 0;
}

#define SOAK_MAX_S (30ULL * 24 * 3600)
#define REPEAT_MAX 100000

/* "30s", "10m", "1h": digits and one unit, more than 0 s, at most 30 days.
 * Returns 0 and the ms, or -EINVAL. */
static int parse_duration(const char *s, uint64_t *ret_ms)
{
	size_t len = strlen(s);
	uint64_t v, unit;
	char digits[24];

	if (len < 2 || len - 1 >= sizeof(digits))
		return -EINVAL;
	switch (s[len - 1]) {
	case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	default: return -EINVAL;
	}
	memcpy(digits, s, len - 1);
	digits[len - 1] = '\0';
	if (parse_u64(digits, SOAK_MAX_S, &v) < 0 || v == 0 || v > SOAK_MAX_S / unit)
		return -EINVAL;
	*ret_ms = v * unit * 1000;
	return 0;
}

/* Counts the entries of a /proc directory (fds, threads). */
static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - (strcmp(path, "/proc/self/fd") == 0); /* opendir's own fd */
}

static int rm_rf(const char *path)
{
	DIR *d;
	struct dirent *de;
	struct stat st;
	int r = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 ? -errno : 0;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char sub[4096];
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (rm_rf(sub) < 0)
			r = -EIO;
	}
	closedir(d);
	if (rmdir(path) < 0)
		r = -errno;
	return r;
}

/*
 * The watchdog: ends the run if a scenario overruns its deadline. In a
 * scenario's own process (--jobs > 1) only that scenario fails; in-process
 * (--jobs 1) the whole run bails out, as nothing after a hang can be trusted.
 */
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond;	/* on CLOCK_MONOTONIC, from wd_cond_init */
static pthread_once_t wd_once = PTHREAD_ONCE_INIT;
static uint64_t wd_deadline_ms;		/* protected by wd_lock; 0 = none */
static const char *wd_name;		/* protected by wd_lock */
static int wd_number;			/* protected by wd_lock */
static bool wd_stop;			/* protected by wd_lock */
static bool wd_child;			/* set before the thread starts */

static void *watchdog_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&wd_lock);
	while (!wd_stop) {
		struct timespec ts;
		(void)clock_mono_deadline(&ts, 200);
		pthread_cond_timedwait(&wd_cond, &wd_lock, &ts);
		if (wd_deadline_ms && st_now_ms() > wd_deadline_ms + WATCHDOG_GRACE_MS) {
			printf("not ok %d - %s # timed out: the scenario overran its deadline\n",
			       wd_number, wd_name);
			if (wd_child)
				fwrite(diag, 1, diag_len, stdout); /* the scenario thread hangs */
			else
				printf("Bail out! a scenario hung; killing its processes\n");
			fflush(stdout);
			children_kill_all();
			if (wd_child)
				st_reap_all(1000);
			_exit(1);
		}
	}
	pthread_mutex_unlock(&wd_lock);
	return NULL;
}

/* A wall clock set back must not hold the watchdog up. Once: a forked
 * child has the parent's. */
static void wd_cond_init(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wd_cond, &ca);
	pthread_condattr_destroy(&ca);
}

static int watchdog_start(pthread_t *t, bool child)
{
	(void)pthread_once(&wd_once, wd_cond_init);
	wd_child = child;
	return -pthread_create(t, NULL, watchdog_main, NULL);
}

static void watchdog_stop(pthread_t t)
{
	pthread_mutex_lock(&wd_lock);
	wd_stop = true;
	pthread_cond_signal(&wd_cond);
	pthread_mutex_unlock(&wd_lock);
	pthread_join(t, NULL);
}

static bool selected(const struct st_scenario *s, char **only, int nonly, const char *suite)
{
	bool hidden = s->flags & ST_HIDDEN; /* only by its name */

	if (suite && strcmp(s->suite, suite) != 0)
		return false;
	if (nonly == 0)
		return !hidden && (suite || !(s->flags & ST_SLOW));
	for (int i = 0; i < nonly; i++)
		if (strcmp(only[i], s->name) == 0 || (!hidden && strcmp(only[i], s->suite) == 0))
			return true;
	return false;
}

uint64_t st_deadline_ms(const struct st_scenario *s)
{
	/* a sanitizer build runs the same code several times slower */
	return (uint64_t)s->deadline_s * 1000 * (st_sanitized() ? 3 : 1);
}

/*
 * Runs s as test number n under the watchdog, in a dir of its own under
 * base, with its seed derived from seed; its diagnostics are in diag.
 */
static int scenario_run(struct st_env *env, const struct st_scenario *s, int n, const char *base,
			uint64_t seed, enum st_pairing pairing)
{
	int r;

	env->failures = 0;
	env->skip_reason[0] = '\0';
	env->seed = st_seed_derive(seed, s->name);
	st_rand_seed(&env->rand, env->seed);
	env->pairing = pairing;
	env->bytes = 0;
	env->faults = 0;
	diag_len = 0;
	diag[0] = '\0';
	snprintf(env->dir, sizeof(env->dir), "%s/%s", base, s->name);
	if (mkdir(env->dir, 0700) < 0) {
		st_note(env, "cannot create %s: %s", env->dir, strerror(errno));
		return ST_FAIL;
	}
	env->start_ms = st_now_ms();
	env->deadline_ms = env->start_ms + st_deadline_ms(s);
	pthread_mutex_lock(&wd_lock);
	wd_deadline_ms = env->deadline_ms;
	wd_name = s->name;
	wd_number = n;
	pthread_mutex_unlock(&wd_lock);

	r = s->run(env);

	pthread_mutex_lock(&wd_lock);
	wd_deadline_ms = 0;
	pthread_mutex_unlock(&wd_lock);
	if (r == ST_PASS && env->failures)
		r = ST_FAIL;
	return r == ST_PASS || r == ST_SKIP ? r : ST_FAIL;
}

/* Prints the TAP lines of scenario number n and counts its result. */
static void result_print(const struct st_env *env, int n, const char *name, int r,
			 struct st_counts *c)
{
	if (r == ST_SKIP) {
		printf("ok %d - %s # SKIP %s\n", n, name, env->skip_reason);
		c->skipped++;
	} else if (r == ST_PASS) {
		printf("ok %d - %s\n", n, name);
		c->passed++;
	} else {
		printf("not ok %d - %s\n", n, name);
		c->failed++;
	}
	if (diag_len && (r == ST_FAIL || env->verbose))
		fputs(diag, stdout);
	/* the parallel runner reads this line back (st_jobs.c) */
	if (env->bytes || env->faults)
		printf("# counters: %" PRIu64 " bytes, %" PRIu64 " faults\n", env->bytes,
		       env->faults);
	c->bytes += env->bytes;
	c->faults += env->faults;
}

int st_reap_all(unsigned ms)
{
	uint64_t end = st_now_ms() + ms;
	pid_t w;
	int n = 0;

	do {
		while ((w = waitpid(-1, NULL, WNOHANG)) > 0) {
			st_children_del(w);
			n++;
		}
		if (w < 0)
			break; /* ECHILD: none left */
		poll(NULL, 0, 10);
	} while (st_now_ms() < end);
	return n;
}

/*
 * The end of a scenario in its own process: every process it started must
 * have been reaped. One still running is killed; either way the scenario
 * fails, naming it.
 */
static void leftovers_check(struct st_env *env)
{
	pid_t pids[64], w;
	int st, n;

	while ((w = waitpid(-1, &st, WNOHANG)) > 0)
		st_fail(env, __FILE__, __LINE__, "process %d ended but was never reaped", (int)w);
	n = st_proc_children(pids, 64);
	for (int i = 0; i < n; i++) {
		char comm[64];
		st_proc_comm(pids[i], comm);
		st_fail(env, __FILE__, __LINE__, "process %d (%s) still runs after the scenario",
			(int)pids[i], comm);
		kill(pids[i], SIGKILL);
	}
	if (n > 0)
		st_reap_all(2000);
}

/*
 * `tandem selftest --child N ... NAME`: one scenario in a process of its
 * own, started by the parallel runner (st_jobs.c). It prints the same TAP
 * lines as the in-process runner and exits 0 (pass), 1 (fail) or 77 (skip).
 */
static int child_main(const char *exe, const char *name, int n, const char *relay_url,
		      const char *base, bool verbose, uint64_t seed, enum st_pairing pairing)
{
	const struct st_scenario *s = NULL;
	struct st_counts c = { 0 };
	struct st_env env;
	pthread_t wd;
	int r;

	for (size_t k = 0; k < st_scenarios_count; k++)
		if (!strcmp(st_scenarios[k].name, name))
			s = &st_scenarios[k];
	if (!s || n <= 0 || !relay_url || !base) {
		fprintf(stderr, "tandem: selftest --child needs a number, --child-relay, "
				"--child-base and a scenario name\n");
		return 2;
	}
	memset(&env, 0, sizeof(env));
	env.exe = exe;
	env.verbose = verbose;
	snprintf(env.base, sizeof(env.base), "%s", base);
	snprintf(env.relay_url, sizeof(env.relay_url), "%s", relay_url);
	/* The daemons this scenario starts are its children, to reap and to check. */
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1);

	log_set_sink(log_capture, NULL);
	pthread_mutex_lock(&logs_lock);
	logs_echo = verbose;
	pthread_mutex_unlock(&logs_lock);
	if ((s->flags & ST_OWN_RELAY) && st_relay_start(&env) < 0) {
		printf("not ok %d - %s # cannot start a relay of its own on [::1]\n", n, s->name);
		log_set_sink(NULL, NULL);
		return 1;
	}
	if (watchdog_start(&wd, true) < 0) {
		printf("not ok %d - %s # cannot start the watchdog thread\n", n, s->name);
		st_relay_stop(&env);
		log_set_sink(NULL, NULL);
		return 1;
	}

	r = scenario_run(&env, s, n, env.base, seed, pairing);
	leftovers_check(&env);
	if (env.failures && r == ST_PASS)
		r = ST_FAIL;

	watchdog_stop(wd);
	st_relay_stop(&env);
	log_set_sink(NULL, NULL);
	pthread_mutex_lock(&logs_lock);
	free(logs);
	logs = NULL;
	logs_len = 0;
	pthread_mutex_unlock(&logs_lock);
	result_print(&env, n, s->name, r, &c);
	fflush(stdout);
	return r == ST_SKIP ? 77 : r;
}

/* What a run does, from its options. */
struct run_plan {
	const char *exe;
	const struct st_scenario **sel; /* the chosen scenarios: --soak's pool */
	size_t nsel;
	unsigned jobs;
	bool verbose;
	bool keep;
	uint64_t seed;
	enum st_pairing pairing; /* --pairing, else ST_PAIRING_DEFAULT */
	unsigned repeat;	 /* --repeat; 0: one round */
	uint64_t soak_ms;	 /* --soak; 0: none */
};

/* What the rounds did, for the summary. */
struct run_stats {
	unsigned rounds;
	unsigned failures; /* scenarios that failed */
	int ntests;	   /* TAP result lines printed */
	uint64_t ms;
};

/*
 * One round: the m scenarios sel with seed and pairing, their dirs under
 * base, numbered from number0 + 1 in TAP, in this process (--jobs 1) or
 * each in a child. results[i] gets each one's result. Returns the teardown
 * problems found (processes left behind), described in why.
 */
static int round_run(struct st_env *env, const struct run_plan *rp,
		     const struct st_scenario *const *sel, size_t m, const char *base,
		     uint64_t seed, enum st_pairing pairing, int number0, int *results,
		     struct st_counts *c, char *why, size_t whylen)
{
	if (rp->jobs == 1) {
		for (size_t i = 0; i < m; i++) {
			int n = number0 + (int)i + 1;

			results[i] = scenario_run(env, sel[i], n, base, seed, pairing);
			result_print(env, n, sel[i]->name, results[i], c);
		}
		return 0;
	}
	struct st_jobs_opts jo = {
		.exe = rp->exe,
		.relay_url = env->relay_url,
		.base = base,
		.verbose = rp->verbose,
		.jobs = rp->jobs,
		.seed = seed,
		.pairing = pairing,
		.number0 = number0,
		.results = results,
	};
	return st_jobs_run(&jo, sel, m, c, why, whylen);
}

static void reproduce_print(const struct st_scenario *s, uint64_t seed, enum st_pairing pairing)
{
	const char *pn = st_pairing_name(pairing);

	printf("# reproduce: tandem selftest --only %s --seed %" PRIu64 "%s%s%s\n", s->name, seed,
	       pn ? " --pairing " : "", pn ? pn : "",
	       st_fuse_mode == ST_FUSE_OFF	    ? " --no-fuse"
	       : st_fuse_mode == ST_FUSE_REQUIRED ? " --require-fuse"
						    : "");
}

/*
 * The rounds of a run: one (the default), --repeat N of them (round 1 with
 * the run's seed, the others with seeds drawn from it; it stops after a
 * round in which a scenario failed), or --soak's until the time is up
 * (each a scenario drawn from the pool, and its pairing when it takes
 * either). So the whole run replays from its seed, and each round alone
 * from the round's. Every failure prints the command that replays it.
 * Returns the teardown problems found, described in why.
 */
static int rounds_run(struct st_env *env, const struct run_plan *rp, struct st_counts *c,
		      struct run_stats *stats, char *why, size_t whylen)
{
	int *results = calloc(rp->nsel ? rp->nsel : 1, sizeof(*results));
	uint64_t seed = rp->seed, start = st_now_ms();
	bool many = rp->repeat || rp->soak_ms;
	struct st_rand rnd;
	char base[sizeof(env->base) + 16];
	int bad = 0;

	if (!results) {
		printf("Bail out! out of memory\n");
		c->failed++;
		return 0;
	}
	st_rand_seed(&rnd, rp->seed);
	for (;;) {
		const struct st_scenario *const *sel = rp->sel, *one;
		enum st_pairing pairing = rp->pairing;
		size_t m = rp->nsel;
		int failed0 = c->failed;

		if (stats->rounds > 0 && (!many || (rp->repeat && stats->rounds == rp->repeat) ||
					  (rp->soak_ms && st_now_ms() >= start + rp->soak_ms)))
			break;
		if (stats->rounds > 0)
			seed = st_rand_next(&rnd);
		stats->rounds++;
		if (rp->soak_ms) {
			one = rp->sel[st_rand_below(&rnd, rp->nsel)];
			if (pairing == ST_PAIRING_DEFAULT && (one->flags & ST_PAIRINGS))
				pairing = st_fuse_unusable() || st_rand_below(&rnd, 2)
						  ? ST_PAIRING_DIR_DIR
						  : ST_PAIRING_MOUNT_DIR;
			sel = &one;
			m = 1;
			printf("# round %u: seed %" PRIu64 ", %s%s%s\n", stats->rounds, seed,
			       one->name, st_pairing_name(pairing) ? ", pairing " : "",
			       st_pairing_name(pairing) ? st_pairing_name(pairing) : "");
		} else if (rp->repeat) {
			printf("# round %u/%u: seed %" PRIu64 "\n", stats->rounds, rp->repeat, seed);
		}
		/* a round's scenarios get dirs of their own: NAME is used again */
		snprintf(base, sizeof(base), "%s", env->base);
		if (many) {
			snprintf(base, sizeof(base), "%s/%u", env->base, stats->rounds);
			if (mkdir(base, 0700) < 0) {
				printf("Bail out! cannot create %s: %s\n", base, strerror(errno));
				c->failed++;
				break;
			}
		}
		for (size_t i = 0; i < m; i++)
			results[i] = ST_FAIL; /* until it says otherwise */
		bad += round_run(env, rp, sel, m, base, seed, pairing, stats->ntests, results, c,
				 why, whylen);
		stats->ntests += (int)m;
		for (size_t i = 0; i < m; i++) {
			if (results[i] != ST_FAIL)
				continue;
			stats->failures++;
			reproduce_print(sel[i], seed, pairing);
		}
		/* with --keep, the rounds that failed stay */
		if (many && (!rp->keep || c->failed == failed0))
			(void)rm_rf(base);
		if (rp->repeat && c->failed > failed0) {
			printf("# stopped after round %u of %u: a scenario failed\n", stats->rounds,
			       rp->repeat);
			break;
		}
	}
	stats->ms = st_now_ms() - start;
	free(results);
	return bad;
}

/* The default number of jobs: four per CPU this process may use, at most
 * JOBS_MAX_DEFAULT. Scenarios mostly wait (for daemons, the network,
 * timers): on 2 CPUs, 8 at once finish the run in 20 s, 3 in 40 s. */
static unsigned jobs_default(void)
{
	cpu_set_t set;
	int ncpu = 0;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		ncpu = CPU_COUNT(&set);
	if (ncpu <= 0)
		ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu <= 0)
		ncpu = 2;
	return 4 * ncpu > JOBS_MAX_DEFAULT ? JOBS_MAX_DEFAULT : 4 * (unsigned)ncpu;
}

int selftest_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "list", no_argument, NULL, 'l' },
		{ "only", no_argument, NULL, 'o' },
		{ "suite", required_argument, NULL, 's' },
		{ "keep", no_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "no-fuse", no_argument, NULL, 'n' },
		{ "require-fuse", no_argument, NULL, 'r' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "seed", required_argument, NULL, 'S' },
		{ "repeat", required_argument, NULL, 'P' },
		{ "soak", required_argument, NULL, 'K' },
		{ "pairing", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		/* internal: one scenario in a child process of the parallel runner */
		{ "child", required_argument, NULL, 'C' },
		{ "child-relay", required_argument, NULL, 'R' },
		{ "child-base", required_argument, NULL, 'B' },
		{ 0 },
	};
	bool list = false, keep = false, verbose = false, only_mode = false;
	const char *suite = NULL, *child_relay = NULL, *child_base = NULL;
	char **only = NULL;
	int nonly = 0, c, fds0, threads0, child = 0;
	unsigned jobs = 0;
	struct st_counts counts = { 0 };
	struct run_plan rp = { 0 };
	struct run_stats stats = { 0 };
	bool seeded = false;
	struct st_env env;
	char exe[4096], *end;
	pthread_t wd;
	ssize_t len;
	uint64_t u;
	long v;

	/* 0, not 1: a fresh start, so that the options may also come after
	 * --only's names (`--only NAME --seed S`), which getopt moves last */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hj:", opts, NULL)) != -1) {
		switch (c) {
		case 'l': list = true; break;
		case 'o': only_mode = true; break;
		case 's': suite = optarg; break;
		case 'k': keep = true; break;
		case 'v': verbose = true; break;
		case 'n': st_fuse_mode = ST_FUSE_OFF; break;
		case 'r': st_fuse_mode = ST_FUSE_REQUIRED; break;
		case 'j':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 1 || v > JOBS_MAX) {
				fprintf(stderr, "tandem: --jobs takes a number from 1 to %d, not "
						"'%s'\n", JOBS_MAX, optarg);
				return 2;
			}
			jobs = (unsigned)v;
			break;
		case 'S':
			if (parse_u64(optarg, UINT64_MAX, &rp.seed) < 0) {
				fprintf(stderr, "tandem: --seed takes a number from 0 to %" PRIu64
						", not '%s'\n", UINT64_MAX, optarg);
				return 2;
			}
			seeded = true;
			break;
		case 'P':
			if (parse_u64(optarg, REPEAT_MAX, &u) < 0 || u == 0) {
				fprintf(stderr, "tandem: --repeat takes a number of rounds from 1 to "
						"%d, not '%s'\n", REPEAT_MAX, optarg);
				return 2;
			}
			rp.repeat = (unsigned)u;
			break;
		case 'K':
			if (parse_duration(optarg, &rp.soak_ms) < 0) {
				fprintf(stderr, "tandem: --soak takes a duration: a number and s, m or "
						"h (30s, 10m, 1h; at most 30 days), not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'p':
			if (!strcmp(optarg, "dir-dir")) {
				rp.pairing = ST_PAIRING_DIR_DIR;
			} else if (!strcmp(optarg, "mount-dir")) {
				rp.pairing = ST_PAIRING_MOUNT_DIR;
			} else {
				fprintf(stderr, "tandem: --pairing takes dir-dir or mount-dir, not "
						"'%s'\n", optarg);
				return 2;
			}
			break;
		case 'C':
			child = atoi(optarg);
			break;
		case 'R': child_relay = optarg; break;
		case 'B': child_base = optarg; break;
		case 'h':
			fputs(selftest_help, stdout);
			return 0;
		case ':':
			fprintf(stderr, "tandem: option '%s' needs a value; see 'tandem selftest "
					"--help'\n", argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "tandem: unknown option '%s' for selftest; see 'tandem "
					"selftest --help'\n", argv[optind - 1]);
			return 2;
		}
	}
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len < 0) {
		fprintf(stderr, "tandem: cannot find my own binary (/proc/self/exe): %s\n",
			strerror(errno));
		return 1;
	}
	exe[len] = '\0';
	if (child)
		return child_main(exe, optind + 1 == argc ? argv[optind] : "", child, child_relay,
				  child_base, verbose, rp.seed, rp.pairing);
	if (rp.repeat && rp.soak_ms) {
		fprintf(stderr, "tandem: --repeat and --soak do not go together: --soak runs "
				"rounds until its time is up\n");
		return 2;
	}
	if (optind < argc) {
		if (!only_mode) {
			fprintf(stderr, "tandem: unexpected argument '%s'; to run only some "
					"scenarios use --only NAME...; see 'tandem selftest --help'\n",
				argv[optind]);
			return 2;
		}
		only = argv + optind;
		nonly = argc - optind;
	} else if (only_mode) {
		fprintf(stderr, "tandem: --only needs at least one scenario name; 'tandem selftest "
				"--list' shows them\n");
		return 2;
	}
	for (int i = 0; i < nonly; i++) {
		bool known = false;
		for (size_t k = 0; k < st_scenarios_count; k++)
			known |= !strcmp(only[i], st_scenarios[k].name) ||
				 !strcmp(only[i], st_scenarios[k].suite);
		if (!known) {
			fprintf(stderr, "tandem: no scenario or suite named '%s'; 'tandem selftest "
					"--list' shows them\n", only[i]);
			return 2;
		}
	}
	if (suite) {
		bool known = false;
		for (size_t k = 0; k < st_scenarios_count; k++)
			known |= !strcmp(suite, st_scenarios[k].suite);
		if (!known) {
			fprintf(stderr, "tandem: no suite named '%s'; 'tandem selftest --list' shows "
					"them\n", suite);
			return 2;
		}
	}
	if (rp.pairing == ST_PAIRING_MOUNT_DIR && st_fuse_unusable()) {
		fprintf(stderr, "tandem: --pairing mount-dir needs FUSE, and it cannot be used "
				"here: %s\n", st_fuse_unusable());
		return 2;
	}
	if (rp.soak_ms && !nonly && !suite) {
		/* the soak's pool: the chaos suite, or the older faults one */
		suite = "faults";
		for (size_t k = 0; k < st_scenarios_count; k++)
			if (!strcmp(st_scenarios[k].suite, "chaos"))
				suite = "chaos";
	}
	if (list) {
		for (size_t k = 0; k < st_scenarios_count; k++) {
			const struct st_scenario *s = &st_scenarios[k];
			/* slow ones are listed too, marked: they run when named */
			if (selected(s, only, nonly, suite) ||
			    ((s->flags & ST_SLOW) && !nonly && !suite))
				printf("%-10s %-28s %s%s\n", s->suite, s->name,
				       s->flags & ST_SLOW ? "(slow) " : "", s->summary);
		}
		return 0;
	}
	if (!jobs)
		jobs = jobs_default();
	if (!seeded)
		randombytes_buf(&rp.seed, sizeof(rp.seed));

	setvbuf(stdout, NULL, _IOLBF, 0);
	fflush(stdout);
	fds0 = count_dir("/proc/self/fd");
	threads0 = count_dir("/proc/self/task");

	memset(&env, 0, sizeof(env));
	env.verbose = verbose;
	env.exe = exe;
	/*
	 * The peers' control sockets live under the base dir and a socket path
	 * has at most 107 bytes: a long TMPDIR falls back to /tmp.
	 */
	const char *tmp = getenv("TMPDIR");
	snprintf(env.base, sizeof(env.base), "%s/tandem-selftest-XXXXXX",
		 tmp && tmp[0] == '/' && strlen(tmp) <= 40 ? tmp : "/tmp");
	/* Daemons started by the selftest must not talk to the caller's systemd. */
	unsetenv("NOTIFY_SOCKET");
	if (!mkdtemp(env.base)) {
		fprintf(stderr, "tandem: cannot create a temporary directory in %s: %s; set "
				"TMPDIR to a writable directory\n",
			tmp ? tmp : "/tmp", strerror(errno));
		return 1;
	}

	/* the seed first, so that even a run that hangs says how to replay it */
	printf("TAP version 13\n# seed: %" PRIu64 "\n", rp.seed);
	log_set_sink(log_capture, NULL);
	pthread_mutex_lock(&logs_lock);
	logs_echo = verbose;
	pthread_mutex_unlock(&logs_lock);
	if (st_relay_start(&env) < 0) {
		printf("Bail out! cannot start the relay on [::1]\n");
		log_set_sink(NULL, NULL);
		rm_rf(env.base);
		return 1;
	}
	if (jobs == 1 && watchdog_start(&wd, false) < 0) {
		printf("Bail out! cannot start the watchdog thread\n");
		return 1;
	}

	const struct st_scenario **sel = calloc(st_scenarios_count + 1, sizeof(*sel));
	size_t total = 0;
	for (size_t k = 0; sel && k < st_scenarios_count; k++)
		if (selected(&st_scenarios[k], only, nonly, suite))
			sel[total++] = &st_scenarios[k];
	bool many = rp.repeat || rp.soak_ms;
	/* with several rounds the plan comes at the end */
	if (!many)
		printf("1..%zu\n", total + 1);
	printf("# tandem selftest: relay at %s, work dir %s\n", env.relay_url, env.base);
	if (rp.soak_ms)
		printf("# soaking for %" PRIu64 " s: rounds drawn from %zu scenario(s)%s%s\n",
		       rp.soak_ms / 1000, total, suite ? " of suite " : "", suite ? suite : "");

	int teardown_bad = 0;
	char why[1024] = "";
	size_t wl = 0;

	rp.exe = exe;
	rp.sel = sel;
	rp.nsel = total;
	rp.jobs = jobs;
	rp.verbose = verbose;
	rp.keep = keep;
	if (!sel) {
		printf("Bail out! out of memory\n");
		counts.failed++;
	} else if (rp.soak_ms && !total) {
		printf("# soak: no scenario to draw from\n");
		counts.failed++;
	} else {
		/* Orphans of a scenario's process come here, to be seen and reaped. */
		if (jobs > 1)
			(void)prctl(PR_SET_CHILD_SUBREAPER, 1);
		teardown_bad += rounds_run(&env, &rp, &counts, &stats, why, sizeof(why));
		wl = strlen(why);
	}
	free(sel);
	total = (size_t)stats.ntests;

	/* Teardown: relay, watchdog, dirs; then fds and threads must be back. */
	st_relay_stop(&env);
	if (jobs == 1)
		watchdog_stop(wd);
	log_set_sink(NULL, NULL);
	pthread_mutex_lock(&logs_lock);
	free(logs);
	logs = NULL;
	logs_len = 0;
	pthread_mutex_unlock(&logs_lock);

	pid_t left, live[64];
	while ((left = waitpid(-1, NULL, WNOHANG)) > 0) {
		teardown_bad++;
		wl += (size_t)snprintf(why + wl, sizeof(why) - wl, " child %d was not reaped;",
				       (int)left);
		wl = wl < sizeof(why) ? wl : sizeof(why) - 1;
	}
	int mounts = st_mounts_clear_under(env.base);
	if (mounts) {
		teardown_bad++;
		wl += (size_t)snprintf(why + wl, sizeof(why) - wl,
				       " %d mount(s) left under %s (detached now);", mounts,
				       env.base);
	}
	int nlive = st_proc_children(live, 64);
	for (int i = 0; i < nlive; i++) {
		char comm[64];
		st_proc_comm(live[i], comm);
		teardown_bad++;
		wl += (size_t)snprintf(why + wl, sizeof(why) - wl, " process %d (%s) still runs;",
				       (int)live[i], comm);
		wl = wl < sizeof(why) ? wl : sizeof(why) - 1;
		kill(live[i], SIGKILL);
	}
	if (nlive > 0)
		st_reap_all(2000);
	if (keep) {
		printf("# kept the work dir %s\n", env.base);
	} else if (rm_rf(env.base) < 0 || access(env.base, F_OK) == 0) {
		teardown_bad++;
		wl += (size_t)snprintf(why + wl, sizeof(why) - wl, " cannot remove %s;", env.base);
		wl = wl < sizeof(why) ? wl : sizeof(why) - 1;
	}
	int fds1 = count_dir("/proc/self/fd"), threads1 = count_dir("/proc/self/task");
	if (fds1 != fds0) {
		teardown_bad++;
		wl += (size_t)snprintf(why + wl, sizeof(why) - wl, " open fds %d -> %d;", fds0,
				       fds1);
		wl = wl < sizeof(why) ? wl : sizeof(why) - 1;
	}
	if (threads1 != threads0) {
		teardown_bad++;
		wl += (size_t)snprintf(why + wl, sizeof(why) - wl, " threads %d -> %d;",
				       threads0, threads1);
	}
	if (teardown_bad) {
		printf("not ok %zu - teardown\n#  %s\n", total + 1, why);
		counts.failed++;
	} else {
		printf("ok %zu - teardown\n", total + 1);
		counts.passed++;
	}
	if (many)
		printf("1..%zu\n", total + 1);
	if (rp.soak_ms)
		printf("# soak: %u rounds, %" PRIu64 " bytes, %" PRIu64 " faults, %u failures in "
		       "%" PRIu64 " s\n",
		       stats.rounds, counts.bytes, counts.faults, stats.failures, stats.ms / 1000);
	printf("%d passed, %d failed, %d skipped\n", counts.passed, counts.failed,
	       counts.skipped);
	return counts.failed ? 1 : 0;
}

int cmd_selftest(struct cli_ctx *ctx, int argc, char **argv)
{
	(void)ctx; /* the selftest makes its own --home for every peer */
	return selftest_main(argc, argv);
}
