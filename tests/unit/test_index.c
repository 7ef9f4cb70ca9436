/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sync/index.h"
#include "tap.h"

static char dir[] = "/tmp/tandem-test-index-XXXXXX";
static char dbfile[128];
static unsigned nfile;

static const uint8_t PEER[VV_DEVICE_LEN] = {0xfe, 0xed, 1, 2, 3, 4, 5, 6};

/* A fresh database path for each test. */
static const char *fresh(void)
{
	snprintf(dbfile, sizeof(dbfile), "%s/index-%u.db", dir, nfile++);
	return dbfile;
}

static struct index *open_ok(const char *file)
{
	struct index *idx = NULL;
	struct err err = {.msg = ""};
	int r = index_open(file, &idx, &err);

	if (r < 0)
		printf("#   index_open(%s): %d %s\n", file, r, err.msg);
	return idx;
}

static void mkfile(struct index_entry *e, const char *path, uint8_t fill)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->path, sizeof(e->path), "%s", path);
	e->path_len = strlen(path);
	e->type = INDEX_FILE;
	e->mode = 0644;
	e->size = 4096;
	e->mtime_ns = 1700000000123456789LL;
	e->has_hash = true;
	memset(e->hash, fill, sizeof(e->hash));
}

static void mkdir_entry(struct index_entry *e, const char *path)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->path, sizeof(e->path), "%s", path);
	e->path_len = strlen(path);
	e->type = INDEX_DIR;
	e->mode = 0755;
}

static int put_file(struct index *idx, const char *path, uint8_t fill)
{
	struct index_entry e;

	mkfile(&e, path, fill);
	return index_put_local(idx, &e);
}

static int get(struct index *idx, const char *path, struct index_entry *e)
{
	return index_get(idx, path, strlen(path), e);
}

