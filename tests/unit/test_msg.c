/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdint.h>

#include "sync/msg.h"
#include "tap.h"

static uint8_t big[2 * 1024 * 1024];
static uint8_t big2[2 * 1024 * 1024];

/* An independent writer of the documented layout, without any checks, to build bad input. */
struct raw {
	uint8_t *p;
	size_t n;
};

static void raw_bytes(struct raw *r, const void *p, size_t n)
{
	memcpy(r->p + r->n, p, n);
	r->n += n;
}

static void raw_int(struct raw *r, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		r->p[r->n++] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static void raw_entry(struct raw *r, const struct sync_entry *e)
{
	raw_int(r, e->path_len, 2);
	raw_bytes(r, e->path, e->path_len);
	raw_int(r, e->kind, 1);
	raw_int(r, e->flags, 1);
	raw_int(r, e->mode, 2);
	raw_int(r, e->size, 8);
	raw_int(r, (uint64_t)e->mtime_ns, 8);
	raw_bytes(r, e->hash, 32);
	if (e->kind == SYNC_KIND_SYMLINK) {
		raw_int(r, e->target_len, 2);
		raw_bytes(r, e->target, e->target_len);
	}
	raw_int(r, e->nvv, 1);
	for (unsigned i = 0; i < e->nvv; i++) {
		if (i < SYNC_VV_MAX) {
			raw_bytes(r, e->vv[i].device, 8);
			raw_int(r, e->vv[i].counter, 8);
		} else { /* more than the struct holds: distinct filler */
			raw_int(r, 0x8000000000000000ULL + i, 8);
			raw_int(r, i, 8);
		}
	}
	raw_int(r, e->seq, 8);
}

/* One INDEX_UPDATE with one entry, written by the independent writer. */
static size_t raw_index1(uint8_t *out, const struct sync_entry *e)
{
	struct raw r = {out, 0};

	raw_int(&r, SYNC_MSG_INDEX_UPDATE, 1);
	raw_int(&r, 1, 2);
	raw_entry(&r, e);
	return r.n;
}

static int decode(const uint8_t *b, size_t n, struct sync_msg *m)
{
	struct err err;
	int r = msg_decode(b, n, m, &err);

	if (r < 0 && (err.msg[0] == '\0' || strlen(err.msg) >= ERR_LEN))
		return -1000; /* every failure says why */
	return r;
}

/* Decodes exactly; every shorter prefix and one trailing byte more are -EBADMSG. */
static int strict(const uint8_t *b, size_t n)
{
	struct sync_msg m;
	static uint8_t tmp[SYNC_MSG_MAX + 1];
	int bad = 0;

	if (decode(b, n, &m) != 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (n > 20000 && i > 200 && i < n - 200 && i % 997 != 0)
			continue;
		if (decode(b, i, &m) != -EBADMSG) {
			printf("#   prefix of %zu of %zu bytes not rejected\n", i, n);
			bad++;
		}
	}
	if (n < sizeof(tmp)) {
		memcpy(tmp, b, n);
		tmp[n] = 0;
		if (decode(tmp, n + 1, &m) != -EBADMSG)
			bad++;
	}
	return bad == 0;
}

static void dev(uint8_t d[8], uint8_t x)
{
	memset(d, x, 8);
}

static void entry_file(struct sync_entry *e, const char *path)
{
	memset(e, 0, sizeof(*e));
	e->path = path;
	e->path_len = strlen(path);
	e->kind = SYNC_KIND_FILE;
	e->mode = 0644;
	e->size = 12345;
	e->mtime_ns = 1700000000123456789LL;
	memset(e->hash, 0xab, 32);
	e->nvv = 2;
	dev(e->vv[0].device, 1);
	e->vv[0].counter = 7;
	dev(e->vv[1].device, 2);
	e->vv[1].counter = UINT64_MAX;
	e->seq = 42;
}

static int entry_eq(const struct sync_entry *a, const struct sync_entry *b)
{
	if (a->path_len != b->path_len || memcmp(a->path, b->path, a->path_len) != 0)
		return 0;
	if (a->kind != b->kind || a->flags != b->flags || a->mode != b->mode ||
	    a->size != b->size || a->mtime_ns != b->mtime_ns || a->seq != b->seq ||
	    memcmp(a->hash, b->hash, 32) != 0 || a->nvv != b->nvv)
		return 0;
	if (a->target_len != b->target_len ||
	    (a->target_len && memcmp(a->target, b->target, a->target_len) != 0))
		return 0;
	for (unsigned i = 0; i < a->nvv; i++)
		if (memcmp(a->vv[i].device, b->vv[i].device, 8) != 0 ||
		    a->vv[i].counter != b->vv[i].counter)
			return 0;
	return 1;
}

static int index_encode(const struct sync_entry *es, unsigned n, uint8_t *buf, size_t outlen)
{
	struct msg_index_writer w;
	int r = msg_index_writer_init(&w, buf, outlen);

	for (unsigned i = 0; r == 0 && i < n; i++)
		r = msg_index_add(&w, &es[i]);
	return r < 0 ? r : msg_index_finish(&w);
}

/* Decodes an INDEX_UPDATE and compares its entries with es[0..n). */
static int index_matches(const uint8_t *b, size_t len, const struct sync_entry *es, unsigned n)
{
	struct sync_msg m;
	struct msg_index_iter it;
	struct sync_entry e;
	unsigned i = 0;
	int r;

	if (decode(b, len, &m) != 0 || m.type != SYNC_MSG_INDEX_UPDATE || m.index_update.count != n)
		return 0;
	msg_index_iter_init(&it, &m.index_update);
	while ((r = msg_index_next(&it, &e)) == 1) {
		if (i >= n || !entry_eq(&e, &es[i]))
			return 0;
		if (e.path < (const char *)b || e.path + e.path_len > (const char *)b + len)
			return 0; /* points into the input */
		i++;
	}
	return r == 0 && i == n;
}

TEST(index_roundtrip)
{
	struct sync_entry es[4];
	uint8_t buf[4096], raw[4096];
	struct raw rw = {raw, 0};
	int n;

	entry_file(&es[0], "docs/report.pdf");
	memset(&es[1], 0, sizeof(es[1]));
	es[1].path = "docs";
	es[1].path_len = 4;
	es[1].kind = SYNC_KIND_DIR;
	es[1].mode = 0755;
	es[1].mtime_ns = -1; /* before 1970 */
	es[1].seq = 0;
	entry_file(&es[2], "link");
	es[2].kind = SYNC_KIND_SYMLINK;
	es[2].target = "../../outside/is/kept/as/is";
	es[2].target_len = strlen(es[2].target);
	es[2].mode = 0777;
	es[2].nvv = 0;
	entry_file(&es[3], "gone.txt");
	es[3].flags = SYNC_ENTRY_DELETED;
	es[3].mode = 0;
	es[3].mtime_ns = INT64_MIN;
	es[3].nvv = SYNC_VV_MAX;
	for (unsigned i = 0; i < SYNC_VV_MAX; i++) {
		dev(es[3].vv[i].device, (uint8_t)(0x10 + i));
		es[3].vv[i].counter = i;
	}

	n = index_encode(es, 4, buf, sizeof(buf));
	REQUIRE(n > 0);
	CHECK(index_matches(buf, (size_t)n, es, 4));
	CHECK(strict(buf, (size_t)n));

	/* the layout is the documented one */
	raw_int(&rw, SYNC_MSG_INDEX_UPDATE, 1);
	raw_int(&rw, 4, 2);
	for (int i = 0; i < 4; i++)
		raw_entry(&rw, &es[i]);
	CHECK_INT_EQ(rw.n, n);
	CHECK(memcmp(raw, buf, rw.n) == 0);

	/* the example of docs/SYNC-PROTOCOL.md section 6 */
	uint8_t doc[3 + 67] = {0};
	struct sync_entry d = {0};

	memcpy(doc,
	       "\x02\x00\x01" /* type, count */
	       "\x00\x04"
	       "docs"
	       "\x02\x00\x01\xed", /* kind, flags, mode */
	       13);
	doc[69] = 11; /* seq, after size, mtime, hash and an empty vector */
	d.path = "docs";
	d.path_len = 4;
	d.kind = SYNC_KIND_DIR;
	d.mode = 0755;
	d.seq = 11;
	n = index_encode(&d, 1, buf, sizeof(buf));
	CHECK_INT_EQ(n, sizeof(doc));
	CHECK(memcmp(buf, doc, sizeof(doc)) == 0);

	/* a deleted symlink may have lost its target */
	es[2].flags = SYNC_ENTRY_DELETED;
	es[2].target = NULL;
	es[2].target_len = 0;
	n = index_encode(&es[2], 1, buf, sizeof(buf));
	REQUIRE(n > 0);
	CHECK(index_matches(buf, (size_t)n, &es[2], 1));
}

TEST(index_max_lengths)
{
	static char path[SYNC_PATH_MAX + 1], target[SYNC_TARGET_MAX + 1];
	struct sync_entry e;
	int n;

	/* 4095 bytes: 16 names of 255 and separators */
	memset(path, 'p', SYNC_PATH_MAX);
	for (size_t i = 255; i < SYNC_PATH_MAX; i += 256)
		path[i] = '/';
	memset(target, 't', SYNC_TARGET_MAX);
	entry_file(&e, path);
	CHECK_INT_EQ(e.path_len, SYNC_PATH_MAX);
	e.kind = SYNC_KIND_SYMLINK;
	e.target = target;
	e.target_len = SYNC_TARGET_MAX;
	e.nvv = SYNC_VV_MAX;
	for (unsigned i = 0; i < SYNC_VV_MAX; i++)
		dev(e.vv[i].device, (uint8_t)i);
	e.size = SYNC_FILE_MAX;
	e.seq = UINT64_MAX;

	/* exactly the largest entry fits in a buffer of that size, one byte less does not */
	n = index_encode(&e, 1, big, SYNC_INDEX_HEADER_LEN + SYNC_ENTRY_LEN_MAX);
	CHECK_INT_EQ(n, SYNC_INDEX_HEADER_LEN + SYNC_ENTRY_LEN_MAX);
	CHECK(index_matches(big, (size_t)n, &e, 1));
	CHECK(strict(big, (size_t)n));
	CHECK_INT_EQ(index_encode(&e, 1, big, SYNC_INDEX_HEADER_LEN + SYNC_ENTRY_LEN_MAX - 1),
		     -EMSGSIZE);

	/* one byte more in the path or the target is refused both ways */
	e.target_len = SYNC_TARGET_MAX + 1;
	CHECK_INT_EQ(index_encode(&e, 1, big, sizeof(big)), -EINVAL);
	e.target_len = SYNC_TARGET_MAX;
	e.size = SYNC_FILE_MAX + 1;
	CHECK_INT_EQ(index_encode(&e, 1, big, sizeof(big)), -EINVAL);
	e.size = 0;

	static char over[SYNC_TARGET_MAX + 2];
	memset(over, 't', sizeof(over) - 1);
	e.target = over;
	e.target_len = SYNC_TARGET_MAX + 1;
	size_t len = raw_index1(big, &e);
	struct sync_msg m;
	CHECK_INT_EQ(decode(big, len, &m), -EBADMSG);

	entry_file(&e, "x");
	e.path = over;
	e.path_len = SYNC_PATH_MAX + 1;
	len = raw_index1(big, &e);
	CHECK_INT_EQ(decode(big, len, &m), -EBADMSG);
}

TEST(index_max_count)
{
	struct msg_index_writer w;
	struct sync_entry e;
	struct sync_msg m;
	int n;

	memset(&e, 0, sizeof(e));
	e.path = "a";
	e.path_len = 1;
	e.kind = SYNC_KIND_FILE;
	REQUIRE(msg_index_writer_init(&w, big, sizeof(big)) == 0);
	for (unsigned i = 0; i < SYNC_INDEX_ENTRIES_MAX; i++) {
		e.seq = i;
		REQUIRE(msg_index_add(&w, &e) == 0);
	}
	CHECK_INT_EQ(msg_index_add(&w, &e), -EMSGSIZE);
	n = msg_index_finish(&w);
	REQUIRE(n > 0);
	CHECK(n <= (int)SYNC_INDEX_MSG_MAX);
	REQUIRE(decode(big, (size_t)n, &m) == 0);
	CHECK_INT_EQ(m.index_update.count, SYNC_INDEX_ENTRIES_MAX);
	CHECK(strict(big, (size_t)n));

	struct msg_index_iter it;
	unsigned count = 0;
	msg_index_iter_init(&it, &m.index_update);
	while (msg_index_next(&it, &e) == 1)
		CHECK(e.seq == count++);
	CHECK_INT_EQ(count, SYNC_INDEX_ENTRIES_MAX);

	/* the writer stops at SYNC_INDEX_MSG_MAX bytes, whatever the buffer */
	char path[200];
	memset(path, 'q', sizeof(path));
	e.path = path;
	e.path_len = sizeof(path);
	REQUIRE(msg_index_writer_init(&w, big, sizeof(big)) == 0);
	while (msg_index_add(&w, &e) == 0)
		;
	CHECK(w.count > 0 && w.count < SYNC_INDEX_ENTRIES_MAX);
	n = msg_index_finish(&w);
	CHECK(n > (int)SYNC_INDEX_MSG_MAX - 300 && n <= (int)SYNC_INDEX_MSG_MAX);
	CHECK_INT_EQ(decode(big, (size_t)n, &m), 0);
}

TEST(index_count_caps)
{
	struct sync_msg m;
	struct msg_index_writer w;
	struct err err;
	uint8_t b[8192];

	/* empty batch: refused both ways */
	b[0] = SYNC_MSG_INDEX_UPDATE;
	b[1] = 0;
	b[2] = 0;
	CHECK_INT_EQ(decode(b, 3, &m), -EBADMSG);
	REQUIRE(msg_index_writer_init(&w, b, sizeof(b)) == 0);
	CHECK_INT_EQ(msg_index_finish(&w), -EINVAL);
	CHECK_INT_EQ(msg_index_writer_init(&w, b, 2), -EMSGSIZE);

	/* over the entry cap, with enough bytes behind: refused on the count */
	memset(big, 0, SYNC_INDEX_MSG_MAX);
	big[0] = SYNC_MSG_INDEX_UPDATE;
	big[1] = (uint8_t)((SYNC_INDEX_ENTRIES_MAX + 1) >> 8);
	big[2] = (uint8_t)(SYNC_INDEX_ENTRIES_MAX + 1);
	CHECK_INT_EQ(msg_decode(big, SYNC_INDEX_MSG_MAX, &m, &err), -EBADMSG);
	CHECK(strstr(err.msg, "more than") != NULL);
	big[1] = big[2] = 0xff;
	CHECK_INT_EQ(msg_decode(big, SYNC_INDEX_MSG_MAX, &m, &err), -EBADMSG);

	/* a count the bytes cannot hold is refused before any entry is read */
	b[1] = 0;
	b[2] = 100;
	memset(b + 3, 0, 99 * 64);
	CHECK_INT_EQ(msg_decode(b, 3 + 99 * 64, &m, &err), -EBADMSG);
	CHECK(strstr(err.msg, "cannot fit") != NULL);

	/* a message over SYNC_INDEX_MSG_MAX bytes */
	CHECK_INT_EQ(msg_decode(big, SYNC_INDEX_MSG_MAX + 1, &m, &err), -EBADMSG);
	/* ... also when its entries are valid and within the count cap */
	{
		char p[301];
		struct sync_entry pe;
		struct raw r = {big, 0};
		unsigned count = (unsigned)(SYNC_INDEX_MSG_MAX / 300 + 1);

		memset(p, 'p', sizeof(p));
		p[150] = '/';
		entry_file(&pe, "x");
		pe.path = p;
		pe.path_len = sizeof(p);
		raw_int(&r, SYNC_MSG_INDEX_UPDATE, 1);
		raw_int(&r, count, 2);
		for (unsigned i = 0; i < count; i++)
			raw_entry(&r, &pe);
		CHECK(r.n > SYNC_INDEX_MSG_MAX && r.n < sizeof(big));
		CHECK_INT_EQ(msg_decode(big, r.n, &m, &err), -EBADMSG);
		CHECK(strstr(err.msg, "bytes, more than") != NULL);
	}

	/* a count of 2 with one entry behind it */
	struct sync_entry e;
	entry_file(&e, "f");
	size_t n = raw_index1(b, &e);
	CHECK_INT_EQ(decode(b, n, &m), 0);
	b[2] = 2;
	CHECK_INT_EQ(decode(b, n, &m), -EBADMSG);
	/* a version vector over its cap is refused on its count */
	b[2] = 1;
	e.nvv = SYNC_VV_MAX + 1;
	n = raw_index1(b, &e);
	CHECK_INT_EQ(msg_decode(b, n, &m, &err), -EBADMSG);
	CHECK(strstr(err.msg, "version vector") != NULL);
}

TEST(index_bad_paths)
{
	static const struct {
		const char *p;
		size_t len;
	} bad[] = {
		{"../x", 4}, {"/abs", 4},   {"a\0b", 3}, {"", 0},      {"a//b", 4},
		{"x/", 2},   {"a/../b", 6}, {".", 1},	 {"a/./b", 5}, {"..", 2},
	};
	struct sync_entry e;
	struct sync_msg m;
	uint8_t b[512];
	struct err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		entry_file(&e, "ok");
		e.path = bad[i].p;
		e.path_len = bad[i].len;
		CHECK_INT_EQ(index_encode(&e, 1, b, sizeof(b)), -EINVAL);
		size_t n = raw_index1(b, &e);
		CHECK_INT_EQ(msg_decode(b, n, &m, &err), -EBADMSG);
		CHECK(strstr(err.msg, "path") != NULL);
	}
	/* a name longer than 255 bytes */
	char longname[300];
	memset(longname, 'n', sizeof(longname));
	e.path = longname;
	e.path_len = sizeof(longname);
	CHECK_INT_EQ(index_encode(&e, 1, b, sizeof(b)), -EINVAL);
	CHECK_INT_EQ(decode(b, raw_index1(b, &e), &m), -EBADMSG);
}

