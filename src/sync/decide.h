/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_DECIDE_H
#define TANDEM_SYNC_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

#include "sync/index.h"
#include "sync/rentry.h"
#include "sync/vv.h"

/*
 * What to do with one of the peer's entries against ours: the version
 * vectors decide (vv.h); two concurrent versions go to conflict.h, which
 * decides the same way on both sides, but for a directory against a file
 * or symlink: the directory keeps the name, the file goes to its copy.
 * Pure: no I/O, no state; the applier (apply.c) does what it says.
 */
enum decide_verdict {
	DECIDE_IGNORE = 0,    /* ours is newer or the same: nothing to do */
	DECIDE_ACCEPT,	      /* apply theirs (a deletion, a dir, a link, content to fetch) */
	DECIDE_KEEP_LOCAL,    /* ours wins a conflict: store it with a vector dominating theirs */
	DECIDE_LOCAL_LOSES,   /* two edits, ours loses: move it to its conflict name, then accept */
	DECIDE_MERGE_ONLY,    /* the same outcome, ours keeps its metadata: merge the vectors */
	DECIDE_MERGE_DELETED, /* deleted on both sides: merge the vectors of the tombstones */
};

/*
 * The verdict for the peer's entry remote against our entry local (NULL:
 * we do not know the path at all). self is our device id, peer the peer's:
 * the conflict copy goes to the device that made the losing edit. Both
 * peers reach the same outcome for the same two versions: where one side
 * gets DECIDE_LOCAL_LOSES, the other gets DECIDE_IGNORE.
 */
enum decide_verdict decide(const struct index_entry *local, const struct rentry *remote,
			   const uint8_t self[static VV_DEVICE_LEN],
			   const uint8_t peer[static VV_DEVICE_LEN]);

/*
 * decide() for a local version that may be a placeholder whose content is
 * not all here (lazy mode; partial: lazy_partial() of its path and hash).
 * Such a version holds no write of content, at most a metadata change (a
 * chmod, a touch) of content the peer sent: when it loses a conflict to
 * the peer's edit, the peer's version is taken without a conflict copy
 * (DECIDE_ACCEPT; the copy would be a placeholder nobody can serve, and
 * the metadata change is lost). The peer, winning, keeps its own version:
 * the same outcome on both sides. Otherwise as decide(): where it wins, or
 * against a deletion, the peer cannot tell it is only metadata, and takes
 * it; its request then drops the placeholder (docs/SYNC.md section 4).
 * decide() is decide_partial() with partial false.
 */
enum decide_verdict decide_partial(const struct index_entry *local, const struct rentry *remote,
				   const uint8_t self[static VV_DEVICE_LEN],
				   const uint8_t peer[static VV_DEVICE_LEN], bool partial);

/* The verdict's name, for logs and tests. */
const char *decide_verdict_name(enum decide_verdict v);

#endif
