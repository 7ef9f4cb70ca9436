/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sync scenarios: the pair of peers, its files, its status, convergence. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/control_client.h"
#include "st_fuse.h"
#include "st_sync.h"

#define POLL_MS 20
#define SLOW_POLL_MS 100
#define FAST_POLL_FOR_MS 2500
#define LATENCY_MAX_MS 2000 /* the issue: every change on the other side within 2 s */
#define CLEANUP_MS 4000 /* below the watchdog's grace */
#define NOTE_JSON_MAX 700

static const char *const peer_names[2] = { "ana", "ben" };

const char *st_side_name(int side)
{
	return side ? "b" : "a";
}

bool st_sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return true;
#else
	return false;
#endif
#else
	return false;
#endif
}

/*
 * The 2 s bound holds in a normal build. A sanitizer build runs
 * everything several times slower, next to other suites on the same two
 * cores, and is there to find memory errors, not to time anything: there
 * the bound only catches a stall.
 */
unsigned st_latency_max_ms(void)
{
	return st_sanitized() ? 10 * LATENCY_MAX_MS : LATENCY_MAX_MS;
}

void st_sleep_ms(struct st_env *env, unsigned ms)
{
	uint64_t left = st_left_ms(env);

	poll(NULL, 0, (int)(left < ms ? left : ms));
}

static int pair_make(struct st_env *env, struct st_pair *p, const char *tag, bool mount);

int st_pair_make(struct st_env *env, struct st_pair *p, const char *tag)
{
	return pair_make(env, p, tag, true);
}

int st_pair_make_dirs(struct st_env *env, struct st_pair *p, const char *tag)
{
	return pair_make(env, p, tag, false);
}

static int pair_make(struct st_env *env, struct st_pair *p, const char *tag, bool mount)
{
	char name[32];

	memset(p, 0, sizeof(*p));
	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "%s%s", peer_names[i], tag);
		if (st_peer_make(env, &p->peer[i], name) < 0)
			return -1;
		p->kind[i] = ST_SIDE_DIR;
	}
	/* §9: a FUSE peer and a plain-dir peer whenever FUSE can be used,
	 * unless the run asks for a pairing (--pairing, --soak) */
	if (env->pairing == ST_PAIRING_DIR_DIR)
		mount = false;
	if (mount && env->pairing == ST_PAIRING_MOUNT_DIR && st_fuse_unusable())
		st_note(env, "pairing mount-dir asked for, but FUSE cannot be used (%s): dir-dir",
			st_fuse_unusable());
	if (mount && !st_fuse_unusable()) {
		char store[ST_PATH_MAX];

		p->kind[0] = ST_SIDE_MOUNT;
		p->peer[0].mount = true;
		snprintf(store, sizeof(store), "%s/state", p->peer[0].home);
		if ((mkdir(store, 0700) < 0 && errno != EEXIST) ||
		    !st_pair_path(p, 0, "", store) || mkdir(store, 0700) < 0) {
			st_note(env, "cannot create the store %s: %s", store, strerror(errno));
			return -1;
		}
	}
	/* which pairing this ran with, for whoever replays a failure */
	st_note(env, "pair%s: a %s, b dir", tag, p->kind[0] == ST_SIDE_MOUNT ? "mount" : "dir");
	snprintf(name, sizeof(name), "stage%s", tag);
	if (st_mkdir(env, name, p->stage) < 0) {
		st_note(env, "cannot create the stage dir %s", name);
		return -1;
	}
	return 0;
}

int st_pair_up(struct st_env *env, struct st_pair *p, int side)
{
	int r;

	if (p->rate_bps[side])
		setenv("TANDEM_TEST_RATE_BPS", p->rate_bps[side], 1);
	if (p->advertise[side])
		setenv("TANDEM_TEST_ADVERTISE", p->advertise[side], 1);
	if (p->relay_after_ms[side])
		setenv("TANDEM_TEST_RELAY_AFTER_MS", p->relay_after_ms[side], 1);
	r = st_peer_up_extra(env, &p->peer[side], p->peer[1 - side].fp, p->listen[side],
			     p->up_extra[side]);
	unsetenv("TANDEM_TEST_RATE_BPS");
	unsetenv("TANDEM_TEST_ADVERTISE");
	unsetenv("TANDEM_TEST_RELAY_AFTER_MS");
	if (r == 0)
		p->stale[side] = false; /* the daemon cleared its old mount */
	return r;
}

