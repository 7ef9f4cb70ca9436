/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

#include "sync/blocks.h"
#include "tap.h"

/*
 * Known answers computed independently with Python:
 *   bh = lambda d: sha256(b"tandem.block.v2\0" + d).digest()
 *   fh = sha256(b"tandem.file.v2\0\0" + b"".join(block hashes) +
 *               struct.pack("<QI", size, 1 << 20))
 * with the pattern byte i = (i * 131 + 7) % 251.
 */
#define KAT_EMPTY "cf420181953863fafe3a2fee5a37e14aab1a02422af8f55090d32c12db494105"
#define KAT_ONE_BYTE "200c33f2e06544a2f308c6a81dec5b5b1010646d4213b8ab538f2c250e376aec"
#define KAT_ONE_BYTE_B0 "7d0e5865c712ad28d999a54a093ae640062c3665cb99ecdd6bf0bfaeaf931211"
#define KAT_ONE_BLOCK "0db424508f6cecbf646ca1bb9482d1c5292e7f4c7b720d4b680fecbd432bbc68"
#define KAT_PAT_B0 "c6c9ecc3a2cd31fe5dc0499b63ba14b453265205c92068198829645e93a8835d"
#define KAT_PLUS_ONE "d6e68cab8a452420bf5c5b84cc4f7497f583e3e143d1633d1b66f98b072f9649"
#define KAT_PLUS_ONE_B1 "04dd7f1c259b0c98d1b99b18bc375ac2ed7054789571a4b2340b1c01047bb243"

#define MAX_SEEN 16

/* What the block callback saw. */
struct seen {
	unsigned n;
	uint32_t index[MAX_SEEN];
	uint8_t hash[MAX_SEEN][BLOCKS_HASH_LEN];
	int fail_at; /* return -EIO at this call (or never if < 0) */
};

static int on_block(void *userdata, uint32_t index, const uint8_t hash[BLOCKS_HASH_LEN])
{
	struct seen *s = userdata;

	if (s->fail_at >= 0 && (unsigned)s->fail_at == s->n)
		return -EIO;
	if (s->n < MAX_SEEN) {
		s->index[s->n] = index;
		memcpy(s->hash[s->n], hash, BLOCKS_HASH_LEN);
	}
	s->n++;
	return 0;
}

static int hex_is(const uint8_t *h, const char *hex)
{
	char txt[BLOCKS_HASH_LEN * 2 + 1];

	sodium_bin2hex(txt, sizeof(txt), h, BLOCKS_HASH_LEN);
	if (strcmp(txt, hex) != 0) {
		printf("#   got %s\n#  want %s\n", txt, hex);
		return 0;
	}
	return 1;
}

static uint8_t *pattern(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	for (size_t i = 0; p && i < n; i++)
		p[i] = (uint8_t)((i * 131 + 7) % 251);
	return p;
}

TEST(kat_empty)
{
	struct seen s = {.fail_at = -1};
	uint8_t h[BLOCKS_HASH_LEN];

	CHECK_INT_EQ(blocks_hash_buf("", 0, on_block, &s, h), 0);
	CHECK(hex_is(h, KAT_EMPTY));
	CHECK_INT_EQ(s.n, 0);
	CHECK_INT_EQ(blocks_count(0), 0);
}

TEST(kat_one_byte)
{
	struct seen s = {.fail_at = -1};
	uint8_t h[BLOCKS_HASH_LEN];

	CHECK_INT_EQ(blocks_hash_buf("a", 1, on_block, &s, h), 0);
	CHECK(hex_is(h, KAT_ONE_BYTE));
	REQUIRE(s.n == 1);
	CHECK_INT_EQ(s.index[0], 0);
	CHECK(hex_is(s.hash[0], KAT_ONE_BYTE_B0));
	blocks_hash_block((const uint8_t *)"a", 1, h);
	CHECK(hex_is(h, KAT_ONE_BYTE_B0));
}

TEST(kat_one_block)
{
	struct seen s = {.fail_at = -1};
	uint8_t h[BLOCKS_HASH_LEN];
	uint8_t *d = pattern(BLOCKS_SIZE);

	REQUIRE(d);
	CHECK_INT_EQ(blocks_hash_buf(d, BLOCKS_SIZE, on_block, &s, h), 0);
	CHECK(hex_is(h, KAT_ONE_BLOCK));
	CHECK_INT_EQ(s.n, 1); /* no empty block after an exact multiple */
	CHECK(hex_is(s.hash[0], KAT_PAT_B0));
	free(d);
}

