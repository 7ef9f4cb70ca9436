/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `tandem down` while a read on the mount waits for the peer (fuse-down-
 * reading): the peer's daemon is stopped (SIGSTOP: connected, but sending
 * nothing), a reader on the mount asks for a file not here yet, and the
 * mount side is told to stop. It must stop at once: the read fails (EIO),
 * the mount goes, the daemon exits 0. It used to wait for the read's
 * timeout (10 s; a minute here) while unmounting, and the selftest's down
 * gave up on it (fuse-rsync, once in CI).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "st_fuse.h"
#include "st_sync.h"

#define FILE_SIZE (4u << 20)
#define ENSURE_TIMEOUT "60000"


struct reader {
	char path[ST_PATH_MAX];
	atomic_int state; /* 0 not yet, 1 reading, 2 done */
	ssize_t got;
	int err;
	pthread_t thread;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	static char buf[65536];
	int fd = open(r->path, O_RDONLY | O_CLOEXEC);

	atomic_store(&r->state, 1);
	if (fd < 0) {
		r->got = -1;
		r->err = errno;
	} else {
		r->got = read(fd, buf, sizeof(buf));
		r->err = r->got < 0 ? errno : 0;
		close(fd);
	}
	atomic_store(&r->state, 2);
	return NULL;
}

int st_fuse_down_reading(struct st_env *env)
{
	struct st_pair p;
	struct reader rd;
	bool started = false, stopped_b = false;
	int r;

	/* a read waits a minute for the peer's blocks: were the unmount to wait
	 * for it, down (10 s at most) would give up */
	setenv("TANDEM_TEST_ENSURE_TIMEOUT_MS", ENSURE_TIMEOUT, 1);
	r = st_fuse_pair(env, &p);
	unsetenv("TANDEM_TEST_ENSURE_TIMEOUT_MS");

	if (r) {
		st_pair_cleanup(env, &p);
		return r;
	}
	memset(&rd, 0, sizeof(rd));
	ST_CHECK(env, st_pair_put_random(&p, 1, "far.bin", 5, FILE_SIZE, NULL) == 0);
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, 20000) >= 0);
	/* converging read it on the mount: a new version, not read yet */
	ST_CHECK(env, st_pair_put_random(&p, 1, "far2.bin", 6, FILE_SIZE, NULL) == 0);
	for (uint64_t end = st_now_ms() + 10000;
	     !st_pair_exists(&p, 0, "far2.bin") && st_now_ms() < end && st_left_ms(env);)
		st_sleep_ms(env, 20);
	if (env->failures || !st_pair_exists(&p, 0, "far2.bin")) {
		ST_CHECK(env, !"the peer's file is listed on the mount");
		goto out;
	}
	stopped_b = kill(p.peer[1].pid, SIGSTOP) == 0;
	ST_CHECK(env, stopped_b);
	st_pair_path(&p, 0, "far2.bin", rd.path);
	atomic_init(&rd.state, 0);
	started = pthread_create(&rd.thread, NULL, reader_main, &rd) == 0;
	ST_CHECK(env, started);
	st_sleep_ms(env, 300); /* the read waits for the stopped peer */
	ST_CHECK(env, atomic_load(&rd.state) == 1);
	/* down (in-process, as `tandem down`: it waits 10 s at most) and the
	 * mount gone (st_pair_down checks both) */
	uint64_t t0 = st_now_ms();
	ST_CHECK(env, st_pair_down(env, &p, 0) == 0);
	st_note(env, "the mount side stopped %llu ms after down, its reader waiting",
		(unsigned long long)(st_now_ms() - t0));
	if (started) {
		pthread_join(rd.thread, NULL);
		st_note(env, "the waiting read returned %zd (%s)", rd.got,
			rd.got < 0 ? strerror(rd.err) : "data");
	}
out:
	if (stopped_b)
		kill(p.peer[1].pid, SIGCONT);
	st_pair_cleanup(env, &p);
	return ST_PASS;
}
