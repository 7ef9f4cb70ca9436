/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE request handlers: each one passes the operation through to the
 * backing directory and answers with the backing file system's errno.
 * docs/FUSE.md lists what each operation does and the deliberate refusals
 * (hard links, xattrs, special files).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "tfs_internal.h"

/*
 * Attribute and entry cache lifetime. The engine calls tfs_invalidate()
 * after each change it makes, so the kernel caches can be kept; the timeout
 * only bounds how long a change made in the backing directory behind the
 * engine's back (or a lost invalidation) stays invisible.
 */
#define TFS_TIMEOUT 1.0
#define TFS_ENSURE_TIMEOUT_MS 10000

double tfs_timeout(void)
{
	return TFS_TIMEOUT;
}

static struct tfs *req_tfs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

bool tfs_name_hidden(struct tfs *tfs, struct tfs_inode *parent, const char *name)
{
	if (strncmp(name, ".tandem-tmp-", 12) == 0)
		return true;
	return parent == &tfs->root && strcmp(name, ".tandem") == 0;
}

/* Backing path of an O_PATH fd, for the calls that have no fd variant. */
static void proc_path(const struct tfs_inode *inode, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", inode->fd);
}

/*
 * Calls the ensure hook for the file behind fd (any fd of it). Returns 0 when
 * the data may be touched, or -errno to answer.
 */
static int ensure(struct tfs *tfs, int fd, uint64_t off, uint64_t len)
{
	char link[64], path[PATH_MAX + 1];
	const char *rel = NULL;
	struct stat st;
	size_t rl;
	ssize_t n;

	if (!tfs->hooks.ensure)
		return 0;
	if (fstat(fd, &st) < 0)
		return -errno;
	snprintf(link, sizeof(link), "%d", fd);
	n = readlinkat(tfs->procfd, link, path, sizeof(path) - 1);
	if (n < 0 || n >= (ssize_t)sizeof(path) - 1)
		return 0; /* cannot name it: documented, serve local data */
	path[n] = '\0';
	rl = strlen(tfs->root_path);
	/* unlinked or replaced: the hook knows whether that version is whole */
	if (st.st_nlink > 0 && !(n >= 10 && strcmp(path + n - 10, " (deleted)") == 0)) {
		if (strncmp(path, tfs->root_path, rl) != 0 ||
		    (path[rl] != '/' && path[rl] != '\0'))
			return 0; /* not under the root: not the engine's */
		rel = path + rl;
		while (*rel == '/')
			rel++;
	}
	int t = tfs->hooks.ensure_timeout_ms > 0 ? tfs->hooks.ensure_timeout_ms
						 : TFS_ENSURE_TIMEOUT_MS;
	int r = tfs->hooks.ensure(tfs->ud, rel, &st, off, len, t);
	return r > 0 ? 0 : r;
}

/*
 * Write holds (tfs.h, docs/FUSE.md "Publishing"): the daemon leaves a file
 * unpublished while the mount has it open for writing.
 */
