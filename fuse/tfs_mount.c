/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The mount's lifecycle: availability checks, clearing a stale mount,
 * mounting and serving from our own threads, the invalidation notifier, and
 * the unmount. Unmount design: fuse_session_exit() alone does not wake the
 * workers blocked reading /dev/fuse, so we unmount first (the kernel then
 * aborts the connection and every reader gets ENODEV); when the mount is
 * busy we detach it lazily and abort the connection through fusectl, so
 * the daemon never hangs on a shell sitting in the mount.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "tfs_internal.h"

#define TFS_FUSE_SUPER_MAGIC 0x65735546
#define TFS_INVAL_QUEUE_MAX 65536 /* queued paths; beyond, invalidate everything */
#define TFS_JOIN_TIMEOUT_S 10
#define TFS_MOUNT_OPTS "default_permissions,fsname=tandem,subtype=tandem"

extern char **environ;

/* libfuse's log goes to ours; the last error also explains a failed mount. */
static __thread char fuse_last_msg[256];

static void fuse_log_to_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;
	enum log_level l;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (level <= FUSE_LOG_ERR) {
		l = LOG_LVL_ERR;
		snprintf(fuse_last_msg, sizeof(fuse_last_msg), "%s", buf);
	} else if (level == FUSE_LOG_WARNING)
		l = LOG_LVL_WARN;
	else if (level == FUSE_LOG_NOTICE)
		l = LOG_LVL_NOTICE;
	else if (level == FUSE_LOG_INFO)
		l = LOG_LVL_INFO;
	else
		l = LOG_LVL_DEBUG;
	log_msg(l, "libfuse: %s", buf);
}

static void log_setup(void)
{
	fuse_set_log_func(fuse_log_to_log);
}

static bool on_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
	while (*path) {
		size_t len = strcspn(path, ":");

		if (len > 0 && len + strlen(prog) + 2 <= sizeof(buf)) {
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, prog);
			if (access(buf, X_OK) == 0)
				return true;
		}
		path += len;
		if (*path == ':')
			path++;
	}
	return false;
}

int tfs_check_available(const char *dev, char *err, size_t errlen)
{
	const char *alt = "or run without FUSE: tandem up --dir DIR";
	int fd, e;

	if (!dev || !*dev)
		dev = "/dev/fuse";
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (e == ENOENT)
			snprintf(err, errlen,
				 "%s does not exist: load the FUSE module (modprobe fuse, as root), "
				 "install fuse3 (apt-get install fuse3), or in a container pass the "
				 "device (docker run --device /dev/fuse --cap-add SYS_ADMIN); %s",
				 dev, alt);
		else if (e == EACCES || e == EPERM)
			snprintf(err, errlen,
				 "cannot open %s: permission denied; make it usable by this user "
				 "(mode 0666, as fuse3's udev rule sets it) or in a container pass "
				 "the device (--device /dev/fuse); %s",
				 dev, alt);
		else if (e == ENXIO || e == ENODEV)
			snprintf(err, errlen,
				 "%s exists but no driver answers it: load the FUSE module "
				 "(modprobe fuse, as root); %s",
				 dev, alt);
		else
			snprintf(err, errlen, "cannot open %s: %s; %s", dev, strerror(e), alt);
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
		close(fd);
		snprintf(err, errlen,
			 "%s is not the FUSE character device: recreate it (mknod %s c 10 229, "
			 "or modprobe fuse), or in a container pass it (--device /dev/fuse); %s",
			 dev, dev, alt);
		return -ENODEV;
	}
	close(fd);
	if (geteuid() != 0 && !on_path("fusermount3")) {
		snprintf(err, errlen,
			 "fusermount3 is not on PATH and only root can mount without it: install "
			 "fuse3 (apt-get install fuse3); %s",
			 alt);
		return -ENOENT;
	}
	return 0;
}

/* Runs fusermount3 -u [-z] -q -- mountpoint. Returns 0 or -errno. */
static int run_fusermount(const char *mountpoint, bool lazy)
{
	char *argv[] = { (char *)"fusermount3", (char *)"-u", (char *)"-q",
			 (char *)(lazy ? "-z" : "-q"), (char *)"--", (char *)mountpoint, NULL };
	pid_t pid;
	int st, r;

	r = posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ);
	if (r != 0)
		return -r;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EBUSY;
}

