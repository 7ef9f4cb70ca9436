/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Deletions a scan found, held before they are recorded (scan.h, "Held
 * deletions"). A recursive removal of the share (rm -rf, a folder moved
 * away in parts) deletes the files before the marker and the root: a scan
 * in between sees a healthy root and files gone. Recorded at once, those
 * would be tombstones the peer applies. Held, they are recorded only once
 * the burst of deletions is over (SCAN_GONE_QUIET_MS without a new one)
 * or they waited SCAN_GONE_MAX_MS, by a scan that finds the root and its
 * marker in place after its walk, and only what is still gone then. A
 * burst that ends with the root gone is dropped with the scan's -ESTALE.
 *
 * Only the scanning thread (the engine's loop) is here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "sync/scan_int.h"

/* What a held path was when it was found gone. */
struct gone {
	uint64_t dev, ino;
	uint64_t found_ms;
};

static void set_due(struct scan *s)
{
	uint64_t oldest = UINT64_MAX;
	const void *key;
	size_t pos = 0, len;
	void *v;

	if (map_count(&s->gone) == 0) {
		s->gone_due_ms = UINT64_MAX;
		return;
	}
	while (map_next(&s->gone, &pos, &key, &len, &v)) {
		const struct gone *g = v;

		if (g->found_ms < oldest)
			oldest = g->found_ms;
	}
	s->gone_due_ms = s->gone_last_ms + SCAN_GONE_QUIET_MS;
	if (oldest + SCAN_GONE_MAX_MS < s->gone_due_ms)
		s->gone_due_ms = oldest + SCAN_GONE_MAX_MS;
}

int scan_gone_hold(struct scan *s, const struct index_entry *e, uint64_t now_ms)
{
	struct gone *g;
	void *v;
	int r;

	if (map_get(&s->gone, e->path, e->path_len, &v)) {
		g = v;
		if (g->dev != e->dev || g->ino != e->ino) {
			/* made again and recorded, gone again: a new deletion of the
			 * burst, of what the index has now */
			g->dev = e->dev;
			g->ino = e->ino;
			s->gone_last_ms = now_ms;
		}
		return 0; /* found again: it keeps its first time */
	}
	g = malloc(sizeof(*g));
	if (!g)
		return -ENOMEM;
	*g = (struct gone){e->dev, e->ino, now_ms};
	r = map_put(&s->gone, e->path, e->path_len, g, NULL);
	if (r < 0) {
		free(g);
		return r;
	}
	s->gone_last_ms = now_ms;
	return 0;
}

void scan_gone_drop(struct scan *s)
{
	size_t pos = 0;
	void *v;

	if (map_count(&s->gone) > 0)
		log_debug("scan: %zu deletions found in %s are not recorded", map_count(&s->gone),
			  s->root_q);
	while (map_next(&s->gone, &pos, NULL, NULL, &v))
		free(v);
	map_done(&s->gone);
	s->gone_due_ms = UINT64_MAX;
}

/*
 * Where held path's entry is now: path itself when its entry is live and
 * still the inode that went, else the live entry of that inode (moved in
 * the index since, by a rename of its directory). -ENOENT when neither:
 * what was deleted is recorded otherwise already.
 */
static int find_entry(struct scan *s, const char *path, size_t len, const struct gone *g)
{
	struct index_entry *e = &s->e;
	int r;

	r = index_get(s->idx, path, len, e);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == 0 && !e->deleted && (e->ino == 0 || (e->dev == g->dev && e->ino == g->ino)))
		return 0;
	if (g->ino == 0)
		return -ENOENT;
	return index_get_by_ino(s->idx, g->dev, g->ino, e);
}

/* Records the deletion of held path if it is still gone. Changes or -errno. */
static int release_one(struct scan *s, const char *path, size_t len, const struct gone *g)
{
	char p[PATH_REL_MAX + 1];
	struct stat st;
	int r;

	r = find_entry(s, path, len, g);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (s->e.deleted || scan_off_disk(&s->e) || scan_excluded(s->e.path, s->e.path_len))
		return 0;
	memcpy(p, s->e.path, s->e.path_len + 1);
	r = scan_lstat(s, p, &st);
	if (r == 0 ? scan_kind(&st) != 0 : (r != -ENOENT && r != -ENOTDIR))
		return 0; /* back (the walk records what is there), or unknown */
	return scan_delete_tree(s, p, s->e.path_len);
}

struct due {
	char *path;
	struct gone g;
};

static int cmp_due(const void *a, const void *b)
{
	return strcmp(((const struct due *)a)->path, ((const struct due *)b)->path);
}

int scan_gone_release(struct scan *s, uint64_t now_ms)
{
	bool quiet = now_ms >= s->gone_last_ms + SCAN_GONE_QUIET_MS;
	const void *key;
	size_t pos = 0, len, n = 0;
	struct due *due = NULL;
	void *v;
	int r = 0, changes = 0;

	set_due(s);
	if (map_count(&s->gone) == 0 || now_ms < s->gone_due_ms)
		return 0;
	due = calloc(map_count(&s->gone), sizeof(*due));
	if (!due)
		r = -ENOMEM;
	while (r == 0 && map_next(&s->gone, &pos, &key, &len, &v)) {
		const struct gone *g = v;

		if (!quiet && now_ms < g->found_ms + SCAN_GONE_MAX_MS)
			continue;
		due[n].g = *g;
		due[n].path = strndup(key, len);
		if (!due[n++].path)
			r = -ENOMEM;
	}
	/* Out of the held set whatever happens next: after a failure the scan's
	 * caller rescans everything (scan_walk_run), which finds them again. */
	for (size_t i = 0; r == 0 && i < n; i++)
		if (map_del(&s->gone, due[i].path, strlen(due[i].path), &v))
			free(v);
	/* parents before what is beneath them, the same order every run */
	if (r == 0)
		qsort(due, n, sizeof(*due), cmp_due);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		r = release_one(s, due[i].path, strlen(due[i].path), &due[i].g);
		changes += r > 0 ? r : 0;
	}
	for (size_t i = 0; i < n; i++)
		free(due[i].path);
	free(due);
	set_due(s);
	if (s->gone_due_ms <= now_ms) /* none released: not a busy loop */
		s->gone_due_ms = now_ms + SCAN_GONE_QUIET_MS;
	return r < 0 ? r : changes;
}
