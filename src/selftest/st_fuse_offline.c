/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * On demand and offline (issue #5 points 2 and 4): a file of the peer is
 * listed on the mount before any of it is here, a read in its middle
 * fetches only that part (and readahead), and with the peer gone what was
 * read is still served, ls and stat work, and a read of what is not here
 * fails with EIO within 10 s instead of hanging or coming back short.
 * When the peer is back, the rest can be read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st_fuse.h"
#include "st_sync.h"

#define BIG (24u << 20)
#define COLD (3u << 20)
#define PROBE 4096

static bool connected(json_t *st, const void *arg)
{
	(void)arg;
	return st_jstr_is(st, "state", "connected");
}

static int64_t received(struct st_env *env, const struct st_pair *p, int side)
{
	json_t *st = st_pair_status(env, p, side);
	int64_t n = st_jint(st, "bytes_received", -1);

	json_decref(st);
	return n;
}

/* Waits until rel shows on the mount with size bytes (stat only: no read). */
static bool listed(struct st_env *env, const struct st_pair *p, const char *rel, off_t size)
{
	char mp[ST_PATH_MAX];
	struct stat st;

	st_pair_path(p, 0, rel, mp);
	for (uint64_t end = st_now_ms() + 15000; st_now_ms() < end && st_left_ms(env) > 0;) {
		if (stat(mp, &st) == 0 && st.st_size == size)
			return true;
		usleep(20000);
	}
	return false;
}

/* pread of len bytes at off on the mount and the dir side; 0 when equal,
 * else the mount's -errno (or -EIO for a mismatch). */
static int compare_at(const struct st_pair *p, const char *rel, off_t off, size_t len,
		      uint64_t *ret_ms)
{
	char mp[ST_PATH_MAX], dp[ST_PATH_MAX], a[PROBE], b[PROBE];
	uint64_t t0 = st_now_ms();
	int m, d, r = 0;
	ssize_t x, y;

	st_pair_path(p, 0, rel, mp);
	st_pair_path(p, 1, rel, dp);
	m = open(mp, O_RDONLY | O_CLOEXEC);
	d = open(dp, O_RDONLY | O_CLOEXEC);
	if (m < 0 || d < 0) {
		r = m < 0 ? -errno : -EIO;
		goto out;
	}
	x = pread(m, a, len, off);
	if (x < 0)
		r = -errno;
	y = pread(d, b, len, off);
	if (!r && (x != y || memcmp(a, b, (size_t)x)))
		r = -EIO;
out:
	if (ret_ms)
		*ret_ms = st_now_ms() - t0;
	if (m >= 0)
		close(m);
	if (d >= 0)
		close(d);
	return r;
}

int st_fuse_offline(struct st_env *env)
{
	struct st_pair p;
	char mp[ST_PATH_MAX];
	struct stat st;
	uint64_t ms = 0;
	int r = st_fuse_pair(env, &p);

	if (r)
		goto out;
	ST_CHECK(env, st_pair_put_random(&p, 1, "big.bin", 21, BIG, NULL) == 0);
	ST_CHECK(env, st_pair_put_random(&p, 1, "cold.bin", 22, COLD, NULL) == 0);
	ST_CHECK(env, st_pair_put_random(&p, 1, "over.bin", 23, COLD, NULL) == 0);
	ST_CHECK(env, listed(env, &p, "big.bin", BIG) && listed(env, &p, "cold.bin", COLD) &&
			      listed(env, &p, "over.bin", COLD));

	/* a read in the middle fetches that part, not the whole file */
	int64_t before = received(env, &p, 0);
	ST_CHECK(env, compare_at(&p, "big.bin", BIG / 2, PROBE, NULL) == 0);
	int64_t moved = received(env, &p, 0) - before;
	st_note(env, "a %d-byte read in the middle of %u MiB moved %lld bytes", PROBE, BIG >> 20,
		(long long)moved);
	ST_CHECK(env, before >= 0 && moved > 0 && moved <= (int64_t)BIG / 2);
	ST_CHECK(env, compare_at(&p, "big.bin", BIG / 2, PROBE, NULL) == 0);

	/* the peer goes away */
	ST_REQUIRE(env, st_pair_down(env, &p, 1) == 0);
	ST_CHECK(env, compare_at(&p, "big.bin", BIG / 2, PROBE, NULL) == 0); /* cached */
	st_pair_path(&p, 0, "big.bin", mp);
	ST_CHECK(env, stat(mp, &st) == 0 && st.st_size == BIG);
	st_pair_path(&p, 0, "", mp);
	ST_CHECK(env, access(mp, R_OK) == 0);
	{
		char cp[ST_PATH_MAX], buf[PROBE];
		st_pair_path(&p, 0, "cold.bin", cp);
		int fd = open(cp, O_RDONLY | O_CLOEXEC);
		uint64_t t0 = st_now_ms();
		ssize_t n = fd >= 0 ? pread(fd, buf, sizeof(buf), 0) : -1;
		int err = n < 0 ? errno : 0;
		ms = st_now_ms() - t0;
		st_note(env, "an uncached read with the peer gone: %zd (%s) after %llu ms", n,
			err ? strerror(err) : "no error", (unsigned long long)ms);
		ST_CHECK(env, fd >= 0 && n < 0 && err == EIO && ms <= 10000);
		if (fd >= 0)
			close(fd);
	}
	/* an unread file emptied (truncate to 0) and rewritten needs nothing of
	 * the peer */
	{
		char op[ST_PATH_MAX];
		st_pair_path(&p, 0, "over.bin", op);
		ST_CHECK(env, truncate(op, 0) == 0);
		/* no O_TRUNC: an open for writing ensures the whole file, which
		 * is the user's now (not the placeholder's size) */
		int fd = open(op, O_WRONLY | O_CLOEXEC);
		ST_CHECK(env, fd >= 0 && write(fd, "offline edit\n", 13) == 13);
		ST_CHECK(env, fd >= 0 && close(fd) == 0);
	}
	/* back: the rest can be read */
	ST_REQUIRE(env, st_pair_up(env, &p, 1) == 0);
	json_t *s = st_pair_status_wait(env, &p, 0, connected, NULL, 15000, "connected again");
	ST_CHECK(env, s != NULL);
	json_decref(s);
	ST_CHECK(env, compare_at(&p, "cold.bin", 1000, PROBE, &ms) == 0);
	ST_CHECK(env, compare_at(&p, "big.bin", BIG - PROBE, PROBE, NULL) == 0);
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, 20000) >= 0);
	{
		char buf[32] = "";
		ST_CHECK(env, st_pair_read(&p, 1, "over.bin", buf, sizeof(buf)) == 13 &&
				      !strcmp(buf, "offline edit\n"));
	}
