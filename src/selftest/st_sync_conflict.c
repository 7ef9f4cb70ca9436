/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sync scenarios: conflicts, and a share root that goes away. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "st_sync.h"

#define START_MS 10000
#define CONVERGE_MS 15000
#define QUIET_MS 1000 /* how long nothing may happen after the root went away */

static int wr(const struct st_pair *p, int side, const char *rel, const char *text)
{
	return st_pair_write(p, side, rel, text, strlen(text));
}

static bool has(const struct st_pair *p, int side, const char *rel, const char *text)
{
	char buf[4096];
	ssize_t n = st_pair_read(p, side, rel, buf, sizeof(buf));

	return n >= 0 && (size_t)n == strlen(text) && !memcmp(buf, text, (size_t)n);
}

static void expect_file(struct st_env *env, const struct st_pair *p, const char *rel,
			const char *text)
{
	for (int s = 0; s < 2; s++)
		if (!has(p, s, rel, text))
			st_fail(env, __FILE__, __LINE__, "%s on %s does not hold \"%.60s\"", rel,
				st_side_name(s), text);
}

/*
 * rel has one conflict copy on each side (the same name: the trees are
 * equal), named after the loser's mtime; winner's text keeps the name.
 */
static void expect_conflict(struct st_env *env, const struct st_pair *p, const char *rel,
			    const char *winner, const char *loser, time_t loser_mtime)
{
	char copy[ST_PATH_MAX], stamp[32];
	struct tm tm;

	gmtime_r(&loser_mtime, &tm);
	strftime(stamp, sizeof(stamp), "-%Y%m%d-%H%M%S-", &tm);
	for (int s = 0; s < 2; s++) {
		int n = st_pair_conflicts(p, s, rel, copy);
		if (n != 1) {
			st_fail(env, __FILE__, __LINE__, "%s holds %d conflict copies of %s, not 1",
				st_side_name(s), n, rel);
			continue;
		}
		if (s == 0)
			st_note(env, "%s: the conflict copy is %s", rel, copy);
		if (!has(p, s, rel, winner) || !has(p, s, copy, loser))
			st_fail(env, __FILE__, __LINE__,
				"on %s, %s does not hold the newer edit or %s the older one",
				st_side_name(s), rel, copy);
		if (!strstr(copy, stamp))
			st_fail(env, __FILE__, __LINE__, "%s is not named after the time %s",
				copy, stamp);
	}
}

static void expect_no_conflict(struct st_env *env, const struct st_pair *p, const char *rel)
{
	char copy[ST_PATH_MAX];

	for (int s = 0; s < 2; s++) {
		int n = st_pair_conflicts(p, s, rel, copy);
		if (n != 0)
			st_fail(env, __FILE__, __LINE__, "%s holds a conflict copy of %s: %s",
				st_side_name(s), rel, copy);
	}
}

static int64_t conflicts_of(struct st_env *env, const struct st_pair *p, int side)
{
	json_t *st = st_pair_status(env, p, side);
	int64_t n = st_jint(st, "conflicts", -1);

	json_decref(st);
	return n;
}

/*
 * One round: down's daemon stops, both sides change the same files, down
 * comes back. c1: both edit, down's edit is newer; c2: both edit, up's is
 * newer; same: both make the same edit; ed1: up edits, down deletes; ed2:
 * up deletes, down edits.
 */
