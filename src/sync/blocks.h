/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_BLOCKS_H
#define TANDEM_SYNC_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/sha.h>

/*
 * Content addressing. A file is cut into fixed blocks of BLOCKS_SIZE bytes
 * (the last one shorter, an empty file has none). Each block has a hash,
 * and the file hash covers the list of block hashes and the size:
 *
 *   block hash = SHA-256("tandem.block.v2\0" || data)
 *   file hash  = SHA-256("tandem.file.v2\0\0" || h[0] || ... || h[n-1] ||
 *                        le64(size) || le32(BLOCKS_SIZE))
 *
 * SHA-256 because this machine class has it in hardware (SHA-NI, through
 * OpenSSL's libcrypto): about 1.5 GB/s per core against 300-500 MB/s for
 * libsodium's BLAKE2b, and hashing is what the sender waits for before it
 * can announce a file and what the receiver spends most on besides the
 * cipher. The 16-byte prefixes separate the two kinds of hash from each
 * other and from any other hash in the program; the trailer
 * comes last so the file hash can be computed while streaming, and it is
 * unambiguous because every h[i] is 32 bytes and the trailer is 12. An
 * empty file hashes just the trailer. Two files with the same blocks but
 * different sizes cannot happen (the size fixes the blocks' lengths) but
 * would differ anyway. A manifest (the block list) can therefore be
 * checked against the file hash from the index before any block is
 * fetched, and each block against its manifest entry before it is written.
 *
 * Block size: 1 MiB. It is SYNC_BLOCK_MAX, so one block is one BLOCK_DATA
 * message in one frame (no reassembly, zero-copy read into the frame); a
 * 1 GiB file is 1024 requests and a 32 KiB manifest, so at 400+ MB/s the
 * per-request cost (~400 requests/s) is noise, while 8 blocks in flight
 * keep the pipe full with 8 MiB of buffers. An interrupted transfer loses
 * at most the blocks that were in flight (each <= 1 MiB); everything
 * verified is kept. Smaller blocks (256 KiB) would quadruple messages,
 * hashes and manifest size for a finer resume that does not matter here.
 *
 * Caps: a file larger than BLOCKS_FILE_MAX (1 TiB) is not synced; that
 * bounds a manifest at BLOCKS_COUNT_MAX (1 Mi) hashes = 32 MiB, checked
 * before any allocation.
 *
 * Everything here is pure (no globals, no I/O) except blocks_hash_fd(),
 * which only reads the fd it is given. A struct is used by one thread at a
 * time; distinct structs are independent.
 */

#define BLOCKS_SIZE ((uint32_t)1024 * 1024)
#define BLOCKS_HASH_LEN 32
#define BLOCKS_FILE_MAX ((uint64_t)1 << 40)
#define BLOCKS_COUNT_MAX ((uint32_t)(BLOCKS_FILE_MAX / BLOCKS_SIZE))
/* Header of the serialized manifest: le64 size, le32 block size, le32 count. */
#define BLOCKS_MANIFEST_HEADER_LEN 16

/*
 * Number of blocks of a file of size bytes. Exact for any size (a size a
 * peer announced may be anything up to 2^64 - 1): at most BLOCKS_COUNT_MAX,
 * which fits in 32 bits, only when size <= BLOCKS_FILE_MAX, so a caller
 * that keeps a count or an index in 32 bits checks the size first.
 */
uint64_t blocks_count(uint64_t size);

/* Length of block index of a file of size bytes, or 0 if there is no such
 * block (any index, any size: nothing overflows). */
uint32_t blocks_len(uint64_t size, uint64_t index);

/* The hash of one block of len bytes (any len). Never fails. */
void blocks_hash_block(const uint8_t *data, size_t len, uint8_t ret_hash[static BLOCKS_HASH_LEN]);

/*
 * Called by the hasher each time a block is complete, in order, with its
 * index and hash (valid during the call only). Returning < 0 stops the
 * hashing: blocks_hasher_update()/_final() return that value.
 */
typedef int (*blocks_block_fn)(void *userdata, uint32_t index, const uint8_t hash[BLOCKS_HASH_LEN]);

/*
 * Streaming hasher: feed any number of chunks of any size, then finish.
 * Memory is the struct itself (no buffer: BLAKE2b is fed in place), so a
 * 4 GiB file takes no more than an empty one. The struct holds no
 * pointers to caller data between calls.
 */
struct blocks_hasher {
	SHA256_CTX block_state; /* the current block */
	SHA256_CTX file_state;  /* the list of block hashes */
	uint64_t size;				      /* bytes fed so far */
	uint32_t fill;				      /* bytes of the current block fed so far */
	uint32_t index;				      /* index of the current block */
	blocks_block_fn fn;
	void *userdata;
};

/* Starts a hash. fn may be NULL (only the file hash is wanted). */
void blocks_hasher_init(struct blocks_hasher *h, blocks_block_fn fn, void *userdata);

/*
 * Feeds len bytes. Returns 0; -EFBIG if the file would exceed
 * BLOCKS_FILE_MAX (nothing of data is used); or what fn returned when < 0.
 * After an error the hasher is unusable (init it again).
 */
int blocks_hasher_update(struct blocks_hasher *h, const void *data, size_t len)
	__attribute__((warn_unused_result));