out:
	if (p.peer[0].home[0])
		st_pair_cleanup(env, &p);
	return r ? r : ST_PASS;
}

/*
 * The peer replaces a file while a reader on the mount has it open and has
 * read only its start: what it read is still served, the rest of that old
 * version fails with EIO (it can never come), never the zeros of the
 * placeholder's holes; a new open reads the new version.
 */
int st_fuse_replaced(struct st_env *env)
{
	struct st_pair p;
	char mp[ST_PATH_MAX], dp[ST_PATH_MAX], head[PROBE], buf[PROBE];
	int m = -1, r = st_fuse_pair(env, &p);

	if (r)
		goto out;
	ST_CHECK(env, st_pair_put_random(&p, 1, "old.bin", 31, BIG, NULL) == 0);
	ST_CHECK(env, listed(env, &p, "old.bin", BIG));
	st_pair_path(&p, 0, "old.bin", mp);
	st_pair_path(&p, 1, "old.bin", dp);
	int d = open(dp, O_RDONLY | O_CLOEXEC);
	ST_CHECK(env, d >= 0 && pread(d, head, PROBE, 0) == PROBE);
	if (d >= 0)
		close(d);
	m = open(mp, O_RDONLY | O_CLOEXEC);
	ST_CHECK(env, m >= 0 && pread(m, buf, PROBE, 0) == PROBE && !memcmp(buf, head, PROBE));

	/* a new version, another size so that the mount shows when it is there */
	ST_CHECK(env, st_pair_put_random(&p, 1, "old.bin", 32, BIG + COLD, NULL) == 0);
	ST_CHECK(env, listed(env, &p, "old.bin", BIG + COLD));
	uint64_t t0 = st_now_ms();
	ssize_t n = m >= 0 ? pread(m, buf, PROBE, BIG - PROBE) : -1;
	int err = n < 0 ? errno : 0;
	st_note(env, "the old version's unread end: %zd (%s) after %llu ms", n,
		err ? strerror(err) : "no error", (unsigned long long)(st_now_ms() - t0));
	ST_CHECK(env, n < 0 && err == EIO);
	ST_CHECK(env, m >= 0 && pread(m, buf, PROBE, 0) == PROBE && !memcmp(buf, head, PROBE));
	ST_CHECK(env, compare_at(&p, "old.bin", BIG + COLD - PROBE, PROBE, NULL) == 0);
	ST_CHECK(env, compare_at(&p, "old.bin", 0, PROBE, NULL) == 0);
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, 20000) >= 0);
out:
	if (m >= 0)
		close(m);
	if (p.peer[0].home[0])
		st_pair_cleanup(env, &p);
	return r ? r : ST_PASS;
}

