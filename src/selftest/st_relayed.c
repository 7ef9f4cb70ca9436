/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Relayed connections (suite "relayed"; docs/DAEMON.md, "Two transports"):
 * two real daemons whose connection the selftest's relay splices.
 *
 *   relayed-always       both with --relay-data always: relayed, a tree
 *                        syncs both ways, status says "relayed", the
 *                        relay's /metrics counts the session
 *   relayed-fallback     the direct path is a black hole (the address b
 *                        publishes is the fault proxy, partitioned): they
 *                        fall back to relayed within a bounded wait, sync
 *   relayed-climb-back   the same, then a large file a -> b (rate-capped,
 *                        so it is mid-transfer) and the proxy healed: the
 *                        connection moves to direct, the file arrives and
 *                        verifies, and b resumed the download rather than
 *                        starting it over (its log line, and what it
 *                        received for the file)
 *
 * Waits are bounded waits for conditions; nothing asserts a time.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st_daemon.h"
#include "st_proxy.h"
#include "st_sync.h"

#define START_MS 30000
#define RELAYED_MS 30000 /* fall back: 5 s, plus a loaded machine */
#define CONVERGE_MS 60000
/* at least 16 MiB: b logs what it reused only for such files (fetch.c) */
#define CLIMB_SIZE (16ULL << 20)
#define CLIMB_RATE "4000000" /* bytes/s a serves: 16 MiB take ~4 s */
#define MIB (1ULL << 20)

static bool on_path(json_t *st, const void *arg)
{
	return st_jstr_is(st, "state", "connected") && st_jstr_is(st, "path", arg);
}

/* Both sides connected on path within ms: 0, else -1 (noted). */
static int wait_path(struct st_env *env, struct st_pair *p, const char *path, unsigned ms)
{
	for (int s = 0; s < 2; s++) {
		json_t *st = st_pair_status_wait(env, p, s, on_path, path, ms, path);
		if (!st)
			return -1;
		st_note(env, "%s: connected %s, peer_addr %s", st_side_name(s), path,
			json_string_value(json_object_get(st, "peer_addr")));
		json_decref(st);
	}
	return 0;
}

/* A small tree on side: dir/, two files and a subdirectory with one. */
static int tree_make(struct st_pair *p, int side)
{
	char rel[64], path[ST_PATH_MAX], text[64];
	const char *me = st_side_name(side);

	snprintf(rel, sizeof(rel), "from-%s", me);
	if (!st_pair_path(p, side, rel, path) || mkdir(path, 0755) < 0)
		return -1;
	snprintf(rel, sizeof(rel), "from-%s/sub", me);
	if (!st_pair_path(p, side, rel, path) || mkdir(path, 0755) < 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		int n = snprintf(text, sizeof(text), "file %d made on %s\n", i, me);
		snprintf(rel, sizeof(rel), i == 2 ? "from-%s/sub/f%d.txt" : "from-%s/f%d.txt", me,
			 i);
		if (st_pair_write(p, side, rel, text, (size_t)n) < 0)
			return -1;
	}
	snprintf(rel, sizeof(rel), "from-%s/blob.bin", me);
	return st_pair_put_random(p, side, rel, 7 + (uint64_t)side, 3 * MIB, NULL);
}

/* Trees made on both sides arrive on the other: 0, else -1 (noted). */
static int sync_both_ways(struct st_env *env, struct st_pair *p)
{
	struct st_expect exp[2] = {0};
	int64_t took;
	int r = 0;

	for (int s = 0; s < 2; s++) {
		if (tree_make(p, s) < 0) {
			st_note(env, "cannot make the tree on %s", st_side_name(s));
			return -1;
		}
		exp[s].from = s;
		exp[s].prefix = s ? "from-b" : "from-a";
		exp[s].want = st_pair_snapshot(env, p, s);
	}
	if (!exp[0].want || !exp[1].want)
		r = -1;
	took = r ? -1 : st_wait_converged(env, p, exp, 2, CONVERGE_MS);
	st_note(env, "trees of both sides converged after %lld ms", (long long)took);
	for (int s = 0; s < 2; s++)
		st_tree_free(exp[s].want);
	return took >= 0 ? 0 : -1;
}

