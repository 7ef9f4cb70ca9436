/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's side of the sync engine: creates it with the transport its
 * owner gives, and watches its fds. The engine itself (src/sync/engine.h)
 * knows nothing of connections, and syncd nothing of the daemon.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "base/clock.h"
#include "base/err.h"
#include "daemon/syncd.h"
#include "daemon/testknobs.h"
#include "base/log.h"

static void on_inotify(struct ev_watch *w, uint32_t events)
{
	struct syncd *s = w->ud;

	(void)events;
	engine_on_inotify(s->engine, clock_mono_ms());
}

static void on_hash(struct ev_watch *w, uint32_t events)
{
	struct syncd *s = w->ud;

	(void)events;
	engine_on_hash(s->engine, clock_mono_ms());
}

static void on_work(struct ev_watch *w, uint32_t events)
{
	struct syncd *s = w->ud;

	(void)events;
	engine_on_work(s->engine, clock_mono_ms());
}

static void on_ensure(struct ev_watch *w, uint32_t events)
{
	struct syncd *s = w->ud;

	(void)events;
	engine_on_ensure(s->engine, clock_mono_ms());
}

static void on_hold(struct ev_watch *w, uint32_t events)
{
	struct syncd *s = w->ud;

	(void)events;
	engine_on_hold(s->engine, clock_mono_ms());
}

static int watch(struct syncd *s, struct ev_watch *w, int fd,
		 void (*on_event)(struct ev_watch *w, uint32_t events))
{
	int r;

	w->fd = fd;
	w->on_event = on_event;
	w->ud = s;
	if (fd < 0)
		return 0;
	r = evloop_watch_add(s->loop, w, EPOLLIN);
	if (r < 0)
		w->fd = -1;
	return r;
}

int syncd_start(struct syncd *s, struct evloop *loop, const struct daemon_opts *dopts,
		const struct engine_io *io, struct err *err)
{
	struct engine_opts o = {0};
	char index_file[PATH_MAX + 16];
	int r;

	s->loop = loop;
	s->inotify_w.fd = s->hash_w.fd = s->work_w.fd = s->ensure_w.fd = s->hold_w.fd = -1;
	snprintf(index_file, sizeof(index_file), "%s/index.db", dopts->paths->state);
	o.root = dopts->dir;
	o.index_file = index_file;
	o.rate_bps = testknob_get(TESTKNOB_RATE_BPS, 0);
	o.mode_mask = dopts->mode_mask;
	o.symlinks_all = dopts->symlinks_all;
	/* the mount fetches content when it is read (a --dir daemon only in tests) */
	o.lazy = dopts->mount || testknob_get(TESTKNOB_LAZY, 0) == 1;
	o.cache_max = dopts->cache_max;
	o.evict_age_ms = testknob_get(TESTKNOB_LAZY_EVICT_AGE_MS, 0);
	err_clear(err);
	r = engine_new(&o, io, &s->engine, err, clock_mono_ms());
	if (r < 0) {
		err_prefix(err, "cannot sync %s: ", dopts->dir);
		return r;
	}
	r = watch(s, &s->inotify_w, engine_inotify_fd(s->engine), on_inotify);
	if (r == 0)
		r = watch(s, &s->hash_w, engine_hash_fd(s->engine), on_hash);
	if (r == 0)
		r = watch(s, &s->work_w, engine_work_fd(s->engine), on_work);
	if (r == 0)
		r = watch(s, &s->ensure_w, engine_ensure_fd(s->engine), on_ensure);
	if (r == 0)
		r = watch(s, &s->hold_w, engine_hold_fd(s->engine), on_hold);
	if (r < 0) {
		err_set(err, "cannot watch the sync engine: %s", strerror(-r));
		return r;
	}
	return 0;
}

void syncd_stop(struct syncd *s)
{
	if (!s->engine)
		return;
	/* the engine owns these fds: stop watching, it closes them */
	evloop_watch_del(s->loop, &s->inotify_w);
	evloop_watch_del(s->loop, &s->hash_w);
	evloop_watch_del(s->loop, &s->work_w);
	evloop_watch_del(s->loop, &s->ensure_w);
	evloop_watch_del(s->loop, &s->hold_w);
	engine_free(s->engine);
	s->engine = NULL;
}
