/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SIZE_H
#define TANDEM_SIZE_H

#include <stdint.h>

#include "base/err.h"

/*
 * Sizes a user writes (`tandem up --cache-max SIZE`, `cache-max = SIZE` in
 * tandem.conf): a whole number of bytes, optionally followed by K, M, G or
 * T (either case; 1024-based) and then optionally "iB": 0, 4096, 512M,
 * 10G, 10GiB. Nothing else is accepted: no sign, no blanks, no fraction,
 * no "MB" (which would suggest 1000-based units).
 */

/*
 * Parses s (NULL or "" is an error) into *ret. Returns 0, or -EINVAL with
 * a sentence in err that quotes the value (cut when long) and says what is
 * accepted; *ret is untouched on failure. Pure; any thread.
 */
int size_parse(const char *s, uint64_t *ret, struct err *err) __attribute__((warn_unused_result));

#endif
