/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Local change detection against a temp share and a temp index. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "base/log.h"
#include "sync/blocks.h"
#include "sync/scan_int.h"
#include "tap.h"

static char base[] = "/tmp/tandem-test-scan-XXXXXX";
static char root[256], dbpath[256], tmp[2][4096 + 512];
static unsigned ncase;
static uint64_t clk = 1000; /* the scanner's clock (ms), moved by hand */

struct fx {
	struct index *idx;
	struct scan *s;
	struct err err;
};

/* The absolute path of rel; two buffers in turn, for rename(at(a), at(b)). */
static const char *at(const char *rel)
{
	static unsigned turn;
	char *b = tmp[turn++ % 2];

	snprintf(b, sizeof(tmp[0]), "%s/%s", root, rel);
	return b;
}

static int write_at(const char *rel, const char *data)
{
	int fd = open(at(rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(data);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, data, len) == (ssize_t)len;
	close(fd);
	return ok ? 0 : -1;
}

static int append_at(const char *rel, const char *data)
{
	int fd = open(at(rel), O_WRONLY | O_APPEND | O_CLOEXEC);
	size_t len = strlen(data);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, data, len) == (ssize_t)len;
	close(fd);
	return ok ? 0 : -1;
}

static int rm_fn(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int rm_tree(const char *path)
{
	return nftw(path, rm_fn, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh share and index for each test. */
static bool fx_open(struct fx *f)
{
	struct err idxerr = {.msg = ""};
	int r;

	memset(f, 0, sizeof(*f));
	snprintf(root, sizeof(root), "%s/share%u", base, ncase);
	snprintf(dbpath, sizeof(dbpath), "%s/index%u.db", base, ncase);
	ncase++;
	if (mkdir(root, 0755) < 0 || index_open(dbpath, &f->idx, &idxerr) < 0) {
		printf("#   setup: %s %s\n", strerror(errno), idxerr.msg);
		return false;
	}
	r = scan_new(root, f->idx, &f->s, &f->err);
	if (r < 0)
		printf("#   scan_new: %d %s\n", r, f->err.msg);
	return r == 0;
}

static void fx_close(struct fx *f)
{
	scan_free(f->s);
	index_free(f->idx);
	f->s = NULL;
	f->idx = NULL;
}

/* Waits (poll with a timeout) until every hash job is stored. Returns changes or -errno. */
static int drain(struct fx *f)
{
	uint64_t files, bytes;
	int n = 0, r;

	for (int rounds = 0; rounds < 1000; rounds++) {
		struct pollfd p = {scan_hash_fd(f->s), POLLIN, 0};

		scan_stats(f->s, &files, &bytes);
		if (files == 0)
			return n;
		if (poll(&p, 1, 5000) != 1) {
			printf("#   timed out waiting for hash results\n");
			return -ETIMEDOUT;
		}
		r = scan_on_hash_done(f->s, &f->err);
		if (r < 0) {
			printf("#   scan_on_hash_done: %d %s\n", r, f->err.msg);
			return r;
		}
		n += r;
	}
	return -ETIMEDOUT;
}

/* scan_run at clk, then the hash results. Returns all changes or -errno. */
static int scan_once(struct fx *f)
{
	int r = scan_run(f->s, clk, &f->err), q;

	if (r < 0) {
		printf("#   scan_run: %d %s\n", r, f->err.msg);
		return r;
	}
	q = drain(f);
	return q < 0 ? q : r + q;
}

/* scan_once, then again once the grace of what it found gone is over
 * (held deletions, scan.h). Returns all changes or -errno. */
static int scan(struct fx *f)
{
	int r = scan_once(f), q;

	if (r < 0 || scan_deadline(f->s) == UINT64_MAX)
		return r;
	clk = scan_deadline(f->s);
	q = scan_once(f);
	return q < 0 ? q : r + q;
}

/* Lets pending inotify events in, the way the engine would. */
static int events(struct fx *f)
{
	struct pollfd p = {scan_inotify_fd(f->s), POLLIN, 0};

	if (poll(&p, 1, 2000) != 1)
		return 0;
	return scan_on_inotify(f->s);
}

static int get(struct fx *f, const char *path, struct index_entry *e)
{
	return index_get(f->idx, path, strlen(path), e);
}

static bool live(struct fx *f, const char *path)
{
	struct index_entry e;

	return get(f, path, &e) == 0 && !e.deleted;
}

static bool tomb(struct fx *f, const char *path)
{
	struct index_entry e;

	return get(f, path, &e) == 0 && e.deleted;
}

static bool hash_is(struct fx *f, const char *path, const char *content)
{
	struct index_entry e;
	uint8_t h[BLOCKS_HASH_LEN];

	if (get(f, path, &e) < 0 || !e.has_hash)
		return false;
	if (blocks_hash_buf(content, strlen(content), NULL, NULL, h) < 0)
		return false;
	return memcmp(h, e.hash, sizeof(h)) == 0 && e.size == strlen(content);
}

static uint64_t pending_files(struct fx *f)
{
	uint64_t files, bytes;

	scan_stats(f->s, &files, &bytes);
	return files;
}

TEST(first_full_scan)
{
	struct fx f;
	struct index_entry e;
	struct timespec ts[2] = {{1700000000, 123456789}, {1700000001, 987654321}};
	struct blocks_manifest *m = NULL;
	uint8_t *blob = NULL;
	size_t blen = 0;
	uint64_t nf, nd, nl;

	REQUIRE(fx_open(&f));
	CHECK(access(at(SCAN_MARKER), F_OK) == 0); /* created for an empty index */
	CHECK(write_at("a.txt", "hello") == 0);
	CHECK(write_at("empty", "") == 0);
	CHECK(mkdir(at("d"), 0750) == 0);
	CHECK(mkdir(at("d/e"), 0755) == 0);
	CHECK(write_at("d/e/deep", "deep content") == 0);
	CHECK(symlink("a.txt", at("link")) == 0);
	CHECK(symlink("/", at("d/root")) == 0);
	CHECK(mkfifo(at("fifo"), 0644) == 0);
	CHECK(write_at(".tandem-tmp-partial", "tmp") == 0);
	CHECK(mkdir(at("d/.tandem-tmp-dir"), 0755) == 0);
	CHECK(write_at("d/.tandem-tmp-dir/x", "x") == 0);
	CHECK(chmod(at("a.txt"), 0640) == 0);
	CHECK(utimensat(AT_FDCWD, at("a.txt"), ts, AT_SYMLINK_NOFOLLOW) == 0);
	CHECK(pending_files(&f) == 0);
	CHECK(scan_pending(f.s)); /* the first scan is a full one */

	CHECK_INT_EQ(scan(&f), 7);
	CHECK(!scan_pending(f.s));
	REQUIRE(get(&f, "a.txt", &e) == 0);
	CHECK_INT_EQ(e.type, INDEX_FILE);
	CHECK_INT_EQ(e.mode, 0640);
	CHECK_INT_EQ(e.mtime_ns, 1700000001987654321LL);
	CHECK(hash_is(&f, "a.txt", "hello"));
	CHECK(e.ino != 0 && e.ctime_ns != 0);
	/* the manifest is stored beside it and matches the file hash */
	REQUIRE(index_manifest_get(f.idx, e.hash, &blob, &blen) == 0);
	CHECK_INT_EQ(blocks_manifest_decode(blob, blen, &m), 0);
	CHECK(m && blocks_manifest_check(m, e.hash) == 0);
	blocks_manifest_free(m);
	free(blob);

	CHECK(hash_is(&f, "empty", ""));
	CHECK(hash_is(&f, "d/e/deep", "deep content"));
	REQUIRE(get(&f, "d", &e) == 0);
	CHECK_INT_EQ(e.type, INDEX_DIR);
	CHECK_INT_EQ(e.mode, 0750);
	CHECK(live(&f, "d/e"));
	REQUIRE(get(&f, "link", &e) == 0);
	CHECK_INT_EQ(e.type, INDEX_SYMLINK);
	CHECK_STR_EQ(e.target, "a.txt");
	CHECK(hash_is(&f, "link", "a.txt") || e.size == 5);
	REQUIRE(get(&f, "d/root", &e) == 0);
	CHECK_STR_EQ(e.target, "/");
	CHECK(get(&f, "d/root/etc", &e) == -ENOENT); /* never followed */
	CHECK(get(&f, "fifo", &e) == -ENOENT);
	CHECK(get(&f, SCAN_MARKER, &e) == -ENOENT);
	CHECK(get(&f, ".tandem-tmp-partial", &e) == -ENOENT);
	CHECK(get(&f, "d/.tandem-tmp-dir", &e) == -ENOENT);
	CHECK(get(&f, "d/.tandem-tmp-dir/x", &e) == -ENOENT);
	CHECK_INT_EQ(index_count_live(f.idx, &nf, &nd, &nl), 0);
	CHECK_INT_EQ(nf, 3);
	CHECK_INT_EQ(nd, 2);
	CHECK_INT_EQ(nl, 2);

	/* nothing changed: nothing recorded, nothing hashed */
	scan_request_full(f.s);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
	CHECK_INT_EQ(pending_files(&f), 0);
	fx_close(&f);
}

TEST(excluded_names)
{
	CHECK(scan_excluded(".tandem", 7));
	CHECK(!scan_excluded("d/.tandem", 9));
	CHECK(!scan_excluded(".tandemx", 8));
	CHECK(scan_excluded(".tandem-tmp-1", 13));
	CHECK(scan_excluded("a/.tandem-tmp-1/b", 17));
	CHECK(scan_excluded("a/b/.tandem-tmp-", 16));
	CHECK(!scan_excluded("a/x.tandem-tmp-1", 16));
	CHECK(!scan_excluded("a/.tandem-tm", 12));
}

TEST(edits)
{
	struct fx f;
	struct index_entry e, before;
	struct stat st;
	struct timespec ts[2];

	REQUIRE(fx_open(&f));
	CHECK(write_at("f", "0123456789") == 0);
	CHECK(write_at("g", "gone soon") == 0);
	REQUIRE(scan(&f) == 2);
	REQUIRE(get(&f, "f", &before) == 0);

	/* same-size edit with the mtime put back: only ctime tells */
	REQUIRE(stat(at("f"), &st) == 0);
	CHECK(write_at("f", "ABCDEFGHIJ") == 0);
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	CHECK(utimensat(AT_FDCWD, at("f"), ts, 0) == 0);
	scan_request_full(f.s);
	CHECK_INT_EQ(scan(&f), 1);
	CHECK(hash_is(&f, "f", "ABCDEFGHIJ"));
	REQUIRE(get(&f, "f", &e) == 0);
	CHECK_INT_EQ(e.mtime_ns, before.mtime_ns);
	CHECK(e.seq > before.seq);

	CHECK(append_at("f", "++") == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 1);
	CHECK(hash_is(&f, "f", "ABCDEFGHIJ++"));

	CHECK(truncate(at("f"), 3) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 1);
	CHECK(hash_is(&f, "f", "ABC"));

	/* chmod: hashed (its ctime could be a same-size edit's), one change */
	CHECK(chmod(at("f"), 0600) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 1);
	REQUIRE(get(&f, "f", &e) == 0);
	CHECK_INT_EQ(e.mode, 0600);
	CHECK(hash_is(&f, "f", "ABC"));

	/* mtime with nanoseconds */
	ts[0].tv_sec = ts[1].tv_sec = 1600000000;
	ts[0].tv_nsec = ts[1].tv_nsec = 42;
	CHECK(utimensat(AT_FDCWD, at("f"), ts, 0) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 1);
	REQUIRE(get(&f, "f", &e) == 0);
	CHECK_INT_EQ(e.mtime_ns, 1600000000000000042LL);

	CHECK(unlink(at("g")) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 1);
	CHECK(tomb(&f, "g"));

	/* create through inotify */
	CHECK(write_at("new", "fresh") == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 1);
	CHECK(hash_is(&f, "new", "fresh"));
	fx_close(&f);
}

/*
 * A same-size edit that puts the mtime back leaves only the ctime changed,
 * and so do a chmod and a rename: after both, the content must be hashed
 * again, never taken from the entry (its old hash would be sent for the
 * new bytes: the peer's fetch fails to verify and waits for a version that
 * never comes, or the peer keeps its old copy under the new name).
 */
static int edit_keep_mtime(const char *rel, const char *data)
{
	struct timespec ts[2];
	struct stat st;

	if (stat(at(rel), &st) < 0 || write_at(rel, data) < 0)
		return -1;
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	return utimensat(AT_FDCWD, at(rel), ts, 0);
}

TEST(edit_kept_mtime_then_chmod_or_rename)
{
	struct fx f;
	struct index_entry e, before;

	REQUIRE(fx_open(&f));
	CHECK(write_at("c", "0123456789") == 0);
	CHECK(write_at("r", "abcdefghij") == 0);
	CHECK(write_at("cn", "klmnopqrst") == 0);
	CHECK(write_at("rn", "uvwxyz0123") == 0);
	REQUIRE(scan(&f) == 4);

	/* through the walk: the edit and the chmod or rename seen at once */
	CHECK(edit_keep_mtime("c", "ABCDEFGHIJ") == 0);
	CHECK(chmod(at("c"), 0600) == 0);
	CHECK(edit_keep_mtime("r", "ABCDEFGHIJ") == 0);
	CHECK(rename(at("r"), at("r2")) == 0);
	CHECK(events(&f) == 1);
	CHECK(scan(&f) >= 3);
	CHECK(hash_is(&f, "c", "ABCDEFGHIJ"));
	REQUIRE(get(&f, "c", &e) == 0);
	CHECK_INT_EQ(e.mode, 0600);
	CHECK(tomb(&f, "r"));
	CHECK(hash_is(&f, "r2", "ABCDEFGHIJ"));

	/* scan_path_now, as before the peer's entry is applied there */
	CHECK(edit_keep_mtime("cn", "KLMNOPQRST") == 0);
	CHECK(chmod(at("cn"), 0600) == 0);
	CHECK(scan_path_now(f.s, "cn", 2, &f.err) >= 1);
	CHECK(hash_is(&f, "cn", "KLMNOPQRST"));
	CHECK(edit_keep_mtime("rn", "UVWXYZ0123") == 0);
	CHECK(rename(at("rn"), at("rn2")) == 0);
	CHECK(scan_path_now(f.s, "rn2", 3, &f.err) >= 1);
	CHECK(hash_is(&f, "rn2", "UVWXYZ0123"));

	/* a plain rename is checked by its hash, which adds no version */
	CHECK(events(&f) >= 0);
	CHECK(scan(&f) >= 0);
	CHECK(rename(at("rn2"), at("rn3")) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 1);
	REQUIRE(get(&f, "rn3", &before) == 0);
	CHECK_INT_EQ(drain(&f), 0);
	REQUIRE(get(&f, "rn3", &e) == 0);
	CHECK(hash_is(&f, "rn3", "UVWXYZ0123"));
	CHECK_INT_EQ(e.seq, before.seq);
	fx_close(&f);
}

TEST(dirs)
{
	struct fx f;

	REQUIRE(fx_open(&f));
	REQUIRE(scan(&f) == 0);
	CHECK(mkdir(at("m"), 0755) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 1);
	CHECK(live(&f, "m"));
	/* nested mkdir: the new directory is walked whole */
	CHECK(mkdir(at("m/a"), 0755) == 0);
	CHECK(mkdir(at("m/a/b"), 0755) == 0);
	CHECK(mkdir(at("m/a/b/c"), 0755) == 0);
	CHECK(write_at("m/a/b/c/f", "in c") == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 4);
	CHECK(live(&f, "m/a/b/c"));
	CHECK(hash_is(&f, "m/a/b/c/f", "in c"));
	/* events inside the new directories are watched too */
	CHECK(write_at("m/a/b/c/g", "g") == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 1);
	CHECK(live(&f, "m/a/b/c/g"));
	/* chmod of a directory */
	CHECK(chmod(at("m/a"), 0700) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 1);
	/* rmdir of a tree: everything beneath is a tombstone */
	CHECK(rm_tree(at("m/a")) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 5);
	CHECK(tomb(&f, "m/a"));
	CHECK(tomb(&f, "m/a/b/c/f"));
	CHECK(tomb(&f, "m/a/b/c/g"));
	CHECK(live(&f, "m"));
	fx_close(&f);
}

TEST(rename_file)
{
	struct fx f;
	struct index_entry a, b;
	uint8_t *blob = NULL;
	size_t blen;

	REQUIRE(fx_open(&f));
	CHECK(mkdir(at("sub"), 0755) == 0);
	CHECK(write_at("a", "content that moves") == 0);
	REQUIRE(scan(&f) == 2);
	REQUIRE(get(&f, "a", &a) == 0);
	CHECK(rename(at("a"), at("sub/b")) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 1);
	CHECK(tomb(&f, "a"));
	REQUIRE(get(&f, "sub/b", &b) == 0);
	CHECK(!b.deleted);
	CHECK(memcmp(a.hash, b.hash, INDEX_HASH_LEN) == 0);
	CHECK_INT_EQ(b.ino, a.ino);
	CHECK(index_manifest_get(f.idx, b.hash, &blob, &blen) == 0);
	free(blob);
	/* hashed again (its ctime changed): the same content, no new version */
	CHECK_INT_EQ(pending_files(&f), 1);
	CHECK_INT_EQ(drain(&f), 0);
	REQUIRE(get(&f, "sub/b", &a) == 0);
	CHECK_INT_EQ(a.seq, b.seq);
	/* its new stat identity is stored: a rescan finds nothing to do */
	scan_request_full(f.s);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
	CHECK_INT_EQ(pending_files(&f), 0);
	/* renamed over an existing file (save-by-rename) */
	CHECK(write_at("c", "old c") == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 1);
	CHECK(rename(at("sub/b"), at("c")) == 0);
	CHECK(events(&f) == 1);
	CHECK(scan_run(f.s, clk, &f.err) >= 2);
	CHECK(tomb(&f, "sub/b"));
	CHECK(hash_is(&f, "c", "content that moves"));
	CHECK_INT_EQ(drain(&f), 0);
	fx_close(&f);
}

/*
 * A file written on after its hash and then renamed (a copy into a temp
 * name, then the rename into place) is not a move: the new name must never
 * carry the old, shorter content, not even until the new hash is done
 * (the engine would send it). The old name goes as deleted.
 */
TEST(rename_after_changes)
{
	struct fx f;
	struct index_entry b;

	REQUIRE(fx_open(&f));
	CHECK(write_at(".tmp", "the first part") == 0);
	REQUIRE(scan(&f) == 1);
	CHECK(append_at(".tmp", " and the rest, written later") == 0);
	CHECK(rename(at(".tmp"), at("big")) == 0);
	CHECK(events(&f) >= 1);
	CHECK(scan_run(f.s, clk, &f.err) >= 0);
	/* before its hash: absent, or (never) the old content */
	if (get(&f, "big", &b) == 0)
		CHECK(b.deleted || b.size == strlen("the first part and the rest, written later"));
	CHECK(drain(&f) >= 0);
	CHECK(hash_is(&f, "big", "the first part and the rest, written later"));
	CHECK(scan(&f) == 1); /* the grace of the old name's deletion is over */
	CHECK(tomb(&f, ".tmp"));
	fx_close(&f);
}

TEST(rename_dir_1000)
{
	struct fx f;
	struct index_entry e;
	char p[64];
	uint64_t seq;
	unsigned moved = 0, gone = 0;

	REQUIRE(fx_open(&f));
	CHECK(mkdir(at("big"), 0755) == 0);
	CHECK(mkdir(at("big/inner"), 0755) == 0);
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(p, sizeof(p), "big/%s%u", i % 2 ? "inner/" : "", i);
		REQUIRE(write_at(p, p) == 0);
	}
	REQUIRE(scan(&f) == 1002);
	seq = index_seq(f.idx);
	CHECK(rename(at("big"), at("moved")) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 1002);
	CHECK_INT_EQ(pending_files(&f), 0); /* none re-hashed */
	CHECK_INT_EQ(index_seq(f.idx), seq + 2 * 1002);
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(p, sizeof(p), "moved/%s%u", i % 2 ? "inner/" : "", i);
		moved += get(&f, p, &e) == 0 && !e.deleted;
		snprintf(p, sizeof(p), "big/%s%u", i % 2 ? "inner/" : "", i);
		gone += tomb(&f, p);
	}
	CHECK_INT_EQ(moved, 1000);
	CHECK_INT_EQ(gone, 1000);
	CHECK(hash_is(&f, "moved/inner/1", "big/inner/1"));
	scan_request_full(f.s);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
	CHECK_INT_EQ(pending_files(&f), 0);
	/* the watches moved with it: a change inside is seen at its new path */
	CHECK(append_at("moved/inner/3", "!") == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 1);
	CHECK(hash_is(&f, "moved/inner/3", "big/inner/3!"));
	fx_close(&f);
}

/* Changes made while nobody read the events (overflow, or the daemon down). */
TEST(full_rescan)
{
	struct fx f;

	REQUIRE(fx_open(&f));
	CHECK(write_at("x", "1") == 0);
	CHECK(mkdir(at("dd"), 0755) == 0);
	CHECK(write_at("dd/y", "2") == 0);
	REQUIRE(scan(&f) == 3);
	CHECK(write_at("x", "one") == 0);
	CHECK(rename(at("dd/y"), at("y")) == 0);
	CHECK(rmdir(at("dd")) == 0);
	CHECK_INT_EQ(scan(&f), 0); /* events not read: nothing is dirty */
	scan_request_full(f.s);
	CHECK(scan_pending(f.s));
	CHECK_INT_EQ(scan(&f), 3); /* edit, move, rmdir */
	CHECK(hash_is(&f, "x", "one"));
	CHECK(hash_is(&f, "y", "2"));
	CHECK(tomb(&f, "dd") && tomb(&f, "dd/y"));
	/* the events read late change nothing more */
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 0);
	fx_close(&f);
}

