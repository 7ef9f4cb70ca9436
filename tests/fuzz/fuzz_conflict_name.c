/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzzes conflict naming (src/sync/conflict.c) on arbitrary paths. The
 * input is 8 bytes of device id, 8 bytes of mtime (little endian), then
 * the path. A path that passes path_check() gets a conflict name that
 * passes it too (so every component is within PATH_NAME_MAX), keeps the
 * directories, is recognized by conflict_name_is(), and is valid UTF-8
 * when the path was; the only refusal is a path too long for any suffix.
 * conflict_decide() on two versions made from the input agrees with itself
 * in both orders.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sync/conflict.h"
#include "sync/path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static bool utf8_ok(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = p[i] < 0x80		   ? 1
			   : (p[i] & 0xe0) == 0xc0 ? 2
			   : (p[i] & 0xf0) == 0xe0 ? 3
			   : (p[i] & 0xf8) == 0xf0 ? 4
						   : 0;
		if (k == 0 || i + k > n)
			return false;
		for (size_t j = 1; j < k; j++)
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
		i += k;
	}
	return true;
}

static char out[PATH_REL_MAX + 1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conflict_version a, b;
	const char *path = (const char *)data + 16;
	size_t len, dirlen;
	const char *slash;
	uint64_t t = 0;
	unsigned w1, w2;
	int r;

	if (size < 16)
		return 0;
	len = size - 16;
	memset(&a, 0, sizeof(a));
	memcpy(a.device, data, 8);
	for (int i = 7; i >= 0; i--)
		t = t << 8 | data[8 + i];
	a.mtime_ns = (int64_t)t;

	(void)conflict_name_is(path, len);
	r = conflict_name(path, len, &a, out, sizeof(out));
	if (path_check(path, len, NULL) != 0) {
		check(r == -EINVAL);
		return 0;
	}
	slash = memrchr(path, '/', len);
	dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	if (r < 0) {
		check(r == -ENAMETOOLONG);
		check(dirlen + CONFLICT_SUFFIX_LEN + CONFLICT_EXT_MAX + 4 > PATH_REL_MAX);
		return 0;
	}
	check((size_t)r <= PATH_REL_MAX && out[r] == '\0' && strlen(out) == (size_t)r);
	check(path_check(out, (size_t)r, NULL) == 0);
	check((size_t)r - dirlen <= PATH_NAME_MAX);
	check(memcmp(out, path, dirlen) == 0);
	check(conflict_name_is(out, (size_t)r));
	check(!utf8_ok(data + 16, len) || utf8_ok((const uint8_t *)out, (size_t)r));

	/* two versions from the input: both orders agree */
	b = a;
	b.device[0] ^= data[size - 1];
	b.mtime_ns ^= (int64_t)(data[size - 1] & 3);
	b.hash[0] = data[size - 1];
	b.deleted = (data[size - 1] & 0x10) != 0;
	a.deleted = (data[size - 1] & 0x20) != 0;
	check(conflict_decide(&a, &b, &w1) == conflict_decide(&b, &a, &w2));
	check((w1 == 0 && w2 == 1) || (w1 == 1 && w2 == 0) ||
	      (w1 == 0 && w2 == 0 && memcmp(&a, &b, sizeof(a)) == 0));
	return 0;
}
