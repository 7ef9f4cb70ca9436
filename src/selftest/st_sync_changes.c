/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sync scenarios: every kind of change, first contact, a peer that was down, a big rename. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "st_sync.h"

#define START_MS 10000
#define CONVERGE_MS 10000
#define ABANDONED_TMP ".tandem-tmp-00112233445566778899aabb" /* named as fetch.c names them */
#define RECENT_TMP ".tandem-tmp-ffeeddccbbaa998877665544"

/* One kind of change, made under the directory d of side. Returns 0 or -errno. */
struct change {
	const char *name;
	int (*run)(struct st_pair *p, int side, const char *d);
};

static const char *at(const struct st_pair *p, int side, const char *d, const char *rel,
		      char out[static ST_PATH_MAX])
{
	char sub[ST_PATH_MAX];

	snprintf(sub, sizeof(sub), "%s%s%s", d, rel[0] ? "/" : "", rel);
	return st_pair_path(p, side, sub, out);
}

#define AT(rel) at(p, side, d, (rel), path)
#define SYS(expr) ((expr) < 0 ? -errno : 0)

static int ch_mkdir(struct st_pair *p, int side, const char *d)
{
	char path[ST_PATH_MAX];
	return SYS(mkdir(AT(""), 0755));
}

static int put(struct st_pair *p, int side, const char *d, const char *rel, const char *text)
{
	char sub[ST_PATH_MAX];

	snprintf(sub, sizeof(sub), "%s/%s", d, rel);
	return st_pair_write(p, side, sub, text, strlen(text));
}

static int ch_create(struct st_pair *p, int side, const char *d)
{
	return put(p, side, d, "f.txt", "hello, tandem\n");
}

static int ch_empty(struct st_pair *p, int side, const char *d)
{
	return put(p, side, d, "empty", "");
}

static int ch_same_size(struct st_pair *p, int side, const char *d)
{
	return put(p, side, d, "f.txt", "HELLO, tandem\n");
}

/* Same size and the old mtime put back: only ctime and content say it changed. */
static int ch_same_size_mtime(struct st_pair *p, int side, const char *d)
{
	char path[ST_PATH_MAX];
	struct stat st;
	int r;

	if (lstat(AT("f.txt"), &st) < 0)
		return -errno;
	r = put(p, side, d, "f.txt", "HELLO, TANDEM\n");
	struct timespec ts[2] = { st.st_atim, st.st_mtim };
	return r < 0 ? r : SYS(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW));
}

static int ch_append(struct st_pair *p, int side, const char *d)
{
	char sub[ST_PATH_MAX];

	snprintf(sub, sizeof(sub), "%s/f.txt", d);
	return st_pair_append(p, side, sub, "and one more line\n");
}

static int ch_truncate(struct st_pair *p, int side, const char *d)
{
	char path[ST_PATH_MAX];
	return SYS(truncate(AT("f.txt"), 9));
}

static int ch_chmod(struct st_pair *p, int side, const char *d)
{
	char path[ST_PATH_MAX];
	return SYS(chmod(AT("f.txt"), 0640));
}

static int ch_mtime_ns(struct st_pair *p, int side, const char *d)
{
	char sub[ST_PATH_MAX];

	snprintf(sub, sizeof(sub), "%s/f.txt", d);
	return st_pair_set_mtime(p, side, sub, 1500000000, 123456789);
}

static int ch_rename(struct st_pair *p, int side, const char *d)
{
	char path[ST_PATH_MAX], to[ST_PATH_MAX];

	at(p, side, d, "g.txt", to);
	return SYS(rename(AT("f.txt"), to));
}

static int ch_mkdir_nested(struct st_pair *p, int side, const char *d)
{
	char path[ST_PATH_MAX];

	if (mkdir(AT("n1"), 0755) < 0 || mkdir(AT("n1/n2"), 0700) < 0 ||
	    mkdir(AT("n1/n2/n3"), 0755) < 0)
		return -errno;
	return 0;
}

static int ch_rmdir(struct st_pair *p, int side, const char *d)
{
	char path[ST_PATH_MAX];
	return SYS(rmdir(AT("n1/n2/n3")));
}

