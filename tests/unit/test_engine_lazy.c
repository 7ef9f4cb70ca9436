/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Lazy mode through the engine's seam (engine.h only), in-process: a
 * placeholder placed for the peer's file, engine_ensure() on another
 * thread (as a FUSE thread calls it) answered when the block comes, and
 * the waits that must end at once. The test's own thread is the loop and
 * plays the peer. Run it under TSan for the lazy table's lock.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync/blocks.h"
#include "sync/engine.h"
#include "sync/index.h"
#include "sync/lazy.h"
#include "sync/msg.h"
#include "sync/vv.h"
#include "tap.h"

#define NOW_MS ((uint64_t)1000)
#define FILE_LEN 3000
#define SENT_MAX 64

static char base[] = "/tmp/tandem-test-elazy-XXXXXX";
static char root[256], dbpath[256];
static unsigned ncase;
static const uint8_t peer_dev[VV_DEVICE_LEN] = {0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72, 0x72};
static uint8_t content[FILE_LEN];
static uint8_t msgbuf[SYNC_BLOCK_DATA_HEADER_LEN + SYNC_BLOCK_MAX + 64];

/* What the engine sent (the loop's thread only). */
static struct {
	uint8_t *p;
	size_t len;
} sent[SENT_MAX];
static unsigned nsent, closed;

static int io_send(void *ud, const uint8_t *msg, size_t len)
{
	(void)ud;
	if (nsent < SENT_MAX && (sent[nsent].p = malloc(len))) {
		memcpy(sent[nsent].p, msg, len);
		sent[nsent++].len = len;
	}
	return 0;
}

static size_t io_room(void *ud)
{
	(void)ud;
	return (size_t)1 << 30;
}

static void io_close(void *ud, const char *why)
{
	(void)ud;
	printf("#   the engine closed the connection: %s\n", why);
	closed++;
}

static void sent_clear(void)
{
	for (unsigned i = 0; i < nsent; i++)
		free(sent[i].p);
	nsent = 0;
}

/* The first BLOCK_REQUEST the engine sent, into *ret. */
static bool find_request(struct sync_block_request *ret)
{
	struct err err;
	struct sync_msg m;

	for (unsigned i = 0; i < nsent; i++)
		if (msg_decode(sent[i].p, sent[i].len, &m, &err) == 0 &&
		    m.type == SYNC_MSG_BLOCK_REQUEST) {
			*ret = m.block_request;
			return true;
		}
	return false;
}

