/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The inotify queue overflows (issue #4 point 6): the daemon must notice
 * (IN_Q_OVERFLOW), rescan the whole share and still sync everything.
 *
 * The queue length of an inotify instance is fixed when it is created,
 * from /proc/sys/fs/inotify/max_queued_events; the scenario lowers that
 * (as root) just while the daemons start, then puts it back, and makes far
 * more changes at once than 32 events can hold.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st_sync.h"

#define QUEUED_EVENTS "/proc/sys/fs/inotify/max_queued_events"
#define NDIRS 300
/* The plain-directory side (side a may be a mount: writes through FUSE are
 * too slow to outrun the daemon reading its queue). */
#define SIDE 1

static int read_limit(long *ret)
{
	FILE *f = fopen(QUEUED_EVENTS, "re");
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "%ld", ret) == 1;
	fclose(f);
	return ok ? 0 : -EINVAL;
}

static int write_limit(long v)
{
	FILE *f = fopen(QUEUED_EVENTS, "we");
	int r = 0;

	if (!f)
		return -errno;
	if (fprintf(f, "%ld\n", v) < 0)
		r = -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	return r;
}

int st_sync_overflow(struct st_env *env)
{
	struct st_pair p;
	char path[ST_PATH_MAX], rel[64];
	long old = 0;
	int r = ST_PASS;

	if (read_limit(&old) < 0 || geteuid() != 0 || write_limit(old) < 0)
		return st_skip(env, "cannot change %s (needs root): the overflow is tested "
				    "only as a forced full rescan in the unit tests",
			       QUEUED_EVENTS);
	/* plain directories: this is about the scanner, and writes through a
	 * mount are too slow to overflow the queue */
	if (st_pair_make_dirs(env, &p, "") < 0)
		return ST_FAIL;
	/* Both daemons' inotify instances get a 32-event queue. */
	ST_REQUIRE(env, write_limit(32) == 0);
	bool up = st_pair_up(env, &p, 0) == 0 && st_pair_up(env, &p, 1) == 0;
	ST_CHECK(env, write_limit(old) == 0);
	if (!up) {
		ST_CHECK(env, !"both daemons started");
		goto out;
	}
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, 10000) >= 0);
	if (env->failures)
		goto out;
	/*
	 * Directories that exist (and are watched) first, then one file in
	 * each, all at once: the events of most of them are lost in the
	 * overflow and nothing else would mark those directories dirty.
	 */
	for (int i = 0; i < NDIRS; i++) {
		snprintf(rel, sizeof(rel), "d%03d", i);
		ST_REQUIRE(env, st_pair_path(&p, SIDE, rel, path) && mkdir(path, 0755) == 0);
	}
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, 20000) >= 0);
	/* the daemon stopped while the burst is written: its queue overflows
	 * whatever the scheduler does (a daemon that kept up with the writer
	 * once missed the overflow, at load 8) */
	ST_CHECK(env, kill(p.peer[SIDE].pid, SIGSTOP) == 0);
	for (int i = 0; i < NDIRS; i++) {
		snprintf(rel, sizeof(rel), "d%03d/f", i);
		if (st_pair_write(&p, SIDE, rel, rel, strlen(rel)) < 0) {
			kill(p.peer[SIDE].pid, SIGCONT);
			ST_CHECK(env, !"wrote the burst");
			goto out;
		}
	}
	ST_CHECK(env, kill(p.peer[SIDE].pid, SIGCONT) == 0);
	int64_t took = st_wait_converged(env, &p, NULL, 0, 20000);
	st_note(env, "%d files behind an overflowing inotify queue: converged after %lld ms",
		NDIRS, (long long)took);
	ST_CHECK(env, took >= 0);
	ST_CHECK(env, st_peer_log_has(&p.peer[SIDE], "inotify queue"));
	if (!st_peer_log_has(&p.peer[SIDE], "inotify queue"))
		st_note(env, "b's log does not say the queue overflowed");
out:
	(void)write_limit(old);
	st_pair_cleanup(env, &p);
	return env->failures ? ST_FAIL : r;
}