static int detach_lazy(const char *mountpoint)
{
	if (geteuid() == 0)
		return umount2(mountpoint, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 ? -errno : 0;
	return run_fusermount(mountpoint, true);
}

/* Is mountpoint the root of a FUSE mount? sf is its statfs. */
static bool is_fuse_root(const char *mountpoint, const struct statfs *sf)
{
	struct stat st, up;
	char parent[PATH_MAX];

	if (sf->f_type != TFS_FUSE_SUPER_MAGIC)
		return false;
	if (snprintf(parent, sizeof(parent), "%s/..", mountpoint) >= (int)sizeof(parent))
		return false;
	if (stat(mountpoint, &st) < 0 || stat(parent, &up) < 0)
		return false;
	return st.st_dev != up.st_dev;
}

int tfs_clear_stale(const char *mountpoint, char *err, size_t errlen)
{
	struct statfs sf;
	struct stat st;
	int r;

	/*
	 * The probe is statfs: FUSE always asks the server for it, while stat
	 * may answer from the attribute cache for a second after a crash.
	 */
	if (statfs(mountpoint, &sf) == 0) {
		if (is_fuse_root(mountpoint, &sf)) {
			snprintf(err, errlen,
				 "\"%s\" is already a live FUSE mount (is another tandem running?); "
				 "unmount it with fusermount3 -u \"%s\" first",
				 mountpoint, mountpoint);
			return -EBUSY;
		}
		return 0;
	}
	if (errno != ENOTCONN && errno != ECONNABORTED) {
		r = -errno;
		snprintf(err, errlen, "cannot use mount point \"%s\": %s", mountpoint,
			 strerror(-r));
		return r;
	}
	log_notice("clearing the stale FUSE mount at \"%s\" left by a crashed process",
		   mountpoint);
	r = detach_lazy(mountpoint);
	if (r < 0) {
		snprintf(err, errlen,
			 "\"%s\" is a dead FUSE mount and unmounting it failed (%s); run "
			 "fusermount3 -u -z \"%s\" (or umount -l as root)",
			 mountpoint, strerror(-r), mountpoint);
		return r;
	}
	if (stat(mountpoint, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "mount point \"%s\" is still unusable after unmounting: %s",
			 mountpoint, strerror(-r));
		return r;
	}
	return 0;
}

/* Aborts the connection through fusectl; a last resort for a busy mount. */
static void abort_conn(struct tfs *tfs)
{
	char path[96];
	unsigned int id = (major(tfs->mnt_dev) << 20) | minor(tfs->mnt_dev);
	int fd;

	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort", id);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && geteuid() == 0 &&
	    mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL) == 0)
		fd = open(path, O_WRONLY | O_CLOEXEC); /* fusectl was not mounted */
	if (fd < 0 || write(fd, "1", 1) != 1)
		log_warn("cannot abort FUSE connection %u through %s: %s", id, path,
			 strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* The notifier thread. */

static void inval_path(struct tfs *tfs, const char *relpath)
{
	fuse_ino_t parent = FUSE_ROOT_ID;
	char comp[NAME_MAX + 1];
	const char *p = relpath;
	int dirfd = -1, r;

	while (*p == '/')
		p++;
	if (!*p || strcmp(p, ".") == 0) {
		(void)fuse_lowlevel_notify_inval_inode(tfs->se, FUSE_ROOT_ID, 0, 0);
		return;
	}
	for (;;) {
		size_t len = strcspn(p, "/");
		struct tfs_inode *known;
		struct stat st;
		int fd;

		if (len == 0 || len > NAME_MAX)
			break;
		memcpy(comp, p, len);
		comp[len] = '\0';
		p += len;
		while (*p == '/')
			p++;
		fd = openat(dirfd < 0 ? tfs->root.fd : dirfd, comp,
			    O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || !*p) {
			/* The deepest name that changed: drop the kernel's dentry. */
			r = fuse_lowlevel_notify_inval_entry(tfs->se, parent, comp, len);
			if (r < 0 && r != -ENOENT)
				log_debug("notify_inval_entry: %s", strerror(-r));
			if (fd >= 0 && fstatat(fd, "", &st, AT_EMPTY_PATH) == 0 &&
			    (known = tfs_inode_find(tfs, st.st_dev, st.st_ino)) != NULL) {
				fuse_ino_t id = known == &tfs->root ? FUSE_ROOT_ID
								    : (fuse_ino_t)(uintptr_t)known;
				/* only the id is used: the node may be forgotten meanwhile */
				r = fuse_lowlevel_notify_inval_inode(tfs->se, id, 0, 0);
				if (r < 0 && r != -ENOENT)
					log_debug("notify_inval_inode: %s", strerror(-r));
			}
			if (fd >= 0)
				close(fd);
			break;
		}
		if (dirfd >= 0)
			close(dirfd);
		dirfd = fd;
		if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
			break;
		known = tfs_inode_find(tfs, st.st_dev, st.st_ino);
		if (!known)
			break; /* the kernel caches nothing below an unknown directory */
		parent = known == &tfs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)known;
	}
	if (dirfd >= 0)
		close(dirfd);
}