static bool is_idle(json_t *st, const void *arg)
{
	(void)arg;
	return st_jstr_is(st, "state", "connected") && st_jstr_is(st, "sync_state", "idle");
}

/* Both daemons of p connected and idle within ms each: 0, else -1. */
static int wait_both_idle(struct st_env *env, const struct st_pair *p, unsigned ms)
{
	for (int i = 0; i < 2; i++) {
		json_t *st = st_pair_status_wait(env, p, i, is_idle, NULL, ms, "connected and idle");
		if (!st)
			return -1;
		json_decref(st);
	}
	return 0;
}

int st_pair_start(struct st_env *env, struct st_pair *p, const char *tag, unsigned ms)
{
	if (st_pair_make(env, p, tag) < 0 || st_pair_up(env, p, 0) < 0 || st_pair_up(env, p, 1) < 0)
		return -1;
	return wait_both_idle(env, p, ms);
}

int st_pair_start_proxied(struct st_env *env, struct st_pair *p, const char *tag, bool mount,
			  uint64_t seed, unsigned ms)
{
	char target[64];
	int r;

	if ((mount ? st_pair_make(env, p, tag) : st_pair_make_dirs(env, p, tag)) < 0)
		return -1;
	r = st_proxy_new(seed, &p->proxy);
	if (r < 0) {
		st_note(env, "cannot start the fault proxy: %s", strerror(-r));
		return -1;
	}
	p->listen[0] = "none";
	p->advertise[1] = st_proxy_addr(p->proxy);
	if (st_pair_up(env, p, 1) < 0)
		return -1;
	if (st_peer_listen_addr(env, &p->peer[1], target) < 0 ||
	    st_proxy_set_target(p->proxy, target) < 0) {
		st_note(env, "cannot point the proxy at b's listener");
		return -1;
	}
	st_note(env, "a dials the proxy %s, which forwards to b at %s", st_proxy_addr(p->proxy),
		target);
	if (st_pair_up(env, p, 0) < 0)
		return -1;
	return wait_both_idle(env, p, ms);
}

int st_pair_down(struct st_env *env, struct st_pair *p, int side)
{
	return st_peer_down(env, &p->peer[side]);
}

void st_pair_kill(struct st_env *env, struct st_pair *p, int side)
{
	st_peer_kill(env, &p->peer[side]);
	env->faults++;
	p->stale[side] = p->kind[side] == ST_SIDE_MOUNT; /* it leaves a dead mount */
}

int st_pair_need_dir(struct st_env *env, const struct st_pair *p, int side, const char *why)
{
	if (p->kind[side] == ST_SIDE_DIR)
		return 0;
	return st_skip(env, "side %s is not a plain directory: %s", st_side_name(side), why);
}

static void log_check(struct st_env *env, const struct st_peer *peer, bool allow_errors)
{
	static const char *const bad[] = { "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
					   "runtime error:", "]: error: " };
	char *log = st_peer_log_read(peer);

	for (size_t i = 0; log && i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *hit = strstr(log, bad[i]);
		if (!hit || (allow_errors && !strcmp(bad[i], "]: error: ")))
			continue;
		st_note(env, "%s's log: %.300s", peer->name, hit);
		st_fail(env, __FILE__, __LINE__, "%s's daemon log holds '%s'", peer->name, bad[i]);
	}
	free(log);
}

void st_pair_cleanup(struct st_env *env, struct st_pair *p)
{
	if (st_left_ms(env) < CLEANUP_MS)
		env->deadline_ms = st_now_ms() + CLEANUP_MS;
	for (int i = 0; i < 2; i++) {
		struct st_peer *peer = &p->peer[i];
		/* what this daemon sent since it started, for --soak's summary
		 * (not asked of one that may hang: the scenario failed) */
		json_t *st = peer->pid > 0 && !env->failures ? st_pair_status(env, p, i) : NULL;
		int64_t sent = st_jint(st, "bytes_sent", 0);

		env->bytes += sent > 0 ? (uint64_t)sent : 0;
		json_decref(st);
		if (peer->pid > 0 && st_peer_down(env, peer) < 0)
			st_fail(env, __FILE__, __LINE__, "%s's daemon did not stop cleanly",
				peer->name);
		if (peer->home[0])
			log_check(env, peer, p->allow_errors[i]);
		if (p->kind[i] == ST_SIDE_MOUNT && peer->dir[0] && st_mounted(peer->dir)) {
			if (!p->stale[i])
				st_fail(env, __FILE__, __LINE__,
					"%s's mount %s is still there after its daemon stopped",
					peer->name, peer->dir);
			(void)st_unmount_lazy(peer->dir);
		}
	}
	for (int d = 0; p->proxy && d < 2; d++) {
		struct st_proxy_counters k;

		/* the discrete faults it injected, for --soak's summary */
		st_proxy_counters(p->proxy, (enum st_proxy_dir)d, &k);
		env->faults += k.stalls + k.partitions + k.resets + k.halfcloses + k.truncates +
			       k.flips;
	}
	st_proxy_free(p->proxy);
	p->proxy = NULL;
	if (!env->failures)
		return;
	for (int i = 0; i < 2; i++) {
		char *log = p->peer[i].home[0] ? st_peer_log_read(&p->peer[i]) : NULL;
		size_t len = log ? strlen(log) : 0;
		if (len)
			st_note(env, "%s's log (the end):\n%s", p->peer[i].name,
				log + (len > 3000 ? len - 3000 : 0));
		free(log);
	}
}

