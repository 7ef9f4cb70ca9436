/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The parallel runner (--jobs N, N > 1): each scenario runs in a child
 * process, `tandem selftest --child N --child-relay URL --child-base DIR
 * NAME`, this same binary exec'd afresh. Scenarios mostly wait (for daemons,
 * the network, timers), so several at once finish the run sooner.
 *
 * Why exec and not a bare fork: this process has threads (the relay's), so
 * a forked copy could inherit a lock held by one of them (the log module's,
 * malloc's) and the relay's sockets; a fresh process has neither. The child
 * talks to the relay of this process over HTTP only. A scenario that needs
 * the relay's in-process state, or stops the relay (ST_OWN_RELAY), starts a
 * relay of its own in its process.
 *
 * The child is a child subreaper: the daemons its scenario starts become its
 * children, and it reaps them, and fails when one is left over. It prints
 * the same TAP lines as the in-process runner to a pipe; this runner keeps
 * them until every scenario before it has been printed, so the output is in
 * order and the same as with --jobs 1. The child's exit status says the
 * result: 0 pass, 1 fail, 77 skip. Anything else (a crash, a sanitizer's
 * exit code) fails the scenario here, with what it printed shown as
 * diagnostics.
 *
 * Hangs: the child's own watchdog reports a scenario past its deadline and
 * kills what it started. Should the child itself hang, this runner kills it
 * WATCHDOG_BACKSTOP_MS later, and then the processes it left behind (they
 * are reparented here: this process is a child subreaper too).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "selftest.h"
#include "st_internal.h"

#define WATCHDOG_BACKSTOP_MS 12000 /* after the deadline; the child's own watchdog: 5000 */
#define OUT_MAX (4u << 20)	    /* output kept per scenario; the rest is read and dropped */
#define REAP_WAIT_MS 2000
#define HEAVY_MAX 2 /* ST_HEAVY scenarios at once */

struct job {
	const struct st_scenario *s;
	int number;	  /* in TAP */
	pid_t pid;	  /* 0: not started; -1: could not be started */
	int fd;		  /* read end of its stdout; -1 once at EOF */
	char *out;	  /* what it printed */
	size_t len, cap;
	uint64_t kill_ms; /* monotonic: kill it when still running then */
	int status;	  /* wait status, once reaped */
	struct rusage ru; /* its and its reaped descendants' */
	bool reaped;
	uint64_t start_ms, reaped_ms;
	bool killed; /* by this runner */
	char spawn_err[128];
};

static int job_spawn(const struct st_jobs_opts *o, struct job *j)
{
	char num[16], seed[24];
	const char *argv[20];
	size_t n = 0;
	int p[2];
	pid_t pid;

	snprintf(num, sizeof(num), "%d", j->number);
	argv[n++] = o->exe;
	argv[n++] = "selftest";
	argv[n++] = "--child";
	argv[n++] = num;
	argv[n++] = "--child-relay";
	argv[n++] = o->relay_url;
	argv[n++] = "--child-base";
	argv[n++] = o->base;
	snprintf(seed, sizeof(seed), "%" PRIu64, o->seed);
	argv[n++] = "--seed";
	argv[n++] = seed;
	if (st_pairing_name(o->pairing)) {
		argv[n++] = "--pairing";
		argv[n++] = st_pairing_name(o->pairing);
	}
	if (o->verbose)
		argv[n++] = "--verbose";
	if (st_fuse_mode == ST_FUSE_OFF)
		argv[n++] = "--no-fuse";
	else if (st_fuse_mode == ST_FUSE_REQUIRED)
		argv[n++] = "--require-fuse";
	argv[n++] = "--";
	argv[n++] = j->s->name;
	argv[n] = NULL;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0) {
		st_child_stdio(p[1], -1);
		execv(o->exe, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	(void)fcntl(p[0], F_SETFL, O_NONBLOCK);
	j->pid = pid;
	j->fd = p[0];
	j->start_ms = st_now_ms();
	j->kill_ms = j->start_ms + st_deadline_ms(j->s) + WATCHDOG_BACKSTOP_MS;
	return 0;
}

/* Reads what the child printed; closes at EOF. */
static void job_read(struct job *j)
{
	char sink[4096];

	for (;;) {
		char *buf = sink;
		size_t room = sizeof(sink);
		ssize_t k;

		if (j->len + 4096 > j->cap && j->cap < OUT_MAX) {
			size_t cap = j->cap ? j->cap * 2 : 16384;
			char *p = realloc(j->out, cap);
			if (p) {
				j->out = p;
				j->cap = cap;
			}
		}
		if (j->len + 1 < j->cap) {
			buf = j->out + j->len;
			room = j->cap - 1 - j->len;
		}
		k = read(j->fd, buf, room);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			return;
		if (k <= 0) {
			close(j->fd);
			j->fd = -1;
			return;
		}
		if (buf != sink) {
			j->len += (size_t)k;
			j->out[j->len] = '\0';
		}
	}
}

/* Whether out begins with the TAP line the exit status says it must,
 * after any diagnostics (--verbose: the log of a relay of its own). */
static bool out_agrees(const struct job *j, int code)
{
	char head[300];
	const char *o = j->out;
	size_t n;

	if (!o)
		return false;
	while (*o == '#' && strchr(o, '\n'))
		o = strchr(o, '\n') + 1;
	n = (size_t)snprintf(head, sizeof(head), "%s %d - %s%s", code == 1 ? "not ok" : "ok",
			     j->number, j->s->name, code == 77 ? " # SKIP" : "");
	if (n >= sizeof(head) || strncmp(o, head, n) != 0)
		return false;
	return code == 77 || o[n] == '\n' || (code == 1 && o[n] == ' ');
}

/* Adds the counters the child printed ("# counters: B bytes, F faults"). */
static void job_counters(const struct job *j, struct st_counts *c)
{
	const char *p = j->out ? strstr(j->out, "\n# counters: ") : NULL;
	uint64_t bytes, faults;

	if (p && sscanf(p, "\n# counters: %" SCNu64 " bytes, %" SCNu64 " faults", &bytes,
			&faults) == 2) {
		c->bytes += bytes;
		c->faults += faults;
	}
}

static long tv_ms(const struct timeval *tv)
{
	return (long)tv->tv_sec * 1000 + (long)tv->tv_usec / 1000;
}

/* Prints the TAP lines of a finished job and counts its result; returns it. */
static int job_print(const struct job *j, struct st_counts *c)
{
	int code = j->reaped && WIFEXITED(j->status) ? WEXITSTATUS(j->status) : -1;
	const char *p;

	job_counters(j, c);
	if (!j->killed && (code == 0 || code == 1 || code == 77) && out_agrees(j, code)) {
		fwrite(j->out, 1, j->len, stdout);
		if (j->len && j->out[j->len - 1] != '\n')
			putchar('\n');
		/* wall time of its process: where a run's time goes (tests/bench) */
		printf("# time: %" PRIu64 " ms, cpu %ld ms user, %ld ms system\n",
		       j->reaped_ms - j->start_ms, tv_ms(&j->ru.ru_utime), tv_ms(&j->ru.ru_stime));
		if (code == 0)
			c->passed++;
		else if (code == 77)
			c->skipped++;
		else
			c->failed++;
		return code == 0 ? ST_PASS : code == 77 ? ST_SKIP : ST_FAIL;
	}
	c->failed++;
	printf("not ok %d - %s # ", j->number, j->s->name);
	if (j->pid < 0)
		printf("cannot start its process: %s\n", j->spawn_err);
	else if (j->killed)
		printf("timed out: its process overran the deadline and was killed\n");
	else if (j->reaped && WIFSIGNALED(j->status))
		printf("its process was killed by signal %d (%s)\n", WTERMSIG(j->status),
		       strsignal(WTERMSIG(j->status)));
	else if (code != 0 && code != 1 && code != 77)
		printf("its process exited with status %d\n", code);
	else
		printf("its process exited %d but printed no matching result line\n", code);
	/* what it printed, as diagnostics */
	for (p = j->out; p && *p;) {
		size_t k = strcspn(p, "\n");
		printf("%s%.*s\n", p[0] == '#' ? "" : "#   ", (int)k, p);
		p += k + (p[k] == '\n');
	}
	return ST_FAIL;
}

/* Kills the processes a killed child left behind (reparented here). */
static void orphans_kill(const struct job *jobs, size_t n)
{
	pid_t pids[64];
	int k = st_proc_children(pids, 64);

	for (int i = 0; i < k; i++) {
		bool ours = false;
		for (size_t m = 0; m < n; m++)
			ours |= jobs[m].pid == pids[i] && !jobs[m].reaped;
		if (!ours)
			kill(pids[i], SIGKILL);
	}
}

/* Whether light scenario a should start before b (b comes first in order). */
static bool light_before(const struct st_scenario *a, const struct st_scenario *b)
{
	bool la = a->flags & ST_LONG, lb = b->flags & ST_LONG;

	if (la != lb)
		return la;
	return a->deadline_s > b->deadline_s;
}

static bool job_running(const struct job *j)
{
	return j->pid > 0 && !j->reaped;
}

/*
 * The next job to start: a heavy one first while fewer than heavy_max run,
 * else a long light one (ST_LONG), else the light one with the longest
 * deadline (first in order among equals): the long ones first, so that the
 * run does not end waiting for one. NULL: none may start now.
 */
static struct job *job_next(struct job *jobs, size_t n, unsigned heavy_max)
{
	unsigned heavy = 0;
	struct job *light = NULL, *first_heavy = NULL;

	for (size_t i = 0; i < n; i++) {
		struct job *j = &jobs[i];
		bool h = j->s->flags & ST_HEAVY;
		if (h && job_running(j))
			heavy++;
		if (j->pid != 0)
			continue;
		if (h && !first_heavy)
			first_heavy = j;
		if (!h && (!light || light_before(j->s, light->s)))
			light = j;
	}
	if (first_heavy && heavy < heavy_max)
		return first_heavy;
	return light;
}

int st_jobs_run(const struct st_jobs_opts *o, const struct st_scenario *const *sel, size_t n,
		struct st_counts *c, char *why, size_t whylen)
{
	struct job *jobs = calloc(n ? n : 1, sizeof(*jobs));
	struct pollfd *pfd = calloc(n ? n : 1, sizeof(*pfd));
	size_t printed = 0, running = 0, wl = strlen(why);
	unsigned heavy_max = HEAVY_MAX;
	bool unclean = false; /* some job ended without cleaning up */
	int bad = 0;

	if (!jobs || !pfd) {
		free(jobs);
		free(pfd);
		snprintf(why + wl, whylen - wl, " out of memory;");
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		jobs[i].s = sel[i];
		jobs[i].number = o->number0 + (int)i + 1;
		jobs[i].fd = -1;
	}

	while (printed < n) {
		uint64_t now;
		int timeout = 1000, np = 0;
		struct rusage ru;
		pid_t w;
		int st;

		struct job *nj;
		while (running < o->jobs && (nj = job_next(jobs, n, heavy_max))) {
			int r = job_spawn(o, nj);
			if (r < 0) {
				nj->pid = -1;
				snprintf(nj->spawn_err, sizeof(nj->spawn_err), "%s", strerror(-r));
				continue;
			}
			running++;
		}

		now = st_now_ms();
		for (size_t i = 0; i < n; i++) {
			struct job *j = &jobs[i];
			if (j->pid <= 0)
				continue;
			if (!j->reaped && now >= j->kill_ms && !j->killed) {
				kill(j->pid, SIGKILL);
				j->killed = unclean = true;
			}
			if (j->fd >= 0) {
				pfd[np].fd = j->fd;
				pfd[np].events = POLLIN;
				np++;
			}
			if (j->reaped != (j->fd < 0))
				timeout = 10; /* half done: the other half is near */
			else if (!j->reaped && !j->killed && (int64_t)(j->kill_ms - now) < timeout)
				timeout = (int)(j->kill_ms - now);
		}
		if (poll(pfd, (nfds_t)np, timeout) < 0 && errno != EINTR)
			poll(NULL, 0, 10);
		for (size_t i = 0; i < n; i++)
			if (jobs[i].fd >= 0)
				job_read(&jobs[i]);

		while ((w = wait4(-1, &st, WNOHANG, &ru)) > 0) {
			struct job *j = NULL;
			for (size_t i = 0; i < n && !j; i++)
				if (jobs[i].pid == w && !jobs[i].reaped)
					j = &jobs[i];
			if (!j) {
				/* left behind by a scenario's process that ended */
				if (!unclean) {
					bad++;
					wl += (size_t)snprintf(why + wl, whylen - wl,
							       " process %d was left behind;",
							       (int)w);
					wl = wl < whylen ? wl : whylen - 1;
				}
				continue;
			}
			j->status = st;
			j->ru = ru;
			j->reaped = true;
			j->reaped_ms = st_now_ms();
			running--;
			if (j->killed || !WIFEXITED(st) ||
			    (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 1 &&
			     WEXITSTATUS(st) != 77)) {
				/* it did not clean up: what it left is reaped here, as it ends */
				unclean = true;
				orphans_kill(jobs, n);
			}
		}

		/* reaped, but its pipe still open: something it left behind holds it */
		for (size_t i = 0; i < n; i++) {
			struct job *j = &jobs[i];
			if (j->reaped && j->fd >= 0 &&
			    (j->killed || st_now_ms() >= j->reaped_ms + REAP_WAIT_MS)) {
				close(j->fd);
				j->fd = -1;
			}
		}

		while (printed < n) {
			struct job *j = &jobs[printed];
			if (j->pid == 0 || (j->pid > 0 && (!j->reaped || j->fd >= 0)))
				break;
			int r = job_print(j, c);
			if (o->results)
				o->results[printed] = r;
			printed++;
		}
	}
	if (unclean) {
		/* every job is reaped: what is left is theirs */
		orphans_kill(jobs, n);
		st_reap_all(REAP_WAIT_MS);
	}
	fflush(stdout);
	for (size_t i = 0; i < n; i++) {
		if (jobs[i].fd >= 0)
			close(jobs[i].fd);
		free(jobs[i].out);
	}
	free(jobs);
	free(pfd);
	return bad;
}