/* The same path type change: a directory replaced by a file. */
TEST(type_change)
{
	struct fx f;
	struct index_entry e;

	REQUIRE(fx_open(&f));
	CHECK(mkdir(at("t"), 0755) == 0);
	CHECK(write_at("t/in", "i") == 0);
	REQUIRE(scan(&f) == 2);
	CHECK(rm_tree(at("t")) == 0);
	CHECK(write_at("t", "now a file") == 0);
	scan_request_full(f.s);
	CHECK(scan(&f) >= 2);
	REQUIRE(get(&f, "t", &e) == 0);
	CHECK_INT_EQ(e.type, INDEX_FILE);
	CHECK(hash_is(&f, "t", "now a file"));
	CHECK(tomb(&f, "t/in"));
	fx_close(&f);
}

TEST(root_removed)
{
	struct fx f;
	uint64_t seq;

	REQUIRE(fx_open(&f));
	CHECK(write_at("keep", "k") == 0);
	REQUIRE(scan(&f) == 1);
	seq = index_seq(f.idx);
	CHECK(rm_tree(root) == 0);
	(void)events(&f);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), -ESTALE);
	printf("# %s\n", f.err.msg);
	CHECK(strstr(f.err.msg, "gone") != NULL || strstr(f.err.msg, "removed") != NULL);
	CHECK_INT_EQ(index_seq(f.idx), seq);
	CHECK(live(&f, "keep"));
	CHECK_INT_EQ(scan_path_now(f.s, "keep", 4, &f.err), -ESTALE);
	CHECK(live(&f, "keep"));
	/* a path the index has nothing at: nothing to delete, so the root is
	 * not checked (three stat calls for each file the applier makes) */
	CHECK_INT_EQ(scan_path_now(f.s, "new", 3, &f.err), 0);
	CHECK_INT_EQ(index_seq(f.idx), seq);
	fx_close(&f);
}

