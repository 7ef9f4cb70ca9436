/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"

#define CUT "..."
#define CUT_LEN (sizeof(CUT) - 1)

/* Moves i back to the start of the UTF-8 sequence it points into. */
static size_t utf8_start(const char *s, size_t i)
{
	while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
		i--;
	return i;
}

/*
 * Writes the len bytes of s (len may be more than fits) into e: whole when
 * they fit, else the head and the tail with CUT between them. The head is
 * kept longer (it has the context a reader starts with), a third of the
 * room goes to the tail (the innermost cause).
 */
static void put_cut(struct err *e, const char *s, size_t len)
{
	const size_t room = ERR_LEN - 1;
	size_t head, tail, tail_from;

	if (len <= room) {
		memmove(e->msg, s, len);
		e->msg[len] = '\0';
		return;
	}
	tail = (room - CUT_LEN) / 3;
	head = room - CUT_LEN - tail;
	head = utf8_start(s, head);
	tail_from = len - tail;
	while (tail_from < len && ((unsigned char)s[tail_from] & 0xc0) == 0x80)
		tail_from++;
	tail = len - tail_from;
	/* s may be e->msg itself: write the head in place, then the rest. */
	memmove(e->msg, s, head);
	memcpy(e->msg + head, CUT, CUT_LEN);
	memmove(e->msg + head + CUT_LEN, s + tail_from, tail);
	e->msg[head + CUT_LEN + tail] = '\0';
}

void err_setv(struct err *e, const char *fmt, va_list ap)
{
	char buf[2 * ERR_LEN];
	int n;

	if (!e)
		return;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0) {
		snprintf(e->msg, ERR_LEN, "(cannot format the error message)");
		return;
	}
	if ((size_t)n >= sizeof(buf)) {
		/* Longer than even the scratch space: keep the start, show the cut. */
		size_t keep = utf8_start(buf, ERR_LEN - 1 - CUT_LEN);

		memcpy(e->msg, buf, keep);
		memcpy(e->msg + keep, CUT, CUT_LEN + 1);
		return;
	}
	put_cut(e, buf, (size_t)n);
}

void err_set(struct err *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_setv(e, fmt, ap);
	va_end(ap);
}

void err_prefix(struct err *e, const char *fmt, ...)
{
	char buf[2 * ERR_LEN];
	size_t plen, mlen;
	va_list ap;
	int n;

	if (!e)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, ERR_LEN, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	plen = strlen(buf); /* a prefix longer than ERR_LEN - 1 is cut here... */
	if ((size_t)n > plen && plen >= CUT_LEN) {
		plen = utf8_start(buf, plen - CUT_LEN); /* ...visibly */
		memcpy(buf + plen, CUT, CUT_LEN);
		plen += CUT_LEN;
	}
	mlen = strnlen(e->msg, ERR_LEN - 1);
	memcpy(buf + plen, e->msg, mlen);
	put_cut(e, buf, plen + mlen);
}