static bool for_writing(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

static void hold_open(struct tfs *tfs, uint64_t dev, uint64_t ino)
{
	/* -ENOMEM: the open goes on unheld, published as it is written (the
	 * release's write_close is then a no-op, or ends another's hold early) */
	if (tfs->hooks.write_open)
		(void)tfs->hooks.write_open(tfs->ud, dev, ino);
}

/* With st of fd (fstat) when it is a regular file: close or publish it. */
static void hold_fd_done(struct tfs *tfs, int fd, bool close_it)
{
	struct stat st;

	if (!(close_it ? tfs->hooks.write_close : tfs->hooks.write_publish) ||
	    fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	if (close_it)
		tfs->hooks.write_close(tfs->ud, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
	else
		tfs->hooks.write_publish(tfs->ud, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
}

/* After a rename: name in dir, when a regular file, may go out. */
static void hold_publish_at(struct tfs *tfs, int dirfd, const char *name)
{
	struct stat st;

	if (tfs->hooks.write_publish && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode))
		tfs->hooks.write_publish(tfs->ud, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
}

/*
 * The I/O size announced for regular files. cp, cat and most programs size
 * their buffers by st_blksize (coreutils: at least 128 KiB); each read or
 * write of the mount is a FUSE request, so 1 MiB (the kernel's largest
 * request, and the sync engine's block) means 8x fewer of them.
 */
#define TFS_BLKSIZE (1024 * 1024)

/*
 * With an ensure hook a backing file may be a placeholder whose holes are
 * data not fetched yet, and fetching writes to it:
 * - Programs that see fewer blocks than the size treat a file as sparse and
 *   skip what lseek(SEEK_DATA) calls holes, or all of it when st_blocks is
 *   0 (cp copied a placeholder as zeros). Such a file is reported fully
 *   allocated, and SEEK_DATA/SEEK_HOLE as "no holes" (tfs_lseek).
 * - Each fetched block changes the backing ctime (the mtime is put back),
 *   so tar said "file changed as we read it". ctime is reported as the
 *   mtime, as sshfs does; a chmod does not show in it.
 */
static void attr_fix(const struct tfs *tfs, struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		return;
	st->st_blksize = TFS_BLKSIZE;
	if (!tfs->hooks.ensure)
		return;
	if ((uint64_t)st->st_blocks * 512 < (uint64_t)st->st_size)
		st->st_blocks = (blkcnt_t)(((uint64_t)st->st_size + 511) / 512);
	st->st_ctim = st->st_mtim;
}

static int stat_inode(const struct tfs *tfs, const struct tfs_inode *inode, struct stat *st)
{
	if (fstatat(inode->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	attr_fix(tfs, st);
	return 0;
}

/* Looks name up in parent and fills e with one new lookup reference. */
static int do_lookup(struct tfs *tfs, struct tfs_inode *parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct tfs_inode *n;
	int fd, r;

	memset(e, 0, sizeof(*e));
	if (tfs_name_hidden(tfs, parent, name))
		return -ENOENT;
	fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	attr_fix(tfs, &e->attr);
	n = tfs_inode_ref(tfs, fd, &e->attr);
	if (!n) {
		close(fd);
		return -ENOMEM;
	}
	e->ino = n == &tfs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
	e->attr_timeout = TFS_TIMEOUT;
	e->entry_timeout = TFS_TIMEOUT;
	return 0;
}

static void tfs_init(void *userdata, struct fuse_conn_info *conn)
{
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want &= ~FUSE_CAP_EXPORT_SUPPORT;
	/* Locks stay local to the kernel: no FUSE_CAP_POSIX_LOCKS/FLOCK_LOCKS. */
	conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
}

static void tfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int r = do_lookup(req_tfs(req), tfs_inode_get(req, parent), name, &e);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

static void tfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	tfs_inode_unref(req_tfs(req), tfs_inode_get(req, ino), nlookup);
	fuse_reply_none(req);
}

static void tfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		tfs_inode_unref(req_tfs(req), tfs_inode_get(req, forgets[i].ino),
				forgets[i].nlookup);
	fuse_reply_none(req);
}

static void tfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int r = stat_inode(req_tfs(req), tfs_inode_get(req, ino), &st);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, TFS_TIMEOUT);
}

static int set_times(struct tfs_inode *inode, const struct stat *attr, int valid,
		     struct fuse_file_info *fi)
{
	struct timespec tv[2];
	char path[64];

	tv[0].tv_sec = 0;
	tv[1].tv_sec = 0;
	tv[0].tv_nsec = UTIME_OMIT;
	tv[1].tv_nsec = UTIME_OMIT;
	if (valid & FUSE_SET_ATTR_ATIME_NOW)
		tv[0].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_ATIME)
		tv[0] = attr->st_atim;
	if (valid & FUSE_SET_ATTR_MTIME_NOW)
		tv[1].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_MTIME)
		tv[1] = attr->st_mtim;

	if (fi) {
		if (futimens((int)fi->fh, tv) < 0)
			return -errno;
		return 0;
	}
	/* utimensat() on an O_PATH fd of a symlink needs AT_EMPTY_PATH. */
	if (utimensat(inode->fd, "", tv, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != EINVAL && errno != EBADF)
		return -errno;
	proc_path(inode, path, sizeof(path));
	if (utimensat(AT_FDCWD, path, tv, 0) < 0)
		return -errno;
	return 0;
}

static void tfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
			struct fuse_file_info *fi)
{
	struct tfs *tfs = req_tfs(req);
	struct tfs_inode *inode = tfs_inode_get(req, ino);
	char path[64];
	struct stat st;
	int r = 0;

