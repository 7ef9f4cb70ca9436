/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_FUZZ_TEXT_H
#define TANDEM_FUZZ_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * What log_escape() may put on a line: no C0 control and no DEL, and every
 * byte above 0x7f part of a well-formed UTF-8 sequence that is not a C1
 * control (U+0080-U+009F). Checked independently of log.c's own decoder.
 */
static inline bool fuzz_text_printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
		             : c >= 0xf0 && c <= 0xf4 ? 4 : 0;

		if (len == 0 || c < 0x20 || c == 0x7f || i + len > n)
			return false;
		for (size_t k = 1; k < len; k++)
			if (((unsigned char)s[i + k] & 0xc0) != 0x80)
				return false;
		if (c == 0xc2 && (unsigned char)s[i + 1] < 0xa0)
			return false; /* C1 */
		i += len;
	}
	return true;
}

#endif