/*
 * rm -rf of the share removes the files before the marker and the root: a
 * scan that runs in between sees the root and its marker still there and
 * files gone. Nothing of that may become a deletion the peer applies.
 */
TEST(root_removed_in_parts)
{
	struct fx f;
	uint64_t seq;

	REQUIRE(fx_open(&f));
	CHECK(write_at("a", "a") == 0);
	CHECK(mkdir(at("d"), 0755) == 0);
	CHECK(write_at("d/b", "b") == 0);
	CHECK(write_at("d/c", "c") == 0);
	REQUIRE(scan(&f) == 4);
	seq = index_seq(f.idx);
	/* the first part goes, and a scan runs */
	CHECK(unlink(at("d/b")) == 0);
	CHECK(unlink(at("a")) == 0);
	CHECK(events(&f) == 1);
	CHECK(scan_run(f.s, clk, &f.err) >= 0);
	CHECK(live(&f, "a") && live(&f, "d/b")); /* held */
	CHECK(scan_pending(f.s));
	/* then the rest, the marker and the root; the grace is long over */
	CHECK(rm_tree(root) == 0);
	(void)events(&f);
	clk += SCAN_GONE_MAX_MS;
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), -ESTALE);
	CHECK(live(&f, "a") && live(&f, "d/b") && live(&f, "d/c"));
	CHECK_INT_EQ(index_seq(f.idx), seq);
	CHECK(scan_deadline(f.s) == UINT64_MAX); /* dropped, not waiting */
	fx_close(&f);
}