static int ch_symlink(struct st_pair *p, int side, const char *d)
{
	char path[ST_PATH_MAX];
	return SYS(symlink("g.txt", AT("link")));
}

static int ch_chmod_dir(struct st_pair *p, int side, const char *d)
{
	char path[ST_PATH_MAX];
	return SYS(chmod(AT(""), 0750));
}

static int ch_delete(struct st_pair *p, int side, const char *d)
{
	char path[ST_PATH_MAX];
	return SYS(unlink(AT("g.txt")));
}

static int ch_delete_link(struct st_pair *p, int side, const char *d)
{
	char path[ST_PATH_MAX];
	return SYS(unlink(AT("link")));
}

static int ch_rmdir_nested(struct st_pair *p, int side, const char *d)
{
	char path[ST_PATH_MAX];

	if (rmdir(AT("n1/n2")) < 0 || rmdir(AT("n1")) < 0)
		return -errno;
	return 0;
}

static const struct change changes[] = {
	{ "mkdir", ch_mkdir },
	{ "create", ch_create },
	{ "empty file", ch_empty },
	{ "same-size edit", ch_same_size },
	{ "same-size edit, mtime kept", ch_same_size_mtime },
	{ "append", ch_append },
	{ "truncate", ch_truncate },
	{ "chmod", ch_chmod },
	{ "mtime with ns", ch_mtime_ns },
	{ "rename file", ch_rename },
	{ "nested mkdir", ch_mkdir_nested },
	{ "rmdir", ch_rmdir },
	{ "symlink", ch_symlink },
	{ "chmod dir", ch_chmod_dir },
	{ "delete", ch_delete },
	{ "delete symlink", ch_delete_link },
	{ "rmdir nested", ch_rmdir_nested },
};

/*
 * Every kind of change, in both directions at once: side a works under
 * "ab/", side b under "ba/". After each change both sides must hold what
 * its maker has, within 2 s.
 */
int st_sync_changes(struct st_env *env)
{
	static const char *const dirs[2] = { "ab", "ba" };
	struct st_pair p;
	uint64_t worst = 0;

	if (st_pair_start(env, &p, "", START_MS) < 0) {
		ST_CHECK(env, !"the pair started and became idle");
		goto out;
	}
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		struct st_expect exp[2] = { { .from = 0, .prefix = dirs[0] },
					    { .from = 1, .prefix = dirs[1] } };
		int64_t took;
		int r;

		for (int s = 0; s < 2; s++) {
			r = changes[i].run(&p, s, dirs[s]);
			if (r < 0) {
				st_note(env, "%s on %s: %s", changes[i].name, st_side_name(s),
					strerror(-r));
				ST_CHECK(env, !"the change could be made");
			}
		}
		for (int s = 0; s < 2; s++)
			exp[s].want = st_pair_snapshot(env, &p, s);
		took = st_wait_converged(env, &p, exp, 2, CONVERGE_MS);
		for (int s = 0; s < 2; s++)
			st_tree_free(exp[s].want);
		st_note(env, "%-28s a->b %4llu ms, b->a %4llu ms, both idle %4lld ms",
			changes[i].name, (unsigned long long)exp[0].reached_ms,
			(unsigned long long)exp[1].reached_ms, (long long)took);
		if (took < 0) {
			st_fail(env, __FILE__, __LINE__, "'%s' did not converge", changes[i].name);
			break;
		}
		for (int s = 0; s < 2; s++) {
			if (exp[s].reached_ms > worst)
				worst = exp[s].reached_ms;
			if (exp[s].reached_ms > st_latency_max_ms())
				st_fail(env, __FILE__, __LINE__,
					"'%s' took %llu ms from %s to %s (at most %u)",
					changes[i].name, (unsigned long long)exp[s].reached_ms,
					st_side_name(s), st_side_name(1 - s), st_latency_max_ms());
		}
	}
	st_note(env, "the slowest change took %llu ms (the bound: %u ms%s)",
		(unsigned long long)worst, st_latency_max_ms(),
		st_sanitized() ? ", 3x in a sanitizer build" : "");