	proc_path(inode, path, sizeof(path));
	if (valid & FUSE_SET_ATTR_MODE) {
		r = fi ? fchmod((int)fi->fh, attr->st_mode & 07777)
		       : chmod(path, attr->st_mode & 07777);
		if (r < 0)
			goto err;
	}
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		r = fchownat(inode->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
		if (r < 0)
			goto err;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		/* what stays: all of it when growing, the start when shrinking,
		 * nothing for an O_TRUNC (the peer need not be there for that) */
		r = ensure(tfs, fi ? (int)fi->fh : inode->fd, 0, (uint64_t)attr->st_size);
		if (r < 0) {
			errno = -r;
			goto err;
		}
		r = fi ? ftruncate((int)fi->fh, attr->st_size) : truncate(path, attr->st_size);
		if (r < 0)
			goto err;
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		r = set_times(inode, attr, valid, fi);
		if (r < 0) {
			errno = -r;
			goto err;
		}
	}
	r = stat_inode(req_tfs(req), inode, &st);
	if (r < 0) {
		errno = -r;
		goto err;
	}
	fuse_reply_attr(req, &st, TFS_TIMEOUT);
	return;
err:
	fuse_reply_err(req, errno);
}

static void tfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n = readlinkat(tfs_inode_get(req, ino)->fd, "", buf, sizeof(buf));

	if (n < 0)
		fuse_reply_err(req, errno);
	else if (n >= (ssize_t)sizeof(buf))
		fuse_reply_err(req, ENAMETOOLONG);
	else {
		buf[n] = '\0';
		fuse_reply_readlink(req, buf);
	}
}

/*
 * A node just made for the caller: the kernel applied the caller's umask
 * to mode already, so the daemon's own umask is undone; and a daemon
 * running as root gives the node to the caller, as a local file system
 * would (the parent's group when the parent is setgid, which the kernel
 * gave it already). chown clears setuid and setgid bits: the chmod after it
 * puts them back. Best effort: a failure leaves the node as made.
 */
