/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The write holds (sync/hold.h): what the scanner is told, and when the
 * loop is woken; then an engine, in-process, publishing a held file on
 * close and after HOLD_MAX_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "sync/engine_int.h"
#include "sync/hold.h"
#include "tap.h"

static bool readable(struct hold *h)
{
	struct pollfd p = {hold_fd(h), POLLIN, 0};

	return poll(&p, 1, 0) == 1;
}

TEST(defer_until_close)
{
	struct hold *h;

	REQUIRE(hold_new(&h) == 0);
	CHECK(!hold_defer(h, 1, 10, 1000)); /* not open on the mount */
	CHECK(hold_open(h, 1, 10) == 0);
	CHECK(hold_open(h, 1, 10) == 0); /* two handles */
	CHECK_INT_EQ(hold_count(h), 1);
	CHECK(!hold_defer(h, 2, 10, 1000)); /* another device */
	CHECK_INT_EQ(hold_deadline(h), UINT64_MAX);
	CHECK(hold_defer(h, 1, 10, 1000));
	CHECK(hold_defer(h, 1, 10, 2000));
	CHECK_INT_EQ(hold_deadline(h), 1000 + HOLD_MAX_MS); /* from the first */
	hold_close(h, 1, 10);
	CHECK(!readable(h)); /* one handle is still open */
	CHECK(hold_defer(h, 1, 10, 3000));
	hold_close(h, 1, 10);
	CHECK(readable(h)); /* it was left out: the loop looks again */
	CHECK(hold_on_event(h));
	CHECK(!readable(h));
	CHECK(!hold_defer(h, 1, 10, 3000));
	CHECK_INT_EQ(hold_count(h), 0);
	CHECK_INT_EQ(hold_deadline(h), UINT64_MAX);

	/* closed before the scanner ever left it out: nothing to wake for */
	CHECK(hold_open(h, 1, 11) == 0);
	hold_close(h, 1, 11);
	CHECK(!readable(h));
	hold_close(h, 1, 12); /* never held: a no-op */
	hold_free(h);
}

TEST(publish_points)
{
	struct hold *h;

	REQUIRE(hold_new(&h) == 0);
	CHECK(hold_open(h, 1, 10) == 0);
	/* an fsync before the scanner saw it: the next look publishes, once */
	hold_publish(h, 1, 10);
	CHECK(!readable(h));
	CHECK(!hold_defer(h, 1, 10, 1000));
	CHECK(hold_defer(h, 1, 10, 1100)); /* written on since: held again */
	/* an fsync of a file left out wakes the loop */
	hold_publish(h, 1, 10);
	CHECK(readable(h));
	CHECK(hold_on_event(h));
	CHECK(!hold_defer(h, 1, 10, 1200));
	CHECK_INT_EQ(hold_deadline(h), UINT64_MAX);
	hold_publish(h, 1, 99); /* not held: a no-op */
	CHECK(!readable(h));
	hold_close(h, 1, 10);
	hold_free(h);
}

/* A file kept open for writing (a log) goes out every HOLD_MAX_MS. */
TEST(bound)
{
	struct hold *h;
	uint64_t t0 = 5000;

	REQUIRE(hold_new(&h) == 0);
	CHECK(hold_open(h, 1, 10) == 0);
	CHECK(hold_defer(h, 1, 10, t0));
	CHECK(!hold_expire(h, t0 + HOLD_MAX_MS - 1));
	CHECK(hold_defer(h, 1, 10, t0 + HOLD_MAX_MS - 1));
	CHECK(hold_expire(h, t0 + HOLD_MAX_MS));
	CHECK_INT_EQ(hold_deadline(h), UINT64_MAX); /* no busy loop after it */
	CHECK(!hold_expire(h, t0 + HOLD_MAX_MS + 1));
	CHECK(!hold_defer(h, 1, 10, t0 + HOLD_MAX_MS + 5)); /* goes out */
	CHECK(hold_defer(h, 1, 10, t0 + HOLD_MAX_MS + 100)); /* a new round */
	CHECK_INT_EQ(hold_deadline(h), t0 + 2 * HOLD_MAX_MS + 100);
	/* the scanner itself publishes one it finds past the bound */
	CHECK(!hold_defer(h, 1, 10, t0 + 2 * HOLD_MAX_MS + 100));
	hold_close(h, 1, 10);
	hold_free(h);
}

/* FUSE threads open and close while the loop asks (run it under TSan). */
struct racer {
	struct hold *h;
	uint64_t ino;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	for (int i = 0; i < 20000; i++) {
		if (hold_open(r->h, 1, r->ino + (uint64_t)(i % 7)) == 0) {
			if (i % 3 == 0)
				hold_publish(r->h, 1, r->ino + (uint64_t)(i % 7));
			hold_close(r->h, 1, r->ino + (uint64_t)(i % 7));
		}
	}
	return NULL;
}

