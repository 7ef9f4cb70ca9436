/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_BASE_ERR_H
#define TANDEM_BASE_ERR_H

#include <stdarg.h>
#include <stdbool.h>

/*
 * The one error message type. A fallible function returns -errno and, when
 * it has a struct err *, explains the failure there in words for a person
 * ("cannot open index /x/y: disk I/O error"). A caller that adds context
 * prefixes it (err_prefix), so a message nests from the daemon down to the
 * engine, the index and the path check, all in one size: ERR_LEN.
 *
 * Nothing is ever cut silently: a message that does not fit loses its
 * middle, shown as "...", so both the outermost context and the innermost
 * cause (at the end) stay, and no UTF-8 sequence is split. A struct err
 * always holds a NUL-terminated string ("" when nothing was said).
 *
 * Rules: the callee writes err only when it fails (or says otherwise); a
 * NULL struct err * is allowed everywhere and means "no message wanted".
 * Pure functions on caller memory, safe from any thread.
 */

#define ERR_LEN 1024

struct err {
	char msg[ERR_LEN];
};

/* "" */
static inline void err_clear(struct err *e)
{
	if (e)
		e->msg[0] = '\0';
}

static inline bool err_is_set(const struct err *e)
{
	return e && e->msg[0] != '\0';
}

/* Replaces the message. The arguments may point into e->msg itself. */
void err_set(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_setv(struct err *e, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Puts the formatted text in front of the message: err_prefix(e, "cannot
 * start %s: ", name) turns "disk full" into "cannot start x: disk full". */
void err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