out:
	st_pair_cleanup(env, &p);
	return ST_PASS;
}

/* Content of rel on side equals text. */
static bool has(const struct st_pair *p, int side, const char *rel, const char *text)
{
	char buf[4096];
	ssize_t n = st_pair_read(p, side, rel, buf, sizeof(buf));

	return n >= 0 && (size_t)n == strlen(text) && !memcmp(buf, text, (size_t)n);
}

static void expect_file(struct st_env *env, const struct st_pair *p, const char *rel,
			const char *text)
{
	for (int s = 0; s < 2; s++) {
		if (has(p, s, rel, text))
			continue;
		st_fail(env, __FILE__, __LINE__, "%s on %s does not hold \"%.40s\"", rel,
			st_side_name(s), text);
	}
}

static void expect_absent(struct st_env *env, const struct st_pair *p, const char *rel)
{
	for (int s = 0; s < 2; s++)
		if (st_pair_exists(p, s, rel))
			st_fail(env, __FILE__, __LINE__, "%s came back on %s", rel,
				st_side_name(s));
}


static int mk(const struct st_pair *p, int side, const char *rel)
{
	char path[ST_PATH_MAX];

	return st_pair_path(p, side, rel, path) && mkdir(path, 0755) == 0 ? 0 : -1;
}

static int wr(const struct st_pair *p, int side, const char *rel, const char *text)
{
	return st_pair_write(p, side, rel, text, strlen(text));
}

/* Both versions of rel are kept, one under rel, one in its only conflict copy. */
static void expect_both_kept(struct st_env *env, const struct st_pair *p, const char *rel,
			     const char *v1, const char *v2)
{
	char copy[ST_PATH_MAX];

	for (int s = 0; s < 2; s++) {
		int n = st_pair_conflicts(p, s, rel, copy);
		if (n != 1) {
			st_fail(env, __FILE__, __LINE__, "%s has %d conflict copies of %s, not 1",
				st_side_name(s), n, rel);
			continue;
		}
		if (s == 0)
			st_note(env, "the conflict copy of %s: %s", rel, copy);
		if (!(has(p, s, rel, v1) && has(p, s, copy, v2)) &&
		    !(has(p, s, rel, v2) && has(p, s, copy, v1)))
			st_fail(env, __FILE__, __LINE__,
				"%s and %s on %s do not hold both versions", rel, copy,
				st_side_name(s));
	}
}

