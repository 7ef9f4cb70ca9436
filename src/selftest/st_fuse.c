/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FUSE scenarios (suite "fuse"): reads of a file that came from the peer
 * (random access, mmap, and after the peer changed it), concurrent writers,
 * the mount's lifecycle (SIGKILL and a stale mount, SIGTERM, SIGINT, down,
 * an unmount from outside) and its command line. Side a of every pair is
 * the mount, side b a plain directory (st_sync.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "config.h"
#include "st_fuse.h"
#include "st_internal.h"
#include "st_sync.h"

#define START_MS 10000
#define CONVERGE_MS 15000
#define READ_SIZE (6u << 20)
#define READS 300
#define WRITERS 8
#define WRITER_SIZE (1u << 20)
#define APPENDS 200
#define STOP_MS 5000

const char *st_fuse_unusable(void)
{
	static const char *const dirs[] = { "/usr/bin", "/bin", "/usr/sbin", "/sbin" };
	char path[64];
	int fd;

	if (st_fuse_mode == ST_FUSE_OFF)
		return "--no-fuse";
	if (!HAVE_FUSE)
		return "this tandem was built without FUSE support (libfuse3)";
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return "/dev/fuse is missing or cannot be opened by this user";
	close(fd);
	if (geteuid() == 0)
		return NULL;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/fusermount3", dirs[i]);
		if (access(path, X_OK) == 0)
			return NULL;
	}
	return "fusermount3 is not installed (apt-get install fuse3)";
}

int st_fuse_need(struct st_env *env)
{
	const char *why = st_fuse_unusable();

	if (!why)
		return 0;
	if (st_fuse_mode == ST_FUSE_REQUIRED) {
		st_note(env, "--require-fuse: %s", why);
		st_fail(env, __FILE__, __LINE__, "FUSE cannot be used: %s", why);
		return ST_FAIL;
	}
	return st_skip(env, "%s", why);
}

