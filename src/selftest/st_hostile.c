/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Scenarios with a hostile peer: the fake peer of st_fakepeer.h talks to one
 * real daemon and sends what a compliant peer never would. Each refusal
 * must be a closed connection (or a BLOCK_ERROR) and a warning in the
 * daemon's log; the daemon lives on; nothing outside its share changes,
 * which is checked on the file system, not taken from the log.
 *
 * While the fake is connected every wait pumps it (it answers the daemon's
 * heartbeats); slow checks (`tandem status`) run while it is disconnected.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "base/fsutil.h"
#include "st_daemon.h"
#include "st_fakepeer.h"
#include "st_hostile.h"
#include "st_raw.h"
#include "st_sync.h"
#include "sync/blocks.h"

#define LOG_MAX (1u << 20)
#define SNAP_MAX (1u << 16)
#define CLOSE_WAIT_MS 3000
#define LOG_WAIT_MS 5000

/* The daemon runs and answers status. */
static bool daemon_alive(struct st_env *env, const struct st_peer *p)
{
	struct st_proc_out po;
	const char *argv[] = {"--home", p->home, "status", "--json", NULL};

	return p->pid > 0 && kill(p->pid, 0) == 0 && st_run_tandem(env, &po, argv) == 0 &&
	       po.status == 0 && strstr(po.out, "\"state\"");
}

