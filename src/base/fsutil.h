/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_FSUTIL_H
#define TANDEM_FSUTIL_H

#include <dirent.h>
#include <stddef.h>
#include <sys/types.h>

/* Small file-system helpers. All return >= 0 or -errno. */

/* mkdir -p with mode for the directories it creates. */
int fs_mkdir_p(const char *path, mode_t mode) __attribute__((warn_unused_result));

/* write(2) until done, retrying on EINTR. */
int fs_write_all(int fd, const void *buf, size_t len) __attribute__((warn_unused_result));

/* fsync the directory at path. */
int fs_fsync_dir(const char *path);

/*
 * Opens the directory name under dirfd (or AT_FDCWD) to read, without
 * following a symlink there (-ENOTDIR, as for a file);
 * the fd under *ret_dir is CLOEXEC and closedir() closes it. 0, or -errno
 * with *ret_dir untouched and nothing left open.
 */
int fs_opendir_nofollow(int dirfd, const char *name, DIR **ret_dir)
	__attribute__((warn_unused_result));

#endif
