/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a hostile peer's entries may do on this side (issue 10, points
 * 6-8): names that reach the log and the terminal, modes, and symlinks that
 * point out of the share. The fake peer of st_fakepeer.h talks to one real
 * daemon; the results are checked in the daemon's log, in `tandem status`
 * and on the file system.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "st_daemon.h"
#include "st_fakepeer.h"
#include "st_hostile.h"

#define WAIT_MS 5000
/* how long nothing must come back: a local change is sent some 100 ms
 * after it (the engine scans 40 ms after an inotify event), this is 8x */
#define QUIET_MS 800

/* Waits (pumping the fake) until p's log has a line with a and b. */
static bool log_wait2(struct st_env *env, const struct st_peer *p, struct st_fake *f, const char *a,
		      const char *b)
{
	uint64_t end = st_now_ms() + WAIT_MS;

	while (st_peer_log_count(p, a, b) == 0) {
		if (st_now_ms() >= end || st_left_ms(env) < 100) {
			st_note(env, "the daemon's log has no line with '%s' and '%s'", a, b);
			return false;
		}
		if (st_fake_idle(env, f, 50) < 0)
			poll(NULL, 0, 50);
	}
	return true;
}

/* Pumps the fake until path (in the share) exists, up to WAIT_MS. */
static bool wait_exists(struct st_env *env, struct st_fake *f, const char *path)
{
	uint64_t end = st_now_ms() + WAIT_MS;
	struct stat st;

	while (lstat(path, &st) < 0) {
		if (st_now_ms() >= end || st_left_ms(env) < 100)
			return false;
		if (st_fake_idle(env, f, 50) < 0)
			poll(NULL, 0, 50);
	}
	return true;
}

/* A daemon for p pinned to the fake, and the fake connected and started. */
static int fake_session_extra(struct st_env *env, struct st_peer *p, struct st_fake *f,
			      char addr[64], const char *extra)
{
	if (st_peer_up_extra(env, p, st_fake_fp(f), NULL, extra) < 0 ||
	    st_peer_listen_addr(env, p, addr) < 0) {
		st_note(env, "%s's daemon does not run or listen", p->name);
		return -1;
	}
	if (st_fake_connect(env, f, addr, p->fp, 3000) < 0 ||
	    st_fake_start(env, f, 3000, NULL) < 0) {
		st_note(env, "the fake peer does not connect to %s and start", p->name);
		return -1;
	}
	return 0;
}

static int fake_session(struct st_env *env, struct st_peer *p, struct st_fake *f, char addr[64])
{
	return fake_session_extra(env, p, f, addr, NULL);
}

/*
 * Point 6: a file whose name holds a newline and an ESC. While its blocks
 * are held, `tandem status` lists the transfer: escaped, no ESC byte. A
 * second such name the fake does not serve makes the daemon log "cannot
 * send": one line, both bytes escaped. No raw ESC anywhere in the log.
 */
int st_hostile_names(struct st_env *env)
{
	static const char held[] = "held\nname\x1b[31m.txt", gone[] = "gone\nfile\x1b]0;x.txt";
	static const char data[] = "a file with a hostile name\n";
	struct st_peer p;
	struct st_fake *f = NULL;
	struct st_proc_out po;
	struct sync_entry e[2];
	char addr[64], path[700], *log;
	size_t len;
	uint64_t end;

	memset(&p, 0, sizeof(p));
	ST_REQUIRE(env, st_fake_new(&f) == 0);
	if (st_peer_make(env, &p, "ana") < 0 || fake_session(env, &p, f, addr) < 0) {
		ST_CHECK(env, !"ana's daemon runs and the fake peer is connected");
		goto out;
	}
	ST_CHECK(env, st_fake_offer(f, held, data, sizeof(data) - 1) == 0);
	st_fake_hold(f);
	st_fake_entry(f, SYNC_KIND_FILE, held, strlen(held), NULL, &e[0]);
	st_fake_entry(f, SYNC_KIND_FILE, gone, strlen(gone), NULL, &e[1]);
	ST_CHECK(env, st_fake_send_index(env, f, e, 2, true) == 0);
	end = st_now_ms() + WAIT_MS;
	while (st_fake_held(f) == 0 && st_now_ms() < end && st_fake_idle(env, f, 50) == 0)
		;
	ST_CHECK(env, st_fake_held(f) > 0);

	/* the transfer is in flight: status names it, escaped */
	const char *argv[] = {"--home", p.home, "status", NULL};
	ST_CHECK(env, st_run_tandem(env, &po, argv) == 0 && po.status == 0);
	if (strchr(po.out, '\x1b') || !strstr(po.out, "held\\x0aname\\x1b[31m.txt")) {
		st_note(env, "tandem status said:\n%s", po.out);
		ST_CHECK(env, !"status shows the transfer's name escaped, without an ESC byte");
	}

	ST_CHECK(env, log_wait2(env, &p, f, "the peer", "\"gone\\x0afile\\x1b]0;x.txt\""));
	st_fake_release(env, f);
	snprintf(path, sizeof(path), "%s/%s", p.dir, held);
	ST_CHECK(env, wait_exists(env, f, path));
	log = st_peer_log_read(&p);
	len = log ? strlen(log) : 0;
	ST_CHECK(env, log && len > 0);
	if (log && memchr(log, '\x1b', len)) {
		st_note(env, "an ESC byte is in ana's log");
		ST_CHECK(env, !"the log holds no raw ESC");
	}
	free(log);
	st_fake_disconnect(f);
out:
	st_fake_free(f);
	st_peers_cleanup(env, &p, 1);
	return ST_PASS;
}

