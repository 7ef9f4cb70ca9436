/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_DIO_H
#define TANDEM_DAEMON_DIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Small I/O helpers for the daemon's event loop: a bounded output buffer
 * for non-blocking sockets (the clock is base/clock.h). Loop thread only.
 */

/*
 * Bytes waiting to be sent on a non-blocking socket. Grows on demand up to
 * max bytes; an append beyond that fails with -ENOBUFS (the peer does not
 * read: the caller closes the connection).
 */
struct dio_buf {
	uint8_t *data;
	size_t head; /* the unsent bytes are data[head, head + len) */
	size_t len;
	size_t cap;
	size_t max;
};

void dio_buf_init(struct dio_buf *b, size_t max);
void dio_buf_free(struct dio_buf *b);

/* Makes room for n more bytes and returns where they go (after the len
 * bytes queued) in *ret; the caller then adds what it wrote to len.
 * Returns 0, -ENOBUFS or -ENOMEM. */
int dio_buf_reserve(struct dio_buf *b, size_t n, uint8_t **ret) __attribute__((warn_unused_result));

int dio_buf_append(struct dio_buf *b, const void *p, size_t n) __attribute__((warn_unused_result));

/* Sends as much as the socket takes. Returns 0 (bytes may remain: wait for
 * EPOLLOUT) or the socket's -errno. */
int dio_buf_flush(struct dio_buf *b, int fd);

/* Gives the memory back when nothing is queued (an idle connection).
 * Returns whether there was memory to give back. */
bool dio_buf_trim(struct dio_buf *b);

#endif
