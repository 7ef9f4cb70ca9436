/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "tap.h"

static char base[] = "/tmp/tandem-test-fsutil-XXXXXX";
static int basefd = -1;

/* The lowest free fd: the same before and after means nothing leaked. */
static int next_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	return fd;
}

TEST(opendir_nofollow_lists_a_directory)
{
	DIR *d = NULL;
	struct dirent *de;
	int seen = 0, fd;

	REQUIRE(mkdirat(basefd, "d", 0755) == 0);
	fd = openat(basefd, "d/a", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0);
	close(fd);
	REQUIRE(mkdirat(basefd, "d/b", 0755) == 0);
	CHECK_INT_EQ(fs_opendir_nofollow(basefd, "d", &d), 0);
	REQUIRE(d);
	while ((de = readdir(d)))
		seen |= !strcmp(de->d_name, "a") ? 1 : !strcmp(de->d_name, "b") ? 2 : 0;
	CHECK_INT_EQ(seen, 3);
	CHECK(fcntl(dirfd(d), F_GETFD) & FD_CLOEXEC);
	closedir(d);
}

TEST(opendir_nofollow_dot_and_cwd)
{
	DIR *d = NULL;

	CHECK_INT_EQ(fs_opendir_nofollow(basefd, ".", &d), 0);
	if (d)
		closedir(d);
	d = NULL;
	CHECK_INT_EQ(fs_opendir_nofollow(AT_FDCWD, base, &d), 0);
	if (d)
		closedir(d);
}

TEST(opendir_nofollow_refuses_what_is_not_a_directory)
{
	DIR *sentinel = (DIR *)&basefd, *d = sentinel;
	int before = next_fd(), fd;

	REQUIRE(mkdirat(basefd, "real", 0755) == 0);
	REQUIRE(symlinkat("real", basefd, "link") == 0);
	fd = openat(basefd, "file", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0);
	close(fd);
	/* a symlink, even to a directory, is not followed */
	CHECK_INT_EQ(fs_opendir_nofollow(basefd, "link", &d), -ENOTDIR);
	CHECK_INT_EQ(fs_opendir_nofollow(basefd, "file", &d), -ENOTDIR);
	CHECK_INT_EQ(fs_opendir_nofollow(basefd, "missing", &d), -ENOENT);
	CHECK_INT_EQ(fs_opendir_nofollow(-1, "real", &d), -EBADF);
	CHECK(d == sentinel); /* untouched on failure */
	CHECK_INT_EQ(next_fd(), before);
}

static int rm_fn(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	if (!mkdtemp(base) || (basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		printf("Bail out! cannot make a temp dir\n");
		return 1;
	}
	RUN(opendir_nofollow_lists_a_directory);
	RUN(opendir_nofollow_dot_and_cwd);
	RUN(opendir_nofollow_refuses_what_is_not_a_directory);
	close(basefd);
	nftw(base, rm_fn, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
