/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a mount holds that the sync model has no place for (docs/FUSE.md
 * "Special files", "Hard links"):
 * - fuse-special: a FIFO, a socket and a device node made on the mount
 *   stay on that side (never sent; chmod, rename and unlink work on them),
 *   `status` counts and names them as not synced, the files around them
 *   sync as usual, and a file of the peer's at a FIFO's name is refused:
 *   the FIFO stays, status counts the refusal.
 * - fuse-ro: `up --mount -o ro`: every write on the mount is EROFS, and the
 *   peer's new file, change and deletion still show on it.
 * - fuse-hardlink: two names of one file on the mount reach the peer as
 *   two files; unlinking one keeps the other; the peer's change to one
 *   name replaces that name only (the local link is broken, as documented).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "st_fuse.h"
#include "st_sync.h"

#define WAIT_MS 20000

static bool not_synced_is(json_t *st, const void *arg)
{
	return st_jint(st, "not_synced", -1) == *(const int64_t *)arg;
}

static bool refused_some(json_t *st, const void *arg)
{
	(void)arg;
	return st_jint(st, "refused", 0) > 0;
}

static bool lists(json_t *st, const char *path)
{
	json_t *v = json_object_get(st, "not_synced_paths"), *x;
	size_t i;

	json_array_foreach(v, i, x) {
		if (json_is_string(x) && !strcmp(json_string_value(x), path))
			return true;
	}
	return false;
}

/* Waits until rel on side holds text (the special files on the mount side
 * keep the trees from ever being equal: no st_wait_converged). */
static bool wait_text(const struct st_pair *p, int side, const char *rel, const char *text)
{
	uint64_t end = st_now_ms() + WAIT_MS;
	char buf[64];

	do {
		ssize_t n = st_pair_read(p, side, rel, buf, sizeof(buf));
		if (n == (ssize_t)strlen(text) && !memcmp(buf, text, (size_t)n))
			return true;
		usleep(20000);
	} while (st_now_ms() < end);
	return false;
}

static mode_t kind(const struct st_pair *p, int side, const char *rel)
{
	char path[ST_PATH_MAX];
	struct stat st;

	if (!st_pair_path(p, side, rel, path) || lstat(path, &st) < 0)
		return 0;
	return st.st_mode & S_IFMT;
}