TEST(index_bad_fields)
{
	struct sync_entry e;
	struct sync_msg m;
	uint8_t b[512];

#define BAD_BOTH(setup)                                                                            \
	do {                                                                                       \
		entry_file(&e, "f");                                                               \
		setup;                                                                             \
		CHECK_INT_EQ(index_encode(&e, 1, b, sizeof(b)), -EINVAL);                          \
		CHECK_INT_EQ(decode(b, raw_index1(b, &e), &m), -EBADMSG);                          \
	} while (0)

	BAD_BOTH(e.kind = 0);
	BAD_BOTH(e.kind = 4);
	BAD_BOTH(e.kind = 255);
	BAD_BOTH(e.flags = 2);
	BAD_BOTH(e.flags = 0x81);
	BAD_BOTH(e.mode = 01000);
	BAD_BOTH(e.mode = 04755);
	BAD_BOTH(e.size = UINT64_MAX);
	/* issue #10: a file over 1 TiB (BLOCKS_FILE_MAX) is a protocol error, also
	 * where the block count no longer fits in 32 bits */
	BAD_BOTH(e.size = SYNC_FILE_MAX + 1);
	BAD_BOTH(e.size = ((uint64_t)1 << 52) + 1);
	BAD_BOTH(e.size = (uint64_t)1 << 62);
	BAD_BOTH(e.size = INT64_MAX);
	BAD_BOTH((e.flags = SYNC_ENTRY_DELETED, e.size = (uint64_t)1 << 62));
	/* a directory with a hash, then with a size */
	BAD_BOTH((e.kind = SYNC_KIND_DIR, e.size = 0));
	BAD_BOTH((e.kind = SYNC_KIND_DIR, memset(e.hash, 0, 32)));
	BAD_BOTH((e.kind = SYNC_KIND_SYMLINK, e.target = "", e.target_len = 0));
	BAD_BOTH((e.kind = SYNC_KIND_SYMLINK, e.target = "a\0b", e.target_len = 3));
	/* duplicate device ids, adjacent or not */
	BAD_BOTH(dev(e.vv[1].device, 1));
	BAD_BOTH((e.nvv = 3, dev(e.vv[2].device, 1)));
#undef BAD_BOTH

	/* a target on a file cannot be encoded (and has no place on the wire) */
	entry_file(&e, "f");
	e.target = "t";
	e.target_len = 1;
	CHECK_INT_EQ(index_encode(&e, 1, b, sizeof(b)), -EINVAL);
	/* a directory without size and hash is fine; so is a counter of 0 */
	entry_file(&e, "d");
	e.kind = SYNC_KIND_DIR;
	e.size = 0;
	memset(e.hash, 0, 32);
	e.vv[0].counter = 0;
	int n = index_encode(&e, 1, b, sizeof(b));
	REQUIRE(n > 0);
	CHECK(index_matches(b, (size_t)n, &e, 1));
}

