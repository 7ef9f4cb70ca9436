/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's side of the sync engine: creates it, gives it the active
 * connection as its transport, and watches its fds. The engine itself
 * (src/sync/engine.h) knows nothing of connections.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "daemon/conn.h"
#include "daemon/mountd.h"
#include "daemon/syncd.h"
#include "daemon/testknobs.h"
#include "base/log.h"

static int io_send(void *ud, const uint8_t *msg, size_t len)
{
	struct daemon *d = ud;

	if (!d->active || d->active->state != CONN_UP)
		return -ENOTCONN;
	return conn_send_data(d->active, msg, len);
}

static size_t io_room(void *ud)
{
	struct daemon *d = ud;
	size_t used, max = CONN_OUT_MAX - FRAME_LEN(0) - 64;

	if (!d->active || d->active->state != CONN_UP)
		return 0;
	used = d->active->out.len;
	return used >= max ? 0 : max - used - FRAME_LEN(0);
}

static void io_close(void *ud, const char *why)
{
	struct daemon *d = ud;

	if (!d->active) {
		log_warn("protocol error from the peer: %s", why);
		return;
	}
	log_warn("protocol error from the peer at %s: %s; closing the connection",
		 d->active->addr, why);
	conn_close(d->active, FRAME_CLOSE_PROTOCOL, why);
}

static void io_changed(void *ud, const char *path)
{
	mountd_changed(ud, path);
}

static void on_inotify(struct ev_watch *w, uint32_t events)
{
	struct daemon *d = w->ud;
	(void)w;
	(void)events;
	engine_on_inotify(d->engine, clock_mono_ms());
}

static void on_hash(struct ev_watch *w, uint32_t events)
{
	struct daemon *d = w->ud;
	(void)w;
	(void)events;
	engine_on_hash(d->engine, clock_mono_ms());
}

static void on_work(struct ev_watch *w, uint32_t events)
{
	struct daemon *d = w->ud;
	(void)w;
	(void)events;
	engine_on_work(d->engine, clock_mono_ms());
}

/* Lazy mode's ensure requests (one daemon per process owns the engine). */
static struct ev_watch ensure_w = {.fd = -1};

static void on_ensure(struct ev_watch *w, uint32_t events)
{
	struct daemon *d = w->ud;
	(void)w;
	(void)events;
	engine_on_ensure(d->engine, clock_mono_ms());
}

/* Files the mount had open for writing may go out (engine_write_*). */
static struct ev_watch hold_w = {.fd = -1};

static void on_hold(struct ev_watch *w, uint32_t events)
{
	struct daemon *d = w->ud;
	(void)w;
	(void)events;
	engine_on_hold(d->engine, clock_mono_ms());
}

int syncd_start(struct daemon *d, struct err *err)
{
	struct engine_io io = {
		.ud = d, .send = io_send, .room = io_room, .close = io_close,
		.changed = d->opts->mount ? io_changed : NULL};
	struct engine_opts o = {0};
	char index_file[PATH_MAX + 16];
	int r;

	d->inotify_w.fd = d->hash_w.fd = d->work_w.fd = -1;
	snprintf(index_file, sizeof(index_file), "%s/index.db", d->opts->paths->state);
	o.root = d->opts->dir;
	o.index_file = index_file;
	o.rate_bps = testknob_get(TESTKNOB_RATE_BPS, 0);
	o.mode_mask = d->opts->mode_mask;
	o.symlinks_all = d->opts->symlinks_all;
	/* the mount fetches content when it is read (a --dir daemon only in tests) */
	o.lazy = d->opts->mount || testknob_get(TESTKNOB_LAZY, 0) == 1;
	o.cache_max = d->opts->cache_max;
	o.evict_age_ms = testknob_get(TESTKNOB_LAZY_EVICT_AGE_MS, 0);
	err_clear(err);
	r = engine_new(&o, &io, &d->engine, err, clock_mono_ms());
	if (r < 0) {
		err_prefix(err, "cannot sync %s: ", d->opts->dir);
		return r;
	}
	d->inotify_w.fd = engine_inotify_fd(d->engine);
	d->inotify_w.on_event = on_inotify;
	d->inotify_w.ud = d;
	d->hash_w.fd = engine_hash_fd(d->engine);
	d->hash_w.on_event = on_hash;
	d->hash_w.ud = d;
	d->work_w.fd = engine_work_fd(d->engine);
	d->work_w.on_event = on_work;
	d->work_w.ud = d;
	if (evloop_watch_add(d->loop, &d->inotify_w, EPOLLIN) < 0 ||
	    evloop_watch_add(d->loop, &d->hash_w, EPOLLIN) < 0 ||
	    (d->work_w.fd >= 0 && evloop_watch_add(d->loop, &d->work_w, EPOLLIN) < 0)) {
		r = -errno;
		err_set(err, "cannot watch the sync engine: %s", strerror(-r));
		return r;
	}
	ensure_w.fd = engine_ensure_fd(d->engine);
	ensure_w.on_event = on_ensure;
	ensure_w.ud = d;
	if (ensure_w.fd >= 0 && evloop_watch_add(d->loop, &ensure_w, EPOLLIN) < 0) {
		r = -errno;
		err_set(err, "cannot watch the sync engine: %s", strerror(-r));
		return r;
	}
	hold_w.fd = engine_hold_fd(d->engine);
	hold_w.on_event = on_hold;
	hold_w.ud = d;
	r = evloop_watch_add(d->loop, &hold_w, EPOLLIN);
	if (r < 0) {
		hold_w.fd = -1;
		err_set(err, "cannot watch the sync engine: %s", strerror(-r));
		return r;
	}
	return 0;
}

void syncd_stop(struct daemon *d)
{
	/* the engine owns these fds: stop watching, it closes them */
	if (d->inotify_w.fd >= 0)
		evloop_watch_del(d->loop, &d->inotify_w);
	if (d->hash_w.fd >= 0)
		evloop_watch_del(d->loop, &d->hash_w);
	if (d->work_w.fd >= 0)
		evloop_watch_del(d->loop, &d->work_w);
	if (ensure_w.fd >= 0)
		evloop_watch_del(d->loop, &ensure_w);
	if (hold_w.fd >= 0)
		evloop_watch_del(d->loop, &hold_w);
	d->inotify_w.fd = d->hash_w.fd = d->work_w.fd = ensure_w.fd = hold_w.fd = -1;
	engine_free(d->engine);
	d->engine = NULL;
}