int st_fuse_special(struct st_env *env)
{
	struct st_pair p;
	char m[ST_PATH_MAX], m2[ST_PATH_MAX];
	int64_t want;
	json_t *st;
	int r = st_fuse_pair(env, &p);

	if (r)
		goto out;
	ST_CHECK(env, mkfifo(st_pair_path(&p, 0, "pipe", m), 0644) == 0);
	ST_CHECK(env, mknod(st_pair_path(&p, 0, "sock", m), S_IFSOCK | 0600, 0) == 0);
	ST_CHECK(env, mknod(st_pair_path(&p, 0, "null", m), S_IFCHR | 0600, makedev(1, 3)) == 0);
	ST_CHECK(env, mkdir(st_pair_path(&p, 0, "d", m), 0755) == 0);
	ST_CHECK(env, mkfifo(st_pair_path(&p, 0, "d/fifo2", m), 0600) == 0);
	ST_CHECK(env, chmod(st_pair_path(&p, 0, "d/fifo2", m), 0640) == 0);
	ST_CHECK(env, rename(m, st_pair_path(&p, 0, "d/fifo3", m2)) == 0);
	ST_CHECK(env, st_pair_write(&p, 0, "plain.txt", "synced\n", 7) == 0);
	/* written after them: once it is there, they would have been too */
	ST_CHECK(env, wait_text(&p, 1, "plain.txt", "synced\n"));
	ST_CHECK(env, st_pair_exists(&p, 1, "d"));
	ST_CHECK(env, !st_pair_exists(&p, 1, "pipe") && !st_pair_exists(&p, 1, "sock") &&
			      !st_pair_exists(&p, 1, "null") && !st_pair_exists(&p, 1, "d/fifo3"));
	ST_CHECK(env, kind(&p, 0, "pipe") == S_IFIFO && kind(&p, 0, "null") == S_IFCHR &&
			      kind(&p, 0, "d/fifo3") == S_IFIFO);
	want = 4;
	st = st_pair_status_wait(env, &p, 0, not_synced_is, &want, WAIT_MS,
				 "4 special files not synced");
	ST_CHECK(env, st && lists(st, "pipe") && lists(st, "d/fifo3"));
	json_decref(st);
	ST_CHECK(env, unlink(st_pair_path(&p, 0, "sock", m)) == 0);
	ST_CHECK(env, st_pair_write(&p, 0, "plain2.txt", "again\n", 6) == 0);
	ST_CHECK(env, wait_text(&p, 1, "plain2.txt", "again\n"));
	want = 3;
	st = st_pair_status_wait(env, &p, 0, not_synced_is, &want, WAIT_MS,
				 "3 special files not synced after an unlink");
	json_decref(st);

	/* the peer's file at the FIFO's name: ours stays, theirs is refused */
	ST_CHECK(env, st_pair_write(&p, 1, "pipe", "a file\n", 7) == 0);
	st = st_pair_status_wait(env, &p, 0, refused_some, NULL, WAIT_MS,
				 "the peer's file at our FIFO refused");
	json_decref(st);
	ST_CHECK(env, kind(&p, 0, "pipe") == S_IFIFO);
	ST_CHECK(env, st_peer_log_has(&p.peer[0], "our FIFO of that name stays"));
	/* and nothing was sent back: the peer keeps its file */
	ST_CHECK(env, kind(&p, 1, "pipe") == S_IFREG);
out:
	if (p.peer[0].home[0])
		st_pair_cleanup(env, &p);
	return r ? r : ST_PASS;
}

static nlink_t links(const struct st_pair *p, int side, const char *rel)
{
	char path[ST_PATH_MAX];
	struct stat st;

	if (!st_pair_path(p, side, rel, path) || lstat(path, &st) < 0)
		return 0;
	return st.st_nlink;
}

int st_fuse_hardlink(struct st_env *env)
{
	struct st_pair p;
	char m[ST_PATH_MAX], m2[ST_PATH_MAX], buf[64];
	int r = st_fuse_pair(env, &p);

	if (r)
		goto out;
	ST_CHECK(env, st_pair_write(&p, 0, "a.txt", "one inode\n", 10) == 0);
	ST_CHECK(env, link(st_pair_path(&p, 0, "a.txt", m), st_pair_path(&p, 0, "b.txt", m2)) == 0);
	ST_CHECK(env, links(&p, 0, "b.txt") == 2);
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, WAIT_MS) >= 0);
	/* two files on the peer, each with the content */
	ST_CHECK(env, links(&p, 1, "a.txt") == 1 && links(&p, 1, "b.txt") == 1);
	ST_CHECK(env, st_pair_read(&p, 1, "b.txt", buf, sizeof(buf)) == 10 &&
			      !strcmp(buf, "one inode\n"));
	/* unlink of one name keeps the other, here and there (no rename) */
	ST_CHECK(env, st_pair_rm(&p, 0, "a.txt") == 0);
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, WAIT_MS) >= 0);
	ST_CHECK(env, !st_pair_exists(&p, 1, "a.txt") && st_pair_exists(&p, 1, "b.txt"));
	ST_CHECK(env, st_pair_read(&p, 0, "b.txt", buf, sizeof(buf)) == 10);
	/* a link made later, then the peer changes one name: only that name
	 * changes; the other keeps the old content (the link is broken) */
	ST_CHECK(env, link(st_pair_path(&p, 0, "b.txt", m), st_pair_path(&p, 0, "c.txt", m2)) == 0);
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, WAIT_MS) >= 0);
	ST_CHECK(env, st_pair_read(&p, 1, "c.txt", buf, sizeof(buf)) == 10);
	ST_CHECK(env, st_pair_write(&p, 1, "c.txt", "changed on the peer\n", 20) == 0);
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, WAIT_MS) >= 0);
	ST_CHECK(env, st_pair_read(&p, 0, "c.txt", buf, sizeof(buf)) == 20 &&
			      !strcmp(buf, "changed on the peer\n"));
	ST_CHECK(env, st_pair_read(&p, 0, "b.txt", buf, sizeof(buf)) == 10 &&
			      !strcmp(buf, "one inode\n"));
	ST_CHECK(env, st_pair_read(&p, 1, "b.txt", buf, sizeof(buf)) == 10);
