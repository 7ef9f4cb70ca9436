/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <assert.h>
#include <string.h>

#include "base/cursor.h"

const uint8_t *cursor_take(struct cursor *c, size_t n)
{
	const uint8_t *p;

	if (c->bad || c->left < n) {
		c->bad = true;
		return NULL;
	}
	p = c->p;
	if (n) {
		c->p += n;
		c->left -= n;
	}
	return p;
}

void cursor_copy(struct cursor *c, void *dst, size_t n)
{
	const uint8_t *p = cursor_take(c, n);

	if (p && n)
		memcpy(dst, p, n);
}

uint64_t cursor_uint(struct cursor *c, size_t n)
{
	const uint8_t *p;
	uint64_t v = 0;

	assert(n <= 8);
	p = cursor_take(c, n);
	if (!p)
		return 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

uint8_t cursor_u8(struct cursor *c)
{
	return (uint8_t)cursor_uint(c, 1);
}

uint16_t cursor_u16(struct cursor *c)
{
	return (uint16_t)cursor_uint(c, 2);
}

uint32_t cursor_u32(struct cursor *c)
{
	return (uint32_t)cursor_uint(c, 4);
}

uint64_t cursor_u64(struct cursor *c)
{
	return cursor_uint(c, 8);
}

static const uint8_t *str_take(struct cursor *c, size_t n, size_t max, size_t *ret_len)
{
	const uint8_t *p;

	*ret_len = 0;
	if (c->bad || n > max) {
		c->bad = true;
		return NULL;
	}
	p = cursor_take(c, n);
	if (!c->bad)
		*ret_len = n;
	return p;
}

const uint8_t *cursor_str8(struct cursor *c, size_t max, size_t *ret_len)
{
	size_t n = cursor_u8(c);

	return str_take(c, n, max, ret_len);
}

const uint8_t *cursor_str16(struct cursor *c, size_t max, size_t *ret_len)
{
	size_t n = cursor_u16(c);

	return str_take(c, n, max, ret_len);
}

void wcursor_put(struct wcursor *w, const void *src, size_t n)
{
	if (w->bad || w->left < n) {
		w->bad = true;
		return;
	}
	if (n) {
		memcpy(w->p, src, n);
		w->p += n;
		w->left -= n;
	}
}

void wcursor_uint(struct wcursor *w, uint64_t v, size_t n)
{
	uint8_t b[8];

	assert(n <= 8);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	wcursor_put(w, b, n);
}

void wcursor_u8(struct wcursor *w, uint8_t v)
{
	wcursor_uint(w, v, 1);
}

void wcursor_u16(struct wcursor *w, uint16_t v)
{
	wcursor_uint(w, v, 2);
}

void wcursor_u32(struct wcursor *w, uint32_t v)
{
	wcursor_uint(w, v, 4);
}

void wcursor_u64(struct wcursor *w, uint64_t v)
{
	wcursor_uint(w, v, 8);
}

void wcursor_str8(struct wcursor *w, const void *s, size_t n)
{
	if (n > UINT8_MAX) {
		w->bad = true;
		return;
	}
	wcursor_uint(w, n, 1);
	wcursor_put(w, s, n);
}

void wcursor_str16(struct wcursor *w, const void *s, size_t n)
{
	if (n > UINT16_MAX) {
		w->bad = true;
		return;
	}
	wcursor_uint(w, n, 2);
	wcursor_put(w, s, n);
}