/* The same with the marker removed last and the root left (emptied). */
TEST(marker_removed_last)
{
	struct fx f;
	uint64_t seq;

	REQUIRE(fx_open(&f));
	CHECK(write_at("a", "a") == 0);
	CHECK(write_at("b", "b") == 0);
	REQUIRE(scan(&f) == 2);
	seq = index_seq(f.idx);
	CHECK(unlink(at("a")) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
	clk += SCAN_GONE_QUIET_MS - 1;
	CHECK(unlink(at("b")) == 0);
	CHECK(unlink(at(SCAN_MARKER)) == 0);
	CHECK(events(&f) == 1);
	clk += SCAN_GONE_QUIET_MS;
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), -ESTALE);
	CHECK(strstr(f.err.msg, SCAN_MARKER) != NULL);
	CHECK(live(&f, "a") && live(&f, "b"));
	CHECK_INT_EQ(index_seq(f.idx), seq);
	fx_close(&f);
}

/*
 * A deletion is recorded once the burst it belongs to is over
 * (SCAN_GONE_QUIET_MS without a new one) or it waited SCAN_GONE_MAX_MS,
 * and only if the path is still gone; one moved in the index meanwhile
 * (its directory renamed) is recorded at its new path.
 */
TEST(deletion_grace)
{
	struct fx f;
	uint64_t t0;
	char p[32];

	REQUIRE(fx_open(&f));
	CHECK(write_at("a", "a") == 0);
	CHECK(write_at("b", "b") == 0);
	CHECK(write_at("c", "c") == 0);
	CHECK(mkdir(at("d"), 0755) == 0);
	CHECK(write_at("d/x", "x") == 0);
	CHECK(mkdir(at("many"), 0755) == 0);
	for (int i = 0; i < 30; i++) {
		snprintf(p, sizeof(p), "many/%d", i);
		CHECK(write_at(p, p) == 0);
	}
	REQUIRE(scan(&f) == 36);

	/* one deletion: held for the quiet period, then recorded */
	t0 = clk;
	CHECK(unlink(at("a")) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
	CHECK(live(&f, "a") && scan_pending(f.s));
	CHECK(scan_deadline(f.s) == t0 + SCAN_GONE_QUIET_MS);
	/* another one before the quiet period is over: the burst goes on */
	clk = t0 + SCAN_GONE_QUIET_MS / 2;
	CHECK(unlink(at("b")) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
	CHECK(scan_deadline(f.s) == t0 + SCAN_GONE_QUIET_MS / 2 + SCAN_GONE_QUIET_MS);
	clk = t0 + SCAN_GONE_QUIET_MS;
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
	CHECK(live(&f, "a") && live(&f, "b"));
	clk = t0 + SCAN_GONE_QUIET_MS / 2 + SCAN_GONE_QUIET_MS;
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 2);
	CHECK(tomb(&f, "a") && tomb(&f, "b"));
	CHECK(!scan_pending(f.s) && scan_deadline(f.s) == UINT64_MAX);

	/* back within the grace: a change, not a deletion */
	CHECK(unlink(at("c")) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
	CHECK(write_at("c", "c again") == 0);
	CHECK(events(&f) == 1);
	clk += 10;
	CHECK_INT_EQ(scan_once(&f), 1);
	clk += SCAN_GONE_QUIET_MS;
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
	CHECK(hash_is(&f, "c", "c again"));
	CHECK(scan_deadline(f.s) == UINT64_MAX);

	/* gone, made again (another inode: the old one is still open) and
	 * recorded, gone again before the grace is over: recorded as gone */
	{
		int fd = open(at("c"), O_RDONLY | O_CLOEXEC);

		CHECK(fd >= 0);
		CHECK(unlink(at("c")) == 0);
		CHECK(events(&f) == 1);
		CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
		CHECK(write_at("c", "c, third") == 0);
		CHECK(events(&f) == 1);
		clk += 10;
		CHECK_INT_EQ(scan_once(&f), 1);
		CHECK(unlink(at("c")) == 0);
		CHECK(events(&f) == 1);
		clk += 10;
		CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
		if (fd >= 0)
			close(fd);
		clk += SCAN_GONE_QUIET_MS;
		CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 1);
		CHECK(tomb(&f, "c"));
	}

	/* gone, then its directory renamed: recorded where the index moved it */
	CHECK(unlink(at("d/x")) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
	CHECK(rename(at("d"), at("e")) == 0);
	CHECK(events(&f) == 1);
	clk += 10;
	CHECK(scan_run(f.s, clk, &f.err) >= 1);
	CHECK(live(&f, "e") && live(&f, "e/x"));
	clk += SCAN_GONE_QUIET_MS;
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 1);
	CHECK(tomb(&f, "e/x"));

	/* deletions that never stop: none waits longer than SCAN_GONE_MAX_MS */
	t0 = clk;
	for (int i = 0; i < 30; i++) {
		snprintf(p, sizeof(p), "many/%d", i);
		CHECK(unlink(at(p)) == 0);
		CHECK(events(&f) == 1);
		clk = t0 + (uint64_t)i * (SCAN_GONE_QUIET_MS / 2);
		CHECK(scan_run(f.s, clk, &f.err) >= 0);
		if (clk < t0 + SCAN_GONE_MAX_MS)
			CHECK(live(&f, "many/0"));
		if (scan_deadline(f.s) > t0 + SCAN_GONE_MAX_MS)
			CHECK(tomb(&f, "many/0"));
		CHECK(scan_deadline(f.s) <= t0 + SCAN_GONE_MAX_MS ||
		      scan_deadline(f.s) <= clk + SCAN_GONE_QUIET_MS);
		CHECK(live(&f, p)); /* the newest waits */
	}
	CHECK(tomb(&f, "many/0") && live(&f, "many/29"));
	clk += SCAN_GONE_QUIET_MS;
	CHECK(scan_run(f.s, clk, &f.err) >= 1);
	CHECK(tomb(&f, "many/29"));
	fx_close(&f);
}

TEST(root_replaced)
{
	struct fx f;
	char away[300];
	uint64_t seq;

	REQUIRE(fx_open(&f));
	CHECK(write_at("keep", "k") == 0);
	REQUIRE(scan(&f) == 1);
	seq = index_seq(f.idx);
	snprintf(away, sizeof(away), "%s.away", root);
	CHECK(rename(root, away) == 0);
	CHECK(mkdir(root, 0755) == 0);
	CHECK(write_at(SCAN_MARKER, "even with a marker") == 0);
	(void)events(&f);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), -ESTALE);
	printf("# %s\n", f.err.msg);
	CHECK_INT_EQ(index_seq(f.idx), seq);
	CHECK(live(&f, "keep"));
	fx_close(&f);
	CHECK(rm_tree(away) == 0);
}

