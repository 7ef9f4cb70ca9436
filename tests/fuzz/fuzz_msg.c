/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzzes the sync message decoder (src/sync/msg.c). The input is one DATA
 * payload. Whatever decodes must re-encode to exactly the input bytes
 * (the encoding is canonical), and the re-encoding must decode again; an
 * INDEX_UPDATE is walked entry by entry with the iterator and rebuilt with
 * the writer. Every failure must say why in err.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sync/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[SYNC_MSG_MAX];

static void check(int ok)
{
	if (!ok)
		abort();
}

static void index_reencode(const uint8_t *data, size_t size, const struct sync_index_update *u)
{
	struct msg_index_writer w;
	struct msg_index_iter it;
	struct sync_entry e;
	unsigned n = 0;
	int r;

	check(msg_index_writer_init(&w, out, sizeof(out)) == 0);
	msg_index_iter_init(&it, u);
	while ((r = msg_index_next(&it, &e)) == 1) {
		check(e.path >= (const char *)data &&
		      e.path + e.path_len <= (const char *)data + size);
		check(msg_index_add(&w, &e) == 0);
		n++;
	}
	check(r == 0 && n == u->count);
	r = msg_index_finish(&w);
	check(r > 0 && (size_t)r == size && memcmp(out, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err;
	struct sync_msg m, again;
	int r;

	memset(err.msg, 'X', sizeof(err.msg));
	r = msg_decode(data, size, &m, &err);
	if (r < 0) {
		check(r == -EBADMSG || r == -EPROTONOSUPPORT);
		check(memchr(err.msg, '\0', sizeof(err.msg)) != NULL && err.msg[0] != '\0');
		check(r != -EPROTONOSUPPORT || (size > 0 && data[0] >= 10));
		return 0;
	}
	check(size > 0 && m.type == data[0]);

	if (m.type == SYNC_MSG_INDEX_UPDATE) {
		index_reencode(data, size, &m.index_update);
		return 0;
	}
	r = msg_encode(&m, out, sizeof(out));
	check(r > 0 && (size_t)r == size && memcmp(out, data, size) == 0);
	check(msg_decode(out, (size_t)r, &again, NULL) == 0 && again.type == m.type);
	/* one byte short never fits */
	check(msg_encode(&m, out, size - 1) == -EMSGSIZE);

	if (m.type == SYNC_MSG_BLOCK_DATA) {
		r = msg_block_data_header(out, sizeof(out), m.block_data.req_id,
					  m.block_data.offset, m.block_data.len);
		check(r == SYNC_BLOCK_DATA_HEADER_LEN && memcmp(out, data, (size_t)r) == 0);
	}
	return 0;
}
