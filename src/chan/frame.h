/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_CHAN_FRAME_H
#define TANDEM_CHAN_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Frames: what flows over the secure channel after the handshake
 * (docs/CHANNEL.md), sans-IO.
 *
 *   length (4, big-endian)  ||  ChaCha20-Poly1305-IETF(key, nonce = counter,
 *                                   AD = the 4 length bytes, type || payload)
 *
 * length counts what follows it (type byte, payload, 16-byte tag) and is
 * checked against FRAME_MAX_BODY before anything is allocated. Each
 * direction has its own key and its own 64-bit frame counter, starting at
 * 0, used as the nonce: a replayed, reordered, dropped, truncated or
 * tampered frame fails authentication, and the first failure is final.
 *
 * Rekeying: the sender marks one frame as the last under its key (the
 * FRAME_REKEY bit of the encrypted type byte), after at most
 * FRAME_REKEY_FRAMES frames or when asked (the daemon asks once an hour);
 * both sides then replace the key with BLAKE2b-32(key = old key,
 * "tandem/v1/chan/rekey\0"), wipe the old one and start the counter at 0
 * again. A frame of an earlier epoch after the switch fails authentication.
 *
 * One frame_enc per sending direction, one frame_dec per receiving
 * direction, each used by one thread at a time. Keys live in
 * sodium_malloc memory and are wiped by *_free().
 */

#define FRAME_KEY_LEN 32
#define FRAME_HEADER_LEN 4
#define FRAME_TAG_LEN 16
/* 1 MiB of file data plus room for the message header around it. */
#define FRAME_MAX_PAYLOAD ((size_t)1024 * 1024 + 4096)
#define FRAME_MIN_BODY (1 + FRAME_TAG_LEN)
#define FRAME_MAX_BODY (1 + FRAME_MAX_PAYLOAD + FRAME_TAG_LEN) /* largest length field */
#define FRAME_OVERHEAD (FRAME_HEADER_LEN + 1 + FRAME_TAG_LEN)
#define FRAME_LEN(payload_len) ((payload_len) + FRAME_OVERHEAD) /* bytes on the wire */
#define FRAME_MAX_LEN FRAME_LEN(FRAME_MAX_PAYLOAD)
/* Where the payload sits in an encoded frame: build it there to skip a copy. */
#define FRAME_PAYLOAD_OFFSET (FRAME_HEADER_LEN + 1)
#define FRAME_PING_LEN 8
#define FRAME_CLOSE_TEXT_MAX 256
/* Frames under one key before the sender moves to the next (docs/CHANNEL.md §5). */
#define FRAME_REKEY_FRAMES ((uint64_t)1 << 30)
/* Bit 7 of the type byte: the last frame under this key. */
#define FRAME_REKEY 0x80

enum frame_type {
	FRAME_DATA = 1, /* application payload, 0..FRAME_MAX_PAYLOAD bytes */
	FRAME_PING = 2, /* heartbeat: 8 opaque bytes, answered by a PONG with the same */
	FRAME_PONG = 3,
	FRAME_CLOSE = 4, /* 2-byte reason code, then 0..256 bytes of UTF-8 text; last frame */
};

/* CLOSE reason codes; receivers accept unknown ones. */
enum frame_close_code {
	FRAME_CLOSE_NORMAL = 0,	  /* shutting down */
	FRAME_CLOSE_PROTOCOL = 1, /* the peer sent something we cannot accept */
	FRAME_CLOSE_INTERNAL = 2, /* a local failure */
	FRAME_CLOSE_TIMEOUT = 3,  /* heartbeats went unanswered */
	FRAME_CLOSE_REPLACED = 4, /* a newer connection to the same peer replaces this one */
};

/* One decoded frame. payload points into the decoder and stays valid until
 * the next frame_dec_feed() or frame_dec_free() on it. */
struct frame {
	enum frame_type type;
	uint64_t seq;		/* the frame counter it was sent under (per key) */
	uint64_t epoch;		/* the key it was sent under: 0 from the handshake, +1 per rekey */
	bool rekey;		/* the last frame under that key: the decoder moved to the next */
	const uint8_t *payload; /* DATA: the data; CLOSE: the text (untrusted, not
				 * NUL-terminated); PING/PONG: the 8 bytes */
	size_t len;
	uint64_t ping;	     /* PING/PONG: the 8 bytes, big-endian */
	uint16_t close_code; /* CLOSE */
};

struct frame_enc;
struct frame_dec;

/* New encoder/decoder for one direction with a key from hs_split(). The
 * key is copied. Return 0 or -ENOMEM. */
int frame_enc_new(const uint8_t key[static FRAME_KEY_LEN], struct frame_enc **ret)
	__attribute__((warn_unused_result));
int frame_dec_new(const uint8_t key[static FRAME_KEY_LEN], struct frame_dec **ret)
	__attribute__((warn_unused_result));