TEST(marker)
{
	struct fx f;
	struct scan *s2 = NULL;
	uint64_t seq;

	REQUIRE(fx_open(&f));
	CHECK(write_at("keep", "k") == 0);
	REQUIRE(scan(&f) == 1);
	seq = index_seq(f.idx);
	/* removed while running: the next scan stops */
	CHECK(unlink(at(SCAN_MARKER)) == 0);
	CHECK(unlink(at("keep")) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), -ESTALE);
	printf("# %s\n", f.err.msg);
	CHECK(strstr(f.err.msg, SCAN_MARKER) != NULL);
	CHECK_INT_EQ(index_seq(f.idx), seq);
	CHECK(live(&f, "keep"));
	scan_free(f.s);
	f.s = NULL;
	/* missing at start with a non-empty index */
	CHECK_INT_EQ(scan_new(root, f.idx, &s2, &f.err), -ESTALE);
	CHECK(s2 == NULL);
	printf("# %s\n", f.err.msg);
	CHECK(access(at(SCAN_MARKER), F_OK) < 0); /* not recreated */
	/* not a directory / missing */
	CHECK_INT_EQ(scan_new(at("nonexistent"), f.idx, &s2, &f.err), -ENOENT);
	fx_close(&f);
}

static void touch_hook(const char *path, void *userdata)
{
	unsigned *calls = userdata;

	if ((*calls)++ == 0)
		(void)append_at(path, " and more");
}