/*
 * Completes the last (short) block, reports it to fn, and writes the file
 * hash. Returns 0 or what fn returned when < 0 (then ret_hash is untouched).
 * The hasher must be initialized again before reuse.
 */
int blocks_hasher_final(struct blocks_hasher *h, uint8_t ret_hash[static BLOCKS_HASH_LEN])
	__attribute__((warn_unused_result));

/* The file hash of an in-memory file, with fn as for the hasher. */
int blocks_hash_buf(const void *data, size_t len, blocks_block_fn fn, void *userdata,
		    uint8_t ret_hash[static BLOCKS_HASH_LEN]) __attribute__((warn_unused_result));

/*
 * Hashes the file open as fd from offset 0 to end of file with pread in
 * BLOCKS_SIZE chunks, after posix_fadvise(SEQUENTIAL). A file of 8 blocks
 * or more is hashed by up to 4 threads (one per CPU), each with its own
 * 1 MiB buffer, plus an array of 32 bytes per block; the result and the
 * order of the fn calls are those of the sequential hash. The file offset
 * is not used or changed.
 * ret_size (may be NULL) receives the number of bytes hashed; the caller
 * compares it (and mtime) with fstat() before and after to detect a file
 * that changed while being hashed. Returns 0; -ENOMEM; -EFBIG (larger than
 * BLOCKS_FILE_MAX); -errno of pread; or what fn returned when < 0. The
 * out-parameters are untouched on failure. Blocking; any thread.
 */
int blocks_hash_fd(int fd, blocks_block_fn fn, void *userdata,
		   uint8_t ret_hash[static BLOCKS_HASH_LEN], uint64_t *ret_size)
	__attribute__((warn_unused_result));

/*
 * A file's block list. hashes has count * BLOCKS_HASH_LEN bytes; hashes of
 * blocks [0, filled) are set.
 */
struct blocks_manifest {
	uint64_t size;
	uint32_t count;	 /* blocks_count(size) */
	uint32_t filled; /* hashes set so far, in order */
	uint8_t *hashes;
};

/*
 * Allocates an empty manifest for a file of size bytes with block size
 * block_size (both usually from a peer). Returns 0 and *ret (free with
 * blocks_manifest_free()); -EFBIG if size > BLOCKS_FILE_MAX; -EINVAL if
 * block_size is not BLOCKS_SIZE (this version knows only one); -ENOMEM.
 * The caps are checked before allocating.
 */
int blocks_manifest_new(uint64_t size, uint32_t block_size, struct blocks_manifest **ret)
	__attribute__((warn_unused_result));

/* Frees m; NULL is a no-op. */
void blocks_manifest_free(struct blocks_manifest *m);

/*
 * Appends the n hashes (n * BLOCKS_HASH_LEN bytes) of blocks first ..
 * first + n - 1, as carried by one MANIFEST message: chunks must come in
 * order, without gap or overlap. Returns 0, or -EBADMSG if first !=
 * m->filled or first + n > m->count (m unchanged).
 */
int blocks_manifest_add(struct blocks_manifest *m, uint32_t first, uint32_t n,
			const uint8_t *hashes) __attribute__((warn_unused_result));

/*
 * Checks a complete manifest against the file hash it was asked for.
 * Returns 0; -EAGAIN if not all hashes were added yet; -EBADMSG if the
 * hashes and size do not give file_hash (the peer lied or the file
 * changed).
 */
int blocks_manifest_check(const struct blocks_manifest *m,
			  const uint8_t file_hash[static BLOCKS_HASH_LEN])
	__attribute__((warn_unused_result));

/*
 * Verifies a received block: index < m->count, len == blocks_len(size,
 * index), and its hash is the manifest's. Returns 0; -ERANGE for an index
 * out of range or not yet in the manifest; -EMSGSIZE for a wrong length;
 * -EBADMSG for a hash mismatch (the data must not be written).
 */
int blocks_manifest_verify(const struct blocks_manifest *m, uint64_t index, const uint8_t *data,
			   size_t len) __attribute__((warn_unused_result));

/* Bytes blocks_manifest_encode() writes for m. */
size_t blocks_manifest_encoded_len(const struct blocks_manifest *m);

/*
 * Serializes a complete manifest (for the resume state kept beside a
 * partial download, or any other place that wants one blob):
 * le64 size, le32 block size, le32 count, count hashes. Returns the
 * length; -EAGAIN if m is not complete; -EMSGSIZE if outlen is too small
 * (nothing written).
 */
int blocks_manifest_encode(const struct blocks_manifest *m, uint8_t *buf, size_t outlen)
	__attribute__((warn_unused_result));

/*
 * Parses what blocks_manifest_encode() wrote, consuming exactly len bytes.
 * Size, block size and count (= blocks_count(size)) are checked, and len
 * against the count, before the manifest is allocated. Returns 0 and *ret
 * (complete; free with blocks_manifest_free()); -EBADMSG for malformed
 * input; -EFBIG over the size cap; -ENOMEM. Check the result against the
 * expected file hash with blocks_manifest_check().
 */
int blocks_manifest_decode(const uint8_t *buf, size_t len, struct blocks_manifest **ret)
	__attribute__((warn_unused_result));

#endif