TEST(index_iter_rejects_garbage)
{
	struct sync_index_update u = {.count = 2, .entries = (const uint8_t *)"\0\1a", .len = 3};
	struct msg_index_iter it;
	struct sync_entry e;

	msg_index_iter_init(&it, &u);
	CHECK_INT_EQ(msg_index_next(&it, &e), -EBADMSG);
	CHECK_INT_EQ(msg_index_next(&it, &e), 0);
}

static int roundtrip(const struct sync_msg *m, struct sync_msg *out, uint8_t *buf, size_t cap)
{
	int n = msg_encode(m, buf, cap);

	if (n < 0)
		return n;
	if (!strict(buf, (size_t)n))
		return -1001;
	if (decode(buf, (size_t)n, out) != 0 || out->type != m->type)
		return -1002;
	return n;
}

/* Every outlen below the length gives -EMSGSIZE and leaves buf[outlen..] alone. */
static int emsgsize_all(const struct sync_msg *m, size_t len)
{
	static uint8_t b[SYNC_MSG_MAX + 64];
	int bad = 0;

	for (size_t i = 0; i < len; i++) {
		if (len > 20000 && i > 100 && i < len - 100 && i % 1009 != 0)
			continue;
		memset(b, 0xee, i + 64 < sizeof(b) ? i + 64 : sizeof(b));
		if (msg_encode(m, b, i) != -EMSGSIZE)
			bad++;
		for (size_t j = i; j < i + 64 && j < sizeof(b); j++)
			if (b[j] != 0xee)
				bad++;
	}
	return bad == 0;
}

