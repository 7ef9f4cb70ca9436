/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_MSG_H
#define TANDEM_SYNC_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "chan/frame.h"

/*
 * The sync engine's messages, sans-IO (docs/SYNC-PROTOCOL.md has the byte
 * layout). Each message is the payload of one DATA frame and starts with a
 * type byte; type 1 (HELLO) belongs to the daemon's connection code.
 *
 * Decoding never allocates and never trusts the peer: a message decodes
 * only when every byte is consumed, every count and length is within its
 * cap (checked before anything behind it is read), every enum is known,
 * every flag bit is defined and every path passes path_check(). Pointers
 * in decoded structs (paths, targets, text, data, hashes) point into the
 * input buffer and are valid as long as it is; strings are not
 * NUL-terminated.
 *
 * Encoders write into a caller buffer, never past outlen, and refuse
 * (-EINVAL) anything the decoder would refuse, so what one peer sends the
 * other accepts. Encoding is canonical: decode(encode(m)) == m and
 * encode(decode(b)) == b byte for byte.
 *
 * All functions are pure (no I/O, no globals) and safe from any thread.
 */

/*
 * Largest block of file data in one BLOCK_DATA or BLOCK_REQUEST, and the
 * largest manifest block size: what the wire carries, not the block size
 * the engine uses (src/sync/blocks.h chooses that, at most this).
 */
#define SYNC_BLOCK_MAX ((uint32_t)1024 * 1024)

#define SYNC_HASH_LEN 32
#define SYNC_DEVICE_LEN 8
#define SYNC_MSG_MAX FRAME_MAX_PAYLOAD		 /* any message: one DATA frame */
#define SYNC_INDEX_ENTRIES_MAX 4000		 /* entries in one INDEX_UPDATE */
#define SYNC_INDEX_MSG_MAX ((size_t)256 * 1024)	 /* bytes of one INDEX_UPDATE */
#define SYNC_PATH_MAX 4095			 /* = PATH_REL_MAX */
#define SYNC_TARGET_MAX 4095			 /* symlink target bytes */
#define SYNC_VV_MAX 8				 /* version vector entries */
#define SYNC_ERROR_TEXT_MAX 200			 /* BLOCK_ERROR text bytes */
#define SYNC_MANIFEST_HASHES_MAX 32768		 /* block hashes in one MANIFEST */
#define SYNC_MANIFEST_BLOCK_MIN ((uint32_t)4096) /* smallest manifest block size */
#define SYNC_OFFSET_MAX INT64_MAX		 /* file sizes and offset + length */
#define SYNC_FILE_MAX ((uint64_t)1 << 40)	 /* file sizes: entries, manifests (1 TiB) */
#define SYNC_BLOCK_DATA_HEADER_LEN 17		 /* type, req_id, offset, length */
#define SYNC_INDEX_HEADER_LEN 3			 /* type, entry count */
/* The largest single INDEX_UPDATE entry: path, fixed fields, target, full vector. */
#define SYNC_ENTRY_LEN_MAX (2 + SYNC_PATH_MAX + 52 + 2 + SYNC_TARGET_MAX + 1 + SYNC_VV_MAX * 16 + 8)

enum sync_msg_type {
	SYNC_MSG_INDEX_UPDATE = 2,
	SYNC_MSG_INDEX_DONE = 3,
	SYNC_MSG_BLOCK_REQUEST = 4,
	SYNC_MSG_BLOCK_DATA = 5,
	SYNC_MSG_BLOCK_ERROR = 6,
	SYNC_MSG_MANIFEST_REQUEST = 7,
	SYNC_MSG_MANIFEST = 8,
	SYNC_MSG_CANCEL = 9,
	SYNC_MSG_START = 10,
};
#define SYNC_MSG_TYPE_LAST SYNC_MSG_START

enum sync_kind {
	SYNC_KIND_FILE = 1,
	SYNC_KIND_DIR = 2,
	SYNC_KIND_SYMLINK = 3,
};

/* Entry flags. */
enum {
	SYNC_ENTRY_DELETED = 1U << 0,
};
#define SYNC_ENTRY_FLAGS_KNOWN SYNC_ENTRY_DELETED

