/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_LINK_H
#define TANDEM_SYNC_LINK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * How a part of the engine (the fetcher, the lazy fetcher, the server)
 * talks to the peer: the engine gives each part this at creation and
 * keeps the connection's state itself. Loop thread only.
 */
struct sync_link {
	void *ud;
	/* Whether messages can go now: the peer is up and syncing runs. */
	bool (*up)(void *ud);
	/* Sends one message. 0, or -errno when the connection is gone. */
	int (*send)(void *ud, const uint8_t *msg, size_t len);
	/* Bytes the connection takes now without queueing beyond its buffer. */
	size_t (*room)(void *ud);
	/* A protocol error of the peer's (why: a sentence): closes the connection. */
	void (*fail)(void *ud, const char *why);
};

#define SYNC_LINK_WHY_LEN 320

static inline bool link_up(const struct sync_link *l)
{
	return l->up(l->ud);
}

static inline int link_send(const struct sync_link *l, const uint8_t *msg, size_t len)
{
	return l->send(l->ud, msg, len);
}

static inline size_t link_room(const struct sync_link *l)
{
	return l->room(l->ud);
}

static inline void link_fail(const struct sync_link *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline void link_fail(const struct sync_link *l, const char *fmt, ...)
{
	char why[SYNC_LINK_WHY_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	l->fail(l->ud, why);
}

#endif