static void inval_all(struct tfs *tfs)
{
	fuse_ino_t *ids;
	ssize_t n = tfs_inode_list(tfs, &ids);

	if (n < 0)
		return;
	for (ssize_t i = 0; i < n; i++)
		(void)fuse_lowlevel_notify_inval_inode(tfs->se, ids[i], 0, 0);
	free(ids);
}

static void *notify_main(void *arg)
{
	struct tfs *tfs = arg;

	for (;;) {
		struct tfs_inval *list;
		uint64_t gen;
		bool all;

		pthread_mutex_lock(&tfs->qlock);
		while (!tfs->qstop && !tfs->qhead && !tfs->qall)
			pthread_cond_wait(&tfs->qcond, &tfs->qlock);
		if (tfs->qstop) {
			pthread_mutex_unlock(&tfs->qlock);
			break;
		}
		list = tfs->qhead;
		all = tfs->qall;
		gen = tfs->qgen_queued;
		tfs->qhead = NULL;
		tfs->qtail = &tfs->qhead;
		tfs->qall = false;
		pthread_mutex_unlock(&tfs->qlock);

		if (all)
			inval_all(tfs);
		while (list) {
			struct tfs_inval *next = list->next;

			if (!all)
				inval_path(tfs, list->path);
			free(list);
			list = next;
		}
		pthread_mutex_lock(&tfs->qlock);
		tfs->qgen_done = gen;
		pthread_cond_broadcast(&tfs->qdone);
		pthread_mutex_unlock(&tfs->qlock);
	}
	return NULL;
}

static size_t queue_len_locked(struct tfs *tfs)
{
	size_t n = 0;

	for (struct tfs_inval *i = tfs->qhead; i && n <= TFS_INVAL_QUEUE_MAX; i = i->next)
		n++;
	return n;
}

void tfs_invalidate(struct tfs *tfs, const char *relpath)
{
	size_t len = strlen(relpath);
	struct tfs_inval *it = malloc(sizeof(*it) + len + 1);

	pthread_mutex_lock(&tfs->qlock);
	if (!it || tfs->qall || queue_len_locked(tfs) >= TFS_INVAL_QUEUE_MAX) {
		tfs->qall = true; /* cannot queue it: refresh everything instead */
		free(it);
	} else {
		memcpy(it->path, relpath, len + 1);
		it->next = NULL;
		*tfs->qtail = it;
		tfs->qtail = &it->next;
	}
	tfs->qgen_queued++;
	pthread_cond_signal(&tfs->qcond);
	pthread_mutex_unlock(&tfs->qlock);
}

void tfs_invalidate_all(struct tfs *tfs)
{
	pthread_mutex_lock(&tfs->qlock);
	tfs->qall = true;
	tfs->qgen_queued++;
	pthread_cond_signal(&tfs->qcond);
	pthread_mutex_unlock(&tfs->qlock);
}

void tfs_invalidate_flush(struct tfs *tfs)
{
	pthread_mutex_lock(&tfs->qlock);
	uint64_t want = tfs->qgen_queued;

	while (tfs->notify_started && !tfs->qstop && tfs->qgen_done < want)
		pthread_cond_wait(&tfs->qdone, &tfs->qlock);
	pthread_mutex_unlock(&tfs->qlock);
}

int tfs_event_fd(const struct tfs *tfs)
{
	return tfs->eventfd;
}

/* The session. */