TEST(changed_while_hashing)
{
	struct fx f;
	unsigned calls = 0;
	struct pollfd p;

	REQUIRE(fx_open(&f));
	/* changed between the read and the re-stat on the hasher thread */
	CHECK(write_at("h", "first") == 0);
	scan_set_hash_hook(f.s, touch_hook, &calls);
	CHECK_INT_EQ(scan(&f), 1);
	CHECK_INT_EQ(calls, 2);
	CHECK(hash_is(&f, "h", "first and more"));
	scan_set_hash_hook(f.s, NULL, NULL);

	/* changed after the hash, before the result was stored */
	CHECK(write_at("h", "second") == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
	CHECK_INT_EQ(pending_files(&f), 1);
	p = (struct pollfd){scan_hash_fd(f.s), POLLIN, 0};
	CHECK(poll(&p, 1, 5000) == 1);
	CHECK(write_at("h", "third, longer") == 0);
	CHECK_INT_EQ(scan_on_hash_done(f.s, &f.err), 0); /* re-queued */
	CHECK_INT_EQ(pending_files(&f), 1);
	CHECK_INT_EQ(drain(&f), 1);
	CHECK(hash_is(&f, "h", "third, longer"));
	fx_close(&f);
}

/* What the engine does with a download: the temp file in dir (a prefix,
 * "" or "d/"), renamed to path, recorded as the peer's entry with its stat
 * identity. */
static bool record_download(struct fx *f, const char *dir, const char *path)
{
	char tmpname[256];
	struct index_entry e;
	struct stat st;

	snprintf(tmpname, sizeof(tmpname), "%s.tandem-tmp-dl", dir);
	if (write_at(tmpname, "from the peer") != 0 || rename(at(tmpname), at(path)) != 0 ||
	    lstat(at(path), &st) != 0)
		return false;
	memset(&e, 0, sizeof(e));
	strcpy(e.path, path);
	e.path_len = strlen(path);
	e.type = INDEX_FILE;
	e.mode = st.st_mode & 0777;
	e.size = (uint64_t)st.st_size;
	e.mtime_ns = scan_ns(&st.st_mtim);
	e.has_hash = true;
	vv_init(&e.vv);
	return blocks_hash_buf("from the peer", 13, NULL, NULL, e.hash) == 0 &&
	       index_put_remote(f->idx, &e) == 0 &&
	       index_set_stat(f->idx, path, e.path_len, (uint64_t)st.st_dev, (uint64_t)st.st_ino,
			      scan_ns(&st.st_ctim)) == 0;
}

/* A file the engine wrote and recorded itself is not seen as a change. */
TEST(engine_recorded)
{
	struct fx f;
	uint64_t seq;

	REQUIRE(fx_open(&f));
	REQUIRE(scan(&f) == 0);
	REQUIRE(record_download(&f, "", "got"));
	seq = index_seq(f.idx);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
	CHECK_INT_EQ(pending_files(&f), 0);
	CHECK_INT_EQ(index_seq(f.idx), seq);
	fx_close(&f);
}

/* The engine renames a download into a directory and records it: the
 * event names that file, and the scan looks at it alone, without walking
 * the directory (one walk per batch of downloads, before). */
TEST(named_event_no_walk)
{
	struct fx f;
	struct index_entry e;
	uint64_t seq, walked;

	REQUIRE(fx_open(&f));
	REQUIRE(mkdir(at("d"), 0755) == 0);
	CHECK(write_at("d/a", "one") == 0);
	CHECK(write_at("d/b", "two") == 0);
	REQUIRE(scan(&f) > 0);
	REQUIRE(record_download(&f, "d/", "d/got"));
	seq = index_seq(f.idx);
	walked = f.s->walked;
	CHECK(events(&f) == 1);
	CHECK(scan_pending(f.s));
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
	CHECK_INT_EQ(f.s->walked - walked, 0);
	CHECK_INT_EQ(pending_files(&f), 0);
	CHECK_INT_EQ(index_seq(f.idx), seq);
	CHECK(!scan_pending(f.s));

	/* a new file of the user's: found and hashed, still no walk */
	walked = f.s->walked;
	CHECK(write_at("d/new", "mine") == 0);
	CHECK(events(&f) == 1);
	CHECK(scan(&f) > 0);
	CHECK_INT_EQ(f.s->walked - walked, 0);
	CHECK(hash_is(&f, "d/new", "mine"));

	/* a deletion is found by the walk of its directory, as before */
	walked = f.s->walked;
	CHECK(unlink(at("d/a")) == 0);
	CHECK(events(&f) == 1);
	CHECK(scan(&f) > 0);
	CHECK(f.s->walked - walked >= 1);
	CHECK(tomb(&f, "d/a"));

	/* so is a rename within it: the old name gone, the new one with its entry */
	walked = f.s->walked;
	CHECK(rename(at("d/b"), at("d/c")) == 0);
	CHECK(events(&f) == 1);
	CHECK(scan(&f) > 0);
	CHECK(f.s->walked - walked >= 1);
	CHECK(tomb(&f, "d/b"));
	CHECK(hash_is(&f, "d/c", "two"));

	/* a name that became a directory walks its parent (and the new one) */
	walked = f.s->walked;
	CHECK(unlink(at("d/new")) == 0);
	CHECK(mkdir(at("d/new"), 0755) == 0);
	CHECK(events(&f) == 1);
	CHECK(scan(&f) > 0);
	CHECK(f.s->walked - walked >= 1);
	CHECK(get(&f, "d/new", &e) == 0 && !e.deleted && e.type == INDEX_DIR);
	fx_close(&f);
}

TEST(path_now)
{
	struct fx f;

	REQUIRE(fx_open(&f));
	REQUIRE(scan(&f) == 0);
	CHECK(write_at("p", "edited before the engine replaces it") == 0);
	CHECK_INT_EQ(scan_path_now(f.s, "p", 1, &f.err), 1);
	CHECK(hash_is(&f, "p", "edited before the engine replaces it"));
	CHECK_INT_EQ(scan_path_now(f.s, "p", 1, &f.err), 0);
	CHECK(unlink(at("p")) == 0);
	CHECK_INT_EQ(scan_path_now(f.s, "p", 1, &f.err), 1);
	CHECK(tomb(&f, "p"));
	CHECK_INT_EQ(scan_path_now(f.s, "../p", 4, &f.err), -EINVAL);
	CHECK_INT_EQ(scan_path_now(f.s, ".tandem-tmp-x", 13, &f.err), 0);
	fx_close(&f);
}

/* A directory that scan_path_now records (the engine's rescan before it
 * applies the peer's entry there) is watched: what is made inside it later
 * is seen without a full rescan (found by the simulation, seed 81). */
TEST(path_now_dir_watched)
{
	struct fx f;

	REQUIRE(fx_open(&f));
	REQUIRE(scan(&f) == 0);
	CHECK(mkdir(at("d"), 0755) == 0);
	CHECK_INT_EQ(scan_path_now(f.s, "d", 1, &f.err), 1);
	CHECK(live(&f, "d"));
	/* the root's event of the mkdir: its walk finds d recorded and unchanged */
	CHECK(events(&f) == 1);
	CHECK(scan(&f) >= 0);
	CHECK(write_at("d/f", "made after d was recorded") == 0);
	CHECK(events(&f) == 1);
	CHECK(scan(&f) == 1);
	CHECK(hash_is(&f, "d/f", "made after d was recorded"));
	fx_close(&f);
}

/* Records rel as the applier records a directory it made (apply_dir): its
 * stat, with no identity, and no walk or watch of it. */
static bool dir_as_applied(struct fx *f, const char *rel)
{
	struct index_entry e;
	struct stat st;

	if (mkdir(at(rel), 0755) < 0 || lstat(at(rel), &st) < 0)
		return false;
	scan_entry_init(&e, rel, strlen(rel), &st);
	e.dev = e.ino = 0;
	return index_put_local(f->idx, &e) == 0;
}

/* A directory the applier made (no identity, not watched) whose child, a
 * directory it made too, the user moved away before any walk: the
 * applier's scan_path_now of the directory records it and walks it, and
 * must find the child gone; the walks of its parent find the directory
 * recorded and unchanged and never look in again (found by the
 * simulation, seed 312 --lazy --ops 24: d1/f1 only on A, for good). */
TEST(path_now_dir_child_gone)
{
	struct fx f;

	REQUIRE(fx_open(&f));
	REQUIRE(scan(&f) == 0);
	CHECK(dir_as_applied(&f, "d"));
	CHECK(dir_as_applied(&f, "d/c"));
	CHECK(events(&f) == 1); /* the mkdir of d, in the root */
	CHECK(rename(at("d/c"), at("g")) == 0);
	CHECK_INT_EQ(scan_path_now(f.s, "d", 1, &f.err), 1);
	CHECK(live(&f, "d"));
	CHECK(scan(&f) >= 0);
	CHECK(live(&f, "g"));
	CHECK(tomb(&f, "d/c"));
	fx_close(&f);
}

/*
 * The engine's scan_path_now() of a new directory g finds in it d1, moved
 * there by the user (a rename, the index moves d1's whole tree), and
 * walks it. What d1 held that no scan had recorded yet (x, made in d1/h
 * just before the move) was lost (docs/SIM.md bug 29, sim seed 4641): the
 * walk went into g/g but not into g/g/h, recorded under its new name with
 * its inode, so taken for walked; x's event had marked d1/h dirty, a path
 * gone by the next scan. And g/g/h's watch kept its old path: what was
 * made in it later went to d1/h too, never found.
 */
TEST(path_now_walks_moved_tree)
{
	struct fx f;

	REQUIRE(fx_open(&f));
	CHECK(mkdir(at("d1"), 0755) == 0 && mkdir(at("d1/h"), 0755) == 0);
	REQUIRE(scan(&f) == 2);
	CHECK(mkdir(at("d1/h/x"), 0755) == 0);
	CHECK(events(&f) == 1); /* d1/h is dirty */
	CHECK(mkdir(at("g"), 0755) == 0 && rename(at("d1"), at("g/g")) == 0);
	CHECK(scan_path_now(f.s, "g", 1, &f.err) == 1);
	CHECK(live(&f, "g/g") && live(&f, "g/g/h") && !live(&f, "d1/h"));
	CHECK(live(&f, "g/g/h/x"));
	CHECK(events(&f) == 1);
	CHECK(scan(&f) >= 0);
	CHECK(live(&f, "g/g/h/x"));
	/* g/g/h is watched under its new name */
	CHECK(write_at("g/g/h/y", "made after the move") == 0);
	CHECK(events(&f) == 1);
	CHECK(scan(&f) == 1);
	CHECK(hash_is(&f, "g/g/h/y", "made after the move"));
	fx_close(&f);
}

static void quiet(enum log_level level, const char *msg, void *userdata)
{
	unsigned *warnings = userdata;

	if (level <= LOG_LVL_WARN) {
		(*warnings)++;
		printf("# log: %s\n", msg);
	}
}

/* Counts the scanner's "not syncing" lines (info: a FIFO in the share is normal). */
static void count_special(enum log_level level, const char *msg, void *userdata)
{
	unsigned *n = userdata;

	if (level <= LOG_LVL_INFO && strstr(msg, "not syncing"))
		(*n)++;
}

TEST(special_warned_once)
{
	struct fx f;
	unsigned warnings = 0;

	REQUIRE(fx_open(&f));
	log_set_sink(count_special, &warnings);
	CHECK(mkfifo(at("pipe\n"), 0644) == 0);
	CHECK_INT_EQ(scan(&f), 0);
	scan_request_full(f.s);
	CHECK_INT_EQ(scan(&f), 0);
	CHECK_INT_EQ(warnings, 1);
	log_set_sink(NULL, NULL);
	/* a file replaced by a FIFO is a deletion */
	CHECK(write_at("w", "w") == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 1);
	CHECK(unlink(at("w")) == 0);
	CHECK(mkfifo(at("w"), 0644) == 0);
	log_set_sink(quiet, &warnings);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 1);
	CHECK(tomb(&f, "w"));
	log_set_sink(NULL, NULL);
	fx_close(&f);
}

