/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_LOG_H
#define TANDEM_LOG_H

#include <stdarg.h>
#include <stddef.h>

/*
 * One logging module for the whole program, syslog-like levels.
 * log_msg() preserves errno. The default sink writes
 * "tandem[pid]: <level>: message" to stderr; a program (or a test) can
 * install its own sink. Thread-safe: the sink is called under a lock so
 * lines never interleave.
 *
 * Never log secrets, relay tokens, blobs or file contents. Quote strings
 * that come from users or peers with log_quote().
 */

enum log_level {
	LOG_LVL_ERR = 3,
	LOG_LVL_WARN = 4,
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

typedef void (*log_sink_fn)(enum log_level level, const char *msg, void *userdata);

/* Messages above this level are dropped. Default LOG_LVL_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parses "error", "warning", "notice", "info", "debug" (or 3..7).
 * Returns 0 and sets *ret_level, or -EINVAL. */
int log_level_parse(const char *s, enum log_level *ret_level);
const char *log_level_name(enum log_level level);

/* Program name shown in the default sink's prefix ("tandem", "tandem-relay"). */
void log_set_ident(const char *ident);

/* Replace the sink; NULL restores the default stderr sink. */
void log_set_sink(log_sink_fn sink, void *userdata);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/*
 * The one escaper for strings from users, peers and relays on their way to
 * a log or a terminal. Writes a printable form of s (at most n bytes of it,
 * stopping at a NUL) into out: '\\' becomes "\\\\", control bytes (newline,
 * ESC, DEL) become \xNN, and so does each byte of anything that is not a
 * printable UTF-8 character (invalid UTF-8, C1 controls such as the 8-bit
 * CSI, the bidi controls that reorder a line); printable UTF-8 (é, ü, 日本)
 * is kept as it is, whole or not at all; with LOG_ESC_QUOTE the
 * result is double-quoted and '"' becomes "\\\"". Input that does not fit is
 * cut with "...". s NULL gives "(null)". Returns out (NUL-terminated);
 * outlen must be at least 8.
 */
#define LOG_ESC_QUOTE (1U << 0)
char *log_escape(const char *s, size_t n, char *out, size_t outlen, unsigned flags);

/* log_escape(s, n, out, outlen, LOG_ESC_QUOTE). */
char *log_quote(const char *s, size_t n, char *out, size_t outlen);

/*
 * LOG_Q(s): the quoted form of the NUL-terminated string s (may be NULL),
 * in a buffer that lives until the end of the enclosing block, for use as
 * a log argument: log_warn("cannot write %s", LOG_Q(path)).
 */
#define LOG_QUOTE_LEN 1024
char *log_quote_str(const char *s, char out[static LOG_QUOTE_LEN]);
#define LOG_Q(s) log_quote_str((s), (char[LOG_QUOTE_LEN]){0})

#endif