TEST(create_reopen)
{
	const char *f = fresh();
	uint8_t id1[VV_DEVICE_LEN], id2[VV_DEVICE_LEN], zero[VV_DEVICE_LEN] = {0};
	struct index *idx = open_ok(f);

	REQUIRE(idx);
	index_device_id(idx, id1);
	CHECK(memcmp(id1, zero, sizeof(zero)) != 0);
	CHECK_INT_EQ(index_seq(idx), 0);
	CHECK_INT_EQ(index_peer_get(idx, id2), -ENOENT);
	CHECK_INT_EQ(index_peer_set(idx, id1), -EINVAL);
	CHECK_INT_EQ(index_peer_set(idx, PEER), 0);
	CHECK_INT_EQ(index_peer_set(idx, PEER), 0);
	uint8_t other[VV_DEVICE_LEN] = {9};
	CHECK_INT_EQ(index_peer_set(idx, other), -EEXIST);
	index_free(idx);

	idx = open_ok(f);
	REQUIRE(idx);
	index_device_id(idx, id2);
	CHECK(memcmp(id1, id2, sizeof(id1)) == 0);
	CHECK_INT_EQ(index_peer_get(idx, id2), 0);
	CHECK(memcmp(id2, PEER, sizeof(PEER)) == 0);
	index_free(idx);

	/* the file is in WAL mode */
	sqlite3 *db;
	sqlite3_stmt *st;
	REQUIRE(sqlite3_open(f, &db) == SQLITE_OK);
	REQUIRE(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_STR_EQ((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);

	/* a second index gets another device id */
	idx = open_ok(fresh());
	REQUIRE(idx);
	index_device_id(idx, id2);
	CHECK(memcmp(id1, id2, sizeof(id1)) != 0);
	index_free(idx);
	index_free(NULL);
}

/* An index not closed cleanly (a crash, a power cut) jumps its sequence
 * counter, so no number the peer may have seen is handed out again. */
TEST(unclean_close_jumps_seq)
{
	const char *f = fresh();
	struct index *idx = open_ok(f);
	int status = -1;
	pid_t pid;

	REQUIRE(idx);
	CHECK_INT_EQ(put_file(idx, "a", 1), 0);
	CHECK_INT_EQ(index_seq(idx), 1);
	index_free(idx);
	idx = open_ok(f); /* closed cleanly: no jump */
	REQUIRE(idx);
	CHECK_INT_EQ(index_seq(idx), 1);
	index_free(idx);

	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct index *c = open_ok(f);
		int ok = c && put_file(c, "b", 2) == 0 && index_seq(c) == 2;
		_exit(ok ? 0 : 1); /* no index_free: as if killed */
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	idx = open_ok(f);
	REQUIRE(idx);
	CHECK(index_seq(idx) >= 2 + ((uint64_t)1 << 20));
	CHECK_INT_EQ(put_file(idx, "c", 3), 0);
	struct index_entry e;
	CHECK_INT_EQ(get(idx, "c", &e), 0);
	CHECK(e.seq > 2 + ((uint64_t)1 << 20));
	index_free(idx);
}

TEST(insert_update_lookup)
{
	struct index *idx = open_ok(fresh());
	struct index_entry e, got;
	uint8_t me[VV_DEVICE_LEN];

	REQUIRE(idx);
	index_device_id(idx, me);
	CHECK_INT_EQ(get(idx, "a.txt", &got), -ENOENT);
	mkfile(&e, "a.txt", 0xaa);
	e.dev = 7;
	e.ino = 99;
	e.ctime_ns = -5;
	CHECK_INT_EQ(index_put_local(idx, &e), 0);
	CHECK_INT_EQ(e.seq, 1);
	CHECK_INT_EQ(vv_get(&e.vv, me), 1);
	CHECK_INT_EQ(get(idx, "a.txt", &got), 0);
	CHECK_STR_EQ(got.path, "a.txt");
	CHECK_INT_EQ(got.type, INDEX_FILE);
	CHECK_INT_EQ(got.mode, 0644);
	CHECK_INT_EQ(got.size, 4096);
	CHECK(got.mtime_ns == 1700000000123456789LL);
	CHECK(got.has_hash && got.hash[0] == 0xaa && got.hash[31] == 0xaa);
	CHECK(!got.deleted);
	CHECK_INT_EQ(got.seq, 1);
	CHECK_INT_EQ(got.dev, 7);
	CHECK_INT_EQ(got.ino, 99);
	CHECK_INT_EQ(got.ctime_ns, -5);
	CHECK_INT_EQ(vv_compare(&got.vv, &e.vv), VV_EQUAL);

	/* an edit: same path, new hash, version and sequence go up */
	mkfile(&e, "a.txt", 0xbb);
	e.size = 4096; /* same-size edit */
	CHECK_INT_EQ(index_put_local(idx, &e), 0);
	CHECK_INT_EQ(e.seq, 2);
	CHECK_INT_EQ(vv_get(&e.vv, me), 2);
	CHECK_INT_EQ(get(idx, "a.txt", &got), 0);
	CHECK_INT_EQ(got.hash[0], 0xbb);
	CHECK_INT_EQ(got.seq, 2);

	/* a symlink and a directory */
	memset(&e, 0, sizeof(e));
	strcpy(e.path, "link");
	e.path_len = 4;
	e.type = INDEX_SYMLINK;
	e.mode = 0777;
	e.has_hash = true;
	strcpy(e.target, "../outside/is/kept/as/is");
	e.target_len = strlen(e.target);
	CHECK_INT_EQ(index_put_local(idx, &e), 0);
	CHECK_INT_EQ(get(idx, "link", &got), 0);
	CHECK_STR_EQ(got.target, "../outside/is/kept/as/is");
	CHECK_INT_EQ(got.target_len, strlen(e.target));
	mkdir_entry(&e, "d");
	CHECK_INT_EQ(index_put_local(idx, &e), 0);
	CHECK_INT_EQ(get(idx, "d", &got), 0);
	CHECK(got.type == INDEX_DIR && !got.has_hash && got.target_len == 0);

	/* a remote change keeps the given vector */
	mkfile(&e, "remote", 1);
	vv_init(&e.vv);
	CHECK_INT_EQ(vv_bump(&e.vv, PEER), 0);
	CHECK_INT_EQ(vv_bump(&e.vv, PEER), 0);
	CHECK_INT_EQ(index_put_remote(idx, &e), 0);
	CHECK_INT_EQ(e.seq, 5);
	CHECK_INT_EQ(get(idx, "remote", &got), 0);
	CHECK_INT_EQ(vv_get(&got.vv, PEER), 2);
	CHECK_INT_EQ(vv_get(&got.vv, me), 0);

	/* invalid entries */
	mkfile(&e, "x", 1);
	e.mode = 01777;
	CHECK_INT_EQ(index_put_local(idx, &e), -EINVAL);
	mkfile(&e, "x", 1);
	e.has_hash = false;
	CHECK_INT_EQ(index_put_local(idx, &e), -EINVAL);
	mkdir_entry(&e, "x");
	e.has_hash = true;
	CHECK_INT_EQ(index_put_local(idx, &e), -EINVAL);
	mkfile(&e, "x", 1);
	e.target_len = 1;
	CHECK_INT_EQ(index_put_local(idx, &e), -EINVAL);
	mkfile(&e, "x", 1);
	e.type = (enum index_type)4;
	CHECK_INT_EQ(index_put_local(idx, &e), -EINVAL);
	CHECK_INT_EQ(index_seq(idx), 5);
	index_free(idx);
}

TEST(bad_paths)
{
	struct index *idx = open_ok(fresh());
	struct index_entry e, got;
	static const char *const bad[] = {"", "/abs", "../x", "a/../b", "a//b", "a/", ".", "a/./b"};

	REQUIRE(idx);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mkfile(&e, bad[i], 1);
		CHECK_INT_EQ(index_put_local(idx, &e), -EINVAL);
		CHECK(index_errmsg(idx)[0] != '\0');
		CHECK_INT_EQ(index_put_remote(idx, &e), -EINVAL);
		CHECK(get(idx, bad[i], &got) < 0);
		CHECK(index_delete_local(idx, bad[i], strlen(bad[i])) < 0);
	}
	/* NUL inside */
	mkfile(&e, "a", 1);
	e.path_len = 3;
	CHECK_INT_EQ(index_put_local(idx, &e), -EINVAL);
	/* too long */
	memset(e.path, 'x', PATH_REL_MAX + 1);
	e.path[PATH_REL_MAX + 1 - 1] = '\0';
	e.path_len = PATH_REL_MAX + 1;
	CHECK_INT_EQ(index_put_local(idx, &e), -ENAMETOOLONG);
	CHECK_INT_EQ(index_rename(idx, "a", 1, "../b", 4), -EINVAL);
	CHECK_INT_EQ(index_seq(idx), 0);
	index_free(idx);
}

struct collect {
	unsigned n;
	uint64_t last_seq;
	int ordered;
	char paths[16][64];
	int deleted[16];
};

static int collect_fn(const struct index_entry *e, void *userdata)
{
	struct collect *c = userdata;

	if (e->seq <= c->last_seq)
		c->ordered = 0;
	c->last_seq = e->seq;
	if (c->n < 16) {
		snprintf(c->paths[c->n], sizeof(c->paths[0]), "%.63s", e->path);
		c->deleted[c->n] = e->deleted;
	}
	c->n++;
	return 0;
}

static int stop_fn(const struct index_entry *e, void *userdata)
{
	(*(unsigned *)userdata)++;
	return 42;
}

TEST(sequence_changes_since)
{
	const char *f = fresh();
	struct index *idx = open_ok(f);
	struct collect c;

	REQUIRE(idx);
	CHECK_INT_EQ(put_file(idx, "one", 1), 0);
	CHECK_INT_EQ(put_file(idx, "two", 2), 0);
	CHECK_INT_EQ(put_file(idx, "three", 3), 0);
	CHECK_INT_EQ(put_file(idx, "one", 4), 0); /* "one" moves to the end */
	CHECK_INT_EQ(index_seq(idx), 4);

	memset(&c, 0, sizeof(c));
	c.ordered = 1;
	CHECK_INT_EQ(index_changes_since(idx, 0, collect_fn, &c), 0);
	CHECK_INT_EQ(c.n, 3);
	CHECK(c.ordered);
	CHECK_STR_EQ(c.paths[0], "two");
	CHECK_STR_EQ(c.paths[1], "three");
	CHECK_STR_EQ(c.paths[2], "one");
	CHECK_INT_EQ(c.last_seq, 4);

	memset(&c, 0, sizeof(c));
	c.ordered = 1;
	CHECK_INT_EQ(index_changes_since(idx, 2, collect_fn, &c), 0);
	CHECK_INT_EQ(c.n, 2);
	CHECK_STR_EQ(c.paths[0], "three");
	memset(&c, 0, sizeof(c));
	CHECK_INT_EQ(index_changes_since(idx, 4, collect_fn, &c), 0);
	CHECK_INT_EQ(c.n, 0);
	CHECK_INT_EQ(index_changes_since(idx, UINT64_MAX, collect_fn, &c), 0);

	unsigned calls = 0;
	CHECK_INT_EQ(index_changes_since(idx, 0, stop_fn, &calls), 42);
	CHECK_INT_EQ(calls, 1);

	/* a rolled back transaction gives its sequence numbers back */
	CHECK_INT_EQ(index_begin(idx), 0);
	CHECK_INT_EQ(index_begin(idx), -EBUSY);
	CHECK_INT_EQ(put_file(idx, "gone", 1), 0);
	CHECK_INT_EQ(index_seq(idx), 5);
	CHECK_INT_EQ(index_rollback(idx), 0);
	CHECK_INT_EQ(index_seq(idx), 4);
	struct index_entry got;
	CHECK_INT_EQ(get(idx, "gone", &got), -ENOENT);

	/* the counter survives a reopen, and never goes back after GC */
	CHECK_INT_EQ(index_delete_local(idx, "one", 3), 1);
	CHECK_INT_EQ(index_seq(idx), 5);
	CHECK_INT_EQ(index_gc_tombstones(idx, 5), 1);
	index_free(idx);
	idx = open_ok(f);
	REQUIRE(idx);
	CHECK_INT_EQ(index_seq(idx), 5);
	CHECK_INT_EQ(put_file(idx, "four", 4), 0);
	CHECK_INT_EQ(index_seq(idx), 6);
	index_free(idx);
}

TEST(tombstones)
{
	const char *f = fresh();
	struct index *idx = open_ok(f);
	struct index_entry got, before;
	uint8_t me[VV_DEVICE_LEN];
	struct collect c;

	REQUIRE(idx);
	index_device_id(idx, me);
	CHECK_INT_EQ(put_file(idx, "doomed", 7), 0);
	CHECK_INT_EQ(index_set_stat(idx, "doomed", 6, 1, 1234, 99), 0);
	CHECK_INT_EQ(get(idx, "doomed", &before), 0);
	CHECK_INT_EQ(before.ino, 1234);
	CHECK_INT_EQ(index_seq(idx), 1); /* set_stat is not a change */

	CHECK_INT_EQ(index_delete_local(idx, "doomed", 6), 1);
	CHECK_INT_EQ(index_delete_local(idx, "doomed", 6), 0); /* already a tombstone */
	CHECK_INT_EQ(index_delete_local(idx, "never", 5), -ENOENT);
	CHECK_INT_EQ(index_seq(idx), 2);
	index_free(idx);

	idx = open_ok(f);
	REQUIRE(idx);
	CHECK_INT_EQ(get(idx, "doomed", &got), 0);
	CHECK(got.deleted);
	CHECK_INT_EQ(got.seq, 2);
	CHECK_INT_EQ(vv_compare(&got.vv, &before.vv), VV_DOMINATES);
	CHECK_INT_EQ(vv_get(&got.vv, me), 2);
	CHECK_INT_EQ(got.ino, 0);
	CHECK_INT_EQ(index_get_by_ino(idx, 1, 1234, &got), -ENOENT);

	/* the tombstone is a change to send; it is not a live entry */
	memset(&c, 0, sizeof(c));
	CHECK_INT_EQ(index_changes_since(idx, 1, collect_fn, &c), 0);
	CHECK_INT_EQ(c.n, 1);
	CHECK(c.deleted[0]);
	memset(&c, 0, sizeof(c));
	CHECK_INT_EQ(index_foreach_live(idx, collect_fn, &c), 0);
	CHECK_INT_EQ(c.n, 0);

	/* re-creating the path dominates the tombstone */
	CHECK_INT_EQ(put_file(idx, "doomed", 8), 0);
	CHECK_INT_EQ(get(idx, "doomed", &got), 0);
	CHECK(!got.deleted);
	CHECK_INT_EQ(vv_get(&got.vv, me), 3);

	/* GC takes only tombstones the peer confirmed */
	CHECK_INT_EQ(put_file(idx, "t1", 1), 0);
	CHECK_INT_EQ(index_delete_local(idx, "t1", 2), 1); /* seq 5 */
	CHECK_INT_EQ(put_file(idx, "t2", 1), 0);
	CHECK_INT_EQ(index_delete_local(idx, "t2", 2), 1); /* seq 7 */
	CHECK_INT_EQ(index_gc_tombstones(idx, 6), 1);
	CHECK_INT_EQ(get(idx, "t1", &got), -ENOENT);
	CHECK_INT_EQ(get(idx, "t2", &got), 0);
	CHECK_INT_EQ(get(idx, "doomed", &got), 0);
	index_free(idx);
}

/*
 * A vector can move between paths (a peer of an older version gave a
 * renamed file or a conflict copy its original's vector; this one gives
 * the new path its own history, rename_takes_destination_history), so a
 * new change of ours must carry a counter of ours above any we gave
 * before, on any path: else the peer's renamed file, which holds our older
 * counter, dominates a file we just made under that name, and our file is
 * overwritten without a conflict (found by the simulation, tests/sim seeds
 * 3 and 53).
 */
TEST(counter_above_carried)
{
	struct index *idx = open_ok(fresh());
	struct index_entry a, b, c;
	struct vv carried, pv;
	uint8_t me[VV_DEVICE_LEN];

	REQUIRE(idx);
	index_device_id(idx, me);
	CHECK_INT_EQ(put_file(idx, "a", 1), 0);
	CHECK_INT_EQ(put_file(idx, "a", 2), 0);
	CHECK_INT_EQ(get(idx, "a", &a), 0);
	/* the peer renamed a to b and edited it: our counter of a comes along */
	carried = a.vv;
	vv_init(&pv);
	pv.n = 1;
	memcpy(pv.e[0].device, PEER, VV_DEVICE_LEN);
	pv.e[0].counter = 5;
	CHECK_INT_EQ(vv_merge(&carried, &pv), 0);
	/* meanwhile we made b, a path we never had */
	CHECK_INT_EQ(put_file(idx, "b", 3), 0);
	CHECK_INT_EQ(get(idx, "b", &b), 0);
	CHECK_INT_EQ(vv_compare(&carried, &b.vv), VV_CONCURRENT);
	CHECK(vv_get(&b.vv, me) > vv_get(&a.vv, me));
	/* a deletion and a rename count the same way */
	CHECK_INT_EQ(index_delete_local(idx, "b", 1), 1);
	CHECK_INT_EQ(get(idx, "b", &c), 0);
	CHECK(vv_get(&c.vv, me) > vv_get(&b.vv, me));
	CHECK_INT_EQ(index_rename(idx, "a", 1, "c", 1), 1);
	CHECK_INT_EQ(get(idx, "c", &c), 0);
	CHECK(vv_get(&c.vv, me) >= index_seq(idx) - 1);
	index_free(idx);
}

/*
 * A version vector is the history of a path: a rename is a deletion of the
 * source (its vector and our counter) and a new version at the destination
 * built from what we knew there (its tombstone, if any) and our counter,
 * not the source's vector. The source's vector held the peer's counter of
 * a later change elsewhere, and dominated the peer's earlier write at the
 * destination that we had not applied yet (a download still in flight):
 * the peer took our renamed file over it without a conflict copy, a lost
 * write (docs/SIM.md bug 10, seed 123).
 */
TEST(rename_takes_destination_history)
{
	struct index *idx = open_ok(fresh());
	struct index_entry e, src, tomb, got;
	struct vv theirs;
	uint8_t me[VV_DEVICE_LEN];

	REQUIRE(idx);
	index_device_id(idx, me);
	/* s came from the peer with its counter 11; its write of d (counter 8)
	 * is not here yet */
	mkfile(&e, "s", 1);
	vv_init(&e.vv);
	e.vv.n = 1;
	memcpy(e.vv.e[0].device, PEER, VV_DEVICE_LEN);
	e.vv.e[0].counter = 11;
	CHECK_INT_EQ(index_put_remote(idx, &e), 0);
	CHECK_INT_EQ(get(idx, "s", &src), 0);
	vv_init(&theirs);
	theirs.n = 1;
	memcpy(theirs.e[0].device, PEER, VV_DEVICE_LEN);
	theirs.e[0].counter = 8;

	CHECK_INT_EQ(index_rename(idx, "s", 1, "d", 1), 1);
	CHECK_INT_EQ(get(idx, "d", &got), 0);
	CHECK(!got.deleted && got.hash[0] == 1);
	CHECK_INT_EQ(vv_get(&got.vv, PEER), 0);
	CHECK(vv_get(&got.vv, me) > 0);
	CHECK_INT_EQ(vv_compare(&got.vv, &theirs), VV_CONCURRENT);
	/* the source's tombstone dominates what the peer has there: the peer
	 * sees a deletion and a new file of the same content, a move */
	CHECK_INT_EQ(get(idx, "s", &tomb), 0);
	CHECK(tomb.deleted);
	CHECK_INT_EQ(vv_compare(&tomb.vv, &src.vv), VV_DOMINATES);

	/* back onto s: the new version there dominates s's own history (its
	 * tombstone), still without d's */
	CHECK_INT_EQ(index_rename(idx, "d", 1, "s", 1), 1);
	CHECK_INT_EQ(get(idx, "s", &got), 0);
	CHECK(!got.deleted);
	CHECK_INT_EQ(vv_compare(&got.vv, &tomb.vv), VV_DOMINATES);
	CHECK_INT_EQ(vv_get(&got.vv, PEER), 11);
	index_free(idx);
}

TEST(peer_seq)
{
	const char *f = fresh();
	struct index *idx = open_ok(f);
	uint64_t s = 99;
	uint8_t other[VV_DEVICE_LEN] = {7, 7};

	REQUIRE(idx);
	CHECK_INT_EQ(index_peer_seq_get(idx, PEER, &s), 0);
	CHECK_INT_EQ(s, 0);
	CHECK_INT_EQ(index_peer_seq_set(idx, PEER, 17), 0);
	CHECK_INT_EQ(index_peer_seq_set(idx, other, 3), 0);
	CHECK_INT_EQ(index_peer_seq_set(idx, PEER, 1000), 0);
	CHECK_INT_EQ(index_peer_seq_set(idx, PEER, UINT64_MAX), -EINVAL);
	/* stored in the same transaction as the changes it covers */
	CHECK_INT_EQ(index_begin(idx), 0);
	CHECK_INT_EQ(index_peer_seq_set(idx, PEER, 2000), 0);
	CHECK_INT_EQ(index_rollback(idx), 0);
	index_free(idx);

	idx = open_ok(f);
	REQUIRE(idx);
	CHECK_INT_EQ(index_peer_seq_get(idx, PEER, &s), 0);
	CHECK_INT_EQ(s, 1000);
	CHECK_INT_EQ(index_peer_seq_get(idx, other, &s), 0);
	CHECK_INT_EQ(s, 3);
	index_free(idx);
}

static int count_fn(const struct index_entry *e, void *userdata)
{
	(*(unsigned *)userdata)++;
	return 0;
}

TEST(rename_dir)
{
	struct index *idx = open_ok(fresh());
	struct index_entry e, got, old;
	char p[64];
	unsigned n;

	REQUIRE(idx);
	CHECK_INT_EQ(index_begin(idx), 0);
	mkdir_entry(&e, "a");
	CHECK_INT_EQ(index_put_local(idx, &e), 0);
	mkdir_entry(&e, "a/sub");
	CHECK_INT_EQ(index_put_local(idx, &e), 0);
	for (unsigned i = 0; i < 998; i++) {
		snprintf(p, sizeof(p), i % 2 ? "a/f%u" : "a/sub/g%u", i);
		CHECK_INT_EQ(put_file(idx, p, (uint8_t)i), 0);
	}
	mkdir_entry(&e, "ab");
	CHECK_INT_EQ(index_put_local(idx, &e), 0);
	CHECK_INT_EQ(put_file(idx, "ab/keep", 1), 0);
	CHECK_INT_EQ(put_file(idx, "a.txt", 1), 0);
	CHECK_INT_EQ(put_file(idx, "a0", 1), 0);
	CHECK_INT_EQ(index_commit(idx), 0);
	CHECK_INT_EQ(index_set_stat(idx, "a/f1", 4, 3, 555, 1), 0);
	CHECK_INT_EQ(get(idx, "a/f1", &old), 0);

	n = 0;
	CHECK_INT_EQ(index_foreach_under(idx, "a", 1, count_fn, &n), 0);
	CHECK_INT_EQ(n, 999);

	uint64_t seq0 = index_seq(idx);
	CHECK_INT_EQ(index_rename(idx, "a", 1, "b", 1), 1000);
	CHECK_INT_EQ(index_seq(idx), seq0 + 2000);

	CHECK_INT_EQ(get(idx, "b/f1", &got), 0);
	CHECK(!got.deleted && got.hash[0] == 1);
	CHECK_INT_EQ(got.ino, 555); /* same inode after a rename */
	CHECK_INT_EQ(vv_compare(&got.vv, &old.vv), VV_DOMINATES);
	CHECK_INT_EQ(index_get_by_ino(idx, 3, 555, &got), 0);
	CHECK_STR_EQ(got.path, "b/f1");
	CHECK_INT_EQ(get(idx, "b/sub/g0", &got), 0);
	CHECK(!got.deleted);
	CHECK_INT_EQ(get(idx, "b", &got), 0);
	CHECK(got.type == INDEX_DIR && !got.deleted);
	CHECK_INT_EQ(get(idx, "a/f1", &got), 0);
	CHECK(got.deleted);
	CHECK_INT_EQ(get(idx, "a", &got), 0);
	CHECK(got.deleted);

	/* the prefix look-alikes are untouched */
	CHECK_INT_EQ(get(idx, "ab/keep", &got), 0);
	CHECK(!got.deleted && got.seq <= seq0);
	CHECK_INT_EQ(get(idx, "a.txt", &got), 0);
	CHECK(!got.deleted && got.seq <= seq0);
	CHECK_INT_EQ(get(idx, "a0", &got), 0);
	CHECK(!got.deleted && got.seq <= seq0);

	n = 0;
	CHECK_INT_EQ(index_changes_since(idx, seq0, count_fn, &n), 0);
	CHECK_INT_EQ(n, 2000);
	n = 0;
	CHECK_INT_EQ(index_foreach_live(idx, count_fn, &n), 0);
	CHECK_INT_EQ(n, 1000 + 4);

	/* refusals leave everything as it was */
	uint64_t seq1 = index_seq(idx);
	CHECK_INT_EQ(index_rename(idx, "a", 1, "c", 1), -ENOENT); /* a is a tombstone now */
	CHECK_INT_EQ(index_rename(idx, "b", 1, "ab", 2), -EEXIST);
	CHECK_INT_EQ(index_rename(idx, "b", 1, "b/x", 3), -EINVAL);
	CHECK_INT_EQ(index_seq(idx), seq1);
	/* "c/sub" is free but "c/sub/g0" is live: fails half way, all undone */
	CHECK_INT_EQ(put_file(idx, "c/sub/g0", 9), 0);
	seq1 = index_seq(idx);
	CHECK_INT_EQ(index_rename(idx, "b/sub", 5, "c/sub", 5), -EEXIST);
	CHECK_INT_EQ(index_seq(idx), seq1);
	CHECK_INT_EQ(get(idx, "b/sub", &got), 0);
	CHECK(!got.deleted);
	CHECK_INT_EQ(get(idx, "c/sub", &got), -ENOENT);
	CHECK_INT_EQ(get(idx, "b/sub/g2", &got), 0);
	CHECK(!got.deleted);

	/* a single file, onto a tombstone: the new vector dominates both */
	struct index_entry tomb;
	CHECK_INT_EQ(get(idx, "a/f3", &tomb), 0);
	CHECK(tomb.deleted);
	CHECK_INT_EQ(get(idx, "b/f3", &old), 0);
	CHECK_INT_EQ(index_rename(idx, "b/f3", 4, "a/f3", 4), 1);
	CHECK_INT_EQ(get(idx, "a/f3", &got), 0);
	CHECK(!got.deleted && got.type == INDEX_FILE && got.hash[0] == 3);
	CHECK_INT_EQ(vv_compare(&got.vv, &tomb.vv), VV_DOMINATES);
	CHECK_INT_EQ(vv_compare(&got.vv, &old.vv), VV_DOMINATES);
	CHECK_INT_EQ(index_seq(idx), seq1 + 2);
	index_free(idx);
}

TEST(by_ino)
{
	struct index *idx = open_ok(fresh());
	struct index_entry e, got;

	REQUIRE(idx);
	mkfile(&e, "x", 1);
	e.dev = 0x10;
	e.ino = 0xffffffffffffff00ULL; /* above INT64_MAX round-trips */
	CHECK_INT_EQ(index_put_local(idx, &e), 0);
	mkfile(&e, "y", 2);
	e.dev = 0x11;
	e.ino = 0xffffffffffffff00ULL;
	CHECK_INT_EQ(index_put_local(idx, &e), 0);
	CHECK_INT_EQ(index_get_by_ino(idx, 0x10, 0xffffffffffffff00ULL, &got), 0);
	CHECK_STR_EQ(got.path, "x");
	CHECK_INT_EQ(got.ino, 0xffffffffffffff00ULL);
	CHECK_INT_EQ(index_get_by_ino(idx, 0x11, 0xffffffffffffff00ULL, &got), 0);
	CHECK_STR_EQ(got.path, "y");
	CHECK_INT_EQ(index_get_by_ino(idx, 0x12, 0xffffffffffffff00ULL, &got), -ENOENT);
	CHECK_INT_EQ(index_get_by_ino(idx, 0x10, 0, &got), -ENOENT);
	CHECK_INT_EQ(index_set_stat(idx, "x", 1, 0x10, 42, 7), 0);
	CHECK_INT_EQ(index_get_by_ino(idx, 0x10, 42, &got), 0);
	CHECK_STR_EQ(got.path, "x");
	CHECK_INT_EQ(index_set_stat(idx, "nope", 4, 1, 1, 1), -ENOENT);
	index_free(idx);
}

TEST(batch_10000)
{
	const char *f = fresh();
	struct index *idx = open_ok(f);
	struct timespec t0, t1;
	char p[32];
	unsigned n = 0;
	int r = 0;

	REQUIRE(idx);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_INT_EQ(index_begin(idx), 0);
	for (unsigned i = 0; i < 10000 && r == 0; i++) {
		snprintf(p, sizeof(p), "dir%u/file%u", i % 100, i);
		r = put_file(idx, p, (uint8_t)i);
	}
	CHECK_INT_EQ(r, 0);
	CHECK_INT_EQ(index_commit(idx), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# 10000 inserts in one transaction: %.1f ms\n",
	       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	CHECK_INT_EQ(index_seq(idx), 10000);
	index_free(idx);

	idx = open_ok(f);
	REQUIRE(idx);
	CHECK_INT_EQ(index_foreach_live(idx, count_fn, &n), 0);
	CHECK_INT_EQ(n, 10000);
	n = 0;
	CHECK_INT_EQ(index_foreach_under(idx, "dir7", 4, count_fn, &n), 0);
	CHECK_INT_EQ(n, 100);
	index_free(idx);
}

static int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, data, len) == (ssize_t)len;
	close(fd);
	return ok ? 0 : -1;
}

