/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * epoll plus a sorted list of one-shot timers. The daemon arms a handful
 * of timers at most, so a list beats a heap in lines and is as fast.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/evloop.h"

#define EVLOOP_EVENTS_PER_WAIT 32
#define EVLOOP_MAX_WAIT_MS 60000

struct evloop {
	int epfd;
	struct ev_timer *timers; /* armed, earliest first */
};

int evloop_new(struct evloop **ret)
{
	struct evloop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int r = -errno;
		free(l);
		return r;
	}
	*ret = l;
	return 0;
}

void evloop_free(struct evloop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l);
}

int evloop_watch_add(struct evloop *l, struct ev_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};

	if (w->fd < 0)
		return -EBADF;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0)
		return -errno;
	w->events = events;
	return 0;
}

void evloop_watch_set(struct evloop *l, struct ev_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};

	if (w->fd < 0 || w->events == events)
		return;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0)
		w->events = events;
}

void evloop_watch_del(struct evloop *l, struct ev_watch *w)
{
	if (w->fd < 0)
		return;
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->fd = -1;
}

void evloop_watch_close(struct evloop *l, struct ev_watch *w)
{
	int fd = w->fd;

	if (fd < 0)
		return;
	evloop_watch_del(l, w);
	close(fd);
}

void evloop_timer_cancel(struct evloop *l, struct ev_timer *t)
{
	if (!t->armed)
		return;
	for (struct ev_timer **pp = &l->timers; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	t->next = NULL;
	t->armed = false;
}

void evloop_timer_arm(struct evloop *l, struct ev_timer *t, uint64_t due_ms)
{
	struct ev_timer **pp = &l->timers;

	evloop_timer_cancel(l, t);
	while (*pp && (*pp)->due_ms <= due_ms)
		pp = &(*pp)->next;
	t->due_ms = due_ms;
	t->next = *pp;
	t->armed = true;
	*pp = t;
}

uint64_t evloop_next_due(const struct evloop *l)
{
	return l->timers ? l->timers->due_ms : UINT64_MAX;
}

static void fire_due(struct evloop *l)
{
	uint64_t now = clock_mono_ms();
	/* Only what was due when we started: a callback that re-arms its timer
	 * for "now" runs on the next turn, not in a loop here. */
	unsigned budget = 0;

	for (struct ev_timer *t = l->timers; t && t->due_ms <= now; t = t->next)
		budget++;
	while (budget-- && l->timers && l->timers->due_ms <= now) {
		struct ev_timer *t = l->timers;
		l->timers = t->next;
		t->next = NULL;
		t->armed = false;
		t->on_timer(t, now);
	}
}

int evloop_run_once(struct evloop *l, uint64_t until_ms)
{
	struct epoll_event ev[EVLOOP_EVENTS_PER_WAIT];
	uint64_t now = clock_mono_ms(), next = evloop_next_due(l);
	int timeout, n;

	if (until_ms < next)
		next = until_ms;
	timeout = next == UINT64_MAX		    ? EVLOOP_MAX_WAIT_MS
		  : next <= now			    ? 0
		  : next - now > EVLOOP_MAX_WAIT_MS ? EVLOOP_MAX_WAIT_MS
						    : (int)(next - now);
	n = epoll_wait(l->epfd, ev, EVLOOP_EVENTS_PER_WAIT, timeout);
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	for (int i = 0; i < n; i++) {
		struct ev_watch *w = ev[i].data.ptr;
		if (w->fd >= 0)
			w->on_event(w, ev[i].events);
	}
	fire_due(l);
	return n;
}
