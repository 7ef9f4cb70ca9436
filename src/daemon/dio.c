/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "daemon/dio.h"
#include "log.h"

#define DIO_BUF_MIN 4096

void dio_buf_init(struct dio_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void dio_buf_free(struct dio_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

int dio_buf_reserve(struct dio_buf *b, size_t n, uint8_t **ret)
{
	size_t want, cap;
	uint8_t *p;

	if (n > b->max || b->len > b->max - n)
		return -ENOBUFS;
	want = b->len + n;
	if (want > b->cap) {
		cap = b->cap ? b->cap : DIO_BUF_MIN;
		while (cap < want)
			cap *= 2;
		if (cap > b->max)
			cap = b->max;
		p = realloc(b->data, cap);
		if (!p)
			return -ENOMEM;
		b->data = p;
		b->cap = cap;
	}
	*ret = b->data + b->len;
	return 0;
}

int dio_buf_append(struct dio_buf *b, const void *p, size_t n)
{
	uint8_t *dst;
	int r;

	if (n == 0)
		return 0;
	r = dio_buf_reserve(b, n, &dst);
	if (r < 0)
		return r;
	memcpy(dst, p, n);
	b->len += n;
	return 0;
}

int dio_buf_flush(struct dio_buf *b, int fd)
{
	size_t off = 0;
	int r = 0;

	while (off < b->len) {
		ssize_t n = send(fd, b->data + off, b->len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				r = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (off) {
		memmove(b->data, b->data + off, b->len - off);
		b->len -= off;
	}
	/* The buffer is kept (at most max bytes) for the next burst: freeing and
	 * growing it again for every block of a transfer costs more than it saves. */
	return r;
}
