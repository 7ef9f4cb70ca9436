/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The scanner's two small tables: a string set, and inotify wd -> directory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sync/scan_int.h"

struct scan_str {
	char *s; /* NULL: empty slot */
	size_t len;
	uint64_t hash;
};

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static size_t str_find(const struct scan_strset *set, const char *s, size_t len, uint64_t h)
{
	size_t mask = set->cap - 1, i = h & mask;

	while (set->v[i].s &&
	       !(set->v[i].hash == h && set->v[i].len == len && memcmp(set->v[i].s, s, len) == 0))
		i = (i + 1) & mask;
	return i;
}

static int str_grow(struct scan_strset *set)
{
	struct scan_strset bigger = {NULL, set->cap ? set->cap * 2 : 64, 0};

	bigger.v = calloc(bigger.cap, sizeof(*bigger.v));
	if (!bigger.v)
		return -ENOMEM;
	for (size_t i = 0; i < set->cap; i++)
		if (set->v[i].s)
			bigger.v[str_find(&bigger, set->v[i].s, set->v[i].len, set->v[i].hash)] =
				set->v[i];
	bigger.n = set->n;
	free(set->v);
	*set = bigger;
	return 0;
}

/* 1 when added, 0 when already there, -ENOMEM. */
int scan_strset_add(struct scan_strset *set, const char *s, size_t len)
{
	uint64_t h = hash_bytes(s, len);
	size_t i;
	char *copy;

	if ((set->n + 1) * 4 > set->cap * 3 && str_grow(set) < 0)
		return -ENOMEM;
	i = str_find(set, s, len, h);
	if (set->v[i].s)
		return 0;
	copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, s, len);
	copy[len] = '\0';
	set->v[i] = (struct scan_str){copy, len, h};
	set->n++;
	return 1;
}

bool scan_strset_has(const struct scan_strset *set, const char *s, size_t len)
{
	return set->cap && set->v[str_find(set, s, len, hash_bytes(s, len))].s;
}

void scan_strset_del(struct scan_strset *set, const char *s, size_t len)
{
	size_t mask, i, j;

	if (!set->cap)
		return;
	mask = set->cap - 1;
	i = str_find(set, s, len, hash_bytes(s, len));
	if (!set->v[i].s)
		return;
	free(set->v[i].s);
	set->v[i].s = NULL;
	set->n--;
	/* Backward shift: move later entries of the run into the hole when allowed. */
	for (j = (i + 1) & mask; set->v[j].s; j = (j + 1) & mask) {
		size_t home = set->v[j].hash & mask;

		if (((j - home) & mask) >= ((j - i) & mask)) {
			set->v[i] = set->v[j];
			set->v[j].s = NULL;
			i = j;
		}
	}
}

void scan_strset_done(struct scan_strset *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->v[i].s);
	free(set->v);
	*set = (struct scan_strset){NULL, 0, 0};
}

static size_t wd_home(const struct scan_wdmap *m, int wd)
{
	return ((size_t)(unsigned)wd * 2654435761U) & (m->cap - 1);
}

static size_t wd_find(const struct scan_wdmap *m, int wd)
{
	size_t i = wd_home(m, wd);

	while (m->v[i].wd && m->v[i].wd != wd)
		i = (i + 1) & (m->cap - 1);
	return i;
}

struct scan_wd *scan_wdmap_get(struct scan_wdmap *m, int wd)
{
	size_t i;

	if (!m->cap || wd <= 0)
		return NULL;
	i = wd_find(m, wd);
	return m->v[i].wd ? &m->v[i] : NULL;
}

static int wd_grow(struct scan_wdmap *m)
{
	struct scan_wdmap bigger = {NULL, m->cap ? m->cap * 2 : 64, 0};

	bigger.v = calloc(bigger.cap, sizeof(*bigger.v));
	if (!bigger.v)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++)
		if (m->v[i].wd)
			bigger.v[wd_find(&bigger, m->v[i].wd)] = m->v[i];
	bigger.n = m->n;
	free(m->v);
	*m = bigger;
	return 0;
}

/* Adds wd or points it at a new path (a watch re-added after a rename heals here). */
int scan_wdmap_set(struct scan_wdmap *m, int wd, const char *path, size_t len, struct scan_wd **ret)
{
	struct scan_wd *w = scan_wdmap_get(m, wd);
	char *copy = malloc(len + 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, path, len);
	copy[len] = '\0';
	if (!w) {
		if ((m->n + 1) * 4 > m->cap * 3 && wd_grow(m) < 0) {
			free(copy);
			return -ENOMEM;
		}
		w = &m->v[wd_find(m, wd)];
		*w = (struct scan_wd){.wd = wd};
		m->n++;
	}
	free(w->path);
	w->path = copy;
	w->len = len;
	*ret = w;
	return 0;
}

void scan_wdmap_del(struct scan_wdmap *m, int wd)
{
	size_t mask, i, j;

	if (!m->cap || wd <= 0)
		return;
	mask = m->cap - 1;
	i = wd_find(m, wd);
	if (!m->v[i].wd)
		return;
	free(m->v[i].path);
	m->v[i] = (struct scan_wd){0};
	m->n--;
	for (j = (i + 1) & mask; m->v[j].wd; j = (j + 1) & mask) {
		size_t home = wd_home(m, m->v[j].wd);

		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->v[i] = m->v[j];
			m->v[j] = (struct scan_wd){0};
			i = j;
		}
	}
}

void scan_wdmap_done(struct scan_wdmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->v[i].path);
	free(m->v);
	*m = (struct scan_wdmap){NULL, 0, 0};
}
