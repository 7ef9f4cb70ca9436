/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The lazy-content table (index_lazy.c): presence bitmaps persist, and go with their path. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "sync/blocks.h"
#include "sync/index.h"
#include "sync/lazy.h"
#include "tap.h"

static char dir[] = "/tmp/tandem-test-lazy-XXXXXX";
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

	if (index_open(file, &idx, &err) < 0)
		printf("#   index_open(%s): %s\n", file, err.msg);
	else if (index_lazy_init(idx) < 0)
		printf("#   index_lazy_init: %s\n", index_errmsg(idx));
	return idx;
}

static int put_file(struct index *idx, const char *path, uint64_t size, uint8_t fill)
{
	struct index_entry *e = calloc(1, sizeof(*e));
	int r;

	snprintf(e->path, sizeof(e->path), "%s", path);
	e->path_len = strlen(path);
	e->type = INDEX_FILE;
	e->mode = 0644;
	e->size = size;
	e->has_hash = true;
	memset(e->hash, fill, sizeof(e->hash));
	r = index_put_local(idx, e);
	free(e);
	return r;
}

static int count_row(const struct lazy_row *r, void *ud)
{
	(void)r;
	(*(unsigned *)ud)++;
	return 0;
}

TEST(bits_len)
{
	CHECK_INT_EQ(lazy_bits_len(0), 1);
	CHECK_INT_EQ(lazy_bits_len(1), 1);
	CHECK_INT_EQ(lazy_bits_len((uint64_t)8 * BLOCKS_SIZE), 2);
	CHECK_INT_EQ(lazy_bits_len((uint64_t)8 * BLOCKS_SIZE - 1), 2);
	CHECK_INT_EQ(lazy_bits_len((uint64_t)7 * BLOCKS_SIZE), 1);
	/* issue #10: exact in 64 bits (not the 1 byte of a count cut to 32 bits) */
	CHECK_INT_EQ(lazy_bits_len(BLOCKS_FILE_MAX), BLOCKS_COUNT_MAX / 8 + 1);
	CHECK(lazy_bits_len(((uint64_t)1 << 52) + 1) == ((size_t)1 << 29) + 1);
}

/* Issue #10: no lazy-content row for a file over BLOCKS_FILE_MAX. */
TEST(put_over_cap)
{
	const char *file = fresh();
	struct index *idx = open_ok(file);
	uint8_t hash[INDEX_HASH_LEN], *bits = calloc(BLOCKS_COUNT_MAX / 8 + 2, 1);

	REQUIRE(idx && bits);
	memset(hash, 7, sizeof(hash));
	CHECK_INT_EQ(put_file(idx, "huge", BLOCKS_FILE_MAX, 7), 0);
	CHECK_INT_EQ(index_lazy_put(idx, "huge", 4, hash, BLOCKS_FILE_MAX, bits,
				    lazy_bits_len(BLOCKS_FILE_MAX)),
		     0);
	CHECK_INT_EQ(index_lazy_put(idx, "huge", 4, hash, BLOCKS_FILE_MAX + 1, bits,
				    BLOCKS_COUNT_MAX / 8 + 1),
		     -EINVAL);
	CHECK_INT_EQ(index_lazy_put(idx, "huge", 4, hash, ((uint64_t)1 << 52) + 1, bits, 1),
		     -EINVAL);
	CHECK_INT_EQ(index_lazy_put(idx, "huge", 4, hash, (uint64_t)1 << 62, bits, 1), -EINVAL);
	free(bits);
	index_free(idx);
}

