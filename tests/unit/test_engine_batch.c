/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The peer's entries held before applying (engine.c, apply.c): the byte
 * accounting, the cap through the real message path, and what a batch
 * applied before INDEX_DONE keeps for the next one. The engine runs
 * in-process on a temp share, without a connection.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync/engine_int.h"
#include "tap.h"

#define SLOT sizeof(struct rentry)
#define MIB ((size_t)1 << 20)
#define TEST_NOW_MS ((uint64_t)1000) /* the engine's clock: time stands still here */

static char base[] = "/tmp/tandem-test-batch-XXXXXX";
static char root[256], dbpath[256];
static unsigned ncase;
static const uint8_t peer_dev[VV_DEVICE_LEN] = {0x71, 0x71, 0x71, 0x71, 0x71, 0x71, 0x71, 0x71};
static uint8_t msgbuf[SYNC_INDEX_MSG_MAX];
static unsigned closed;

TEST(str_bytes)
{
	CHECK_INT_EQ(engine_rentry_str_bytes(1, 0), 2 + ENGINE_ALLOC_OVERHEAD);
	CHECK_INT_EQ(engine_rentry_str_bytes(4095, 0), 4096 + ENGINE_ALLOC_OVERHEAD);
	CHECK_INT_EQ(engine_rentry_str_bytes(4095, 4095), 2 * (4096 + ENGINE_ALLOC_OVERHEAD));
}

TEST(room)
{
	const size_t max = ENGINE_BATCH_BYTES;

	/* the first entry: 256 slots */
	CHECK_INT_EQ(engine_batch_room(0, 0, 0, 100, max), 256);
	/* a free slot and room: the array stays */
	CHECK_INT_EQ(engine_batch_room(10, 256, 1000, 100, max), 256);
	/* a full array doubles */
	CHECK_INT_EQ(engine_batch_room(256, 256, 0, 100, max), 512);
	/* ... but only as far as the bytes allow */
	CHECK_INT_EQ(engine_batch_room(256, 256, 0, 0, 300 * SLOT), 300);
	CHECK_INT_EQ(engine_batch_room(0, 0, 0, 0, 10 * SLOT), 10);
	/* full: no slot can be added, or the strings would not fit */
	CHECK_INT_EQ(engine_batch_room(256, 256, 0, 0, 256 * SLOT), 0);
	CHECK_INT_EQ(engine_batch_room(10, 256, max - 256 * SLOT - 1, 1, max), 256);
	/* the strings need the array's unused slots: it shrinks, above n */
	CHECK_INT_EQ(engine_batch_room(10, 256, max - 256 * SLOT, 1, max), 255);
	CHECK_INT_EQ(engine_batch_room(10, 256, max - 11 * SLOT, 0, max), 11);
	CHECK_INT_EQ(engine_batch_room(10, 256, max - 11 * SLOT, 1, max), 0);
	CHECK_INT_EQ(engine_batch_room(0, 0, 0, max, max), 0);
	/* nonsense never fits, and nothing overflows */
	CHECK_INT_EQ(engine_batch_room(0, 0, max + 1, 1, max), 0);
	CHECK_INT_EQ(engine_batch_room(0, 0, 1, SIZE_MAX, max), 0);
	CHECK_INT_EQ(engine_batch_room(257, 256, 0, 1, max), 0);
}

/* Adds entries of need bytes as batch_add does: the array and the strings
 * never pass max, and the batch is only full when the next would. */
static size_t fill(size_t need, size_t max)
{
	size_t n = 0, cap = 0, str = 0, c;

	while ((c = engine_batch_room(n, cap, str, need, max)) != 0) {
		if (c < n + 1)
			return 0;
		cap = c;
		n++;
		str += need;
		if (cap * SLOT + str > max)
			return 0;
	}
	/* full: one more entry's slot or strings would not fit */
	if ((n + 1) * SLOT + str + need <= max)
		return 0;
	return n;
}

TEST(fill)
{
	size_t big = engine_rentry_str_bytes(4095, 4095), small = engine_rentry_str_bytes(20, 0);
	size_t n;

	n = fill(big, ENGINE_BATCH_BYTES);
	printf("#   %zu entries of 4095-byte path and target in %zu MiB\n", n,
	       ENGINE_BATCH_BYTES / MIB);
	CHECK(n > 0 && n == ENGINE_BATCH_BYTES / (SLOT + big));
	n = fill(small, ENGINE_BATCH_BYTES);
	printf("#   %zu entries of 20-byte paths in %zu MiB\n", n, ENGINE_BATCH_BYTES / MIB);
	CHECK(n > 0 && n == ENGINE_BATCH_BYTES / (SLOT + small));
	CHECK(n >= 10000); /* a directory of 5000 files renamed fits in one batch */
}

/* ---- the engine, in-process ---- */

static size_t room;	   /* what io_room says: 0 but where a test wants messages */
static unsigned content_asks; /* BLOCK_REQUESTs and MANIFEST_REQUESTs sent */

static int io_send(void *ud, const uint8_t *msg, size_t len)
{
	struct err err;
	struct sync_msg m;

	(void)ud;
	if (msg_decode(msg, len, &m, &err) == 0 &&
	    (m.type == SYNC_MSG_BLOCK_REQUEST || m.type == SYNC_MSG_MANIFEST_REQUEST))
		content_asks++;
	return 0;
}

static size_t io_room(void *ud)
{
	(void)ud;
	return room;
}

static void io_close(void *ud, const char *why)
{
	(void)ud;
	printf("#   the engine closed the connection: %s\n", why);
	closed++;
}