int st_sync_first_contact(struct st_env *env)
{
	struct st_pair p;
	int64_t took;
	bool ok = true;

	if (st_pair_make(env, &p, "") < 0) {
		ST_CHECK(env, !"the pair was made");
		goto out;
	}
	/* what each side holds before they ever met */
	ok &= mk(&p, 0, "adir") == 0 && mk(&p, 0, "adir/sub") == 0 && mk(&p, 1, "adir") == 0 &&
	      mk(&p, 1, "bdir") == 0;
	ok &= wr(&p, 0, "a-only.txt", "only on a\n") == 0;
	ok &= wr(&p, 0, "a-empty", "") == 0;
	ok &= wr(&p, 0, "adir/x", "x from a\n") == 0;
	ok &= wr(&p, 0, "adir/sub/y", "y from a\n") == 0;
	ok &= wr(&p, 1, "adir/from-b", "b put this into adir\n") == 0;
	ok &= wr(&p, 1, "b-only.txt", "only on b\n") == 0;
	ok &= wr(&p, 1, "bdir/z", "z from b\n") == 0;
	for (int s = 0; s < 2; s++) {
		ok &= wr(&p, s, "same.txt", "the same on both sides\n") == 0;
		ok &= st_pair_set_mtime(&p, s, "same.txt", 1600000000, 500000000) == 0;
		ok &= wr(&p, s, "samecontent.txt", "same content, other mtime\n") == 0;
		ok &= st_pair_set_mtime(&p, s, "samecontent.txt", 1600000000 + 100 * s, 0) == 0;
	}
	ok &= wr(&p, 0, "differ.txt", "a's version of differ\n") == 0;
	ok &= wr(&p, 1, "differ.txt", "b's version, a longer one\n") == 0;
	/* downloads of an earlier run: one abandoned for over a week, one recent */
	ok &= wr(&p, 1, ABANDONED_TMP, "half of something\n") == 0;
	ok &= st_pair_set_mtime(&p, 1, ABANDONED_TMP, time(NULL) - 8 * 86400, 0) == 0;
	ok &= wr(&p, 1, RECENT_TMP, "resumes later\n") == 0;
	ok &= st_pair_set_mtime(&p, 1, RECENT_TMP, time(NULL) - 86400, 0) == 0;
	{
		char path[ST_PATH_MAX];
		ok &= st_pair_path(&p, 0, "a-link", path) && symlink("a-only.txt", path) == 0;
	}
	ST_CHECK(env, ok);
	if (st_pair_up(env, &p, 0) < 0 || st_pair_up(env, &p, 1) < 0) {
		ST_CHECK(env, !"both daemons started");
		goto out;
	}
	took = st_wait_converged(env, &p, NULL, 0, CONVERGE_MS);
	st_note(env, "first contact converged after %lld ms", (long long)took);
	ST_CHECK(env, took >= 0);
	expect_file(env, &p, "a-only.txt", "only on a\n");
	expect_file(env, &p, "a-empty", "");
	expect_file(env, &p, "adir/x", "x from a\n");
	expect_file(env, &p, "adir/sub/y", "y from a\n");
	expect_file(env, &p, "adir/from-b", "b put this into adir\n");
	expect_file(env, &p, "b-only.txt", "only on b\n");
	expect_file(env, &p, "bdir/z", "z from b\n");
	expect_file(env, &p, "same.txt", "the same on both sides\n");
	expect_file(env, &p, "samecontent.txt", "same content, other mtime\n");
	for (int s = 0; s < 2; s++) {
		char path[ST_PATH_MAX], target[64];
		ssize_t k = st_pair_path(&p, s, "a-link", path)
				    ? readlink(path, target, sizeof(target) - 1)
				    : -1;
		if (k < 0 || (target[k] = '\0', strcmp(target, "a-only.txt")))
			st_fail(env, __FILE__, __LINE__, "a-link on %s is not a link to a-only.txt",
				st_side_name(s));
	}
	expect_both_kept(env, &p, "differ.txt", "a's version of differ\n",
			 "b's version, a longer one\n");
	for (int s = 0; s < 2; s++) {
		int n = st_pair_conflicts_all(&p, s);
		if (n != 1)
			st_fail(env, __FILE__, __LINE__, "%s holds %d conflict copies, not 1",
				st_side_name(s), n);
	}
	/* the abandoned one is removed, the recent one kept, neither synced */
	ST_CHECK(env, !st_pair_exists(&p, 1, ABANDONED_TMP));
	ST_CHECK(env, st_pair_exists(&p, 1, RECENT_TMP));
	ST_CHECK(env, !st_pair_exists(&p, 0, RECENT_TMP));
out:
	st_pair_cleanup(env, &p);
	return ST_PASS;
}

/*
 * One peer is down while both sides create, edit, delete and rename; it
 * comes back and both converge with every change kept and nothing deleted
 * coming back. Twice: b is down, then a.
 */
