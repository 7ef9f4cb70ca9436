/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdint.h>

#include "sync/conflict.h"
#include "sync/path.h"
#include "tap.h"

/* base32 of the first 35 bits: "ABCDEFG", "CI2FM6E", "7777777" */
static const uint8_t dev_a[8] = {0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6};
static const uint8_t dev_b[8] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0};
static const uint8_t dev_f[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

#define T0 1704164645000000000LL /* 2024-01-02 03:04:05 UTC */
#define SUFFIX_A ".sync-conflict-20240102-030405-ABCDEFG"

static struct conflict_version ver(const uint8_t *dev, int64_t mtime, uint64_t size, uint8_t h,
				   bool deleted)
{
	struct conflict_version v;

	memset(&v, 0, sizeof(v));
	memcpy(v.device, dev, 8);
	v.mtime_ns = mtime;
	v.size = size;
	memset(v.hash, h, sizeof(v.hash));
	v.deleted = deleted;
	return v;
}

/* decide() in both orders: same action, same winning version. Returns the
 * winner of (a, b) or -1 when the two orders disagree. */
static int decide_both(const struct conflict_version *a, const struct conflict_version *b,
		       enum conflict_action *ret_action)
{
	unsigned w1 = 9, w2 = 9;
	enum conflict_action x1 = conflict_decide(a, b, &w1);
	enum conflict_action x2 = conflict_decide(b, a, &w2);
	const struct conflict_version *v1 = w1 == 0 ? a : b, *v2 = w2 == 0 ? b : a;

	if (w1 > 1 || w2 > 1 || x1 != x2 || memcmp(v1, v2, sizeof(*v1)) != 0)
		return -1;
	*ret_action = x1;
	return (int)w1;
}

TEST(identical_content)
{
	struct conflict_version a = ver(dev_a, T0, 10, 1, false);
	struct conflict_version b = ver(dev_b, T0 + 5, 10, 1, false);
	enum conflict_action x;

	/* same content, different mtimes: not a conflict, the newer metadata stays */
	CHECK_INT_EQ(decide_both(&a, &b, &x), 1);
	CHECK_INT_EQ(x, CONFLICT_IDENTICAL);
	/* both deleted, whatever their hash fields say */
	a = ver(dev_a, T0, 0, 1, true);
	b = ver(dev_b, T0 - 5, 3, 2, true);
	CHECK_INT_EQ(decide_both(&a, &b, &x), 0);
	CHECK_INT_EQ(x, CONFLICT_IDENTICAL);
	/* the very same version twice */
	CHECK_INT_EQ(decide_both(&a, &a, &x), 0);
	CHECK_INT_EQ(x, CONFLICT_IDENTICAL);
	/* same hash but a different size is not called identical (never lose data) */
	a = ver(dev_a, T0, 10, 1, false);
	b = ver(dev_b, T0, 11, 1, false);
	CHECK(decide_both(&a, &b, &x) >= 0);
	CHECK_INT_EQ(x, CONFLICT_COPY);
}

TEST(edit_beats_delete)
{
	struct conflict_version edit = ver(dev_a, T0, 10, 1, false);
	struct conflict_version del = ver(dev_f, T0 + 1000, 0, 0, true);
	enum conflict_action x;

	/* even a newer deletion from the larger device loses */
	CHECK_INT_EQ(decide_both(&edit, &del, &x), 0);
	CHECK_INT_EQ(x, CONFLICT_EDIT_WINS);
	CHECK_INT_EQ(decide_both(&del, &edit, &x), 1);
	CHECK_INT_EQ(x, CONFLICT_EDIT_WINS);
	/* an empty file is an edit too */
	edit = ver(dev_a, T0 - 1000, 0, 0, false);
	CHECK_INT_EQ(decide_both(&del, &edit, &x), 1);
	CHECK_INT_EQ(x, CONFLICT_EDIT_WINS);
}

TEST(two_edits)
{
	struct conflict_version a = ver(dev_a, T0, 10, 1, false);
	struct conflict_version b = ver(dev_b, T0 + 1, 10, 2, false);
	enum conflict_action x;

	/* newer mtime wins, even by one nanosecond, even from the smaller device */
	CHECK_INT_EQ(decide_both(&a, &b, &x), 1);
	CHECK_INT_EQ(x, CONFLICT_COPY);
	a.device[0] = 0xff;
	CHECK_INT_EQ(decide_both(&a, &b, &x), 1);
	/* same mtime: the larger device id wins */
	a = ver(dev_a, T0, 10, 1, false);
	b = ver(dev_b, T0, 10, 2, false);
	CHECK_INT_EQ(decide_both(&a, &b, &x), 1);
	CHECK_INT_EQ(x, CONFLICT_COPY);
	b = ver(dev_b, T0, 10, 2, false);
	a = ver(dev_f, T0, 10, 1, false);
	CHECK_INT_EQ(decide_both(&a, &b, &x), 0);
	/* same mtime and device (a clock that did not move): the hash decides */
	a = ver(dev_a, T0, 10, 1, false);
	b = ver(dev_a, T0, 10, 2, false);
	CHECK_INT_EQ(decide_both(&a, &b, &x), 1);
	CHECK_INT_EQ(x, CONFLICT_COPY);
	/* negative mtimes order too */
	a = ver(dev_a, -5, 10, 1, false);
	b = ver(dev_b, -6, 10, 2, false);
	CHECK_INT_EQ(decide_both(&a, &b, &x), 0);
}

/*
 * Every pair from a small universe of versions: both orders agree, the
 * action follows the rules, and the winner order is a total order
 * (antisymmetric and transitive across triples).
 */
TEST(all_pairs_both_orders)
{
	static const int64_t mt[] = {INT64_MIN, -1, 0, T0, INT64_MAX};
	const uint8_t *devs[] = {dev_a, dev_b, dev_f};
	struct conflict_version v[5 * 3 * 2 * 2 * 2];
	unsigned n = 0, bad = 0;

	for (unsigned i = 0; i < 5; i++)
		for (unsigned d = 0; d < 3; d++)
			for (unsigned h = 1; h <= 2; h++)
				for (unsigned s = 1; s <= 2; s++)
					for (unsigned del = 0; del <= 1; del++)
						v[n++] = ver(devs[d], mt[i], s, (uint8_t)h, del);
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j < n; j++) {
			enum conflict_action x;
			int w = decide_both(&v[i], &v[j], &x);
			const struct conflict_version *a = &v[i], *b = &v[j];
			enum conflict_action want;

			if (w < 0) {
				bad++;
				continue;
			}
			if (a->deleted && b->deleted)
				want = CONFLICT_IDENTICAL;
			else if (a->deleted != b->deleted)
				want = CONFLICT_EDIT_WINS;
			else if (a->size == b->size && a->hash[0] == b->hash[0])
				want = CONFLICT_IDENTICAL;
			else
				want = CONFLICT_COPY;
			if (x != want)
				bad++;
			if (x == CONFLICT_EDIT_WINS && (w == 0 ? a : b)->deleted)
				bad++;
			if (x == CONFLICT_COPY && a->mtime_ns != b->mtime_ns &&
			    (w == 0) != (a->mtime_ns > b->mtime_ns))
				bad++;
		}
	}
	CHECK_INT_EQ(bad, 0);

	/* transitivity of "beats" among the edits, which is what COPY uses */
	bad = 0;
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < n; j++)
			for (unsigned k = 0; k < n; k++) {
				unsigned w1, w2, w3;
				if (v[i].deleted || v[j].deleted || v[k].deleted)
					continue;
				(void)conflict_decide(&v[i], &v[j], &w1);
				(void)conflict_decide(&v[j], &v[k], &w2);
				(void)conflict_decide(&v[i], &v[k], &w3);
				if (w1 == 0 && w2 == 0 && w3 != 0 &&
				    memcmp(&v[i], &v[k], sizeof(v[i])) != 0)
					bad++;
			}
	CHECK_INT_EQ(bad, 0);
}

