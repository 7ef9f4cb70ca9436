/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Index queries of index_query.c: manifests, lookup by hash, counts, children. */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sync/index.h"
#include "tap.h"

static char dir[] = "/tmp/tandem-test-indexq-XXXXXX";
static char dbfile[128];
static unsigned nfile;

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

static int put(struct index *idx, const char *path, enum index_type type, uint8_t fill)
{
	struct index_entry e;

	memset(&e, 0, sizeof(e));
	snprintf(e.path, sizeof(e.path), "%s", path);
	e.path_len = strlen(path);
	e.type = type;
	e.mode = 0644;
	if (type != INDEX_DIR) {
		e.size = 10;
		e.has_hash = true;
		memset(e.hash, fill, sizeof(e.hash));
	}
	if (type == INDEX_SYMLINK) {
		strcpy(e.target, "t");
		e.target_len = 1;
	}
	return index_put_local(idx, &e);
}

TEST(manifest_put_get_gc)
{
	struct index *idx = open_ok(fresh());
	uint8_t h1[INDEX_HASH_LEN], h2[INDEX_HASH_LEN], *blob = NULL;
	const uint8_t b1[] = "first manifest", b2[] = "second, longer manifest";
	size_t len = 0;

	REQUIRE(idx);
	memset(h1, 1, sizeof(h1));
	memset(h2, 2, sizeof(h2));
	CHECK_INT_EQ(index_manifest_get(idx, h1, &blob, &len), -ENOENT);
	CHECK(blob == NULL);
	CHECK_INT_EQ(index_manifest_put(idx, h1, b1, sizeof(b1)), 0);
	CHECK_INT_EQ(index_manifest_get(idx, h1, &blob, &len), 0);
	CHECK_INT_EQ(len, sizeof(b1));
	CHECK(blob && memcmp(blob, b1, sizeof(b1)) == 0);
	free(blob);
	blob = NULL;
	/* replaced, not duplicated */
	CHECK_INT_EQ(index_manifest_put(idx, h1, b2, sizeof(b2)), 0);
	CHECK_INT_EQ(index_manifest_get(idx, h1, &blob, &len), 0);
	CHECK_INT_EQ(len, sizeof(b2));
	CHECK(blob && memcmp(blob, b2, sizeof(b2)) == 0);
	free(blob);
	CHECK_INT_EQ(index_manifest_put(idx, h2, b1, 0), -EINVAL);

	/* gc keeps manifests of live files only */
	CHECK_INT_EQ(put(idx, "a", INDEX_FILE, 1), 0);
	CHECK_INT_EQ(index_manifest_put(idx, h2, b1, sizeof(b1)), 0);
	CHECK_INT_EQ(index_manifest_gc(idx), 1);
	CHECK_INT_EQ(index_manifest_get(idx, h2, &blob, &len), -ENOENT);
	CHECK_INT_EQ(index_manifest_gc(idx), 0);
	CHECK_INT_EQ(index_delete_local(idx, "a", 1), 1);
	CHECK_INT_EQ(index_manifest_gc(idx), 1);
	CHECK_INT_EQ(index_manifest_get(idx, h1, &blob, &len), -ENOENT);
	index_free(idx);
}

TEST(manifest_inside_rollback)
{
	struct index *idx = open_ok(fresh());
	uint8_t h[INDEX_HASH_LEN], *blob = NULL;
	size_t len;

	REQUIRE(idx);
	memset(h, 7, sizeof(h));
	CHECK_INT_EQ(index_begin(idx), 0);
	CHECK_INT_EQ(put(idx, "f", INDEX_FILE, 7), 0);
	CHECK_INT_EQ(index_manifest_put(idx, h, (const uint8_t *)"m", 1), 0);
	CHECK_INT_EQ(index_rollback(idx), 0);
	CHECK_INT_EQ(index_manifest_get(idx, h, &blob, &len), -ENOENT);
	index_free(idx);
}

TEST(get_by_hash)
{
	struct index *idx = open_ok(fresh());
	struct index_entry e;
	uint8_t h[INDEX_HASH_LEN];

	REQUIRE(idx);
	memset(h, 5, sizeof(h));
	CHECK_INT_EQ(index_get_by_hash(idx, h, &e), -ENOENT);
	CHECK_INT_EQ(put(idx, "link", INDEX_SYMLINK, 5), 0); /* a symlink is not content */
	CHECK_INT_EQ(index_get_by_hash(idx, h, &e), -ENOENT);
	CHECK_INT_EQ(put(idx, "x", INDEX_FILE, 5), 0);
	CHECK_INT_EQ(put(idx, "y", INDEX_FILE, 6), 0);
	CHECK_INT_EQ(index_get_by_hash(idx, h, &e), 0);
	CHECK_STR_EQ(e.path, "x");
	CHECK_INT_EQ(index_delete_local(idx, "x", 1), 1);
	CHECK_INT_EQ(index_get_by_hash(idx, h, &e), -ENOENT);
	index_free(idx);
}