/* Calls fn(mount point, ud) for each line of /proc/self/mounts; stops when fn returns true. */
static bool mounts_each(bool (*fn)(const char *mp, void *ud), void *ud)
{
	FILE *f = fopen("/proc/self/mounts", "re");
	char line[2048], mp[1024];
	bool hit = false;

	if (!f)
		return false;
	while (!hit && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %1023s", mp) == 1)
			hit = fn(mp, ud); /* paths here have no blanks to unescape */
	fclose(f);
	return hit;
}

static bool is_path(const char *mp, void *ud)
{
	return !strcmp(mp, ud);
}

bool st_mounted(const char *path)
{
	return mounts_each(is_path, (void *)path);
}

int st_unmount_lazy(const char *path)
{
	return umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 ? -errno : 0;
}

struct under {
	const char *prefix;
	int n;
};

static bool clear_under(const char *mp, void *ud)
{
	struct under *u = ud;
	size_t len = strlen(u->prefix);

	if (!strncmp(mp, u->prefix, len) && (mp[len] == '/' || !mp[len])) {
		u->n++;
		(void)st_unmount_lazy(mp);
	}
	return false;
}

int st_mounts_clear_under(const char *prefix)
{
	struct under u = { .prefix = prefix };

	mounts_each(clear_under, &u);
	return u.n;
}

/* A pair whose side a is a mount, started and idle; 0 or a result to return. */
int st_fuse_pair(struct st_env *env, struct st_pair *p)
{
	int r = st_fuse_need(env);

	if (r) {
		memset(p, 0, sizeof(*p));
		return r;
	}
	if (st_pair_start(env, p, "", START_MS) < 0) {
		ST_CHECK(env, !"the pair started and became idle");
		return ST_FAIL;
	}
	ST_CHECK(env, p->kind[0] == ST_SIDE_MOUNT && st_mounted(p->peer[0].dir));
	return 0;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Compares READS random ranges of the mount's fd m with the dir side's d. */
static void random_reads(struct st_env *env, int m, int d, uint64_t size, uint64_t seed)
{
	char *x = malloc(256 << 10), *y = malloc(256 << 10);
	int bad = 0;

	for (int i = 0; x && y && i < READS && !bad; i++) {
		uint64_t off = rnd(&seed) % (size + 100), len = rnd(&seed) % (256 << 10);
		ssize_t a = pread(m, x, len, (off_t)off), b = pread(d, y, len, (off_t)off);
		if (a != b || (a > 0 && memcmp(x, y, (size_t)a))) {
			st_note(env, "pread(%llu, %llu): mount %zd bytes, dir %zd, %s",
				(unsigned long long)off, (unsigned long long)len, a, b,
				a == b ? "different bytes" : "different lengths");
			bad++;
		}
	}
	ST_CHECK(env, x && y && bad == 0);
	free(x);
	free(y);
}

/* The mount's view of rel through mmap equals the dir side's file. */
static void mmap_read(struct st_env *env, const struct st_pair *p, const char *rel)
{
	char mp[ST_PATH_MAX], dp[ST_PATH_MAX];
	uint8_t want[32], got[32];
	uint64_t size = 0;
	int fd;

	ST_CHECK(env, st_pair_path(p, 0, rel, mp) && st_pair_path(p, 1, rel, dp));
	ST_CHECK(env, st_hash_file(dp, want, &size) == 0 && size > 0);
	fd = open(mp, O_RDONLY | O_CLOEXEC);
	ST_CHECK(env, fd >= 0);
	if (fd < 0 || size == 0)
		return;
	void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	ST_CHECK(env, m != MAP_FAILED);
	if (m != MAP_FAILED) {
		(void)SHA256(m, size, got);
		ST_CHECK(env, !memcmp(got, want, 32));
		munmap(m, size);
	}
	close(fd);
}

int st_fuse_reads(struct st_env *env)
{
	struct st_pair p;
	char mp[ST_PATH_MAX], dp[ST_PATH_MAX];
	uint8_t hash[32];
	int r = st_fuse_pair(env, &p), m = -1, d = -1;

	if (r)
		goto out;
	/* a file made on the dir side, read through the mount as soon as it is
	 * listed, before anything read it whole (on demand, uncached) */
	ST_CHECK(env, st_pair_put_random(&p, 1, "r.bin", 11, READ_SIZE, hash) == 0);
	st_pair_path(&p, 0, "r.bin", mp);
	st_pair_path(&p, 1, "r.bin", dp);
	{
		struct stat sb;
		uint64_t end = st_now_ms() + CONVERGE_MS;
		while ((stat(mp, &sb) < 0 || sb.st_size != READ_SIZE) && st_now_ms() < end)
			usleep(20000);
		ST_CHECK(env, sb.st_size == READ_SIZE);
	}
	m = open(mp, O_RDONLY | O_CLOEXEC);
	d = open(dp, O_RDONLY | O_CLOEXEC);
	ST_CHECK(env, m >= 0 && d >= 0);
	if (m < 0 || d < 0)
		goto out;
	random_reads(env, m, d, READ_SIZE, 42);
	mmap_read(env, &p, "r.bin");
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, CONVERGE_MS) >= 0);

	/* the peer replaces it: the same reader (and a new mmap) sees the new bytes */
	close(d);
	ST_CHECK(env, st_pair_rm(&p, 1, "r.bin") == 0);
	ST_CHECK(env, st_pair_put_random(&p, 1, "r.bin", 12, READ_SIZE, hash) == 0);
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, CONVERGE_MS) >= 0);
	close(m);
	m = open(mp, O_RDONLY | O_CLOEXEC);
	d = open(dp, O_RDONLY | O_CLOEXEC);
	ST_CHECK(env, m >= 0 && d >= 0);
	if (m >= 0 && d >= 0)
		random_reads(env, m, d, READ_SIZE, 43);
	mmap_read(env, &p, "r.bin");
	/* a same-size edit in place on the peer, seen without reopening */
	ST_CHECK(env, st_pair_write(&p, 1, "small.txt", "version one\n", 12) == 0);
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, CONVERGE_MS) >= 0);
	{
		char buf[64];
		ST_CHECK(env, st_pair_read(&p, 0, "small.txt", buf, sizeof(buf)) == 12 &&
				      !strcmp(buf, "version one\n"));
		ST_CHECK(env, st_pair_write(&p, 1, "small.txt", "version two\n", 12) == 0);
		ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, CONVERGE_MS) >= 0);
		ST_CHECK(env, st_pair_read(&p, 0, "small.txt", buf, sizeof(buf)) == 12 &&
				      !strcmp(buf, "version two\n"));
	}
out:
	if (m >= 0)
		close(m);
	if (d >= 0)
		close(d);
	if (p.peer[0].home[0])
		st_pair_cleanup(env, &p);
	return r ? r : ST_PASS;
}

struct writer {
	const struct st_pair *p;
	int id;
	uint8_t hash[32];
	int err;
	pthread_t t;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char rel[64], path[ST_PATH_MAX], shared[ST_PATH_MAX], line[64];
	int fd;

	snprintf(rel, sizeof(rel), "w/f%d.bin", w->id);
	st_pair_path(w->p, 0, "w/shared.log", shared);
	if (!st_pair_path(w->p, 0, rel, path) ||
	    (w->err = st_write_random(path, 100 + (uint64_t)w->id, WRITER_SIZE, w->hash)))
		return NULL;
	fd = open(shared, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		w->err = -errno;
		return NULL;
	}
	for (int i = 0; i < APPENDS; i++) {
		int n = snprintf(line, sizeof(line), "writer %d line %03d\n", w->id, i);
		if (write(fd, line, (size_t)n) != n) {
			w->err = -EIO;
			break;
		}
	}
	if (close(fd) < 0 && !w->err)
		w->err = -errno;
	return NULL;
}