/* The selftest's umask (what the daemons it starts inherit), from /proc. */
static int umask_get(void)
{
	char line[128];
	unsigned v;
	int r = -1;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &v) == 1)
			r = (int)(v & 0777);
	if (f)
		fclose(f);
	return r;
}

/*
 * Pumps the fake for ms and counts the entries for path in the daemon's
 * INDEX_UPDATEs that carry a version of the daemon's own (a vector with a
 * device other than dev): a local change it made of the peer's entry.
 */
static unsigned own_versions(struct st_env *env, struct st_fake *f, const char *path,
			     const uint8_t dev[static SYNC_DEVICE_LEN], unsigned ms)
{
	uint64_t end = st_now_ms() + ms;
	unsigned n = 0;

	while (st_now_ms() < end) {
		struct sync_msg m;
		struct msg_index_iter it;
		struct sync_entry x;
		uint64_t now = st_now_ms();
		int r = st_fake_recv(env, f, (unsigned)(end - now), &m);
		if (r <= 0)
			break;
		if (m.type != SYNC_MSG_INDEX_UPDATE)
			continue;
		msg_index_iter_init(&it, &m.index_update);
		while (msg_index_next(&it, &x) == 1) {
			if (x.path_len != strlen(path) || memcmp(x.path, path, x.path_len) != 0)
				continue;
			for (unsigned i = 0; i < x.nvv; i++)
				if (memcmp(x.vv[i].device, dev, SYNC_DEVICE_LEN) != 0)
					n++;
		}
	}
	return n;
}

static unsigned mode_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 01000000;
}

/*
 * Point 7: the peer's 0777 file and directory arrive with the daemon's
 * umask applied, and stay so: the daemon sends no version of its own of
 * them (no chmod ping-pong), and a later chmod by the peer is masked too.
 */