static void own_new(fuse_req_t req, struct tfs_inode *parent, const char *name, mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stat st, pst;
	mode_t want;

	if (geteuid() == 0 && (ctx->uid != 0 || ctx->gid != 0)) {
		gid_t gid = ctx->gid;

		if (fstatat(parent->fd, "", &pst, AT_EMPTY_PATH) == 0 && (pst.st_mode & S_ISGID))
			gid = (gid_t)-1;
		(void)fchownat(parent->fd, name, ctx->uid, gid, AT_SYMLINK_NOFOLLOW);
	}
	if (fstatat(parent->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISLNK(st.st_mode))
		return;
	want = (mode & 07777) | (S_ISDIR(st.st_mode) ? st.st_mode & S_ISGID : 0);
	if ((st.st_mode & 07777) != want)
		(void)fchmodat(parent->fd, name, want, 0);
}

/* Shared tail of mknod/mkdir/symlink: look the new name up and answer. */
static void reply_new_entry(fuse_req_t req, struct tfs_inode *parent, const char *name, int res)
{
	struct fuse_entry_param e;

	if (res < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	res = do_lookup(req_tfs(req), parent, name, &e);
	if (res < 0)
		fuse_reply_err(req, -res);
	else
		fuse_reply_entry(req, &e);
}

static void tfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      dev_t rdev)
{
	struct tfs_inode *dir = tfs_inode_get(req, parent);

	/* FIFOs, sockets and device nodes stay in the store, local to this
	 * side: the engine never syncs them (FUSE.md "Special files"). */
	if (tfs_name_hidden(req_tfs(req), dir, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (mknodat(dir->fd, name, mode, S_ISREG(mode) ? 0 : rdev) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	own_new(req, dir, name, mode);
	reply_new_entry(req, dir, name, 0);
}

static void tfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct tfs_inode *dir = tfs_inode_get(req, parent);

	if (tfs_name_hidden(req_tfs(req), dir, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (mkdirat(dir->fd, name, mode) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	own_new(req, dir, name, mode);
	reply_new_entry(req, dir, name, 0);
}

static void tfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct tfs_inode *dir = tfs_inode_get(req, parent);

	if (tfs_name_hidden(req_tfs(req), dir, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (symlinkat(link, dir->fd, name) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	own_new(req, dir, name, 0);
	reply_new_entry(req, dir, name, 0);
}

/*
 * A hard link in the store; the peer gets each path as a file of its own
 * (FUSE.md "Hard links"). linkat through /proc/self/fd (AT_SYMLINK_FOLLOW
 * follows the magic link to the node itself, a symlink too) needs no
 * CAP_DAC_READ_SEARCH, unlike AT_EMPTY_PATH.
 */
static void tfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	struct tfs *tfs = req_tfs(req);
	struct tfs_inode *inode = tfs_inode_get(req, ino);
	struct tfs_inode *dir = tfs_inode_get(req, parent);
	char link[32];

	if (tfs_name_hidden(tfs, dir, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	snprintf(link, sizeof(link), "%d", inode->fd);
	reply_new_entry(req, dir, name, linkat(tfs->procfd, link, dir->fd, name, AT_SYMLINK_FOLLOW));
}

static void tfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct tfs_inode *dir = tfs_inode_get(req, parent);

	if (tfs_name_hidden(req_tfs(req), dir, name))
		fuse_reply_err(req, ENOENT);
	else
		fuse_reply_err(req, unlinkat(dir->fd, name, 0) < 0 ? errno : 0);
}

static void tfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct tfs_inode *dir = tfs_inode_get(req, parent);

	if (tfs_name_hidden(req_tfs(req), dir, name))
		fuse_reply_err(req, ENOENT);
	else
		fuse_reply_err(req, unlinkat(dir->fd, name, AT_REMOVEDIR) < 0 ? errno : 0);
}

static void tfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		       const char *newname, unsigned int flags)
{
	struct tfs *tfs = req_tfs(req);
	struct tfs_inode *dir = tfs_inode_get(req, parent);
	struct tfs_inode *newdir = tfs_inode_get(req, newparent);

	if (flags & ~(unsigned int)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT: overlayfs only */
		return;
	}
	if (tfs_name_hidden(tfs, dir, name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (tfs_name_hidden(tfs, newdir, newname)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (renameat2(dir->fd, name, newdir->fd, newname, flags) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	/* a file still open for writing goes out as it is (FUSE.md "Publishing") */
	hold_publish_at(tfs, newdir->fd, newname);
	if (flags & RENAME_EXCHANGE)
		hold_publish_at(tfs, dir->fd, name);
	fuse_reply_err(req, 0);
}

static void tfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct tfs *tfs = req_tfs(req);
	struct tfs_inode *inode = tfs_inode_get(req, ino);
	char name[32];
	int fd, r;

	if ((fi->flags & O_ACCMODE) != O_RDONLY && !(fi->flags & O_TRUNC)) {
		r = ensure(tfs, inode->fd, 0, UINT64_MAX);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
	}
	snprintf(name, sizeof(name), "%d", inode->fd);
	/* held before the open: its O_TRUNC must not go out either */
	if (for_writing(fi->flags))
		hold_open(tfs, (uint64_t)inode->dev, (uint64_t)inode->ino);
	fd = openat(tfs->procfd, name, (fi->flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL)) | O_CLOEXEC);
	if (fd < 0) {
		r = errno;
		if (for_writing(fi->flags) && tfs->hooks.write_close)
			tfs->hooks.write_close(tfs->ud, (uint64_t)inode->dev, (uint64_t)inode->ino);
		fuse_reply_err(req, r);
		return;
	}
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		/* the open was interrupted: no release will come */
		if (for_writing(fi->flags))
			hold_fd_done(tfs, fd, true);
		close(fd);
	}
}

static void tfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		       struct fuse_file_info *fi)
{
	struct tfs *tfs = req_tfs(req);
	struct tfs_inode *dir = tfs_inode_get(req, parent);
	struct fuse_entry_param e;
	int fd, r;

	if (tfs_name_hidden(tfs, dir, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fd = openat(dir->fd, name, ((fi->flags | O_CREAT) & ~O_NOFOLLOW) | O_CLOEXEC, mode);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	if (!(fi->flags & O_EXCL)) {
		/* O_CREAT alone may have opened an existing file: not ours to change */
		struct stat st;

		if (fstat(fd, &st) == 0 && st.st_size == 0 && st.st_nlink == 1 &&
		    st.st_uid == geteuid())
			own_new(req, dir, name, mode);
	} else
		own_new(req, dir, name, mode);
	if (for_writing(fi->flags) && tfs->hooks.write_open) {
		struct stat st;

		if (fstat(fd, &st) == 0)
			hold_open(tfs, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
	}
	r = do_lookup(tfs, dir, name, &e);
	if (r < 0) {
		if (for_writing(fi->flags))
			hold_fd_done(tfs, fd, true);
		close(fd);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		if (for_writing(fi->flags))
			hold_fd_done(tfs, fd, true);
		close(fd);
		tfs_inode_unref(tfs, tfs_inode_get(req, e.ino), 1);
	}
}

static void tfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	int r = ensure(req_tfs(req), (int)fi->fh, (uint64_t)off, size);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = (int)fi->fh;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void tfs_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			  struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	ssize_t n;

	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = (int)fi->fh;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in, 0);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void tfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* close() of a dup: reports delayed write errors like close(2) would. */
	int fd = dup((int)fi->fh);

	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fuse_reply_err(req, close(fd) < 0 ? errno : 0);
}

static void tfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* the writer is done: the file may go out (before the close, so the
	 * store's close event finds it no longer held) */
	if (for_writing(fi->flags))
		hold_fd_done(req_tfs(req), (int)fi->fh, true);
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void tfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int r = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);

	if (r < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	/* (libfuse gives fsync no open flags: any handle publishes) */
	hold_fd_done(req_tfs(req), (int)fi->fh, false);
	fuse_reply_err(req, 0);
}

static void tfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	if (fstatvfs(tfs_inode_get(req, ino)->fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

static void tfs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	char path[64];

	proc_path(tfs_inode_get(req, ino), path, sizeof(path));
	fuse_reply_err(req, faccessat(AT_FDCWD, path, mask, AT_EACCESS) < 0 ? errno : 0);
}

static void tfs_xattr_set(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			  size_t size, int flags)
{
	fuse_reply_err(req, ENOTSUP);
}

static void tfs_xattr_get(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	fuse_reply_err(req, ENOTSUP);
}

static void tfs_xattr_list(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	fuse_reply_err(req, ENOTSUP);
}

static void tfs_xattr_remove(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, ENOTSUP);
}

static void tfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		      struct fuse_file_info *fi)
{
	struct stat st;
	off_t r;

	if ((whence == SEEK_DATA || whence == SEEK_HOLE) && req_tfs(req)->hooks.ensure) {
		/* no holes (attr_fix): data up to the end, a hole at the end */
		if (fstat((int)fi->fh, &st) < 0) {
			fuse_reply_err(req, errno);
			return;
		}
		if (off < 0 || off >= st.st_size) {
			fuse_reply_err(req, ENXIO);
			return;
		}
		fuse_reply_lseek(req, whence == SEEK_DATA ? off : st.st_size);
		return;
	}
	r = lseek((int)fi->fh, off, whence);

	if (r < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, r);
}

static void tfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			  struct fuse_file_info *fi)
{
	fuse_reply_err(req, fallocate((int)fi->fh, mode, off, len) < 0 ? errno : 0);
}

static void tfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
				struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
				struct fuse_file_info *fi_out, size_t len, int flags)
{
	int r = ensure(req_tfs(req), (int)fi_in->fh, (uint64_t)off_in, len);
	ssize_t n;

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	n = copy_file_range((int)fi_in->fh, &off_in, (int)fi_out->fh, &off_out, len,
			    (unsigned int)flags);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_write(req, (size_t)n);
}

/* Directories. */

struct tfs_dir {
	DIR *dp;
	off_t offset;
	struct dirent *entry; /* read but not yet sent */
};

static struct tfs_dir *dir_of(struct fuse_file_info *fi)
{
	return (struct tfs_dir *)(uintptr_t)fi->fh;
}

static void tfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct tfs_dir *d = calloc(1, sizeof(*d));
	int fd, err;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = openat(tfs_inode_get(req, ino)->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	d->dp = fdopendir(fd);
	if (!d->dp) {
		err = errno;
		close(fd);
		errno = err;
		goto fail;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		closedir(d->dp);
		free(d);
	}
	return;
fail:
	err = errno;
	free(d);
	fuse_reply_err(req, err);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		       struct fuse_file_info *fi, bool plus)
{
	struct tfs *tfs = req_tfs(req);
	struct tfs_inode *dir = tfs_inode_get(req, ino);
	struct tfs_dir *d = dir_of(fi);
	char *buf = calloc(1, size), *p = buf;
	size_t rem = size;
	int err = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (offset != d->offset) {
		seekdir(d->dp, offset);
		d->entry = NULL;
		d->offset = offset;
	}
	for (;;) {
		struct fuse_entry_param e;
		size_t len;

		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				err = errno; /* 0 at the end */
				break;
			}
		}
		const char *name = d->entry->d_name;
		off_t next = d->entry->d_off;

		if (tfs_name_hidden(tfs, dir, name)) {
			d->entry = NULL;
			d->offset = next;
			continue;
		}
		if (plus) {
			bool dots = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;

			if (dots) {
				memset(&e, 0, sizeof(e));
				e.attr.st_ino = d->entry->d_ino;
				e.attr.st_mode = (mode_t)d->entry->d_type << 12;
			} else {
				int r = do_lookup(tfs, dir, name, &e);

				if (r == -ENOENT) { /* vanished meanwhile */
					d->entry = NULL;
					d->offset = next;
					continue;
				}
				if (r < 0) {
					err = -r;
					break;
				}
			}
			len = fuse_add_direntry_plus(req, p, rem, name, &e, next);
			if (len > rem) {
				if (!dots)
					tfs_inode_unref(tfs, tfs_inode_get(req, e.ino), 1);
				break;
			}
		} else {
			struct stat st = {
				.st_ino = d->entry->d_ino,
				.st_mode = (mode_t)d->entry->d_type << 12,
			};

			len = fuse_add_direntry(req, p, rem, name, &st, next);
			if (len > rem)
				break;
		}
		p += len;
		rem -= len;
		d->entry = NULL;
		d->offset = next;
	}
	/* An error after some entries: send what we have, the error comes again. */
	if (err && rem == size)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

static void tfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void tfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void tfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct tfs_dir *d = dir_of(fi);

	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static void tfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int fd = dirfd(dir_of(fi)->dp);
	int r = datasync ? fdatasync(fd) : fsync(fd);

	fuse_reply_err(req, r < 0 ? errno : 0);
}

const struct fuse_lowlevel_ops tfs_ops = {
	.init = tfs_init,
	.lookup = tfs_lookup,
	.forget = tfs_forget,
	.forget_multi = tfs_forget_multi,
	.getattr = tfs_getattr,
	.setattr = tfs_setattr,
	.readlink = tfs_readlink,
	.mknod = tfs_mknod,
	.mkdir = tfs_mkdir,
	.symlink = tfs_symlink,
	.link = tfs_link,
	.unlink = tfs_unlink,
	.rmdir = tfs_rmdir,
	.rename = tfs_rename,
	.open = tfs_open,
	.create = tfs_create,
	.read = tfs_read,
	.write_buf = tfs_write_buf,
	.flush = tfs_flush,
	.release = tfs_release,
	.fsync = tfs_fsync,
	.opendir = tfs_opendir,
	.readdir = tfs_readdir,
	.readdirplus = tfs_readdirplus,
	.releasedir = tfs_releasedir,
	.fsyncdir = tfs_fsyncdir,
	.statfs = tfs_statfs,
	.access = tfs_access,
	.setxattr = tfs_xattr_set,
	.getxattr = tfs_xattr_get,
	.listxattr = tfs_xattr_list,
	.removexattr = tfs_xattr_remove,
	.lseek = tfs_lseek,
	.fallocate = tfs_fallocate,
	.copy_file_range = tfs_copy_file_range,
};
