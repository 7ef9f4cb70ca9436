/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Real `tandem up` daemons for scenarios: start, stop, kill, reap, their logs. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "control_client.h"
#include "derive.h"
#include "identity.h"
#include "paths.h"
#include "relay.h"
#include "st_daemon.h"
#include "st_internal.h"

#define POLL_MS 50
#define LOG_MAX (4u << 20)
#define CLEANUP_MS 4000 /* below the watchdog's grace */
#define DOWN_MS 10000	/* what `tandem down` waits */

static char heartbeat[32];

void st_knobs_set(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	/* Short timers so the scenarios stay fast; a user's own values win.
	 * The heartbeat is not that short: a peer is dead after three missed
	 * ones, and a loaded machine (a package build beside the selftest)
	 * stalls a daemon for most of a second at times. Scenarios that watch
	 * for a dead peer shorten it for themselves (st_heartbeat_set). */
	setenv("TANDEM_TEST_HEARTBEAT_MS", "1000", 0);
	snprintf(heartbeat, sizeof(heartbeat), "%s", getenv("TANDEM_TEST_HEARTBEAT_MS"));
	setenv("TANDEM_TEST_BACKOFF_MAX_MS", "400", 0);
	setenv("TANDEM_TEST_FALLBACK_MS", "500", 0);
	/* a file ensured this recently is not emptied for the cache limit:
	 * ST_EVICT_AGE_MS, so the scenarios on the limit wait 1 s, not 3 */
	setenv("TANDEM_TEST_LAZY_EVICT_AGE_MS", ST_EVICT_AGE_MS_STR, 0);
	/* Daemons outlive `tandem up`: adopt them, to reap them and see how they ended. */
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1);
}

void st_heartbeat_set(const char *ms)
{
	st_knobs_set();
	setenv("TANDEM_TEST_HEARTBEAT_MS", ms ? ms : heartbeat, 1);
}

static void sleep_ms(unsigned ms)
{
	poll(NULL, 0, (int)ms);
}

/*
 * What `tandem init` does (cmd_identity.c), in this process: a scenario
 * makes two or more peers, and a run some 150; each exec of tandem costs
 * about 10 ms of CPU (39 shared libraries to link), a tenth of the run.
 * The CLI's init is the identity suite's, which runs it.
 */
int st_peer_make(struct st_env *env, struct st_peer *p, const char *name)
{
	struct tandem_paths paths;
	struct identity *id = NULL;
	struct err perr;
	char sub[64];
	int r;

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(sub, sizeof(sub), "%s-share", name);
	if (st_mkdir(env, name, p->home) < 0 || st_mkdir(env, sub, p->dir) < 0) {
		st_note(env, "cannot create the directories of %s", name);
		return -1;
	}
	if (paths_resolve(p->home, &paths, &perr) < 0) {
		st_note(env, "the paths of %s: %s", name, perr.msg);
		return -1;
	}
	r = identity_new(NULL, &id);
	if (r == 0)
		r = identity_save(id, paths.config);
	if (r < 0) {
		st_note(env, "cannot make the identity of %s in %s: %s", name, paths.config,
			strerror(-r));
		identity_free(id);
		return -1;
	}
	fp_format(&id->fp, p->fp);
	identity_free(id);
	return 0;
}

/* Reaps pid within ms. Returns its st_proc_out-style status, or -1. */
int st_peer_reap(pid_t pid, unsigned ms)
{
	uint64_t end = st_now_ms() + ms;
	int st;

	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (w < 0)
			return -1;
		if (st_now_ms() >= end)
			return -1;
		sleep_ms(10);
	}
	st_children_del(pid);
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

int st_peer_up(struct st_env *env, struct st_peer *p, const char *peer_fp, const char *listen)
{
	return st_peer_up_extra(env, p, peer_fp, listen, NULL);
}