int st_fuse_writers(struct st_env *env)
{
	struct st_pair p;
	struct writer w[WRITERS];
	char path[ST_PATH_MAX], *log = NULL;
	int r = st_fuse_pair(env, &p), started = 0;
	size_t cap = WRITERS * APPENDS * 32;

	if (r)
		goto out;
	ST_CHECK(env, st_pair_path(&p, 0, "w", path) && mkdir(path, 0755) == 0);
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){ .p = &p, .id = i };
		if (pthread_create(&w[i].t, NULL, writer_main, &w[i]) == 0)
			started++;
		else
			break;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(w[i].t, NULL);
		if (w[i].err)
			st_note(env, "writer %d: %s", i, strerror(-w[i].err));
		ST_CHECK(env, w[i].err == 0);
	}
	ST_CHECK(env, started == WRITERS);
	int64_t took = st_wait_converged(env, &p, NULL, 0, CONVERGE_MS);
	st_note(env, "%d writers of %u KiB and %d appends each: converged after %lld ms", WRITERS,
		WRITER_SIZE >> 10, APPENDS, (long long)took);
	ST_CHECK(env, took >= 0);
	/* on the dir side: every file, and every appended line exactly once, whole */
	for (int i = 0; i < started; i++) {
		char rel[64];
		uint8_t got[32];
		snprintf(rel, sizeof(rel), "w/f%d.bin", i);
		ST_CHECK(env, st_pair_path(&p, 1, rel, path) && st_hash_file(path, got, NULL) == 0 &&
				      !memcmp(got, w[i].hash, 32));
	}
	log = malloc(cap);
	ssize_t n = log ? st_pair_read(&p, 1, "w/shared.log", log, cap) : -ENOMEM;
	ST_CHECK(env, n == (ssize_t)(WRITERS * APPENDS * strlen("writer 0 line 000\n")));
	if (n > 0) {
		static unsigned char seen[WRITERS][APPENDS];
		int bad = 0;
		memset(seen, 0, sizeof(seen));
		for (char *s = log, *e; *s; s = e + 1) {
			int id, k, used = 0;
			e = strchr(s, '\n');
			if (!e)
				break;
			if (sscanf(s, "writer %d line %d%n", &id, &k, &used) != 2 || s + used != e ||
			    id < 0 || id >= WRITERS || k < 0 || k >= APPENDS || seen[id][k]++)
				bad++;
		}
		for (int i = 0; i < WRITERS; i++)
			for (int k = 0; k < APPENDS; k++)
				bad += !seen[i][k];
		if (bad)
			st_note(env, "shared.log on b: %d lines missing, repeated or torn", bad);
		ST_CHECK(env, bad == 0);
	}
out:
	free(log);
	if (p.peer[0].home[0])
		st_pair_cleanup(env, &p);
	return r ? r : ST_PASS;
}

/* Whether the mount side works: a file each way. */
static void both_ways(struct st_env *env, struct st_pair *p, const char *tag)
{
	char a[64], b[64], buf[64];

	snprintf(a, sizeof(a), "from-a-%s", tag);
	snprintf(b, sizeof(b), "from-b-%s", tag);
	ST_CHECK(env, st_pair_write(p, 0, a, tag, strlen(tag)) == 0);
	ST_CHECK(env, st_pair_write(p, 1, b, tag, strlen(tag)) == 0);
	ST_CHECK(env, st_wait_converged(env, p, NULL, 0, CONVERGE_MS) >= 0);
	ST_CHECK(env, st_pair_read(p, 1, a, buf, sizeof(buf)) >= 0 && !strcmp(buf, tag));
	ST_CHECK(env, st_pair_read(p, 0, b, buf, sizeof(buf)) >= 0 && !strcmp(buf, tag));
}

int st_fuse_stale(struct st_env *env)
{
	struct st_pair p;
	struct statfs sf;
	int r = st_fuse_pair(env, &p);

	if (r)
		goto out;
	both_ways(env, &p, "before");
	st_pair_kill(env, &p, 0);
	ST_CHECK(env, st_mounted(p.peer[0].dir));
	ST_CHECK(env, statfs(p.peer[0].dir, &sf) < 0 && errno == ENOTCONN);
	ST_CHECK(env, st_pair_up(env, &p, 0) == 0);
	ST_CHECK(env, st_peer_log_has(&p.peer[0], "clearing the stale FUSE mount"));
	ST_CHECK(env, statfs(p.peer[0].dir, &sf) == 0);
	both_ways(env, &p, "after");
out:
	if (p.peer[0].home[0])
		st_pair_cleanup(env, &p);
	return r ? r : ST_PASS;
}

