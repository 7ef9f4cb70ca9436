/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzzes the serialized manifest decoder (src/sync/blocks.c). Whatever
 * decodes is complete, consistent with its size, re-encodes to exactly
 * the input, and can be checked and verified against without reading out
 * of bounds; whatever fails says so with -EBADMSG or -EFBIG.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sync/blocks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t zero[BLOCKS_HASH_LEN];
	struct blocks_manifest *m = NULL;
	uint8_t *out;
	int r;

	r = blocks_manifest_decode(data, size, &m);
	if (r < 0) {
		check(r == -EBADMSG || r == -EFBIG);
		check(m == NULL);
		return 0;
	}
	check(m != NULL && m->count == blocks_count(m->size) && m->filled == m->count);
	check(m->size <= BLOCKS_FILE_MAX && m->count <= BLOCKS_COUNT_MAX);
	check(blocks_manifest_encoded_len(m) == size);

	out = malloc(size);
	check(out != NULL);
	r = blocks_manifest_encode(m, out, size);
	check(r >= 0 && (size_t)r == size && memcmp(out, data, size) == 0);
	check(size == 0 || blocks_manifest_encode(m, out, size - 1) == -EMSGSIZE);
	free(out);

	r = blocks_manifest_check(m, zero);
	check(r == 0 || r == -EBADMSG);
	/* the input itself as block data: a hash mismatch or a wrong length */
	if (m->count > 0) {
		uint32_t last = m->count - 1;
		r = blocks_manifest_verify(
			m, last, data,
			size < blocks_len(m->size, last) ? size : blocks_len(m->size, last));
		check(r == 0 || r == -EBADMSG || r == -EMSGSIZE);
	}
	check(blocks_manifest_verify(m, m->count, data, 0) == -ERANGE);
	blocks_manifest_free(m);
	return 0;
}
