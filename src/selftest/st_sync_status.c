/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sync scenarios: what `tandem status` says about syncing, as JSON and on a terminal. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "st_internal.h"
#include "st_sync.h"

#define MIB (1024ULL * 1024)
#define START_MS 10000
#define STATUS_FILE "slow.bin"
#define STATUS_SIZE (8 * MIB)
#define STATUS_RATE "8388608" /* 8 MiB/s: a second to catch it part-way */
#define SMALL_FILES 4
#define PTY_OUT_MAX 8192
/* The sender is stopped while b's status is read twice: a heartbeat long
 * enough that neither side calls the other dead meanwhile. */
#define STATUS_HEARTBEAT "20000"

/*
 * Runs `tandem --home H status` with a pseudo-terminal as its stdin, stdout
 * and stderr, and collects what it printed. Returns its exit status, or -1.
 */
static int status_on_tty(struct st_env *env, const char *home, char *out, size_t cap)
{
	struct winsize ws = { .ws_row = 24, .ws_col = 100 };
	int master, slave, st = 0;
	size_t len = 0;
	pid_t pid;

	out[0] = '\0';
	if (openpty(&master, &slave, NULL, NULL, &ws) < 0)
		return -1;
	fcntl(master, F_SETFD, FD_CLOEXEC);
	fcntl(slave, F_SETFD, FD_CLOEXEC);
	pid = fork();
	if (pid < 0) {
		close(master);
		close(slave);
		return -1;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		ioctl(slave, TIOCSCTTY, 0);
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
		execl(env->exe, env->exe, "--home", home, "status", (char *)NULL);
		_exit(127);
	}
	st_children_add(pid);
	close(slave);
	for (;;) {
		struct pollfd pfd = { .fd = master, .events = POLLIN };
		uint64_t left = st_left_ms(env);
		ssize_t k;

		if (!left || poll(&pfd, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
			break;
		k = read(master, out + len, cap - 1 - len);
		if (k <= 0) /* EIO once the child closed its side */
			break;
		len += (size_t)k;
		out[len] = '\0';
		if (len + 1 >= cap)
			break;
	}
	close(master);
	if (waitpid(pid, &st, WNOHANG) == 0) {
		st_sleep_ms(env, 200);
		if (waitpid(pid, &st, WNOHANG) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			st_children_del(pid);
			return -1;
		}
	}
	st_children_del(pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The transfer of STATUS_FILE in st's "transfers", part-way, or NULL. */
static json_t *transfer_of(json_t *st)
{
	json_t *arr = json_object_get(st, "transfers"), *t;
	size_t i;

	json_array_foreach(arr, i, t) {
		const char *path = json_string_value(json_object_get(t, "path"));
		if (path && !strcmp(path, STATUS_FILE))
			return t;
	}
	return NULL;
}

/*
 * Part-way through the file, and not scanning: the file is written through
 * a temp name that a mount may publish before its rename (FUSE.md, a known
 * bug), so b can apply that rename while the transfer runs and scan its
 * own moves for ENGINE_SCAN_DELAY_MS; "scanning" then is right, and
 * the check wants the state the transfer itself gives.
 */
static bool transferring(json_t *st, const void *arg)
{
	json_t *t = transfer_of(st);
	int64_t done = st_jint(t, "bytes_done", -1);

	(void)arg;
	return t && done > 0 && done < (int64_t)STATUS_SIZE &&
	       st_jstr_is(st, "sync_state", "syncing");
}

static bool is_idle(json_t *st, const void *arg)
{
	(void)arg;
	return st_jstr_is(st, "sync_state", "idle");
}

/*
 * A rate-capped transfer a -> b shows in b's status (JSON: transfers with
 * bytes done, total and rate; files pending) and in `tandem status` on a
 * terminal and off one; when it is over, the counts add up.
 */
int st_sync_status(struct st_env *env)
{
	struct st_pair p;
	struct st_proc_out out;
	char rel[32], *tty = NULL;
	json_t *st, *t;
	bool ok = true, up;

	if (st_pair_make(env, &p, "") < 0) {
		ST_CHECK(env, !"the pair was made");
		goto out;
	}
	p.rate_bps[0] = STATUS_RATE;
	st_heartbeat_set(STATUS_HEARTBEAT);
	up = st_pair_up(env, &p, 0) == 0 && st_pair_up(env, &p, 1) == 0;
	st_heartbeat_set(NULL);
	if (!up || st_wait_converged(env, &p, NULL, 0, START_MS) < 0) {
		ST_CHECK(env, !"the pair started and became idle");
		goto out;
	}
	for (int i = 0; i < SMALL_FILES; i++) {
		snprintf(rel, sizeof(rel), "small-%d", i);
		ok &= st_pair_write(&p, 0, rel, rel, strlen(rel)) == 0;
	}
	ST_CHECK(env, ok);
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, START_MS) >= 0);
	st = st_pair_status(env, &p, 1);
	ST_CHECK(env, st_jint(st, "files_in_sync", -1) == SMALL_FILES);
	json_decref(st);

	ST_CHECK(env, st_pair_put_random(&p, 0, STATUS_FILE, 4, STATUS_SIZE, NULL) == 0);
	st = st_pair_status_wait(env, &p, 1, transferring, NULL, 5000, "transferring");
	ST_CHECK(env, st != NULL);
	if (st) {
		/* a stopped sender holds the transfer part-way, however slow the
		 * status commands are (ASan) */
		ST_CHECK(env, kill(p.peer[0].pid, SIGSTOP) == 0);
		t = transfer_of(st);
		char *text = json_dumps(st, JSON_COMPACT);
		st_note(env, "b during the transfer: %.600s", text ? text : "?");
		free(text);
		ST_CHECK(env, st_jint(t, "bytes_total", -1) == (int64_t)STATUS_SIZE);
		ST_CHECK(env, json_is_number(json_object_get(t, "rate")) &&
				      json_number_value(json_object_get(t, "rate")) > 0);
		ST_CHECK(env, st_jint(st, "files_pending", -1) >= 1);
		/* the new file is pending, the others stay in sync */
		ST_CHECK(env, st_jint(st, "files_in_sync", -1) == SMALL_FILES);
		ST_CHECK(env, st_jstr_is(st, "sync_state", "syncing"));
		json_decref(st);

		/* on a terminal: a progress line; off one: still the path */
		tty = calloc(1, PTY_OUT_MAX);
		int r = tty ? status_on_tty(env, p.peer[1].home, tty, PTY_OUT_MAX) : -1;
		st_note(env, "tandem status on a terminal (exit %d):\n%s", r, tty ? tty : "");
		ST_CHECK(env, r == 0);
		ST_CHECK(env, tty && strstr(tty, STATUS_FILE) && strchr(tty, '%'));
		const char *argv[] = { "--home", p.peer[1].home, "status", NULL };
		ST_CHECK(env, st_run_tandem(env, &out, argv) == 0 && out.status == 0);
		st_note(env, "tandem status off a terminal:\n%s", out.out);
		ST_CHECK(env, strstr(out.out, STATUS_FILE) != NULL);
		ST_CHECK(env, strchr(out.out, '\r') == NULL && strchr(out.out, '\033') == NULL);
		kill(p.peer[0].pid, SIGCONT);
	}
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, 15000) >= 0);
	for (int s = 0; s < 2; s++) {
		st = st_pair_status_wait(env, &p, s, is_idle, NULL, 2000, "idle");
		char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
		st_note(env, "%s at the end: %.600s", st_side_name(s), text ? text : "?");
		free(text);
		ST_CHECK(env, st_jint(st, "files_in_sync", -1) == SMALL_FILES + 1);
		ST_CHECK(env, st_jint(st, "files_pending", -1) == 0);
		ST_CHECK(env, json_array_size(json_object_get(st, "transfers")) == 0);
		ST_CHECK(env, st_jint(st, "conflicts", -1) == 0);
		ST_CHECK(env, json_is_null(json_object_get(st, "sync_error")));
		if (s == 0)
			ST_CHECK(env, st_jint(st, "bytes_sent", -1) >= (int64_t)STATUS_SIZE);
		else
			ST_CHECK(env, st_jint(st, "bytes_received", -1) >= (int64_t)STATUS_SIZE);
		json_decref(st);
	}
out:
	free(tty);
	st_pair_cleanup(env, &p);
	return ST_PASS;
}
