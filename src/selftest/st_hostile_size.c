/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Issue #10 point 1: file sizes from a hostile peer. The fake peer
 * (st_fakepeer.h) announces files of 2^62, 2^52 + 1 and 1 TiB + 1 bytes to
 * a daemon whose content is fetched lazily: a mount (FUSE) daemon, and a
 * --dir daemon in lazy mode (TANDEM_TEST_LAZY=1). Each announcement must be
 * a protocol error (CLOSE code 1, a warning with the peer's address and
 * the reason); no file of that size appears; the daemon lives (and its log
 * holds no sanitizer report: st_peers_cleanup checks); and a normal file
 * announced afterwards arrives with its content.
 *
 * Should a huge file appear anyway (the refusal is missing), its last byte
 * is read, the way `tail` would, to show what the daemon does with it.
 * Reads and ensures run on a thread of their own while the main thread
 * pumps the fake peer (it serves the blocks).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/control_client.h"
#include "st_daemon.h"
#include "st_fakepeer.h"
#include "st_fuse.h"
#include "st_hostile.h"
#include "sync/blocks.h"

#define CLOSE_WAIT_MS 3000
#define LOG_WAIT_MS 5000
#define PROBE_WAIT_MS 3000
#define AFTER_WAIT_MS 15000
#define ENSURE_TIMEOUT_MS 10000
#define PROBES_MAX 8

static const char after_data[] = "a normal file, sent after the huge ones\n";

/* A read (or an ensure, then a read) on a thread of its own. */
struct probe {
	pthread_t t;
	bool started;
	char sock[600]; /* the control socket, "" for a plain read (the mount) */
	char path[700]; /* the file */
	char rel[64];	/* its share path */
	uint64_t off;
	int64_t len;	   /* -1: the whole file */
	volatile int done; /* 0 running, 1 finished */
	int result; /* ensure: 0 ok, -1 refused, -2 no answer; then 0 or -errno of the read */
	char buf[128];
	ssize_t got;
};