static void conflict_round(struct st_env *env, struct st_pair *p, int down)
{
	static const char *const names[] = { "c1.txt", "c2.txt", "same.txt", "ed1.txt",
					      "ed2.txt" };
	int up = 1 - down;
	char d[8], rel[5][32], path[ST_PATH_MAX];
	time_t t = time(NULL) - 100;
	int64_t c0;
	bool ok = true;

	snprintf(d, sizeof(d), "r%d", down);
	ok &= st_pair_path(p, up, d, path) && mkdir(path, 0755) == 0;
	for (int i = 0; i < 5; i++) {
		snprintf(rel[i], sizeof(rel[i]), "%s/%s", d, names[i]);
		ok &= wr(p, up, rel[i], "as it was at first\n") == 0;
	}
	ST_CHECK(env, ok);
	ST_CHECK(env, st_wait_converged(env, p, NULL, 0, CONVERGE_MS) >= 0);
	c0 = conflicts_of(env, p, up);
	ST_CHECK(env, st_pair_down(env, p, down) == 0);

	ok &= wr(p, up, rel[0], "c1 by the side that ran, older\n") == 0;
	ok &= st_pair_set_mtime(p, up, rel[0], t + 10, 0) == 0;
	ok &= wr(p, down, rel[0], "c1 by the side that was down, newer\n") == 0;
	ok &= st_pair_set_mtime(p, down, rel[0], t + 20, 0) == 0;

	ok &= wr(p, up, rel[1], "c2 by the side that ran, newer\n") == 0;
	ok &= st_pair_set_mtime(p, up, rel[1], t + 20, 0) == 0;
	ok &= wr(p, down, rel[1], "c2 by the side that was down, older\n") == 0;
	ok &= st_pair_set_mtime(p, down, rel[1], t + 10, 0) == 0;

	ok &= wr(p, up, rel[2], "the same edit on both sides\n") == 0;
	ok &= st_pair_set_mtime(p, up, rel[2], t + 10, 0) == 0;
	ok &= wr(p, down, rel[2], "the same edit on both sides\n") == 0;
	ok &= st_pair_set_mtime(p, down, rel[2], t + 20, 0) == 0;

	ok &= wr(p, up, rel[3], "ed1 edited by the side that ran\n") == 0;
	ok &= st_pair_rm(p, down, rel[3]) == 0;
	ok &= st_pair_rm(p, up, rel[4]) == 0;
	ok &= wr(p, down, rel[4], "ed2 edited by the side that was down\n") == 0;
	ST_CHECK(env, ok);

	ST_CHECK(env, st_pair_up(env, p, down) == 0);
	int64_t took = st_wait_converged(env, p, NULL, 0, CONVERGE_MS);
	st_note(env, "round with %s down: converged after %lld ms", st_side_name(down),
		(long long)took);
	ST_CHECK(env, took >= 0);
	expect_conflict(env, p, rel[0], "c1 by the side that was down, newer\n",
			"c1 by the side that ran, older\n", t + 10);
	expect_conflict(env, p, rel[1], "c2 by the side that ran, newer\n",
			"c2 by the side that was down, older\n", t + 10);
	expect_file(env, p, rel[2], "the same edit on both sides\n");
	expect_no_conflict(env, p, rel[2]);
	expect_file(env, p, rel[3], "ed1 edited by the side that ran\n");
	expect_no_conflict(env, p, rel[3]);
	expect_file(env, p, rel[4], "ed2 edited by the side that was down\n");
	expect_no_conflict(env, p, rel[4]);
	int64_t cu = conflicts_of(env, p, up), cd = conflicts_of(env, p, down);
	st_note(env, "status conflicts: %s %lld -> %lld, %s (restarted) %lld", st_side_name(up),
		(long long)c0, (long long)cu, st_side_name(down), (long long)cd);
	/* a side may make a copy itself or download the one its peer made: between
	 * them the two sides made at least the two copies, each at least one */
	ST_CHECK(env, c0 >= 0 && cu > c0 && cd >= 1 && cu - c0 + cd >= 2);
}

/*
 * Both daemons frozen, both sides edit, both thawed: a live race. A mount
 * side is not frozen (its own files would hang with it): its edit is sent
 * at once, and waits unread for the frozen plain-dir side, which makes its
 * own edit before it can see it.
 */
static void conflict_live(struct st_env *env, struct st_pair *p)
{
	static const char *const text[2] = { "live edit by a\n", "live edit by b, longer\n" };
	char copy[ST_PATH_MAX];

	ST_CHECK(env, wr(p, 0, "live.txt", "before the race\n") == 0);
	ST_CHECK(env, st_wait_converged(env, p, NULL, 0, CONVERGE_MS) >= 0);
	for (int s = 0; s < 2; s++)
		if (p->kind[s] == ST_SIDE_DIR)
			kill(p->peer[s].pid, SIGSTOP);
	for (int s = 0; s < 2; s++)
		ST_CHECK(env, wr(p, s, "live.txt", text[s]) == 0);
	for (int s = 0; s < 2; s++)
		if (p->kind[s] == ST_SIDE_DIR)
			kill(p->peer[s].pid, SIGCONT);
	int64_t took = st_wait_converged(env, p, NULL, 0, CONVERGE_MS);
	st_note(env, "live race: converged after %lld ms", (long long)took);
	ST_CHECK(env, took >= 0);
	for (int s = 0; s < 2; s++) {
		int n = st_pair_conflicts(p, s, "live.txt", copy);
		ST_CHECK(env, n == 1);
		if (n != 1)
			continue;
		ST_CHECK(env, (has(p, s, "live.txt", text[0]) && has(p, s, copy, text[1])) ||
				      (has(p, s, "live.txt", text[1]) && has(p, s, copy, text[0])));
	}
}

