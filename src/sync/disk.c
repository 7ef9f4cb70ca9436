/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The disk operations of the applier and the fetchers (disk.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "base/fsutil.h"
#include "base/log.h"
#include "sync/disk.h"
#include "sync/msg.h"
#include "sync/path.h"
#include "sync/scan.h"

static void quote(const char *s, char *out, size_t outlen)
{
	log_quote(s, strlen(s), out, outlen);
}

/*
 * Whether a directory on the way to rel is, in the index, a live symlink of
 * the peer's that was not made here (refuse_symlink): then nothing may be
 * created beneath its name.
 */
static bool under_refused_link(struct disk *d, const char *rel)
{
	struct index_entry *x = malloc(sizeof(*x));
	bool found = false;

	if (!x)
		return true; /* cannot tell: create nothing */
	for (const char *s = strchr(rel, '/'); s && !found; s = strchr(s + 1, '/'))
		found = index_get(d->idx, rel, (size_t)(s - rel), x) == 0 && !x->deleted &&
			x->type == INDEX_SYMLINK;
	free(x);
	return found;
}

/*
 * The directories on the way to rel that are not on disk, about to be made:
 * the first one's length in rel (0: all are there). Stops at anything
 * else than a missing one (path_open_parent says what).
 */
static size_t first_missing_dir(const struct disk *d, const char *rel)
{
	char p[PATH_REL_MAX + 1];
	struct stat st;

	for (const char *s = strchr(rel, '/'); s; s = strchr(s + 1, '/')) {
		size_t len = (size_t)(s - rel);

		if (len > PATH_REL_MAX)
			return 0;
		memcpy(p, rel, len);
		p[len] = '\0';
		if (fstatat(d->rootfd, p, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return errno == ENOENT ? len : 0;
	}
	return 0;
}

/*
 * The directories from rel's prefix of length from on were just made. An
 * entry the index holds for one of them with an identity is the directory
 * that was there: the user moved or deleted it, no scan has recorded that
 * yet. The new one has no identity (as apply_dir() records a directory it
 * makes): with the old one's, the next walk took the old directory found
 * under another name for this path moved there, and moved along this
 * path's entries, among them what the applier puts in the new one (a
 * placeholder's entry, published with the moved directory's file;
 * long-run seed 2003442 --lazy). The scanner finds the old one by the
 * inodes of its files, as new, or each file moved, and walks this one.
 */
static void forget_made_dirs(struct disk *d, const char *rel, size_t from)
{
	struct index_entry *x = malloc(sizeof(*x));

	for (const char *s = rel + from; x && s && *s == '/'; s = strchr(s + 1, '/')) {
		size_t len = (size_t)(s - rel);

		if (index_get(d->idx, rel, len, x) == 0 && !x->deleted && x->type == INDEX_DIR &&
		    x->ino != 0 && index_set_stat(d->idx, rel, len, 0, 0, 0) < 0)
			log_debug("sync: cannot forget the identity of %s: %s", LOG_Q(x->path),
				  index_errmsg(d->idx));
	}
	free(x);
}

int disk_open_parent(struct disk *d, const char *rel, bool create, const char **ret_name)
{
	char q[PATH_REL_MAX + 8];
	int fd = path_open_parent(d->rootfd, rel, false, ret_name);

	if (fd == -ENOENT && create) {
		size_t from;

		if (under_refused_link(d, rel)) {
			quote(rel, q, sizeof(q));
			log_warn("refused the peer's path %s: a symlink is on the way (not made "
				 "here: it points outside the share)", q);
			d->refused++;
			return -ELOOP;
		}
		from = first_missing_dir(d, rel);
		fd = path_open_parent(d->rootfd, rel, true, ret_name);
		if (fd >= 0 && from && d->idx)
			forget_made_dirs(d, rel, from);
	}
	if (fd >= 0)
		return fd;
	if (fd == -ELOOP || fd == -EXDEV || fd == -ENOTDIR) {
		quote(rel, q, sizeof(q));
		log_warn("refused the peer's path %s: %s", q,
			 fd == -ELOOP	? "a symlink is on the way (never followed)"
			 : fd == -EXDEV ? "it leads outside the share"
					: "a file is on the way");
		d->refused++;
	}
	return fd;
}

int disk_meta_set(int dirfd, const char *name, uint8_t kind, uint16_t mode, int64_t mtime_ns,
		  struct stat *ret)
{
	struct timespec ts[2] = {{0, UTIME_OMIT}, disk_ns_to_ts(mtime_ns)};
	char proc[64];
	int fd, r = 0;

	if (kind == SYNC_KIND_SYMLINK) {
		if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		return fstatat(dirfd, name, ret, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	}
	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, ret) < 0 || S_ISLNK(ret->st_mode)) {
		r = S_ISLNK(ret->st_mode) ? -ELOOP : -errno;
		goto out;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if ((ret->st_mode & 0777) != mode && chmod(proc, mode) < 0) {
		r = -errno;
		goto out;
	}
	if (kind != SYNC_KIND_DIR && utimensat(AT_FDCWD, proc, ts, 0) < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(fd, ret) < 0)
		r = -errno;
out:
	close(fd);
	return r;
}


int disk_drop_tmps(int parent, const char *name)
{
	struct dirent *de;
	int n = 0, r;
	DIR *d;

	r = fs_opendir_nofollow(parent, name, &d);
	if (r < 0)
		return r;
	while ((de = readdir(d))) {
		if (!scan_engine_tmp(de->d_name) ||
		    (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
			continue;
		/* never a directory (AT_REMOVEDIR not given); a symlink is removed
		 * as a link, never followed */
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}
