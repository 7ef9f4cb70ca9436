/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/log.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_level log_max = LOG_LVL_INFO;		/* protected by log_lock */
static log_sink_fn log_sink;				/* protected by log_lock */
static void *log_sink_data;				/* protected by log_lock */
static char log_ident[32] = "tandem";			/* protected by log_lock */

static const char *const level_names[] = {
	[LOG_LVL_ERR] = "error",   [LOG_LVL_WARN] = "warning", [LOG_LVL_NOTICE] = "notice",
	[LOG_LVL_INFO] = "info",   [LOG_LVL_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
	pthread_mutex_lock(&log_lock);
	log_max = level;
	pthread_mutex_unlock(&log_lock);
}

enum log_level log_get_level(void)
{
	enum log_level l;

	pthread_mutex_lock(&log_lock);
	l = log_max;
	pthread_mutex_unlock(&log_lock);
	return l;
}

const char *log_level_name(enum log_level level)
{
	if (level < LOG_LVL_ERR || level > LOG_LVL_DEBUG)
		return "?";
	return level_names[level];
}

int log_level_parse(const char *s, enum log_level *ret_level)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
		{ "error", LOG_LVL_ERR },   { "err", LOG_LVL_ERR },	  { "warning", LOG_LVL_WARN },
		{ "warn", LOG_LVL_WARN },   { "notice", LOG_LVL_NOTICE }, { "info", LOG_LVL_INFO },
		{ "debug", LOG_LVL_DEBUG }, { "3", LOG_LVL_ERR },	  { "4", LOG_LVL_WARN },
		{ "5", LOG_LVL_NOTICE },    { "6", LOG_LVL_INFO },	  { "7", LOG_LVL_DEBUG },
	};

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*ret_level = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

void log_set_ident(const char *ident)
{
	pthread_mutex_lock(&log_lock);
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
	pthread_mutex_unlock(&log_lock);
}

void log_set_sink(log_sink_fn sink, void *userdata)
{
	pthread_mutex_lock(&log_lock);
	log_sink = sink;
	log_sink_data = userdata;
	pthread_mutex_unlock(&log_lock);
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	int saved_errno = errno;
	char msg[1024];

	pthread_mutex_lock(&log_lock);
	if (level > log_max)
		goto out;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_sink)
		log_sink(level, msg, log_sink_data);
	else
		fprintf(stderr, "%s[%ld]: %s: %s\n", log_ident, (long)getpid(),
			log_level_name(level), msg);
out:
	pthread_mutex_unlock(&log_lock);
	errno = saved_errno;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

/*
 * Length of the valid UTF-8 sequence of a printable code point at s (at most
 * n bytes), or 0 when the bytes there are to be escaped one by one: not
 * UTF-8 (a stray continuation byte, an overlong form, a surrogate, past
 * U+10FFFF, cut short), a C1 control (U+0080-U+009F), or a code point that
 * reorders or hides what a terminal shows (the bidi marks, embeddings,
 * overrides and isolates, U+2028/U+2029, the BOM).
 */
static size_t utf8_printable_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0; /* overlong, or past Unicode */
	if ((cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f)
		return 0; /* a surrogate, or a C1 control */
	if (cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff)
		return 0;
	return len;
}

char *log_escape(const char *s, size_t n, char *out, size_t outlen, unsigned flags)
{
	static const char hex[] = "0123456789abcdef";
	bool quote = flags & LOG_ESC_QUOTE;
	size_t o = 0, end;

	if (outlen < 8) {
		if (outlen)
			out[0] = '\0';
		return out;
	}
	if (!s) {
		snprintf(out, outlen, "(null)");
		return out;
	}
	end = strnlen(s, n);
	if (quote)
		out[o++] = '"';
	for (size_t i = 0; i < end;) {
		unsigned char c = (unsigned char)s[i];
		size_t u = c >= 0x80 ? utf8_printable_len((const unsigned char *)s + i, end - i) : 0;

		/* room for up to 4 bytes, the ellipsis, the quote and NUL */
		if (o + 4 + 3 + 2 > outlen) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (u) {
			memcpy(out + o, s + i, u);
			o += u;
			i += u;
			continue;
		}
		if ((quote && c == '"') || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
		i++;
	}
	if (quote)
		out[o++] = '"';
	out[o] = '\0';
	return out;
}

char *log_quote(const char *s, size_t n, char *out, size_t outlen)
{
	return log_escape(s, n, out, outlen, LOG_ESC_QUOTE);
}

char *log_quote_str(const char *s, char out[static LOG_QUOTE_LEN])
{
	return log_escape(s, s ? strlen(s) : 0, out, LOG_QUOTE_LEN, LOG_ESC_QUOTE);
}
