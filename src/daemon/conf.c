/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "daemon/conf.h"
#include "daemon/mountopt.h"
#include "base/size.h"

#define NKEYS 9
#define KEY_CACHE_MAX 6
#define KEY_MOUNT_OPTIONS 8

static const char *const keys[NKEYS] = {"peer",	 "relay",    "dir",	  "listen",
					"mount", "symlinks", "cache-max", "relay-data",
					"mount-options"};

static char **conf_slot(struct conf *c, size_t i)
{
	char **slots[NKEYS] = {&c->peer,  &c->relay,	&c->dir,       &c->listen,
			       &c->mount, &c->symlinks, &c->cache_max, &c->relay_data,
			       &c->mount_options};
	return slots[i];
}

void conf_done(struct conf *c)
{
	for (size_t i = 0; i < NKEYS; i++) {
		free(*conf_slot(c, i));
		*conf_slot(c, i) = NULL;
		c->line[i] = 0;
	}
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Trims [*s, *e) in place. */
static void trim(const char **s, const char **e)
{
	while (*s < *e && is_blank(**s))
		(*s)++;
	while (*e > *s && is_blank((*e)[-1]))
		(*e)--;
}

static int parse_line(const char *name, int lineno, const char *s, const char *e, struct conf *c,
		      struct err *err)
{
	const char *eq, *ks, *ke, *vs, *ve;
	size_t i;

	trim(&s, &e);
	if (s == e || *s == '#')
		return 0;
	eq = memchr(s, '=', (size_t)(e - s));
	if (!eq) {
		err_set(err,
			"%s:%d: expected 'key = value' (keys: peer, relay, dir, mount, listen, "
			"symlinks, cache-max, relay-data, mount-options)",
			name, lineno);
		return -EINVAL;
	}
	ks = s;
	ke = eq;
	vs = eq + 1;
	ve = e;
	trim(&ks, &ke);
	trim(&vs, &ve);
	for (i = 0; i < NKEYS; i++)
		if ((size_t)(ke - ks) == strlen(keys[i]) &&
		    memcmp(ks, keys[i], (size_t)(ke - ks)) == 0)
			break;
	if (i == NKEYS) {
		err_set(err,
			"%s:%d: unknown key '%.*s'; tandem.conf knows peer, relay, dir, mount, "
			"listen, symlinks, cache-max, relay-data and mount-options",
			name, lineno, (int)(ke - ks > 64 ? 64 : ke - ks), ks);
		return -EINVAL;
	}
	if (c->line[i]) {
		err_set(err, "%s:%d: '%s' is already set on line %d; keep one", name, lineno,
			keys[i], c->line[i]);
		return -EINVAL;
	}
	if (vs == ve) {
		err_set(err, "%s:%d: '%s' has no value", name, lineno, keys[i]);
		return -EINVAL;
	}
	if (memchr(vs, '\0', (size_t)(ve - vs))) {
		err_set(err, "%s:%d: the value of '%s' contains a NUL byte", name, lineno, keys[i]);
		return -EINVAL;
	}
	*conf_slot(c, i) = strndup(vs, (size_t)(ve - vs));
	if (!*conf_slot(c, i))
		return -ENOMEM;
	if (i == KEY_CACHE_MAX) {
		struct err serr;
		uint64_t v;
		if (size_parse(*conf_slot(c, i), &v, &serr) < 0) {
			err_set(err, "%s:%d: cache-max: %s", name, lineno, serr.msg);
			return -EINVAL;
		}
	}
	if (i == KEY_MOUNT_OPTIONS) {
		char opts[MOUNTOPT_MAX] = "";
		struct err merr;

		if (mountopt_add(opts, *conf_slot(c, i), &merr) < 0) {
			err_set(err, "%s:%d: mount-options: %s", name, lineno, merr.msg);
			return -EINVAL;
		}
	}
	c->line[i] = lineno;
	return 0;
}

int conf_parse(const char *name, const char *text, size_t len, struct conf *ret, struct err *err)
{
	struct conf c = {0};
	const char *p = text, *end = text + len;
	int lineno = 0, r = 0;

	err_clear(err);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;

		lineno++;
		if (le - p > CONF_LINE_MAX) {
			err_set(err, "%s:%d: the line is longer than %d bytes", name, lineno,
				CONF_LINE_MAX);
			r = -EINVAL;
			break;
		}
		r = parse_line(name, lineno, p, le, &c, err);
		if (r < 0)
			break;
		p = nl ? nl + 1 : end;
	}
	if (r < 0) {
		if (r == -ENOMEM)
			err_set(err, "%s: out of memory", name);
		conf_done(&c);
		return r;
	}
	*ret = c;
	return 0;
}

int conf_load(const char *config_dir, struct conf *ret, struct err *err)
{
	char path[PATH_MAX];
	char *text = NULL;
	struct stat st;
	size_t got = 0;
	int fd, r;

	memset(ret, 0, sizeof(*ret));
	err_clear(err);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", config_dir, CONF_FILE) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		r = -errno;
		err_set(err, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		err_set(err, "cannot read %s: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CONF_MAX_BYTES) {
		err_set(err, "%s is %s; it should be a short text file", path,
			S_ISREG(st.st_mode) ? "larger than 64 KiB" : "not a regular file");
		r = -EFBIG;
		goto out;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		r = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			err_set(err, "cannot read %s: %s", path, strerror(-r));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	r = conf_parse(path, text, got, ret, err);
	for (int i = 0; r == 0 && i < 2; i++) {
		char **slot = i ? &ret->mount : &ret->dir, *abs;
		if (!*slot || (*slot)[0] == '/')
			continue;
		if (asprintf(&abs, "%s/%s", config_dir, *slot) < 0) {
			conf_done(ret);
			r = -ENOMEM;
			goto out;
		}
		free(*slot);
		*slot = abs;
	}
out:
	free(text);
	close(fd);
	return r;
}