int st_peer_up_extra(struct st_env *env, struct st_peer *p, const char *peer_fp,
		     const char *listen, const char *extra)
{
	struct st_proc_out out;
	const char *pp;
	long pid = 0;

	st_knobs_set();
	const char *argv[] = {"--home",
			      p->home,
			      "up",
			      "--peer",
			      peer_fp,
			      "--relay",
			      env->relay_url,
			      p->mount ? "--mount" : "--dir",
			      p->dir,
			      "--listen",
			      listen ? listen : "[::1]:0",
			      extra,
			      NULL};
	if (st_run_tandem(env, &out, argv) < 0) {
		st_note(env, "cannot run tandem up for %s", p->name);
		return -1;
	}
	pp = strstr(out.err, "(pid ");
	if (pp)
		pid = strtol(pp + 5, NULL, 10);
	if (out.status != 0 || pid <= 0) {
		st_note(env, "tandem up for %s exited %d: %s", p->name, out.status, out.err);
		return -1;
	}
	p->pid = (pid_t)pid;
	st_children_add(p->pid);
	return 0;
}

void st_peer_kill(struct st_env *env, struct st_peer *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGKILL);
	if (st_peer_reap(p->pid, 5000) < 0)
		st_note(env, "cannot reap the daemon of %s (pid %d)", p->name, (int)p->pid);
	p->pid = 0;
}

int st_peer_signal(struct st_env *env, struct st_peer *p, int sig, unsigned ms)
{
	int st;

	if (p->pid <= 0)
		return -1;
	if (sig)
		kill(p->pid, sig);
	st = st_peer_reap(p->pid, ms);
	if (st < 0) {
		st_note(env, "the daemon of %s (pid %d) did not exit within %u ms", p->name,
			(int)p->pid, ms);
		st_peer_kill(env, p);
		return -1;
	}
	p->pid = 0;
	return st;
}

/* Reaps p's daemon after a down within ms; 0 when it exited 0, else -1
 * (noted with late, or its status; killed when still running). */
static int down_reaped(struct st_env *env, struct st_peer *p, unsigned ms, const char *late)
{
	int st = st_peer_reap(p->pid, ms);

	if (st != 0) {
		st_note(env, "the daemon of %s (pid %d) %s", p->name, (int)p->pid,
			st < 0 ? late : "exited non-zero");
		if (st >= 0)
			st_note(env, "its exit status: %d", st);
		if (st < 0)
			st_peer_kill(env, p);
		p->pid = 0;
		return -1;
	}
	p->pid = 0;
	return 0;
}

/* What `tandem down` does (cmd_status.c), in this process (see st_peer_make). */
int st_peer_down(struct st_env *env, struct st_peer *p)
{
	struct control_client *c = NULL;
	json_t *reply = NULL;
	char sock[600];
	int r;

	if (p->pid <= 0)
		return -1;
	snprintf(sock, sizeof(sock), "%s/%s", p->home, CONTROL_SOCKET_NAME);
	r = control_client_open(sock, &c);
	if (r == 0)
		r = control_client_call(c, "{\"cmd\":\"down\"}", DOWN_MS, &reply, NULL);
	if (r == 0 && !json_is_true(json_object_get(reply, "ok")))
		r = -EPROTO;
	json_decref(reply);
	/* the daemon closes the socket last, then exits */
	if (r == 0)
		r = control_client_wait_close(c, DOWN_MS);
	control_client_free(c);
	if (r < 0) {
		st_note(env, "the down request to %s failed: %s", p->name, strerror(-r));
		st_peer_kill(env, p);
		return -1;
	}
	return down_reaped(env, p, DOWN_MS, "had not exited after it closed its socket");
}