TEST(kat_block_plus_one)
{
	struct seen s = {.fail_at = -1};
	uint8_t h[BLOCKS_HASH_LEN];
	uint8_t *d = pattern(BLOCKS_SIZE + 1);

	REQUIRE(d);
	CHECK_INT_EQ(blocks_hash_buf(d, BLOCKS_SIZE + 1, on_block, &s, h), 0);
	CHECK(hex_is(h, KAT_PLUS_ONE));
	REQUIRE(s.n == 2);
	CHECK_INT_EQ(s.index[0], 0);
	CHECK_INT_EQ(s.index[1], 1);
	CHECK(hex_is(s.hash[0], KAT_PAT_B0));
	CHECK(hex_is(s.hash[1], KAT_PLUS_ONE_B1));
	free(d);
}

TEST(domain_separation)
{
	uint8_t plain[32], bh[32], fh[32];
	uint8_t *d = pattern(100);

	REQUIRE(d);
	crypto_generichash(plain, 32, d, 100, NULL, 0);
	blocks_hash_block(d, 100, bh);
	CHECK_INT_EQ(blocks_hash_buf(d, 100, NULL, NULL, fh), 0);
	CHECK(memcmp(plain, bh, 32) != 0);
	CHECK(memcmp(bh, fh, 32) != 0);
	/* a file hash is never the block hash of its own hash list */
	CHECK(memcmp(plain, fh, 32) != 0);
	free(d);
}

TEST(counts)
{
	CHECK_INT_EQ(blocks_count(1), 1);
	CHECK_INT_EQ(blocks_count(BLOCKS_SIZE), 1);
	CHECK_INT_EQ(blocks_count(BLOCKS_SIZE + 1), 2);
	CHECK_INT_EQ(blocks_count(BLOCKS_FILE_MAX), BLOCKS_COUNT_MAX);
	CHECK_INT_EQ(blocks_len(0, 0), 0);
	CHECK_INT_EQ(blocks_len(10, 0), 10);
	CHECK_INT_EQ(blocks_len(10, 1), 0);
	CHECK_INT_EQ(blocks_len(BLOCKS_SIZE, 0), BLOCKS_SIZE);
	CHECK_INT_EQ(blocks_len(BLOCKS_SIZE, 1), 0);
	CHECK_INT_EQ(blocks_len(BLOCKS_SIZE + 5, 1), 5);
	CHECK_INT_EQ(blocks_len(BLOCKS_FILE_MAX, BLOCKS_COUNT_MAX - 1), BLOCKS_SIZE);
	CHECK_INT_EQ(blocks_len(BLOCKS_FILE_MAX, UINT32_MAX), 0);
}

/* Issue #10: sizes a peer may announce, far over the cap, count exactly in 64
 * bits; nothing is truncated to 32 bits or wraps. */
TEST(counts_64bit)
{
	CHECK(blocks_count((uint64_t)1 << 62) == (uint64_t)1 << 42);
	CHECK(blocks_count(((uint64_t)1 << 52) + 1) == ((uint64_t)1 << 32) + 1);
	CHECK(blocks_count(BLOCKS_FILE_MAX + 1) == (uint64_t)BLOCKS_COUNT_MAX + 1);
	CHECK(blocks_count(UINT64_MAX) == (uint64_t)1 << 44);
	CHECK(blocks_count(INT64_MAX) == (uint64_t)1 << 43);
	/* the last block of 2^52 + 1 bytes is block 2^32, 1 byte; not block 0 */
	CHECK_INT_EQ(blocks_len(((uint64_t)1 << 52) + 1, (uint64_t)1 << 32), 1);
	CHECK_INT_EQ(blocks_len(((uint64_t)1 << 52) + 1, ((uint64_t)1 << 32) + 1), 0);
	CHECK_INT_EQ(blocks_len(UINT64_MAX, ((uint64_t)1 << 44) - 1), BLOCKS_SIZE - 1);
	CHECK_INT_EQ(blocks_len(UINT64_MAX, (uint64_t)1 << 44), 0);
	/* index * BLOCKS_SIZE would wrap to a small offset */
	CHECK_INT_EQ(blocks_len(BLOCKS_FILE_MAX, (uint64_t)1 << 44), 0);
	CHECK_INT_EQ(blocks_len(BLOCKS_FILE_MAX, UINT64_MAX), 0);
}

