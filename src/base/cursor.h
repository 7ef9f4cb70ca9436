/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_BASE_CURSOR_H
#define TANDEM_BASE_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The one bounded reader and writer for wire formats (record, sync
 * messages, version vectors, HELLO). Integers are big-endian, as every
 * tandem format is.
 *
 * Both cursors have a sticky error flag: a read or write that does not fit
 * sets `bad`, does nothing, and every later call does nothing either, so a
 * decoder reads a whole structure and checks `bad` once (before using what
 * it read). A failed read returns 0 or NULL. Nothing allocates; the fields
 * are public so a caller may save and restore a position.
 *
 * Pure functions on caller memory, safe from any thread on distinct cursors.
 */

struct cursor {
	const uint8_t *p; /* next byte to read */
	size_t left;	  /* bytes from p to the end */
	bool bad;	  /* a read did not fit: sticky */
};

struct wcursor {
	uint8_t *p;  /* next byte to write */
	size_t left; /* room from p to the end */
	bool bad;    /* a write did not fit: sticky */
};

static inline struct cursor cursor_make(const void *buf, size_t len)
{
	return (struct cursor){.p = buf, .left = len};
}

static inline struct wcursor wcursor_make(void *buf, size_t cap)
{
	return (struct wcursor){.p = buf, .left = cap};
}

/* Returns a pointer to the next n bytes and steps over them, or NULL (and
 * sets bad) when fewer than n are left. n = 0 returns p (maybe NULL). */
const uint8_t *cursor_take(struct cursor *c, size_t n);
/* Copies the next n bytes to dst; on a short read dst is untouched. */
void cursor_copy(struct cursor *c, void *dst, size_t n);
/* A big-endian unsigned integer of n (0..8) bytes; 0 on a short read. */
uint64_t cursor_uint(struct cursor *c, size_t n);
uint8_t cursor_u8(struct cursor *c);
uint16_t cursor_u16(struct cursor *c);
uint32_t cursor_u32(struct cursor *c);
uint64_t cursor_u64(struct cursor *c);
/*
 * A length-prefixed byte string: a u8 (str8) or u16 (str16) length, then
 * that many bytes. A length above max sets bad before anything behind it
 * is read. Returns the bytes (not NUL-terminated; NULL with *ret_len 0 on
 * failure, or maybe for an empty string) and their count in *ret_len.
 */
const uint8_t *cursor_str8(struct cursor *c, size_t max, size_t *ret_len);
const uint8_t *cursor_str16(struct cursor *c, size_t max, size_t *ret_len);
/* True when nothing went wrong and every byte was read. */
static inline bool cursor_done(const struct cursor *c)
{
	return !c->bad && c->left == 0;
}

/* Writes n bytes of src (n = 0: nothing, src may be NULL). */
void wcursor_put(struct wcursor *w, const void *src, size_t n);
/* Writes the low n (0..8) bytes of v, big-endian. */
void wcursor_uint(struct wcursor *w, uint64_t v, size_t n);
void wcursor_u8(struct wcursor *w, uint8_t v);
void wcursor_u16(struct wcursor *w, uint16_t v);
void wcursor_u32(struct wcursor *w, uint32_t v);
void wcursor_u64(struct wcursor *w, uint64_t v);
/* A u8 / u16 length, then n bytes; n above the prefix's range sets bad. */
void wcursor_str8(struct wcursor *w, const void *s, size_t n);
void wcursor_str16(struct wcursor *w, const void *s, size_t n);

#endif