static int rm_fn(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int send_msg(struct engine *e, const struct sync_msg *m)
{
	int len = msg_encode(m, msgbuf, sizeof(msgbuf));

	return len < 0 ? -1 : engine_on_msg(e, msgbuf, (size_t)len, NOW_MS);
}

#define NMANY 300 /* many placeholders: the table grows well past its first size */

/* The content of the peer's file i of the many (distinct per file). */
static void many_content(unsigned i, uint8_t *buf)
{
	for (size_t k = 0; k < FILE_LEN; k++)
		buf[k] = (uint8_t)(k * 7 + 1 + i * 13);
}

/* One entry of the peer's: file dir/fNNN (content i) or the folder dir. */
static void peer_entry(struct sync_entry *s, char *path, size_t size, const char *dir, int i,
		       uint64_t counter, bool deleted, uint64_t seq)
{
	uint8_t buf[FILE_LEN];

	memset(s, 0, sizeof(*s));
	if (i < 0) {
		snprintf(path, size, "%s", dir);
		s->kind = SYNC_KIND_DIR;
		s->mode = 0755;
	} else {
		snprintf(path, size, "%s/f%03d", dir, i);
		s->kind = SYNC_KIND_FILE;
		s->mode = 0644;
		s->size = deleted ? 0 : FILE_LEN;
		many_content((unsigned)i, buf);
		if (!deleted && blocks_hash_buf(buf, FILE_LEN, NULL, NULL, s->hash) < 0)
			memset(s->hash, 0, sizeof(s->hash));
	}
	s->path = path;
	s->path_len = strlen(path);
	s->flags = deleted ? SYNC_ENTRY_DELETED : 0;
	s->mtime_ns = 1704164645000000000LL;
	s->nvv = 1;
	memcpy(s->vv[0].device, peer_dev, VV_DEVICE_LEN);
	s->vv[0].counter = counter;
	s->seq = seq;
}

/* Sends the peer's entries [0, n) as one INDEX_UPDATE and INDEX_DONE at seq. */
static int send_entries(struct engine *e, const struct sync_entry *s, size_t n, uint64_t seq)
{
	struct sync_msg m = {.type = SYNC_MSG_INDEX_DONE};
	struct msg_index_writer w;
	int len;

	if (msg_index_writer_init(&w, msgbuf, SYNC_INDEX_MSG_MAX) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (msg_index_add(&w, &s[i]) < 0)
			return -1;
	len = msg_index_finish(&w);
	if (len < 0 || engine_on_msg(e, msgbuf, (size_t)len, NOW_MS) < 0)
		return -1;
	m.index_done.seq = seq;
	return send_msg(e, &m);
}

static int send_peer_entry(struct engine *e, const char *path, const uint8_t *data, uint64_t ctr,
			   bool deleted);

/* The peer's file at path: FILE_LEN bytes of data, its counter ctr. */
static int send_peer_content(struct engine *e, const char *path, const uint8_t *data,
			  uint64_t ctr)
{
	return send_peer_entry(e, path, data, ctr, false);
}

/* The peer's entry at path (deleted: its tombstone of data). */
static int send_peer_entry(struct engine *e, const char *path, const uint8_t *data, uint64_t ctr,
			   bool deleted)
{
	struct sync_msg m = {.type = SYNC_MSG_INDEX_DONE};
	struct msg_index_writer w;
	struct sync_entry s;
	int len;

	memset(&s, 0, sizeof(s));
	s.path = path;
	s.path_len = strlen(path);
	s.kind = SYNC_KIND_FILE;
	s.flags = deleted ? SYNC_ENTRY_DELETED : 0;
	s.mode = 0644;
	s.size = FILE_LEN;
	s.mtime_ns = 1704164645000000000LL + (int64_t)ctr;
	if (blocks_hash_buf(data, FILE_LEN, NULL, NULL, s.hash) < 0)
		return -1;
	s.nvv = 1;
	memcpy(s.vv[0].device, peer_dev, VV_DEVICE_LEN);
	s.vv[0].counter = ctr;
	s.seq = ctr;
	if (msg_index_writer_init(&w, msgbuf, SYNC_INDEX_MSG_MAX) < 0 || msg_index_add(&w, &s) < 0)
		return -1;
	len = msg_index_finish(&w);
	if (len < 0 || engine_on_msg(e, msgbuf, (size_t)len, NOW_MS) < 0)
		return -1;
	m.index_done.seq = ctr;
	return send_msg(e, &m);
}

/* An engine in lazy mode, up, that has applied the peer's file "f"
 * (FILE_LEN bytes of content): a placeholder. */
static struct engine *lazy_engine(void)
{
	struct engine_opts opts = {.root = root, .index_file = dbpath, .lazy = true,
				   .no_workers = true};
	struct engine_io io = {.send = io_send, .room = io_room, .close = io_close};
	struct sync_msg m = {.type = SYNC_MSG_START};
	struct msg_index_writer w;
	struct sync_entry s;
	struct err err;
	struct engine *e;
	int len;

	snprintf(root, sizeof(root), "%s/share%u", base, ncase);
	snprintf(dbpath, sizeof(dbpath), "%s/index%u.db", base, ncase);
	ncase++;
	if (mkdir(root, 0755) < 0)
		return NULL;
	if (engine_new(&opts, &io, &e, &err, NOW_MS) < 0) {
		printf("#   engine_new: %s\n", err.msg);
		return NULL;
	}
	engine_tick(e, NOW_MS); /* the first scan: nothing */
	engine_on_up(e, NOW_MS);
	memcpy(m.start.device, peer_dev, VV_DEVICE_LEN);
	if (send_msg(e, &m) < 0)
		goto fail;
	memset(&s, 0, sizeof(s));
	s.path = "f";
	s.path_len = 1;
	s.kind = SYNC_KIND_FILE;
	s.mode = 0644;
	s.size = FILE_LEN;
	s.mtime_ns = 1704164645000000000LL;
	if (blocks_hash_buf(content, FILE_LEN, NULL, NULL, s.hash) < 0)
		goto fail;
	s.nvv = 1;
	memcpy(s.vv[0].device, peer_dev, VV_DEVICE_LEN);
	s.vv[0].counter = 1;
	s.seq = 1;
	if (msg_index_writer_init(&w, msgbuf, SYNC_INDEX_MSG_MAX) < 0 || msg_index_add(&w, &s) < 0)
		goto fail;
	len = msg_index_finish(&w);
	if (len < 0 || engine_on_msg(e, msgbuf, (size_t)len, NOW_MS) < 0)
		goto fail;
	m = (struct sync_msg){.type = SYNC_MSG_INDEX_DONE};
	m.index_done.seq = 1;
	if (send_msg(e, &m) < 0)
		goto fail;
	sent_clear();
	return e;
fail:
	engine_free(e);
	return NULL;
}

struct reader {
	struct engine *e;
	const char *path; /* NULL: "f" */
	int timeout_ms;
	int result;
};

static void *read_thread(void *ud)
{
	struct reader *rd = ud;

	rd->result = engine_ensure(rd->e, rd->path ? rd->path : "f", NULL, 0, FILE_LEN,
				   rd->timeout_ms);
	return NULL;
}

/* The loop's turn: waits (bounded) for an ensure to wake the engine. */
static bool loop_on_ensure(struct engine *e)
{
	struct pollfd p = {.fd = engine_ensure_fd(e), .events = POLLIN};

	if (poll(&p, 1, 10000) != 1)
		return false;
	engine_on_ensure(e, NOW_MS);
	return true;
}

static bool file_is(const char *rel, const uint8_t *want, size_t len)
{
	char path[600];
	uint8_t got[FILE_LEN + 1];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, got, sizeof(got));
	close(fd);
	return n == (ssize_t)len && memcmp(got, want, len) == 0;
}

TEST(ensure_on_another_thread_gets_the_block)
{
	struct engine *e = lazy_engine();
	struct reader rd = {.e = e, .timeout_ms = 10000, .result = 1};
	struct sync_block_request q;
	pthread_t t;
	int n;

	REQUIRE(e);
	CHECK(!file_is("f", content, FILE_LEN)); /* a placeholder: zeros */
	REQUIRE(pthread_create(&t, NULL, read_thread, &rd) == 0);
	CHECK(loop_on_ensure(e));
	CHECK(find_request(&q));
	if (nsent && find_request(&q)) {
		CHECK_INT_EQ(q.offset, 0);
		CHECK_INT_EQ(q.len, FILE_LEN);
		n = msg_block_data_header(msgbuf, sizeof(msgbuf), q.req_id, 0, FILE_LEN);
		CHECK(n > 0);
		if (n > 0) {
			memcpy(msgbuf + n, content, FILE_LEN);
			CHECK_INT_EQ(engine_on_msg(e, msgbuf, (size_t)n + FILE_LEN, NOW_MS), 0);
		}
	} else {
		engine_ensure_stop(e); /* let the reader go */
	}
	pthread_join(t, NULL);
	CHECK_INT_EQ(rd.result, 0);
	CHECK(file_is("f", content, FILE_LEN));
	/* present now: answered at once, on any thread */
	CHECK_INT_EQ(engine_ensure(e, "f", NULL, 0, FILE_LEN, 0), 0);
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

TEST(ensure_stop_ends_a_wait)
{
	struct engine *e = lazy_engine();
	struct reader rd = {.e = e, .timeout_ms = 60000, .result = 1};
	pthread_t t;

	REQUIRE(e);
	REQUIRE(pthread_create(&t, NULL, read_thread, &rd) == 0);
	CHECK(loop_on_ensure(e)); /* asked for, never answered */
	engine_ensure_stop(e);	  /* as before an unmount: the reader goes at once */
	pthread_join(t, NULL);
	CHECK_INT_EQ(rd.result, -EIO);
	CHECK_INT_EQ(engine_ensure(e, "f", NULL, 0, FILE_LEN, 1000), -EIO);
	sent_clear();
	engine_free(e);
}

TEST(peer_gone_fails_at_once)
{
	struct engine *e = lazy_engine();
	struct reader rd = {.e = e, .timeout_ms = 60000, .result = 1};
	pthread_t t;

	REQUIRE(e);
	REQUIRE(pthread_create(&t, NULL, read_thread, &rd) == 0);
	CHECK(loop_on_ensure(e));
	engine_on_down(e, NOW_MS); /* the waiting reader fails, and so does the next */
	pthread_join(t, NULL);
	CHECK_INT_EQ(rd.result, -EIO);
	CHECK_INT_EQ(engine_ensure(e, "f", NULL, 0, FILE_LEN, 1000), -EIO);
	sent_clear();
	engine_free(e);
}

/*
 * A reader of path on another thread; the loop answers the engine's block
 * request with want. Returns the reader's result; *ret_asked says whether
 * the engine asked the peer for path's block (it does for a placeholder it
 * tracks, with the content hash it tracks).
 */
static int fetch_through(struct engine *e, const char *path, const uint8_t *want,
			 bool *ret_asked)
{
	struct reader rd = {.e = e, .path = path, .timeout_ms = 10000, .result = 1};
	struct sync_block_request q;
	uint8_t h[SYNC_HASH_LEN];
	pthread_t t;
	int n;

	*ret_asked = false;
	if (pthread_create(&t, NULL, read_thread, &rd) != 0)
		return -EAGAIN;
	if (loop_on_ensure(e) && find_request(&q) && q.path_len == strlen(path) &&
	    memcmp(q.path, path, q.path_len) == 0 &&
	    blocks_hash_buf(want, FILE_LEN, NULL, NULL, h) == 0 &&
	    memcmp(q.hash, h, SYNC_HASH_LEN) == 0 && q.offset == 0 && q.len == FILE_LEN &&
	    (n = msg_block_data_header(msgbuf, sizeof(msgbuf), q.req_id, 0, FILE_LEN)) > 0) {
		*ret_asked = true;
		memcpy(msgbuf + n, want, FILE_LEN);
		if (engine_on_msg(e, msgbuf, (size_t)n + FILE_LEN, NOW_MS) < 0)
			engine_ensure_stop(e);
	} else {
		/* nothing asked (or not what we expect): a wait would be for
		 * nothing; a reader already answered is not waiting any more */
		engine_ensure_stop(e);
	}
	pthread_join(t, NULL);
	sent_clear();
	return rd.result;
}

/* Waits (bounded) for the scanner's inotify events, and lets it scan. */
static bool loop_rescan(struct engine *e, uint64_t *now)
{
	struct pollfd p = {.fd = engine_inotify_fd(e), .events = POLLIN};

	if (poll(&p, 1, 10000) != 1)
		return false;
	while (poll(&p, 1, 0) == 1)
		engine_on_inotify(e, *now);
	*now += 1000;
	engine_tick(e, *now);
	engine_pump(e, *now);
	return true;
}

/*
 * Many placeholders in the lazy table, each found by its path; the peer
 * renames some of them (local moves: their marks move one by one) and the
 * user renames their folder (the index moves every row at once and the
 * table is reloaded, dropping all the old paths in one sweep). Every file
 * is still tracked, under its new path only, with its own content hash.
 */
TEST(many_placeholders_follow_their_renames)
{
	static struct sync_entry s[NMANY + 2];
	static char paths[NMANY + 2][32];
	struct engine *e = lazy_engine();
	uint8_t want[FILE_LEN];
	char path[32], from[300], to[300];
	uint64_t now = NOW_MS;
	unsigned tracked = 0, asked_ok = 0, gone_ok = 0;
	bool asked;

	REQUIRE(e);
	peer_entry(&s[0], paths[0], sizeof(paths[0]), "d", -1, 2, false, 2);
	for (int i = 0; i < NMANY; i++)
		peer_entry(&s[i + 1], paths[i + 1], sizeof(paths[i + 1]), "d", i, 2, false, 2);
	REQUIRE(send_entries(e, s, NMANY + 1, 2) == 0);
	sent_clear();
	for (int i = 0; i < NMANY; i++) {
		snprintf(path, sizeof(path), "d/f%03d", i);
		tracked += engine_ensure(e, path, NULL, 0, FILE_LEN, 0) == -EIO;
	}
	CHECK_INT_EQ(tracked, NMANY); /* none present, none waited for */

	/* The peer moves d/f000..d/f009 to g/: ten local moves. */
	peer_entry(&s[0], paths[0], sizeof(paths[0]), "g", -1, 3, false, 3);
	for (int i = 0; i < 10; i++) {
		peer_entry(&s[1 + 2 * i], paths[1 + 2 * i], sizeof(paths[0]), "d", i, 3, true, 3);
		peer_entry(&s[2 + 2 * i], paths[2 + 2 * i], sizeof(paths[0]), "g", i, 3, false, 3);
	}
	REQUIRE(send_entries(e, s, 21, 3) == 0);
	sent_clear();
	for (int i = 0; i < 10; i++) {
		snprintf(path, sizeof(path), "g/f%03d", i);
		tracked += engine_ensure(e, path, NULL, 0, FILE_LEN, 0) == -EIO;
		snprintf(path, sizeof(path), "d/f%03d", i);
		gone_ok += engine_ensure(e, path, NULL, 0, FILE_LEN, 0) == 0; /* no such file */
	}
	CHECK_INT_EQ(tracked, NMANY + 10);
	CHECK_INT_EQ(gone_ok, 10);
	many_content(3, want);
	CHECK_INT_EQ(fetch_through(e, "g/f003", want, &asked), 0);
	CHECK(asked);

	/* The user renames d to e: the scanner moves every row in the index. */
	snprintf(from, sizeof(from), "%s/d", root);
	snprintf(to, sizeof(to), "%s/e", root);
	REQUIRE(rename(from, to) == 0);
	CHECK(loop_rescan(e, &now));
	tracked = gone_ok = 0;
	for (int i = 10; i < NMANY; i++) {
		snprintf(path, sizeof(path), "e/f%03d", i);
		tracked += engine_ensure(e, path, NULL, 0, FILE_LEN, 0) == -EIO;
		snprintf(path, sizeof(path), "d/f%03d", i);
		gone_ok += engine_ensure(e, path, NULL, 0, FILE_LEN, 0) == 0;
	}
	CHECK_INT_EQ(tracked, NMANY - 10);
	CHECK_INT_EQ(gone_ok, NMANY - 10);
	for (int i = 10; i < NMANY; i += 29) {
		snprintf(path, sizeof(path), "e/f%03d", i);
		many_content((unsigned)i, want);
		asked_ok += fetch_through(e, path, want, &asked) == 0 && asked &&
			    file_is(path, want, FILE_LEN);
	}
	CHECK_INT_EQ(asked_ok, 10);

	/* The user renames e/f020 over e/f021: the row of f020 moves onto the
	 * one of f021, and the table has another version at that path now. */
	snprintf(from, sizeof(from), "%s/e/f020", root);
	snprintf(to, sizeof(to), "%s/e/f021", root);
	REQUIRE(rename(from, to) == 0);
	CHECK(loop_rescan(e, &now));
	CHECK_INT_EQ(engine_ensure(e, "e/f020", NULL, 0, FILE_LEN, 0), 0);
	CHECK_INT_EQ(engine_ensure(e, "e/f021", NULL, 0, FILE_LEN, 0), -EIO);
	many_content(20, want);
	CHECK_INT_EQ(fetch_through(e, "e/f021", want, &asked), 0);
	CHECK(asked);
	CHECK(file_is("e/f021", want, FILE_LEN));
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

/* The entry for path the engine sent last in an INDEX_UPDATE, into *ret. */
static bool find_entry(const char *path, struct sync_entry *ret)
{
	struct msg_index_iter it;
	struct sync_entry x;
	struct sync_msg m;
	struct err err;
	bool found = false;

	for (unsigned i = 0; i < nsent; i++) {
		if (msg_decode(sent[i].p, sent[i].len, &m, &err) < 0 ||
		    m.type != SYNC_MSG_INDEX_UPDATE)
			continue;
		msg_index_iter_init(&it, &m.index_update);
		while (msg_index_next(&it, &x) == 1)
			if (x.path_len == strlen(path) && memcmp(x.path, path, x.path_len) == 0) {
				*ret = x; /* points into sent[i]: valid until sent_clear */
				found = true;
			}
	}
	return found;
}

/*
 * The peer asks for the content of a file that is here only as a
 * placeholder: it has not got it under this name any more (overwritten,
 * deleted, renamed: it took our version of the name in a conflict), and
 * nobody else could ever fill the placeholder. Sim bug 8: both sides kept
 * a name nobody can read, for good. The placeholder goes, as a deletion of
 * ours that dominates what we had, so the peer drops its download too.
 */
/* The peer asks for the whole content of "f" (request id 7). */
static int ask_for_f(struct engine *e)
{
	struct sync_msg m = {.type = SYNC_MSG_BLOCK_REQUEST};

	m.block_request.req_id = 7;
	m.block_request.path = "f";
	m.block_request.path_len = 1;
	if (blocks_hash_buf(content, FILE_LEN, NULL, NULL, m.block_request.hash) < 0)
		return -1;
	m.block_request.index = 0;
	m.block_request.offset = 0;
	m.block_request.len = FILE_LEN;
	return send_msg(e, &m);
}

TEST(placeholder_the_peer_asks_for_is_dropped)
{
	struct engine *e = lazy_engine();
	struct sync_entry x;
	struct stat st;
	char path[600];
	bool error_sent = false;

	REQUIRE(e);
	CHECK_INT_EQ(ask_for_f(e), 0);
	engine_pump(e, NOW_MS);
	for (unsigned i = 0; i < nsent; i++) {
		struct sync_msg a;
		struct err err;
		if (msg_decode(sent[i].p, sent[i].len, &a, &err) == 0 &&
		    a.type == SYNC_MSG_BLOCK_ERROR && a.block_error.req_id == 7)
			error_sent = true;
	}
	CHECK(error_sent); /* it is not here either */
	snprintf(path, sizeof(path), "%s/f", root);
	CHECK(lstat(path, &st) < 0 && errno == ENOENT);
	CHECK(find_entry("f", &x));
	if (find_entry("f", &x)) {
		struct vv theirs = {.n = 1}, ours = {.n = x.nvv};
		memcpy(theirs.e[0].device, peer_dev, VV_DEVICE_LEN);
		theirs.e[0].counter = 1;
		for (unsigned i = 0; i < x.nvv; i++) {
			memcpy(ours.e[i].device, x.vv[i].device, VV_DEVICE_LEN);
			ours.e[i].counter = x.vv[i].counter;
		}
		CHECK(x.flags & SYNC_ENTRY_DELETED);
		CHECK_INT_EQ(vv_compare(&ours, &theirs), VV_DOMINATES);
	}
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

/* The same while a reader waits for its blocks: the engine's own
 * descriptor of it is no writer, and the reader gets -EIO. */
TEST(placeholder_being_fetched_is_dropped)
{
	struct engine *e = lazy_engine();
	struct reader rd = {.e = e, .timeout_ms = 30000, .result = 1};
	struct sync_block_request q;
	struct sync_entry x;
	struct stat st;
	char path[600];
	pthread_t t;

	REQUIRE(e);
	REQUIRE(pthread_create(&t, NULL, read_thread, &rd) == 0);
	CHECK(loop_on_ensure(e));
	CHECK(find_request(&q)); /* asked for: it is being fetched */
	sent_clear();
	CHECK_INT_EQ(ask_for_f(e), 0);
	engine_pump(e, NOW_MS);
	snprintf(path, sizeof(path), "%s/f", root);
	CHECK(lstat(path, &st) < 0 && errno == ENOENT);
	CHECK(find_entry("f", &x) && (x.flags & SYNC_ENTRY_DELETED));
	if (lstat(path, &st) == 0)
		engine_ensure_stop(e); /* let the reader go */
	pthread_join(t, NULL);
	CHECK_INT_EQ(rd.result, -EIO);
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

/* A placeholder the user has written since it was indexed is theirs: the
 * scanner records it; a request for the old content does not delete it. */
TEST(placeholder_written_since_is_not_dropped)
{
	static uint8_t mine[FILE_LEN]; /* the same size: only its ctime tells */
	struct engine *e = lazy_engine();
	char path[600];
	int fd;

	REQUIRE(e);
	memset(mine, 'u', sizeof(mine));
	snprintf(path, sizeof(path), "%s/f", root);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK(write(fd, mine, sizeof(mine)) == (ssize_t)sizeof(mine));
	close(fd);
	CHECK_INT_EQ(ask_for_f(e), 0);
	engine_pump(e, NOW_MS);
	CHECK(file_is("f", mine, sizeof(mine)));
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

/* The peer's entry for a file of content's FILE_LEN bytes (or its
 * tombstone), its vector the peer's counter c alone, then INDEX_DONE. */
static int send_peer_file(struct engine *e, const char *path, bool deleted, uint64_t c)
{
	struct sync_msg m = {.type = SYNC_MSG_INDEX_DONE};
	struct msg_index_writer w;
	struct sync_entry s;
	int len;

	memset(&s, 0, sizeof(s));
	s.path = path;
	s.path_len = strlen(path);
	s.kind = SYNC_KIND_FILE;
	s.flags = deleted ? SYNC_ENTRY_DELETED : 0;
	s.mode = 0644;
	s.size = FILE_LEN;
	s.mtime_ns = 1704164645000000000LL;
	if (blocks_hash_buf(content, FILE_LEN, NULL, NULL, s.hash) < 0)
		return -1;
	s.nvv = 1;
	memcpy(s.vv[0].device, peer_dev, VV_DEVICE_LEN);
	s.vv[0].counter = c;
	s.seq = c;
	if (msg_index_writer_init(&w, msgbuf, SYNC_INDEX_MSG_MAX) < 0 || msg_index_add(&w, &s) < 0)
		return -1;
	len = msg_index_finish(&w);
	if (len < 0 || engine_on_msg(e, msgbuf, (size_t)len, NOW_MS) < 0)
		return -1;
	m.index_done.seq = c;
	return send_msg(e, &m);
}

/*
 * Our file g loses a conflict to the peer's newer g (docs/SIM.md bug 9,
 * seed 4 --lazy): ours becomes the conflict copy, theirs a placeholder
 * with their vector. The peer then renames g: its tombstone must dominate
 * the placeholder and remove it. With our old counter merged into the
 * placeholder's vector it did not: "an edit wins over a deletion" kept g,
 * a placeholder whose content only the peer's new name holds, which
 * neither side could serve or ensure.
 */
TEST(conflict_winner_placeholder_renamed_away)
{
	struct engine *e = lazy_engine();
	const struct timespec old[2] = {{1, 0}, {1, 0}};
	struct stat st;
	char path[600];
	int fd;

	REQUIRE(e);
	snprintf(path, sizeof(path), "%s/g", root);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0);
	CHECK(write(fd, "ours", 4) == 4);
	CHECK(futimens(fd, old) == 0); /* older than theirs: ours loses */
	close(fd);
	REQUIRE(send_peer_file(e, "g", false, 2) == 0);
	CHECK(lstat(path, &st) == 0 && st.st_size == FILE_LEN); /* their placeholder */
	CHECK(!file_is("g", content, FILE_LEN));
	REQUIRE(send_peer_file(e, "g", true, 3) == 0); /* renamed there */
	CHECK(lstat(path, &st) < 0 && errno == ENOENT);
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

/* Whether the engine sent an entry for path with the content of data
 * (len bytes). */
static bool sent_entry_len(const char *path, const uint8_t *data, size_t len)
{
	uint8_t h[SYNC_HASH_LEN];
	struct msg_index_iter it;
	struct sync_entry x;
	struct err err;
	struct sync_msg m;

	if (blocks_hash_buf(data, len, NULL, NULL, h) < 0)
		return true;
	for (unsigned i = 0; i < nsent; i++) {
		if (msg_decode(sent[i].p, sent[i].len, &m, &err) < 0 ||
		    m.type != SYNC_MSG_INDEX_UPDATE)
			continue;
		msg_index_iter_init(&it, &m.index_update);
		while (msg_index_next(&it, &x) == 1)
			if (x.path_len == strlen(path) && !memcmp(x.path, path, x.path_len) &&
			    !(x.flags & SYNC_ENTRY_DELETED) && !memcmp(x.hash, h, SYNC_HASH_LEN))
				return true;
	}
	return false;
}

/* sent_entry_len of FILE_LEN bytes. */
static bool sent_entry(const char *path, const uint8_t *data)
{
	return sent_entry_len(path, data, FILE_LEN);
}

/* The loop's turn for the user's changes on disk: events, then the scan
 * (due a moment later), then the hashes. */
static void loop_scan(struct engine *e)
{
	engine_on_inotify(e, NOW_MS);
	engine_tick(e, NOW_MS + 60000);
	engine_on_hash(e, NOW_MS + 60000);
	engine_pump(e, NOW_MS + 60000);
}

static bool exists(const char *rel)
{
	char path[600];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return lstat(path, &st) == 0;
}

static int rename_rel(const char *from, const char *to)
{
	char a[600], b[600];

	snprintf(a, sizeof(a), "%s/%s", root, from);
	snprintf(b, sizeof(b), "%s/%s", root, to);
	return rename(a, b);
}

/*
 * Sim bug 13 (seed 65 --lazy): the user renames the placeholder f to g; the
 * peer's new version of f comes before the scanner has seen the rename (the
 * apply rescans f: gone, a deletion, and the peer's version is placed).
 * g is the old placeholder, whose content can never come now: its holes
 * must not be hashed and sent as g's content (zeros), and it goes.
 */
TEST(moved_placeholder_replaced_by_peer_sends_no_zeros)
{
	static const uint8_t zeros[FILE_LEN];
	static uint8_t v2[FILE_LEN];
	struct engine *e = lazy_engine();

	REQUIRE(e);
	memset(v2, 0x5a, sizeof(v2));
	REQUIRE(rename_rel("f", "g") == 0);
	CHECK_INT_EQ(send_peer_content(e, "f", v2, 2), 0);
	loop_scan(e);
	CHECK(!sent_entry("g", zeros));
	CHECK(!exists("g"));
	CHECK(exists("f")); /* the peer's new version, a placeholder */
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

/* A placeholder renamed and touched (so not taken for a rename by its
 * stat): still the same content under its new name, never zeros. */
TEST(moved_placeholder_stays_a_placeholder)
{
	static const uint8_t zeros[FILE_LEN];
	struct engine *e = lazy_engine();
	struct timespec ts[2] = {{0, UTIME_OMIT}, {1704164700, 0}};
	char g[600];

	REQUIRE(e);
	REQUIRE(rename_rel("f", "g") == 0);
	snprintf(g, sizeof(g), "%s/g", root);
	REQUIRE(utimensat(AT_FDCWD, g, ts, 0) == 0);
	loop_scan(e);
	CHECK(!sent_entry("g", zeros));
	CHECK(sent_entry("g", content));
	CHECK(exists("g"));
	sent_clear();
	engine_free(e);
}

/*
 * Sim bug 13 (seed 503 --lazy, with the first fix): the placeholder f,
 * renamed to g and touched, is kept as a placeholder under its new name;
 * then the peer's deletion of f (made meanwhile: concurrent) says that
 * version is gone there. g's content can never come: g goes, and so does
 * its entry at the peer, never as zeros.
 */
TEST(moved_placeholder_whose_version_the_peer_deleted_goes)
{
	static const uint8_t zeros[FILE_LEN];
	struct engine *e = lazy_engine();
	struct timespec ts[2] = {{0, UTIME_OMIT}, {1704164700, 0}};
	char g[600];

	REQUIRE(e);
	REQUIRE(rename_rel("f", "g") == 0);
	snprintf(g, sizeof(g), "%s/g", root);
	REQUIRE(utimensat(AT_FDCWD, g, ts, 0) == 0);
	loop_scan(e);
	CHECK(sent_entry("g", content));
	CHECK_INT_EQ(send_peer_entry(e, "f", content, 2, true), 0);
	loop_scan(e);
	CHECK(!exists("g"));
	CHECK(!sent_entry("g", zeros));
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

/* The first message the engine sent with an entry for path (deleted: its
 * tombstone; else live), or -1. */
static int sent_index(const char *path, bool deleted)
{
	struct msg_index_iter it;
	struct sync_entry x;
	struct err err;
	struct sync_msg m;

	for (unsigned i = 0; i < nsent; i++) {
		if (msg_decode(sent[i].p, sent[i].len, &m, &err) < 0 ||
		    m.type != SYNC_MSG_INDEX_UPDATE)
			continue;
		msg_index_iter_init(&it, &m.index_update);
		while (msg_index_next(&it, &x) == 1)
			if (x.path_len == strlen(path) && !memcmp(x.path, path, x.path_len) &&
			    !(x.flags & SYNC_ENTRY_DELETED) == !deleted)
				return (int)i;
	}
	return -1;
}

/*
 * Sim bug 19 (seed 342 --lazy): the user renames the placeholder f to g,
 * and the peer's entry of f (here its echo of the same version) comes
 * before the scanner has seen the rename. The apply's rescan of f found
 * it gone and recorded its deletion at once, sent before g (which the
 * next scan finds by its inode): the peer deleted f, the only copy of the
 * content, and then asked for g, which nobody could serve (fix 8 deleted
 * it). f's deletion is left to that scan now, which records the move: g
 * is sent no later than f's deletion (the peer moves its copy).
 */
TEST(moved_placeholder_old_name_waits_for_the_scan)
{
	struct engine *e = lazy_engine();

	REQUIRE(e);
	REQUIRE(rename_rel("f", "g") == 0);
	CHECK_INT_EQ(send_peer_content(e, "f", content, 1), 0);
	engine_pump(e, NOW_MS);
	CHECK_INT_EQ(sent_index("f", true), -1);
	loop_scan(e);
	CHECK(sent_entry("g", content));
	CHECK(sent_index("f", true) >= 0);
	CHECK(sent_index("g", false) >= 0 && sent_index("g", false) <= sent_index("f", true));
	CHECK(exists("g") && !exists("f"));
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

/*
 * Sim bug 30 (seed 2830 --lazy --ops 24): the scan queued the user's file
 * g for hashing; before its result was recorded, the user renamed the
 * placeholder f over g. The result no longer matched g's stat, so g was
 * hashed again: the placeholder's holes, recorded (and sent) as g's
 * content. A hash result for a placeholder moved there is its content.
 */
TEST(placeholder_moved_over_a_file_being_hashed)
{
	static const uint8_t zeros[FILE_LEN];
	struct engine *e = lazy_engine();
	char g[600];
	int fd;

	REQUIRE(e);
	snprintf(g, sizeof(g), "%s/g", root);
	fd = open(g, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, "mine\n", 5) == 5);
	close(fd);
	engine_on_inotify(e, NOW_MS);
	engine_tick(e, NOW_MS + 60000); /* g queued (and hashed: no workers) */
	REQUIRE(rename_rel("f", "g") == 0);
	engine_on_hash(e, NOW_MS + 60000); /* before the next walk: g again */
	engine_on_hash(e, NOW_MS + 60000);
	engine_pump(e, NOW_MS + 60000);
	loop_scan(e);
	CHECK(!sent_entry("g", zeros));
	CHECK(sent_entry("g", content));
	CHECK(exists("g") && !exists("f"));
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

struct stat_reader {
	struct engine *e;
	struct stat st;
	int result;
};

static void *stat_read_thread(void *ud)
{
	struct stat_reader *rd = ud;

	rd->result = engine_ensure(rd->e, "f", &rd->st, 0, 1, 10000);
	return NULL;
}

/*
 * Sim bug 32 (seed 2700 --lazy --ops 24): the user renamed the placeholder
 * f to g and wrote a file of their own at f; before a scan, a reader of f
 * (the user's file) sent the engine to fetch into f: not the placeholder
 * (another inode), so the lazy table forgot it. The scan then found g, the
 * placeholder's inode, moved with its entry but no longer a placeholder,
 * and hashed its holes: zeros sent as g's content, the peer's bytes lost.
 * The placeholder moved away stays tracked for the scanner.
 */
TEST(ensure_of_a_file_over_a_moved_placeholder)
{
	static const uint8_t zeros[FILE_LEN];
	struct engine *e = lazy_engine();
	struct stat_reader rd;
	pthread_t t;
	char f[600];
	int fd;

	REQUIRE(e);
	REQUIRE(rename_rel("f", "g") == 0);
	snprintf(f, sizeof(f), "%s/f", root);
	fd = open(f, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, "mine\n", 5) == 5);
	close(fd);
	rd = (struct stat_reader){.e = e};
	REQUIRE(lstat(f, &rd.st) == 0);
	REQUIRE(pthread_create(&t, NULL, stat_read_thread, &rd) == 0);
	CHECK(loop_on_ensure(e));
	pthread_join(t, NULL);
	CHECK_INT_EQ(rd.result, 0);
	loop_scan(e);
	CHECK(!sent_entry("g", zeros));
	CHECK(sent_entry("g", content));
	CHECK(exists("g") && exists("f"));
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

/* Whether the index holds a lazy-content row for path (a placeholder). */
static bool lazy_row_at(const char *path)
{
	struct index *idx;
	struct lazy_row row;
	struct err err;
	uint8_t *bits = NULL;
	int r;

	if (index_open(dbpath, &idx, &err) < 0)
		return false;
	r = index_lazy_get(idx, path, strlen(path), &row, &bits);
	free(bits);
	index_free(idx);
	return r == 0;
}

/*
 * Sim bug 33 (seed 1631 --lazy --ops 24): the peer renamed f, a
 * placeholder here, to g, a name our index knew as a tombstone of other
 * content. The batch moved f's file to g (no fetch) with its lazy row,
 * then stored g's entry: its content changed, so the index dropped the
 * row at g. g was a sparse file nobody tracked: its holes read as its
 * content (zeros, for good after the next reload of the table).
 */
TEST(placeholder_moved_by_the_peer_onto_a_tombstone_keeps_its_row)
{
	static uint8_t v2[FILE_LEN];
	struct engine *e = lazy_engine();
	struct sync_entry s[2];
	char p0[8] = "g", p1[8] = "f";

	REQUIRE(e);
	many_content(7, v2);
	REQUIRE(send_peer_content(e, "g", v2, 2) == 0);
	REQUIRE(send_peer_entry(e, "g", v2, 3, true) == 0);
	CHECK(!exists("g"));
	memset(s, 0, sizeof(s));
	for (int i = 0; i < 2; i++) {
		s[i].path = i ? p1 : p0;
		s[i].path_len = 1;
		s[i].kind = SYNC_KIND_FILE;
		s[i].flags = i ? SYNC_ENTRY_DELETED : 0;
		s[i].mode = 0644;
		s[i].size = FILE_LEN;
		s[i].mtime_ns = 1704164645000000000LL;
		REQUIRE(blocks_hash_buf(content, FILE_LEN, NULL, NULL, s[i].hash) == 0);
		s[i].nvv = 1;
		memcpy(s[i].vv[0].device, peer_dev, VV_DEVICE_LEN);
		s[i].vv[0].counter = 4 + (uint64_t)i;
		s[i].seq = 4 + (uint64_t)i;
	}
	REQUIRE(send_entries(e, s, 2, 5) == 0);
	CHECK(exists("g") && !exists("f"));
	CHECK(lazy_row_at("g"));
	CHECK(!lazy_row_at("f"));
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

/*
 * Sim bug 13 (seed 912 --lazy): the user rewrote the placeholder f with
 * content of their own (same inode), the peer's new version of f then
 * conflicted: ours went to a conflict copy, a new placeholder to f. The
 * old placeholder's entry stayed in the engine's table and was retired
 * with the inode of the user's file: renamed back over f, a complete file
 * of the user's, it could not be read (-EIO).
 */
TEST(rewritten_placeholder_not_retired)
{
	static uint8_t mine[FILE_LEN / 2], v2[FILE_LEN];
	struct engine *e = lazy_engine();
	struct timespec old[2] = {{0, UTIME_OMIT}, {1600000000, 0}};
	char f[600], copy[600] = "";
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd;

	REQUIRE(e);
	memset(mine, 0x33, sizeof(mine));
	memset(v2, 0x5a, sizeof(v2));
	snprintf(f, sizeof(f), "%s/f", root);
	fd = open(f, O_WRONLY | O_TRUNC | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK(write(fd, mine, sizeof(mine)) == (ssize_t)sizeof(mine));
	CHECK(futimens(fd, old) == 0); /* older than the peer's: theirs wins */
	close(fd);
	loop_scan(e); /* the user's content now */
	CHECK_INT_EQ(send_peer_content(e, "f", v2, 2), 0); /* concurrent: a conflict */
	d = opendir(root);
	REQUIRE(d);
	while ((de = readdir(d)))
		if (strncmp(de->d_name, "f.sync-conflict-", 16) == 0)
			snprintf(copy, sizeof(copy), "%s", de->d_name);
	closedir(d);
	REQUIRE(copy[0]);
	REQUIRE(rename_rel(copy, "f") == 0);
	REQUIRE(stat(f, &st) == 0);
	/* a complete file: readable, whatever the table says of f */
	CHECK_INT_EQ(engine_ensure(e, "f", &st, 0, sizeof(mine), 0), 0);
	CHECK(file_is("f", mine, sizeof(mine)));
	sent_clear();
	engine_free(e);
}

/*
 * Sim bug 26 (seed 529 --lazy --ops 24): the user renamed the placeholder f
 * over the placeholder g and rewrote g with content of their own (O_TRUNC
 * keeps the inode); the scanner recorded it. Then the peer's new version
 * of f came and the old placeholder f was retired by its inode, which is
 * g's now: g, a complete file of the user's, could not be read (-EIO).
 */
static void moved_rewritten(bool peer_first)
{
	static uint8_t mine[FILE_LEN / 2], vg[FILE_LEN], v2[FILE_LEN];
	struct engine *e = lazy_engine();
	char g[600];
	struct stat st;
	int fd;

	REQUIRE(e);
	memset(mine, 0x33, sizeof(mine));
	memset(vg, 0x47, sizeof(vg));
	memset(v2, 0x5a, sizeof(v2));
	REQUIRE(send_peer_content(e, "g", vg, 2) == 0); /* a placeholder too */
	REQUIRE(rename_rel("f", "g") == 0);
	snprintf(g, sizeof(g), "%s/g", root);
	fd = open(g, O_WRONLY | O_TRUNC | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK(write(fd, mine, sizeof(mine)) == (ssize_t)sizeof(mine));
	close(fd);
	if (!peer_first)
		loop_scan(e); /* g: the user's content */
	CHECK_INT_EQ(send_peer_content(e, "f", v2, 3), 0); /* the old f is retired */
	if (peer_first)
		loop_scan(e);
	CHECK(sent_entry_len("g", mine, sizeof(mine)));
	REQUIRE(stat(g, &st) == 0);
	CHECK_INT_EQ(engine_ensure(e, "g", &st, 0, sizeof(mine), 0), 0);
	CHECK(file_is("g", mine, sizeof(mine)));
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

TEST(moved_rewritten_placeholder_not_retired)
{
	moved_rewritten(false);
}

/* The same, the peer's version of f first, the scanner's record of g after. */
TEST(moved_rewritten_placeholder_unretired)
{
	moved_rewritten(true);
}

/* Whether root holds a conflict copy of "f" (any "f.sync-conflict-*"). */
static bool conflict_copy_of_f(void)
{
	struct dirent *d;
	bool found = false;
	DIR *dir = opendir(root);

	if (!dir)
		return false;
	while ((d = readdir(dir)))
		if (strncmp(d->d_name, "f.sync-conflict-", 16) == 0)
			found = true;
	closedir(dir);
	return found;
}

/*
 * Sim bug 17 (docs/SIM.md): the user changes only the metadata of the
 * placeholder "f" (a chmod) while the peer writes new content into it,
 * with a newer mtime. Ours loses; its conflict copy was a placeholder of
 * content the peer has overwritten, which nobody could serve (bug 8's
 * drop then deleted it again: traffic, a conflict notice, for nothing).
 * Ours holds no write of content: the peer's version is taken without a
 * copy, our chmod is lost.
 */
TEST(partial_placeholder_chmod_loses_without_copy)
{
	struct engine *e = lazy_engine();
	struct sync_msg m = {.type = SYNC_MSG_INDEX_DONE};
	struct msg_index_writer w;
	uint8_t other[FILE_LEN];
	struct sync_entry s;
	uint64_t now = NOW_MS;
	struct stat st;
	char path[600];
	int len;

	REQUIRE(e);
	snprintf(path, sizeof(path), "%s/f", root);
	REQUIRE(chmod(path, 0600) == 0);
	CHECK(loop_rescan(e, &now)); /* our version: a chmod of the placeholder */
	many_content(9, other);
	memset(&s, 0, sizeof(s));
	s.path = "f";
	s.path_len = 1;
	s.kind = SYNC_KIND_FILE;
	s.mode = 0644;
	s.size = FILE_LEN - 1;
	s.mtime_ns = 1704164645000000000LL + 1000000000LL; /* newer: theirs wins */
	REQUIRE(blocks_hash_buf(other, FILE_LEN - 1, NULL, NULL, s.hash) == 0);
	s.nvv = 1;
	memcpy(s.vv[0].device, peer_dev, VV_DEVICE_LEN);
	s.vv[0].counter = 2;
	s.seq = 2;
	REQUIRE(msg_index_writer_init(&w, msgbuf, SYNC_INDEX_MSG_MAX) == 0);
	REQUIRE(msg_index_add(&w, &s) == 0);
	len = msg_index_finish(&w);
	REQUIRE(len > 0 && engine_on_msg(e, msgbuf, (size_t)len, now) == 0);
	m.index_done.seq = 2;
	REQUIRE(send_msg(e, &m) == 0);
	engine_pump(e, now);
	CHECK(!conflict_copy_of_f());
	CHECK(lstat(path, &st) == 0 && st.st_size == FILE_LEN - 1); /* their placeholder */
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

/* The loop's turn for the user's changes a scan period later: events,
 * the scan, the hashes (twice: a hash queued by the first). */
static void scan_after(struct engine *e, uint64_t *now)
{
	engine_on_inotify(e, *now);
	*now += 60000;
	engine_tick(e, *now);
	engine_on_hash(e, *now);
	engine_on_hash(e, *now);
	engine_pump(e, *now);
}

/*
 * Long-run seed 2003442 (--lazy --ops 24): the user's directory d,
 * recorded, holds a file of the user's not hashed yet, and is renamed to
 * c before a scan. The peer's new file d/h comes first: the applier makes
 * d again (a new directory) and a placeholder in it. The index still gave
 * d the old directory's inode, so the next walk (c before d) took c for d
 * moved and moved d's entries with it: c/h was published with the peer's
 * content (the peer moved its only copy there, then took the user's c/h
 * over it: a lost write), and d/h, its entry and row gone, was hashed as
 * the user's: zeros. A directory the applier makes has no identity now.
 */
TEST(placeholder_in_a_directory_made_again_stays_there)
{
	static const uint8_t zeros[FILE_LEN];
	static uint8_t v2[FILE_LEN];
	static const uint8_t mine[] = "the user's own file\n";
	struct engine *e = lazy_engine();
	uint64_t now = NOW_MS;
	char path[600];
	int fd;

	REQUIRE(e);
	memset(v2, 0x5a, sizeof(v2));
	snprintf(path, sizeof(path), "%s/d", root);
	REQUIRE(mkdir(path, 0755) == 0);
	scan_after(e, &now);
	snprintf(path, sizeof(path), "%s/d/h", root);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, mine, sizeof(mine) - 1) == (ssize_t)sizeof(mine) - 1);
	close(fd);
	engine_on_inotify(e, now);
	now += 60000;
	engine_tick(e, now); /* d/h queued for hashing */
	REQUIRE(rename_rel("d", "c") == 0);
	engine_on_hash(e, now); /* d/h: no such file */
	engine_on_inotify(e, now);
	sent_clear();
	CHECK_INT_EQ(send_peer_content(e, "d/h", v2, 2), 0);
	engine_pump(e, now);
	CHECK(exists("d/h"));
	scan_after(e, &now);
	scan_after(e, &now);
	CHECK(!sent_entry("c/h", v2));
	CHECK(sent_entry_len("c/h", mine, sizeof(mine) - 1));
	CHECK(!sent_entry("d/h", zeros));
	CHECK_INT_EQ(sent_index("d/h", true), -1);
	CHECK(exists("d/h") && exists("c/h"));
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

/*
 * Long-run seed 3002596 (--lazy --ops 24): the user renames the directory
 * d, which holds the placeholder d/f000, to c; the peer's echo of d (not
 * newer) comes before the scanner has seen the rename. The apply's rescan
 * of d found it gone and recorded the deletion of its tree at once, sent
 * before c: the peer deleted d/f000, the only copy of the content, and
 * the placeholder, forgotten with its row, was hashed under c as the
 * user's file: zeros. As for a placeholder gone from its path (bug 19),
 * d's deletion is left to the walk, which records the move.
 */
TEST(dir_of_a_placeholder_moved_waits_for_the_scan)
{
	static const uint8_t zeros[FILE_LEN];
	static uint8_t buf[FILE_LEN];
	struct engine *e = lazy_engine();
	struct sync_entry s[2];
	char p0[32], p1[32];
	uint64_t now = NOW_MS;
	int ci, di;

	REQUIRE(e);
	peer_entry(&s[0], p0, sizeof(p0), "d", -1, 2, false, 2);
	peer_entry(&s[1], p1, sizeof(p1), "d", 0, 3, false, 3);
	REQUIRE(send_entries(e, s, 2, 3) == 0);
	scan_after(e, &now);
	REQUIRE(exists("d/f000"));
	sent_clear();
	REQUIRE(rename_rel("d", "c") == 0);
	s[0].seq = 4;
	REQUIRE(send_entries(e, s, 1, 4) == 0); /* the peer's echo of d */
	engine_pump(e, now);
	CHECK_INT_EQ(sent_index("d/f000", true), -1);
	scan_after(e, &now);
	scan_after(e, &now);
	many_content(0, buf);
	CHECK(sent_entry("c/f000", buf));
	CHECK(!sent_entry("c/f000", zeros));
	ci = sent_index("c/f000", false);
	di = sent_index("d/f000", true);
	CHECK(ci >= 0 && (di < 0 || ci <= di));
	CHECK(exists("c/f000") && !exists("d"));
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

/*
 * Long-run seed 2007948 (--lazy --ops 24): the user rewrote the
 * placeholder f (O_TRUNC: a file of theirs, recorded; its row dropped,
 * the table still held it) and renamed the placeholder g over it. An
 * ensure of f before a scan found the old entry, stale (-ESTALE), and
 * forgot it; nothing asked for g's blocks, and once the scan had
 * recorded the move the reader was answered 0 for a file all holes.
 */
TEST(ensure_of_a_placeholder_moved_over_a_rewritten_one)
{
	static uint8_t v2[FILE_LEN];
	static const uint8_t mine[] = "the user's own bytes\n";
	struct engine *e = lazy_engine();
	uint64_t now = NOW_MS;
	bool asked = false;
	char path[600];
	int fd;

	REQUIRE(e);
	memset(v2, 0x5a, sizeof(v2));
	snprintf(path, sizeof(path), "%s/f", root);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, mine, sizeof(mine) - 1) == (ssize_t)sizeof(mine) - 1);
	close(fd);
	scan_after(e, &now);
	CHECK_INT_EQ(send_peer_content(e, "g", v2, 2), 0);
	REQUIRE(exists("g"));
	REQUIRE(rename_rel("g", "f") == 0); /* no scan yet */
	CHECK_INT_EQ(fetch_through(e, "f", v2, &asked), 0);
	CHECK(asked);
	CHECK(file_is("f", v2, FILE_LEN));
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

/*
 * Long-run seed 2009282 (--lazy --ops 24): the user renamed the
 * placeholder g over the placeholder f, and a reader of f (g's inode)
 * came before a scan. The table still tracked f's old placeholder, not
 * the reader's file: it was answered as a complete file, 0, for a file
 * all holes. It waits now for the walk that records the move, and its
 * range is asked for then.
 */
TEST(ensure_of_a_placeholder_moved_over_another)
{
	static uint8_t v2[FILE_LEN];
	struct engine *e = lazy_engine();
	struct stat_reader rd = {.e = e, .result = 1};
	struct sync_block_request q;
	uint64_t now = NOW_MS;
	char path[600];
	pthread_t t;
	bool asked = false;
	int n;

	REQUIRE(e);
	memset(v2, 0x5a, sizeof(v2));
	CHECK_INT_EQ(send_peer_content(e, "g", v2, 2), 0);
	REQUIRE(rename_rel("g", "f") == 0);
	snprintf(path, sizeof(path), "%s/f", root);
	REQUIRE(stat(path, &rd.st) == 0);
	sent_clear();
	REQUIRE(pthread_create(&t, NULL, stat_read_thread, &rd) == 0);
	CHECK(loop_on_ensure(e));
	scan_after(e, &now); /* the walk records the move */
	for (int i = 0; i < 3 && !asked; i++) {
		struct pollfd p = {.fd = engine_ensure_fd(e), .events = POLLIN};
		if (poll(&p, 1, 100) == 1)
			engine_on_ensure(e, now);
		asked = find_request(&q);
	}
	CHECK(asked);
	if (asked && (n = msg_block_data_header(msgbuf, sizeof(msgbuf), q.req_id, 0, FILE_LEN)) > 0) {
		memcpy(msgbuf + n, v2, FILE_LEN);
		CHECK_INT_EQ(engine_on_msg(e, msgbuf, (size_t)n + FILE_LEN, now), 0);
	} else {
		engine_ensure_stop(e);
	}
	pthread_join(t, NULL);
	CHECK_INT_EQ(rd.result, 0);
	CHECK(file_is("f", v2, FILE_LEN));
	CHECK_INT_EQ(closed, 0);
	sent_clear();
	engine_free(e);
}

int main(void)
{
	for (size_t i = 0; i < FILE_LEN; i++)
		content[i] = (uint8_t)(i * 7 + 1);
	if (!mkdtemp(base)) {
		printf("Bail out! cannot make a temp dir\n");
		return 1;
	}
	RUN(ensure_on_another_thread_gets_the_block);
	RUN(ensure_stop_ends_a_wait);
	RUN(peer_gone_fails_at_once);
	RUN(many_placeholders_follow_their_renames);
	RUN(placeholder_the_peer_asks_for_is_dropped);
	RUN(placeholder_being_fetched_is_dropped);
	RUN(placeholder_written_since_is_not_dropped);
	RUN(conflict_winner_placeholder_renamed_away);
	RUN(moved_placeholder_replaced_by_peer_sends_no_zeros);
	RUN(moved_placeholder_stays_a_placeholder);
	RUN(moved_placeholder_whose_version_the_peer_deleted_goes);
	RUN(moved_placeholder_old_name_waits_for_the_scan);
	RUN(placeholder_moved_over_a_file_being_hashed);
	RUN(ensure_of_a_file_over_a_moved_placeholder);
	RUN(placeholder_moved_by_the_peer_onto_a_tombstone_keeps_its_row);
	RUN(rewritten_placeholder_not_retired);
	RUN(moved_rewritten_placeholder_not_retired);
	RUN(moved_rewritten_placeholder_unretired);
	RUN(partial_placeholder_chmod_loses_without_copy);
	RUN(placeholder_in_a_directory_made_again_stays_there);
	RUN(dir_of_a_placeholder_moved_waits_for_the_scan);
	RUN(ensure_of_a_placeholder_moved_over_a_rewritten_one);
	RUN(ensure_of_a_placeholder_moved_over_another);
	nftw(base, rm_fn, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