const char *st_pair_path(const struct st_pair *p, int side, const char *rel,
			 char out[static ST_PATH_MAX])
{
	const struct st_peer *peer = &p->peer[side];
	int n;

	/* A mount side has its files at its mount point while its daemon
	 * runs, and in its store (all there is of it) while it does not. */
	if (p->kind[side] == ST_SIDE_MOUNT && peer->pid <= 0)
		n = snprintf(out, ST_PATH_MAX, "%s/state/store%s%s", peer->home, rel[0] ? "/" : "",
			     rel);
	else
		n = snprintf(out, ST_PATH_MAX, "%s%s%s", peer->dir, rel[0] ? "/" : "", rel);
	return n < 0 || n >= ST_PATH_MAX ? NULL : out;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 ? -1 : 0;
	return unlink(path) < 0 ? -1 : 0;
}

int st_pair_rm(const struct st_pair *p, int side, const char *rel)
{
	char path[ST_PATH_MAX];
	struct stat st;

	if (!st_pair_path(p, side, rel, path))
		return -ENAMETOOLONG;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 ? -errno : 0;
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0 ? -EIO : 0;
}

static int write_path(const char *path, int flags, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | flags, 0644);
	size_t off = 0;
	int r = 0;

	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t k = write(fd, (const char *)data + off, len - off);
		if (k < 0) {
			r = -errno;
			break;
		}
		off += (size_t)k;
	}
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

int st_pair_write(const struct st_pair *p, int side, const char *rel, const void *data,
		  size_t len)
{
	char path[ST_PATH_MAX];

	if (!st_pair_path(p, side, rel, path))
		return -ENAMETOOLONG;
	return write_path(path, O_TRUNC, data, len);
}

int st_pair_append(const struct st_pair *p, int side, const char *rel, const char *text)
{
	char path[ST_PATH_MAX];

	if (!st_pair_path(p, side, rel, path))
		return -ENAMETOOLONG;
	return write_path(path, O_APPEND, text, strlen(text));
}

int st_pair_set_mtime(const struct st_pair *p, int side, const char *rel, int64_t sec, long nsec)
{
	char path[ST_PATH_MAX];
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = sec, .tv_nsec = nsec } };

	if (!st_pair_path(p, side, rel, path))
		return -ENAMETOOLONG;
	return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