static void *loop_main(void *arg)
{
	struct tfs *tfs = arg;
	struct fuse_loop_config cfg = { .clone_fd = 1, .max_idle_threads = 10 };
	uint64_t one = 1;
	int r = fuse_session_loop_mt(tfs->se, &cfg);

	if (r != 0)
		log_debug("FUSE session loop ended: %d", r);
	if (write(tfs->eventfd, &one, sizeof(one)) < 0)
		log_debug("eventfd write: %s", strerror(errno));
	return NULL;
}

/* Starts a thread with every signal blocked (libfuse workers inherit it). */
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}

static void tfs_free(struct tfs *tfs)
{
	struct tfs_inval *i = tfs->qhead;

	while (i) {
		struct tfs_inval *next = i->next;

		free(i);
		i = next;
	}
	tfs_itable_done(tfs);
	if (tfs->se)
		fuse_session_destroy(tfs->se);
	if (tfs->root.fd >= 0)
		close(tfs->root.fd);
	if (tfs->procfd >= 0)
		close(tfs->procfd);
	if (tfs->eventfd >= 0)
		close(tfs->eventfd);
	pthread_mutex_destroy(&tfs->lock);
	pthread_mutex_destroy(&tfs->qlock);
	pthread_cond_destroy(&tfs->qcond);
	pthread_cond_destroy(&tfs->qdone);
	free(tfs->mountpoint);
	free(tfs->root_path);
	free(tfs);
}

static void stop_notifier(struct tfs *tfs)
{
	if (!tfs->notify_started)
		return;
	pthread_mutex_lock(&tfs->qlock);
	tfs->qstop = true;
	pthread_cond_signal(&tfs->qcond);
	pthread_cond_broadcast(&tfs->qdone);
	pthread_mutex_unlock(&tfs->qlock);
	pthread_join(tfs->notify_thread, NULL);
	tfs->notify_started = false;
}

/* Ends the session and joins its thread. Returns false if it would not end. */
static bool stop_session(struct tfs *tfs)
{
	struct timespec deadline;
	struct stat st;
	bool ours;
	int r;

	fuse_session_exit(tfs->se);
	/* Unmount only what is still our mount (someone may have unmounted it). */
	r = stat(tfs->mountpoint, &st);
	ours = (r == 0 && st.st_dev == tfs->mnt_dev) ||
	       (r < 0 && (errno == ENOTCONN || errno == ECONNABORTED));
	if (ours) {
		if (geteuid() == 0)
			r = umount2(tfs->mountpoint, UMOUNT_NOFOLLOW) < 0 ? -errno : 0;
		else
			r = run_fusermount(tfs->mountpoint, false);
		if (r < 0) {
			log_notice("FUSE mount \"%s\" is busy (%s): detaching it lazily",
				   tfs->mountpoint, strerror(-r));
			(void)detach_lazy(tfs->mountpoint);
			abort_conn(tfs);
		}
	}
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += TFS_JOIN_TIMEOUT_S;
	r = pthread_timedjoin_np(tfs->loop_thread, NULL, &deadline);
	if (r == ETIMEDOUT) {
		abort_conn(tfs);
		deadline.tv_sec += TFS_JOIN_TIMEOUT_S;
		r = pthread_timedjoin_np(tfs->loop_thread, NULL, &deadline);
	}
	if (r != 0) {
		log_err("the FUSE session at \"%s\" does not end (%s); leaving it behind",
			tfs->mountpoint, strerror(r));
		return false;
	}
	tfs->loop_started = false;
	return true;
}

void tfs_unmount(struct tfs *tfs)
{
	if (!tfs)
		return;
	stop_notifier(tfs);
	if (tfs->loop_started && !stop_session(tfs))
		return; /* threads still use tfs: leaking it is the safe choice */
	fuse_session_unmount(tfs->se);
	tfs_free(tfs);
}