/* Any way of cutting the input gives the same hashes. */
TEST(streaming_chunks)
{
	static const size_t chunks[] = {
		1, 7, 4096, BLOCKS_SIZE - 1, BLOCKS_SIZE, BLOCKS_SIZE + 1, 3 * BLOCKS_SIZE};
	const size_t n = 3 * BLOCKS_SIZE + 12345;
	struct seen ref = {.fail_at = -1};
	uint8_t href[BLOCKS_HASH_LEN], h[BLOCKS_HASH_LEN];
	uint8_t *d = pattern(n);

	REQUIRE(d);
	CHECK_INT_EQ(blocks_hash_buf(d, n, on_block, &ref, href), 0);
	CHECK_INT_EQ(ref.n, 4);
	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		struct blocks_hasher hs;
		struct seen s = {.fail_at = -1};
		size_t off = 0;

		blocks_hasher_init(&hs, on_block, &s);
		CHECK_INT_EQ(blocks_hasher_update(&hs, d, 0), 0);
		while (off < n) {
			size_t k = n - off < chunks[c] ? n - off : chunks[c];
			REQUIRE(blocks_hasher_update(&hs, d + off, k) == 0);
			off += k;
		}
		CHECK_INT_EQ(blocks_hasher_final(&hs, h), 0);
		CHECK(memcmp(h, href, sizeof(h)) == 0);
		CHECK_INT_EQ(s.n, ref.n);
		CHECK(memcmp(s.hash, ref.hash, sizeof(s.hash)) == 0);
		CHECK(memcmp(s.index, ref.index, sizeof(s.index)) == 0);
	}
	/* one byte different, or one byte more, changes the file hash */
	d[n / 2] ^= 1;
	CHECK_INT_EQ(blocks_hash_buf(d, n, NULL, NULL, h), 0);
	CHECK(memcmp(h, href, sizeof(h)) != 0);
	d[n / 2] ^= 1;
	CHECK_INT_EQ(blocks_hash_buf(d, n - 1, NULL, NULL, h), 0);
	CHECK(memcmp(h, href, sizeof(h)) != 0);
	free(d);
}

TEST(callback_error_stops)
{
	struct seen s = {.fail_at = 1};
	uint8_t h[BLOCKS_HASH_LEN];
	uint8_t *d = pattern(2 * BLOCKS_SIZE + 1);

	REQUIRE(d);
	memset(h, 0xAA, sizeof(h));
	CHECK_INT_EQ(blocks_hash_buf(d, 2 * BLOCKS_SIZE + 1, on_block, &s, h), -EIO);
	CHECK_INT_EQ(s.n, 1);
	/* failing on the last (short) block: final fails, hash untouched */
	s = (struct seen){.fail_at = 0};
	CHECK_INT_EQ(blocks_hash_buf(d, 10, on_block, &s, h), -EIO);
	CHECK(h[0] == 0xAA && h[31] == 0xAA);
	free(d);
}

TEST(size_cap)
{
	struct blocks_hasher hs;

	blocks_hasher_init(&hs, NULL, NULL);
	/* pretend 1 TiB - 1 byte went by */
	hs.size = BLOCKS_FILE_MAX - 1;
	CHECK_INT_EQ(blocks_hasher_update(&hs, "ab", 2), -EFBIG);
	CHECK_INT_EQ(hs.size, BLOCKS_FILE_MAX - 1);
}

TEST(hash_fd)
{
	const size_t n = 2 * BLOCKS_SIZE + 77;
	uint8_t href[BLOCKS_HASH_LEN], h[BLOCKS_HASH_LEN];
	struct seen s = {.fail_at = -1};
	uint64_t size = 12345;
	uint8_t *d = pattern(n);
	int fd = memfd_create("test-blocks", MFD_CLOEXEC);

	REQUIRE(d && fd >= 0);
	REQUIRE(write(fd, d, n) == (ssize_t)n);
	CHECK_INT_EQ(blocks_hash_buf(d, n, NULL, NULL, href), 0);
	CHECK_INT_EQ(blocks_hash_fd(fd, on_block, &s, h, &size), 0);
	CHECK(memcmp(h, href, sizeof(h)) == 0);
	CHECK_INT_EQ(size, n);
	CHECK_INT_EQ(s.n, 3);
	/* the file offset is not used */
	CHECK_INT_EQ(lseek(fd, 0, SEEK_CUR), (off_t)n);

	/* empty file */
	REQUIRE(ftruncate(fd, 0) == 0);
	CHECK_INT_EQ(blocks_hash_fd(fd, NULL, NULL, h, NULL), 0);
	CHECK(hex_is(h, KAT_EMPTY));

	/* errors leave the out-parameters alone */
	size = 7;
	CHECK_INT_EQ(blocks_hash_fd(-1, NULL, NULL, h, &size), -EBADF);
	CHECK_INT_EQ(size, 7);
	REQUIRE(write(fd, d, 10) == 10);
	s = (struct seen){.fail_at = 0};
	CHECK_INT_EQ(blocks_hash_fd(fd, on_block, &s, h, &size), -EIO);
	CHECK_INT_EQ(size, 7);
	close(fd);
	free(d);
}

