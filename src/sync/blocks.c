/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "sync/blocks.h"

/* BLAKE2b personalization strings: 16 bytes, zero padded. */
static const uint8_t block_personal[crypto_generichash_blake2b_PERSONALBYTES] = "tandem.block.v1";
static const uint8_t file_personal[crypto_generichash_blake2b_PERSONALBYTES] = "tandem.file.v1";

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void state_init(crypto_generichash_blake2b_state *st, const uint8_t *personal)
{
	/* Cannot fail with a valid output length and no key. */
	(void)crypto_generichash_blake2b_init_salt_personal(st, NULL, 0, BLOCKS_HASH_LEN, NULL,
							    personal);
}

uint32_t blocks_count(uint64_t size)
{
	return (uint32_t)(size / BLOCKS_SIZE + (size % BLOCKS_SIZE != 0));
}

uint32_t blocks_len(uint64_t size, uint32_t index)
{
	uint64_t off = (uint64_t)index * BLOCKS_SIZE;

	if (off >= size)
		return 0;
	return size - off < BLOCKS_SIZE ? (uint32_t)(size - off) : BLOCKS_SIZE;
}

void blocks_hash_block(const uint8_t *data, size_t len, uint8_t ret_hash[static BLOCKS_HASH_LEN])
{
	crypto_generichash_blake2b_state st;

	state_init(&st, block_personal);
	(void)crypto_generichash_blake2b_update(&st, data, len);
	(void)crypto_generichash_blake2b_final(&st, ret_hash, BLOCKS_HASH_LEN);
}

/* The file hash's trailer: le64 size, le32 block size. */
static void file_trailer(crypto_generichash_blake2b_state *st, uint64_t size)
{
	uint8_t t[12];

	put_le64(t, size);
	put_le32(t + 8, BLOCKS_SIZE);
	(void)crypto_generichash_blake2b_update(st, t, sizeof(t));
}

void blocks_hasher_init(struct blocks_hasher *h, blocks_block_fn fn, void *userdata)
{
	memset(h, 0, sizeof(*h));
	state_init(&h->block_state, block_personal);
	state_init(&h->file_state, file_personal);
	h->fn = fn;
	h->userdata = userdata;
}

/* Ends the current block: hash it into the file hash, report it, start the next. */
static int hasher_close_block(struct blocks_hasher *h)
{
	uint8_t bh[BLOCKS_HASH_LEN];
	int r = 0;

	(void)crypto_generichash_blake2b_final(&h->block_state, bh, sizeof(bh));
	(void)crypto_generichash_blake2b_update(&h->file_state, bh, sizeof(bh));
	if (h->fn)
		r = h->fn(h->userdata, h->index, bh);
	h->index++;
	h->fill = 0;
	state_init(&h->block_state, block_personal);
	return r < 0 ? r : 0;
}

int blocks_hasher_update(struct blocks_hasher *h, const void *data, size_t len)
{
	const uint8_t *p = data;
	int r;

	if (len > BLOCKS_FILE_MAX - h->size)
		return -EFBIG;
	while (len > 0) {
		size_t n = BLOCKS_SIZE - h->fill;

		/* A block is closed only when more data follows or at the end. */
		if (n == 0) {
			r = hasher_close_block(h);
			if (r < 0)
				return r;
			continue;
		}
		if (n > len)
			n = len;
		(void)crypto_generichash_blake2b_update(&h->block_state, p, n);
		h->fill += (uint32_t)n;
		h->size += n;
		p += n;
		len -= n;
	}
	return 0;
}

int blocks_hasher_final(struct blocks_hasher *h, uint8_t ret_hash[static BLOCKS_HASH_LEN])
{
	int r;

	if (h->fill > 0) {
		r = hasher_close_block(h);
		if (r < 0)
			return r;
	}
	file_trailer(&h->file_state, h->size);
	(void)crypto_generichash_blake2b_final(&h->file_state, ret_hash, BLOCKS_HASH_LEN);
	return 0;
}

int blocks_hash_buf(const void *data, size_t len, blocks_block_fn fn, void *userdata,
		    uint8_t ret_hash[static BLOCKS_HASH_LEN])
{
	struct blocks_hasher h;
	int r;

	blocks_hasher_init(&h, fn, userdata);
	r = blocks_hasher_update(&h, data, len);
	if (r < 0)
		return r;
	return blocks_hasher_final(&h, ret_hash);
}

int blocks_hash_fd(int fd, blocks_block_fn fn, void *userdata,
		   uint8_t ret_hash[static BLOCKS_HASH_LEN], uint64_t *ret_size)
{
	struct blocks_hasher h;
	uint8_t *buf;
	uint64_t off = 0;
	int r;

	buf = malloc(BLOCKS_SIZE);
	if (!buf)
		return -ENOMEM;
	/* Only a hint: a pipe or an odd file system may refuse it. */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	blocks_hasher_init(&h, fn, userdata);
	for (;;) {
		ssize_t n = pread(fd, buf, BLOCKS_SIZE, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto cleanup;
		}
		if (n == 0)
			break;
		r = blocks_hasher_update(&h, buf, (size_t)n);
		if (r < 0)
			goto cleanup;
		off += (uint64_t)n;
	}
	r = blocks_hasher_final(&h, ret_hash);
	if (r == 0 && ret_size)
		*ret_size = off;
cleanup:
	free(buf);
	return r;
}

