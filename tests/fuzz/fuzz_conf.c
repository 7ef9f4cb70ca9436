/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzzes the tandem.conf parser (src/daemon/conf.c) with the text of a
 * config file (at most CONF_MAX_BYTES, as conf_load reads). A failure
 * names file:line in err and leaves *ret empty; a success gives values
 * that are trimmed, one line, NUL-free and within CONF_LINE_MAX, and
 * writing them back as "key = value" lines parses to the same values.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "fuzz.conf"

static void check(int ok)
{
	if (!ok)
		abort();
}

struct slot {
	const char *key;
	size_t off;
};

/* The keys this harness writes back; a key it does not know is only
 * checked for shape (see check_value). */
static const struct slot slots[] = {
	{"peer", offsetof(struct conf, peer)},	 {"relay", offsetof(struct conf, relay)},
	{"dir", offsetof(struct conf, dir)},	 {"listen", offsetof(struct conf, listen)},
	{"mount", offsetof(struct conf, mount)}, {"symlinks", offsetof(struct conf, symlinks)},
	{"cache-max", offsetof(struct conf, cache_max)},
};
#define NSLOTS (sizeof(slots) / sizeof(slots[0]))

static const char *value(const struct conf *c, size_t i)
{
	return *(char *const *)(const void *)((const char *)c + slots[i].off);
}

static void check_value(const char *v)
{
	size_t n;

	if (!v)
		return;
	n = strlen(v);
	check(n > 0 && n <= CONF_LINE_MAX);
	check(strchr(v, '\n') == NULL);
	check(v[0] != ' ' && v[0] != '\t' && v[0] != '\r');
	check(v[n - 1] != ' ' && v[n - 1] != '\t' && v[n - 1] != '\r');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err, err2;
	struct conf c, again, empty;
	char *text = NULL;
	size_t tlen = 0;
	FILE *f;
	int r;

	if (size > CONF_MAX_BYTES)
		return 0;
	memset(&c, 0, sizeof(c));
	memset(&empty, 0, sizeof(empty));
	memset(err.msg, 'X', sizeof(err.msg));
	r = conf_parse(NAME, (const char *)data, size, &c, &err);
	if (r < 0) {
		check(r == -EINVAL || r == -ENOMEM);
		check(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
		check(strncmp(err.msg, NAME ":", strlen(NAME) + 1) == 0);
		check(memcmp(&c, &empty, sizeof(c)) == 0);
		return 0;
	}
	check(err.msg[0] == '\0');
	for (size_t i = 0; i < NSLOTS; i++) {
		check_value(value(&c, i));
		check((value(&c, i) != NULL) == (c.line[i] > 0));
	}

	/* write back, in reverse order and with other spacing: same values */
	f = open_memstream(&text, &tlen);
	check(f != NULL);
	fputs("# written back\n\n", f);
	for (size_t i = NSLOTS; i-- > 0;)
		if (value(&c, i))
			fprintf(f, "\t%s=%s \n", slots[i].key, value(&c, i));
	check(fclose(f) == 0);
	r = conf_parse(NAME, text, tlen, &again, &err2);
	check(r == 0);
	for (size_t i = 0; i < NSLOTS; i++) {
		const char *a = value(&c, i), *b = value(&again, i);
		check((!a && !b) || (a && b && strcmp(a, b) == 0));
	}
	free(text);
	conf_done(&again);
	conf_done(&c);
	check(memcmp(&c, &empty, sizeof(c)) == 0);
	return 0;
}