/* Files of 8 blocks and more are hashed by several threads: same result,
 * block callbacks in order, errors as before. */
TEST(hash_fd_parallel)
{
	const size_t n = 11 * BLOCKS_SIZE + 4321;
	uint8_t href[BLOCKS_HASH_LEN], h[BLOCKS_HASH_LEN], bh[BLOCKS_HASH_LEN];
	struct seen s = {.fail_at = -1};
	uint64_t size = 0;
	uint8_t *d = pattern(n);
	int fd = memfd_create("test-blocks-par", MFD_CLOEXEC);

	REQUIRE(d && fd >= 0);
	REQUIRE(write(fd, d, n) == (ssize_t)n);
	CHECK_INT_EQ(blocks_hash_buf(d, n, NULL, NULL, href), 0);
	CHECK_INT_EQ(blocks_hash_fd(fd, on_block, &s, h, &size), 0);
	CHECK(memcmp(h, href, sizeof(h)) == 0);
	CHECK_INT_EQ(size, n);
	CHECK_INT_EQ(s.n, 12);
	for (unsigned i = 0; i < s.n && i < MAX_SEEN; i++) {
		CHECK_INT_EQ(s.index[i], i);
		blocks_hash_block(d + (size_t)i * BLOCKS_SIZE,
				  i == 11 ? 4321 : BLOCKS_SIZE, bh);
		CHECK(memcmp(s.hash[i], bh, BLOCKS_HASH_LEN) == 0);
	}
	/* the callback's error stops it */
	s = (struct seen){.fail_at = 5};
	size = 9;
	CHECK_INT_EQ(blocks_hash_fd(fd, on_block, &s, h, &size), -EIO);
	CHECK_INT_EQ(size, 9);
	close(fd);
	free(d);
}

struct collect {
	struct blocks_manifest *m;
};

static int on_block_collect(void *userdata, uint32_t index, const uint8_t hash[BLOCKS_HASH_LEN])
{
	struct collect *c = userdata;

	return blocks_manifest_add(c->m, index, 1, hash);
}

/* A manifest of n pattern bytes, built from the hasher's callbacks. */
static struct blocks_manifest *manifest_of(const uint8_t *d, size_t n, uint8_t fh[BLOCKS_HASH_LEN])
{
	struct collect c = {NULL};

	if (blocks_manifest_new(n, BLOCKS_SIZE, &c.m) < 0)
		return NULL;
	if (blocks_hash_buf(d, n, on_block_collect, &c, fh) < 0) {
		blocks_manifest_free(c.m);
		return NULL;
	}
	return c.m;
}

