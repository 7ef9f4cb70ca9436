/* SPDX-License-Identifier: GPL-2.0-or-later */
/* decide(): the version decision of the applier, without a disk. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sync/decide.h"
#include "tap.h"

static const uint8_t dev_a[VV_DEVICE_LEN] = {0x0a, 1, 1, 1, 1, 1, 1, 1};
static const uint8_t dev_b[VV_DEVICE_LEN] = {0x0b, 2, 2, 2, 2, 2, 2, 2};

#define T0 1704164645000000000LL

/* A vector of counters ca for a and cb for b (0: absent). */
static struct vv vec(uint64_t ca, uint64_t cb)
{
	struct vv v;

	vv_init(&v);
	if (ca) {
		memcpy(v.e[v.n].device, dev_a, VV_DEVICE_LEN);
		v.e[v.n++].counter = ca;
	}
	if (cb) {
		memcpy(v.e[v.n].device, dev_b, VV_DEVICE_LEN);
		v.e[v.n++].counter = cb;
	}
	return v;
}

/* An index entry of ours (heap: it holds path and target arrays). */
static struct index_entry *local(enum index_type t, bool deleted, uint8_t h, int64_t mtime,
				 struct vv v)
{
	struct index_entry *x = calloc(1, sizeof(*x));

	if (!x)
		abort();
	memcpy(x->path, "f", 2);
	x->path_len = 1;
	x->type = t;
	x->deleted = deleted;
	x->size = t == INDEX_DIR ? 0 : 10;
	x->mtime_ns = mtime;
	x->has_hash = t != INDEX_DIR;
	memset(x->hash, h, INDEX_HASH_LEN);
	x->vv = v;
	return x;
}

/* x as the other side receives it. */
static struct rentry remote_of(const struct index_entry *x)
{
	struct rentry r;

	memset(&r, 0, sizeof(r));
	r.path = (char *)"f";
	r.path_len = 1;
	r.kind = (uint8_t)x->type;
	r.deleted = x->deleted;
	r.size = x->size;
	r.mtime_ns = x->mtime_ns;
	memcpy(r.hash, x->hash, SYNC_HASH_LEN);
	r.vv = x->vv;
	return r;
}

/* What a (ours: la) and b (ours: lb) each decide about the other's entry. */
static void both(const struct index_entry *la, const struct index_entry *lb,
		 enum decide_verdict *ret_a, enum decide_verdict *ret_b)
{
	struct rentry ra = remote_of(la), rb = remote_of(lb);

	*ret_a = decide(la, &rb, dev_a, dev_b);
	*ret_b = decide(lb, &ra, dev_b, dev_a);
	printf("#   a: %s, b: %s\n", decide_verdict_name(*ret_a), decide_verdict_name(*ret_b));
}

static bool one_each(enum decide_verdict x, enum decide_verdict y, enum decide_verdict p,
		     enum decide_verdict q)
{
	return (x == p && y == q) || (x == q && y == p);
}

TEST(unknown_path_is_accepted)
{
	struct index_entry *l = local(INDEX_FILE, false, 1, T0, vec(0, 1));
	struct rentry r = remote_of(l);

	CHECK_INT_EQ(decide(NULL, &r, dev_a, dev_b), DECIDE_ACCEPT);
	free(l);
}

TEST(vectors_order_decides)
{
	struct index_entry *ours = local(INDEX_FILE, false, 1, T0, vec(1, 1));
	struct index_entry *newer = local(INDEX_FILE, false, 2, T0, vec(1, 2));
	struct index_entry *older = local(INDEX_FILE, false, 3, T0, vec(1, 0));
	struct rentry rn = remote_of(newer), ro = remote_of(older), re = remote_of(ours);

	CHECK_INT_EQ(decide(ours, &rn, dev_a, dev_b), DECIDE_ACCEPT);
	CHECK_INT_EQ(decide(ours, &ro, dev_a, dev_b), DECIDE_IGNORE);
	CHECK_INT_EQ(decide(ours, &re, dev_a, dev_b), DECIDE_IGNORE);
	free(ours);
	free(newer);
	free(older);
}

TEST(deleted_on_both_sides_merges_tombstones)
{
	struct index_entry *la = local(INDEX_FILE, true, 0, T0, vec(2, 1));
	struct index_entry *lb = local(INDEX_FILE, true, 0, T0, vec(1, 2));
	enum decide_verdict va, vb;

	both(la, lb, &va, &vb);
	CHECK_INT_EQ(va, DECIDE_MERGE_DELETED);
	CHECK_INT_EQ(vb, DECIDE_MERGE_DELETED);
	free(la);
	free(lb);
}

/* Two concurrent live directories are the same, and the newer metadata (b's
 * here) wins on both sides, so their modes cannot stay apart (the
 * simulation's bug 5). */
