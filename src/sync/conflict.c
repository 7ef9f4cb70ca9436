/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/encoding.h"
#include "sync/conflict.h"
#include "sync/path.h"

#define TAG ".sync-conflict-"
#define TAG_LEN (sizeof(TAG) - 1)

static int cmp_u64(uint64_t a, uint64_t b)
{
	return (a > b) - (a < b);
}

/* The total order of conflict_decide(): > 0 when a is the greater version. */
static int version_cmp(const struct conflict_version *a, const struct conflict_version *b)
{
	static const uint8_t zero[CONFLICT_HASH_LEN];
	const uint8_t *ha = a->deleted ? zero : a->hash;
	const uint8_t *hb = b->deleted ? zero : b->hash;
	int c;

	if (a->mtime_ns != b->mtime_ns)
		return a->mtime_ns > b->mtime_ns ? 1 : -1;
	c = memcmp(a->device, b->device, CONFLICT_DEVICE_LEN);
	if (c != 0)
		return c;
	c = memcmp(ha, hb, CONFLICT_HASH_LEN);
	if (c != 0)
		return c;
	c = cmp_u64(a->deleted ? 0 : a->size, b->deleted ? 0 : b->size);
	if (c != 0)
		return c;
	if (a->deleted != b->deleted)
		return (int)b->deleted - (int)a->deleted;
	/* Fields a deletion ignores still order, so the order is total. */
	c = memcmp(a->hash, b->hash, CONFLICT_HASH_LEN);
	return c != 0 ? c : cmp_u64(a->size, b->size);
}

enum conflict_action conflict_decide(const struct conflict_version *a,
				     const struct conflict_version *b, unsigned *ret_winner)
{
	enum conflict_action action;

	if (a->deleted && b->deleted) {
		action = CONFLICT_IDENTICAL;
	} else if (a->deleted != b->deleted) {
		*ret_winner = a->deleted ? 1 : 0;
		return CONFLICT_EDIT_WINS;
	} else if (a->size == b->size && memcmp(a->hash, b->hash, CONFLICT_HASH_LEN) == 0) {
		action = CONFLICT_IDENTICAL;
	} else {
		action = CONFLICT_COPY;
	}
	/* Equal in every field that counts: either is the same, say a. */
	*ret_winner = version_cmp(a, b) >= 0 ? 0 : 1;
	return action;
}

static void put_digits(char *p, unsigned v, int n)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* "YYYYMMDD-HHMMSS" of the UTC second holding ns; 16 bytes with the NUL. */
static void format_time(int64_t ns, char out[static 16])
{
	int64_t s = ns / 1000000000;
	time_t t;
	struct tm tm;

	if (ns % 1000000000 < 0)
		s--; /* round down before 1970 too */
	t = (time_t)s;
	/* Any int64 ns is within 1677..2262, so the year has four digits. */
	if (!gmtime_r(&t, &tm))
		memset(&tm, 0, sizeof(tm));
	put_digits(out, (unsigned)(tm.tm_year + 1900), 4);
	put_digits(out + 4, (unsigned)(tm.tm_mon + 1), 2);
	put_digits(out + 6, (unsigned)tm.tm_mday, 2);
	out[8] = '-';
	put_digits(out + 9, (unsigned)tm.tm_hour, 2);
	put_digits(out + 11, (unsigned)tm.tm_min, 2);
	put_digits(out + 13, (unsigned)tm.tm_sec, 2);
	out[15] = '\0';
}

int conflict_name(const char *path, size_t len, const struct conflict_version *loser, char *out,
		  size_t outlen)
{
	return conflict_name_nth(path, len, loser, 1, out, outlen);
}

int conflict_name_nth(const char *path, size_t len, const struct conflict_version *loser,
		      unsigned n, char *out, size_t outlen)
{
	char when[16], peer[CONFLICT_PEER_LEN + 2], nth[4] = "";
	const char *name, *slash, *dot;
	size_t dirlen, namelen, baselen, extlen = 0, room, total, sfx;

	if (n < 1 || n > 99 || path_check(path, len, NULL) < 0)
		return -EINVAL;
	if (n > 1)
		snprintf(nth, sizeof(nth), "-%u", n);
	sfx = CONFLICT_SUFFIX_LEN + strlen(nth);
	slash = memrchr(path, '/', len);
	dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	name = path + dirlen;
	namelen = len - dirlen;

	/* The extension: from the last dot, not a leading or trailing one, short. */
	dot = memrchr(name, '.', namelen);
	if (dot && dot > name && (size_t)(dot - name) < namelen - 1 &&
	    namelen - (size_t)(dot - name) <= CONFLICT_EXT_MAX)
		extlen = namelen - (size_t)(dot - name);
	baselen = namelen - extlen;

	room = PATH_NAME_MAX - sfx - extlen;
	if (dirlen + sfx + extlen >= PATH_REL_MAX)
		return -ENAMETOOLONG;
	if (room > PATH_REL_MAX - dirlen - sfx - extlen)
		room = PATH_REL_MAX - dirlen - sfx - extlen;
	if (baselen > room) {
		/* Cut at a character boundary: back over UTF-8 continuation bytes. */
		baselen = room;
		for (int i = 0;
		     i < 3 && baselen > 0 && ((unsigned char)name[baselen] & 0xc0) == 0x80; i++)
			baselen--;
		if (baselen == 0)
			return -ENAMETOOLONG;
	}

	total = dirlen + baselen + sfx + extlen;
	if (outlen < total + 1)
		return -ENOBUFS;
	format_time(loser->mtime_ns, when);
	base32_encode_bits(loser->device, CONFLICT_PEER_LEN * 5, peer);

	memcpy(out, path, dirlen + baselen);
	snprintf(out + dirlen + baselen, sfx + 1, TAG "%.15s-%.7s%s", when, peer, nth);
	memcpy(out + dirlen + baselen + sfx, name + namelen - extlen, extlen);
	out[total] = '\0';
	return (int)total;
}

static bool is_digits(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

static bool is_b32(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '2' && p[i] <= '7')))
			return false;
	return true;
}

bool conflict_name_is(const char *path, size_t len)
{
	const char *slash = memrchr(path, '/', len);
	const char *name = slash ? slash + 1 : path;
	const char *end = path + len, *p = name;

	while ((p = memmem(p, (size_t)(end - p), TAG, TAG_LEN)) != NULL) {
		const char *q = p + TAG_LEN;

		p++;
		if ((size_t)(end - q) < CONFLICT_SUFFIX_LEN - TAG_LEN)
			break;
		if (!(is_digits(q, 8) && q[8] == '-' && is_digits(q + 9, 6) && q[15] == '-' &&
		      is_b32(q + 16, CONFLICT_PEER_LEN)))
			continue;
		const char *r = q + 16 + CONFLICT_PEER_LEN;
		if (r < end && *r == '-') { /* conflict_name_nth: 1 or 2 digits */
			size_t d = 0;
			while (d < 2 && r + 1 + d < end && is_digits(r + 1 + d, 1))
				d++;
			if (d == 0)
				continue;
			r += 1 + d;
		}
		if (r == end || *r == '.')
			return true;
	}
	return false;
}
