/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"

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

char *log_escape(const char *s, size_t n, char *out, size_t outlen, unsigned flags)
{
	static const char hex[] = "0123456789abcdef";
	bool quote = flags & LOG_ESC_QUOTE;
	size_t o = 0;

	if (outlen < 8) {
		if (outlen)
			out[0] = '\0';
		return out;
	}
	if (!s) {
		snprintf(out, outlen, "(null)");
		return out;
	}
	if (quote)
		out[o++] = '"';
	for (size_t i = 0; i < n && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		/* room for up to 4 bytes, the ellipsis, the quote and NUL */
		if (o + 4 + 3 + 2 > outlen) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
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