TEST(small_messages)
{
	struct sync_msg m, got;
	uint8_t b[64];
	int n;

	memset(&m, 0, sizeof(m));
	m.type = SYNC_MSG_INDEX_DONE;
	m.index_done.seq = UINT64_MAX;
	n = roundtrip(&m, &got, b, sizeof(b));
	CHECK_INT_EQ(n, 9);
	CHECK(got.index_done.seq == UINT64_MAX);
	CHECK(memcmp(b, "\x03\xff\xff\xff\xff\xff\xff\xff\xff", 9) == 0);
	CHECK(emsgsize_all(&m, 9));
	m.index_done.seq = 0;
	CHECK_INT_EQ(roundtrip(&m, &got, b, sizeof(b)), 9);
	CHECK(got.index_done.seq == 0);

	memset(&m, 0, sizeof(m));
	m.type = SYNC_MSG_CANCEL;
	m.cancel.req_id = 0xdeadbeef;
	n = roundtrip(&m, &got, b, sizeof(b));
	CHECK_INT_EQ(n, 5);
	CHECK(got.cancel.req_id == 0xdeadbeef);
	CHECK(memcmp(b, "\x09\xde\xad\xbe\xef", 5) == 0);
	CHECK(emsgsize_all(&m, 5));

	/* INDEX_UPDATE goes through the writer */
	m.type = SYNC_MSG_INDEX_UPDATE;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.type = 77;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
}