/* Wipe the key (and any buffered plaintext) and free. NULL is a no-op. */
void frame_enc_free(struct frame_enc *enc);
void frame_dec_free(struct frame_dec *dec);

/* Gives the body buffer back (wiped) when no frame is half read; the next
 * frame allocates it again. For idle connections: it grows to the largest
 * frame seen (1 MiB with file blocks) and stays otherwise. Returns whether
 * there was a buffer to give back. NULL is a no-op. */
bool frame_dec_trim(struct frame_dec *dec);

/*
 * Encodes one frame into out and advances the send counter. payload may
 * overlap out (build it at out + FRAME_PAYLOAD_OFFSET to avoid a copy).
 * Returns the frame's length, FRAME_LEN(len); or, leaving the counter
 * alone: -EMSGSIZE (len > FRAME_MAX_PAYLOAD, or outlen too small), -EINVAL
 * (unknown type, or a payload of the wrong shape for it), -EOVERFLOW (the
 * counter would wrap: 2^64 - 1 frames were sent under this key; close the
 * connection and make a new one), -EIO (the cipher library failed, or the
 * next key could not be installed: the encoder is unusable, close).
 * After a frame that ends its key, the encoder has switched to the next.
 */
int frame_enc_write(struct frame_enc *enc, enum frame_type type, const uint8_t *payload, size_t len,
		    uint8_t *out, size_t outlen) __attribute__((warn_unused_result));

/* PING or PONG carrying value. Returns as frame_enc_write(). */
int frame_enc_write_ping(struct frame_enc *enc, enum frame_type type, uint64_t value, uint8_t *out,
			 size_t outlen) __attribute__((warn_unused_result));

/* CLOSE with a reason code and text (NULL for none; at most
 * FRAME_CLOSE_TEXT_MAX bytes). Returns as frame_enc_write(). */
int frame_enc_write_close(struct frame_enc *enc, uint16_t code, const char *text, uint8_t *out,
			  size_t outlen) __attribute__((warn_unused_result));

/* At most frames (>= 1) frames under one key; FRAME_REKEY_FRAMES unless
 * set. Lower values are for tests. */
void frame_enc_set_rekey_frames(struct frame_enc *enc, uint64_t frames);

/* The next frame written is the last under the current key (the daemon's
 * hourly rekey; write a PING to carry it at once). */
void frame_enc_rekey(struct frame_enc *enc);

/* How many times the key was replaced: the epoch of the next frame sent,
 * or expected. */
uint64_t frame_enc_epoch(const struct frame_enc *enc);
uint64_t frame_dec_epoch(const struct frame_dec *dec);

/*
 * Feeds bytes received from the peer, in any slicing. Consumes input up to
 * the end of at most one frame and sets *ret_used to the bytes consumed;
 * call again with the rest. Returns 1 and fills *ret_frame when a frame is
 * complete, 0 when all len bytes were consumed without completing one, or
 * a final error (every later call returns it; frame_dec_reason() says why):
 *   -EMSGSIZE   the length field exceeds FRAME_MAX_BODY (seen after 4 bytes,
 *               before any allocation)
 *   -EBADMSG    a frame failed authentication (tampered, replayed, reordered,
 *               dropped, wrong key), is too short, has an unknown type or a
 *               malformed payload, or follows a CLOSE
 *   -EOVERFLOW  the receive counter is exhausted
 *   -EIO        the next key could not be installed
 *   -ENOMEM
 * Never buffers more than one frame (FRAME_MAX_BODY bytes). Nothing is
 * handed out before it is authenticated.
 */
int frame_dec_feed(struct frame_dec *dec, const uint8_t *data, size_t len, size_t *ret_used,
		   struct frame *ret_frame) __attribute__((warn_unused_result));

/*
 * Reading the rest of a frame's body straight into the decoder, without
 * the copy that frame_dec_feed makes of it: while a body is half in,
 * frame_dec_body_room returns where its next bytes go and sets *ret_len
 * to how many are missing (NULL otherwise, or after an error: feed as
 * usual). After reading n (1 .. *ret_len) bytes there, frame_dec_body_add
 * takes them: it returns what frame_dec_feed would have (1 with a frame,
 * 0 when more is missing, or the final error).
 */
uint8_t *frame_dec_body_room(struct frame_dec *dec, size_t *ret_len);
int frame_dec_body_add(struct frame_dec *dec, size_t n, struct frame *ret_frame)
	__attribute__((warn_unused_result));

/* Bytes of an incomplete frame held (non-zero at EOF: the peer hung up
 * mid-frame). */
size_t frame_dec_pending(const struct frame_dec *dec);

/* Why the decoder failed ("" while it has not). Owned by dec. */
const char *frame_dec_reason(const struct frame_dec *dec);

#endif