int st_sync_offline(struct st_env *env)
{
	struct st_pair p;
	char rel[64], rel2[64];
	int64_t took;

	if (st_pair_start(env, &p, "", START_MS) < 0) {
		ST_CHECK(env, !"the pair started and became idle");
		goto out;
	}
	for (int down = 1; down >= 0 && !env->failures; down--) {
		int up = 1 - down;
		const char *d = down ? "r1" : "r2";
		bool ok = true;

		ok &= mk(&p, up, d) == 0;
		for (int i = 1; i <= 6; i++) {
			char text[64];
			snprintf(rel, sizeof(rel), "%s/f%d", d, i);
			snprintf(text, sizeof(text), "file %d as first made\n", i);
			ok &= wr(&p, up, rel, text) == 0;
		}
		snprintf(rel, sizeof(rel), "%s/dd", d);
		ok &= mk(&p, up, rel) == 0;
		snprintf(rel, sizeof(rel), "%s/dd/x", d);
		ok &= wr(&p, up, rel, "x in dd\n") == 0;
		ST_CHECK(env, ok);
		took = st_wait_converged(env, &p, NULL, 0, CONVERGE_MS);
		ST_CHECK(env, took >= 0);
		ST_CHECK(env, st_pair_down(env, &p, down) == 0);

		/* the side that runs */
		snprintf(rel, sizeof(rel), "%s/f1", d);
		ok &= wr(&p, up, rel, "f1 edited on the side that ran\n") == 0;
		snprintf(rel, sizeof(rel), "%s/f2", d);
		ok &= st_pair_rm(&p, up, rel) == 0;
		snprintf(rel, sizeof(rel), "%s/f6", d);
		ok &= st_pair_append(&p, up, rel, "appended while the other was down\n") == 0;
		snprintf(rel, sizeof(rel), "%s/up-new", d);
		ok &= wr(&p, up, rel, "made while the other was down\n") == 0;
		snprintf(rel, sizeof(rel), "%s/up-dir", d);
		ok &= mk(&p, up, rel) == 0;
		/* the side that is down */
		snprintf(rel, sizeof(rel), "%s/f3", d);
		ok &= wr(&p, down, rel, "f3 edited while its daemon was down\n") == 0;
		snprintf(rel, sizeof(rel), "%s/f4", d);
		ok &= st_pair_rm(&p, down, rel) == 0;
		snprintf(rel, sizeof(rel), "%s/f5", d);
		snprintf(rel2, sizeof(rel2), "%s/f5-moved", d);
		{
			char from[ST_PATH_MAX], to[ST_PATH_MAX];
			ok &= st_pair_path(&p, down, rel, from) && st_pair_path(&p, down, rel2, to) &&
			      rename(from, to) == 0;
		}
		snprintf(rel, sizeof(rel), "%s/dd", d);
		ok &= st_pair_rm(&p, down, rel) == 0;
		snprintf(rel, sizeof(rel), "%s/down-new", d);
		ok &= wr(&p, down, rel, "made by the side that was down\n") == 0;
		ST_CHECK(env, ok);

		ST_CHECK(env, st_pair_up(env, &p, down) == 0);
		took = st_wait_converged(env, &p, NULL, 0, CONVERGE_MS);
		st_note(env, "%s came back; converged after %lld ms", st_side_name(down),
			(long long)took);
		ST_CHECK(env, took >= 0);
		snprintf(rel, sizeof(rel), "%s/f1", d);
		expect_file(env, &p, rel, "f1 edited on the side that ran\n");
		snprintf(rel, sizeof(rel), "%s/f2", d);
		expect_absent(env, &p, rel);
		snprintf(rel, sizeof(rel), "%s/f3", d);
		expect_file(env, &p, rel, "f3 edited while its daemon was down\n");
		snprintf(rel, sizeof(rel), "%s/f4", d);
		expect_absent(env, &p, rel);
		snprintf(rel, sizeof(rel), "%s/f5", d);
		expect_absent(env, &p, rel);
		expect_file(env, &p, rel2, "file 5 as first made\n");
		snprintf(rel, sizeof(rel), "%s/f6", d);
		expect_file(env, &p, rel,
			    "file 6 as first made\nappended while the other was down\n");
		snprintf(rel, sizeof(rel), "%s/dd", d);
		expect_absent(env, &p, rel);
		snprintf(rel, sizeof(rel), "%s/up-new", d);
		expect_file(env, &p, rel, "made while the other was down\n");
		snprintf(rel, sizeof(rel), "%s/down-new", d);
		expect_file(env, &p, rel, "made by the side that was down\n");
		snprintf(rel, sizeof(rel), "%s/up-dir", d);
		ST_CHECK(env, st_pair_exists(&p, 0, rel) && st_pair_exists(&p, 1, rel));
		for (int s = 0; s < 2; s++)
			ST_CHECK(env, st_pair_conflicts_all(&p, s) == 0);
	}
out:
	st_pair_cleanup(env, &p);
	return env->skip_reason[0] ? ST_SKIP : ST_PASS;
}