int st_peer_modes(struct st_env *env)
{
	static const char data[] = "#!/bin/sh\necho hello\n";
	struct st_peer p;
	struct st_fake *f = NULL;
	struct sync_entry e[2];
	char addr[64], file[700], dir[700];
	int mask = umask_get();
	unsigned want;

	if (mask <= 0) {
		return st_skip(env, "the selftest's umask is 0 (or unknown): nothing to mask");
	}
	want = 0777 & ~(unsigned)mask;
	memset(&p, 0, sizeof(p));
	ST_REQUIRE(env, st_fake_new(&f) == 0);
	if (st_peer_make(env, &p, "ana") < 0 || fake_session(env, &p, f, addr) < 0) {
		ST_CHECK(env, !"ana's daemon runs and the fake peer is connected");
		goto out;
	}
	ST_CHECK(env, st_fake_offer(f, "open.sh", data, sizeof(data) - 1) == 0);
	st_fake_entry(f, SYNC_KIND_DIR, "opendir", 7, NULL, &e[0]);
	st_fake_entry(f, SYNC_KIND_FILE, "open.sh", 7, NULL, &e[1]);
	e[0].mode = e[1].mode = 0777;
	ST_CHECK(env, st_fake_send_index(env, f, e, 2, true) == 0);
	snprintf(file, sizeof(file), "%s/open.sh", p.dir);
	snprintf(dir, sizeof(dir), "%s/opendir", p.dir);
	ST_CHECK(env, wait_exists(env, f, file) && wait_exists(env, f, dir));
	(void)st_fake_idle(env, f, 300); /* metadata after the rename */
	if (mode_of(file) != want || mode_of(dir) != want) {
		st_note(env, "umask %03o: open.sh is %04o, opendir %04o; want %04o", (unsigned)mask,
			mode_of(file), mode_of(dir), want);
		ST_CHECK(env, !"the peer's 0777 arrive with the umask applied");
	}
	/* stable: nothing of the daemon's own comes back for them */
	unsigned own = own_versions(env, f, "open.sh", e[1].vv[0].device, QUIET_MS) +
		       own_versions(env, f, "opendir", e[1].vv[0].device, 300);
	if (own) {
		st_note(env, "the daemon sent %u versions of its own of the peer's entries", own);
		ST_CHECK(env, !"the masked mode is not sent back as a local change");
	}
	ST_CHECK(env, mode_of(file) == want && mode_of(dir) == want);

	/* a chmod-only change from the peer (same content) is masked too */
	st_fake_entry(f, SYNC_KIND_FILE, "open.sh", 7, NULL, &e[1]);
	e[1].mode = 0666;
	ST_CHECK(env, st_fake_send_index(env, f, &e[1], 1, true) == 0);
	uint64_t end = st_now_ms() + WAIT_MS;
	while (mode_of(file) != (0666 & ~(unsigned)mask) && st_now_ms() < end &&
	       st_fake_idle(env, f, 50) == 0)
		;
	if (mode_of(file) != (0666 & ~(unsigned)mask)) {
		st_note(env, "after the peer's chmod 0666, open.sh is %04o", mode_of(file));
		ST_CHECK(env, !"the peer's chmod arrives masked");
	}
	ST_CHECK(env, own_versions(env, f, "open.sh", e[1].vv[0].device, QUIET_MS) == 0);
	st_fake_disconnect(f);
out:
	st_fake_free(f);
	st_peers_cleanup(env, &p, 1);
	return ST_PASS;
}

static bool link_is(const char *dir, const char *name, const char *target)
{
	char path[700], buf[600];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return strcmp(buf, target) == 0;
}

static bool absent(const char *dir, const char *name)
{
	char path[700];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) < 0 && errno == ENOENT;
}

/* `refused` from p's status --json, or -1. */
static long long status_refused(struct st_env *env, const struct st_peer *p)
{
	struct st_proc_out po;
	json_error_t jerr;
	json_t *j;
	long long v = -1;

	const char *argv[] = {"--home", p->home, "status", "--json", NULL};
	if (st_run_tandem(env, &po, argv) < 0 || po.status != 0)
		return -1;
	j = json_loads(po.out, 0, &jerr);
	if (json_is_integer(json_object_get(j, "refused")))
		v = json_integer_value(json_object_get(j, "refused"));
	json_decref(j);
	return v;
}

/*
 * The fake sends "passwd -> /etc/passwd", "up/out -> ../../outside" and
 * "ok -> sub/file", then a file after.txt. Returns after after.txt is
 * there (so the links were applied), with *dev the fake's device id.
 */