/*
 * Files of the peer not read yet, copied off the mount by programs that look
 * for holes (cp's SEEK_DATA, --sparse=always, tar -S, rsync -S): each copy
 * holds the real content, not the zeros of the placeholder's holes.
 */
int st_fuse_cold_copy(struct st_env *env)
{
	static const char *const names[] = { "cp.bin", "cps.bin", "tar.bin", "rsync.bin" };
	static const char script[] =
		"set -eu\n"
		"cp \"$M/cp.bin\" \"$W/cp.bin\"\n"
		"cp --sparse=always \"$M/cps.bin\" \"$W/cps.bin\"\n"
		"tar -C \"$M\" -cSf \"$W/t.tar\" tar.bin && tar -C \"$W\" -xf \"$W/t.tar\"\n"
		"rsync -S \"$M/rsync.bin\" \"$W/rsync.bin\"\n"
		"cd \"$B\" && sha256sum cp.bin cps.bin tar.bin rsync.bin >\"$W/sums\"\n"
		"cd \"$W\" && sha256sum -c --quiet sums\n";
	struct st_pair p;
	char work[ST_PATH_MAX];
	int r = st_fuse_pair(env, &p);

	if (r || st_mkdir(env, "work", work) < 0) {
		ST_CHECK(env, r || !"a work dir");
		goto out;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		ST_CHECK(env, st_pair_put_random(&p, 1, names[i], 40 + i, COLD, NULL) == 0);
		ST_CHECK(env, listed(env, &p, names[i], COLD));
	}
	(void)st_fuse_sh(env, &p, work, script, "the copies");
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, 20000) >= 0);
out:
	if (p.peer[0].home[0])
		st_pair_cleanup(env, &p);
	return r ? r : ST_PASS;
}

#define SLOW_SIZE (8u << 20)
#define SLOW_RATE "4194304"  /* 4 MiB/s: about 2 s for the whole file */
#define SLOW_ENSURE "1000"   /* the mount's ensure timeout: shorter than that */

/*
 * An open for appending fetches the whole file first. A large file takes
 * longer than the ensure timeout (10 s; 1 s here, with a peer sending at
 * 4 MiB/s): the open waits while blocks keep coming, and the append lands
 * after the whole old content on the other side.
 */
int st_fuse_append_slow(struct st_env *env)
{
	struct st_pair p;
	char mp[ST_PATH_MAX], ref[ST_PATH_MAX];
	uint8_t want[32], got[32];
	uint64_t size = 0;
	int fd, r = st_fuse_need(env);

	if (r)
		return r;
	if (st_pair_make(env, &p, "") < 0) {
		ST_CHECK(env, !"the pair was made");
		goto out;
	}
	ST_REQUIRE(env, p.kind[0] == ST_SIDE_MOUNT);
	p.rate_bps[1] = SLOW_RATE;
	setenv("TANDEM_TEST_ENSURE_TIMEOUT_MS", SLOW_ENSURE, 1);
	r = st_pair_up(env, &p, 0);
	unsetenv("TANDEM_TEST_ENSURE_TIMEOUT_MS");
	if (r < 0 || st_pair_up(env, &p, 1) < 0 ||
	    st_wait_converged(env, &p, NULL, 0, 10000) < 0) {
		ST_CHECK(env, !"the pair started and became idle");
		goto out;
	}
	ST_CHECK(env, st_pair_put_random(&p, 1, "log.bin", 50, SLOW_SIZE, NULL) == 0);
	ST_CHECK(env, listed(env, &p, "log.bin", SLOW_SIZE));
	/* the same bytes plus the line, outside both shares */
	snprintf(ref, sizeof(ref), "%s/log.ref", p.stage);
	ST_CHECK(env, st_write_random(ref, 50, SLOW_SIZE, NULL) == 0);
	fd = open(ref, O_WRONLY | O_APPEND | O_CLOEXEC);
	ST_CHECK(env, fd >= 0 && write(fd, "appended\n", 9) == 9);
	if (fd >= 0)
		close(fd);
	ST_CHECK(env, st_hash_file(ref, want, &size) == 0);

	st_pair_path(&p, 0, "log.bin", mp);
	uint64_t t0 = st_now_ms();
	fd = open(mp, O_WRONLY | O_APPEND | O_CLOEXEC);
	int err = fd < 0 ? errno : 0;
	st_note(env, "open for appending: %s after %llu ms", err ? strerror(err) : "ok",
		(unsigned long long)(st_now_ms() - t0));
	ST_CHECK(env, fd >= 0);
	if (fd >= 0) {
		ST_CHECK(env, write(fd, "appended\n", 9) == 9);
		ST_CHECK(env, close(fd) == 0);
	}
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, 20000) >= 0);
	st_pair_path(&p, 1, "log.bin", mp);
	ST_CHECK(env, st_hash_file(mp, got, &size) == 0 && size == SLOW_SIZE + 9 &&
			      !memcmp(want, got, sizeof(want)));