static int name_of(const char *path, const uint8_t *dev, int64_t mtime, char *out)
{
	struct conflict_version v = ver(dev, mtime, 1, 1, false);

	return conflict_name(path, strlen(path), &v, out, PATH_REL_MAX + 1);
}

#define CHECK_NAME(path, want)                                                                     \
	do {                                                                                       \
		char _out[PATH_REL_MAX + 1];                                                       \
		int _r = name_of(path, dev_a, T0, _out);                                           \
		CHECK_INT_EQ(_r, (int)strlen(want));                                               \
		if (_r >= 0) {                                                                     \
			CHECK_STR_EQ(_out, want);                                                  \
			CHECK(conflict_name_is(_out, (size_t)_r));                                 \
		}                                                                                  \
	} while (0)

TEST(names)
{
	CHECK_NAME("notes.txt", "notes" SUFFIX_A ".txt");
	CHECK_NAME("Makefile", "Makefile" SUFFIX_A);
	CHECK_NAME(".bashrc", ".bashrc" SUFFIX_A);
	CHECK_NAME(".bashrc.bak", ".bashrc" SUFFIX_A ".bak");
	CHECK_NAME("archive.tar.gz", "archive.tar" SUFFIX_A ".gz");
	CHECK_NAME("a.", "a." SUFFIX_A);
}

