/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The version decision (decide.h). */
#include <string.h>

#include "sync/conflict.h"
#include "sync/decide.h"

enum decide_verdict decide(const struct index_entry *l, const struct rentry *r,
			   const uint8_t self[static VV_DEVICE_LEN],
			   const uint8_t peer[static VV_DEVICE_LEN])
{
	return decide_partial(l, r, self, peer, false);
}

enum decide_verdict decide_partial(const struct index_entry *l, const struct rentry *r,
				   const uint8_t self[static VV_DEVICE_LEN],
				   const uint8_t peer[static VV_DEVICE_LEN], bool partial)
{
	struct conflict_version va, vb;
	struct index_entry rx;
	enum conflict_action a;
	unsigned w;

	if (!l)
		return DECIDE_ACCEPT;
	if (l->deleted && r->deleted)
		return DECIDE_MERGE_DELETED;
	switch (vv_compare(&r->vv, &l->vv)) {
	case VV_DOMINATES:
		return DECIDE_ACCEPT;
	case VV_EQUAL:
	case VV_DOMINATED:
		return DECIDE_IGNORE;
	case VV_CONCURRENT:
		break;
	}
	entry_to_version(l, self, &va);
	memset(&rx, 0, offsetof(struct index_entry, target));
	rx.mtime_ns = r->mtime_ns;
	rx.size = r->size;
	memcpy(rx.hash, r->hash, INDEX_HASH_LEN);
	rx.deleted = r->deleted;
	entry_to_version(&rx, peer, &vb);
	/* a directory has no content: two live directories are the same, and
	 * the newer metadata (its mode) wins, as for two identical files */
	if (r->kind == SYNC_KIND_DIR && l->type == INDEX_DIR && !r->deleted && !l->deleted) {
		memset(va.hash, 0, sizeof(va.hash));
		memset(vb.hash, 0, sizeof(vb.hash));
		va.size = vb.size = 0;
		if (conflict_decide(&va, &vb, &w) == CONFLICT_IDENTICAL && w == 1)
			return DECIDE_ACCEPT;
		return DECIDE_MERGE_ONLY;
	}
	/*
	 * A directory and a file or symlink made concurrently at one path:
	 * the directory keeps the name, whatever the mtimes say (its
	 * contents' paths depend on it; a file moves to a copy whole). Only
	 * the side holding the file moves it to its conflict copy; the side
	 * holding the directory changes nothing, so that the peer still sees
	 * it as concurrent.
	 */
	if ((r->kind == SYNC_KIND_DIR) != (l->type == INDEX_DIR) && !r->deleted && !l->deleted)
		return l->type == INDEX_DIR ? DECIDE_IGNORE : DECIDE_LOCAL_LOSES;
	if (r->kind != (uint8_t)l->type && !r->deleted && !l->deleted) {
		/* different kinds never compare as identical */
		va.hash[0] ^= 1;
	}
	a = conflict_decide(&va, &vb, &w);
	switch (a) {
	case CONFLICT_IDENTICAL:
		return w == 1 ? DECIDE_ACCEPT : DECIDE_MERGE_ONLY;
	case CONFLICT_EDIT_WINS:
		return w == 1 ? DECIDE_ACCEPT : DECIDE_KEEP_LOCAL;
	case CONFLICT_COPY:
		/*
		 * Ours wins: change nothing, and above all do not merge their
		 * vector into ours. The peer holds the losing edit and must still
		 * see our version as concurrent, so that it keeps its edit as the
		 * conflict copy before it takes ours.
		 */
		if (w == 0)
			return DECIDE_IGNORE;
		/*
		 * Ours loses. A version we never wrote (no counter of ours) is
		 * the peer's own: the peer sends another one for this path only
		 * after taking it over this one in a conflict it lost, and then
		 * keeps it as its conflict copy. Take theirs: a second copy of
		 * the same version was a duplicate, and in lazy mode (ours a
		 * placeholder) one nobody could serve.
		 */
		if (vv_get(&l->vv, self) == 0)
			return DECIDE_ACCEPT;
		/*
		 * Ours is a placeholder whose content is not all here: no write
		 * of content, only metadata (a chmod, a touch) of what the peer
		 * has just overwritten. Its copy would be a placeholder nobody
		 * can serve: take theirs, ours is lost (sim bug 17). Not so
		 * one with no counter of the peer's: no version the peer had
		 * here, but a placeholder the user moved here (a new file of
		 * ours): the peer holds that content under its old name, whose
		 * deletion we send later. Without its copy it is lost with
		 * that name (long-run seed 2000177).
		 */
		if (partial && vv_get(&l->vv, peer) != 0)
			return DECIDE_ACCEPT;
		return DECIDE_LOCAL_LOSES;
	}
	return DECIDE_IGNORE;
}

const char *decide_verdict_name(enum decide_verdict v)
{
	switch (v) {
	case DECIDE_IGNORE:
		return "ignore";
	case DECIDE_ACCEPT:
		return "accept";
	case DECIDE_KEEP_LOCAL:
		return "keep-local";
	case DECIDE_LOCAL_LOSES:
		return "local-loses";
	case DECIDE_MERGE_ONLY:
		return "merge-only";
	case DECIDE_MERGE_DELETED:
		return "merge-deleted";
	}
	return "?";
}