TEST(threads)
{
	struct racer rs[3];
	pthread_t t[3];
	struct hold *h;
	int started = 0;

	REQUIRE(hold_new(&h) == 0);
	for (int i = 0; i < 3; i++) {
		rs[i] = (struct racer){h, (uint64_t)i * 3};
		started += pthread_create(&t[i], NULL, racer_main, &rs[i]) == 0;
	}
	CHECK_INT_EQ(started, 3);
	for (uint64_t now = 1; now < 20000; now++) {
		(void)hold_defer(h, 1, now % 13, now * 10);
		(void)hold_expire(h, now * 10);
		(void)hold_deadline(h);
		(void)hold_on_event(h);
	}
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	CHECK_INT_EQ(hold_count(h), 0); /* every open was closed */
	hold_free(h);
}

/* ---- an engine, in-process, no peer ---- */

static char base[] = "/tmp/tandem-test-hold-XXXXXX";

static int io_send(void *ud, const uint8_t *msg, size_t len)
{
	(void)ud;
	(void)msg;
	(void)len;
	return -ENOTCONN;
}

static size_t io_room(void *ud)
{
	(void)ud;
	return 0;
}

static void io_close(void *ud, const char *why)
{
	(void)ud;
	printf("#   closed: %s\n", why);
}

static int rm_fn(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Lets the scanner see what was written: inotify, the quiet time, the hashes. */
static void settle(struct engine *e, uint64_t *now)
{
	struct pollfd p = {engine_inotify_fd(e), POLLIN, 0};

	if (poll(&p, 1, 2000) == 1)
		engine_on_inotify(e, *now);
	*now += ENGINE_SCAN_DELAY_MS;
	engine_tick(e, *now);
	engine_on_hash(e, *now); /* no_workers: hashed on the loop */
}

static bool indexed(struct engine *e, const char *path, uint64_t size)
{
	struct index_entry *x = calloc(1, sizeof(*x));
	bool r = x && index_get(e->idx, path, strlen(path), x) == 0 && !x->deleted &&
		 x->size == size;

	free(x);
	return r;
}

TEST(engine_publishes)
{
	static const struct engine_io io = {.send = io_send, .room = io_room, .close = io_close};
	char root[300], db[300], file[320];
	struct engine_opts opts = {.root = root, .index_file = db, .no_workers = true};
	struct err err = {.msg = ""};
	struct pollfd p;
	struct engine *e;
	struct stat st;
	uint64_t now = 1000;
	int fd;

	snprintf(root, sizeof(root), "%s/share", base);
	snprintf(db, sizeof(db), "%s/index.db", base);
	snprintf(file, sizeof(file), "%s/log.txt", root);
	REQUIRE(mkdir(root, 0755) == 0);
	REQUIRE(engine_new(&opts, &io, &e, &err, now) == 0);
	engine_tick(e, now); /* the first, full scan */

	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0);
	REQUIRE(fstat(fd, &st) == 0);
	CHECK(engine_write_open(e, (uint64_t)st.st_dev, (uint64_t)st.st_ino) == 0);
	CHECK(write(fd, "one\n", 4) == 4);
	settle(e, &now);
	CHECK(!indexed(e, "log.txt", 4)); /* held */
	CHECK_INT_EQ(engine_deadline(e), now + HOLD_MAX_MS);

	/* kept open past the bound: published as it is */
	now += HOLD_MAX_MS;
	engine_tick(e, now);
	engine_on_hash(e, now);
	CHECK(indexed(e, "log.txt", 4));
	CHECK(engine_deadline(e) > now + HOLD_MAX_MS);

	/* written on: held again until the close */
	CHECK(write(fd, "two\n", 4) == 4);
	settle(e, &now);
	CHECK(indexed(e, "log.txt", 4));
	engine_write_close(e, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
	p = (struct pollfd){engine_hold_fd(e), POLLIN, 0};
	CHECK(poll(&p, 1, 0) == 1);
	engine_on_hold(e, now);
	CHECK(engine_deadline(e) <= now + ENGINE_SCAN_DELAY_MS);
	now += ENGINE_SCAN_DELAY_MS;
	engine_tick(e, now);
	engine_on_hash(e, now);
	CHECK(indexed(e, "log.txt", 8));
	CHECK(close(fd) == 0);
	engine_free(e);
}

int main(void)
{
	if (sodium_init() < 0 || !mkdtemp(base)) {
		printf("Bail out! setup: %s\n", strerror(errno));
		return 1;
	}
	RUN(engine_publishes);
	(void)nftw(base, rm_fn, 16, FTW_DEPTH | FTW_PHYS);
	RUN(defer_until_close);
	RUN(publish_points);
	RUN(bound);
	RUN(threads);
	return tap_done();
}
