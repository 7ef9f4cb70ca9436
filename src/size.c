/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "size.h"

#define SIZE_FORM "a whole number of bytes with an optional suffix K, M, G or T (1024-based), e.g. 512M or 10G"

int size_parse(const char *s, uint64_t *ret, struct err *err)
{
	static const char units[] = "KMGT";
	const char *p = s, *u;
	uint64_t v = 0;
	unsigned shift = 0;

	if (!s || !*s) {
		err_set(err, "no size given: write %s", SIZE_FORM);
		return -EINVAL;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			goto too_large;
		v = v * 10 + d;
	}
	if (p == s)
		goto bad;
	if (*p) {
		char c = *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
		u = strchr(units, c);
		if (!u || !c)
			goto bad;
		shift = 10 * (unsigned)(u - units + 1);
		p++;
		if ((p[0] == 'i' || p[0] == 'I') && (p[1] == 'b' || p[1] == 'B'))
			p += 2;
		if (*p)
			goto bad;
		if (v > UINT64_MAX >> shift)
			goto too_large;
		v <<= shift;
	}
	*ret = v;
	return 0;
bad:
	err_set(err, "'%.40s%s' is not a size: write %s", s, strlen(s) > 40 ? "..." : "",
		SIZE_FORM);
	return -EINVAL;
too_large:
	err_set(err, "'%.40s%s' is too large a size (at most 16 EiB): write %s", s,
		strlen(s) > 40 ? "..." : "", SIZE_FORM);
	return -EINVAL;
}
