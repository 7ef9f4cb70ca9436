/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_PATH_H
#define TANDEM_SYNC_PATH_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

/*
 * Paths inside the share, as they travel between peers: relative,
 * '/'-separated, never trusted. path_check() is the one gate every path
 * from a peer goes through before it touches a file; path_open_parent()
 * then resolves it beneath the share root without ever following a
 * symlink (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or a
 * component-by-component O_NOFOLLOW walk where openat2 is missing), so
 * neither "../x" nor a symlink planted by a peer can lead outside.
 */

#define PATH_REL_MAX 4095 /* bytes, like PATH_MAX without the NUL */
#define PATH_NAME_MAX 255 /* bytes per component, like NAME_MAX */
#define PATH_DEPTH_MAX 128

/*
 * Checks a share-relative path of len bytes (not NUL-terminated; a NUL
 * inside is an error). Accepted: "a", "a/b.txt", names with any bytes but
 * NUL and '/'. Refused with -EINVAL and a sentence in err (may be NULL): empty, absolute,
 * a trailing '/', empty components ("a//b"), "." or ".." components, NUL,
 * more than PATH_DEPTH_MAX components; -ENAMETOOLONG: longer than
 * PATH_REL_MAX, or a component longer than PATH_NAME_MAX.
 */
int path_check(const char *p, size_t len, struct err *err) __attribute__((warn_unused_result));

/*
 * Opens the directory that holds the last component of rel (checked with
 * path_check first) beneath rootfd, refusing symlinks and anything that is
 * not a directory on the way. Returns an O_PATH|O_DIRECTORY fd (CLOEXEC) and
 * sets *ret_name to the last component inside rel; use it with the *at()
 * calls and AT_SYMLINK_NOFOLLOW / O_NOFOLLOW. With create_dirs, missing
 * directories on the way are created with mode 0755 (before umask).
 * Returns -EINVAL or -ENAMETOOLONG (bad path), -ELOOP (a symlink on the
 * way), -ENOTDIR (a file on the way), -EXDEV (escape attempt), -ENOENT, or
 * another -errno.
 */
int path_open_parent(int rootfd, const char *rel, int create_dirs, const char **ret_name)
	__attribute__((warn_unused_result));

/*
 * Whether a symlink at link (share-relative, len bytes, passes path_check)
 * pointing to target (tlen bytes, as the peer sent it) leads outside the
 * share, resolved lexically from the link's directory: an absolute target,
 * leading ".." that climb above the root, or a ".." after a name (that name
 * may itself be a symlink, so such a ".." cannot be resolved lexically:
 * "d/up/../x" with d/up -> ".." is outside). "." and empty components are
 * skipped; an empty target stays inside. Pure, no file system access.
 */
bool path_link_escapes(const char *link, size_t len, const char *target, size_t tlen);

#endif