/* GET /metrics of the selftest's relay (http://[::1]:PORT) into buf. */
static int metrics_get(struct st_env *env, char *buf, size_t cap)
{
	static const char req[] =
		"GET /metrics HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n";
	const char *port = strstr(env->relay_url, "]:");
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	size_t len = 0;
	int fd;

	if (!port)
		return -1;
	sa.sin6_port = htons((uint16_t)atoi(port + 2));
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1) {
		close(fd);
		return -1;
	}
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;
		if (len + 1 >= cap || poll(&pfd, 1, 5000) <= 0)
			break;
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return len ? 0 : -1;
}

/* The value of the metric line that starts with name (and a space), or -1. */
static long long metric(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, name, n) == 0 && l[n] == ' ')
			return atoll(l + n + 1);
	return -1;
}

int st_relayed_always(struct st_env *env)
{
	struct st_pair p;
	struct st_proc_out out;
	static char text[65536];
	long long before = -1;

	if (st_pair_make_dirs(env, &p, "") < 0) {
		ST_CHECK(env, !"the pair was made");
		goto out;
	}
	if (metrics_get(env, text, sizeof(text)) == 0)
		before = metric(text, "tandem_relay_splice_sessions_total");
	st_note(env, "the relay's splice sessions before: %lld", before);
	p.up_extra[0] = p.up_extra[1] = "--relay-data=always";
	if (st_pair_up(env, &p, 0) < 0 || st_pair_up(env, &p, 1) < 0 ||
	    wait_path(env, &p, "relayed", START_MS) < 0) {
		ST_CHECK(env, !"both connected relayed");
		goto out;
	}
	/* always: neither listens, so nothing could have been direct */
	for (int s = 0; s < 2; s++) {
		json_t *st = st_pair_status(env, &p, s);
		ST_CHECK(env, st && json_is_null(json_object_get(st, "listen")));
		const char *addr = json_string_value(json_object_get(st, "peer_addr"));
		ST_CHECK(env, addr && !strncmp(addr, "relay ", 6));
		json_decref(st);
	}
	const char *argv[] = {"--home", p.peer[0].home, "status", NULL};
	ST_CHECK(env, st_run_tandem(env, &out, argv) == 0 && out.status == 0);
	ST_CHECK(env, strstr(out.out, "path:        relayed (via the relay ") != NULL);
	ST_CHECK(env, sync_both_ways(env, &p) == 0);
	ST_CHECK(env, metrics_get(env, text, sizeof(text)) == 0);
	long long after = metric(text, "tandem_relay_splice_sessions_total");
	long long active = metric(text, "tandem_relay_splice_sessions{state=\"active\"}");
	long long bytes = metric(text, "tandem_relay_splice_bytes_total");
	st_note(env, "the relay's splice sessions after: %lld (active now %lld), bytes %lld", after,
		active, bytes);
	ST_CHECK(env, after >= 1 && after > before);
	ST_CHECK(env, active >= 1);
	ST_CHECK(env, bytes >= (long long)(6 * MIB)); /* both blobs went through it */
	for (int s = 0; s < 2; s++)
		ST_CHECK(env, st_peer_log_has(&p.peer[s], "spliced by the relay"));
out:
	st_pair_cleanup(env, &p);
	return ST_PASS;
}

/*
 * A pair whose direct path is a black hole: b listens on [::1] but
 * publishes the fault proxy's address, partitioned (it accepts, forwards
 * nothing, closes nothing); a accepts nothing, so the only direct path is
 * a -> proxy -> b. Both run with the default --relay-data (fallback);
 * rate: what a serves per second, or NULL. Returns 0 or -1 (noted).
 */
static int blocked_start(struct st_env *env, struct st_pair *p, const char *rate)
{
	char target[64];
	int r;

	if (st_pair_make_dirs(env, p, "") < 0)
		return -1;
	r = st_proxy_new(env->seed, &p->proxy);
	if (r < 0) {
		st_note(env, "cannot start the fault proxy: %s", strerror(-r));
		return -1;
	}
	st_proxy_partition(p->proxy, true);
	p->listen[0] = "none";
	p->advertise[1] = st_proxy_addr(p->proxy);
	p->rate_bps[0] = rate;
	/* fall back after 1 s rather than 5: the direct path is known dead */
	p->relay_after_ms[0] = p->relay_after_ms[1] = "1000";
	if (st_pair_up(env, p, 1) < 0)
		return -1;
	if (st_peer_listen_addr(env, &p->peer[1], target) < 0 ||
	    st_proxy_set_target(p->proxy, target) < 0) {
		st_note(env, "cannot point the proxy at b's listener");
		return -1;
	}
	st_note(env, "a's only direct path: the proxy %s (partitioned) to b at %s",
		st_proxy_addr(p->proxy), target);
	return st_pair_up(env, p, 0);
}