/* Lines of p's log at level (e.g. "warning: ") that contain needle. */
static unsigned log_count(const struct st_peer *p, const char *level, const char *needle)
{
	char path[600], *buf, *line, *save = NULL;
	size_t len = 0;
	ssize_t n;
	unsigned count = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/state/tandem.log", p->home);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	buf = malloc(LOG_MAX + 1);
	while (buf && len < LOG_MAX && (n = read(fd, buf + len, LOG_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (!buf)
		return 0;
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strstr(line, level) && strstr(line, needle))
			count++;
	free(buf);
	return count;
}

/* Waits until p's log has more than `had` such lines, pumping the fake. */
static bool log_wait(struct st_env *env, const struct st_peer *p, struct st_fake *f,
		     const char *level, const char *needle, unsigned had)
{
	uint64_t end = st_now_ms() + LOG_WAIT_MS;

	while (log_count(p, level, needle) <= had) {
		if (st_now_ms() >= end || st_left_ms(env) < 100) {
			st_note(env, "the daemon's log never said %s'%s'", level, needle);
			return false;
		}
		if (st_fake_idle(env, f, 50) < 0)
			poll(NULL, 0, 50);
	}
	return true;
}

/* Appends a listing of dir to s (SNAP_MAX bytes), sorted: with deep, every
 * entry beneath it with kind, mode, size, mtime and link target; else only
 * the names of its entries. */
static void snap(const char *dir, const char *rel, bool deep, char *s, size_t *len)
{
	struct dirent **names = NULL;
	char path[1024], sub[1024], target[256];
	struct stat st;
	int n = scandir(dir, &names, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		ssize_t tl = -1;

		snprintf(path, sizeof(path), "%s/%s", dir, name);
		snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", name);
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || lstat(path, &st) < 0) {
			free(names[i]);
			continue;
		}
		if (deep && S_ISLNK(st.st_mode))
			tl = readlink(path, target, sizeof(target) - 1);
		target[tl > 0 ? tl : 0] = '\0';
		if (deep)
			*len += (size_t)snprintf(s + *len, SNAP_MAX - *len,
						 "%s %o %lld %lld.%09ld %s\n", sub,
						 (unsigned)st.st_mode, (long long)st.st_size,
						 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
						 target);
		else
			*len += (size_t)snprintf(s + *len, SNAP_MAX - *len, "%s\n", sub);
		if (*len >= SNAP_MAX)
			*len = SNAP_MAX - 1;
		if (deep && S_ISDIR(st.st_mode))
			snap(path, sub, deep, s, len);
		free(names[i]);
	}
	free(names);
}

/* What must not change outside the share: the sentinel dir (itself and
 * everything in it), the names beside the share (where ../x and a/../../b
 * would land), and /etc/passwd. */
static void outside_snap(const struct st_env *env, const char *outside, char *s)
{
	struct stat st;
	size_t len = 0;

	s[0] = '\0';
	if (lstat(outside, &st) == 0)
		len += (size_t)snprintf(s, SNAP_MAX, "outside %o %lld.%09ld\n",
					(unsigned)st.st_mode, (long long)st.st_mtim.tv_sec,
					st.st_mtim.tv_nsec);
	snap(outside, "outside", true, s, &len);
	snap(env->dir, "", false, s, &len);
	if (stat("/etc/passwd", &st) == 0)
		len += (size_t)snprintf(s + len, SNAP_MAX - len, "/etc/passwd %o %lld %lld.%09ld\n",
					(unsigned)st.st_mode, (long long)st.st_size,
					(long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

/* Entries of /tmp named like the engine's temp files (SCAN_TMP_PREFIX). */
static int tmp_temps(void)
{
	struct dirent **names = NULL;
	int n = scandir("/tmp", &names, NULL, NULL), count = 0;

	for (int i = 0; i < n; i++) {
		count += strncmp(names[i]->d_name, ".tandem-tmp-", 12) == 0;
		free(names[i]);
	}
	free(names);
	return count;
}

static bool is_absent(const char *path)
{
	struct stat st;

	return lstat(path, &st) < 0 && errno == ENOENT;
}

static bool file_is(const char *path, const void *data, size_t len)
{
	uint8_t buf[4096];
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n >= 0 && (size_t)n == len && memcmp(buf, data, len) == 0;
}

static bool symlink_is(const char *path, const char *target)
{
	char buf[600];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);

	if (n < 0)
		return false;
	buf[n] = '\0';
	return strcmp(buf, target) == 0;
}

/* Connects the fake (and starts the sync stream when start). */
static int fake_up(struct st_env *env, struct st_fake *f, const struct st_peer *p,
		   const char *addr, bool start)
{
	st_fake_disconnect(f);
	if (st_fake_connect(env, f, addr, p->fp, 3000) < 0)
		return -1;
	if (start && st_fake_start(env, f, 3000, NULL) < 0) {
		st_note(env, "the daemon did not answer START: is the sync engine running?");
		return -1;
	}
	return 0;
}

/* The connection must end with CLOSE code 1 (protocol error). */
static bool closed_for_protocol(struct st_env *env, struct st_fake *f, const char *what)
{
	if (st_fake_wait_closed(env, f, CLOSE_WAIT_MS) < 0) {
		st_note(env, "%s: the daemon kept the connection open", what);
		st_fake_disconnect(f);
		return false;
	}
	if (st_fake_close_code(f) != 1) {
		st_note(env, "%s: the daemon closed with code %d ('%s'), not 1 (protocol error)",
			what, st_fake_close_code(f), st_fake_close_text(f));
		return false;
	}
	return true;
}

int st_hostile_hello(struct st_env *env)
{
	struct st_peer p;
	struct st_fake *f = NULL;
	char addr[64];
	static const struct {
		const char *what;
		uint8_t msg[8];
		size_t len;
		const char *log;
	} cases[] = {
		{"START before HELLO", {10, 0}, 1, "sent data before its HELLO"},
		{"an empty message", {0}, 0, "sent data before its HELLO"},
		{"a HELLO one byte short", {1, 0, 1, 5, 'a', 'b', 'c', 'd'}, 8,
		 "sent a malformed HELLO (8 bytes)"},
		{"a HELLO with a 200-byte name", {1, 0, 1, 200, 'a'}, 5,
		 "sent a malformed HELLO (5 bytes)"},
	};

	memset(&p, 0, sizeof(p));
	ST_REQUIRE(env, st_fake_new(&f) == 0);
	if (st_peer_make(env, &p, "ana") < 0 || st_peer_up(env, &p, st_fake_fp(f), NULL) < 0 ||
	    st_peer_listen_addr(env, &p, addr) < 0) {
		ST_CHECK(env, !"ana's daemon runs and listens");
		goto out;
	}
	/* the fake is a real peer to the daemon: handshake, HELLO both ways */
	ST_CHECK(env, st_fake_connect(env, f, addr, p.fp, 3000) == 0);
	ST_CHECK(env, st_fake_idle(env, f, 300) == 0);
	ST_CHECK(env, st_peer_log_has(&p, "\"tandem-selftest-fake-peer\""));
	st_fake_disconnect(f);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned had = log_count(&p, "warning: ", cases[i].log);
		ST_CHECK(env, st_fake_set_hello(f, cases[i].msg, cases[i].len) == 0);
		if (st_fake_connect(env, f, addr, p.fp, 3000) < 0) {
			ST_CHECK(env, !"the fake peer connects");
			continue;
		}
		if (!closed_for_protocol(env, f, cases[i].what))
			st_fail(env, __FILE__, __LINE__, "%s is a protocol error", cases[i].what);
		ST_CHECK(env, log_wait(env, &p, f, "warning: ", cases[i].log, had));
	}
	ST_CHECK(env, st_fake_set_hello(f, NULL, 0) == 0);
	ST_CHECK(env, daemon_alive(env, &p));
out:
	st_fake_free(f);
	st_peers_cleanup(env, &p, 1);
	return ST_PASS;
}

/* One hostile path, and the reason path_check gives for it. */
struct bad_path {
	const char *what;
	const char *reason;
	const char *path;
	size_t len;
};

static size_t long_path(char *buf, size_t names, size_t name_len)
{
	size_t n = 0;

	for (size_t i = 0; i < names; i++) {
		if (i)
			buf[n++] = '/';
		memset(buf + n, 'p', name_len);
		n += name_len;
	}
	return n;
}

/* Waits for the answer to req_id. Returns its type, 0 (none in time), or
 * -EPIPE (the connection closed). */
static int answer_wait(struct st_env *env, struct st_fake *f, uint32_t req_id)
{
	uint64_t end = st_now_ms() + CLOSE_WAIT_MS;
	struct sync_msg m;
	int r;

	while (st_now_ms() < end) {
		r = st_fake_recv(env, f, (unsigned)(end - st_now_ms()), &m);
		if (r == -EPIPE || (r < 0 && !st_fake_connected(f)))
			return -EPIPE;
		if (r != 1)
			continue;
		if ((m.type == SYNC_MSG_BLOCK_ERROR && m.block_error.req_id == req_id) ||
		    (m.type == SYNC_MSG_BLOCK_DATA && m.block_data.req_id == req_id) ||
		    (m.type == SYNC_MSG_MANIFEST && m.manifest.req_id == req_id))
			return m.type;
	}
	return 0;
}

/* Asks the daemon for files that are not its to give: through a symlink of
 * its share, and beside it. */
static void reverse_requests(struct st_env *env, struct st_fake *f, const struct st_peer *p,
			     const char *addr)
{
	static const char inside[] = "link/passwd", escape[] = "../../etc/passwd";
	uint8_t passwd[65536], hash[32], msg[256];
	ssize_t plen;
	size_t n;
	int fd, t;

	fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	plen = fd >= 0 ? read(fd, passwd, sizeof(passwd)) : -1;
	if (fd >= 0)
		close(fd);
	if (plen <= 0) {
		st_note(env, "cannot read /etc/passwd; the reverse requests use empty content");
		plen = 0;
	}
	/* the real hash: only the path can stop the daemon */
	ST_CHECK(env, blocks_hash_buf(passwd, (size_t)plen, NULL, NULL, hash) == 0);
	st_fake_forbid(f, passwd, plen > 48 ? 48 : (size_t)plen);

	static const uint8_t types[] = {SYNC_MSG_BLOCK_REQUEST, SYNC_MSG_MANIFEST_REQUEST};
	for (size_t i = 0; i < sizeof(types); i++) {
		uint8_t type = types[i];
		const char *tn = msg_type_name(type);
		uint32_t id = type;

		if (!st_fake_connected(f) && fake_up(env, f, p, addr, true) < 0) {
			ST_CHECK(env, !"the fake peer reconnects");
			return;
		}
		n = st_raw_request(msg, sizeof(msg), type, id, inside, strlen(inside), hash, 0, 0,
				   (uint32_t)plen);
		ST_CHECK(env, st_fake_send(env, f, msg, n) == 0);
		t = answer_wait(env, f, id);
		if (t != SYNC_MSG_BLOCK_ERROR) {
			st_note(env, "%s for '%s': answered with %s", tn, inside,
				t > 0 ? msg_type_name((unsigned)t) : t ? "a close" : "nothing");
			st_fail(env, __FILE__, __LINE__, "%s through a symlink gets BLOCK_ERROR",
				tn);
		}

		/* a path the codec refuses: a protocol error */
		unsigned had = log_count(p, "warning: ", "the path has a '..' component");
		if (!st_fake_connected(f) && fake_up(env, f, p, addr, true) < 0) {
			ST_CHECK(env, !"the fake peer reconnects");
			return;
		}
		n = st_raw_request(msg, sizeof(msg), type, id + 100, escape, strlen(escape), hash, 0,
				   0, (uint32_t)plen);
		ST_CHECK(env, st_fake_send(env, f, msg, n) == 0);
		if (!closed_for_protocol(env, f, escape))
			st_fail(env, __FILE__, __LINE__, "%s for '%s' is a protocol error", tn,
				escape);
		ST_CHECK(env, log_wait(env, p, f, "warning: ", "the path has a '..' component",
				       had));
	}
	if (st_fake_forbidden_seen(f)) {
		st_note(env, "%u messages from the daemon held the bytes of /etc/passwd",
			st_fake_forbidden_seen(f));
		ST_CHECK(env, !"the daemon never sends /etc/passwd");
	}
}

/* Everything in the share is one of the names the scenario expects. */
static void share_check(struct st_env *env, const struct st_peer *p, const char *outside)
{
	static const char *const ok[] = {"link", "evil",   "out",	  "fine.txt",	  "swap",
					 "swap/f", "swap2", "swap2.moved", "swap2.moved/f"};
	char listing[SNAP_MAX], path[700], *line, *save = NULL;
	size_t len = 0;

	listing[0] = '\0';
	snap(p->dir, "", true, listing, &len);
	for (line = strtok_r(listing, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t nl = strcspn(line, " ");
		bool known = nl == 7 && strncmp(line, ".tandem ", 8) == 0; /* the share's marker */
		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
			known |= strlen(ok[i]) == nl && strncmp(line, ok[i], nl) == 0;
		if (!known) {
			st_note(env, "unexpected in the share: %s", line);
			ST_CHECK(env, !"the share holds only what the scenario expects");
		}
	}
	/* the symlinks, if the daemon made them, are symlinks with their targets as sent */
	snprintf(path, sizeof(path), "%s/evil", p->dir);
	ST_CHECK(env, is_absent(path) || symlink_is(path, "/"));
	snprintf(path, sizeof(path), "%s/out", p->dir);
	ST_CHECK(env, is_absent(path) || symlink_is(path, outside));
	snprintf(path, sizeof(path), "%s/link", p->dir);
	ST_CHECK(env, symlink_is(path, "/etc"));
}

static void bad_paths(struct st_env *env, struct st_fake *f, const struct st_peer *p,
		      const char *addr)
{
	static char nul[] = "nul\0name", name256[256], long4220[4220];
	struct bad_path cases[] = {
		{"../x", "the path has a '..' component", "../x", 4},
		{"/etc/passwd", "the path is absolute", "/etc/passwd", 11},
		{"a/../../b", "the path has a '..' component", "a/../../b", 9},
		{"a NUL in a name", "the path contains a NUL byte", nul, sizeof(nul) - 1},
		{"a 256-byte name", "a name in the path is 256 bytes long, more than 255", name256,
		 sizeof(name256)},
		{"a 4220-byte path", "path of 4220 bytes, more than 4095", long4220,
		 sizeof(long4220)},
	};
	struct sync_entry e;

	memset(name256, 'n', sizeof(name256));
	ST_CHECK(env, long_path(long4220, 21, 200) == sizeof(long4220));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned had = log_count(p, "warning: ", cases[i].reason);
		if (fake_up(env, f, p, addr, true) < 0) {
			st_fail(env, __FILE__, __LINE__, "the fake peer connects for %s",
				cases[i].what);
			continue;
		}
		st_fake_entry(f, SYNC_KIND_FILE, cases[i].path, cases[i].len, NULL, &e);
		ST_CHECK(env, st_fake_send_index(env, f, &e, 1, true) == 0);
		if (!closed_for_protocol(env, f, cases[i].what))
			st_fail(env, __FILE__, __LINE__, "an INDEX_UPDATE with %s is refused",
				cases[i].what);
		if (!log_wait(env, p, f, "warning: ", cases[i].reason, had))
			st_fail(env, __FILE__, __LINE__, "the refusal of %s is logged",
				cases[i].what);
		/* with the peer's address: the log must say who sent it */
		ST_CHECK(env, log_count(p, "protocol error from the peer at [::1]:",
					cases[i].reason) > 0);
	}
}

/*
 * A symlink to somewhere outside, and a file "through" it, offered with
 * the right hashes. The symlink may be made; the file must not appear at
 * the other end of it.
 */
static void symlink_escape(struct st_env *env, struct st_fake *f, const struct st_peer *p,
			   const char *addr, const char *link, const char *target,
			   const char *file, const char *outside_file, bool control)
{
	static const char fine[] = "a file that may be written\n";
	char pwn[64];
	struct sync_entry e[3];
	size_t n = 0;

	snprintf(pwn, sizeof(pwn), "written through %s by a hostile peer\n", link);
	if (fake_up(env, f, p, addr, true) < 0) {
		st_fail(env, __FILE__, __LINE__, "the fake peer connects for '%s'", file);
		return;
	}
	ST_CHECK(env, st_fake_offer(f, file, pwn, strlen(pwn)) == 0);
	if (control)
		ST_CHECK(env, st_fake_offer(f, "fine.txt", fine, sizeof(fine) - 1) == 0);
	unsigned had = log_count(p, "warning: ", file);
	st_fake_entry(f, SYNC_KIND_SYMLINK, link, strlen(link), target, &e[n++]);
	st_fake_entry(f, SYNC_KIND_FILE, file, strlen(file), NULL, &e[n++]);
	if (control)
		st_fake_entry(f, SYNC_KIND_FILE, "fine.txt", 8, NULL, &e[n++]);
	ST_CHECK(env, st_fake_send_index(env, f, e, n, true) == 0);
	if (!log_wait(env, p, f, "warning: ", file, had))
		st_fail(env, __FILE__, __LINE__, "the daemon logs its refusal of '%s'", file);
	if (control) {
		/* the engine does write what it may: the refusal is the path's doing */
		char path[700];
		uint64_t end = st_now_ms() + LOG_WAIT_MS;
		snprintf(path, sizeof(path), "%s/fine.txt", p->dir);
		while (!file_is(path, fine, sizeof(fine) - 1) && st_now_ms() < end &&
		       st_fake_idle(env, f, 50) == 0)
			;
		if (!file_is(path, fine, sizeof(fine) - 1))
			st_fail(env, __FILE__, __LINE__, "fine.txt (offered beside '%s') arrives",
				file);
	}
	st_note(env, "'%s': the daemon asked for it %u times; connection %s", file,
		st_fake_requests(f, file), st_fake_connected(f) ? "kept" : "closed");
	st_fake_disconnect(f);
	if (!is_absent(outside_file)) {
		st_note(env, "%s exists after the peer sent '%s'", outside_file, file);
		st_fail(env, __FILE__, __LINE__, "nothing is written through a symlink");
		if (strncmp(outside_file, "/tmp/", 5) == 0)
			(void)unlink(outside_file);
	}
	ST_CHECK(env, daemon_alive(env, p));
}

/*
 * A directory that becomes a symlink to the outside dir while a file in it
 * is being fetched (the fake holds the file's blocks): with peer, the peer
 * says so in an INDEX_UPDATE; else it happens on disk (the directory is
 * moved aside and a symlink put in its place). Then the blocks come. The
 * late write must not follow the symlink.
 */
static void symlink_swap(struct st_env *env, struct st_fake *f, const struct st_peer *p,
			 const char *addr, const char *outside, const char *dir, bool peer)
{
	static const char data[] = "written through a directory swapped for a symlink\n";
	char file[32], outfile[600], path[700], moved[720];
	struct sync_entry e[2];
	uint64_t end;

	snprintf(file, sizeof(file), "%s/f", dir);
	snprintf(outfile, sizeof(outfile), "%s/f", outside);
	if (fake_up(env, f, p, addr, true) < 0) {
		st_fail(env, __FILE__, __LINE__, "the fake peer connects for '%s'", file);
		return;
	}
	ST_CHECK(env, st_fake_offer(f, file, data, sizeof(data) - 1) == 0);
	st_fake_hold(f);
	st_fake_entry(f, SYNC_KIND_DIR, dir, strlen(dir), NULL, &e[0]);
	st_fake_entry(f, SYNC_KIND_FILE, file, strlen(file), NULL, &e[1]);
	ST_CHECK(env, st_fake_send_index(env, f, e, 2, true) == 0);
	end = st_now_ms() + LOG_WAIT_MS;
	while (st_fake_held(f) == 0 && st_now_ms() < end && st_fake_idle(env, f, 50) == 0)
		;
	if (st_fake_held(f) == 0) {
		st_note(env, "the daemon never asked for the blocks of '%s' (%u requests)", file,
			st_fake_requests(f, file));
		ST_CHECK(env, !"the daemon fetches the file");
	}
	if (peer) {
		st_fake_entry(f, SYNC_KIND_SYMLINK, dir, strlen(dir), outside, &e[0]);
		ST_CHECK(env, st_fake_send_index(env, f, e, 1, true) == 0);
	} else {
		snprintf(path, sizeof(path), "%s/%s", p->dir, dir);
		snprintf(moved, sizeof(moved), "%s.moved", path);
		ST_CHECK(env, rename(path, moved) == 0 && symlink(outside, path) == 0);
	}
	(void)st_fake_idle(env, f, 500); /* the daemon applies the swap */
	st_fake_release(env, f);
	(void)st_fake_idle(env, f, 800); /* and writes; late writes are caught at the end */
	st_note(env, "'%s' (%s swap): %u requests; connection %s", file, peer ? "peer" : "disk",
		st_fake_requests(f, file), st_fake_connected(f) ? "kept" : "closed");
	st_fake_disconnect(f);
	if (!is_absent(outfile)) {
		st_note(env, "%s exists: a late block followed the symlink", outfile);
		ST_CHECK(env, !"nothing is written through a swapped-in symlink");
		(void)unlink(outfile);
	}
	ST_CHECK(env, daemon_alive(env, p));
}

int st_hostile_paths(struct st_env *env)
{
	struct st_peer p;
	struct st_fake *f = NULL;
	char addr[64], outside[512], path[700], tmpname[64], tmpfile[80], evilfile[96];
	char outfile[600];
	static char before[SNAP_MAX], after[SNAP_MAX];
	uint8_t rnd[8];
	int temps;
	FILE *k;

	memset(&p, 0, sizeof(p));
	ST_REQUIRE(env, st_fake_new(&f) == 0);
	if (st_peer_make(env, &p, "ana") < 0 || st_mkdir(env, "outside", outside) < 0) {
		ST_CHECK(env, !"ana and the dirs are made");
		goto out;
	}
	/* a sentinel outside the share, and a symlink out of the share that the
	 * daemon must not serve through */
	snprintf(path, sizeof(path), "%s/keep.txt", outside);
	k = fopen(path, "we");
	ST_CHECK(env, k && fputs("sentinel\n", k) >= 0);
	ST_CHECK(env, k && fclose(k) == 0);
	snprintf(path, sizeof(path), "%s/link", p.dir);
	ST_CHECK(env, symlink("/etc", path) == 0);
	randombytes_buf(rnd, sizeof(rnd));
	snprintf(tmpname, sizeof(tmpname), "tandem-hostile-%02x%02x%02x%02x%02x%02x%02x%02x",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	snprintf(tmpfile, sizeof(tmpfile), "/tmp/%s", tmpname);
	snprintf(evilfile, sizeof(evilfile), "evil/tmp/%s", tmpname);
	snprintf(outfile, sizeof(outfile), "%s/pwned", outside);
	ST_CHECK(env, is_absent(tmpfile));
	temps = tmp_temps();
	outside_snap(env, outside, before);

	if (env->failures || st_peer_up(env, &p, st_fake_fp(f), NULL) < 0 ||
	    st_peer_listen_addr(env, &p, addr) < 0) {
		ST_CHECK(env, !"ana's daemon runs and listens");
		goto out;
	}
	if (fake_up(env, f, &p, addr, true) < 0) {
		ST_CHECK(env, !"the fake peer connects and starts syncing");
		goto out;
	}

	bad_paths(env, f, &p, addr);
	symlink_escape(env, f, &p, addr, "evil", "/", evilfile, tmpfile, true);
	symlink_escape(env, f, &p, addr, "out", outside, "out/pwned", outfile, false);
	symlink_swap(env, f, &p, addr, outside, "swap", true);
	symlink_swap(env, f, &p, addr, outside, "swap2", false);
	reverse_requests(env, f, &p, addr);
	st_fake_disconnect(f);
	ST_CHECK(env, daemon_alive(env, &p));

	outside_snap(env, outside, after);
	if (strcmp(before, after) != 0) {
		st_note(env, "outside the share, before:\n%s\nafter:\n%s", before, after);
		ST_CHECK(env, !"nothing changed outside the share");
	}
	ST_CHECK(env, is_absent(tmpfile) && is_absent(outfile));
	ST_CHECK(env, tmp_temps() <= temps); /* no download went to /tmp through "evil" */
	share_check(env, &p, outside);
out:
	st_fake_free(f);
	st_peers_cleanup(env, &p, 1);
	return ST_PASS;
}

/* ---- issue 10 point 5: a flood of index entries without INDEX_DONE ---- */

#define FLOOD_MSGS 600	      /* INDEX_UPDATEs before the INDEX_DONE: 150 MB, over twice the bound */
#define FLOOD_PER_MSG 31      /* entries of 4095-byte path and target in 256 KiB */
#define FLOOD_PATHS 32	      /* distinct paths the entries cycle through */
#define FLOOD_NAME 255	      /* 16 names of 255 bytes and 15 slashes: 4095 bytes */
#define FLOOD_RSS_MAX_KIB (64 * 1024)
#define FLOOD_SYNC_MS 20000

/* Removes name beneath dirfd and everything in it, through file
 * descriptors: the flood's paths are longer than PATH_MAX with the share's
 * own path in front, too long for the selftest's path-based cleanup. */
static int rm_tree_at(int at, const char *name)
{
	struct dirent *de;
	DIR *d;
	int r;

	if (unlinkat(at, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	r = fs_opendir_nofollow(at, name, &d);
	if (r < 0)
		return r;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    rm_tree_at(dirfd(d), de->d_name) < 0)
			r = -EIO;
	closedir(d);
	if (unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

/*
 * The fake peer sends 600 INDEX_UPDATEs of 31 symlinks each, every path
 * and target 4095 bytes long (the caps), and no INDEX_DONE: 18,600 entries
 * of about 8 KiB (150 MB), under the old count cap of 65,536. The daemon
 * must not hold them all (it did: 547 MB for 2,100 messages); its peak RSS
 * stays under 64 MiB. The
 * entries cycle through 32 paths so that what the daemon applies stays
 * small on disk; each entry is still one the daemon has to hold or apply.
 * Then a normal file with INDEX_DONE: it arrives, and so does the flood.
 */
int st_hostile_index_flood(struct st_env *env)
{
	static char paths[FLOOD_PATHS][SYNC_PATH_MAX + 1], target[SYNC_TARGET_MAX + 1];
	static const char after[] = "sent after the flood\n";
	struct sync_entry e[FLOOD_PER_MSG];
	struct st_peer p;
	struct st_fake *f = NULL;
	char addr[64], path[1024];
	unsigned sent = 0;
	uint64_t t0, end;
	long kib;

	memset(&p, 0, sizeof(p));
	ST_REQUIRE(env, st_fake_new(&f) == 0);
	for (size_t i = 0; i < FLOOD_PATHS; i++) {
		size_t n = long_path(paths[i], 16, FLOOD_NAME);
		ST_REQUIRE(env, n == SYNC_PATH_MAX);
		paths[i][n - 2] = (char)('a' + i / 26); /* the last name differs */
		paths[i][n - 1] = (char)('a' + i % 26);
		paths[i][n] = '\0';
	}
	ST_REQUIRE(env, long_path(target, 16, FLOOD_NAME) == SYNC_TARGET_MAX);
	for (size_t i = 0; i < SYNC_TARGET_MAX; i++) /* relative, inside the share */
		target[i] = target[i] == '/' ? '/' : 't';
	target[SYNC_TARGET_MAX] = '\0';
	if (st_peer_make(env, &p, "ana") < 0 || st_peer_up(env, &p, st_fake_fp(f), NULL) < 0 ||
	    st_peer_listen_addr(env, &p, addr) < 0) {
		ST_CHECK(env, !"ana's daemon runs and listens");
		goto out;
	}
	if (fake_up(env, f, &p, addr, true) < 0) {
		ST_CHECK(env, !"the fake peer connects and starts syncing");
		goto out;
	}
	st_note(env, "the daemon's peak RSS before the flood: %ld KiB", st_vmhwm_kib(p.pid));
	t0 = st_now_ms();
	for (unsigned m = 0; m < FLOOD_MSGS; m++) {
		for (size_t i = 0; i < FLOOD_PER_MSG; i++) {
			const char *ph = paths[(m * FLOOD_PER_MSG + i) % FLOOD_PATHS];
			st_fake_entry(f, SYNC_KIND_SYMLINK, ph, SYNC_PATH_MAX, target, &e[i]);
		}
		if (st_fake_send_index(env, f, e, FLOOD_PER_MSG, false) < 0) {
			st_note(env, "the daemon stopped reading after %u INDEX_UPDATEs (%s)", m,
				st_fake_connected(f) ? "connected" : st_fake_close_text(f));
			break;
		}
		sent++;
		if (m % 32 == 31 && st_fake_idle(env, f, 1) < 0) /* answers heartbeats */
			break;
	}
	st_note(env, "sent %u INDEX_UPDATEs (%u entries) in %llu ms", sent, sent * FLOOD_PER_MSG,
		(unsigned long long)(st_now_ms() - t0));
	ST_CHECK(env, sent == FLOOD_MSGS);
	(void)st_fake_idle(env, f, 500);
	kib = st_vmhwm_kib(p.pid);
	st_note(env, "the daemon's peak RSS after the flood, before INDEX_DONE: %ld KiB", kib);

	/* a normal file still syncs, and the flood is applied too */
	if (!st_fake_connected(f) && fake_up(env, f, &p, addr, true) < 0) {
		ST_CHECK(env, !"the fake peer reconnects");
		goto out;
	}
	ST_CHECK(env, st_fake_offer(f, "after.txt", after, sizeof(after) - 1) == 0);
	st_fake_entry(f, SYNC_KIND_FILE, "after.txt", 9, NULL, &e[0]);
	ST_CHECK(env, st_fake_send_index(env, f, e, 1, true) == 0);
	snprintf(path, sizeof(path), "%s/after.txt", p.dir);
	end = st_now_ms() + FLOOD_SYNC_MS;
	while (!file_is(path, after, sizeof(after) - 1) && st_now_ms() < end &&
	       st_fake_idle(env, f, 50) == 0)
		;
	if (!file_is(path, after, sizeof(after) - 1))
		st_fail(env, __FILE__, __LINE__, "after.txt, sent after the flood, arrives");
	snprintf(path, sizeof(path), "%s/%.*s", p.dir, FLOOD_NAME, paths[0]);
	ST_CHECK(env, !is_absent(path)); /* the flood's first directory */
	st_fake_disconnect(f);
	ST_CHECK(env, daemon_alive(env, &p));
	kib = st_vmhwm_kib(p.pid);
	st_note(env, "the daemon's peak RSS (VmHWM): %ld KiB", kib);
	if (st_sanitized())
		st_note(env, "an ASan build: the 64 MiB bound is not checked");
	else if (kib <= 0 || kib >= FLOOD_RSS_MAX_KIB)
		st_fail(env, __FILE__, __LINE__, "the daemon's peak RSS stays under 64 MiB");
out:
	st_fake_free(f);
	st_peers_cleanup(env, &p, 1);
	if (p.dir[0] && rm_tree_at(AT_FDCWD, p.dir) < 0)
		st_note(env, "cannot remove the flood's tree in %s", p.dir);
	return ST_PASS;
}