TEST(persist_reopen)
{
	const char *file = fresh();
	struct index *idx = open_ok(file);
	uint64_t size = (uint64_t)20 * BLOCKS_SIZE + 5; /* 21 blocks: 3 bytes */
	uint8_t hash[INDEX_HASH_LEN], bits[3] = {0x05, 0x00, 0x10}, *got = NULL;
	struct lazy_row row;

	REQUIRE(idx);
	memset(hash, 7, sizeof(hash));
	CHECK_INT_EQ(put_file(idx, "d/big", size, 7), 0);
	CHECK_INT_EQ(index_lazy_get(idx, "d/big", 5, &row, &got), -ENOENT);
	CHECK_INT_EQ(index_lazy_put(idx, "d/big", 5, hash, size, bits, 2), -EINVAL);
	CHECK_INT_EQ(index_lazy_put(idx, "d/big", 5, hash, size, bits, 3), 0);
	index_free(idx);

	idx = open_ok(file);
	REQUIRE(idx);
	CHECK_INT_EQ(index_lazy_get(idx, "d/big", 5, &row, &got), 0);
	REQUIRE(got);
	CHECK_INT_EQ(row.size, size);
	CHECK_INT_EQ(row.bits_len, 3);
	CHECK(memcmp(got, bits, 3) == 0);
	CHECK(memcmp(row.hash, hash, sizeof(hash)) == 0);
	free(got);
	got = NULL;
	/* replaced, not duplicated */
	bits[1] = 0xff;
	CHECK_INT_EQ(index_lazy_put(idx, "d/big", 5, hash, size, bits, 3), 0);
	CHECK_INT_EQ(index_lazy_get(idx, "d/big", 5, &row, &got), 0);
	CHECK(got && got[1] == 0xff);
	free(got);
	unsigned n = 0;
	CHECK_INT_EQ(index_lazy_foreach(idx, count_row, &n), 0);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(index_lazy_del(idx, "d/big", 5), 0);
	CHECK_INT_EQ(index_lazy_del(idx, "d/big", 5), 0);
	n = 0;
	CHECK_INT_EQ(index_lazy_foreach(idx, count_row, &n), 0);
	CHECK_INT_EQ(n, 0);
	index_free(idx);
}

/* A row goes when its path changes content or is deleted; not on a stat update. */
TEST(dropped_with_path)
{
	struct index *idx = open_ok(fresh());
	uint8_t hash[INDEX_HASH_LEN], bits[1] = {1}, *got = NULL;
	struct lazy_row row;

	REQUIRE(idx);
	memset(hash, 3, sizeof(hash));
	CHECK_INT_EQ(put_file(idx, "a", 10, 3), 0);
	CHECK_INT_EQ(put_file(idx, "b", 10, 3), 0);
	CHECK_INT_EQ(put_file(idx, "c", 10, 3), 0);
	CHECK_INT_EQ(index_lazy_put(idx, "a", 1, hash, 10, bits, 1), 0);
	CHECK_INT_EQ(index_lazy_put(idx, "b", 1, hash, 10, bits, 1), 0);
	CHECK_INT_EQ(index_lazy_put(idx, "c", 1, hash, 10, bits, 1), 0);

	CHECK_INT_EQ(index_set_stat(idx, "a", 1, 1, 2, 3), 0);
	CHECK_INT_EQ(index_lazy_get(idx, "a", 1, &row, &got), 0);
	free(got);
	got = NULL;
	CHECK_INT_EQ(put_file(idx, "a", 10, 4), 0); /* a local edit */
	CHECK_INT_EQ(index_lazy_get(idx, "a", 1, &row, &got), -ENOENT);
	CHECK_INT_EQ(index_delete_local(idx, "b", 1), 1);
	CHECK_INT_EQ(index_lazy_get(idx, "b", 1, &row, &got), -ENOENT);
	CHECK(got == NULL);
	/* a rename moves the mark with the file, and counts it */
	CHECK_INT_EQ(index_lazy_moves(idx), 0);
	CHECK(index_rename(idx, "c", 1, "c2", 2) > 0);
	CHECK_INT_EQ(index_lazy_get(idx, "c", 1, &row, &got), -ENOENT);
	CHECK_INT_EQ(index_lazy_get(idx, "c2", 2, &row, &got), 0);
	CHECK(got && got[0] == 1);
	free(got);
	CHECK_INT_EQ(index_lazy_moves(idx), 1);
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
	RUN(bits_len);
	RUN(persist_reopen);
	RUN(put_over_cap);
	RUN(dropped_with_path);
	cleanup_dir();
	return tap_done();
}