TEST(block_request)
{
	static char path[SYNC_PATH_MAX];
	struct sync_msg m, got;
	uint8_t b[8192];
	int n;

	memset(&m, 0, sizeof(m));
	m.type = SYNC_MSG_BLOCK_REQUEST;
	m.block_request.req_id = 1;
	m.block_request.path = "a/b/c.bin";
	m.block_request.path_len = 9;
	memset(m.block_request.hash, 0x11, 32);
	m.block_request.index = 3;
	m.block_request.offset = 3 * (uint64_t)SYNC_BLOCK_MAX;
	m.block_request.len = SYNC_BLOCK_MAX;
	n = roundtrip(&m, &got, b, sizeof(b));
	CHECK_INT_EQ(n, 1 + 4 + 2 + 9 + 32 + 4 + 8 + 4);
	CHECK(got.block_request.req_id == 1 && got.block_request.index == 3);
	CHECK(got.block_request.offset == 3 * (uint64_t)SYNC_BLOCK_MAX);
	CHECK(got.block_request.len == SYNC_BLOCK_MAX);
	CHECK(got.block_request.path_len == 9 &&
	      memcmp(got.block_request.path, "a/b/c.bin", 9) == 0);
	CHECK(got.block_request.path == (const char *)b + 7);
	CHECK(memcmp(got.block_request.hash, m.block_request.hash, 32) == 0);
	CHECK(emsgsize_all(&m, (size_t)n));

	/* edges: the longest path, the last offset, UINT32_MAX ids */
	memset(path, 'x', sizeof(path));
	for (size_t i = 200; i < sizeof(path); i += 201)
		path[i] = '/';
	m.block_request.path = path;
	m.block_request.path_len = sizeof(path);
	m.block_request.req_id = UINT32_MAX;
	m.block_request.index = UINT32_MAX;
	m.block_request.len = 1;
	m.block_request.offset = INT64_MAX - 1;
	n = roundtrip(&m, &got, b, sizeof(b));
	CHECK(n > 0);
	CHECK(got.block_request.offset == INT64_MAX - 1 && got.block_request.len == 1);

	/* refused: past the largest offset, length 0, length over the block size, bad path */
	m.block_request.offset = INT64_MAX;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.block_request.offset = UINT64_MAX;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.block_request.offset = 0;
	m.block_request.len = 0;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.block_request.len = SYNC_BLOCK_MAX + 1;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.block_request.len = 10;
	m.block_request.path = "../etc/passwd";
	m.block_request.path_len = 13;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);

	/* and on the wire */
	m.block_request.path = "abcdefghijklm";
	n = msg_encode(&m, b, sizeof(b));
	REQUIRE(n > 0);
	memcpy(b + 7, "../etc/passwd", 13);
	CHECK_INT_EQ(decode(b, (size_t)n, &got), -EBADMSG);
	memcpy(b + 7, "/etc/passwd/x", 13);
	CHECK_INT_EQ(decode(b, (size_t)n, &got), -EBADMSG);
	memcpy(b + 7, "abcdefghijkl\0", 13);
	CHECK_INT_EQ(decode(b, (size_t)n, &got), -EBADMSG);
	memcpy(b + 7, "abcdefghijklm", 13);
	CHECK_INT_EQ(decode(b, (size_t)n, &got), 0);
	b[n - 1] = 0;
	b[n - 2] = 0; /* length 0 */
	CHECK_INT_EQ(decode(b, (size_t)n, &got), -EBADMSG);
	b[n - 4] = 0x01;
	b[n - 3] = 0x10; /* length 0x01100000 */
	CHECK_INT_EQ(decode(b, (size_t)n, &got), -EBADMSG);
	/* a path length over the cap is refused before the path is read */
	b[5] = 0x10;
	b[6] = 0x00;
	CHECK_INT_EQ(decode(b, 7, &got), -EBADMSG);
	/* an empty path */
	static const uint8_t empty[] = {4, 0, 0, 0, 1, 0, 0};
	memcpy(b, empty, sizeof(empty));
	memset(b + 7, 0, 32 + 4 + 8);
	memcpy(b + 7 + 44, "\0\0\0\1", 4);
	CHECK_INT_EQ(decode(b, 7 + 48, &got), -EBADMSG);
}