int st_relayed_fallback(struct st_env *env)
{
	struct st_pair p;
	struct st_proxy_counters k;

	if (blocked_start(env, &p, NULL) < 0) {
		ST_CHECK(env, !"the pair started");
		goto out;
	}
	ST_CHECK(env, wait_path(env, &p, "relayed", RELAYED_MS) == 0);
	/* a did try the direct path (a dial to the proxy) */
	st_proxy_counters(p.proxy, ST_PROXY_AB, &k);
	st_note(env, "the proxy accepted %llu connections", (unsigned long long)k.conns);
	ST_CHECK(env, k.conns >= 1);
	ST_CHECK(env, sync_both_ways(env, &p) == 0);
	ST_CHECK(env, wait_path(env, &p, "relayed", 5000) == 0);
out:
	st_pair_cleanup(env, &p);
	return ST_PASS;
}

int st_relayed_climb_back(struct st_env *env)
{
	static const char name[] = "climb.bin";
	struct st_pair p;
	uint8_t hash[32], got[32];
	char path[ST_PATH_MAX];
	int64_t recv0, done_heal, recv_end;
	json_t *st;

	if (blocked_start(env, &p, CLIMB_RATE) < 0) {
		ST_CHECK(env, !"the pair started");
		goto out;
	}
	if (wait_path(env, &p, "relayed", RELAYED_MS) < 0) {
		ST_CHECK(env, !"both connected relayed");
		goto out;
	}
	st = st_pair_status(env, &p, 1);
	recv0 = st_jint(st, "bytes_received", -1);
	json_decref(st);
	if (st_pair_put_random(&p, 0, name, 99, CLIMB_SIZE, hash) < 0) {
		ST_CHECK(env, !"the file was written");
		goto out;
	}
	/* mid-transfer over the relay: then the direct path opens */
	struct st_file_bytes some = {.path = name, .bytes = (int64_t)(CLIMB_SIZE / 4)};
	st = st_pair_status_wait(env, &p, 1, st_has_received, &some, 60000, "a quarter received");
	done_heal = st_download_done(st, name);
	json_decref(st);
	if (done_heal < 0) {
		ST_CHECK(env, !"b received part of the file over the relay");
		goto out;
	}
	st_proxy_partition(p.proxy, false);
	st_note(env, "healed the direct path when b had %lld of %llu bytes", (long long)done_heal,
		(unsigned long long)CLIMB_SIZE);
	ST_CHECK(env, done_heal < (int64_t)CLIMB_SIZE * 3 / 4);
	ST_CHECK(env, wait_path(env, &p, "direct", 60000) == 0);
	ST_CHECK(env, st_peer_log_has(&p.peer[0], "the peer is reachable directly again") ||
			      st_peer_log_has(&p.peer[1], "the peer is reachable directly again"));
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, 120000) >= 0);
	st_pair_path(&p, 1, name, path);
	ST_CHECK(env, st_hash_file(path, got, NULL) == 0 && !memcmp(got, hash, 32));
	/* resumed, not restarted: b says it reused what it had, and all it
	 * received since the file was made is well under twice the file */
	st = st_pair_status(env, &p, 1);
	recv_end = st_jint(st, "bytes_received", -1) - recv0;
	ST_CHECK(env, st_jstr_is(st, "path", "direct"));
	json_decref(st);
	long long reused = st_reused_mib(&p.peer[1], name);
	st_note(env, "b received %lld bytes for a %llu-byte file (%.2fx); it reused %lld MiB",
		(long long)recv_end, (unsigned long long)CLIMB_SIZE,
		(double)recv_end / (double)CLIMB_SIZE, reused);
	ST_CHECK(env, recv_end > 0 && recv_end < (int64_t)CLIMB_SIZE * 13 / 10);
	ST_CHECK(env, reused >= 1);
out:
	st_pair_cleanup(env, &p);
	return ST_PASS;
}
