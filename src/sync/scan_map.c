/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The scanner's inotify table, wd -> directory, on base/map. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sync/scan_int.h"

struct scan_wd *scan_wdmap_get(struct map *m, int wd)
{
	void *v;

	if (wd <= 0 || !map_get(m, &wd, sizeof(wd), &v))
		return NULL;
	return v;
}

/* Adds wd or points it at a new path (a watch re-added after a rename heals here). */
int scan_wdmap_set(struct map *m, int wd, const char *path, size_t len, struct scan_wd **ret)
{
	struct scan_wd *w = scan_wdmap_get(m, wd);
	char *copy;

	if (wd <= 0)
		return -EINVAL;
	copy = strndup(path, len);
	if (!copy)
		return -ENOMEM;
	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w || map_put(m, &wd, sizeof(wd), w, NULL) < 0) {
			free(w);
			free(copy);
			return -ENOMEM;
		}
		w->wd = wd;
	}
	free(w->path);
	w->path = copy;
	w->len = len;
	*ret = w;
	return 0;
}

void scan_wdmap_del(struct map *m, int wd)
{
	void *v;

	if (wd > 0 && map_del(m, &wd, sizeof(wd), &v)) {
		struct scan_wd *w = v;

		free(w->path);
		free(w);
	}
}

struct scan_wd *scan_wdmap_next(struct map *m, size_t *pos)
{
	void *v;

	return map_next(m, pos, NULL, NULL, &v) ? v : NULL;
}

void scan_wdmap_done(struct map *m)
{
	struct scan_wd *w;
	size_t pos = 0;

	while ((w = scan_wdmap_next(m, &pos))) {
		free(w->path);
		free(w);
	}
	map_done(m);
}