TEST(names_more)
{
	char out[PATH_REL_MAX + 1];

	CHECK_NAME("..x", "." SUFFIX_A ".x");
	CHECK_NAME("...", "..." SUFFIX_A);
	CHECK_NAME("x.y z", "x" SUFFIX_A ".y z");
	/* only the last component changes; dots in directories do not count */
	CHECK_NAME("dir/sub/file.c", "dir/sub/file" SUFFIX_A ".c");
	CHECK_NAME("dir.d/file", "dir.d/file" SUFFIX_A);
	CHECK_NAME("a.b/.c", "a.b/.c" SUFFIX_A);
	/* a conflict copy of a conflict copy is named the same way */
	CHECK_NAME("n" SUFFIX_A ".txt", "n" SUFFIX_A SUFFIX_A ".txt");
	/* an "extension" longer than CONFLICT_EXT_MAX is part of the base */
	CHECK_NAME("v.01234567890123456789012345678901",
		   "v.01234567890123456789012345678901" SUFFIX_A);
	CHECK_NAME("v.0123456789012345678901234567890",
		   "v" SUFFIX_A ".0123456789012345678901234567890");

	/* the time: UTC, rounded down, before 1970 and at the ends of int64 */
	CHECK(name_of("f", dev_b, -1, out) > 0);
	CHECK_STR_EQ(out, "f.sync-conflict-19691231-235959-CI2FM6E");
	CHECK(name_of("f", dev_f, INT64_MIN, out) > 0);
	CHECK_STR_EQ(out, "f.sync-conflict-16770921-001243-7777777");
	CHECK(name_of("f", dev_a, INT64_MAX, out) > 0);
	CHECK_STR_EQ(out, "f.sync-conflict-22620411-234716-ABCDEFG");
	CHECK(name_of("f", dev_a, T0 + 999999999, out) > 0);
	CHECK_STR_EQ(out, "f" SUFFIX_A);

	/* deterministic: same loser, same name; another loser, another name */
	char out2[PATH_REL_MAX + 1];
	CHECK(name_of("x/y.txt", dev_a, T0, out) > 0);
	CHECK(name_of("x/y.txt", dev_a, T0, out2) > 0);
	CHECK_STR_EQ(out, out2);
	CHECK(name_of("x/y.txt", dev_b, T0, out2) > 0);
	CHECK(strcmp(out, out2) != 0);
}

/* When the name is taken (the same loser lost before, its copy still
 * there), the next ones: "-2", "-3" ... before the extension. */
TEST(names_nth)
{
	struct conflict_version v = ver(dev_a, T0, 1, 1, false);
	char out[PATH_REL_MAX + 1];
	int r;

	r = conflict_name_nth("notes.txt", 9, &v, 1, out, sizeof(out));
	CHECK_STR_EQ(out, "notes" SUFFIX_A ".txt");
	r = conflict_name_nth("notes.txt", 9, &v, 2, out, sizeof(out));
	CHECK_INT_EQ(r, (int)strlen("notes" SUFFIX_A "-2.txt"));
	CHECK_STR_EQ(out, "notes" SUFFIX_A "-2.txt");
	CHECK(conflict_name_is(out, (size_t)r));
	r = conflict_name_nth("d/Makefile", 10, &v, 17, out, sizeof(out));
	CHECK_STR_EQ(out, "d/Makefile" SUFFIX_A "-17");
	CHECK(conflict_name_is(out, (size_t)r));
	CHECK_INT_EQ(conflict_name_nth("f", 1, &v, 0, out, sizeof(out)), -EINVAL);
	CHECK_INT_EQ(conflict_name_nth("f", 1, &v, 100, out, sizeof(out)), -EINVAL);
	CHECK(!conflict_name_is("f" SUFFIX_A "-", strlen("f" SUFFIX_A "-")));
	CHECK(!conflict_name_is("f" SUFFIX_A "-x", strlen("f" SUFFIX_A "-x")));
}