TEST(manifest_check_and_verify)
{
	const size_t n = 3 * BLOCKS_SIZE + 100;
	uint8_t fh[BLOCKS_HASH_LEN];
	uint8_t *d = pattern(n);
	struct blocks_manifest *m = NULL, *m2 = NULL;

	REQUIRE(d);
	m = manifest_of(d, n, fh);
	REQUIRE(m);
	CHECK_INT_EQ(m->count, 4);
	CHECK_INT_EQ(m->filled, 4);
	CHECK_INT_EQ(blocks_manifest_check(m, fh), 0);

	for (uint32_t i = 0; i < 4; i++)
		CHECK_INT_EQ(
			blocks_manifest_verify(m, i, d + (size_t)i * BLOCKS_SIZE, blocks_len(n, i)),
			0);
	CHECK_INT_EQ(blocks_manifest_verify(m, 4, d, 0), -ERANGE);
	CHECK_INT_EQ(blocks_manifest_verify(m, UINT32_MAX, d, 1), -ERANGE);
	/* an index past 32 bits is not block 0 */
	CHECK_INT_EQ(blocks_manifest_verify(m, (uint64_t)1 << 32, d, BLOCKS_SIZE), -ERANGE);
	CHECK_INT_EQ(blocks_manifest_verify(m, 3, d + 3 * (size_t)BLOCKS_SIZE, 99), -EMSGSIZE);
	CHECK_INT_EQ(blocks_manifest_verify(m, 0, d, BLOCKS_SIZE - 1), -EMSGSIZE);
	/* block 1's bytes offered as block 2 */
	CHECK_INT_EQ(blocks_manifest_verify(m, 2, d + BLOCKS_SIZE, BLOCKS_SIZE), -EBADMSG);
	d[5] ^= 0x80;
	CHECK_INT_EQ(blocks_manifest_verify(m, 0, d, BLOCKS_SIZE), -EBADMSG);
	d[5] ^= 0x80;

	/* a tampered hash list or a wrong size no longer gives the file hash */
	m->hashes[40] ^= 1;
	CHECK_INT_EQ(blocks_manifest_check(m, fh), -EBADMSG);
	m->hashes[40] ^= 1;
	m->size--;
	CHECK_INT_EQ(blocks_manifest_check(m, fh), -EBADMSG);
	m->size++;

	/* chunked in order: incomplete, then complete */
	REQUIRE(blocks_manifest_new(n, BLOCKS_SIZE, &m2) == 0);
	CHECK_INT_EQ(blocks_manifest_check(m2, fh), -EAGAIN);
	CHECK_INT_EQ(blocks_manifest_verify(m2, 0, d, BLOCKS_SIZE), -ERANGE);
	CHECK_INT_EQ(blocks_manifest_add(m2, 1, 1, m->hashes + 32), -EBADMSG); /* gap */
	CHECK_INT_EQ(blocks_manifest_add(m2, 0, 5, m->hashes), -EBADMSG);      /* too many */
	CHECK_INT_EQ(blocks_manifest_add(m2, 0, 2, m->hashes), 0);
	CHECK_INT_EQ(blocks_manifest_verify(m2, 1, d + BLOCKS_SIZE, BLOCKS_SIZE), 0);
	CHECK_INT_EQ(blocks_manifest_add(m2, 0, 1, m->hashes), -EBADMSG); /* overlap */
	CHECK_INT_EQ(blocks_manifest_check(m2, fh), -EAGAIN);
	CHECK_INT_EQ(blocks_manifest_add(m2, 2, 2, m->hashes + 64), 0);
	CHECK_INT_EQ(blocks_manifest_add(m2, 4, 0, NULL), 0);
	CHECK_INT_EQ(blocks_manifest_add(m2, 4, 1, m->hashes), -EBADMSG);
	CHECK_INT_EQ(blocks_manifest_check(m2, fh), 0);

	blocks_manifest_free(m);
	blocks_manifest_free(m2);
	blocks_manifest_free(NULL);
	free(d);
}