int st_sync_conflict(struct st_env *env)
{
	struct st_pair p;

	if (st_pair_start(env, &p, "", START_MS) < 0) {
		ST_CHECK(env, !"the pair started and became idle");
		goto out;
	}
	for (int down = 1; down >= 0 && !env->failures; down--)
		conflict_round(env, &p, down);
	if (!env->failures)
		conflict_live(env, &p);
	for (int s = 0; s < 2 && !env->failures; s++)
		ST_CHECK(env, st_pair_conflicts_all(&p, s) == 5);
out:
	st_pair_cleanup(env, &p);
	return env->skip_reason[0] ? ST_SKIP : ST_PASS;
}

static bool is_stopped(json_t *st, const void *arg)
{
	const char *err = json_string_value(json_object_get(st, "sync_error"));

	(void)arg;
	return st_jstr_is(st, "sync_state", "stopped") && err && err[0];
}

static const char *const keep[] = { "keep-1", "keep-2", "kd/keep-3" };

/*
 * side's share root goes (gone: removed; else replaced by an empty dir):
 * its daemon stops syncing with an error naming the folder and still
 * answers; the other side keeps every file, and nothing is written where
 * the root was.
 */
static void root_case(struct st_env *env, const char *tag, int side, bool gone)
{
	struct st_pair p;
	char root[ST_PATH_MAX], old[ST_PATH_MAX + 8];
	const char *base;
	json_t *st;
	bool ok = true;

	if (st_pair_start(env, &p, tag, START_MS) < 0) {
		ST_CHECK(env, !"the pair started and became idle");
		goto out;
	}
	if (p.kind[side] != ST_SIDE_DIR) {
		/* a mount point cannot be removed or replaced under its mount */
		st_note(env, "case %s left out: side %s is a mount (--no-fuse runs it)",
			gone ? "root removed" : "root replaced", st_side_name(side));
		goto out;
	}
	p.allow_errors[side] = true;
	ok &= st_pair_path(&p, 1 - side, "kd", root) && mkdir(root, 0755) == 0;
	for (size_t i = 0; i < 3; i++)
		ok &= wr(&p, 1 - side, keep[i], keep[i]) == 0;
	ST_CHECK(env, ok);
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, CONVERGE_MS) >= 0);

	st_pair_path(&p, side, "", root);
	base = strrchr(root, '/') + 1;
	if (gone) {
		/* as rm -rf does: files first, the marker and the root last; the
		 * daemon scans in between (the deletion must be held, not sent) */
		ST_CHECK(env, st_pair_rm(&p, side, keep[2]) == 0 &&
				      st_pair_rm(&p, side, keep[0]) == 0);
		st_sleep_ms(env, 500);
		ST_CHECK(env, st_pair_rm(&p, side, "") == 0);
	} else {
		snprintf(old, sizeof(old), "%s.old", root);
		ST_CHECK(env, rename(root, old) == 0 && mkdir(root, 0700) == 0);
	}
	st = st_pair_status_wait(env, &p, side, is_stopped, NULL, 5000, "stopped with an error");
	ST_CHECK(env, st != NULL);
	if (st) {
		const char *err = json_string_value(json_object_get(st, "sync_error"));
		st_note(env, "%s's sync_error: %s", st_side_name(side), err);
		ST_CHECK(env, strstr(err, base) != NULL);
	}
	json_decref(st);

	/* the other side goes on; nothing of it may be lost, nothing written here */
	ok &= wr(&p, 1 - side, "made-after", "made after the root went away\n") == 0;
	for (uint64_t end = st_now_ms() + QUIET_MS; ok && st_now_ms() < end;) {
		struct st_tree *t = st_pair_tree(&p, side, NULL);
		for (size_t i = 0; i < 3; i++)
			ok &= has(&p, 1 - side, keep[i], keep[i]);
		ok &= gone ? access(root, F_OK) < 0 : t && st_tree_count(t) == 0;
		st_tree_free(t);
		if (!ok)
			st_note(env, "the other side lost a file, or %s's old root was written to",
				st_side_name(side));
		st_sleep_ms(env, 100);
	}
	ST_CHECK(env, ok);
	for (int s = 0; s < 2; s++) {
		st = st_pair_status(env, &p, s);
		ST_CHECK(env, st != NULL);
		if (s == side)
			ST_CHECK(env, is_stopped(st, NULL));
		json_decref(st);
	}
	ST_CHECK(env, st_pair_down(env, &p, side) == 0);
out:
	st_pair_cleanup(env, &p);
}

int st_sync_root_gone(struct st_env *env)
{
	root_case(env, "", 1, true);
	if (!env->failures && !env->skip_reason[0])
		root_case(env, "2", 0, false);
	return env->skip_reason[0] ? ST_SKIP : ST_PASS;
}
