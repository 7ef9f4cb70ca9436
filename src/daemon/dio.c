/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "daemon/dio.h"
#include "base/log.h"

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
	b->head = 0;
	b->len = 0;
	b->cap = 0;
}

bool dio_buf_trim(struct dio_buf *b)
{
	if (b->len != 0 || b->cap <= DIO_BUF_MIN)
		return false;
	dio_buf_free(b);
	return true;
}

int dio_buf_reserve(struct dio_buf *b, size_t n, uint8_t **ret)
{
	size_t want, cap;
	uint8_t *p;

	if (n > b->max || b->len > b->max - n)
		return -ENOBUFS;
	if (b->head && b->head + b->len + n > b->cap) {
		/* move what is left to the front only when room is needed: a
		 * move after every partial send copied most of a 1 MiB frame
		 * several times over */
		memmove(b->data, b->data + b->head, b->len);
		b->head = 0;
	}
	want = b->head + b->len + n;
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
	*ret = b->data + b->head + b->len;
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
		ssize_t n = send(fd, b->data + b->head + off, b->len - off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				r = -errno;
			break;
		}
		off += (size_t)n;
	}
	b->len -= off;
	b->head = b->len ? b->head + off : 0;
	/* The buffer is kept (at most max bytes) for the next burst: freeing and
	 * growing it again for every block of a transfer costs more than it saves
	 * (an idle connection gives it back: dio_buf_trim). */
	return r;
}