/* An engine temp file untouched for a week is deleted; younger ones, and a
 * user's own file that only starts like one, stay. */
TEST(abandoned_downloads)
{
	static const char *const old_tmp[] = { ".tandem-tmp-0123456789abcdef01234567",
					       "d/.tandem-tmp-00000000000000ff.lazy",
					       ".tandem-tmp-00000000000000ff.lnk" };
	static const char *const kept[] = { ".tandem-tmp-89abcdef0123456701234567",
					    ".tandem-tmp-notes", ".tandem-tmp-0123456789ABCDEF01234567",
					    ".tandem-tmp-00000000000000ff.lazy.bak" };
	struct timespec week[2] = { { 0, UTIME_OMIT }, { time(NULL) - SCAN_TMP_MAX_AGE_S - 60, 0 } };
	struct timespec day[2] = { { 0, UTIME_OMIT }, { time(NULL) - 86400, 0 } };
	struct fx f;
	unsigned warnings = 0;

	CHECK(scan_engine_tmp(old_tmp[0]) && scan_engine_tmp(".tandem-tmp-00000000000000ff.lazy"));
	CHECK(!scan_engine_tmp(kept[1]) && !scan_engine_tmp(kept[2]) && !scan_engine_tmp(kept[3]));
	CHECK(!scan_engine_tmp("tandem-tmp-0123456789abcdef01234567"));
	REQUIRE(fx_open(&f));
	CHECK(mkdir(at("d"), 0755) == 0);
	for (size_t i = 0; i < 3; i++) {
		CHECK(write_at(old_tmp[i], "partial") == 0);
		CHECK(utimensat(AT_FDCWD, at(old_tmp[i]), week, 0) == 0);
	}
	for (size_t i = 0; i < 4; i++) {
		CHECK(write_at(kept[i], "keep me") == 0);
		/* the first is younger than a week; the others are not engine names */
		CHECK(utimensat(AT_FDCWD, at(kept[i]), i ? week : day, 0) == 0);
	}
	log_set_sink(quiet, &warnings);
	CHECK_INT_EQ(scan(&f), 1); /* d; no temp file is indexed */
	log_set_sink(NULL, NULL);
	CHECK_INT_EQ(warnings, 0);
	for (size_t i = 0; i < 3; i++)
		CHECK(access(at(old_tmp[i]), F_OK) < 0 && errno == ENOENT);
	for (size_t i = 0; i < 4; i++)
		CHECK(access(at(kept[i]), F_OK) == 0);
	fx_close(&f);
}

static bool placeholder_yes(void *ud, const char *path, uint64_t size)
{
	(void)size;
	return *(bool *)ud && strcmp(path, "ph") == 0;
}