int blocks_manifest_new(uint64_t size, uint32_t block_size, struct blocks_manifest **ret)
{
	struct blocks_manifest *m;
	uint32_t count;

	if (block_size != BLOCKS_SIZE)
		return -EINVAL;
	if (size > BLOCKS_FILE_MAX)
		return -EFBIG;
	count = blocks_count(size);
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->size = size;
	m->count = count;
	if (count > 0) {
		m->hashes = malloc((size_t)count * BLOCKS_HASH_LEN);
		if (!m->hashes) {
			free(m);
			return -ENOMEM;
		}
	}
	*ret = m;
	return 0;
}

void blocks_manifest_free(struct blocks_manifest *m)
{
	if (!m)
		return;
	free(m->hashes);
	free(m);
}

int blocks_manifest_add(struct blocks_manifest *m, uint32_t first, uint32_t n,
			const uint8_t *hashes)
{
	if (first != m->filled || n > m->count - first)
		return -EBADMSG;
	if (n > 0)
		memcpy(m->hashes + (size_t)first * BLOCKS_HASH_LEN, hashes,
		       (size_t)n * BLOCKS_HASH_LEN);
	m->filled += n;
	return 0;
}

int blocks_manifest_check(const struct blocks_manifest *m,
			  const uint8_t file_hash[static BLOCKS_HASH_LEN])
{
	crypto_generichash_blake2b_state st;
	uint8_t got[BLOCKS_HASH_LEN];

	if (m->filled != m->count)
		return -EAGAIN;
	state_init(&st, file_personal);
	if (m->count > 0)
		(void)crypto_generichash_blake2b_update(&st, m->hashes,
							(size_t)m->count * BLOCKS_HASH_LEN);
	file_trailer(&st, m->size);
	(void)crypto_generichash_blake2b_final(&st, got, sizeof(got));
	return memcmp(got, file_hash, BLOCKS_HASH_LEN) == 0 ? 0 : -EBADMSG;
}

int blocks_manifest_verify(const struct blocks_manifest *m, uint32_t index, const uint8_t *data,
			   size_t len)
{
	uint8_t got[BLOCKS_HASH_LEN];

	if (index >= m->filled)
		return -ERANGE;
	if (len != blocks_len(m->size, index))
		return -EMSGSIZE;
	blocks_hash_block(data, len, got);
	if (memcmp(got, m->hashes + (size_t)index * BLOCKS_HASH_LEN, BLOCKS_HASH_LEN) != 0)
		return -EBADMSG;
	return 0;
}

size_t blocks_manifest_encoded_len(const struct blocks_manifest *m)
{
	return BLOCKS_MANIFEST_HEADER_LEN + (size_t)m->count * BLOCKS_HASH_LEN;
}

int blocks_manifest_encode(const struct blocks_manifest *m, uint8_t *buf, size_t outlen)
{
	size_t len = blocks_manifest_encoded_len(m);

	if (m->filled != m->count)
		return -EAGAIN;
	if (outlen < len || len > INT32_MAX)
		return -EMSGSIZE;
	put_le64(buf, m->size);
	put_le32(buf + 8, BLOCKS_SIZE);
	put_le32(buf + 12, m->count);
	if (m->count > 0)
		memcpy(buf + BLOCKS_MANIFEST_HEADER_LEN, m->hashes,
		       (size_t)m->count * BLOCKS_HASH_LEN);
	return (int)len;
}

int blocks_manifest_decode(const uint8_t *buf, size_t len, struct blocks_manifest **ret)
{
	struct blocks_manifest *m;
	uint64_t size;
	uint32_t count;
	int r;

	if (len < BLOCKS_MANIFEST_HEADER_LEN)
		return -EBADMSG;
	size = get_le64(buf);
	if (get_le32(buf + 8) != BLOCKS_SIZE)
		return -EBADMSG;
	if (size > BLOCKS_FILE_MAX)
		return -EFBIG;
	count = get_le32(buf + 12);
	if (count != blocks_count(size))
		return -EBADMSG;
	if (len - BLOCKS_MANIFEST_HEADER_LEN != (size_t)count * BLOCKS_HASH_LEN)
		return -EBADMSG;
	r = blocks_manifest_new(size, BLOCKS_SIZE, &m);
	if (r < 0)
		return r;
	r = blocks_manifest_add(m, 0, count, buf + BLOCKS_MANIFEST_HEADER_LEN);
	if (r < 0) {
		blocks_manifest_free(m);
		return r;
	}
	*ret = m;
	return 0;
}