TEST(concurrent_dirs_merge)
{
	struct index_entry *la = local(INDEX_DIR, false, 0, T0, vec(2, 1));
	struct index_entry *lb = local(INDEX_DIR, false, 0, T0 + 5, vec(1, 2));
	enum decide_verdict va, vb;

	both(la, lb, &va, &vb);
	CHECK_INT_EQ(va, DECIDE_ACCEPT);
	CHECK_INT_EQ(vb, DECIDE_MERGE_ONLY);
	free(la);
	free(lb);
}

TEST(concurrent_edits_one_conflict_copy)
{
	struct index_entry *la = local(INDEX_FILE, false, 1, T0, vec(2, 1));
	struct index_entry *lb = local(INDEX_FILE, false, 2, T0 + 1000, vec(1, 2));
	enum decide_verdict va, vb;

	both(la, lb, &va, &vb);
	/* exactly one side moves its edit to a conflict copy; the other keeps its own */
	CHECK(one_each(va, vb, DECIDE_LOCAL_LOSES, DECIDE_IGNORE));
	free(la);
	free(lb);
}

TEST(edit_wins_over_delete)
{
	struct index_entry *la = local(INDEX_FILE, false, 1, T0, vec(2, 1));
	struct index_entry *lb = local(INDEX_FILE, true, 0, T0, vec(1, 2));
	enum decide_verdict va, vb;

	both(la, lb, &va, &vb);
	CHECK_INT_EQ(va, DECIDE_KEEP_LOCAL); /* a's edit stays and dominates */
	CHECK_INT_EQ(vb, DECIDE_ACCEPT);     /* b takes the edit back */
	free(la);
	free(lb);
}

TEST(identical_content_is_no_conflict)
{
	struct index_entry *la = local(INDEX_FILE, false, 7, T0, vec(2, 1));
	struct index_entry *lb = local(INDEX_FILE, false, 7, T0, vec(1, 2));
	enum decide_verdict va, vb;

	both(la, lb, &va, &vb);
	CHECK(one_each(va, vb, DECIDE_ACCEPT, DECIDE_MERGE_ONLY));
	free(la);
	free(lb);
}

TEST(file_and_link_never_identical)
{
	struct index_entry *la = local(INDEX_FILE, false, 7, T0, vec(2, 1));
	struct index_entry *lb = local(INDEX_SYMLINK, false, 7, T0, vec(1, 2));
	enum decide_verdict va, vb;

	both(la, lb, &va, &vb);
	CHECK(one_each(va, vb, DECIDE_LOCAL_LOSES, DECIDE_IGNORE));
	free(la);
	free(lb);
}

/*
 * A file (or symlink) and a directory made concurrently at one path: the
 * directory keeps the name whatever the mtimes say (its children's paths
 * depend on it), and only the side holding the file moves it to its
 * conflict copy (the simulation's bug 6: a directory that lost moved away,
 * and what it held that the peer had not seen stayed behind).
 */
TEST(directory_wins_over_file)
{
	for (int t = 0; t < 2; t++) {
		enum index_type other = t ? INDEX_SYMLINK : INDEX_FILE;
		/* the newer mtime on either side: the directory wins both ways */
		for (int newer = 0; newer < 2; newer++) {
			struct index_entry *la = local(INDEX_DIR, false, 0, newer ? T0 + 9 : T0, vec(2, 1));
			struct index_entry *lb = local(other, false, 3, newer ? T0 : T0 + 9, vec(1, 2));
			enum decide_verdict va, vb;

			both(la, lb, &va, &vb);
			CHECK_INT_EQ(va, DECIDE_IGNORE);      /* a's directory stays as it is */
			CHECK_INT_EQ(vb, DECIDE_LOCAL_LOSES); /* b's file goes to its copy */
			free(la);
			free(lb);
		}
	}
}

/*
 * Our version loses a conflict, but we never wrote it: no counter of ours,
 * the peer's own version (docs/SIM.md bug 9, seed 23 --lazy --ops 24).
 * The peer sends another version for the path only after taking it over
 * this one, in a conflict it lost, so it keeps it as its own conflict
 * copy: here theirs is simply taken. A second copy of the same version
 * (under our device's name) was a duplicate, and in lazy mode, where ours
 * is a placeholder, one nobody could serve.
 */
TEST(peer_version_losing_is_no_second_copy)
{
	struct index_entry *theirs = local(INDEX_FILE, false, 1, T0, vec(2, 0)); /* a wrote it */
	struct index_entry *ours = local(INDEX_FILE, false, 1, T0, vec(3, 1));	/* b edited it */
	struct index_entry *winner = local(INDEX_FILE, false, 2, T0 + 1000, vec(0, 4));
	struct rentry rw = remote_of(winner);

	/* b holds a's version: the winner (from a) is taken, no copy */
	CHECK_INT_EQ(decide(theirs, &rw, dev_b, dev_a), DECIDE_ACCEPT);
	/* a holds its own version: a keeps it as the conflict copy */
	CHECK_INT_EQ(decide(theirs, &rw, dev_a, dev_b), DECIDE_LOCAL_LOSES);
	/* b changed a's version: b's edit is kept as the copy */
	CHECK_INT_EQ(decide(ours, &rw, dev_b, dev_a), DECIDE_LOCAL_LOSES);
	free(theirs);
	free(ours);
	free(winner);
}