ssize_t st_pair_read(const struct st_pair *p, int side, const char *rel, char *buf, size_t cap)
{
	char path[ST_PATH_MAX];
	size_t len = 0;
	ssize_t k = 0;
	int fd;

	if (!st_pair_path(p, side, rel, path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	while (len + 1 < cap && (k = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)k;
	close(fd);
	if (k < 0)
		return -errno;
	buf[len] = '\0';
	return (ssize_t)len;
}

bool st_pair_exists(const struct st_pair *p, int side, const char *rel)
{
	char path[ST_PATH_MAX];
	struct stat st;

	return st_pair_path(p, side, rel, path) && lstat(path, &st) == 0;
}

/* Copies src over dst in place (for a side where a rename from outside fails). */
static int copy_into(const char *src, const char *dst)
{
	char *buf = malloc(1u << 20);
	int in = open(src, O_RDONLY | O_CLOEXEC);
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t k = 0;
	int r = 0;

	while (buf && in >= 0 && out >= 0 && (k = read(in, buf, 1u << 20)) > 0) {
		if (write(out, buf, (size_t)k) != k) {
			k = -1;
			break;
		}
	}
	if (!buf || in < 0 || out < 0 || k < 0)
		r = -EIO;
	if (out >= 0 && close(out) < 0 && r == 0)
		r = -errno;
	if (in >= 0)
		close(in);
	free(buf);
	unlink(src);
	return r;
}

int st_pair_put_random(const struct st_pair *p, int side, const char *rel, uint64_t seed,
		       uint64_t size, uint8_t hash[32])
{
	static unsigned counter;
	char stage[ST_PATH_MAX], path[ST_PATH_MAX];
	int r;

	snprintf(stage, sizeof(stage), "%s/put-%u", p->stage, counter++);
	if (!st_pair_path(p, side, rel, path))
		return -ENAMETOOLONG;
	r = st_write_random(stage, seed, size, hash);
	if (r < 0) {
		unlink(stage);
		return r;
	}
	if (rename(stage, path) == 0)
		return 0;
	if (errno != EXDEV) {
		r = -errno;
		unlink(stage);
		return r;
	}
	/* a mount side is another file system: copy beside the target, then rename */
	char tmp[ST_PATH_MAX + 32];
	const char *slash = strrchr(path, '/');
	snprintf(tmp, sizeof(tmp), "%.*s/.st-put-%u.tmp", (int)(slash - path), path, counter++);
	r = copy_into(stage, tmp);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

json_t *st_pair_status(struct st_env *env, const struct st_pair *p, int side)
{
	return st_peer_status(env, &p->peer[side]);
}

int64_t st_jint(json_t *o, const char *key, int64_t def)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

bool st_jstr_is(json_t *o, const char *key, const char *want)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && !strcmp(s, want);
}

static void note_status(struct st_env *env, const struct st_pair *p, int side, json_t *st,
			const char *what)
{
	char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;

	st_note(env, "%s (%s) %s: %.*s", st_side_name(side), p->peer[side].name, what,
		NOTE_JSON_MAX, text ? text : "no answer");
	free(text);
}

json_t *st_pair_status_wait(struct st_env *env, const struct st_pair *p, int side,
			    st_status_pred pred, const void *arg, unsigned ms, const char *what)
{
	uint64_t end = st_now_ms() + ms;
	json_t *st;
	char buf[128];

	for (;;) {
		st = st_pair_status(env, p, side);
		if (st && pred(st, arg))
			return st;
		if (st_now_ms() >= end || st_left_ms(env) < POLL_MS)
			break;
		json_decref(st);
		st_sleep_ms(env, POLL_MS);
	}
	snprintf(buf, sizeof(buf), "never became %s; last status", what);
	note_status(env, p, side, st, buf);
	json_decref(st);
	return NULL;
}

int64_t st_wait_converged(struct st_env *env, struct st_pair *p, struct st_expect *exp, size_t n,
			  unsigned ms)
{
	uint64_t t0 = st_now_ms(), end = t0 + ms;
	struct st_tree *t[2] = { NULL, NULL };
	json_t *st[2] = { NULL, NULL };
	int64_t r = -1;

	for (size_t k = 0; k < n; k++)
		exp[k].reached_ms = 0;
	for (;;) {
		uint64_t now, loop0 = st_now_ms();
		bool all = true;

		for (int i = 0; i < 2; i++) {
			struct st_tree *nt = st_pair_tree(p, i, t[i]);
			st_tree_free(t[i]);
			t[i] = nt;
		}
		now = st_now_ms();
		for (size_t k = 0; t[0] && t[1] && k < n; k++) {
			struct st_expect *e = &exp[k];
			bool there = st_tree_equal(NULL, e->want, t[1 - e->from], e->prefix, "", "");
			if (there && !e->reached_ms)
				e->reached_ms = now - t0 ? now - t0 : 1;
			all = all && there &&
			      st_tree_equal(NULL, e->want, t[e->from], e->prefix, "", "");
		}
		if (t[0] && t[1] && all && st_tree_equal(NULL, t[0], t[1], NULL, "", "")) {
			for (int i = 0; i < 2; i++) {
				json_decref(st[i]);
				st[i] = st_pair_status(env, p, i);
			}
			if (is_idle(st[0], NULL) && is_idle(st[1], NULL)) {
				r = (int64_t)(st_now_ms() - t0);
				goto out;
			}
		}
		if (st_now_ms() >= end || st_left_ms(env) < POLL_MS)
			break;
		/* fine-grained while latencies are measured, then gentler on the CPU */
		uint64_t scan_ms = st_now_ms() - loop0;
		uint64_t pause = now - t0 < FAST_POLL_FOR_MS ? POLL_MS : SLOW_POLL_MS;
		st_sleep_ms(env, (unsigned)(pause > 2 * scan_ms ? pause : 2 * scan_ms));
	}

	st_note(env, "no convergence after %llu ms:", (unsigned long long)(st_now_ms() - t0));
	for (int i = 0; i < 2; i++) {
		json_decref(st[i]);
		st[i] = st_pair_status(env, p, i);
		note_status(env, p, i, st[i], "status");
	}
	if (!st_tree_equal(env, t[0], t[1], NULL, "a", "b"))
		st_note(env, "(the trees of a and b differ, above)");
	for (size_t k = 0; k < n; k++) {
		struct st_expect *e = &exp[k];
		const char *to = st_side_name(1 - e->from);
		if (!st_tree_equal(env, e->want, t[1 - e->from], e->prefix, "expected", to))
			st_note(env, "(%s under '%s' is not what %s made, above)", to, e->prefix,
				st_side_name(e->from));
		else if (!st_tree_equal(env, e->want, t[e->from], e->prefix, "expected",
					st_side_name(e->from)))
			st_note(env, "(%s's own change under '%s' was undone, above)",
				st_side_name(e->from), e->prefix);
	}
out:
	for (int i = 0; i < 2; i++) {
		json_decref(st[i]);
		st_tree_free(t[i]);
	}
	return r;
}

/* Whether name is "STEM.sync-conflict-YYYYMMDD-HHMMSS-PEER" + ext. */
static bool conflict_match(const char *name, const char *stem, size_t stem_len, const char *ext)
{
	static const char mark[] = ".sync-conflict-";
	const char *s = name;
	size_t n;

	if (strncmp(s, stem, stem_len) || strncmp(s + stem_len, mark, sizeof(mark) - 1))
		return false;
	s += stem_len + sizeof(mark) - 1;
	for (int i = 0; i < 15; i++, s++)
		if (i == 8 ? *s != '-' : (*s < '0' || *s > '9'))
			return false;
	if (*s++ != '-')
		return false;
	n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
	return n > 0 && !strcmp(s + n, ext);
}

int st_pair_conflicts(const struct st_pair *p, int side, const char *rel,
		      char first[static ST_PATH_MAX])
{
	const char *slash = strrchr(rel, '/');
	const char *name = slash ? slash + 1 : rel;
	const char *dot = strrchr(name, '.');
	char dir[ST_PATH_MAX], sub[ST_PATH_MAX];
	size_t stem_len;
	struct dirent *de;
	DIR *d;
	int n = 0;

	if (!dot || dot == name || !dot[1])
		dot = name + strlen(name);
	stem_len = (size_t)(dot - name);
	snprintf(sub, sizeof(sub), "%.*s", slash ? (int)(slash - rel) : 0, rel);
	if (!st_pair_path(p, side, sub, dir))
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d)
		return -errno;
	first[0] = '\0';
	while ((de = readdir(d))) {
		if (!conflict_match(de->d_name, name, stem_len, dot))
			continue;
		if (!n++ && snprintf(first, ST_PATH_MAX, "%s%s%s", sub, sub[0] ? "/" : "",
				     de->d_name) >= ST_PATH_MAX)
			first[0] = '\0';
	}
	closedir(d);
	return n;
}

int st_pair_conflicts_all(const struct st_pair *p, int side)
{
	struct st_tree *t = st_pair_tree(p, side, NULL);
	int n = t ? (int)st_tree_count_name(t, ".sync-conflict-") : -EIO;

	st_tree_free(t);
	return n;
}

int64_t st_download_done(json_t *st, const char *path)
{
	json_t *t;
	size_t i;

	json_array_foreach(json_object_get(st, "transfers"), i, t)
		if (st_jstr_is(t, "path", path) && st_jstr_is(t, "direction", "download"))
			return st_jint(t, "bytes_done", -1);
	return -1;
}

bool st_has_received(json_t *st, const void *arg)
{
	const struct st_file_bytes *fb = arg;

	return st_download_done(st, fb->path) >= fb->bytes;
}

long long st_reused_mib(const struct st_peer *peer, const char *path)
{
	char *log = st_peer_log_read(peer), needle[128];
	const char *at;
	long long mib = -1, total, ms;

	snprintf(needle, sizeof(needle), "received \"%s\": ", path);
	at = log ? strstr(log, needle) : NULL;
	if (at && sscanf(at + strlen(needle), "%lld MiB in %lld ms (%lld MiB reused", &total, &ms,
			 &mib) != 3)
		mib = -1;
	free(log);
	return mib;
}
