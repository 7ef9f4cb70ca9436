/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/err.h"
#include "sync/path.h"

int path_check(const char *p, size_t len, struct err *err)
{
	size_t start = 0, depth = 0;

	err_clear(err);
	if (len == 0) {
		err_set(err, "the path is empty");
		return -EINVAL;
	}
	if (len > PATH_REL_MAX) {
		err_set(err, "the path is %zu bytes long, more than %d", len, PATH_REL_MAX);
		return -ENAMETOOLONG;
	}
	if (memchr(p, '\0', len)) {
		err_set(err, "the path contains a NUL byte");
		return -EINVAL;
	}
	if (p[0] == '/') {
		err_set(err, "the path is absolute");
		return -EINVAL;
	}
	if (p[len - 1] == '/') {
		err_set(err, "the path ends with '/'");
		return -EINVAL;
	}
	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != '/')
			continue;
		size_t n = i - start;
		const char *c = p + start;
		if (n == 0) {
			err_set(err, "the path has an empty component ('//')");
			return -EINVAL;
		}
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) {
			err_set(err, "the path has a '%.*s' component", (int)n, c);
			return -EINVAL;
		}
		if (n > PATH_NAME_MAX) {
			err_set(err, "a name in the path is %zu bytes long, more than %d", n,
				PATH_NAME_MAX);
			return -ENAMETOOLONG;
		}
		if (++depth > PATH_DEPTH_MAX) {
			err_set(err, "the path is more than %d levels deep", PATH_DEPTH_MAX);
			return -EINVAL;
		}
		start = i + 1;
	}
	return 0;
}

static int openat2_beneath(int dirfd, const char *rel)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

/* One component, never following a symlink. */
static int open_component(int dirfd, const char *name, bool create)
{
	int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd >= 0)
		return fd;
	if (errno == ENOENT && create) {
		if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
			return -errno;
		fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			return fd;
	}
	if (errno == ENOTDIR && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		return -ELOOP;
	return -errno;
}

int path_open_parent(int rootfd, const char *rel, int create_dirs, const char **ret_name)
{
	char buf[PATH_REL_MAX + 1];
	size_t len = strlen(rel);
	const char *slash;
	int fd, r;

	r = path_check(rel, len, NULL);
	if (r < 0)
		return r;
	slash = strrchr(rel, '/');
	if (!slash) {
		fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		*ret_name = rel;
		return fd;
	}
	memcpy(buf, rel, (size_t)(slash - rel));
	buf[slash - rel] = '\0';

	if (!create_dirs) {
		fd = openat2_beneath(rootfd, buf);
		if (fd >= 0 || fd != -ENOSYS) {
			if (fd >= 0)
				*ret_name = slash + 1;
			return fd;
		}
	}
	/* Walk component by component (creating, or without openat2). */
	fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (char *c = buf, *next; c; c = next) {
		next = strchr(c, '/');
		if (next)
			*next++ = '\0';
		int sub = open_component(fd, c, create_dirs);
		close(fd);
		if (sub < 0)
			return sub;
		fd = sub;
	}
	*ret_name = slash + 1;
	return fd;
}

bool path_link_escapes(const char *link, size_t len, const char *target, size_t tlen)
{
	size_t depth = 0, start = 0;
	bool named = false;

	if (tlen && target[0] == '/')
		return true;
	for (size_t i = 0; i < len; i++)
		depth += link[i] == '/'; /* directories above the link */
	for (size_t i = 0; i <= tlen; i++) {
		if (i < tlen && target[i] != '/')
			continue;
		size_t n = i - start;
		const char *c = target + start;
		start = i + 1;
		if (n == 0 || (n == 1 && c[0] == '.'))
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			if (named || depth == 0)
				return true;
			depth--;
		} else {
			named = true;
		}
	}
	return false;
}