TEST(damaged_file)
{
	char garbage[8192];
	struct index *idx = NULL;
	struct err err = {.msg = ""};
	const char *f = fresh();

	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = (char)(i * 7 + 3);
	REQUIRE(write_file(f, garbage, sizeof(garbage)) == 0);
	CHECK_INT_EQ(index_open(f, &idx, &err), -EBADMSG);
	CHECK(idx == NULL);
	printf("# %s\n", err.msg);
	CHECK(strstr(err.msg, "damaged") != NULL);
	CHECK(strstr(err.msg, "move it aside") != NULL);

	/* a valid database with a corrupted page past the header */
	f = fresh();
	idx = open_ok(f);
	REQUIRE(idx);
	CHECK_INT_EQ(index_begin(idx), 0);
	for (unsigned i = 0; i < 300; i++) {
		char p[32];
		snprintf(p, sizeof(p), "f%u", i);
		CHECK_INT_EQ(put_file(idx, p, 1), 0);
	}
	CHECK_INT_EQ(index_commit(idx), 0);
	index_free(idx);
	idx = NULL;
	{
		sqlite3 *db;
		REQUIRE(sqlite3_open(f, &db) == SQLITE_OK);
		sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE",
			     NULL, NULL, NULL);
		sqlite3_close(db);
	}
	int fd = open(f, O_RDWR | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK(pwrite(fd, garbage, 4096, 4096 * 2) == 4096); /* page 3 */
	close(fd);
	err.msg[0] = '\0';
	CHECK_INT_EQ(index_open(f, &idx, &err), -EBADMSG);
	printf("# %s\n", err.msg);
	CHECK(strstr(err.msg, "damaged") != NULL);
	index_free(idx);

	/* another application's SQLite database */
	f = fresh();
	{
		sqlite3 *db;
		REQUIRE(sqlite3_open(f, &db) == SQLITE_OK);
		CHECK(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL) == SQLITE_OK);
		sqlite3_close(db);
	}
	idx = NULL;
	CHECK_INT_EQ(index_open(f, &idx, &err), -EBADMSG);
	CHECK(strstr(err.msg, "not a tandem index") != NULL);

	/* a directory that does not exist */
	CHECK(index_open("/nonexistent-tandem-dir/x.db", &idx, &err) < 0);
	CHECK(idx == NULL);
}