enum sync_block_err {
	SYNC_BLOCK_ERR_NOT_FOUND = 1, /* no such file (any more) */
	SYNC_BLOCK_ERR_CHANGED = 2,   /* the file no longer has the requested hash */
	SYNC_BLOCK_ERR_IO = 3,	      /* reading it failed */
	SYNC_BLOCK_ERR_REFUSED = 4,   /* not served (overload, policy) */
};

struct sync_vv {
	uint8_t device[SYNC_DEVICE_LEN];
	uint64_t counter;
};

/* One INDEX_UPDATE entry. */
struct sync_entry {
	const char *path; /* 1..SYNC_PATH_MAX bytes, passes path_check() */
	size_t path_len;
	uint8_t kind;  /* enum sync_kind */
	uint8_t flags; /* SYNC_ENTRY_* */
	uint16_t mode; /* permission bits, within 0777 */
	uint64_t size; /* <= SYNC_FILE_MAX; 0 for directories */
	int64_t mtime_ns;
	uint8_t hash[SYNC_HASH_LEN]; /* all zero for directories */
	const char *target;	     /* symlinks only: no NUL, 1..SYNC_TARGET_MAX */
	size_t target_len;	     /* bytes, or 0 for a deleted symlink */
	uint8_t nvv;		     /* 0..SYNC_VV_MAX, device ids distinct */
	struct sync_vv vv[SYNC_VV_MAX];
	uint64_t seq; /* the sender's sequence number of this change */
};

/* INDEX_UPDATE as decoded: the whole batch was validated; walk it with
 * msg_index_iter_init() and msg_index_next(). */
struct sync_index_update {
	unsigned count; /* 1..SYNC_INDEX_ENTRIES_MAX */
	const uint8_t *entries;
	size_t len;
};

struct sync_index_done {
	uint64_t seq;
};

struct sync_block_request {
	uint32_t req_id;
	const char *path;
	size_t path_len;
	uint8_t hash[SYNC_HASH_LEN]; /* of the whole file, as the requester knows it */
	uint32_t index;		     /* block number */
	uint64_t offset;
	uint32_t len; /* 1..SYNC_BLOCK_MAX; offset + len <= SYNC_OFFSET_MAX */
};

struct sync_block_data {
	uint32_t req_id;
	uint64_t offset;
	const uint8_t *data;
	size_t len; /* 0..SYNC_BLOCK_MAX; offset + len <= SYNC_OFFSET_MAX */
};

struct sync_block_error {
	uint32_t req_id;
	uint16_t code;	  /* enum sync_block_err */
	const char *text; /* 0..SYNC_ERROR_TEXT_MAX bytes, no NUL; untrusted: quote it */
	size_t text_len;
};

struct sync_manifest_request {
	uint32_t req_id;
	const char *path;
	size_t path_len;
	uint8_t hash[SYNC_HASH_LEN];
};

/*
 * One chunk of a file's block list: hashes[0..n) are the hashes of blocks
 * first..first+n-1. block_count == ceil(size / block_size); first + n <=
 * block_count; n >= 1 unless block_count == 0 (then first == 0, n == 0).
 */
struct sync_manifest {
	uint32_t req_id;
	uint8_t hash[SYNC_HASH_LEN];
	uint64_t size;	     /* <= SYNC_FILE_MAX */
	uint32_t block_size; /* SYNC_MANIFEST_BLOCK_MIN..SYNC_BLOCK_MAX */
	uint32_t block_count;
	uint32_t first;
	uint32_t n;	       /* 0..SYNC_MANIFEST_HASHES_MAX */
	const uint8_t *hashes; /* n * SYNC_HASH_LEN bytes */
};

struct sync_cancel {
	uint32_t req_id;
};

/*
 * START: the first sync message each side sends after HELLO. device is the
 * sender's device id; since is the highest of the receiver's sequence
 * numbers the sender has applied (the receiver streams every change after
 * it, then INDEX_DONE); expect is the receiver's device id as the sender
 * last knew it (all zero when none): a receiver whose id differs (its
 * index was reset) answers with its whole index instead.
 */
struct sync_start {
	uint8_t device[SYNC_DEVICE_LEN];
	uint64_t since;
	uint8_t expect[SYNC_DEVICE_LEN];
};