static int rm_fn(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char *at(const char *rel)
{
	static char buf[2][600];
	static unsigned turn;
	char *b = buf[turn++ % 2];

	snprintf(b, sizeof(buf[0]), "%s/%s", root, rel);
	return b;
}

/* A fresh share holding the directories dirs (in order), and an engine
 * that has scanned it and received the peer's START. */
static struct engine *open_engine(const char *const *dirs, size_t n)
{
	static const struct engine_io io = {.send = io_send, .room = io_room, .close = io_close};
	struct engine_opts opts = {.root = root, .index_file = dbpath};
	struct sync_msg m = {.type = SYNC_MSG_START};
	struct err err = {.msg = ""};
	struct engine *e = NULL;
	uint8_t b[64];
	int len;

	snprintf(root, sizeof(root), "%s/share%u", base, ncase);
	snprintf(dbpath, sizeof(dbpath), "%s/index%u.db", base, ncase);
	ncase++;
	if (mkdir(root, 0755) < 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (mkdir(at(dirs[i]), 0755) < 0)
			return NULL;
	if (engine_new(&opts, &io, &e, &err, TEST_NOW_MS) < 0) {
		printf("#   engine_new: %s\n", err.msg);
		return NULL;
	}
	engine_tick(e, TEST_NOW_MS); /* the first scan (directories need no hashing) */
	memcpy(m.start.device, peer_dev, VV_DEVICE_LEN);
	memcpy(m.start.expect, e->self_dev, VV_DEVICE_LEN);
	len = msg_encode(&m, b, sizeof(b));
	if (len < 0 || engine_on_msg(e, b, (size_t)len, TEST_NOW_MS) < 0) {
		engine_free(e);
		return NULL;
	}
	return e;
}

/* An entry for path whose vector is ours for path (if any) plus the
 * peer's counter c: it dominates what we have. */
static void peer_entry(struct engine *e, const char *path, uint8_t kind, bool deleted,
		       const char *target, uint64_t c, struct sync_entry *s)
{
	struct index_entry *x = calloc(1, sizeof(*x));
	struct vv v, pv;
	unsigned k;

	vv_init(&v);
	if (x && index_get(e->idx, path, strlen(path), x) == 0)
		v = x->vv;
	free(x);
	memset(s, 0, sizeof(*s));
	s->path = path;
	s->path_len = strlen(path);
	s->kind = kind;
	s->flags = deleted ? SYNC_ENTRY_DELETED : 0;
	s->mode = kind == SYNC_KIND_DIR ? 0755 : 0777;
	if (target && !deleted) {
		s->target = target;
		s->target_len = strlen(target);
	}
	vv_init(&pv);
	pv.n = 1;
	memcpy(pv.e[0].device, peer_dev, VV_DEVICE_LEN);
	pv.e[0].counter = c;
	if (vv_merge(&v, &pv) < 0)
		printf("#   vv_merge failed\n");
	for (k = 0; k < v.n; k++) {
		memcpy(s->vv[k].device, v.e[k].device, VV_DEVICE_LEN);
		s->vv[k].counter = v.e[k].counter;
	}
	s->nvv = (uint8_t)k;
	s->seq = c;
}

static int send_entries(struct engine *e, const struct sync_entry *s, size_t n)
{
	struct msg_index_writer w;
	int len;

	if (msg_index_writer_init(&w, msgbuf, sizeof(msgbuf)) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int r = msg_index_add(&w, &s[i]);
		if (r < 0) {
			printf("#   msg_index_add of entry %zu: %s\n", i, strerror(-r));
			return -1;
		}
	}
	len = msg_index_finish(&w);
	return len < 0 ? -1 : engine_on_msg(e, msgbuf, (size_t)len, TEST_NOW_MS);
}

static int send_done(struct engine *e, uint64_t seq)
{
	struct sync_msg m = {.type = SYNC_MSG_INDEX_DONE};
	uint8_t b[16];
	int len;

	m.index_done.seq = seq;
	len = msg_encode(&m, b, sizeof(b));
	return len < 0 ? -1 : engine_on_msg(e, b, (size_t)len, TEST_NOW_MS);
}

static bool is_dir(const char *rel)
{
	struct stat st;

	return lstat(at(rel), &st) == 0 && S_ISDIR(st.st_mode);
}

static bool absent(const char *rel)
{
	struct stat st;

	return lstat(at(rel), &st) < 0 && errno == ENOENT;
}

/* Held bytes within the cap: the array and the strings. */
static bool within_cap(const struct engine *e)
{
	return e->batch_cap * SLOT + e->batch_str <= ENGINE_BATCH_BYTES;
}

/*
 * INDEX_UPDATEs of 4095-byte paths, and no INDEX_DONE: what is held never
 * passes ENGINE_BATCH_BYTES; the batch is applied when full (the entries,
 * tombstones of paths we do not have, are recorded), and INDEX_DONE
 * applies the rest.
 */
TEST(cap_through_messages)
{
	static char paths[8][SYNC_PATH_MAX + 1];
	struct sync_entry s[60];
	struct engine *e = open_engine(NULL, 0);
	struct index_entry *x = calloc(1, sizeof(*x));
	size_t peak = 0, applied_early = 0;
	uint64_t seq = 0;

	REQUIRE(e && x);
	for (size_t p = 0; p < 8; p++) {
		size_t n = 0;
		for (int i = 0; i < 16; i++) { /* 16 names of 255 bytes */
			if (i)
				paths[p][n++] = '/';
			memset(paths[p] + n, 'a' + (int)p, 255);
			n += 255;
		}
		paths[p][n] = '\0';
	}
	/* two and a half caps' worth */
	size_t per = SLOT + engine_rentry_str_bytes(SYNC_PATH_MAX, 0);
	size_t nmsg = ENGINE_BATCH_BYTES * 5 / 2 / (60 * per) + 1;
	for (size_t m = 0; m < nmsg; m++) {
		size_t before = e->nbatch;
		for (size_t i = 0; i < 60; i++)
			peer_entry(e, paths[(m * 60 + i) % 8], SYNC_KIND_FILE, true, NULL, ++seq,
				   &s[i]);
		REQUIRE(send_entries(e, s, 60) == 0);
		CHECK(within_cap(e));
		if (e->nbatch < before + 60)
			applied_early++;
		if (e->nbatch > peak)
			peak = e->nbatch;
	}
	printf("#   %zu entries: at most %zu held; applied %zu times before INDEX_DONE\n",
	       nmsg * 60, peak, applied_early);
	CHECK(applied_early >= 2);
	CHECK(peak * per <= ENGINE_BATCH_BYTES);
	/* what was applied early is recorded */
	CHECK(index_get(e->idx, paths[0], SYNC_PATH_MAX, x) == 0 && x->deleted);
	REQUIRE(send_done(e, seq) == 0);
	CHECK_INT_EQ(e->nbatch, 0);
	CHECK(e->batch == NULL && e->batch_cap == 0 && e->batch_str == 0);
	CHECK_INT_EQ(closed, 0);
	free(x);
	engine_free(e);
}

/*
 * A batch applied before INDEX_DONE (the cap) holds the peer's deletion of
 * directory d, whose contents' deletion comes after: d waits in the batch
 * (it is not kept as ours, which would bring it back on the peer), and
 * goes with INDEX_DONE.
 */
TEST(carry_deleted_dir)
{
	static const char *const dirs[] = {"d", "d/e", "d/e/f"};
	struct engine *e = open_engine(dirs, 3);
	struct index_entry *x = calloc(1, sizeof(*x));
	struct sync_entry s[2];

	REQUIRE(e && x);
	REQUIRE(index_get(e->idx, "d/e/f", 5, x) == 0);
	peer_entry(e, "d", SYNC_KIND_DIR, true, NULL, 1, &s[0]);
	peer_entry(e, "d/e", SYNC_KIND_DIR, true, NULL, 2, &s[1]);
	REQUIRE(send_entries(e, s, 2) == 0);
	engine_apply_batch(e, false); /* as when the cap is reached */
	CHECK(is_dir("d") && is_dir("d/e/f"));
	CHECK(within_cap(e));
	REQUIRE(e->nbatch == 2);
	/* ours is not made to dominate theirs */
	CHECK(index_get(e->idx, "d", 1, x) == 0 && !x->deleted);
	CHECK(vv_compare(&x->vv, &e->batch[0].vv) == VV_DOMINATED);

	peer_entry(e, "d/e/f", SYNC_KIND_DIR, true, NULL, 3, &s[0]);
	REQUIRE(send_entries(e, s, 1) == 0);
	REQUIRE(send_done(e, 3) == 0);
	CHECK(absent("d"));
	CHECK(index_get(e->idx, "d", 1, x) == 0 && x->deleted);
	CHECK_INT_EQ(e->nbatch, 0);
	CHECK_INT_EQ(closed, 0);
	free(x);
	engine_free(e);
}

/* At INDEX_DONE a directory that still holds something of ours stays ours,
 * as before. */
TEST(final_keeps_ours)
{
	static const char *const dirs[] = {"d", "d/mine"};
	struct engine *e = open_engine(dirs, 2);
	struct index_entry *x = calloc(1, sizeof(*x));
	struct sync_entry s[1];

	REQUIRE(e && x);
	peer_entry(e, "d", SYNC_KIND_DIR, true, NULL, 1, &s[0]);
	REQUIRE(send_entries(e, s, 1) == 0);
	engine_apply_batch(e, false);
	CHECK_INT_EQ(e->nbatch, 1);
	REQUIRE(send_done(e, 1) == 0);
	CHECK(is_dir("d") && is_dir("d/mine"));
	CHECK(index_get(e->idx, "d", 1, x) == 0 && !x->deleted);
	CHECK_INT_EQ(e->nbatch, 0);
	free(x);
	engine_free(e);
}

/*
 * The peer replaced directory k by a symlink; the deletion of k's contents
 * comes after the cap: the symlink waits for it, and is made at
 * INDEX_DONE (it was dropped before, and k stayed a directory).
 */
TEST(carry_kind_change)
{
	static const char *const dirs[] = {"k", "k/s"};
	struct engine *e = open_engine(dirs, 2);
	struct sync_entry s[1];
	char buf[16];
	ssize_t n;

	REQUIRE(e);
	peer_entry(e, "k", SYNC_KIND_SYMLINK, false, "elsewhere", 1, &s[0]);
	REQUIRE(send_entries(e, s, 1) == 0);
	engine_apply_batch(e, false);
	CHECK(is_dir("k") && is_dir("k/s"));
	CHECK_INT_EQ(e->nbatch, 1);

	peer_entry(e, "k/s", SYNC_KIND_DIR, true, NULL, 2, &s[0]);
	REQUIRE(send_entries(e, s, 1) == 0);
	REQUIRE(send_done(e, 2) == 0);
	n = readlink(at("k"), buf, sizeof(buf) - 1);
	CHECK(n == 9 && memcmp(buf, "elsewhere", 9) == 0);
	CHECK_INT_EQ(e->nbatch, 0);
	CHECK_INT_EQ(closed, 0);
	engine_free(e);
}

/* Creates the file rel (in the share) holding a few bytes. */
static bool make_file(const char *rel)
{
	int fd = open(at(rel), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && write(fd, "part", 4) == 4;

	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * An interrupted download leaves its temp file beside the target (for a
 * resume). The peer deletes the directory it is in: the temp file, which
 * can never be put in place now, goes with it. It used to keep the
 * directory from being removed, and the directory was then kept as ours
 * and sent back (the sim's seed 13310). A file of the user's that only
 * looks like one (not named as the engine names them) still keeps its
 * directory.
 */
TEST(tmp_does_not_keep_dir)
{
	static const char *const dirs[] = {"d", "d/e", "k"};
	struct engine *e = open_engine(dirs, 3);
	struct index_entry *x = calloc(1, sizeof(*x));
	uint8_t h[SYNC_HASH_LEN];
	char t1[FETCH_TMP_NAME_MAX], t2[FETCH_TMP_NAME_MAX], rel[128];
	struct sync_entry s[3];

	REQUIRE(e && x);
	memset(h, 0xab, sizeof(h));
	fetch_tmp_name("d/g", 3, h, t1);
	fetch_tmp_name("d/e/f", 5, h, t2);
	snprintf(rel, sizeof(rel), "d/%s", t1);
	REQUIRE(make_file(rel));
	snprintf(rel, sizeof(rel), "d/e/%s", t2);
	REQUIRE(make_file(rel));
	REQUIRE(make_file("k/" SCAN_TMP_PREFIX "notes"));
	peer_entry(e, "d", SYNC_KIND_DIR, true, NULL, 1, &s[0]);
	peer_entry(e, "d/e", SYNC_KIND_DIR, true, NULL, 2, &s[1]);
	peer_entry(e, "k", SYNC_KIND_DIR, true, NULL, 3, &s[2]);
	REQUIRE(send_entries(e, s, 3) == 0);
	REQUIRE(send_done(e, 3) == 0);
	CHECK(absent("d"));
	CHECK(index_get(e->idx, "d", 1, x) == 0 && x->deleted);
	CHECK(index_get(e->idx, "d/e", 3, x) == 0 && x->deleted);
	/* the user's file stays, and so does its directory (ours now) */
	CHECK(is_dir("k") && !absent("k/" SCAN_TMP_PREFIX "notes"));
	CHECK(index_get(e->idx, "k", 1, x) == 0 && !x->deleted);
	CHECK_INT_EQ(closed, 0);
	free(x);
	engine_free(e);
}

/*
 * The peer deletes a file whose download was interrupted: the temp file
 * of that content goes (it stayed forever, or a week, before). The temp
 * file of another path, still wanted, stays for its resume.
 */
TEST(tombstone_drops_tmp)
{
	static const char *const dirs[] = {"d"};
	struct engine *e = open_engine(dirs, 1);
	uint8_t h[SYNC_HASH_LEN];
	char t[FETCH_TMP_NAME_MAX], gone[128], kept[128];
	struct sync_entry s[1];

	REQUIRE(e);
	memset(h, 0x5c, sizeof(h));
	fetch_tmp_name("d/g", 3, h, t);
	snprintf(gone, sizeof(gone), "d/%s", t);
	REQUIRE(make_file(gone));
	fetch_tmp_name("d/other", 7, h, t);
	snprintf(kept, sizeof(kept), "d/%s", t);
	REQUIRE(make_file(kept));
	peer_entry(e, "d/g", SYNC_KIND_FILE, true, NULL, 1, &s[0]);
	memcpy(s[0].hash, h, SYNC_HASH_LEN);
	s[0].size = 4;
	REQUIRE(send_entries(e, s, 1) == 0);
	REQUIRE(send_done(e, 1) == 0);
	CHECK(absent(gone));
	CHECK(!absent(kept));
	CHECK(is_dir("d"));
	CHECK_INT_EQ(closed, 0);
	engine_free(e);
}

/* The number of names in the share's top directory, but its marker. */
static int top_names(void)
{
	struct dirent *d;
	DIR *dir = opendir(root);
	int n = 0;

	if (!dir)
		return -1;
	while ((d = readdir(dir)) != NULL)
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0 &&
		    strcmp(d->d_name, ".tandem") != 0)
			n++;
	closedir(dir);
	return n;
}

/*
 * Our deletion of l loses to the peer's concurrent edit (docs/SIM.md bug
 * 7, seed 206): the edit comes back with the peer's vector as it is, not
 * merged with our tombstone's, so the peer's next version of l, made
 * before it saw our deletion, still dominates it and simply replaces it.
 * With the merged vector the two were concurrent: a conflict between the
 * peer's two versions (here the old one kept the name; in seed 206 the old
 * one became a conflict copy).
 */
TEST(deletion_loses_keeps_their_vector)
{
	struct engine *e = open_engine(NULL, 0);
	struct index_entry *x = calloc(1, sizeof(*x));
	struct sync_entry s[3];
	struct vv want;
	char buf[16];
	ssize_t n;

	REQUIRE(e && x);
	peer_entry(e, "l", SYNC_KIND_SYMLINK, false, "x", 1, &s[0]);
	REQUIRE(send_entries(e, s, 1) == 0);
	REQUIRE(send_done(e, 1) == 0);
	n = readlink(at("l"), buf, sizeof(buf) - 1);
	REQUIRE(n == 1 && buf[0] == 'x');
	/* the peer edits l twice; we delete it meanwhile */
	peer_entry(e, "l", SYNC_KIND_SYMLINK, false, "y", 2, &s[1]);
	peer_entry(e, "l", SYNC_KIND_SYMLINK, false, "z", 3, &s[2]);
	REQUIRE(unlink(at("l")) == 0);
	REQUIRE(send_entries(e, &s[1], 1) == 0);
	REQUIRE(send_done(e, 2) == 0);
	n = readlink(at("l"), buf, sizeof(buf) - 1);
	CHECK(n == 1 && buf[0] == 'y'); /* the edit wins */
	REQUIRE(index_get(e->idx, "l", 1, x) == 0 && !x->deleted);
	vv_init(&want);
	want.n = 1;
	memcpy(want.e[0].device, peer_dev, VV_DEVICE_LEN);
	want.e[0].counter = 2;
	CHECK(vv_compare(&x->vv, &want) == VV_EQUAL);

	REQUIRE(send_entries(e, &s[2], 1) == 0);
	REQUIRE(send_done(e, 3) == 0);
	n = readlink(at("l"), buf, sizeof(buf) - 1);
	CHECK(n == 1 && buf[0] == 'z');
	CHECK_INT_EQ(top_names(), 1); /* no conflict copy */
	CHECK_INT_EQ(closed, 0);
	free(x);
	engine_free(e);
}

/* Lets the share's inotify events in and runs the scan they bring, as the
 * daemon's loop would. Returns the engine's clock after it. */
static uint64_t scan_events(struct engine *e, uint64_t now)
{
	struct pollfd p = {engine_inotify_fd(e), POLLIN, 0};

	if (poll(&p, 1, 2000) == 1)
		engine_on_inotify(e, now);
	now += ENGINE_SCAN_DELAY_MS;
	engine_tick(e, now);
	return now;
}

static bool live_at(struct engine *e, const char *path)
{
	struct index_entry *x = calloc(1, sizeof(*x));
	bool ok = x && index_get(e->idx, path, strlen(path), x) == 0 && !x->deleted;

	free(x);
	return ok;
}

/*
 * rm -rf of the share: the engine scans while the contents are going, the
 * root and its marker still there, then the root goes. The engine stops
 * with an error naming the folder, and no deletion is in its index to be
 * sent: the peer keeps every file (selftest sync-root-gone, under load).
 */
TEST(root_removed_in_parts_deletes_nothing)
{
	static const char *const dirs[] = {"a", "b", "d", "d/c"};
	struct engine *e = open_engine(dirs, 4);
	uint64_t now = TEST_NOW_MS, seq;

	REQUIRE(e);
	seq = index_seq(e->idx);
	REQUIRE(rmdir(at("d/c")) == 0 && rmdir(at("a")) == 0);
	now = scan_events(e, now);
	CHECK(!e->stopped[0]);
	REQUIRE(nftw(root, rm_fn, 16, FTW_DEPTH | FTW_PHYS) == 0);
	now = scan_events(e, now);
	for (int i = 0; i < 100 && engine_deadline(e) != UINT64_MAX; i++) {
		now = engine_deadline(e) > now ? engine_deadline(e) : now;
		engine_tick(e, now);
	}
	CHECK(e->stopped[0] && strstr(e->stopped, root) != NULL);
	printf("#   %s\n", e->stopped);
	CHECK(live_at(e, "a") && live_at(e, "d/c") && live_at(e, "b"));
	CHECK_INT_EQ(index_seq(e->idx), seq);
	engine_free(e);
}

/* A deletion with the root in place is recorded, once its grace is over. */
TEST(deletion_recorded_after_grace)
{
	static const char *const dirs[] = {"a", "b"};
	struct engine *e = open_engine(dirs, 2);
	uint64_t now = TEST_NOW_MS, t0;

	REQUIRE(e);
	REQUIRE(rmdir(at("a")) == 0);
	t0 = now = scan_events(e, now);
	CHECK(live_at(e, "a")); /* held */
	for (int i = 0; i < 100 && live_at(e, "a") && engine_deadline(e) != UINT64_MAX; i++) {
		now = engine_deadline(e) > now ? engine_deadline(e) : now;
		engine_tick(e, now);
	}
	CHECK(!live_at(e, "a") && live_at(e, "b"));
	CHECK(now >= t0 + SCAN_GONE_QUIET_MS && now <= t0 + SCAN_GONE_MAX_MS);
	CHECK(!e->stopped[0]);
	engine_free(e);
}

/*
 * Our version loses a conflict to the peer's concurrent one (docs/SIM.md
 * bug 9, seed 4 --lazy): ours moves to a conflict copy and theirs is
 * taken with their vector as it is, a version the peer wrote. With our old
 * vector merged in, the peer's later deletion of it (a rename there) did
 * not dominate it: "an edit wins over a deletion" kept it, the old name
 * came back (in lazy mode as a placeholder nobody could serve).
 */
TEST(local_loses_keeps_their_vector)
{
	struct engine *e = open_engine(NULL, 0);
	struct index_entry *x = calloc(1, sizeof(*x));
	const struct timespec old[2] = {{1, 0}, {1, 0}};
	struct sync_entry s[2];
	struct vv want;
	char buf[16];
	ssize_t n;

	REQUIRE(e && x);
	/* vectors of the peer's alone: made before we have l */
	peer_entry(e, "l", SYNC_KIND_SYMLINK, false, "theirs", 1, &s[0]);
	s[0].mtime_ns = 2000000000000000000LL; /* newer than ours: it wins */
	peer_entry(e, "l", SYNC_KIND_SYMLINK, true, NULL, 2, &s[1]);
	REQUIRE(symlink("ours", at("l")) == 0);
	REQUIRE(utimensat(AT_FDCWD, at("l"), old, AT_SYMLINK_NOFOLLOW) == 0);
	REQUIRE(send_entries(e, &s[0], 1) == 0);
	REQUIRE(send_done(e, 1) == 0);
	n = readlink(at("l"), buf, sizeof(buf) - 1);
	CHECK(n == 6 && memcmp(buf, "theirs", 6) == 0);
	CHECK_INT_EQ(top_names(), 2); /* ours is the conflict copy */
	REQUIRE(index_get(e->idx, "l", 1, x) == 0 && !x->deleted);
	vv_init(&want);
	want.n = 1;
	memcpy(want.e[0].device, peer_dev, VV_DEVICE_LEN);
	want.e[0].counter = 1;
	CHECK(vv_compare(&x->vv, &want) == VV_EQUAL);

	/* the peer renames it: its tombstone dominates what we took */
	REQUIRE(send_entries(e, &s[1], 1) == 0);
	REQUIRE(send_done(e, 2) == 0);
	CHECK(absent("l"));
	CHECK_INT_EQ(top_names(), 1);
	CHECK_INT_EQ(closed, 0);
	free(x);
	engine_free(e);
}

/*
 * A download replaced by the peer's newer version of the file (sim seed
 * 1455 --lazy --ops 24): dropping the old one told the engine its
 * downloads had moved on while the batch was still being applied, after
 * INDEX_DONE had already raised the mark to the new entry's sequence and
 * before the new download was queued: the peer's change was recorded as
 * applied. Lost with the connection, the download was never asked for
 * again (the peer sends only changes after the mark): the file stayed
 * deleted here.
 */
TEST(superseded_fetch_keeps_applied)
{
	struct engine *e = open_engine(NULL, 0);
	struct sync_entry s[2];

	REQUIRE(e);
	peer_entry(e, "f", SYNC_KIND_FILE, false, NULL, 1, &s[0]);
	s[0].size = 10;
	memset(s[0].hash, 1, sizeof(s[0].hash));
	REQUIRE(send_entries(e, &s[0], 1) == 0);
	REQUIRE(send_done(e, 1) == 0);
	CHECK_INT_EQ(e->peer_applied, 0); /* being fetched */
	peer_entry(e, "f", SYNC_KIND_FILE, false, NULL, 2, &s[1]);
	s[1].size = 10;
	memset(s[1].hash, 2, sizeof(s[1].hash));
	REQUIRE(send_entries(e, &s[1], 1) == 0);
	REQUIRE(send_done(e, 2) == 0);
	CHECK_INT_EQ(e->peer_applied, 1); /* the new version is being fetched */
	CHECK_INT_EQ(closed, 0);
	engine_free(e);
}

/*
 * A rename here onto a path where the peer wrote a file we have not
 * applied yet (its download is still in flight) is concurrent with that
 * write (docs/SIM.md bug 10, seed 123). The renamed entry took the
 * source's vector, which held the peer's counter of a later change (the
 * source itself): it dominated the peer's file, which the peer then
 * overwrote with ours without a conflict copy, and our download of it was
 * dropped as old. The destination's vector is its own history now: the
 * peer's file, announced again, is a conflict, and both versions stay.
 */
TEST(rename_does_not_carry_source_vector)
{
	struct engine *e = open_engine(NULL, 0);
	struct index_entry *x = calloc(1, sizeof(*x));
	struct sync_entry s[2];
	struct vv theirs;
	char buf[16];
	ssize_t n;

	REQUIRE(e && x);
	/* the peer's f3 (counter 8) needs a download; its s (11) is applied */
	peer_entry(e, "f3", SYNC_KIND_FILE, false, NULL, 8, &s[0]);
	memset(s[0].hash, 0x33, SYNC_HASH_LEN);
	s[0].size = 106;
	s[0].mode = 0644;
	s[0].mtime_ns = (int64_t)1700000000 * 1000000000;
	peer_entry(e, "s", SYNC_KIND_SYMLINK, false, "x", 11, &s[1]);
	REQUIRE(send_entries(e, s, 2) == 0);
	REQUIRE(send_done(e, 11) == 0);
	REQUIRE(absent("f3"));
	n = readlink(at("s"), buf, sizeof(buf) - 1);
	REQUIRE(n == 1 && buf[0] == 'x');

	/* our user renames s to f3 */
	REQUIRE(rename(at("s"), at("f3")) == 0);
	engine_on_inotify(e, TEST_NOW_MS);
	engine_tick(e, TEST_NOW_MS + ENGINE_SCAN_DELAY_MS);
	REQUIRE(index_get(e->idx, "s", 1, x) == 0);
	CHECK(x->deleted);
	REQUIRE(index_get(e->idx, "f3", 2, x) == 0);
	CHECK(!x->deleted && x->type == INDEX_SYMLINK);
	vv_init(&theirs);
	theirs.n = 1;
	memcpy(theirs.e[0].device, peer_dev, VV_DEVICE_LEN);
	theirs.e[0].counter = 8;
	CHECK_INT_EQ(vv_compare(&x->vv, &theirs), VV_CONCURRENT);

	/* the peer's f3 again (newer): ours becomes the conflict copy */
	REQUIRE(send_entries(e, s, 1) == 0);
	REQUIRE(send_done(e, 11) == 0);
	CHECK(absent("f3"));
	CHECK_INT_EQ(top_names(), 1);
	CHECK_INT_EQ(closed, 0);
	free(x);
	engine_free(e);
}

/*
 * The daemon puts its context in front of the engine's message ("cannot
 * sync DIR: " + what the scanner said). With a long DIR that used to be
 * cut at 511 bytes, silently, taking the cause with it. Now the whole
 * message fits, or its middle is replaced by "..." and the cause stays.
 */
TEST(nested_message_keeps_its_cause)
{
	static const struct engine_io io = {.send = io_send, .room = io_room, .close = io_close};
	static const size_t lens[] = {400, 1000};
	static char dir[1200], db[600];
	const char *cause = "No such file or directory";

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct engine_opts opts = {.root = dir, .index_file = db};
		struct err err = {.msg = ""};
		struct engine *e = NULL;
		size_t n = (size_t)snprintf(dir, sizeof(dir), "%s/", base), engine_len;

		memset(dir + n, 'd', lens[i] - n);
		for (size_t k = n + 100; k < lens[i] - 1; k += 100)
			dir[k] = '/'; /* names within NAME_MAX */
		dir[lens[i]] = '\0';
		snprintf(db, sizeof(db), "%s/nested%zu.db", base, i);
		int r = engine_new(&opts, &io, &e, &err, TEST_NOW_MS);
		printf("#   engine_new: %d %s\n", r, err.msg);
		REQUIRE(r == -ENOENT);
		engine_len = strlen(err.msg);
		CHECK(engine_len > strlen(cause) &&
		      strcmp(err.msg + engine_len - strlen(cause), cause) == 0);
		err_prefix(&err, "cannot sync %s: ", dir); /* as syncd_start does */
		printf("#   %zu bytes: %.60s...%s\n", strlen(err.msg), err.msg,
		       err.msg + strlen(err.msg) - 40);
		CHECK(strncmp(err.msg, "cannot sync /", 13) == 0);
		CHECK(strlen(err.msg) >= strlen(cause) &&
		      strcmp(err.msg + strlen(err.msg) - strlen(cause), cause) == 0);
		if (strlen("cannot sync : ") + lens[i] + engine_len < ERR_LEN)
			CHECK_INT_EQ(strlen(err.msg),
				     strlen("cannot sync : ") + lens[i] + engine_len);
		else
			CHECK(strstr(err.msg, "...") != NULL && strlen(err.msg) == ERR_LEN - 1);
	}
}

/* The one name in the share's top directory that starts with prefix and
 * is not exactly it (a conflict copy), into out; whether there is one. */
static bool copy_of(const char *prefix, char *out, size_t outlen)
{
	struct dirent *d;
	DIR *dir = opendir(root);
	size_t n = strlen(prefix);
	int found = 0;

	if (!dir)
		return false;
	while ((d = readdir(dir)) != NULL)
		if (strncmp(d->d_name, prefix, n) == 0 && d->d_name[n] == '.' &&
		    strstr(d->d_name, ".sync-conflict-")) {
			snprintf(out, outlen, "%s", d->d_name);
			found++;
		}
	closedir(dir);
	return found == 1;
}

/*
 * The peer made a directory (and something in it) where we have a file
 * and a symlink it never saw (docs/SIM.md bug 6, seed 381): the directory
 * wins the name, ours go to their conflict copies (sent to the peer as new
 * files), and what the peer made in it is taken. Before, the peer's
 * entries were refused ("a file is on the way") and the two sides kept
 * their own kinds for good.
 */
TEST(dir_of_peer_beneath_our_file)
{
	struct engine *e = open_engine(NULL, 0);
	struct index_entry *x = calloc(1, sizeof(*x));
	char cp[256], buf[16];
	struct sync_entry s[2];
	ssize_t n;

	REQUIRE(e && x);
	REQUIRE(symlink("t", at("x")) == 0);
	REQUIRE(make_file("y"));
	peer_entry(e, "x/d", SYNC_KIND_DIR, false, NULL, 1, &s[0]);
	peer_entry(e, "y/l", SYNC_KIND_SYMLINK, false, "u", 2, &s[1]);
	REQUIRE(send_entries(e, s, 2) == 0);
	REQUIRE(send_done(e, 2) == 0);
	CHECK(is_dir("x") && is_dir("x/d"));
	CHECK(is_dir("y"));
	n = readlink(at("y/l"), buf, sizeof(buf) - 1);
	CHECK(n == 1 && buf[0] == 'u');
	CHECK(copy_of("x", cp, sizeof(cp)));
	n = readlink(at(cp), buf, sizeof(buf) - 1);
	CHECK(n == 1 && buf[0] == 't');
	CHECK(index_get(e->idx, cp, strlen(cp), x) == 0 && !x->deleted && x->type == INDEX_SYMLINK);
	CHECK(copy_of("y", cp, sizeof(cp)));
	CHECK(index_get(e->idx, cp, strlen(cp), x) == 0 && !x->deleted && x->type == INDEX_FILE);
	CHECK_INT_EQ(top_names(), 4);
	CHECK_INT_EQ(e->apply->refused + e->disk.refused, 0);
	CHECK_INT_EQ(closed, 0);
	free(x);
	engine_free(e);
}

/*
 * The peer made a symlink at z, concurrently with our directory there,
 * its mtime the older: the directory still wins (our symlink at w, the
 * newer, loses to the peer's directory the same way), whatever the mtimes
 * say. The side with the file moves it to its copy; the side with the
 * directory keeps it and leaves its vector alone, so the peer still sees
 * the directory as concurrent and moves its file.
 */
TEST(dir_wins_concurrent_clash)
{
	static const char *const dirs[] = {"z"};
	struct engine *e = open_engine(dirs, 1);
	struct index_entry *x = calloc(1, sizeof(*x)), *before = calloc(1, sizeof(*x));
	struct sync_entry s[2];
	struct err err;
	char cp[256];

	REQUIRE(e && x && before);
	REQUIRE(symlink("t", at("w")) == 0);
	REQUIRE(scan_path_now(e->scan, "w", 1, &err) >= 0);
	REQUIRE(index_get(e->idx, "z", 1, before) == 0 && before->type == INDEX_DIR);
	/* entries of paths we do not know, renamed: only the peer's counter */
	peer_entry(e, "zz", SYNC_KIND_SYMLINK, false, "v", 1, &s[0]);
	s[0].path = "z";
	s[0].path_len = 1;
	peer_entry(e, "ww", SYNC_KIND_DIR, false, NULL, 2, &s[1]);
	s[1].path = "w";
	s[1].path_len = 1;
	s[1].mtime_ns = 1; /* 1970: ours is newer */
	REQUIRE(send_entries(e, s, 2) == 0);
	REQUIRE(send_done(e, 2) == 0);
	CHECK(is_dir("z"));
	CHECK(index_get(e->idx, "z", 1, x) == 0 && !x->deleted && x->type == INDEX_DIR &&
	      vv_compare(&x->vv, &before->vv) == VV_EQUAL);
	CHECK(!copy_of("z", cp, sizeof(cp)));
	CHECK(is_dir("w"));
	CHECK(copy_of("w", cp, sizeof(cp)));
	CHECK_INT_EQ(top_names(), 3);
	CHECK_INT_EQ(closed, 0);
	free(x);
	free(before);
	engine_free(e);
}

/*
 * The other side of dir_of_peer_beneath_our_file: the peer replaced our
 * directory y by a symlink, but y holds something the peer never saw.
 * The directory and what it holds stay, with the vector they had: the
 * peer's link does not win over them, and the peer moves it to its copy
 * when our entries of y's contents reach it.
 */
TEST(dir_with_unseen_contents_stays)
{
	static const char *const dirs[] = {"y", "y/mine"};
	struct engine *e = open_engine(dirs, 2);
	struct index_entry *x = calloc(1, sizeof(*x)), *before = calloc(1, sizeof(*x));
	struct sync_entry s[1];

	REQUIRE(e && x && before);
	REQUIRE(index_get(e->idx, "y", 1, before) == 0);
	peer_entry(e, "y", SYNC_KIND_SYMLINK, false, "elsewhere", 1, &s[0]);
	REQUIRE(send_entries(e, s, 1) == 0);
	REQUIRE(send_done(e, 1) == 0);
	CHECK(is_dir("y") && is_dir("y/mine"));
	CHECK(index_get(e->idx, "y", 1, x) == 0 && !x->deleted && x->type == INDEX_DIR &&
	      vv_compare(&x->vv, &before->vv) == VV_EQUAL);
	CHECK_INT_EQ(closed, 0);
	free(x);
	free(before);
	engine_free(e);
}

/* Whether rel is a symlink to target. */
static bool link_is(const char *rel, const char *target)
{
	char buf[64];
	ssize_t n = readlink(at(rel), buf, sizeof(buf));

	return n == (ssize_t)strlen(target) && memcmp(buf, target, (size_t)n) == 0;
}

/* Whether the top directory holds a conflict copy of a conflict copy. */
static bool copy_of_copy(void)
{
	struct dirent *d;
	DIR *dir = opendir(root);
	bool found = false;

	if (!dir)
		return false;
	while ((d = readdir(dir)) != NULL) {
		const char *c = strstr(d->d_name, ".sync-conflict-");

		found |= c && strstr(c + 1, ".sync-conflict-");
	}
	closedir(dir);
	return found;
}

/*
 * Sim bug 27 (seed 1411 --lazy --ops 24): our l lost to the peer's, ours
 * went to its conflict copy c; we renamed c back to l while the peer edited
 * its c. Then the peer's newer l wins over ours again: the same version,
 * so the same copy name c, free on our disk (we moved it away). Our l
 * went there, and the peer's edit of c, in the same batch and winning
 * over our deletion of c, met it: a conflict copy of a conflict copy,
 * though nobody wrote c on both sides. A name our index knows (a
 * tombstone: its history, the peer may still hold a version there) is no
 * free name for a new copy: ours takes the next one.
 */
TEST(conflict_copy_name_of_a_tombstone)
{
	struct engine *e = open_engine(NULL, 0);
	const struct timespec old[2] = {{1, 0}, {1, 0}};
	uint64_t now = TEST_NOW_MS;
	struct sync_entry s[3];
	char c[256];

	REQUIRE(e);
	REQUIRE(symlink("ours", at("l")) == 0);
	REQUIRE(utimensat(AT_FDCWD, at("l"), old, AT_SYMLINK_NOFOLLOW) == 0);
	peer_entry(e, "l0", SYNC_KIND_SYMLINK, false, "theirs", 1, &s[0]);
	s[0].path = "l";
	s[0].path_len = 1;
	s[0].mtime_ns = 2000000000000000000LL; /* newer than ours: it wins */
	REQUIRE(send_entries(e, &s[0], 1) == 0);
	REQUIRE(send_done(e, 1) == 0);
	REQUIRE(copy_of("l", c, sizeof(c)));
	CHECK(link_is(c, "ours"));
	/* we rename our copy back over l; the peer edits its c meanwhile */
	REQUIRE(rename(at(c), at("l")) == 0);
	now = scan_events(e, now);
	CHECK(link_is("l", "ours") && !live_at(e, c));
	peer_entry(e, "l0", SYNC_KIND_SYMLINK, false, "theirs2", 2, &s[1]);
	s[1].path = "l";
	s[1].path_len = 1;
	s[1].mtime_ns = 2000000000000000001LL; /* ours loses again */
	peer_entry(e, c, SYNC_KIND_SYMLINK, false, "edited", 3, &s[2]); /* beats our deletion */
	s[2].mtime_ns = 2000000000000000002LL;
	REQUIRE(send_entries(e, &s[1], 2) == 0);
	REQUIRE(send_done(e, 3) == 0);
	CHECK(link_is("l", "theirs2"));
	CHECK(link_is(c, "edited"));
	CHECK(!copy_of_copy());
	CHECK_INT_EQ(top_names(), 3); /* l, c and our l's new copy */
	CHECK_INT_EQ(closed, 0);
	engine_free(e);
}

/*
 * A download holds its target's directory (an fd) from start to commit.
 * The user deletes that directory (its temp file goes with it) and it is
 * made again, or moves it away and makes another: the rename into the
 * held directory failed (ENOENT), or put the file into the moved one, and
 * the download was dropped for good: the file never came (the sim's seeds
 * 903, 177, ...). The commit checks the directory at the path now and, if
 * it is another, fetches the file again into that one.
 */
static int peer_start(struct engine *e)
{
	struct sync_msg m = {.type = SYNC_MSG_START};
	uint8_t b[64];
	int len;

	memcpy(m.start.device, peer_dev, VV_DEVICE_LEN);
	memcpy(m.start.expect, e->self_dev, VV_DEVICE_LEN);
	len = msg_encode(&m, b, sizeof(b));
	return len < 0 ? -1 : engine_on_msg(e, b, (size_t)len, TEST_NOW_MS);
}

static bool fetch_into_remade_dir(bool move_away)
{
	static const char *const dirs[] = {"d"};
	struct engine *e = open_engine(dirs, 1);
	struct index_entry *x = calloc(1, sizeof(*x));
	struct sync_entry s[1];
	uint8_t h[BLOCKS_HASH_LEN];
	uint64_t now = TEST_NOW_MS;
	bool ok = false;

	if (!e || !x || blocks_hash_buf(NULL, 0, NULL, NULL, h) < 0)
		goto out;
	engine_on_up(e, now); /* the fetcher runs only while the peer is up */
	if (peer_start(e) < 0)
		goto out;
	/* an empty file: fetched without a message, complete at once */
	peer_entry(e, "d/f", SYNC_KIND_FILE, false, NULL, 1, &s[0]);
	memcpy(s[0].hash, h, SYNC_HASH_LEN);
	s[0].size = 0;
	s[0].mode = 0644;
	if (send_entries(e, s, 1) < 0 || send_done(e, 1) < 0)
		goto out;
	CHECK(absent("d/f")); /* waiting for its commit */
	if (move_away) {
		CHECK(rename(at("d"), at("moved")) == 0);
	} else {
		CHECK(nftw(at("d"), rm_fn, 16, FTW_DEPTH | FTW_PHYS) == 0);
	}
	CHECK(mkdir(at("d"), 0755) == 0);
	/* the commit, a retry, its commit: within a few deadlines */
	for (int i = 0; i < 8 && absent("d/f"); i++) {
		uint64_t t = engine_deadline(e);
		if (t == UINT64_MAX)
			break;
		now = t > now ? t : now + 1;
		engine_tick(e, now);
	}
	CHECK(!absent("d/f"));
	CHECK(index_get(e->idx, "d/f", 3, x) == 0 && !x->deleted);
	if (move_away)
		CHECK(absent("moved/f"));
	CHECK(!e->fetch->nfetch && !e->fetch->closing);
	CHECK_INT_EQ(closed, 0);
	ok = true;
out:
	free(x);
	engine_free(e);
	return ok;
}

TEST(fetch_dir_deleted_and_remade)
{
	REQUIRE(fetch_into_remade_dir(false));
}

TEST(fetch_dir_moved_and_remade)
{
	REQUIRE(fetch_into_remade_dir(true));
}

/* Writes rel holding len bytes of data (hash h) and lets the scanner
 * record it: events, the scan, the hash from its thread (bounded waits). */
static bool local_file(struct engine *e, const char *rel, const void *data, size_t len,
		       const uint8_t *h, uint64_t *now)
{
	struct index_entry *x = calloc(1, sizeof(*x));
	int fd = open(at(rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	bool ok = x && fd >= 0 && write(fd, data, len) == (ssize_t)len, found = false;

	if (fd >= 0)
		close(fd);
	if (ok)
		*now = scan_events(e, *now);
	for (int i = 0; ok && !found && i < 100; i++) {
		struct pollfd p = {engine_hash_fd(e), POLLIN, 0};
		if (poll(&p, 1, 100) == 1)
			engine_on_hash(e, *now);
		*now += ENGINE_SCAN_DELAY_MS;
		engine_tick(e, *now);
		found = index_get(e->idx, rel, strlen(rel), x) == 0 && !x->deleted &&
			memcmp(x->hash, h, SYNC_HASH_LEN) == 0;
	}
	free(x);
	return found;
}

/* Whether rel holds exactly len bytes of data. */
static bool holds(const char *rel, const void *data, size_t len)
{
	char buf[256];
	int fd = open(at(rel), O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;

	if (fd >= 0)
		close(fd);
	return n == (ssize_t)len && memcmp(buf, data, len) == 0;
}

/* The peer's file rel with content hash h of len bytes, counter c. */
static void peer_file(struct engine *e, const char *rel, bool deleted, const uint8_t *h,
		      size_t len, uint64_t c, struct sync_entry *s)
{
	peer_entry(e, rel, SYNC_KIND_FILE, deleted, NULL, c, s);
	memcpy(s->hash, h, SYNC_HASH_LEN);
	s->size = len;
	s->mode = 0644;
	s->mtime_ns = (int64_t)1700000000 * 1000000000;
}

/* Runs the engine's timers until rel is there (a few deadlines at most). */
static uint64_t until_present(struct engine *e, const char *rel, uint64_t now)
{
	for (int i = 0; i < 8 && absent(rel); i++) {
		uint64_t t = engine_deadline(e);
		if (t == UINT64_MAX)
			break;
		now = t > now ? t : now + 1;
		engine_tick(e, now);
	}
	return now;
}

/*
 * The peer's new file h.md has the content of our f0 (docs/SIM.md bug 19,
 * seeds 342, 899, 1178 --lazy): the lazy peer's user moved its
 * placeholder of f0 there, touched on the way (no rename for its
 * scanner). We asked the peer for the blocks, which made it delete h.md
 * (a placeholder nobody has, it thought), and the peer's deletion of f0
 * then took the last copy. The content is copied from f0 now and
 * verified, without asking the peer; f0's deletion, coming before the
 * copy is put in place, leaves it whole.
 */
TEST(fetch_filled_from_local_file)
{
	static const char data[] = "the bytes of f0, which only this side holds\n";
	const size_t len = sizeof(data) - 1;
	struct engine *e = open_engine(NULL, 0);
	struct index_entry *x = calloc(1, sizeof(*x));
	struct sync_entry s[2];
	uint8_t h[SYNC_HASH_LEN];
	uint64_t now = TEST_NOW_MS;

	REQUIRE(e && x);
	engine_on_up(e, now);
	REQUIRE(peer_start(e) == 0);
	REQUIRE(blocks_hash_buf(data, len, NULL, NULL, h) == 0);
	REQUIRE(local_file(e, "f0", data, len, h, &now));
	room = (size_t)1 << 30;
	content_asks = 0;
	peer_file(e, "h.md", false, h, len, 1, &s[0]);
	REQUIRE(send_entries(e, &s[0], 1) == 0);
	REQUIRE(send_done(e, 1) == 0);
	peer_file(e, "f0", true, h, len, 2, &s[1]);
	REQUIRE(send_entries(e, &s[1], 1) == 0);
	REQUIRE(send_done(e, 2) == 0);
	CHECK(absent("f0"));
	until_present(e, "h.md", now);
	CHECK(holds("h.md", data, len));
	CHECK(index_get(e->idx, "h.md", 4, x) == 0 && !x->deleted &&
	      memcmp(x->hash, h, SYNC_HASH_LEN) == 0);
	CHECK_INT_EQ(content_asks, 0);
	CHECK(!e->fetch->nfetch && !e->fetch->closing);
	CHECK_INT_EQ(closed, 0);
	room = 0;
	free(x);
	engine_free(e);
}

/*
 * Never the index alone: our f0 was rewritten since it was recorded (the
 * same size, not scanned yet). Its bytes do not verify, so h.md is asked
 * of the peer, and nothing else is put in its place.
 */
TEST(fetch_not_filled_from_changed_local_file)
{
	static const char data[] = "the bytes the peer has under h.md\n";
	static const char edit[] = "the bytes the user wrote since, h\n";
	const size_t len = sizeof(data) - 1;
	struct engine *e = open_engine(NULL, 0);
	struct sync_entry s[1];
	uint8_t h[SYNC_HASH_LEN];
	uint64_t now = TEST_NOW_MS;
	int fd;

	REQUIRE(e && sizeof(edit) == sizeof(data));
	engine_on_up(e, now);
	REQUIRE(peer_start(e) == 0);
	REQUIRE(blocks_hash_buf(data, len, NULL, NULL, h) == 0);
	REQUIRE(local_file(e, "f0", data, len, h, &now));
	fd = open(at("f0"), O_WRONLY | O_CLOEXEC);
	REQUIRE(fd >= 0 && pwrite(fd, edit, len, 0) == (ssize_t)len);
	close(fd);
	room = (size_t)1 << 30;
	content_asks = 0;
	peer_file(e, "h.md", false, h, len, 1, &s[0]);
	REQUIRE(send_entries(e, s, 1) == 0);
	REQUIRE(send_done(e, 1) == 0);
	until_present(e, "h.md", now);
	CHECK(absent("h.md"));
	CHECK_INT_EQ(content_asks, 1);
	CHECK(holds("f0", edit, len));
	CHECK_INT_EQ(closed, 0);
	room = 0;
	engine_free(e);
}

/*
 * A download complete and waiting for its commit, of the peer's file at
 * f0 (docs/SIM.md bug 28, sim seed 7098 --ops 24). Our user made a
 * symlink there meanwhile: the peer took it over its file in a conflict
 * (its file to a copy) and sent it back, our version with our vector.
 * Then our user deleted the symlink. The commit found only our tombstone,
 * which the peer's old file (concurrent with it) won over, "an edit wins":
 * it put the file the peer had replaced, and the peer, holding our
 * symlink, which wins over that file, kept it: a symlink there, a file
 * here, for good. The peer's newer entry for the path ends the download
 * of its older one.
 */
TEST(peer_newer_entry_ends_older_download)
{
	struct engine *e = open_engine(NULL, 0);
	struct index_entry *x = calloc(1, sizeof(*x));
	struct sync_entry s[2];
	uint8_t h[BLOCKS_HASH_LEN];
	uint64_t now = TEST_NOW_MS;
	struct err err;

	REQUIRE(e && x && blocks_hash_buf(NULL, 0, NULL, NULL, h) == 0);
	engine_on_up(e, now); /* the fetcher runs only while the peer is up */
	REQUIRE(peer_start(e) == 0);
	/* an empty file: fetched without a message, complete at once */
	peer_entry(e, "f0", SYNC_KIND_FILE, false, NULL, 1, &s[0]);
	memcpy(s[0].hash, h, SYNC_HASH_LEN);
	s[0].size = 0;
	s[0].mode = 0644;
	REQUIRE(send_entries(e, s, 1) == 0);
	REQUIRE(send_done(e, 1) == 0);
	REQUIRE(absent("f0") && e->fetch->closing); /* waiting for its commit */

	/* our symlink, recorded with our counter alone */
	REQUIRE(symlink("nowhere", at("f0")) == 0);
	REQUIRE(scan_path_now(e->scan, "f0", 2, &err) >= 0);
	REQUIRE(index_get(e->idx, "f0", 2, x) == 0 && x->type == INDEX_SYMLINK);
	/* the peer's f0 now: our symlink, taken with our vector */
	memset(&s[1], 0, sizeof(s[1]));
	s[1].path = "f0";
	s[1].path_len = 2;
	s[1].kind = SYNC_KIND_SYMLINK;
	s[1].mode = 0777;
	s[1].mtime_ns = x->mtime_ns;
	s[1].target = "nowhere";
	s[1].target_len = 7;
	for (unsigned k = 0; k < x->vv.n; k++) {
		memcpy(s[1].vv[k].device, x->vv.e[k].device, VV_DEVICE_LEN);
		s[1].vv[k].counter = x->vv.e[k].counter;
	}
	s[1].nvv = (uint8_t)x->vv.n;
	s[1].seq = 4;
	REQUIRE(send_entries(e, &s[1], 1) == 0);
	REQUIRE(send_done(e, 4) == 0);

	/* our user deletes the symlink; then the commit is due */
	REQUIRE(unlink(at("f0")) == 0);
	REQUIRE(scan_path_now(e->scan, "f0", 2, &err) >= 0);
	for (int i = 0; i < 8 && e->fetch->closing; i++) {
		uint64_t t = engine_deadline(e);
		if (t == UINT64_MAX)
			break;
		now = t > now ? t : now + 1;
		engine_tick(e, now);
	}
	CHECK(absent("f0"));
	CHECK(index_get(e->idx, "f0", 2, x) == 0 && x->deleted);
	CHECK(!e->fetch->nfetch && !e->fetch->closing);
	CHECK_INT_EQ(closed, 0);
	free(x);
	engine_free(e);
}

/*
 * Long-run seed 2002714 (--lazy --ops 24): the lazy peer's user renamed
 * its placeholder of our f3 to d0 and made a directory f3; both came in
 * one batch. The directory (pass 0) replaced our f3, the only copy of
 * the content, before d0 (pass 1) was queued and could be filled from it:
 * we asked the peer, which has only a placeholder, and it dropped d0. Our
 * file moves to d0 now, as for the peer's deletion of f3, and f3 becomes
 * the directory.
 */
TEST(file_replaced_by_dir_moves_to_the_new_name)
{
	static const char data[] = "the bytes of f3, which only this side holds\n";
	const size_t len = sizeof(data) - 1;
	struct engine *e = open_engine(NULL, 0);
	struct index_entry *x = calloc(1, sizeof(*x));
	struct sync_entry s[2];
	uint8_t h[SYNC_HASH_LEN];
	uint64_t now = TEST_NOW_MS;

	REQUIRE(e && x);
	engine_on_up(e, now);
	REQUIRE(peer_start(e) == 0);
	REQUIRE(blocks_hash_buf(data, len, NULL, NULL, h) == 0);
	REQUIRE(local_file(e, "f3", data, len, h, &now));
	room = (size_t)1 << 30;
	content_asks = 0;
	peer_file(e, "d0", false, h, len, 1, &s[0]);
	peer_entry(e, "f3", SYNC_KIND_DIR, false, NULL, 2, &s[1]);
	REQUIRE(send_entries(e, s, 2) == 0);
	REQUIRE(send_done(e, 2) == 0);
	CHECK(is_dir("f3"));
	CHECK(holds("d0", data, len));
	CHECK(index_get(e->idx, "d0", 2, x) == 0 && !x->deleted &&
	      memcmp(x->hash, h, SYNC_HASH_LEN) == 0);
	CHECK(index_get(e->idx, "f3", 2, x) == 0 && !x->deleted && x->type == INDEX_DIR);
	CHECK_INT_EQ(content_asks, 0);
	CHECK_INT_EQ(closed, 0);
	room = 0;
	free(x);
	engine_free(e);
}

int main(void)
{
	if (!mkdtemp(base)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	RUN(str_bytes);
	RUN(room);
	RUN(fill);
	RUN(cap_through_messages);
	RUN(carry_deleted_dir);
	RUN(final_keeps_ours);
	RUN(carry_kind_change);
	RUN(tmp_does_not_keep_dir);
	RUN(tombstone_drops_tmp);
	RUN(deletion_loses_keeps_their_vector);
	RUN(root_removed_in_parts_deletes_nothing);
	RUN(deletion_recorded_after_grace);
	RUN(local_loses_keeps_their_vector);
	RUN(superseded_fetch_keeps_applied);
	RUN(rename_does_not_carry_source_vector);
	RUN(nested_message_keeps_its_cause);
	RUN(dir_of_peer_beneath_our_file);
	RUN(dir_wins_concurrent_clash);
	RUN(dir_with_unseen_contents_stays);
	RUN(fetch_dir_deleted_and_remade);
	RUN(fetch_dir_moved_and_remade);
	RUN(fetch_filled_from_local_file);
	RUN(fetch_not_filled_from_changed_local_file);
	RUN(conflict_copy_name_of_a_tombstone);
	RUN(peer_newer_entry_ends_older_download);
	RUN(file_replaced_by_dir_moves_to_the_new_name);
	nftw(base, rm_fn, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