TEST(count_live)
{
	struct index *idx = open_ok(fresh());
	uint64_t f = 9, d = 9, l = 9;

	REQUIRE(idx);
	CHECK_INT_EQ(index_count_live(idx, &f, &d, &l), 0);
	CHECK(f == 0 && d == 0 && l == 0);
	CHECK_INT_EQ(put(idx, "d", INDEX_DIR, 0), 0);
	CHECK_INT_EQ(put(idx, "d/a", INDEX_FILE, 1), 0);
	CHECK_INT_EQ(put(idx, "d/b", INDEX_FILE, 2), 0);
	CHECK_INT_EQ(put(idx, "d/c", INDEX_FILE, 3), 0);
	CHECK_INT_EQ(put(idx, "l", INDEX_SYMLINK, 4), 0);
	CHECK_INT_EQ(index_delete_local(idx, "d/c", 3), 1);
	CHECK_INT_EQ(index_count_live(idx, &f, &d, &l), 0);
	CHECK_INT_EQ(f, 2);
	CHECK_INT_EQ(d, 1);
	CHECK_INT_EQ(l, 1);
	index_free(idx);
}

struct names {
	char buf[512];
	unsigned n;
};

static int name_fn(const struct index_entry *e, void *userdata)
{
	struct names *nm = userdata;

	size_t used = strlen(nm->buf);

	snprintf(nm->buf + used, sizeof(nm->buf) - used, "%s,", e->path);
	nm->n++;
	return 0;
}

TEST(foreach_child)
{
	struct index *idx = open_ok(fresh());
	struct names nm = {"", 0};
	static const char *const paths[] = {"a", "a/x", "a/y", "a/y/z", "ab", "a-", "b", "b/a"};

	REQUIRE(idx);
	CHECK_INT_EQ(index_foreach_child(idx, "", 0, name_fn, &nm), 0);
	CHECK_INT_EQ(nm.n, 0);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		CHECK_INT_EQ(put(idx, paths[i], strchr(paths[i], 'x') ? INDEX_FILE : INDEX_DIR, 1),
			     0);
	CHECK_INT_EQ(index_delete_local(idx, "b/a", 3), 1);
	CHECK_INT_EQ(index_foreach_child(idx, "", 0, name_fn, &nm), 0);
	CHECK_STR_EQ(nm.buf, "a,a-,ab,b,");
	nm = (struct names){"", 0};
	CHECK_INT_EQ(index_foreach_child(idx, "a", 1, name_fn, &nm), 0);
	CHECK_STR_EQ(nm.buf, "a/x,a/y,");
	nm = (struct names){"", 0};
	CHECK_INT_EQ(index_foreach_child(idx, "b", 1, name_fn, &nm), 0); /* tombstone only */
	CHECK_STR_EQ(nm.buf, "");
	CHECK_INT_EQ(index_foreach_child(idx, "../a", 4, name_fn, &nm), -EINVAL);
	index_free(idx);
}

/* A file written before the manifests table existed still opens and gets it. */
TEST(old_file_extended)
{
	const char *f = fresh();
	struct index *idx = open_ok(f);
	uint8_t h[INDEX_HASH_LEN], *blob = NULL;
	size_t len;
	sqlite3 *db;

	REQUIRE(idx);
	CHECK_INT_EQ(put(idx, "keep", INDEX_FILE, 1), 0);
	index_free(idx);
	REQUIRE(sqlite3_open(f, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "DROP TABLE manifests; DROP INDEX entries_hash", NULL, NULL, NULL) ==
	      SQLITE_OK);
	sqlite3_close(db);
	idx = open_ok(f);
	REQUIRE(idx);
	memset(h, 1, sizeof(h));
	CHECK_INT_EQ(index_manifest_put(idx, h, (const uint8_t *)"m", 1), 0);
	CHECK_INT_EQ(index_manifest_get(idx, h, &blob, &len), 0);
	free(blob);
	CHECK_INT_EQ(index_seq(idx), 1);
	index_free(idx);
}

TEST(damaged_manifest)
{
	const char *f = fresh();
	struct index *idx = open_ok(f);
	uint8_t h[INDEX_HASH_LEN], *blob = NULL;
	size_t len;
	sqlite3 *db;

	REQUIRE(idx);
	memset(h, 3, sizeof(h));
	CHECK_INT_EQ(index_manifest_put(idx, h, (const uint8_t *)"m", 1), 0);
	REQUIRE(sqlite3_open(f, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "UPDATE manifests SET blob = 'text'", NULL, NULL, NULL) ==
	      SQLITE_OK);
	sqlite3_close(db);
	CHECK_INT_EQ(index_manifest_get(idx, h, &blob, &len), -EBADMSG);
	CHECK(blob == NULL);
	index_free(idx);
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
	RUN(manifest_put_get_gc);
	RUN(manifest_inside_rollback);
	RUN(get_by_hash);
	RUN(count_live);
	RUN(foreach_child);
	RUN(old_file_extended);
	RUN(damaged_manifest);
	cleanup_dir();
	return tap_done();
}
