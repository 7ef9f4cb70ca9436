/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync/path.h"
#include "tap.h"

static char root[128];

static int check(const char *p)
{
	struct err err = {.msg = ""};
	int r = path_check(p, strlen(p), &err);
	if (r < 0 && !err.msg[0])
		return -999; /* every refusal must say why */
	return r;
}

TEST(accepts_normal_paths)
{
	CHECK_INT_EQ(check("a"), 0);
	CHECK_INT_EQ(check("a/b/c.txt"), 0);
	CHECK_INT_EQ(check(".hidden/..x/x.."), 0);
	CHECK_INT_EQ(check("spaces and ünïcödé/\x01\n\x7f"), 0);
	CHECK_INT_EQ(check("...") , 0);
}

TEST(refuses_hostile_paths)
{
	struct err err;

	CHECK_INT_EQ(check(""), -EINVAL);
	CHECK_INT_EQ(check("../x"), -EINVAL);
	CHECK_INT_EQ(check("a/../../b"), -EINVAL);
	CHECK_INT_EQ(check("a/.."), -EINVAL);
	CHECK_INT_EQ(check(".."), -EINVAL);
	CHECK_INT_EQ(check("."), -EINVAL);
	CHECK_INT_EQ(check("a/./b"), -EINVAL);
	CHECK_INT_EQ(check("/etc/passwd"), -EINVAL);
	CHECK_INT_EQ(check("a//b"), -EINVAL);
	CHECK_INT_EQ(check("a/"), -EINVAL);
	CHECK_INT_EQ(path_check("a\0b", 3, &err), -EINVAL);
	CHECK(strstr(err.msg, "NUL") != NULL);

	char name[PATH_NAME_MAX + 2];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	CHECK_INT_EQ(check(name), -ENAMETOOLONG);
	name[PATH_NAME_MAX] = '\0';
	CHECK_INT_EQ(check(name), 0);

	static char longp[PATH_REL_MAX + 10];
	for (size_t i = 0; i < sizeof(longp) - 1; i++)
		longp[i] = (i % 100 == 99) ? '/' : 'x';
	longp[sizeof(longp) - 1] = '\0';
	CHECK_INT_EQ(check(longp), -ENAMETOOLONG);

	char deep[PATH_DEPTH_MAX * 2 + 4];
	size_t o = 0;
	for (int i = 0; i <= PATH_DEPTH_MAX; i++) {
		deep[o++] = 'd';
		deep[o++] = '/';
	}
	deep[o - 1] = '\0';
	CHECK_INT_EQ(check(deep), -EINVAL);
}

