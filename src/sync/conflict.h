/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_CONFLICT_H
#define TANDEM_SYNC_CONFLICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Conflict rules (PRODUCT.md §5), sans-IO.
 *
 * Design note. When both peers changed one path concurrently (the version
 * vectors say neither change saw the other), each peer runs
 * conflict_decide() on the same two versions, possibly in opposite order,
 * and must reach the same result without talking, so nothing in the
 * decision depends on which side is local or which arrived first:
 *
 *  - same content (equal hash and size, neither deleted) or both deleted:
 *    no conflict. The winner only picks whose metadata (mtime, mode) stays;
 *  - an edit against a deletion: the edit wins, the deletion is dropped
 *    (data is never lost by a delete that raced an edit);
 *  - two different edits: the winner keeps the name, the loser is kept
 *    beside it under conflict_name().
 *
 * The winner is the greater version in one total order: newer mtime, then
 * the larger device id (memcmp), then the larger content hash, then the
 * larger size, then an edit over a deletion (then the fields a deletion
 * ignores, so the order is total). Newer mtime first because the
 * user most likely expects the last save under the original name; the
 * other keys only make the order total, so two peers never both keep (or
 * both rename) their own version.
 *
 * Conflict names: "dir/base.sync-conflict-YYYYMMDD-HHMMSS-PEER.ext", the
 * Syncthing form. Only the last component changes. The time is the losing
 * version's mtime in UTC (seconds, rounded down); PEER is the first 35
 * bits of the losing device's id in base32 (7 characters of A-Z 2-7).
 * ".ext" starts at the last dot, so "archive.tar.gz" gives
 * "archive.tar.sync-conflict-20240102-030405-ABCDEFG.gz" (as Syncthing
 * does; the copy still opens with the right program). A leading dot
 * does not start an extension (".bashrc" has none, ".bashrc.bak" has
 * ".bak"), nor does a trailing one ("a." has none), and an "extension"
 * longer than CONFLICT_EXT_MAX bytes is treated as part of the base. When
 * the result would exceed PATH_NAME_MAX bytes (or the whole path
 * PATH_REL_MAX), the base is cut, never the suffix or the extension, at a
 * UTF-8 character boundary so a valid UTF-8 name stays valid. Names are
 * deterministic: the same loser gives the same name on both peers.
 *
 * All functions are pure and safe from any thread.
 */

#define CONFLICT_DEVICE_LEN 8
#define CONFLICT_HASH_LEN 32
/* The longest extension (with its dot) kept apart from the base. */
#define CONFLICT_EXT_MAX 32
/* Bytes the conflict suffix adds besides the extension: ".sync-conflict-" (15),
 * "YYYYMMDD-HHMMSS" (15), "-" and 7 characters of device id. */
#define CONFLICT_SUFFIX_LEN 38
#define CONFLICT_PEER_LEN 7

/* One version of a path, as the index knows it. */
struct conflict_version {
	uint8_t device[CONFLICT_DEVICE_LEN]; /* the device that made this version */
	int64_t mtime_ns;
	uint64_t size;
	uint8_t hash[CONFLICT_HASH_LEN]; /* file hash (src/sync/blocks.h); ignored if deleted */
	bool deleted;
};

enum conflict_action {
	CONFLICT_IDENTICAL = 0, /* not a conflict: keep the winner's metadata */
	CONFLICT_EDIT_WINS = 1, /* edit vs deletion: the winner is the edit; drop the deletion */
	CONFLICT_COPY = 2, /* two edits: winner keeps the name, loser goes to conflict_name() */
};

/*
 * Decides between two concurrent versions of one path. Returns the action
 * and sets *ret_winner to 0 (a wins) or 1 (b wins); the loser is the other
 * one. Swapping a and b swaps the winner and nothing else (when a and b are
 * equal in every field, the winner is 0 both ways). Never fails.
 */
enum conflict_action conflict_decide(const struct conflict_version *a,
				     const struct conflict_version *b, unsigned *ret_winner);

/*
 * Writes the conflict copy name of the share path path (len bytes, not
 * NUL-terminated) for the losing version into out (NUL-terminated).
 * Returns the length of the new path (it passes path_check()); -EINVAL if
 * path does not pass path_check(); -ENAMETOOLONG if even a one-character
 * base does not fit within PATH_REL_MAX; -ENOBUFS if outlen is too small
 * (PATH_REL_MAX + 1 always suffices). out is untouched on failure.
 */
int conflict_name(const char *path, size_t len, const struct conflict_version *loser, char *out,
		  size_t outlen) __attribute__((warn_unused_result));

/*
 * The n-th conflict copy name (1..99) of the same loser, for when the
 * first is taken (that version lost before and its copy is still there,
 * maybe edited since): n = 1 is conflict_name(); n >= 2 adds "-n" after
 * the peer, before the extension. Returns as conflict_name(); -EINVAL for
 * n out of range.
 */
int conflict_name_nth(const char *path, size_t len, const struct conflict_version *loser,
		      unsigned n, char *out, size_t outlen) __attribute__((warn_unused_result));

/*
 * Whether the last component of path (len bytes) is a conflict copy, that is
 * contains ".sync-conflict-" + 8 digits + "-" + 6 digits + "-" + 7 base32
 * characters, then optionally "-" and 1 or 2 digits (conflict_name_nth),
 * followed by the end of the name or a '.'.
 */
bool conflict_name_is(const char *path, size_t len);

#endif
