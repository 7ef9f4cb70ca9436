/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A slow writer on the mount (fuse-slow-writer): a program writes a file
 * through the mount in five pieces, 200 ms apart, and closes it. The mount
 * publishes a file on close, fsync and rename (FUSE.md "Publishing"); it
 * used to publish what the scanner of its store saw, 40 ms after the last
 * write, so the peer got, and showed, the file's first pieces as versions
 * of their own. A reader on the other side must only ever see it absent
 * or whole.
 *
 * Seen in the selftest under load before the fix: chaos-kill-mount once
 * failed with "a half-written file was visible" (the mount side copies its
 * big file in under a temp name, which was published part-way), and
 * sync-resume under ASan counted the bytes of such a part-way temp file.
 * This scenario showed it every time.
 *
 * Then an fsync, and a rename into place, are publish points: a file
 * written in two parts with an fsync (a rename) after the first is on the
 * other side with the first part while its writer still has it open, and
 * whole after the close; never anything else.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "st_fuse.h"
#include "st_sync.h"

#define PIECES 5
#define PIECE_LEN (64 * 1024)
#define PAUSE_MS 200

struct watch {
	char path[ST_PATH_MAX];
	uint8_t whole[32];
	uint8_t synced[32]; /* also fine: what an fsync published */
	bool has_synced;
	atomic_bool stop;
	atomic_uint synced_seen;
	unsigned absent, good, partial;
	pthread_t thread;
};

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	uint8_t h[32];

	while (!atomic_load(&w->stop)) {
		int e = st_hash_file(w->path, h, NULL);
		if (e == -ENOENT)
			w->absent++;
		else if (e == 0 && !memcmp(h, w->whole, 32))
			w->good++;
		else if (e == 0 && w->has_synced && !memcmp(h, w->synced, 32))
			atomic_fetch_add(&w->synced_seen, 1);
		else if (e == 0)
			w->partial++;
		usleep(10000);
	}
	return NULL;
}

/*
 * A publish point while the file is still open: a writes two pieces, then
 * fsyncs it (rename: renames it from a temp name into place), and b must
 * show those two pieces before a writes the rest and closes it; b never
 * shows anything else but absent, that, and whole.
 */
static void publish_point(struct st_env *env, struct st_pair *p, const uint8_t *data,
			  size_t len, bool rename_it)
{
	const char *name = rename_it ? "renamed.bin" : "synced.bin";
	char path[ST_PATH_MAX], tmp[ST_PATH_MAX];
	struct watch w;
	bool watching;
	int fd;

	memset(&w, 0, sizeof(w));
	(void)SHA256(data, 2 * PIECE_LEN, w.synced);
	(void)SHA256(data, len, w.whole);
	w.has_synced = true;
	st_pair_path(p, 1, name, w.path);
	atomic_init(&w.stop, false);
	atomic_init(&w.synced_seen, 0);
	watching = pthread_create(&w.thread, NULL, watch_main, &w) == 0;
	ST_CHECK(env, watching);
	st_pair_path(p, 0, name, path);
	st_pair_path(p, 0, "renamed.part", tmp);
	fd = open(rename_it ? tmp : path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ST_CHECK(env, fd >= 0);
	if (fd >= 0) {
		ST_CHECK(env, write(fd, data, 2 * PIECE_LEN) == 2 * PIECE_LEN);
		ST_CHECK(env, rename_it ? rename(tmp, path) == 0 : fsync(fd) == 0);
		for (int i = 0; i < 2000 && watching && !atomic_load(&w.synced_seen); i++)
			st_sleep_ms(env, 10); /* at most 20 s */
		ST_CHECK(env, atomic_load(&w.synced_seen) > 0);
		ST_CHECK(env, write(fd, data + 2 * PIECE_LEN, len - 2 * PIECE_LEN) ==
				      (ssize_t)(len - 2 * PIECE_LEN));
		st_sleep_ms(env, PAUSE_MS);
		ST_CHECK(env, close(fd) == 0);
	}
	ST_CHECK(env, st_wait_converged(env, p, NULL, 0, 20000) >= 0);
	if (watching) {
		atomic_store(&w.stop, true);
		pthread_join(w.thread, NULL);
	}
	st_note(env, "b's %s, written with %s after 2 of %d pieces: %u times absent, %u "
		"times with those, %u times whole, %u times anything else",
		name, rename_it ? "a rename into place" : "an fsync", PIECES, w.absent,
		atomic_load(&w.synced_seen), w.good, w.partial);
	ST_CHECK(env, w.partial == 0);
	ST_CHECK(env, w.good > 0);
}

int st_fuse_slow_writer(struct st_env *env)
{
	static uint8_t data[PIECES * PIECE_LEN];
	struct st_pair p;
	struct watch w;
	char path[ST_PATH_MAX];
	bool watching = false;
	int fd = -1, r = st_fuse_pair(env, &p);

	if (r) {
		st_pair_cleanup(env, &p);
		return r;
	}
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + i / 4096);
	memset(&w, 0, sizeof(w));
	(void)SHA256(data, sizeof(data), w.whole);
	st_pair_path(&p, 1, "slow.bin", w.path);
	atomic_init(&w.stop, false);
	watching = pthread_create(&w.thread, NULL, watch_main, &w) == 0;
	ST_CHECK(env, watching);
	fd = open(st_pair_path(&p, 0, "slow.bin", path), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		  0644);
	ST_CHECK(env, fd >= 0);
	for (int i = 0; fd >= 0 && i < PIECES; i++) {
		ST_CHECK(env, write(fd, data + i * PIECE_LEN, PIECE_LEN) == PIECE_LEN);
		st_sleep_ms(env, PAUSE_MS);
	}
	if (fd >= 0)
		ST_CHECK(env, close(fd) == 0);
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, 20000) >= 0);
	if (watching) {
		atomic_store(&w.stop, true);
		pthread_join(w.thread, NULL);
	}
	st_note(env, "b's slow.bin while a wrote it in %d pieces %d ms apart: %u times absent, "
		"%u times whole, %u times part-written",
		PIECES, PAUSE_MS, w.absent, w.good, w.partial);
	ST_CHECK(env, w.partial == 0);
	ST_CHECK(env, w.good > 0);

	publish_point(env, &p, data, sizeof(data), false);
	publish_point(env, &p, data, sizeof(data), true);
	st_pair_cleanup(env, &p);
	return ST_PASS;
}
