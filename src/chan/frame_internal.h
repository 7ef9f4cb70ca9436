/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_CHAN_FRAME_INTERNAL_H
#define TANDEM_CHAN_FRAME_INTERNAL_H

/*
 * The inside of the frame encoder and decoder, for frame.c and the unit
 * tests only (they move counters to the end of their range and look at
 * the decoder's buffer). Nothing else includes this.
 */

#include <stdbool.h>

#include "chan/frame.h"

#define FRAME_REASON_LEN 160

/* sodium_malloc memory. */
struct frame_enc {
	uint8_t key[FRAME_KEY_LEN];
	uint64_t counter; /* of the next frame; UINT64_MAX is never used */
};

/* sodium_malloc memory; buf is malloc'd, wiped before it is freed. */
struct frame_dec {
	uint8_t key[FRAME_KEY_LEN];
	uint64_t counter; /* expected for the next frame */
	uint8_t hdr[FRAME_HEADER_LEN];
	size_t hdr_have;
	size_t body_len; /* of the current frame, once hdr is complete */
	size_t have;	 /* body bytes in buf */
	uint8_t *buf;
	size_t cap;  /* allocated size of buf, at most FRAME_MAX_BODY */
	bool closed; /* a CLOSE was received */
	int err;
	char reason[FRAME_REASON_LEN];
};

#endif