TEST(newer_schema)
{
	const char *f = fresh();
	struct index *idx = open_ok(f);
	struct err err = {.msg = ""};
	sqlite3 *db;

	REQUIRE(idx);
	index_free(idx);
	REQUIRE(sqlite3_open(f, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "PRAGMA user_version = 2", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	idx = NULL;
	CHECK_INT_EQ(index_open(f, &idx, &err), -EPROTONOSUPPORT);
	CHECK(idx == NULL);
	printf("# %s\n", err.msg);
	CHECK(strstr(err.msg, "newer") != NULL);
}

/* Rows changed behind the API's back read back as -EBADMSG, never a crash. */
TEST(bad_rows)
{
	static const char *const corrupt[] = {
		"UPDATE entries SET hash = x'0102' WHERE path = CAST('f' AS BLOB)",
		"UPDATE entries SET hash = zeroblob(33) WHERE path = CAST('f' AS BLOB)",
		"UPDATE entries SET hash = NULL WHERE path = CAST('f' AS BLOB)",
		"UPDATE entries SET vv = x'05' WHERE path = CAST('f' AS BLOB)",
		"UPDATE entries SET vv = 'text' WHERE path = CAST('f' AS BLOB)",
		"UPDATE entries SET type = 9 WHERE path = CAST('f' AS BLOB)",
		"UPDATE entries SET type = 'file' WHERE path = CAST('f' AS BLOB)",
		"UPDATE entries SET mode = 4095 WHERE path = CAST('f' AS BLOB)",
		"UPDATE entries SET size = -1 WHERE path = CAST('f' AS BLOB)",
		"UPDATE entries SET deleted = 2 WHERE path = CAST('f' AS BLOB)",
		"UPDATE entries SET target = x'610062' WHERE path = CAST('f' AS BLOB)",
		"UPDATE entries SET path = CAST('../f' AS BLOB) WHERE path = CAST('f' AS BLOB)",
		"UPDATE entries SET path = zeroblob(5000) WHERE path = CAST('f' AS BLOB)",
	};
	struct index_entry got;
	unsigned n;

	for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++) {
		const char *f = fresh();
		struct index *idx = open_ok(f);
		sqlite3 *db;

		REQUIRE(idx);
		CHECK_INT_EQ(put_file(idx, "f", 1), 0);
		REQUIRE(sqlite3_open(f, &db) == SQLITE_OK);
		if (sqlite3_exec(db, corrupt[i], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_changes(db) != 1)
			printf("#   cannot corrupt with %s: %s\n", corrupt[i], sqlite3_errmsg(db));
		sqlite3_close(db);
		if (strstr(corrupt[i], "SET path") == NULL)
			CHECK_INT_EQ(get(idx, "f", &got), -EBADMSG);
		n = 0;
		CHECK_INT_EQ(index_changes_since(idx, 0, count_fn, &n), -EBADMSG);
		CHECK_INT_EQ(n, 0);
		CHECK(strstr(index_errmsg(idx), "damaged") != NULL);
		index_free(idx);
	}
}

static void cleanup_dir(void)
{
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	char p[160];

	for (unsigned i = 0; i < nfile; i++)
		for (unsigned k = 0; k < 4; k++) {
			snprintf(p, sizeof(p), "%s/index-%u.db%s", dir, i, sfx[k]);
			(void)unlink(p);
		}
	if (rmdir(dir) != 0)
		printf("# cannot remove %s: %s\n", dir, strerror(errno));
}

int main(void)
{
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	RUN(create_reopen);
	RUN(unclean_close_jumps_seq);
	RUN(insert_update_lookup);
	RUN(bad_paths);
	RUN(sequence_changes_since);
	RUN(tombstones);
	RUN(counter_above_carried);
	RUN(rename_takes_destination_history);
	RUN(peer_seq);
	RUN(rename_dir);
	RUN(by_ino);
	RUN(batch_10000);
	RUN(damaged_file);
	RUN(newer_schema);
	RUN(bad_rows);
	cleanup_dir();
	return tap_done();
}