out:
	if (p.peer[0].home[0])
		st_pair_cleanup(env, &p);
	return r ? r : ST_PASS;
}

static bool idle(json_t *st, const void *arg)
{
	(void)arg;
	return st_jstr_is(st, "state", "connected") && st_jstr_is(st, "sync_state", "idle");
}

int st_fuse_ro(struct st_env *env)
{
	struct st_pair p;
	char m[ST_PATH_MAX], m2[ST_PATH_MAX];
	int fd, r = st_fuse_need(env);

	if (r)
		return r;
	ST_REQUIRE(env, st_pair_make(env, &p, "") == 0);
	ST_CHECK(env, st_pair_write(&p, 1, "there.txt", "from the peer\n", 14) == 0);
	p.up_extra[0] = "-oro";
	if (env->failures || st_pair_up(env, &p, 0) < 0 || st_pair_up(env, &p, 1) < 0)
		goto out;
	for (int i = 0; i < 2; i++)
		json_decref(st_pair_status_wait(env, &p, i, idle, NULL, WAIT_MS, "connected and idle"));
	ST_CHECK(env, wait_text(&p, 0, "there.txt", "from the peer\n"));
	/* writes on the mount: EROFS, and nothing changed */
	errno = 0;
	fd = open(st_pair_path(&p, 0, "new.txt", m), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ST_CHECK(env, fd < 0 && errno == EROFS);
	if (fd >= 0)
		close(fd);
	errno = 0;
	fd = open(st_pair_path(&p, 0, "there.txt", m), O_WRONLY | O_APPEND | O_CLOEXEC);
	ST_CHECK(env, fd < 0 && errno == EROFS);
	if (fd >= 0)
		close(fd);
	ST_CHECK(env, unlink(m) < 0 && errno == EROFS);
	ST_CHECK(env, mkdir(st_pair_path(&p, 0, "d", m2), 0755) < 0 && errno == EROFS);
	ST_CHECK(env, rename(m, m2) < 0 && errno == EROFS);
	ST_CHECK(env, chmod(m, 0600) < 0 && errno == EROFS);
	ST_CHECK(env, mkfifo(m2, 0600) < 0 && errno == EROFS);
	ST_CHECK(env, link(m, m2) < 0 && errno == EROFS);
	/* the peer's changes still arrive in the store and show */
	ST_CHECK(env, st_pair_write(&p, 1, "later.txt", "new there\n", 10) == 0);
	ST_CHECK(env, st_pair_write(&p, 1, "there.txt", "changed there\n", 14) == 0);
	ST_CHECK(env, wait_text(&p, 0, "later.txt", "new there\n"));
	ST_CHECK(env, wait_text(&p, 0, "there.txt", "changed there\n"));
	ST_CHECK(env, st_pair_rm(&p, 1, "later.txt") == 0);
	ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, WAIT_MS) >= 0);
	ST_CHECK(env, !st_pair_exists(&p, 0, "later.txt"));
out:
	st_pair_cleanup(env, &p);
	return env->failures ? ST_FAIL : ST_PASS;
}
