/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_BASE_EVLOOP_H
#define TANDEM_BASE_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The event loop at the bottom of the daemon: epoll over fd watches, plus
 * one-shot timers on the monotonic clock (base/clock.h). One thread only:
 * everything here runs on the thread that calls evloop_run_once().
 *
 * Watches and timers are owned by their callers (embed them in your own
 * struct); the loop only links them. A watch whose fd became -1 while a
 * batch of events is dispatched gets no more events from that batch, so an
 * owner may close a watch from any callback and free it after
 * evloop_run_once() returns (not inside the batch: a later event of the
 * same batch may still point to it).
 */

struct evloop;

struct ev_watch {
	int fd;		 /* -1 when not watched */
	uint32_t events; /* what epoll watches for now (EPOLLIN, EPOLLOUT ...) */
	void (*on_event)(struct ev_watch *w, uint32_t events);
	void *ud; /* the owner's, for on_event */
};

struct ev_timer {
	void (*on_timer)(struct ev_timer *t, uint64_t now_ms);
	void *ud;	       /* the owner's, for on_timer */
	uint64_t due_ms;       /* clock_mono_ms() time; valid while armed */
	bool armed;	       /* loop's */
	struct ev_timer *next; /* loop's: armed timers, earliest first */
};

/* Returns 0 and *ret, or -errno. */
int evloop_new(struct evloop **ret) __attribute__((warn_unused_result));
/* Closes the epoll fd; the watches' fds stay their owners'. NULL: no-op. */
void evloop_free(struct evloop *l);

/* Watches w->fd (set by the caller) for events. Returns 0 or -errno. */
int evloop_watch_add(struct evloop *l, struct ev_watch *w, uint32_t events)
	__attribute__((warn_unused_result));
/* Changes what w is watched for (no-op when unchanged or not watched). */
void evloop_watch_set(struct evloop *l, struct ev_watch *w, uint32_t events);
/* Stops watching w without closing its fd (an fd someone else owns); w->fd
 * becomes -1. No-op when not watched. */
void evloop_watch_del(struct evloop *l, struct ev_watch *w);
/* Stops watching w and closes its fd; w->fd becomes -1. */
void evloop_watch_close(struct evloop *l, struct ev_watch *w);

/* Arms t to fire once at due_ms (clock_mono_ms() time; re-arming moves it).
 * Timers due at the same time fire in the order they were armed. */
void evloop_timer_arm(struct evloop *l, struct ev_timer *t, uint64_t due_ms);
/* Disarms t (no-op when not armed). */
void evloop_timer_cancel(struct evloop *l, struct ev_timer *t);
/* The earliest armed timer's due time, or UINT64_MAX. */
uint64_t evloop_next_due(const struct evloop *l);

/*
 * Waits until an fd is ready, the earliest timer is due or until_ms
 * (clock_mono_ms() time; UINT64_MAX: no limit of the caller's) has come,
 * at most 60 s; then dispatches the ready watches and fires the timers that
 * are due (each disarmed before its callback, which may arm it again).
 * Returns the number of watch events dispatched, or -errno when epoll
 * fails (EINTR counts as 0 events).
 */
int evloop_run_once(struct evloop *l, uint64_t until_ms);

#endif