int st_peer_down_cli(struct st_env *env, struct st_peer *p)
{
	struct st_proc_out out;

	if (p->pid <= 0)
		return -1;
	const char *argv[] = {"--home", p->home, "down", NULL};
	if (st_run_tandem(env, &out, argv) < 0 || out.status != 0) {
		st_note(env, "tandem down for %s exited %d: %s", p->name, out.status, out.err);
		st_peer_kill(env, p);
		return -1;
	}
	/* down returns once the daemon has exited: it must be reapable at once. */
	return down_reaped(env, p, 1000, "had not exited when tandem down returned");
}

char *st_peer_log_read(const struct st_peer *p)
{
	char path[600];
	char *buf;
	ssize_t n;
	size_t len = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/state/tandem.log", p->home);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = malloc(LOG_MAX + 1);
	while (buf && len < LOG_MAX && (n = read(fd, buf + len, LOG_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (buf)
		buf[len] = '\0';
	return buf;
}

unsigned st_peer_log_count(const struct st_peer *p, const char *a, const char *b)
{
	char *log = st_peer_log_read(p), *line, *save = NULL;
	unsigned n = 0;

	if (!log)
		return 0;
	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		n += strstr(line, a) && (!b || strstr(line, b));
	free(log);
	return n;
}

int st_peer_listen_addr(struct st_env *env, const struct st_peer *p, char out[static 64])
{
	struct st_proc_out po;
	json_error_t jerr;
	json_t *j;
	const char *s;
	int r = -1;

	const char *argv[] = {"--home", p->home, "status", "--json", NULL};
	if (st_run_tandem(env, &po, argv) < 0 || po.status != 0)
		return -1;
	j = json_loads(po.out, 0, &jerr);
	s = json_string_value(json_object_get(j, "listen"));
	if (s && strlen(s) < 64) {
		snprintf(out, 64, "%s", s);
		r = 0;
	}
	json_decref(j);
	return r;
}

bool st_peer_log_has(const struct st_peer *p, const char *needle)
{
	char *log = st_peer_log_read(p);
	bool found = log && strstr(log, needle);

	free(log);
	return found;
}

/* Polls p's log for needle until found or ms passed. */
bool st_peer_log_wait(struct st_env *env, const struct st_peer *p, const char *needle, unsigned ms)
{
	uint64_t end = st_now_ms() + ms;

	while (!st_peer_log_has(p, needle)) {
		if (st_now_ms() >= end || st_left_ms(env) < POLL_MS) {
			st_note(env, "%s's log never said '%s'", p->name, needle);
			return false;
		}
		sleep_ms(POLL_MS);
	}
	return true;
}

static void log_check(struct st_env *env, const struct st_peer *p)
{
	static const char *const bad[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
					  "runtime error:", "]: error: "};
	char *log = st_peer_log_read(p);

	for (size_t i = 0; log && i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *hit = strstr(log, bad[i]);
		if (hit) {
			st_note(env, "%s's log: %.300s", p->name, hit);
			st_fail(env, __FILE__, __LINE__, "%s's daemon log holds '%s'", p->name,
				bad[i]);
		}
	}
	free(log);
}

void st_peers_cleanup(struct st_env *env, struct st_peer *peers, size_t n)
{
	/* Stopping must work even when the scenario ran out of time. */
	if (st_left_ms(env) < CLEANUP_MS)
		env->deadline_ms = st_now_ms() + CLEANUP_MS;
	for (size_t i = 0; i < n; i++) {
		if (peers[i].pid > 0 && st_peer_down(env, &peers[i]) < 0)
			st_fail(env, __FILE__, __LINE__, "%s's daemon did not stop cleanly",
				peers[i].name);
		if (peers[i].home[0])
			log_check(env, &peers[i]);
	}
	if (env->failures) {
		for (size_t i = 0; i < n; i++) {
			char *log = peers[i].home[0] ? st_peer_log_read(&peers[i]) : NULL;
			size_t len = log ? strlen(log) : 0;
			if (len)
				st_note(env, "%s's log (the end):\n%s", peers[i].name,
					log + (len > 3000 ? len - 3000 : 0));
			free(log);
		}
	}
}