/* side a stops by sig (0: tandem down): exit 0, the mount and socket gone. */
static void stop_by(struct st_env *env, struct st_pair *p, int sig, const char *how)
{
	char sock[600];
	int st;

	snprintf(sock, sizeof(sock), "%s/tandem.sock", p->peer[0].home);
	if (sig)
		st = st_peer_signal(env, &p->peer[0], sig, STOP_MS);
	else
		st = st_pair_down(env, p, 0);
	if (st != 0)
		st_note(env, "stopping by %s: status %d", how, st);
	ST_CHECK(env, st == 0);
	if (st_mounted(p->peer[0].dir)) {
		st_note(env, "the mount is still there after %s", how);
		ST_CHECK(env, !"the mount went away");
		(void)st_unmount_lazy(p->peer[0].dir);
	}
	ST_CHECK(env, access(sock, F_OK) < 0);
}

int st_fuse_signals(struct st_env *env)
{
	struct st_pair p;
	int r = st_fuse_pair(env, &p);

	if (r)
		goto out;
	both_ways(env, &p, "one");
	stop_by(env, &p, SIGTERM, "SIGTERM");
	ST_CHECK(env, st_pair_up(env, &p, 0) == 0);
	both_ways(env, &p, "two");
	stop_by(env, &p, SIGINT, "SIGINT");
	ST_CHECK(env, st_pair_up(env, &p, 0) == 0);
	both_ways(env, &p, "three");
	stop_by(env, &p, 0, "tandem down");
	/* unmounted from outside: the daemon notices, says so, and stops */
	ST_CHECK(env, st_pair_up(env, &p, 0) == 0);
	ST_CHECK(env, umount2(p.peer[0].dir, UMOUNT_NOFOLLOW) == 0);
	ST_CHECK(env, st_peer_signal(env, &p.peer[0], 0, STOP_MS) == 0);
	ST_CHECK(env, st_peer_log_has(&p.peer[0], "went away"));
	ST_CHECK(env, !st_mounted(p.peer[0].dir));
	/* the store kept everything: up again, and b's files are all there */
	ST_CHECK(env, st_pair_up(env, &p, 0) == 0);
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, CONVERGE_MS) >= 0);
	ST_CHECK(env, st_pair_exists(&p, 0, "from-b-three"));
out:
	if (p.peer[0].home[0])
		st_pair_cleanup(env, &p);
	return r ? r : ST_PASS;
}

int st_fuse_cli(struct st_env *env)
{
	struct st_pair p;
	struct st_proc_out out;
	char missing[ST_PATH_MAX];
	int r = st_fuse_pair(env, &p);
	json_t *st;

	if (r)
		goto out;
	st = st_pair_status(env, &p, 0);
	ST_CHECK(env, st && st_jstr_is(st, "mount", p.peer[0].dir));
	json_decref(st);
	const char *status[] = { "--home", p.peer[0].home, "status", NULL };
	ST_CHECK(env, st_run_tandem(env, &out, status) == 0 && out.status == 0 &&
			      strstr(out.out, p.peer[0].dir));
	ST_CHECK(env, st_pair_down(env, &p, 0) == 0);

	/* no FUSE device: exit 1, saying what is missing, how to fix it, and --dir */
	const char *up[] = { "--home", p.peer[0].home, "up", "--peer", p.peer[1].fp, "--relay",
			     env->relay_url, "--mount", p.peer[0].dir, NULL };
	setenv("TANDEM_TEST_FUSE_DEV", "/nonexistent/fuse", 1);
	ST_CHECK(env, st_run_tandem(env, &out, up) == 0);
	unsetenv("TANDEM_TEST_FUSE_DEV");
	st_note(env, "without a FUSE device: %s", out.err);
	ST_CHECK(env, out.status == 1 && strstr(out.err, "modprobe fuse") &&
			      strstr(out.err, "--dir"));
	/* --mount and --dir together, a missing mount point */
	const char *both[] = { "--home", p.peer[0].home, "up", "--peer", p.peer[1].fp, "--relay",
			       env->relay_url, "--mount", p.peer[0].dir, "--dir", p.peer[1].dir,
			       NULL };
	ST_CHECK(env, st_run_tandem(env, &out, both) == 0 && out.status == 2 &&
			      strstr(out.err, "--dir and --mount"));
	snprintf(missing, sizeof(missing), "%s/nowhere", env->dir);
	up[8] = missing;
	ST_CHECK(env, st_run_tandem(env, &out, up) == 0 && out.status == 1 &&
			      strstr(out.err, "mkdir -p"));
	ST_CHECK(env, !st_mounted(p.peer[0].dir));
out:
	if (p.peer[0].home[0])
		st_pair_cleanup(env, &p);
	return r ? r : ST_PASS;
}