TEST(block_data)
{
	struct sync_msg m, got;
	static const size_t hdr = SYNC_BLOCK_DATA_HEADER_LEN;
	int n;

	for (size_t i = 0; i < SYNC_BLOCK_MAX; i++)
		big2[i] = (uint8_t)(i * 7 + (i >> 13));

	/* a full block, copied by msg_encode */
	memset(&m, 0, sizeof(m));
	m.type = SYNC_MSG_BLOCK_DATA;
	m.block_data.req_id = 99;
	m.block_data.offset = INT64_MAX - SYNC_BLOCK_MAX;
	m.block_data.data = big2;
	m.block_data.len = SYNC_BLOCK_MAX;
	n = roundtrip(&m, &got, big, sizeof(big));
	CHECK_INT_EQ(n, hdr + SYNC_BLOCK_MAX);
	CHECK(n <= (int)FRAME_MAX_PAYLOAD);
	CHECK(got.block_data.req_id == 99 && got.block_data.offset == INT64_MAX - SYNC_BLOCK_MAX);
	CHECK(got.block_data.len == SYNC_BLOCK_MAX && got.block_data.data == big + hdr);
	CHECK(memcmp(got.block_data.data, big2, SYNC_BLOCK_MAX) == 0);
	CHECK(emsgsize_all(&m, (size_t)n));

	/* header only, data read in place: the same bytes */
	memset(big2 + SYNC_BLOCK_MAX, 0, hdr);
	memmove(big2 + hdr, big2, SYNC_BLOCK_MAX);
	CHECK_INT_EQ(msg_block_data_header(big2, hdr + SYNC_BLOCK_MAX, 99,
					   INT64_MAX - SYNC_BLOCK_MAX, SYNC_BLOCK_MAX),
		     hdr);
	CHECK(memcmp(big, big2, hdr + SYNC_BLOCK_MAX) == 0);
	/* msg_encode with the data already in place does not copy, and agrees */
	m.block_data.data = big2 + hdr;
	CHECK_INT_EQ(msg_encode(&m, big2, hdr + SYNC_BLOCK_MAX), n);
	CHECK(memcmp(big, big2, hdr + SYNC_BLOCK_MAX) == 0);
	/* data overlapping the header's place */
	memcpy(big2, big + hdr, 100);
	m.block_data.data = big2;
	m.block_data.len = 100;
	m.block_data.offset = 0;
	CHECK_INT_EQ(msg_encode(&m, big2, 1000), hdr + 100);
	CHECK(memcmp(big2 + hdr, big + hdr, 100) == 0);

	/* header refusals */
	CHECK_INT_EQ(msg_block_data_header(big2, hdr + 10, 1, 0, 11), -EMSGSIZE);
	CHECK_INT_EQ(msg_block_data_header(big2, hdr - 1, 1, 0, 0), -EMSGSIZE);
	CHECK_INT_EQ(msg_block_data_header(big2, sizeof(big2), 1, 0, SYNC_BLOCK_MAX + 1), -EINVAL);
	CHECK_INT_EQ(msg_block_data_header(big2, sizeof(big2), 1, INT64_MAX, 1), -EINVAL);
	CHECK_INT_EQ(msg_block_data_header(big2, hdr, 1, INT64_MAX, 0), hdr);

	/* empty data */
	m.block_data.data = NULL;
	m.block_data.len = 0;
	m.block_data.offset = 5;
	uint8_t b[64];
	CHECK_INT_EQ(roundtrip(&m, &got, b, sizeof(b)), hdr);
	CHECK(got.block_data.len == 0 && got.block_data.offset == 5);

	/* over the cap */
	m.block_data.data = big2;
	m.block_data.len = SYNC_BLOCK_MAX + 1;
	CHECK_INT_EQ(msg_encode(&m, big, sizeof(big)), -EINVAL);
	/* on the wire: refused on the length field, before the data */
	b[0] = SYNC_MSG_BLOCK_DATA;
	memset(b + 1, 0, 12);
	b[13] = 0;
	b[14] = 0x10;
	b[15] = 0;
	b[16] = 1;
	struct err err;
	CHECK_INT_EQ(msg_decode(b, hdr, &got, &err), -EBADMSG);
	CHECK(strstr(err.msg, "more than") != NULL);
	/* a length that says less or more than what follows */
	b[14] = 0;
	b[16] = 2;
	CHECK_INT_EQ(decode(b, hdr + 1, &got), -EBADMSG);
	CHECK_INT_EQ(decode(b, hdr + 2, &got), 0);
	CHECK_INT_EQ(decode(b, hdr + 3, &got), -EBADMSG);
	/* offset + length past the largest offset */
	memset(b + 5, 0xff, 8);
	b[5] = 0x7f;
	CHECK_INT_EQ(decode(b, hdr + 2, &got), -EBADMSG);
}

TEST(block_error)
{
	static char text[SYNC_ERROR_TEXT_MAX + 1];
	struct sync_msg m, got;
	uint8_t b[512];
	int n;

	memset(&m, 0, sizeof(m));
	m.type = SYNC_MSG_BLOCK_ERROR;
	m.block_error.req_id = 5;
	for (uint16_t c = SYNC_BLOCK_ERR_NOT_FOUND; c <= SYNC_BLOCK_ERR_REFUSED; c++) {
		m.block_error.code = c;
		m.block_error.text = "file changed";
		m.block_error.text_len = 12;
		n = roundtrip(&m, &got, b, sizeof(b));
		CHECK_INT_EQ(n, 1 + 4 + 2 + 1 + 12);
		CHECK(got.block_error.code == c && got.block_error.req_id == 5);
		CHECK(got.block_error.text_len == 12 &&
		      memcmp(got.block_error.text, "file changed", 12) == 0);
	}
	CHECK(emsgsize_all(&m, (size_t)n));
	m.block_error.text = NULL;
	m.block_error.text_len = 0;
	CHECK_INT_EQ(roundtrip(&m, &got, b, sizeof(b)), 8);
	memset(text, 'e', sizeof(text));
	m.block_error.text = text;
	m.block_error.text_len = SYNC_ERROR_TEXT_MAX;
	CHECK_INT_EQ(roundtrip(&m, &got, b, sizeof(b)), 8 + SYNC_ERROR_TEXT_MAX);

	m.block_error.text_len = SYNC_ERROR_TEXT_MAX + 1;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.block_error.text = "a\0b";
	m.block_error.text_len = 3;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.block_error.text_len = 1;
	m.block_error.code = 0;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.block_error.code = 5;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);

	/* the wire: unknown codes, a text over the cap, a NUL */
	static const uint8_t ok[] = {6, 0, 0, 0, 1, 0, 2, 2, 'h', 'i'};
	memcpy(b, ok, sizeof(ok));
	CHECK_INT_EQ(decode(b, sizeof(ok), &got), 0);
	b[6] = 0;
	CHECK_INT_EQ(decode(b, sizeof(ok), &got), -EBADMSG);
	b[6] = 5;
	CHECK_INT_EQ(decode(b, sizeof(ok), &got), -EBADMSG);
	b[5] = 1;
	b[6] = 1;
	CHECK_INT_EQ(decode(b, sizeof(ok), &got), -EBADMSG);
	b[5] = 0;
	b[9] = 0;
	CHECK_INT_EQ(decode(b, sizeof(ok), &got), -EBADMSG);
	b[7] = SYNC_ERROR_TEXT_MAX + 1;
	memset(b + 8, 'x', 255);
	CHECK_INT_EQ(decode(b, 8 + SYNC_ERROR_TEXT_MAX + 1, &got), -EBADMSG);
}