out:
	st_pair_cleanup(env, &p);
	return env->failures ? ST_FAIL : ST_PASS;
}

/*
 * Metadata changes of files not read yet (touch -h sets the mtime without
 * opening the file, chmod): the peer gets the new mtime and mode, and its
 * content stays. The scanner saw the mtime change and hashed the
 * placeholder's holes: the peer's file became zeros. And a same-size
 * rewrite (O_TRUNC) of one, read back at once: the read must not fetch the
 * old blocks over the new bytes.
 */
int st_fuse_unread_meta(struct st_env *env)
{
	/* the peer's side is watched without reading the mount: a read there
	 * would fetch the files and hide what the scanner does with holes */
	static const char change[] =
		"set -eu\n"
		"cd \"$B\" && sha256sum m1.bin m2.bin >\"$W/sums\"\n"
		"touch -h -d '2019-05-05 01:02:03' \"$M/m1.bin\"\n"
		"chmod 600 \"$M/m2.bin\"\n"
		/* same size, new bytes (O_TRUNC), read back at once: the user's */
		"head -c $(stat -c %s m3.bin) /dev/urandom >\"$W/m3.new\"\n"
		"cp \"$W/m3.new\" \"$M/m3.bin\"\n"
		"dd if=\"$M/m3.bin\" iflag=direct bs=1M 2>/dev/null | cmp - \"$W/m3.new\"\n"
		"want=$(date -d '2019-05-05 01:02:03' +%s)\n"
		"for i in $(seq 200); do\n"
		"  [ \"$(stat -c %Y m1.bin)\" = \"$want\" ] && [ \"$(stat -c %a m2.bin)\" = 600 ] && break\n"
		"  sleep 0.05\n"
		"done\n"
		"for i in $(seq 200); do cmp -s \"$W/m3.new\" m3.bin && break; sleep 0.05; done\n"
		"sleep 0.5 # what else the peer sends for them\n"
		"sha256sum -c --quiet \"$W/sums\"\n"
		"cmp \"$W/m3.new\" m3.bin\n"
		"[ \"$(stat -c %Y m1.bin)\" = \"$want\" ] && [ \"$(stat -c %a m2.bin)\" = 600 ]\n";
	static const char check[] =
		"set -eu\n"
		"cd \"$B\" && sha256sum -c --quiet \"$W/sums\"\n"
		"[ \"$(stat -c %Y m1.bin)\" = \"$(date -d '2019-05-05 01:02:03' +%s)\" ]\n"
		"[ \"$(stat -c %a m2.bin)\" = 600 ]\n"
		"cmp \"$W/m3.new\" m3.bin && cmp \"$W/m3.new\" \"$M/m3.bin\"\n";
	struct st_pair p;
	char work[ST_PATH_MAX];
	int r = st_fuse_pair(env, &p);

	if (r || st_mkdir(env, "work", work) < 0) {
		ST_CHECK(env, r || !"a work dir");
		goto out;
	}
	for (int i = 1; i <= 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "m%d.bin", i);
		ST_CHECK(env, st_pair_put_random(&p, 1, name, 60 + (uint64_t)i, COLD, NULL) == 0);
		ST_CHECK(env, listed(env, &p, name, COLD));
	}
	if (st_fuse_sh(env, &p, work, change, "the changes"))
		ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, 20000) >= 0);
	if (!env->failures && st_fuse_sh(env, &p, work, check, "the check after convergence"))
		ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, 20000) >= 0);
out:
	if (p.peer[0].home[0])
		st_pair_cleanup(env, &p);
	return r ? r : ST_PASS;
}