static int send_links(struct st_env *env, struct st_fake *f, const struct st_peer *p,
		      uint8_t dev[static SYNC_DEVICE_LEN])
{
	static const char data[] = "after the links\n";
	struct sync_entry e[5];
	char path[700];

	if (st_fake_offer(f, "after.txt", data, sizeof(data) - 1) < 0)
		return -1;
	st_fake_entry(f, SYNC_KIND_DIR, "up", 2, NULL, &e[0]);
	st_fake_entry(f, SYNC_KIND_SYMLINK, "passwd", 6, "/etc/passwd", &e[1]);
	st_fake_entry(f, SYNC_KIND_SYMLINK, "up/out", 6, "../../outside", &e[2]);
	st_fake_entry(f, SYNC_KIND_SYMLINK, "ok", 2, "sub/file", &e[3]);
	st_fake_entry(f, SYNC_KIND_FILE, "after.txt", 9, NULL, &e[4]);
	memcpy(dev, e[0].vv[0].device, SYNC_DEVICE_LEN);
	if (st_fake_send_index(env, f, e, 5, true) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/after.txt", p->dir);
	if (!wait_exists(env, f, path)) {
		st_note(env, "after.txt never arrived");
		return -1;
	}
	(void)st_fake_idle(env, f, 200);
	return 0;
}

/*
 * Point 8: by default the symlinks that leave the share are not made
 * (logged, counted as refused, kept in the index: nothing goes back as
 * deleted, also after a restart); the one inside is made. With
 * --symlinks=all (or symlinks = all in tandem.conf) all three are made as
 * sent.
 */
int st_hostile_symlinks(struct st_env *env)
{
	struct st_peer p[3];
	struct st_fake *f = NULL;
	struct st_proc_out po;
	uint8_t dev[SYNC_DEVICE_LEN];
	char addr[64], conf[600];
	FILE *c;

	memset(p, 0, sizeof(p));
	ST_REQUIRE(env, st_fake_new(&f) == 0);
	if (st_peer_make(env, &p[0], "ana") < 0 || st_peer_make(env, &p[1], "ben") < 0 ||
	    st_peer_make(env, &p[2], "cid") < 0 || fake_session(env, &p[0], f, addr) < 0) {
		ST_CHECK(env, !"the daemons run and the fake peer is connected");
		goto out;
	}
	ST_CHECK(env, send_links(env, f, &p[0], dev) == 0);
	ST_CHECK(env, absent(p[0].dir, "passwd") && absent(p[0].dir, "up/out"));
	ST_CHECK(env, link_is(p[0].dir, "ok", "sub/file"));
	ST_CHECK(env, log_wait2(env, &p[0], f, "warning: ", "\"passwd\" -> \"/etc/passwd\""));
	ST_CHECK(env, log_wait2(env, &p[0], f, "warning: ", "\"up/out\" -> \"../../outside\""));
	/* kept in the index: neither is sent back as deleted */
	ST_CHECK(env, own_versions(env, f, "passwd", dev, QUIET_MS) == 0);
	ST_CHECK(env, own_versions(env, f, "up/out", dev, 300) == 0);
	st_fake_disconnect(f);
	ST_CHECK(env, status_refused(env, &p[0]) == 2);
	const char *argv[] = {"--home", p[0].home, "status", NULL};
	ST_CHECK(env, st_run_tandem(env, &po, argv) == 0 && po.status == 0);
	if (!strstr(po.out, "refused:     2")) {
		st_note(env, "tandem status said:\n%s", po.out);
		ST_CHECK(env, !"status text counts the refused links");
	}
	/* a restart rescans the share: the missing links are still no deletion */
	ST_CHECK(env, st_peer_down(env, &p[0]) == 0);
	if (fake_session(env, &p[0], f, addr) < 0) {
		ST_CHECK(env, !"ana's daemon runs again and the fake is connected");
		goto out;
	}
	ST_CHECK(env, own_versions(env, f, "passwd", dev, QUIET_MS) == 0);
	ST_CHECK(env, own_versions(env, f, "up/out", dev, 300) == 0);
	ST_CHECK(env, absent(p[0].dir, "passwd") && link_is(p[0].dir, "ok", "sub/file"));
	st_fake_disconnect(f);

	/* ben: "inside" in tandem.conf, --symlinks=all on the command line wins */
	snprintf(conf, sizeof(conf), "%s/tandem.conf", p[1].home);
	c = fopen(conf, "we");
	ST_CHECK(env, c && fputs("symlinks = inside\n", c) >= 0);
	ST_CHECK(env, c && fclose(c) == 0);
	if (fake_session_extra(env, &p[1], f, addr, "--symlinks=all") < 0) {
		ST_CHECK(env, !"ben's daemon runs with --symlinks=all");
		goto out;
	}
	ST_CHECK(env, send_links(env, f, &p[1], dev) == 0);
	ST_CHECK(env, link_is(p[1].dir, "passwd", "/etc/passwd"));
	ST_CHECK(env, link_is(p[1].dir, "up/out", "../../outside"));
	ST_CHECK(env, link_is(p[1].dir, "ok", "sub/file"));
	st_fake_disconnect(f);
	ST_CHECK(env, status_refused(env, &p[1]) == 0);

	/* cid: "symlinks = all" in tandem.conf alone does the same */
	snprintf(conf, sizeof(conf), "%s/tandem.conf", p[2].home);
	c = fopen(conf, "we");
	ST_CHECK(env, c && fputs("symlinks = all\n", c) >= 0);
	ST_CHECK(env, c && fclose(c) == 0);
	if (fake_session(env, &p[2], f, addr) < 0) {
		ST_CHECK(env, !"cid's daemon runs with symlinks = all");
		goto out;
	}
	ST_CHECK(env, send_links(env, f, &p[2], dev) == 0);
	ST_CHECK(env, link_is(p[2].dir, "passwd", "/etc/passwd"));
	ST_CHECK(env, link_is(p[2].dir, "up/out", "../../outside"));
	st_fake_disconnect(f);
out:
	st_fake_free(f);
	st_peers_cleanup(env, p, 3);
	return ST_PASS;
}