TEST(manifest_new_caps)
{
	struct blocks_manifest *m = (void *)1;

	CHECK_INT_EQ(blocks_manifest_new(BLOCKS_FILE_MAX + 1, BLOCKS_SIZE, &m), -EFBIG);
	CHECK_INT_EQ(blocks_manifest_new(UINT64_MAX, BLOCKS_SIZE, &m), -EFBIG);
	CHECK_INT_EQ(blocks_manifest_new(10, 4096, &m), -EINVAL);
	CHECK_INT_EQ(blocks_manifest_new(10, 0, &m), -EINVAL);
	CHECK(m == (void *)1);

	/* the empty file: no hashes, complete at once */
	uint8_t fh[BLOCKS_HASH_LEN];
	REQUIRE(blocks_manifest_new(0, BLOCKS_SIZE, &m) == 0);
	CHECK_INT_EQ(m->count, 0);
	CHECK(sodium_hex2bin(fh, sizeof(fh), KAT_EMPTY, 64, NULL, NULL, NULL) == 0);
	CHECK_INT_EQ(blocks_manifest_check(m, fh), 0);
	CHECK_INT_EQ(blocks_manifest_verify(m, 0, fh, 0), -ERANGE);
	blocks_manifest_free(m);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

TEST(manifest_codec)
{
	const size_t n = BLOCKS_SIZE + 1;
	uint8_t fh[BLOCKS_HASH_LEN];
	uint8_t buf[BLOCKS_MANIFEST_HEADER_LEN + 2 * BLOCKS_HASH_LEN + 1];
	uint8_t *d = pattern(n);
	struct blocks_manifest *m = NULL, *got = NULL, *part = NULL;
	int len;

	REQUIRE(d);
	m = manifest_of(d, n, fh);
	REQUIRE(m);
	CHECK_INT_EQ(blocks_manifest_encoded_len(m), 16 + 64);
	CHECK_INT_EQ(blocks_manifest_encode(m, buf, 16 + 63), -EMSGSIZE);
	len = blocks_manifest_encode(m, buf, sizeof(buf));
	REQUIRE(len == 16 + 64);
	/* the layout: le64 size, le32 block size, le32 count, hashes */
	CHECK(buf[0] == 1 && buf[1] == 0 && buf[2] == 0x10 && buf[7] == 0);
	CHECK(buf[8] == 0 && buf[9] == 0 && buf[10] == 0x10 && buf[11] == 0);
	CHECK(buf[12] == 2 && buf[13] == 0);
	CHECK(hex_is(buf + 16, KAT_PAT_B0));

	REQUIRE(blocks_manifest_decode(buf, (size_t)len, &got) == 0);
	CHECK_INT_EQ(got->size, n);
	CHECK_INT_EQ(got->count, 2);
	CHECK_INT_EQ(got->filled, 2);
	CHECK_INT_EQ(blocks_manifest_check(got, fh), 0);
	blocks_manifest_free(got);
	got = (void *)1;

	/* every truncation and one extra byte are refused */
	for (int k = 0; k < len; k++)
		CHECK_INT_EQ(blocks_manifest_decode(buf, (size_t)k, &got), -EBADMSG);
	CHECK_INT_EQ(blocks_manifest_decode(buf, (size_t)len + 1, &got), -EBADMSG);
	/* wrong block size, count, size */
	buf[9] = 1;
	CHECK_INT_EQ(blocks_manifest_decode(buf, (size_t)len, &got), -EBADMSG);
	buf[9] = 0;
	buf[12] = 3;
	CHECK_INT_EQ(blocks_manifest_decode(buf, (size_t)len, &got), -EBADMSG);
	buf[12] = 2;
	buf[0] = 0; /* size = exactly 1 MiB: one block, but two hashes follow */
	CHECK_INT_EQ(blocks_manifest_decode(buf, (size_t)len, &got), -EBADMSG);
	buf[0] = 1;
	/* a huge claim in a tiny message is refused before allocating */
	put64(buf, BLOCKS_FILE_MAX);
	put32(buf + 12, BLOCKS_COUNT_MAX);
	CHECK_INT_EQ(blocks_manifest_decode(buf, (size_t)len, &got), -EBADMSG);
	put64(buf, BLOCKS_FILE_MAX + 1);
	put32(buf + 12, BLOCKS_COUNT_MAX + 1);
	CHECK_INT_EQ(blocks_manifest_decode(buf, (size_t)len, &got), -EFBIG);
	CHECK(got == (void *)1);

	/* an empty file's manifest is the bare header */
	put64(buf, 0);
	put32(buf + 12, 0);
	got = NULL;
	REQUIRE(blocks_manifest_decode(buf, 16, &got) == 0);
	CHECK_INT_EQ(got->count, 0);
	CHECK_INT_EQ(blocks_manifest_encode(got, buf, 16), 16);
	blocks_manifest_free(got);

	/* an incomplete manifest cannot be encoded */
	REQUIRE(blocks_manifest_new(n, BLOCKS_SIZE, &part) == 0);
	CHECK_INT_EQ(blocks_manifest_encode(part, buf, sizeof(buf)), -EAGAIN);
	blocks_manifest_free(part);
	blocks_manifest_free(m);
	free(d);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(kat_empty);
	RUN(kat_one_byte);
	RUN(kat_one_block);
	RUN(kat_block_plus_one);
	RUN(domain_separation);
	RUN(counts);
	RUN(counts_64bit);
	RUN(streaming_chunks);
	RUN(callback_error_stops);
	RUN(size_cap);
	RUN(hash_fd);
	RUN(hash_fd_parallel);
	RUN(manifest_check_and_verify);
	RUN(manifest_new_caps);
	RUN(manifest_codec);
	return tap_done();
}
