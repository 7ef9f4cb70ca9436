/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Every operation of the FUSE adapter through a real mount, each checked
 * against the backing directory; and the reverse: a change made in the
 * backing directory plus tfs_invalidate() is visible through the mount at
 * once (well inside the 1 s cache timeout), without a remount.
 */
#include <dirent.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>

#include "fuse_harness.h"
#include "tap.h"

static struct harness h;

static const char *B(const char *rel)
{
	static char buf[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", h.back, rel);
	return buf[i];
}

static const char *M(const char *rel)
{
	static char buf[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", h.mnt, rel);
	return buf[i];
}

static int put(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

/* Reads the whole file into a static buffer; NULL on error. */
static const char *get(const char *path)
{
	static char buf[2][65536];
	static int i;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return NULL;
	i ^= 1;
	n = read(fd, buf[i], sizeof(buf[i]) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[i][n] = '\0';
	return buf[i];
}

static int err_of(int r)
{
	return r < 0 ? errno : 0;
}

TEST(create_write_read)
{
	REQUIRE(put(M("a.txt"), "hello through the mount\n") == 0);
	CHECK_STR_EQ(get(B("a.txt")), "hello through the mount\n");
	CHECK_STR_EQ(get(M("a.txt")), "hello through the mount\n");
	REQUIRE(put(B("b.txt"), "made in backing\n") == 0);
	CHECK_STR_EQ(get(M("b.txt")), "made in backing\n");

	/* O_APPEND and pwrite at an offset */
	int fd = open(M("a.txt"), O_WRONLY | O_APPEND | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK_INT_EQ(write(fd, "more\n", 5), 5);
	close(fd);
	CHECK_STR_EQ(get(B("a.txt")), "hello through the mount\nmore\n");
	fd = open(M("a.txt"), O_RDWR | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK_INT_EQ(pwrite(fd, "HELLO", 5, 0), 5);
	char buf[8] = { 0 };
	CHECK_INT_EQ(pread(fd, buf, 5, 0), 5);
	CHECK_STR_EQ(buf, "HELLO");
	CHECK_INT_EQ(fsync(fd), 0);
	CHECK_INT_EQ(fdatasync(fd), 0);
	CHECK_INT_EQ(close(fd), 0); /* flush + release */
	CHECK_STR_EQ(get(B("a.txt")), "HELLO through the mount\nmore\n");

	/* O_EXCL on an existing name */
	CHECK_INT_EQ(err_of(open(M("a.txt"), O_WRONLY | O_CREAT | O_EXCL, 0644)), EEXIST);
	/* a large file, read back in pieces */
	static char big[300000], back[300000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + i / 4096);
	fd = open(M("big.bin"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0);
	CHECK_INT_EQ(write(fd, big, sizeof(big)), sizeof(big));
	close(fd);
	fd = open(B("big.bin"), O_RDONLY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK_INT_EQ(read(fd, back, sizeof(back)), sizeof(back));
	close(fd);
	CHECK(memcmp(big, back, sizeof(big)) == 0);
	memset(back, 0, sizeof(back));
	fd = open(M("big.bin"), O_RDONLY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK_INT_EQ(pread(fd, back, sizeof(back), 0), sizeof(back));
	close(fd);
	CHECK(memcmp(big, back, sizeof(big)) == 0);
}

TEST(getattr_setattr)
{
	struct stat sm, sb;
	struct timespec ts[2];

	REQUIRE(put(M("attr.txt"), "0123456789") == 0);
	REQUIRE(stat(M("attr.txt"), &sm) == 0);
	REQUIRE(stat(B("attr.txt"), &sb) == 0);
	CHECK_INT_EQ(sm.st_size, 10);
	CHECK_INT_EQ(sm.st_ino, sb.st_ino);
	CHECK_INT_EQ(sm.st_mode, sb.st_mode);
	/* programs size their I/O by it: 1 MiB requests, not 128 KiB ones */
	CHECK_INT_EQ(sm.st_blksize, 1024 * 1024);

	CHECK_INT_EQ(chmod(M("attr.txt"), 0640), 0);
	REQUIRE(stat(B("attr.txt"), &sb) == 0);
	CHECK_INT_EQ(sb.st_mode & 07777, 0640);
	REQUIRE(stat(M("attr.txt"), &sm) == 0);
	CHECK_INT_EQ(sm.st_mode & 07777, 0640);

	CHECK_INT_EQ(chown(M("attr.txt"), 1234, 4321), 0);
	REQUIRE(stat(B("attr.txt"), &sb) == 0);
	CHECK_INT_EQ(sb.st_uid, 1234);
	CHECK_INT_EQ(sb.st_gid, 4321);

	CHECK_INT_EQ(truncate(M("attr.txt"), 4), 0);
	CHECK_STR_EQ(get(B("attr.txt")), "0123");
	int fd = open(M("attr.txt"), O_RDWR | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK_INT_EQ(ftruncate(fd, 2), 0);
	CHECK_INT_EQ(fchmod(fd, 0600), 0);
	REQUIRE(stat(B("attr.txt"), &sb) == 0);
	CHECK_INT_EQ(sb.st_size, 2);
	CHECK_INT_EQ(sb.st_mode & 07777, 0600);

	/* utimens: explicit, OMIT, NOW; by path and by fd */
	ts[0].tv_sec = 1000000000;
	ts[0].tv_nsec = 123456789;
	ts[1].tv_sec = 1200000000;
	ts[1].tv_nsec = 987654321;
	CHECK_INT_EQ(utimensat(AT_FDCWD, M("attr.txt"), ts, 0), 0);
	REQUIRE(stat(B("attr.txt"), &sb) == 0);
	CHECK_INT_EQ(sb.st_atim.tv_sec, 1000000000);
	CHECK_INT_EQ(sb.st_mtim.tv_sec, 1200000000);
	CHECK_INT_EQ(sb.st_mtim.tv_nsec, 987654321);
	REQUIRE(stat(M("attr.txt"), &sm) == 0);
	CHECK_INT_EQ(sm.st_mtim.tv_nsec, 987654321);
	ts[0].tv_nsec = UTIME_NOW;
	ts[1].tv_nsec = UTIME_OMIT;
	CHECK_INT_EQ(futimens(fd, ts), 0);
	REQUIRE(stat(B("attr.txt"), &sb) == 0);
	CHECK(sb.st_atim.tv_sec > 1600000000);
	CHECK_INT_EQ(sb.st_mtim.tv_sec, 1200000000);
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_nsec = UTIME_NOW;
	CHECK_INT_EQ(utimensat(AT_FDCWD, M("attr.txt"), ts, 0), 0);
	REQUIRE(stat(B("attr.txt"), &sb) == 0);
	CHECK(sb.st_mtim.tv_sec > 1600000000);
	close(fd);
	/* errors from the backing fs pass through */
	CHECK_INT_EQ(err_of(truncate(M("nonexistent"), 0)), ENOENT);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, newline-joined listing of a directory (without . and ..). */
static char *listing(const char *path)
{
	static char out[2][200000];
	static int k;
	char *names[4096];
	size_t n = 0, len = 0;
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d)
		return NULL;
	k ^= 1;
	while ((e = readdir(d)) && n < 4096)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	out[k][0] = '\0';
	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(out[k] + len, sizeof(out[k]) - len, "%s\n", names[i]);
		free(names[i]);
	}
	return out[k];
}

TEST(mkdir_readdir_rmdir)
{
	char name[64];

	CHECK_INT_EQ(mkdir(M("d"), 0750), 0);
	struct stat sb;
	REQUIRE(stat(B("d"), &sb) == 0);
	CHECK(S_ISDIR(sb.st_mode));
	CHECK_INT_EQ(sb.st_mode & 0777, 0750);
	CHECK_INT_EQ(err_of(mkdir(M("d"), 0750)), EEXIST);
	/* enough entries for several readdir(plus) batches */
	for (int i = 0; i < 400; i++) {
		snprintf(name, sizeof(name), "d/entry-with-a-longish-name-%04d", i);
		REQUIRE(put(i % 2 ? M(name) : B(name), "x") == 0);
	}
	CHECK_INT_EQ(mkdir(B("d/sub"), 0755), 0);
	char *lm = listing(M("d"));
	char *lb = listing(B("d"));
	REQUIRE(lm && lb);
	CHECK(strcmp(lm, lb) == 0);
	CHECK(strstr(lm, "entry-with-a-longish-name-0399\n") != NULL);
	/* readdir's d_type and stat through the listing agree */
	REQUIRE(stat(M("d/sub"), &sb) == 0);
	CHECK(S_ISDIR(sb.st_mode));

	CHECK_INT_EQ(err_of(rmdir(M("d"))), ENOTEMPTY);
	CHECK_INT_EQ(rmdir(M("d/sub")), 0);
	CHECK_INT_EQ(err_of(stat(B("d/sub"), &sb)), ENOENT);
	CHECK_INT_EQ(err_of(rmdir(M("d/sub"))), ENOENT);
	/* fsyncdir */
	int fd = open(M("d"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK_INT_EQ(fsync(fd), 0);
	close(fd);
}

TEST(unlink)
{
	struct stat sb;

	REQUIRE(put(M("gone.txt"), "bye") == 0);
	int fd = open(M("gone.txt"), O_RDONLY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK_INT_EQ(unlink(M("gone.txt")), 0);
	CHECK_INT_EQ(err_of(stat(B("gone.txt"), &sb)), ENOENT);
	CHECK_INT_EQ(err_of(stat(M("gone.txt"), &sb)), ENOENT);
	/* an open file stays readable after unlink */
	char buf[4] = { 0 };
	CHECK_INT_EQ(read(fd, buf, 3), 3);
	CHECK_STR_EQ(buf, "bye");
	close(fd);
	CHECK_INT_EQ(err_of(unlink(M("gone.txt"))), ENOENT);
	CHECK_INT_EQ(err_of(unlink(M("d"))), EISDIR);
}

TEST(rename)
{
	struct stat sb;

	REQUIRE(put(M("r1"), "one") == 0);
	REQUIRE(put(M("r2"), "two") == 0);
	CHECK_INT_EQ(rename(M("r1"), M("r3")), 0);
	CHECK_INT_EQ(err_of(stat(B("r1"), &sb)), ENOENT);
	CHECK_STR_EQ(get(B("r3")), "one");
	/* replace */
	CHECK_INT_EQ(rename(M("r3"), M("r2")), 0);
	CHECK_STR_EQ(get(B("r2")), "one");
	CHECK_STR_EQ(get(M("r2")), "one");
	/* NOREPLACE */
	REQUIRE(put(M("r4"), "four") == 0);
	CHECK_INT_EQ(err_of(renameat2(AT_FDCWD, M("r4"), AT_FDCWD, M("r2"), RENAME_NOREPLACE)),
		     EEXIST);
	CHECK_STR_EQ(get(B("r2")), "one");
	CHECK_INT_EQ(renameat2(AT_FDCWD, M("r4"), AT_FDCWD, M("r5"), RENAME_NOREPLACE), 0);
	CHECK_STR_EQ(get(B("r5")), "four");
	/* EXCHANGE */
	CHECK_INT_EQ(renameat2(AT_FDCWD, M("r5"), AT_FDCWD, M("r2"), RENAME_EXCHANGE), 0);
	CHECK_STR_EQ(get(B("r2")), "four");
	CHECK_STR_EQ(get(B("r5")), "one");
	CHECK_STR_EQ(get(M("r2")), "four");
	CHECK_STR_EQ(get(M("r5")), "one");
	/* a directory across directories */
	CHECK_INT_EQ(mkdir(M("rd"), 0755), 0);
	CHECK_INT_EQ(mkdir(M("rd/in"), 0755), 0);
	REQUIRE(put(M("rd/in/f"), "deep") == 0);
	CHECK_INT_EQ(mkdir(M("rt"), 0755), 0);
	CHECK_INT_EQ(rename(M("rd/in"), M("rt/moved")), 0);
	CHECK_STR_EQ(get(B("rt/moved/f")), "deep");
	CHECK_STR_EQ(get(M("rt/moved/f")), "deep");
	CHECK_INT_EQ(err_of(rename(M("nothere"), M("x"))), ENOENT);
}

TEST(symlink_readlink)
{
	char buf[256];
	struct stat sm;
	ssize_t n;

	CHECK_INT_EQ(symlink("../target/of link", M("ln")), 0);
	n = readlink(B("ln"), buf, sizeof(buf) - 1);
	REQUIRE(n > 0);
	buf[n] = '\0';
	CHECK_STR_EQ(buf, "../target/of link");
	n = readlink(M("ln"), buf, sizeof(buf) - 1);
	REQUIRE(n > 0);
	buf[n] = '\0';
	CHECK_STR_EQ(buf, "../target/of link");
	REQUIRE(lstat(M("ln"), &sm) == 0);
	CHECK(S_ISLNK(sm.st_mode));
	/* a link inside the share works through the mount */
	CHECK_INT_EQ(symlink("a.txt", B("ln2")), 0);
	CHECK_STR_EQ(get(M("ln2")), get(B("a.txt")));
	/* times on the link itself */
	struct timespec ts[2] = { { 5, 0 }, { 7, 0 } };
	CHECK_INT_EQ(utimensat(AT_FDCWD, M("ln"), ts, AT_SYMLINK_NOFOLLOW), 0);
	REQUIRE(lstat(B("ln"), &sm) == 0);
	CHECK_INT_EQ(sm.st_mtim.tv_sec, 7);
	CHECK_INT_EQ(unlink(M("ln")), 0);
	CHECK_INT_EQ(err_of(lstat(B("ln"), &sm)), ENOENT);
}

TEST(links_special_xattr)
{
	struct stat sb, sm;
	char buf[8];
	int fd;

	/* a hard link: two names of one inode in the store */
	REQUIRE(put(M("hl"), "x") == 0);
	CHECK_INT_EQ(link(M("hl"), M("hl2")), 0);
	REQUIRE(stat(B("hl"), &sb) == 0);
	REQUIRE(stat(B("hl2"), &sm) == 0);
	CHECK_INT_EQ(sb.st_ino, sm.st_ino);
	CHECK_INT_EQ(sb.st_nlink, 2);
	REQUIRE(stat(M("hl2"), &sm) == 0);
	CHECK_INT_EQ(sm.st_nlink, 2);
	CHECK_INT_EQ(unlink(M("hl")), 0); /* the other name keeps the content */
	fd = open(M("hl2"), O_RDONLY);
	REQUIRE(fd >= 0);
	CHECK_INT_EQ(read(fd, buf, sizeof(buf)), 1);
	close(fd);
	CHECK_INT_EQ(err_of(link(M("hl2"), M(".tandem-tmp-x"))), EPERM);
	/* a hard link of a symlink is one too */
	CHECK_INT_EQ(symlink("hl2", M("sl")), 0);
	CHECK_INT_EQ(link(M("sl"), M("sl2")), 0);
	REQUIRE(lstat(B("sl2"), &sb) == 0);
	CHECK(S_ISLNK(sb.st_mode));
	/* FIFOs, sockets and device nodes are made in the store */
	CHECK_INT_EQ(mkfifo(M("fifo"), 0644), 0);
	REQUIRE(lstat(B("fifo"), &sb) == 0);
	CHECK(S_ISFIFO(sb.st_mode));
	CHECK_INT_EQ(mknod(M("dev"), S_IFCHR | 0644, makedev(1, 3)), 0);
	REQUIRE(lstat(B("dev"), &sb) == 0);
	CHECK(S_ISCHR(sb.st_mode));
	CHECK_INT_EQ(sb.st_rdev, makedev(1, 3));
	REQUIRE(lstat(M("dev"), &sm) == 0);
	CHECK_INT_EQ(sm.st_rdev, makedev(1, 3));
	CHECK_INT_EQ(mknod(M("sock"), S_IFSOCK | 0600, 0), 0);
	CHECK_INT_EQ(chmod(M("fifo"), 0600), 0);
	REQUIRE(lstat(B("fifo"), &sb) == 0);
	CHECK_INT_EQ(sb.st_mode & 0777, 0600);
	CHECK_INT_EQ(rename(M("fifo"), M("fifo2")), 0);
	CHECK_INT_EQ(unlink(M("fifo2")), 0);
	CHECK_INT_EQ(unlink(M("dev")), 0);
	CHECK_INT_EQ(unlink(M("sock")), 0);
	CHECK_INT_EQ(err_of(lstat(B("fifo2"), &sb)), ENOENT);
	/* mknod of a regular file is a create */
	CHECK_INT_EQ(mknod(M("plain"), S_IFREG | 0604, 0), 0);
	REQUIRE(stat(B("plain"), &sb) == 0);
	CHECK(S_ISREG(sb.st_mode));
	CHECK_INT_EQ(sb.st_mode & 0777, 0604);
	/* xattrs are not supported */
	CHECK_INT_EQ(err_of(setxattr(M("hl2"), "user.k", "v", 1, 0)), ENOTSUP);
	char v[8];
	CHECK_INT_EQ(err_of((int)getxattr(M("hl2"), "user.k", v, sizeof(v))), ENOTSUP);
	CHECK_INT_EQ(err_of((int)listxattr(M("hl2"), v, sizeof(v))), ENOTSUP);
	CHECK_INT_EQ(err_of(removexattr(M("hl2"), "user.k")), ENOTSUP);
}

TEST(statfs_access)
{
	struct statvfs vm, vb;

	REQUIRE(statvfs(h.mnt, &vm) == 0);
	REQUIRE(statvfs(h.back, &vb) == 0);
	CHECK_INT_EQ(vm.f_blocks, vb.f_blocks);
	CHECK_INT_EQ(vm.f_bsize, vb.f_bsize);
	CHECK_INT_EQ(access(M("a.txt"), R_OK | W_OK), 0);
	CHECK_INT_EQ(err_of(access(M("a.txt"), X_OK)), EACCES);
	CHECK_INT_EQ(err_of(access(M("nonexistent"), F_OK)), ENOENT);
}

TEST(lseek_fallocate_copy_range)
{
	int fd, fb;
	off_t dm, db;

	/* a sparse file: data at 1 MiB only */
	fb = open(B("sparse"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	REQUIRE(fb >= 0);
	CHECK_INT_EQ(pwrite(fb, "data", 4, 1 << 20), 4);
	close(fb);
	fb = open(B("sparse"), O_RDONLY | O_CLOEXEC);
	fd = open(M("sparse"), O_RDONLY | O_CLOEXEC);
	REQUIRE(fd >= 0 && fb >= 0);
	dm = lseek(fd, 0, SEEK_DATA);
	db = lseek(fb, 0, SEEK_DATA);
	CHECK_INT_EQ(dm, db);
	CHECK_INT_EQ(lseek(fd, 0, SEEK_HOLE), lseek(fb, 0, SEEK_HOLE));
	CHECK_INT_EQ(err_of((int)lseek(fd, (1 << 20) + 4, SEEK_DATA)), ENXIO);
	close(fd);
	close(fb);

	fd = open(M("falloc"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0);
	CHECK_INT_EQ(fallocate(fd, 0, 0, 65536), 0);
	struct stat sb;
	REQUIRE(stat(B("falloc"), &sb) == 0);
	CHECK_INT_EQ(sb.st_size, 65536);
	CHECK_INT_EQ(fallocate(fd, FALLOC_FL_KEEP_SIZE, 65536, 4096), 0);
	REQUIRE(stat(B("falloc"), &sb) == 0);
	CHECK_INT_EQ(sb.st_size, 65536);
	close(fd);

	REQUIRE(put(M("cfr-src"), "copy me across files") == 0);
	int in = open(M("cfr-src"), O_RDONLY | O_CLOEXEC);
	int out = open(M("cfr-dst"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	REQUIRE(in >= 0 && out >= 0);
	loff_t oi = 5, oo = 0;
	CHECK_INT_EQ(copy_file_range(in, &oi, out, &oo, 2, 0), 2);
	CHECK_INT_EQ(copy_file_range(in, &oi, out, &oo, 100, 0), 13);
	close(in);
	close(out);
	CHECK_STR_EQ(get(B("cfr-dst")), "me across files");
}

TEST(hidden_names)
{
	struct stat sb;

	REQUIRE(mkdir(B(".tandem"), 0700) == 0);
	REQUIRE(put(B(".tandem/state"), "s") == 0);
	REQUIRE(mkdir(B("hd"), 0755) == 0);
	REQUIRE(put(B("hd/.tandem-tmp-123"), "partial") == 0);
	REQUIRE(put(B(".tandem-tmp-root"), "partial") == 0);
	REQUIRE(put(B("hd/.tandem"), "an ordinary name below the root") == 0);

	char *l = listing(h.mnt);
	REQUIRE(l);
	CHECK(strstr(l, ".tandem\n") == NULL);
	CHECK(strstr(l, ".tandem-tmp-") == NULL);
	CHECK(strstr(l, "a.txt\n") != NULL);
	l = listing(M("hd"));
	REQUIRE(l);
	CHECK_STR_EQ(l, ".tandem\n");
	CHECK_INT_EQ(err_of(stat(M(".tandem"), &sb)), ENOENT);
	CHECK_INT_EQ(err_of(stat(M(".tandem/state"), &sb)), ENOENT);
	CHECK_INT_EQ(err_of(stat(M("hd/.tandem-tmp-123"), &sb)), ENOENT);
	CHECK_STR_EQ(get(M("hd/.tandem")), "an ordinary name below the root");
	/* cannot be created, removed or renamed to through the mount */
	CHECK_INT_EQ(err_of(open(M("hd/.tandem-tmp-new"), O_WRONLY | O_CREAT, 0644)), EPERM);
	CHECK_INT_EQ(err_of(mkdir(M(".tandem-tmp-d"), 0755)), EPERM);
	CHECK_INT_EQ(err_of(symlink("x", M(".tandem-tmp-l"))), EPERM);
	CHECK_INT_EQ(err_of(unlink(M("hd/.tandem-tmp-123"))), ENOENT);
	CHECK_INT_EQ(err_of(rmdir(M(".tandem"))), ENOENT);
	CHECK_INT_EQ(err_of(rename(M("a.txt"), M(".tandem"))), EPERM);
	CHECK_INT_EQ(err_of(rename(M("hd/.tandem-tmp-123"), M("stolen"))), ENOENT);
	CHECK_STR_EQ(get(B(".tandem/state")), "s");
	CHECK_INT_EQ(err_of(stat(B("hd/.tandem-tmp-new"), &sb)), ENOENT);
}

/* Changes in the backing dir reach readers through tfs_invalidate(). */
TEST(invalidate)
{
	struct stat sm;
	int fb;

	/* in-place content change (same inode, same size) */
	REQUIRE(put(B("inv.txt"), "aaaa") == 0);
	CHECK_STR_EQ(get(M("inv.txt")), "aaaa");
	fb = open(B("inv.txt"), O_WRONLY | O_CLOEXEC);
	REQUIRE(fb >= 0);
	CHECK_INT_EQ(pwrite(fb, "bbbb", 4, 0), 4);
	close(fb);
	tfs_invalidate(h.tfs, "inv.txt");
	tfs_invalidate_flush(h.tfs);
	CHECK_STR_EQ(get(M("inv.txt")), "bbbb");

	/* size change: the attribute cache is dropped */
	REQUIRE(stat(M("inv.txt"), &sm) == 0);
	CHECK_INT_EQ(sm.st_size, 4);
	REQUIRE(put(B("inv.txt"), "longer content") == 0);
	tfs_invalidate(h.tfs, "inv.txt");
	tfs_invalidate_flush(h.tfs);
	REQUIRE(stat(M("inv.txt"), &sm) == 0);
	CHECK_INT_EQ(sm.st_size, 14);

	/* replaced by rename (the engine's way): the dentry is dropped */
	REQUIRE(mkdir(B("invd"), 0755) == 0);
	REQUIRE(put(B("invd/f"), "old") == 0);
	CHECK_STR_EQ(get(M("invd/f")), "old");
	REQUIRE(put(B("invd/.tandem-tmp-f"), "new!") == 0);
	REQUIRE(rename(B("invd/.tandem-tmp-f"), B("invd/f")) == 0);
	tfs_invalidate(h.tfs, "invd/f");
	tfs_invalidate_flush(h.tfs);
	CHECK_STR_EQ(get(M("invd/f")), "new!");

	/* a file turned into a directory */
	REQUIRE(stat(M("invd/f"), &sm) == 0);
	CHECK(S_ISREG(sm.st_mode));
	REQUIRE(unlink(B("invd/f")) == 0);
	REQUIRE(mkdir(B("invd/f"), 0755) == 0);
	tfs_invalidate(h.tfs, "invd/f");
	tfs_invalidate_flush(h.tfs);
	REQUIRE(stat(M("invd/f"), &sm) == 0);
	CHECK(S_ISDIR(sm.st_mode));

	/* a whole directory removed: invalidating a path below it is fine */
	REQUIRE(rmdir(B("invd/f")) == 0);
	REQUIRE(rmdir(B("invd")) == 0);
	tfs_invalidate(h.tfs, "invd/f");
	tfs_invalidate(h.tfs, "invd");
	tfs_invalidate(h.tfs, "no/such/path");
	tfs_invalidate(h.tfs, "");
	tfs_invalidate_flush(h.tfs);
	CHECK_INT_EQ(err_of(stat(M("invd"), &sm)), ENOENT);

	/* invalidate_all drops data and attributes everywhere */
	REQUIRE(put(B("inv2.txt"), "xxxx") == 0);
	CHECK_STR_EQ(get(M("inv2.txt")), "xxxx");
	fb = open(B("inv2.txt"), O_WRONLY | O_CLOEXEC);
	REQUIRE(fb >= 0);
	CHECK_INT_EQ(pwrite(fb, "yyyy", 4, 0), 4);
	close(fb);
	tfs_invalidate_all(h.tfs);
	tfs_invalidate_flush(h.tfs);
	CHECK_STR_EQ(get(M("inv2.txt")), "yyyy");
}

int main(void)
{
	harness_skip_unless_fuse();
	harness_start(&h, "tfs-ops", 60);
	RUN(create_write_read);
	RUN(getattr_setattr);
	RUN(mkdir_readdir_rmdir);
	RUN(unlink);
	RUN(rename);
	RUN(symlink_readlink);
	RUN(links_special_xattr);
	RUN(statfs_access);
	RUN(lseek_fallocate_copy_range);
	RUN(hidden_names);
	RUN(invalidate);
	harness_end(&h);
	return tap_done();
}