TEST(manifest_request)
{
	struct sync_msg m, got;
	uint8_t b[256];
	int n;

	memset(&m, 0, sizeof(m));
	m.type = SYNC_MSG_MANIFEST_REQUEST;
	m.manifest_request.req_id = 77;
	m.manifest_request.path = "big.iso";
	m.manifest_request.path_len = 7;
	memset(m.manifest_request.hash, 0x5c, 32);
	n = roundtrip(&m, &got, b, sizeof(b));
	CHECK_INT_EQ(n, 1 + 4 + 2 + 7 + 32);
	CHECK(got.manifest_request.req_id == 77 && got.manifest_request.path_len == 7);
	CHECK(memcmp(got.manifest_request.path, "big.iso", 7) == 0);
	CHECK(memcmp(got.manifest_request.hash, m.manifest_request.hash, 32) == 0);
	CHECK(emsgsize_all(&m, (size_t)n));

	memcpy(b + 7, "/ig.iso", 7);
	CHECK_INT_EQ(decode(b, (size_t)n, &got), -EBADMSG);
	memcpy(b + 7, "..", 2);
	b[5] = 0;
	b[6] = 2;
	memmove(b + 9, b + 14, 32);
	CHECK_INT_EQ(decode(b, 9 + 32, &got), -EBADMSG);
	m.manifest_request.path_len = 0;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
}

TEST(manifest)
{
	struct sync_msg m, got;
	uint8_t b[4096];
	const uint32_t bs = 128 * 1024;
	int n;

	for (size_t i = 0; i < (size_t)SYNC_MANIFEST_HASHES_MAX * 32; i++)
		big2[i] = (uint8_t)(i * 13 + (i >> 8));

	/* an empty file: one chunk, no hashes */
	memset(&m, 0, sizeof(m));
	m.type = SYNC_MSG_MANIFEST;
	m.manifest.req_id = 3;
	memset(m.manifest.hash, 0x0e, 32);
	m.manifest.block_size = bs;
	n = roundtrip(&m, &got, b, sizeof(b));
	CHECK_INT_EQ(n, 61);
	CHECK(got.manifest.block_count == 0 && got.manifest.n == 0);
	CHECK(emsgsize_all(&m, (size_t)n));

	/* a file of 5 blocks and a bit, in two chunks */
	m.manifest.size = 5 * (uint64_t)bs + 1;
	m.manifest.block_count = 6;
	m.manifest.first = 0;
	m.manifest.n = 4;
	m.manifest.hashes = big2;
	n = roundtrip(&m, &got, b, sizeof(b));
	CHECK_INT_EQ(n, 61 + 4 * 32);
	CHECK(got.manifest.first == 0 && got.manifest.n == 4 && got.manifest.block_count == 6);
	CHECK(got.manifest.size == 5 * (uint64_t)bs + 1 && got.manifest.block_size == bs);
	CHECK(memcmp(got.manifest.hashes, big2, 4 * 32) == 0 && got.manifest.hashes == b + 61);
	CHECK(memcmp(got.manifest.hash, m.manifest.hash, 32) == 0);
	m.manifest.first = 4;
	m.manifest.n = 2;
	CHECK_INT_EQ(roundtrip(&m, &got, b, sizeof(b)), 61 + 2 * 32);

	/* refused: past the block count, an empty chunk of a non-empty file, a wrong count,
	 * block sizes out of range */
	m.manifest.n = 3;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.manifest.n = 0;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.manifest.n = 2;
	m.manifest.block_count = 5;
	m.manifest.first = 3;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.manifest.block_count = 7;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.manifest.block_count = 6;
	m.manifest.block_size = SYNC_MANIFEST_BLOCK_MIN - 1;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.manifest.block_size = SYNC_BLOCK_MAX + 1;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.manifest.block_size = 0;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);
	m.manifest.block_size = bs;
	m.manifest.first = UINT32_MAX;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), -EINVAL);

	/* the largest chunk, and the largest file (1 TiB) in the smallest blocks */
	m.manifest.block_size = SYNC_MANIFEST_BLOCK_MIN;
	m.manifest.block_count = (uint32_t)(SYNC_FILE_MAX / SYNC_MANIFEST_BLOCK_MIN);
	m.manifest.size = SYNC_FILE_MAX;
	m.manifest.first = m.manifest.block_count - SYNC_MANIFEST_HASHES_MAX;
	m.manifest.n = SYNC_MANIFEST_HASHES_MAX;
	n = roundtrip(&m, &got, big, sizeof(big));
	CHECK_INT_EQ(n, 61 + SYNC_MANIFEST_HASHES_MAX * 32);
	CHECK(n <= (int)FRAME_MAX_PAYLOAD);
	CHECK(memcmp(got.manifest.hashes, big2, (size_t)SYNC_MANIFEST_HASHES_MAX * 32) == 0);
	CHECK(emsgsize_all(&m, (size_t)n));
	/* one byte more: the count is wrong, and with the right count the file is
	 * over 1 TiB (issue #10), refused both ways */
	m.manifest.size += 1;
	CHECK_INT_EQ(msg_encode(&m, big, sizeof(big)), -EINVAL);
	m.manifest.block_count += 1;
	CHECK_INT_EQ(msg_encode(&m, big, sizeof(big)), -EINVAL);
	m.manifest.size = SYNC_FILE_MAX;
	m.manifest.block_count -= 1;
	n = msg_encode(&m, big, sizeof(big));
	REQUIRE(n > 0);
	for (int i = 0; i < 8; i++) /* size at 37, count at 49, big-endian */
		big[37 + i] = (uint8_t)((SYNC_FILE_MAX + 1) >> (8 * (7 - i)));
	for (int i = 0; i < 4; i++)
		big[49 + i] = (uint8_t)((m.manifest.block_count + 1u) >> (8 * (3 - i)));
	CHECK_INT_EQ(decode(big, (size_t)n, &got), -EBADMSG);
	/* 16 TiB + 1 in 1 MiB blocks: the count (2^24 + 1) fits, the size does not pass */
	m.manifest.block_size = SYNC_BLOCK_MAX;
	m.manifest.size = ((uint64_t)1 << 44) + 1;
	m.manifest.block_count = (1u << 24) + 1;
	m.manifest.first = 0;
	m.manifest.n = 1;
	CHECK_INT_EQ(msg_encode(&m, big, sizeof(big)), -EINVAL);
	m.manifest.size = (uint64_t)INT64_MAX + 1;
	CHECK_INT_EQ(msg_encode(&m, big, sizeof(big)), -EINVAL);

	/* on the wire: n over the cap is refused before the hashes are read */
	m.manifest.size = 5 * (uint64_t)bs + 1;
	m.manifest.block_size = bs;
	m.manifest.block_count = 6;
	m.manifest.first = 0;
	m.manifest.n = 6;
	n = msg_encode(&m, b, sizeof(b));
	REQUIRE(n > 0);
	b[57] = 0;
	b[58] = 0x01;
	b[59] = 0;
	b[60] = 1; /* 65537 */
	struct err err;
	CHECK_INT_EQ(msg_decode(b, 61, &got, &err), -EBADMSG);
	CHECK(strstr(err.msg, "more than") != NULL);
	b[58] = 0;
	b[60] = 7; /* 7 hashes of 6 blocks */
	CHECK_INT_EQ(decode(b, 61 + 7 * 32, &got), -EBADMSG);
}