static int rootfd(void)
{
	return open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

TEST(resolves_beneath)
{
	const char *name;
	int rfd = rootfd(), fd;

	REQUIRE(rfd >= 0);
	fd = path_open_parent(rfd, "top.txt", 0, &name);
	CHECK(fd >= 0);
	CHECK_STR_EQ(name, "top.txt");
	if (fd >= 0)
		close(fd);
	CHECK_INT_EQ(path_open_parent(rfd, "x/y/z.txt", 0, &name), -ENOENT);
	fd = path_open_parent(rfd, "x/y/z.txt", 1, &name);
	CHECK(fd >= 0);
	CHECK_STR_EQ(name, "z.txt");
	if (fd >= 0) {
		int f = openat(fd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
		CHECK(f >= 0);
		if (f >= 0)
			close(f);
		close(fd);
	}
	char p[256];
	snprintf(p, sizeof(p), "%s/x/y/z.txt", root);
	CHECK(access(p, F_OK) == 0);
	fd = path_open_parent(rfd, "x/y/z.txt", 0, &name);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	close(rfd);
}

TEST(never_follows_symlinks)
{
	const char *name;
	char p[256];
	int rfd = rootfd();

	REQUIRE(rfd >= 0);
	/* a peer planted "evil" -> "/" and now writes through it */
	snprintf(p, sizeof(p), "%s/evil", root);
	REQUIRE(symlink("/", p) == 0);
	CHECK_INT_EQ(path_open_parent(rfd, "evil/tmp/pwned", 0, &name), -ELOOP);
	CHECK_INT_EQ(path_open_parent(rfd, "evil/tmp/pwned", 1, &name), -ELOOP);
	/* even a symlink pointing inside the share is not followed */
	snprintf(p, sizeof(p), "%s/inside", root);
	REQUIRE(symlink("x", p) == 0);
	CHECK_INT_EQ(path_open_parent(rfd, "inside/y/z.txt", 0, &name), -ELOOP);
	/* a file on the way */
	CHECK_INT_EQ(path_open_parent(rfd, "top.txt/a", 0, &name), -ENOTDIR);
	CHECK_INT_EQ(path_open_parent(rfd, "top.txt/a", 1, &name), -ENOTDIR);
	/* the path check runs first */
	CHECK_INT_EQ(path_open_parent(rfd, "../etc/passwd", 1, &name), -EINVAL);
	CHECK(access("/tmp/pwned", F_OK) < 0);
	close(rfd);
}

/* Does a symlink at link with target point out of the share? */
static bool esc(const char *link, const char *target)
{
	return path_link_escapes(link, strlen(link), target, strlen(target));
}

TEST(link_leaves_share)
{
	/* absolute: always out */
	CHECK(esc("l", "/etc"));
	CHECK(esc("l", "/etc/passwd"));
	CHECK(esc("a/b/c/l", "/"));
	CHECK(esc("l", "//x"));
	/* climbing above the root */
	CHECK(esc("l", ".."));
	CHECK(esc("l", "../"));
	CHECK(esc("l", "../x"));
	CHECK(esc("a/l", "../../outside"));
	CHECK(esc("a/b/l", "../../../etc/passwd"));
	CHECK(esc("a/l", "./../.."));
	CHECK(esc("a/l", "../.././x"));
	/* a ".." after a name: the name may be a symlink, so it is not lexical */
	CHECK(esc("l", "a/../../x"));
	CHECK(esc("a/b/l", "a/../../x"));
	CHECK(esc("l", "x/.."));
	CHECK(esc("a/b/c/l", "x/../y"));
	CHECK(esc("a/l", "sub/../.."));
	CHECK(esc("d1/l", "up/../etc"));
	/* inside */
	CHECK(!esc("l", "sub/file"));
	CHECK(!esc("l", "file"));
	CHECK(!esc("l", "."));
	CHECK(!esc("l", "./"));
	CHECK(!esc("l", "./a/./b/"));
	CHECK(!esc("l", "a//b"));
	CHECK(!esc("a/l", ".."));
	CHECK(!esc("a/l", "../"));
	CHECK(!esc("a/l", "../x"));
	CHECK(!esc("a/b/l", "../../x"));
	CHECK(!esc("a/b/l", "../.././a/b"));
	CHECK(esc("a/b/l", "../.././../a/b"));
	CHECK(!esc("a/b/c/d/e/l", "../../../../../top"));
	CHECK(esc("a/b/c/d/e/l", "../../../../../../top"));
	/* a deep share, 128 levels */
	{
		char deep[2 * 128 + 1], up[3 * 128 + 2];
		size_t n = 0, m = 0;
		for (int i = 0; i < 127; i++) {
			deep[n++] = 'd';
			deep[n++] = '/';
			memcpy(up + m, "../", 3);
			m += 3;
		}
		deep[n++] = 'l';
		deep[n] = '\0';
		up[m] = '\0';
		CHECK(!esc(deep, up)); /* 127 levels up from 127 levels down: the root */
		memcpy(up + m, "..", 3);
		CHECK(esc(deep, up));
	}
	/* only len bytes of each count */
	CHECK(!path_link_escapes("a/lX", 3, "../x/..", 4));
	CHECK(path_link_escapes("l", 1, "../x", 2));
}

int main(void)
{
	char cmd[256], p[256];

	snprintf(root, sizeof(root), "/tmp/tandem-test-path-XXXXXX");
	if (!mkdtemp(root))
		return 99;
	snprintf(p, sizeof(p), "%s/top.txt", root);
	int f = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (f < 0)
		return 99;
	close(f);
	RUN(accepts_normal_paths);
	RUN(refuses_hostile_paths);
	RUN(resolves_beneath);
	RUN(never_follows_symlinks);
	RUN(link_leaves_share);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		return 99;
	return tap_done();
}