/*
 * Lazy mode (sim bug 17): b holds a's file as a placeholder whose content
 * is not all here and changes only its metadata (chmod, touch), while a
 * writes new content. b's version holds no write of content; losing, its
 * conflict copy would be a placeholder of content a has overwritten, that
 * nobody can serve. b takes a's version without a copy; a, winning, keeps
 * its own (the same outcome on both sides). Where b's version wins (a
 * newer touch), a cannot tell it is only metadata: today's rules stay (a
 * keeps its write as its copy and asks b, which drops the placeholder:
 * bug 8), as they do against a deletion (the edit wins, a asks, b drops it).
 */
TEST(partial_placeholder_losing_is_no_copy)
{
	struct index_entry *ph = local(INDEX_FILE, false, 1, T0, vec(1, 2));	 /* b's chmod */
	struct index_entry *edit = local(INDEX_FILE, false, 2, T0 + 1000, vec(2, 0)); /* a's */
	struct index_entry *old = local(INDEX_FILE, false, 2, T0 - 1000, vec(2, 0));
	struct index_entry *gone = local(INDEX_FILE, true, 0, T0 + 1000, vec(2, 0));
	struct rentry r_edit = remote_of(edit), r_old = remote_of(old), r_gone = remote_of(gone);
	struct rentry r_ph = remote_of(ph);

	/* b's version loses: taken without a copy, and a keeps its own */
	CHECK_INT_EQ(decide_partial(ph, &r_edit, dev_b, dev_a, true), DECIDE_ACCEPT);
	CHECK_INT_EQ(decide(edit, &r_ph, dev_a, dev_b), DECIDE_IGNORE);
	/* a complete file (or content b wrote) keeps its copy */
	CHECK_INT_EQ(decide_partial(ph, &r_edit, dev_b, dev_a, false), DECIDE_LOCAL_LOSES);
	CHECK_INT_EQ(decide(ph, &r_edit, dev_b, dev_a), DECIDE_LOCAL_LOSES);
	/* b's version wins: unchanged on both sides */
	CHECK_INT_EQ(decide_partial(ph, &r_old, dev_b, dev_a, true), DECIDE_IGNORE);
	CHECK_INT_EQ(decide(old, &r_ph, dev_a, dev_b), DECIDE_LOCAL_LOSES);
	/* against a's deletion: unchanged (the edit wins on both sides) */
	CHECK_INT_EQ(decide_partial(ph, &r_gone, dev_b, dev_a, true), DECIDE_KEEP_LOCAL);
	CHECK_INT_EQ(decide(gone, &r_ph, dev_a, dev_b), DECIDE_ACCEPT);
	/* not concurrent: the vectors decide as ever */
	CHECK_INT_EQ(decide_partial(ph, &r_ph, dev_b, dev_a, true), DECIDE_IGNORE);
	free(ph);
	free(edit);
	free(old);
	free(gone);
}

/*
 * Lazy mode (long-run seed 2000177): b's user moved a placeholder (a's
 * conflict copy) to f, a new file of b's there (only b's counter), while
 * a wrote other content at f. b's version is no metadata change of what a
 * overwrote: a never had that content at f, it holds it under the old
 * name, whose deletion b sends later. Taken without a copy, that content
 * was lost with the old name: b's version loses with its copy (a
 * placeholder of what a still holds), as a complete file's does; a keeps
 * its own.
 */
TEST(partial_placeholder_moved_here_loses_with_copy)
{
	struct index_entry *moved = local(INDEX_FILE, false, 1, T0, vec(0, 12));
	struct index_entry *edit = local(INDEX_FILE, false, 2, T0 + 1000, vec(11, 0));
	struct rentry r_edit = remote_of(edit), r_moved = remote_of(moved);

	CHECK_INT_EQ(decide_partial(moved, &r_edit, dev_b, dev_a, true), DECIDE_LOCAL_LOSES);
	CHECK_INT_EQ(decide(edit, &r_moved, dev_a, dev_b), DECIDE_IGNORE);
	free(moved);
	free(edit);
}

int main(void)
{
	RUN(unknown_path_is_accepted);
	RUN(vectors_order_decides);
	RUN(deleted_on_both_sides_merges_tombstones);
	RUN(concurrent_dirs_merge);
	RUN(concurrent_edits_one_conflict_copy);
	RUN(edit_wins_over_delete);
	RUN(identical_content_is_no_conflict);
	RUN(file_and_link_never_identical);
	RUN(directory_wins_over_file);
	RUN(peer_version_losing_is_no_second_copy);
	RUN(partial_placeholder_losing_is_no_copy);
	RUN(partial_placeholder_moved_here_loses_with_copy);
	return tap_done();
}
