/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE mount of `tandem up --mount`: clears a mount left by a crash,
 * mounts the store over its root fd, forwards the engine's changes to the
 * kernel's caches (tfs_invalidate queues them for tfs's notifier thread,
 * never blocking the loop), and unmounts at shutdown. When the mount ends
 * on its own (fusermount3 -u, an aborted connection) the daemon stops: a
 * share nobody can see is not worth syncing behind the user's back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "config.h"
#include "base/err.h"
#include "daemon/mountd.h"
#include "daemon/testknobs.h"
#include "base/log.h"
#include "sync/engine.h"

#if HAVE_FUSE
#include "tfs.h"

bool mountd_built_in(void)
{
	return true;
}

int mountd_available(struct err *err)
{
	struct err e;
	int r = tfs_check_available(testknob_fuse_dev(), e.msg, sizeof(e.msg));

	if (r < 0)
		err_set(err, "%s", e.msg);
	return r;
}

static void on_tfs_event(struct ev_watch *w, uint32_t events)
{
	struct mountd *m = w->ud;

	(void)events;
	/* stop watching: the fd stays readable; mountd_stop cleans up */
	evloop_watch_del(m->loop, &m->tfs_w);
	m->on_gone(m->ud);
}

/* FUSE threads ask for content that is not local yet (engine_ensure is
 * thread-safe; the engine outlives the mount). */
static int ensure(void *ud, const char *relpath, const struct stat *st, uint64_t off,
		  uint64_t len, int timeout_ms)
{
	struct mountd *m = ud;

	return engine_ensure(m->engine, relpath, st, off, len, timeout_ms);
}

/* Files open for writing on the mount are published when their writer is
 * done (engine.h, docs/FUSE.md "Publishing"). */
static int write_open(void *ud, uint64_t dev, uint64_t ino)
{
	struct mountd *m = ud;

	return engine_write_open(m->engine, dev, ino);
}

static void write_close(void *ud, uint64_t dev, uint64_t ino)
{
	struct mountd *m = ud;

	engine_write_close(m->engine, dev, ino);
}

static void write_publish(void *ud, uint64_t dev, uint64_t ino)
{
	struct mountd *m = ud;

	engine_write_publish(m->engine, dev, ino);
}

int mountd_start(struct mountd *m, struct evloop *loop, struct engine *engine, const char *mount,
		 const char *opts, const char *dir, void (*on_gone)(void *ud), void *ud,
		 struct err *err)
{
	/* §7: an uncached read with the peer gone fails within 10 s (tests may
	 * shorten it; tfs_mount copies the hooks) */
	const struct tfs_hooks hooks = {
		.ensure = ensure,
		.ensure_timeout_ms = (int)testknob_get(TESTKNOB_ENSURE_TIMEOUT_MS, 10000),
		.write_open = write_open,
		.write_close = write_close,
		.write_publish = write_publish,
		.mount_opts = opts};
	const char *mp = mount;
	struct err terr;
	int rootfd, r;

	m->loop = loop;
	m->engine = engine;
	m->mount = mount;
	m->on_gone = on_gone;
	m->ud = ud;
	m->tfs_w.fd = -1;
	r = tfs_check_available(testknob_fuse_dev(), terr.msg, sizeof(terr.msg));
	if (r < 0) {
		err_set(err, "cannot mount the share: %s", terr.msg);
		return r;
	}
	r = tfs_clear_stale(mp, terr.msg, sizeof(terr.msg));
	if (r < 0) {
		err_set(err, "cannot mount the share at %s: %s", mp, terr.msg);
		return r;
	}
	rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		r = -errno;
		err_set(err, "cannot open the store %s: %s", dir, strerror(-r));
		return r;
	}
	r = tfs_mount(mp, rootfd, &hooks, m, &m->tfs, terr.msg, sizeof(terr.msg));
	close(rootfd);
	if (r < 0) {
		err_set(err, "%s", terr.msg);
		return r;
	}
	m->tfs_w.fd = tfs_event_fd(m->tfs);
	m->tfs_w.on_event = on_tfs_event;
	m->tfs_w.ud = m;
	r = evloop_watch_add(m->loop, &m->tfs_w, EPOLLIN);
	if (r < 0) {
		m->tfs_w.fd = -1;
		err_set(err, "cannot watch the FUSE session: %s", strerror(-r));
		return r;
	}
	log_info("mounted the share at %s (store %s%s%s)", mp, dir, opts && *opts ? ", options " : "",
		 opts && *opts ? opts : "");
	return 0;
}

void mountd_changed(struct mountd *m, const char *path)
{
	if (m->tfs)
		tfs_invalidate(m->tfs, path);
}

void mountd_stop(struct mountd *m)
{
	if (!m->tfs)
		return;
	/* tfs owns the eventfd: stop watching, tfs_unmount closes it */
	evloop_watch_del(m->loop, &m->tfs_w);
	/* a read waiting for the peer's blocks would hold the unmount until its
	 * timeout (10 s): this loop serves no more ensures */
	if (m->engine)
		engine_ensure_stop(m->engine);
	tfs_unmount(m->tfs);
	m->tfs = NULL;
	log_info("unmounted %s", m->mount);
}

#else /* !HAVE_FUSE */

#define NOT_BUILT                                                                        \
	"this tandem was built without FUSE support (libfuse3 was not found when it was " \
	"built), so it cannot mount; share a plain folder with --dir DIR, or rebuild "   \
	"with libfuse3 (apt-get install libfuse3-dev; meson setup -Dfuse=enabled)"

bool mountd_built_in(void)
{
	return false;
}

int mountd_available(struct err *err)
{
	err_set(err, "%s", NOT_BUILT);
	return -ENOTSUP;
}

int mountd_start(struct mountd *m, struct evloop *loop, struct engine *engine, const char *mount,
		 const char *opts, const char *dir, void (*on_gone)(void *ud), void *ud,
		 struct err *err)
{
	(void)loop;
	(void)engine;
	(void)mount;
	(void)opts;
	(void)dir;
	(void)on_gone;
	(void)ud;
	m->tfs = NULL;
	m->tfs_w.fd = -1;
	err_set(err, "%s", NOT_BUILT);
	return -ENOTSUP;
}

void mountd_changed(struct mountd *m, const char *path)
{
	(void)m;
	(void)path;
}

void mountd_stop(struct mountd *m)
{
	(void)m;
}

#endif