#define RENAME_FILES 300	 /* the slow suite's sync-rename-dir-1000: 1000 */
#define RENAME_FILES_BIG 1000
#define RENAME_FILE_SIZE 1024
#define RENAME_RESENT_MAX 4096

/* A directory of files renamed, both ways: no content is sent again, and
 * the old name is gone on the other side. */
static void rename_dir(struct st_env *env, int files)
{
	static const char *const names[3] = { "many", "moved", "back" };
	struct st_pair p;
	char rel[64], path[ST_PATH_MAX];
	int64_t took;
	bool ok = true;

	if (st_pair_start(env, &p, "", START_MS) < 0) {
		ST_CHECK(env, !"the pair started and became idle");
		goto out;
	}
	ok &= mk(&p, 0, names[0]) == 0;
	for (int i = 0; ok && i < files; i++) {
		snprintf(rel, sizeof(rel), "%s/f%04d", names[0], i);
		ok &= st_pair_path(&p, 0, rel, path) &&
		      st_write_random(path, 1000 + (uint64_t)i, RENAME_FILE_SIZE, NULL) == 0;
	}
	if (!ok) {
		ST_CHECK(env, !"the files could be written");
		goto out;
	}
	/* slow under sanitizers: leave 30 s for the renames */
	took = st_wait_converged(env, &p, NULL, 0,
				 st_left_ms(env) > 40000 ? (unsigned)st_left_ms(env) - 30000 : 10000);
	st_note(env, "%d new files of %d bytes reached b in %lld ms", files,
		RENAME_FILE_SIZE, (long long)took);
	if (took < 0) {
		ST_CHECK(env, !"the new files converged");
		goto out;
	}
	for (int from = 0; from < 2; from++) {
		int to = 1 - from;
		json_t *st0 = st_pair_status(env, &p, to), *st1;
		int64_t r0 = st_jint(st0, "bytes_received", -1), r1;
		char src[ST_PATH_MAX], dst[ST_PATH_MAX];
		struct st_expect exp = { .from = from, .prefix = "" };

		json_decref(st0);
		ST_CHECK(env, r0 >= files * RENAME_FILE_SIZE * (from == 0));
		ok = st_pair_path(&p, from, names[from], src) &&
		     st_pair_path(&p, from, names[from + 1], dst) && rename(src, dst) == 0;
		if (!ok) {
			ST_CHECK(env, !"the directory could be renamed");
			break;
		}
		exp.want = st_pair_snapshot(env, &p, from);
		took = st_wait_converged(env, &p, &exp, 1, CONVERGE_MS);
		st_tree_free(exp.want);
		st1 = st_pair_status(env, &p, to);
		r1 = st_jint(st1, "bytes_received", -1);
		json_decref(st1);
		st_note(env, "rename %s -> %s on %s: seen on %s after %llu ms, idle after %lld ms, "
			"%s received %lld content bytes for it",
			names[from], names[from + 1], st_side_name(from), st_side_name(to),
			(unsigned long long)exp.reached_ms, (long long)took, st_side_name(to),
			(long long)(r1 - r0));
		/* how soon it was seen is noted, not checked: a timing belongs
		 * in tests/bench (it failed here at load 11-20, never quiet) */
		ST_CHECK(env, took >= 0);
		ST_CHECK(env, r0 >= 0 && r1 >= r0 && r1 - r0 < RENAME_RESENT_MAX);
		ST_CHECK(env, !st_pair_exists(&p, to, names[from]));
	}
out:
	st_pair_cleanup(env, &p);
}

int st_sync_rename_dir(struct st_env *env)
{
	rename_dir(env, RENAME_FILES);
	return ST_PASS;
}

int st_sync_rename_dir_big(struct st_env *env)
{
	rename_dir(env, RENAME_FILES_BIG);
	return ST_PASS;
}