/* A placeholder's change is its metadata; its bytes on disk are not hashed. */
TEST(placeholder_metadata)
{
	struct fx f;
	struct index_entry e;
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 1600000000, 5 } };
	bool on = true;

	REQUIRE(fx_open(&f));
	scan_set_placeholder_check(f.s, placeholder_yes, &on);
	CHECK(write_at("ph", "abc") == 0);
	CHECK(write_at("other", "abc") == 0);
	CHECK_INT_EQ(scan(&f), 2);
	/* same size, other bytes (holes standing for "abc"), a new mtime */
	{
		int fd = open(at("ph"), O_WRONLY | O_TRUNC | O_CLOEXEC);
		CHECK(fd >= 0 && ftruncate(fd, 3) == 0);
		if (fd >= 0)
			close(fd);
	}
	CHECK(utimensat(AT_FDCWD, at("ph"), ts, 0) == 0);
	CHECK(write_at("other", "xyz") == 0);
	scan_request_full(f.s);
	CHECK_INT_EQ(scan(&f), 2);
	REQUIRE(get(&f, "ph", &e) == 0);
	CHECK(hash_is(&f, "ph", "abc"));
	CHECK_INT_EQ(e.mtime_ns, 1600000000000000005LL);
	CHECK(hash_is(&f, "other", "xyz"));
	/* only the identity moved (the engine wrote a block): no new version */
	uint64_t seq = e.seq;
	CHECK(chmod(at("ph"), e.mode) == 0);
	scan_request_full(f.s);
	CHECK_INT_EQ(scan(&f), 0);
	REQUIRE(get(&f, "ph", &e) == 0);
	CHECK(e.seq == seq && hash_is(&f, "ph", "abc"));
	/* not a placeholder any more: hashed */
	on = false;
	ts[1].tv_nsec = 6;
	CHECK(utimensat(AT_FDCWD, at("ph"), ts, 0) == 0);
	scan_request_full(f.s);
	CHECK_INT_EQ(scan(&f), 1);
	REQUIRE(get(&f, "ph", &e) == 0);
	CHECK(!hash_is(&f, "ph", "abc") && e.size == 3 && e.has_hash);
	fx_close(&f);
}

/* The write holds' check (scan_set_held_check): the inodes in held[]. */
static struct stat held[4];
static unsigned nheld;

static bool held_fn(void *ud, uint64_t dev, uint64_t ino)
{
	(void)ud;
	for (unsigned i = 0; i < nheld; i++)
		if ((uint64_t)held[i].st_dev == dev && (uint64_t)held[i].st_ino == ino)
			return true;
	return false;
}

static bool hold_path(const char *rel)
{
	return nheld < 4 && lstat(at(rel), &held[nheld]) == 0 && ++nheld;
}

/*
 * A file its writer still has open (the FUSE mount's holds) is not
 * published: neither its changes nor, when new, the file; a rename that
 * changed it publishes the old name as deleted only. scan_retry_held()
 * brings them in once the writer is done.
 */
TEST(held_writer)
{
	struct pollfd p;
	struct fx f;
	int fd;

	REQUIRE(fx_open(&f));
	scan_set_held_check(f.s, held_fn, NULL);
	nheld = 0;
	CHECK(write_at("a", "v1") == 0);
	CHECK(write_at("keep", "k") == 0);
	CHECK_INT_EQ(scan(&f), 2);
	CHECK(!scan_retry_held(f.s)); /* nothing left out */

	CHECK(hold_path("a"));
	CHECK(append_at("a", " and a part") == 0);
	fd = open(at("n"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	CHECK(hold_path("n"));
	CHECK(write(fd, "first piece", 11) == 11);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 0);
	CHECK(hash_is(&f, "a", "v1"));
	CHECK(!live(&f, "n") && !tomb(&f, "n"));

	/* renamed while held, changed: the old name goes, the new one waits */
	CHECK(rename(at("a"), at("b")) == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan(&f), 1);
	CHECK(tomb(&f, "a"));
	CHECK(!live(&f, "b"));
	CHECK(!scan_pending(f.s));

	/* the writers are done */
	CHECK(write(fd, ", the rest", 10) == 10);
	CHECK(close(fd) == 0);
	nheld = 0;
	CHECK(scan_retry_held(f.s));
	CHECK(scan_pending(f.s));
	CHECK_INT_EQ(scan(&f), 2);
	CHECK(hash_is(&f, "b", "v1 and a part"));
	CHECK(hash_is(&f, "n", "first piece, the rest"));
	CHECK(hash_is(&f, "keep", "k"));
	CHECK(!scan_retry_held(f.s));

	/* opened for writing after the scan queued it, written on meanwhile:
	 * the hash result is dropped, not stored */
	CHECK(write_at("keep", "k2") == 0);
	CHECK(events(&f) == 1);
	CHECK_INT_EQ(scan_run(f.s, clk, &f.err), 0);
	CHECK_INT_EQ(pending_files(&f), 1);
	p = (struct pollfd){scan_hash_fd(f.s), POLLIN, 0};
	CHECK(poll(&p, 1, 5000) == 1);
	CHECK(hold_path("keep"));
	CHECK(append_at("keep", " and a part") == 0);
	CHECK_INT_EQ(scan_on_hash_done(f.s, &f.err), 0);
	CHECK_INT_EQ(pending_files(&f), 0);
	CHECK(hash_is(&f, "keep", "k"));
	nheld = 0;
	CHECK(scan_retry_held(f.s));
	CHECK_INT_EQ(scan(&f), 1);
	CHECK(hash_is(&f, "keep", "k2 and a part"));

	/* scan_path_now (the engine about to replace it) records it as it is */
	CHECK(hold_path("keep"));
	CHECK(write_at("keep", "now") == 0);
	CHECK_INT_EQ(scan_path_now(f.s, "keep", 4, &f.err), 1);
	CHECK(hash_is(&f, "keep", "now"));
	nheld = 0;
	fx_close(&f);
}

int main(void)
{
	if (sodium_init() < 0 || !mkdtemp(base)) {
		printf("Bail out! setup: %s\n", strerror(errno));
		return 1;
	}
	RUN(excluded_names);
	RUN(first_full_scan);
	RUN(edits);
	RUN(dirs);
	RUN(edit_kept_mtime_then_chmod_or_rename);
	RUN(rename_file);
	RUN(rename_after_changes);
	RUN(rename_dir_1000);
	RUN(full_rescan);
	RUN(type_change);
	RUN(root_removed);
	RUN(root_removed_in_parts);
	RUN(marker_removed_last);
	RUN(deletion_grace);
	RUN(root_replaced);
	RUN(marker);
	RUN(changed_while_hashing);
	RUN(engine_recorded);
	RUN(named_event_no_walk);
	RUN(path_now);
	RUN(path_now_dir_watched);
	RUN(path_now_dir_child_gone);
	RUN(path_now_walks_moved_tree);
	RUN(special_warned_once);
	RUN(abandoned_downloads);
	RUN(placeholder_metadata);
	RUN(held_writer);
	if (rm_tree(base) != 0)
		printf("# cannot remove %s: %s\n", base, strerror(errno));
	return tap_done();
}