TEST(start)
{
	struct sync_msg m = {.type = SYNC_MSG_START}, d;
	uint8_t b[64];
	static const uint8_t want[25] = {10, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 1, 0x2c,
					 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7};

	for (int i = 0; i < 8; i++) {
		m.start.device[i] = (uint8_t)(i + 1);
		m.start.expect[i] = (uint8_t)(0xa0 + i);
	}
	m.start.since = 300;
	CHECK_INT_EQ(msg_encode(&m, b, sizeof(b)), 25);
	CHECK(memcmp(b, want, 25) == 0);
	CHECK_INT_EQ(msg_encode(&m, b, 24), -EMSGSIZE);
	CHECK_INT_EQ(msg_decode(b, 25, &d, NULL), 0);
	CHECK(d.type == SYNC_MSG_START && d.start.since == 300);
	CHECK(memcmp(d.start.device, m.start.device, 8) == 0);
	CHECK(memcmp(d.start.expect, m.start.expect, 8) == 0);
	CHECK_INT_EQ(msg_decode(b, 24, &d, NULL), -EBADMSG);
	CHECK_INT_EQ(msg_decode(b, 26, &d, NULL), -EBADMSG);
	CHECK_STR_EQ(msg_type_name(SYNC_MSG_START), "START");
}

TEST(types)
{
	struct sync_msg m;
	uint8_t b[16] = {0};
	struct err err;

	m.type = SYNC_MSG_CANCEL;
	m.cancel.req_id = 17;
	for (unsigned t = 11; t < 256; t++) {
		b[0] = (uint8_t)t;
		CHECK_INT_EQ(msg_decode(b, 5, &m, &err), -EPROTONOSUPPORT);
		CHECK_INT_EQ(msg_decode(b, 1, &m, &err), -EPROTONOSUPPORT);
	}
	CHECK(strstr(err.msg, "255") != NULL);
	CHECK(m.type == SYNC_MSG_CANCEL && m.cancel.req_id == 17); /* untouched */
	b[0] = 0;
	CHECK_INT_EQ(msg_decode(b, 5, &m, &err), -EBADMSG);
	b[0] = 1; /* HELLO is the connection's business */
	CHECK_INT_EQ(msg_decode(b, 5, &m, &err), -EBADMSG);
	CHECK_INT_EQ(msg_decode(b, 0, &m, &err), -EBADMSG);
	CHECK_INT_EQ(msg_decode(b, 0, &m, NULL), -EBADMSG);
	/* longer than any frame */
	b[0] = SYNC_MSG_CANCEL;
	CHECK_INT_EQ(msg_decode(b, SYNC_MSG_MAX + 1, &m, &err), -EBADMSG);
	CHECK_STR_EQ(msg_type_name(SYNC_MSG_MANIFEST), "MANIFEST");
	CHECK_STR_EQ(msg_type_name(200), "unknown");
	/* the type bytes are the documented ones */
	CHECK(SYNC_MSG_INDEX_UPDATE == 2 && SYNC_MSG_CANCEL == 9 && SYNC_MSG_BLOCK_DATA == 5);
}

int main(void)
{
	RUN(index_roundtrip);
	RUN(index_max_lengths);
	RUN(index_max_count);
	RUN(index_count_caps);
	RUN(index_bad_paths);
	RUN(index_bad_fields);
	RUN(index_iter_rejects_garbage);
	RUN(small_messages);
	RUN(block_request);
	RUN(block_data);
	RUN(block_error);
	RUN(manifest_request);
	RUN(manifest);
	RUN(start);
	RUN(types);
	return tap_done();
}