static void *probe_main(void *arg)
{
	struct probe *pr = arg;
	int fd;

	pr->result = 0;
	if (pr->sock[0]) {
		struct control_client *c = NULL;
		json_t *ans = NULL;
		char req[256];

		snprintf(req, sizeof(req),
			 "{\"cmd\":\"ensure\",\"path\":\"%s\",\"offset\":%llu,\"length\":%lld}",
			 pr->rel, (unsigned long long)pr->off, (long long)pr->len);
		pr->result = -2;
		if (control_client_open(pr->sock, &c) == 0 &&
		    control_client_call(c, req, ENSURE_TIMEOUT_MS, &ans, NULL) == 0 && ans)
			pr->result = json_is_true(json_object_get(ans, "ok")) ? 0 : -1;
		json_decref(ans);
		control_client_free(c);
	}
	fd = open(pr->path, O_RDONLY | O_CLOEXEC);
	pr->got = fd < 0 ? -1 : pread(fd, pr->buf, sizeof(pr->buf), (off_t)pr->off);
	if (pr->got < 0 && pr->result == 0)
		pr->result = -errno;
	if (fd >= 0)
		close(fd);
	__atomic_store_n(&pr->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

struct ctx {
	struct st_env *env;
	struct st_peer *p;
	struct st_fake *f;
	const char *what; /* "mount" or "lazy" */
	char addr[64];
	struct probe *probes; /* PROBES_MAX; joined at the end */
	unsigned nprobes;
};

/* Starts a probe of rel at off (len bytes; -1 the whole file). */
static struct probe *probe_start(struct ctx *c, const char *rel, uint64_t off, int64_t len)
{
	struct probe *pr;

	if (c->nprobes == PROBES_MAX)
		return NULL;
	pr = &c->probes[c->nprobes];
	memset(pr, 0, sizeof(*pr));
	if (!c->p->mount)
		snprintf(pr->sock, sizeof(pr->sock), "%s/%s", c->p->home, CONTROL_SOCKET_NAME);
	snprintf(pr->path, sizeof(pr->path), "%s/%s", c->p->dir, rel);
	snprintf(pr->rel, sizeof(pr->rel), "%s", rel);
	pr->off = off;
	pr->len = len;
	if (pthread_create(&pr->t, NULL, probe_main, pr) != 0)
		return NULL;
	pr->started = true;
	c->nprobes++;
	return pr;
}

/* Pumps the fake until the probe is done or ms passed. */
static bool probe_wait(struct ctx *c, struct probe *pr, unsigned ms)
{
	uint64_t end = st_now_ms() + ms;

	while (!__atomic_load_n(&pr->done, __ATOMIC_ACQUIRE)) {
		if (st_now_ms() >= end || st_left_ms(c->env) < 200)
			return false;
		if (st_fake_idle(c->env, c->f, 50) < 0)
			poll(NULL, 0, 50);
	}
	return true;
}

static bool log_wait(struct ctx *c, const char *a, const char *b, unsigned had)
{
	uint64_t end = st_now_ms() + LOG_WAIT_MS;

	while (st_peer_log_count(c->p, a, b) <= had) {
		if (st_now_ms() >= end || st_left_ms(c->env) < 100) {
			st_note(c->env, "%s: the daemon's log never said '%s' ... '%s'", c->what, a,
				b);
			return false;
		}
		if (st_fake_idle(c->env, c->f, 50) < 0)
			poll(NULL, 0, 50);
	}
	return true;
}

static int fake_up(struct ctx *c)
{
	st_fake_disconnect(c->f);
	if (st_fake_connect(c->env, c->f, c->addr, c->p->fp, 3000) < 0)
		return -1;
	if (st_fake_start(c->env, c->f, 3000, NULL) < 0) {
		st_note(c->env, "%s: the daemon did not answer START", c->what);
		return -1;
	}
	return 0;
}

static bool daemon_alive(struct ctx *c)
{
	json_t *st;

	if (c->p->pid <= 0 || kill(c->p->pid, 0) < 0)
		return false;
	st = st_peer_status(c->env, c->p);
	json_decref(st);
	return st != NULL;
}

/* One huge announcement: refused as a protocol error, logged, no file. */
static void huge_one(struct ctx *c, const char *rel, uint64_t size)
{
	struct st_env *env = c->env;
	char reason[96], path[700];
	struct sync_entry e;
	struct stat st;
	unsigned had;

	snprintf(reason, sizeof(reason), "file size %llu is more than", (unsigned long long)size);
	had = st_peer_log_count(c->p, "protocol error from the peer at [::1]:", reason);
	if (fake_up(c) < 0) {
		st_fail(env, __FILE__, __LINE__, "%s: the fake peer connects for %s", c->what, rel);
		return;
	}
	st_fake_entry(c->f, SYNC_KIND_FILE, rel, strlen(rel), NULL, &e);
	e.size = size;
	randombytes_buf(e.hash, sizeof(e.hash));
	ST_CHECK(env, st_fake_send_index(env, c->f, &e, 1, true) == 0);
	if (st_fake_wait_closed(env, c->f, CLOSE_WAIT_MS) < 0 || st_fake_close_code(c->f) != 1) {
		st_note(env, "%s: %s of %llu bytes: connection %s (code %d)", c->what, rel,
			(unsigned long long)size, st_fake_connected(c->f) ? "kept" : "closed",
			st_fake_close_code(c->f));
		st_fail(env, __FILE__, __LINE__,
			"%s: a file of %llu bytes is a protocol error (CLOSE code 1)", c->what,
			(unsigned long long)size);
	}
	if (!log_wait(c, "protocol error from the peer at [::1]:", reason, had))
		st_fail(env, __FILE__, __LINE__, "%s: the refusal of %llu bytes is logged", c->what,
			(unsigned long long)size);

	snprintf(path, sizeof(path), "%s/%s", c->p->dir, rel);
	if (stat(path, &st) == 0) {
		struct probe *pr;

		st_note(env, "%s: %s is there with %lld bytes; reading its last byte", c->what, rel,
			(long long)st.st_size);
		st_fail(env, __FILE__, __LINE__, "%s: no file of %llu bytes appears", c->what,
			(unsigned long long)size);
		if (!st_fake_connected(c->f))
			(void)fake_up(c);
		pr = probe_start(c, rel, size - 1, 1);
		if (pr && !probe_wait(c, pr, PROBE_WAIT_MS))
			st_note(env, "%s: reading the end of %s did not return", c->what, rel);
	}
	st_fake_disconnect(c->f);
	ST_CHECK(env, daemon_alive(c));
}

/* A normal file afterwards arrives with its content. */
static void after_one(struct ctx *c)
{
	struct st_env *env = c->env;
	struct probe *pr = NULL;
	char path[700];
	struct sync_entry e;
	struct stat st;
	uint64_t end;

	if (fake_up(c) < 0) {
		st_fail(env, __FILE__, __LINE__, "%s: the fake peer connects for after.txt",
			c->what);
		return;
	}
	ST_CHECK(env, st_fake_offer(c->f, "after.txt", after_data, sizeof(after_data) - 1) == 0);
	st_fake_entry(c->f, SYNC_KIND_FILE, "after.txt", 9, NULL, &e);
	ST_CHECK(env, st_fake_send_index(env, c->f, &e, 1, true) == 0);
	snprintf(path, sizeof(path), "%s/after.txt", c->p->dir);
	end = st_now_ms() + LOG_WAIT_MS;
	while ((stat(path, &st) < 0 || (size_t)st.st_size != sizeof(after_data) - 1) &&
	       st_now_ms() < end && st_fake_idle(env, c->f, 50) == 0)
		;
	if (stat(path, &st) < 0 || (size_t)st.st_size != sizeof(after_data) - 1) {
		st_fail(env, __FILE__, __LINE__, "%s: after.txt is listed with its size", c->what);
		goto out;
	}
	pr = probe_start(c, "after.txt", 0, -1);
	if (!pr || !probe_wait(c, pr, AFTER_WAIT_MS)) {
		st_fail(env, __FILE__, __LINE__, "%s: reading after.txt returns", c->what);
		goto out;
	}
	if (pr->result != 0 || pr->got != (ssize_t)sizeof(after_data) - 1 ||
	    memcmp(pr->buf, after_data, sizeof(after_data) - 1) != 0) {
		st_note(env, "%s: after.txt: result %d, %zd bytes", c->what, pr->result, pr->got);
		st_fail(env, __FILE__, __LINE__, "%s: after.txt has the content sent", c->what);
	}
out:
	st_fake_disconnect(c->f);
}

static void run_side(struct st_env *env, bool mount, struct probe *probes, unsigned *nprobes)
{
	static const struct {
		const char *rel;
		uint64_t size;
	} huge[] = {
		{"huge-2p62", (uint64_t)1 << 62},
		{"huge-2p52p1", ((uint64_t)1 << 52) + 1},
		{"huge-1tp1", BLOCKS_FILE_MAX + 1},
	};
	struct st_peer p;
	struct ctx c = {.env = env, .p = &p, .what = mount ? "mount" : "lazy", .probes = probes};
	char store[600];
	json_t *st;
	const char *s;

	memset(&p, 0, sizeof(p));
	if (st_fake_new(&c.f) < 0) {
		ST_CHECK(env, !"the fake peer is made");
		return;
	}
	if (st_peer_make(env, &p, mount ? "mnt" : "lazy") < 0) {
		ST_CHECK(env, !"the daemon's home is made");
		goto out;
	}
	if (mount) {
		p.mount = true;
		snprintf(store, sizeof(store), "%s/state", p.home);
		ST_CHECK(env, mkdir(store, 0700) == 0 || errno == EEXIST);
		snprintf(store, sizeof(store), "%s/state/store", p.home);
		ST_CHECK(env, mkdir(store, 0700) == 0);
	} else {
		setenv("TANDEM_TEST_LAZY", "1", 1);
	}
	if (st_peer_up(env, &p, st_fake_fp(c.f), NULL) < 0) {
		unsetenv("TANDEM_TEST_LAZY");
		ST_CHECK(env, !"the daemon runs");
		goto out;
	}
	unsetenv("TANDEM_TEST_LAZY");
	st = st_peer_status(env, &p);
	s = json_string_value(json_object_get(st, "listen"));
	if (s && strlen(s) < sizeof(c.addr))
		snprintf(c.addr, sizeof(c.addr), "%s", s);
	json_decref(st);
	if (!c.addr[0]) {
		ST_CHECK(env, !"the daemon listens");
		goto out;
	}
	for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++)
		huge_one(&c, huge[i].rel, huge[i].size);
	after_one(&c);
	ST_CHECK(env, daemon_alive(&c));
out:
	st_fake_free(c.f);
	st_peers_cleanup(env, &p, 1); /* fails on a sanitizer report in the log */
	*nprobes += c.nprobes;
}

int st_hostile_huge_size(struct st_env *env)
{
	static struct probe probes[2][PROBES_MAX];
	unsigned n[2] = {0, 0};
	const char *why = st_fuse_unusable();

	run_side(env, false, probes[0], &n[0]);
	if (why) {
		/* the lazy half stands on its own: the mount half is left out,
		 * which --require-fuse makes a failure (st_fuse_need notes it) */
		st_note(env, "the mount half is left out: %s", why);
		(void)st_fuse_need(env);
		env->skip_reason[0] = '\0';
	} else {
		run_side(env, true, probes[1], &n[1]);
	}
	/* the daemons are gone: a read that hung on them has returned */
	for (int s = 0; s < 2; s++)
		for (unsigned i = 0; i < n[s]; i++)
			if (probes[s][i].started)
				pthread_join(probes[s][i].t, NULL);
	return ST_PASS;
}