TEST(name_errors)
{
	struct conflict_version v = ver(dev_a, T0, 1, 1, false);
	char out[64];

	memset(out, 'Z', sizeof(out));
	CHECK_INT_EQ(conflict_name("", 0, &v, out, sizeof(out)), -EINVAL);
	CHECK_INT_EQ(conflict_name("/etc/passwd", 11, &v, out, sizeof(out)), -EINVAL);
	CHECK_INT_EQ(conflict_name("a/../b", 6, &v, out, sizeof(out)), -EINVAL);
	CHECK_INT_EQ(conflict_name("a/", 2, &v, out, sizeof(out)), -EINVAL);
	CHECK_INT_EQ(conflict_name("a\0b", 3, &v, out, sizeof(out)), -EINVAL);
	CHECK_INT_EQ(conflict_name(".", 1, &v, out, sizeof(out)), -EINVAL);
	/* "notes.txt" + 38 + NUL = 48 bytes */
	CHECK_INT_EQ(conflict_name("notes.txt", 9, &v, out, 47), -ENOBUFS);
	CHECK(out[0] == 'Z');
	CHECK_INT_EQ(conflict_name("notes.txt", 9, &v, out, 48), 47);
	/* a path given with its length is not read past it */
	CHECK_INT_EQ(conflict_name("ab/cd.txt", 5, &v, out, sizeof(out)), 5 + 38);
	CHECK_STR_EQ(out, "ab/cd" SUFFIX_A);
}

/* Whether s[0..n) is valid UTF-8 (no overlongs or surrogates checked: enough here). */
static bool utf8_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		size_t k = p[i] < 0x80		   ? 1
			   : (p[i] & 0xe0) == 0xc0 ? 2
			   : (p[i] & 0xf0) == 0xe0 ? 3
			   : (p[i] & 0xf8) == 0xf0 ? 4
						   : 0;
		if (k == 0 || i + k > n)
			return false;
		for (size_t j = 1; j < k; j++)
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
		i += k;
	}
	return true;
}

static void check_long(const char *unit, const char *ext)
{
	char in[PATH_REL_MAX + 1], out[PATH_REL_MAX + 1];
	size_t u = strlen(unit), e = strlen(ext), n = 0;
	int r;

	while (n + u + e <= PATH_NAME_MAX) {
		memcpy(in + n, unit, u);
		n += u;
	}
	memcpy(in + n, ext, e);
	n += e;
	r = conflict_name(in, n,
			  &(struct conflict_version){.mtime_ns = T0,
						     .device = {0x00, 0x44, 0x32, 0x14, 0xc7}},
			  out, sizeof(out));
	REQUIRE(r > 0);
	CHECK(r <= PATH_NAME_MAX);
	CHECK(r > PATH_NAME_MAX - 4); /* cut only as much as needed */
	CHECK(path_check(out, (size_t)r, NULL) == 0);
	CHECK(utf8_ok(out, (size_t)r));
	CHECK(conflict_name_is(out, (size_t)r));
	/* the suffix and the extension are whole, at the end */
	CHECK((size_t)r > 38 + e && memcmp(out + r - e - 38, SUFFIX_A, 38) == 0);
	CHECK(memcmp(out + r - e, ext, e) == 0);
	/* the base is a prefix of the original */
	CHECK(memcmp(out, in, (size_t)r - e - 38) == 0);
}

TEST(long_names)
{
	check_long("a", ".txt");
	check_long("a", "");
	check_long("\xc3\xa9", ".txt");					/* é, 2 bytes */
	check_long("\xe2\x82\xac", "");					/* €, 3 bytes */
	check_long("\xf0\x9f\x98\x80", ".md");				/* U+1F600, 4 bytes */
	check_long("x\xf0\x9f\x98\x80", ".jpeg");			/* mixed widths */
	check_long("\xe2\x82\xac", ".0123456789012345678901234567890"); /* a 32-byte ext */
}