struct sync_msg {
	enum sync_msg_type type;
	union {
		struct sync_index_update index_update;
		struct sync_index_done index_done;
		struct sync_block_request block_request;
		struct sync_block_data block_data;
		struct sync_block_error block_error;
		struct sync_manifest_request manifest_request;
		struct sync_manifest manifest;
		struct sync_cancel cancel;
		struct sync_start start;
	};
};

/*
 * Decodes one message (a DATA frame's payload). Returns 0 and fills *ret,
 * or: -EBADMSG for anything malformed (the connection must be closed);
 * -EPROTONOSUPPORT for a type byte this version does not know (>= 11; the
 * engine ignores it only when the peer's HELLO announced a newer protocol
 * version, see docs/SYNC-PROTOCOL.md). Types 0 and 1 are -EBADMSG: HELLO is
 * not a sync message. *ret is untouched on failure. err may be NULL, or
 * receives a sentence saying what was wrong (peer bytes in it are escaped).
 */
int msg_decode(const uint8_t *buf, size_t len, struct sync_msg *ret, struct err *err)
	__attribute__((warn_unused_result));

/* Walks a decoded INDEX_UPDATE; the input buffer must still be valid. */
struct msg_index_iter {
	const uint8_t *p;
	size_t left;
	unsigned remaining;
};

void msg_index_iter_init(struct msg_index_iter *it, const struct sync_index_update *u);

/* Returns 1 and fills *ret with the next entry, 0 at the end, -EBADMSG if
 * the batch was not one msg_decode() accepted. */
int msg_index_next(struct msg_index_iter *it, struct sync_entry *ret)
	__attribute__((warn_unused_result));

/*
 * Encodes any message but INDEX_UPDATE (use the writer below) into buf.
 * Returns the length, -EMSGSIZE if it does not fit in outlen (nothing
 * useful written), -EINVAL if m is something the decoder would refuse.
 * For BLOCK_DATA, data may already sit at buf + SYNC_BLOCK_DATA_HEADER_LEN
 * (then it is not copied) or anywhere else, overlapping buf or not.
 */
int msg_encode(const struct sync_msg *m, uint8_t *buf, size_t outlen)
	__attribute__((warn_unused_result));

/*
 * Writes only the SYNC_BLOCK_DATA_HEADER_LEN bytes of a BLOCK_DATA header,
 * so the caller can read the file straight into buf + that many bytes
 * (e.g. into a frame buffer at FRAME_PAYLOAD_OFFSET): the message is then
 * buf[0 .. SYNC_BLOCK_DATA_HEADER_LEN + len). Returns
 * SYNC_BLOCK_DATA_HEADER_LEN, -EMSGSIZE if outlen cannot hold the header
 * and len data bytes, -EINVAL if len > SYNC_BLOCK_MAX or offset + len >
 * SYNC_OFFSET_MAX.
 */
int msg_block_data_header(uint8_t *buf, size_t outlen, uint32_t req_id, uint64_t offset, size_t len)
	__attribute__((warn_unused_result));

/*
 * Builds one INDEX_UPDATE in a caller buffer, entry by entry. The message
 * is capped at min(outlen, SYNC_INDEX_MSG_MAX) bytes and
 * SYNC_INDEX_ENTRIES_MAX entries.
 */
struct msg_index_writer {
	uint8_t *buf;
	size_t cap;
	size_t len;
	unsigned count;
};

/* Returns 0, or -EMSGSIZE if outlen < SYNC_INDEX_HEADER_LEN. */
int msg_index_writer_init(struct msg_index_writer *w, uint8_t *buf, size_t outlen)
	__attribute__((warn_unused_result));

/*
 * Appends e. Returns 0; -EMSGSIZE when the message is full (nothing
 * written: finish and send it, then add e to a new one; with w->count == 0
 * the buffer is too small for e at all, SYNC_INDEX_HEADER_LEN +
 * SYNC_ENTRY_LEN_MAX always suffices); -EINVAL if e is invalid.
 */
int msg_index_add(struct msg_index_writer *w, const struct sync_entry *e)
	__attribute__((warn_unused_result));

/* Completes the message. Returns its length, or -EINVAL when no entry was
 * added (an INDEX_UPDATE is never empty). */
int msg_index_finish(struct msg_index_writer *w) __attribute__((warn_unused_result));

/* "INDEX_UPDATE", ..., or "unknown" (for logs). */
const char *msg_type_name(unsigned type);

#endif
