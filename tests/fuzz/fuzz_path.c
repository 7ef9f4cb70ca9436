/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fuzzes the share-path gate with an oracle: what it accepts has no '..'
 * or '.' component, no NUL, is relative and within the caps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sync/path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err = {.msg = ""};
	const char *p = (const char *)data;

	if (path_check(p, size, &err) != 0) {
		if (!err.msg[0])
			abort();
		return 0;
	}
	if (size == 0 || size > PATH_REL_MAX || memchr(p, 0, size) || p[0] == '/' ||
	    p[size - 1] == '/')
		abort();
	size_t start = 0;
	for (size_t i = 0; i <= size; i++) {
		if (i < size && p[i] != '/')
			continue;
		size_t n = i - start;
		if (n == 0 || n > PATH_NAME_MAX || (n == 1 && p[start] == '.') ||
		    (n == 2 && p[start] == '.' && p[start + 1] == '.'))
			abort();
		start = i + 1;
	}
	return 0;
}