TEST(long_paths)
{
	char in[PATH_REL_MAX + 1], out[PATH_REL_MAX + 1];
	struct conflict_version v = ver(dev_a, T0, 1, 1, false);
	size_t n = 0;
	int r;

	/* 19 directories of 200 bytes = 3819 bytes, then a 250-byte name: 4069 */
	for (int i = 0; i < 19; i++) {
		memset(in + n, 'd', 200);
		in[n + 200] = '/';
		n += 201;
	}
	memset(in + n, 'f', 246);
	memcpy(in + n + 246, ".txt", 4);
	n += 250;
	r = conflict_name(in, n, &v, out, sizeof(out));
	REQUIRE(r > 0);
	CHECK_INT_EQ(r, 3819 + PATH_NAME_MAX); /* the name cap binds */
	CHECK(path_check(out, (size_t)r, NULL) == 0);
	CHECK(memcmp(out, in, 3819) == 0);
	CHECK(memcmp(out + r - 42, SUFFIX_A ".txt", 42) == 0);

	/* 20 directories (4020 bytes with slashes), then a 60-byte name: cut to 37 */
	n = 0;
	for (int i = 0; i < 20; i++) {
		memset(in + n, 'd', 200);
		in[n + 200] = '/';
		n += 201;
	}
	memset(in + n, 'f', 60);
	r = conflict_name(in, n + 60, &v, out, sizeof(out));
	CHECK_INT_EQ(r, PATH_REL_MAX);
	CHECK(r > 0 && path_check(out, (size_t)r, NULL) == 0);
	CHECK(memcmp(out + 4020, "fffffffffffffffffffffffffffffffffffff.sync-", 43) == 0);

	/* one more directory of 35 bytes: exactly one byte of base fits */
	memset(in + n, 'e', 35);
	in[n + 35] = '/';
	memcpy(in + n + 36, "gh.txt", 6);
	r = conflict_name(in, n + 36 + 2, &v, out, sizeof(out));
	CHECK_INT_EQ(r, PATH_REL_MAX);
	CHECK(r > 0 && memcmp(out + n + 36, "g" SUFFIX_A, 39) == 0);
	/* the extension is kept and costs room: then nothing fits */
	r = conflict_name(in, n + 36 + 6, &v, out, sizeof(out));
	CHECK_INT_EQ(r, -ENAMETOOLONG);
	/* 36 bytes: not even one byte of base */
	memset(in + n, 'e', 36);
	in[n + 36] = '/';
	in[n + 37] = 'g';
	CHECK(path_check(in, n + 38, NULL) == 0);
	CHECK_INT_EQ(conflict_name(in, n + 38, &v, out, sizeof(out)), -ENAMETOOLONG);
}

TEST(is_conflict)
{
	static const char *yes[] = {
		"a" SUFFIX_A,
		"a" SUFFIX_A ".txt",
		"d/x" SUFFIX_A ".",
		SUFFIX_A,
		"a.sync-conflict-00000000-000000-2222222",
	};
	static const char *no[] = {
		"notes.txt",
		"a.sync-conflict-",
		"a.sync-conflict-20240102-030405-ABCDEF",      /* 6 characters */
		"a.sync-conflict-20240102-030405-ABCDEFGH",    /* 8 */
		"a.sync-conflict-20240102-030405-abcdefg",     /* lower case */
		"a.sync-conflict-20240102-030405-ABCDEF1",     /* not base32 */
		"a.sync-conflict-2024010-2030405-ABCDEFG",     /* misplaced dash */
		"a.sync-conflict-2024010x-030405-ABCDEFG.txt", /* not a digit */
		"a" SUFFIX_A "/b.txt",			       /* only the last component counts */
		"a.sync_conflict-20240102-030405-ABCDEFG",
		"",
	};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		CHECK(conflict_name_is(yes[i], strlen(yes[i])));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (conflict_name_is(no[i], strlen(no[i])))
			CHECK(!no[i]);
	/* a later occurrence is found after a false start */
	CHECK(conflict_name_is("x.sync-conflict-y" SUFFIX_A, strlen("x.sync-conflict-y" SUFFIX_A)));
	/* length is respected */
	CHECK(!conflict_name_is("a" SUFFIX_A, 20));
}

int main(void)
{
	RUN(identical_content);
	RUN(edit_beats_delete);
	RUN(two_edits);
	RUN(all_pairs_both_orders);
	RUN(names);
	RUN(names_more);
	RUN(names_nth);
	RUN(name_errors);
	RUN(long_names);
	RUN(long_paths);
	RUN(is_conflict);
	return tap_done();
}