int tfs_mount(const char *mountpoint, int backing_rootfd, const struct tfs_hooks *hooks, void *ud,
	      struct tfs **ret, char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	char opts[512];
	char *argv[] = { (char *)"tandem", (char *)"-o", opts, (char *)"-d", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	char link[64], path[PATH_MAX];
	struct tfs *tfs;
	struct stat st;
	ssize_t n;
	int r;

	pthread_once(&once, log_setup);
	if (hooks && hooks->mount_opts && *hooks->mount_opts) {
		if ((size_t)snprintf(opts, sizeof(opts), "%s,%s", TFS_MOUNT_OPTS,
				     hooks->mount_opts) >= sizeof(opts)) {
			snprintf(err, errlen, "the mount options are too long");
			return -EINVAL;
		}
	} else
		snprintf(opts, sizeof(opts), "%s", TFS_MOUNT_OPTS);
	if (getenv("TANDEM_FUSE_DEBUG"))
		args.argc = 4; /* libfuse's request trace, through log.h at debug */
	tfs = calloc(1, sizeof(*tfs));
	if (!tfs) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	tfs->root.fd = tfs->procfd = tfs->eventfd = -1;
	tfs->qtail = &tfs->qhead;
	pthread_mutex_init(&tfs->lock, NULL);
	pthread_mutex_init(&tfs->qlock, NULL);
	pthread_cond_init(&tfs->qcond, NULL);
	pthread_cond_init(&tfs->qdone, NULL);
	if (hooks)
		tfs->hooks = *hooks;
	tfs->ud = ud;

	r = tfs_itable_init(tfs);
	tfs->mountpoint = strdup(mountpoint);
	if (r < 0 || !tfs->mountpoint) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	tfs->root.fd = openat(backing_rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (tfs->root.fd < 0 || fstat(tfs->root.fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open the backing directory: %s", strerror(-r));
		goto fail;
	}
	tfs->root.dev = st.st_dev;
	tfs->root.ino = st.st_ino;
	tfs->root.nlookup = 1;
	r = tfs_itable_add_root(tfs);
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	tfs->procfd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (tfs->procfd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open /proc/self/fd (is /proc mounted?): %s",
			 strerror(-r));
		goto fail;
	}
	snprintf(link, sizeof(link), "%d", tfs->root.fd);
	n = readlinkat(tfs->procfd, link, path, sizeof(path) - 1);
	if (n < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot name the backing directory: %s", strerror(-r));
		goto fail;
	}
	path[n] = '\0';
	tfs->root_path = strdup(path);
	tfs->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!tfs->root_path || tfs->eventfd < 0) {
		r = tfs->root_path ? -errno : -ENOMEM;
		snprintf(err, errlen, "cannot set up the mount: %s", strerror(-r));
		goto fail;
	}

	fuse_last_msg[0] = '\0';
	tfs->se = fuse_session_new(&args, &tfs_ops, sizeof(tfs_ops), tfs);
	fuse_opt_free_args(&args); /* libfuse may have copied them */
	if (!tfs->se) {
		r = -EINVAL;
		snprintf(err, errlen, "cannot start a FUSE session: %s",
			 fuse_last_msg[0] ? fuse_last_msg : "libfuse refused the options");
		goto fail;
	}
	if (fuse_session_mount(tfs->se, mountpoint) != 0) {
		r = -EPERM;
		snprintf(err, errlen,
			 "cannot mount FUSE at \"%s\": %s (the mount point must be an existing "
			 "directory; in a container FUSE needs --device /dev/fuse --cap-add "
			 "SYS_ADMIN); or run without FUSE: tandem up --dir DIR",
			 mountpoint, fuse_last_msg[0] ? fuse_last_msg : "mount refused");
		fuse_session_destroy(tfs->se);
		tfs->se = NULL;
		goto fail;
	}
	r = start_thread(&tfs->loop_thread, loop_main, tfs);
	if (r < 0) {
		snprintf(err, errlen, "cannot start the FUSE threads: %s", strerror(-r));
		fuse_session_unmount(tfs->se);
		goto fail;
	}
	tfs->loop_started = true;
	/* The mount answers once INIT is done; this stat waits for it. */
	if (stat(mountpoint, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "the FUSE mount at \"%s\" does not answer: %s", mountpoint,
			 strerror(-r));
		goto fail_mounted;
	}
	tfs->mnt_dev = st.st_dev;
	r = start_thread(&tfs->notify_thread, notify_main, tfs);
	if (r < 0) {
		snprintf(err, errlen, "cannot start the FUSE notifier: %s", strerror(-r));
		goto fail_mounted;
	}
	tfs->notify_started = true;
	*ret = tfs;
	return 0;

fail_mounted:
	tfs_unmount(tfs);
	return r;
fail:
	tfs_free(tfs);
	return r;
}
