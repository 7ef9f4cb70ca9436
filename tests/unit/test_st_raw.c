/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The selftest's hand-built messages (src/selftest/st_raw.c): for valid
 * input they are byte for byte what the real encoder writes, and each
 * hostile path the sync-hostile-paths scenario sends is refused by the
 * decoder for its path, not for a mistake in the layout around it.
 */
#include <errno.h>
#include <stdint.h>

#include "selftest/st_raw.h"
#include "sync/msg.h"
#include "tap.h"

static uint8_t a[SYNC_INDEX_MSG_MAX], b[SYNC_INDEX_MSG_MAX];

static void entry(struct sync_entry *e, uint8_t kind, const char *path, size_t len)
{
	memset(e, 0, sizeof(*e));
	e->path = path;
	e->path_len = len;
	e->kind = kind;
	e->mode = 0644;
	e->size = kind == SYNC_KIND_FILE ? 5 : 0;
	e->mtime_ns = -12345;
	if (kind == SYNC_KIND_FILE)
		memset(e->hash, 0xab, sizeof(e->hash));
	if (kind == SYNC_KIND_SYMLINK) {
		e->target = "/";
		e->target_len = 1;
	}
	e->nvv = 2;
	memset(e->vv[0].device, 1, SYNC_DEVICE_LEN);
	e->vv[0].counter = 7;
	memset(e->vv[1].device, 2, SYNC_DEVICE_LEN);
	e->vv[1].counter = 1ULL << 40;
	e->seq = 7;
}

TEST(index_same_as_encoder)
{
	struct msg_index_writer w;
	struct sync_entry e[3];
	struct sync_msg m;
	struct err err;
	size_t n;
	int len;

	entry(&e[0], SYNC_KIND_SYMLINK, "evil", 4);
	entry(&e[1], SYNC_KIND_FILE, "evil/tmp/x", 10);
	entry(&e[2], SYNC_KIND_DIR, "d", 1);
	REQUIRE(msg_index_writer_init(&w, a, sizeof(a)) == 0);
	for (int i = 0; i < 3; i++)
		REQUIRE(msg_index_add(&w, &e[i]) == 0);
	len = msg_index_finish(&w);
	n = st_raw_index(b, sizeof(b), e, 3);
	CHECK_INT_EQ(n, len);
	CHECK(memcmp(a, b, n) == 0);
	CHECK_INT_EQ(msg_decode(b, n, &m, &err), 0);
	/* too small a buffer writes nothing useful and says so */
	CHECK_INT_EQ(st_raw_index(b, n - 1, e, 3), 0);
	CHECK_INT_EQ(st_raw_entry(b, 10, &e[0]), 0);
}

/* Each path is refused, with the reason the scenario looks for in the log. */
TEST(index_hostile_paths)
{
	static char nul[] = "nul\0name", name256[256], long4220[4220];
	static const struct {
		const char *path;
		size_t len;
		const char *reason;
	} cases[] = {
		{"../x", 4, "the path has a '..' component"},
		{"/etc/passwd", 11, "the path is absolute"},
		{"a/../../b", 9, "the path has a '..' component"},
		{nul, sizeof(nul) - 1, "the path contains a NUL byte"},
		{name256, sizeof(name256), "a name in the path is 256 bytes long, more than 255"},
		{long4220, sizeof(long4220), "path of 4220 bytes, more than 4095"},
	};
	struct sync_entry e;
	struct sync_msg m;
	struct err err;

	memset(name256, 'n', sizeof(name256));
	memset(long4220, 'p', sizeof(long4220));
	for (size_t i = 200; i < sizeof(long4220); i += 201)
		long4220[i] = '/';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		entry(&e, SYNC_KIND_FILE, cases[i].path, cases[i].len);
		size_t n = st_raw_index(b, sizeof(b), &e, 1);
		REQUIRE(n > 0);
		err.msg[0] = '\0';
		CHECK_INT_EQ(msg_decode(b, n, &m, &err), -EBADMSG);
		if (!strstr(err.msg, cases[i].reason))
			printf("#   case %zu: the decoder said: %s\n", i, err.msg);
		CHECK(strstr(err.msg, cases[i].reason) != NULL);
		/* the real encoder refuses to write it at all */
		struct msg_index_writer w;
		REQUIRE(msg_index_writer_init(&w, a, sizeof(a)) == 0);
		CHECK_INT_EQ(msg_index_add(&w, &e), -EINVAL);
	}
}

TEST(requests)
{
	static const uint8_t types[] = {SYNC_MSG_BLOCK_REQUEST, SYNC_MSG_MANIFEST_REQUEST};
	uint8_t hash[SYNC_HASH_LEN];
	struct sync_msg m;
	struct err err;
	size_t n;
	int len;

	memset(hash, 0x5c, sizeof(hash));
	for (size_t i = 0; i < sizeof(types); i++) {
		memset(&m, 0, sizeof(m));
		m.type = types[i];
		if (types[i] == SYNC_MSG_BLOCK_REQUEST) {
			m.block_request = (struct sync_block_request){
				.req_id = 0x01020304, .path = "link/passwd", .path_len = 11,
				.index = 3, .offset = 3 << 20, .len = 1000};
			memcpy(m.block_request.hash, hash, sizeof(hash));
		} else {
			m.manifest_request = (struct sync_manifest_request){
				.req_id = 0x01020304, .path = "link/passwd", .path_len = 11};
			memcpy(m.manifest_request.hash, hash, sizeof(hash));
		}
		len = msg_encode(&m, a, sizeof(a));
		n = st_raw_request(b, sizeof(b), types[i], 0x01020304, "link/passwd", 11, hash, 3,
				   3 << 20, 1000);
		CHECK_INT_EQ(n, len);
		CHECK(n > 0 && memcmp(a, b, n) == 0);

		n = st_raw_request(b, sizeof(b), types[i], 9, "../../etc/passwd", 16, hash, 0, 0,
				   1000);
		CHECK_INT_EQ(msg_decode(b, n, &m, &err), -EBADMSG);
		CHECK(strstr(err.msg, "the path has a '..' component") != NULL);
	}
	CHECK_INT_EQ(st_raw_request(b, sizeof(b), SYNC_MSG_CANCEL, 1, "a", 1, hash, 0, 0, 1), 0);
	CHECK_INT_EQ(st_raw_request(b, 20, SYNC_MSG_MANIFEST_REQUEST, 1, "a", 1, hash, 0, 0, 1), 0);
}

int main(void)
{
	RUN(index_same_as_encoder);
	RUN(index_hostile_paths);
	RUN(requests);
	return tap_done();
}
