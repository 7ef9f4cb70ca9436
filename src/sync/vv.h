/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_VV_H
#define TANDEM_SYNC_VV_H

#include <stddef.h>
#include <stdint.h>

/*
 * Version vectors: which change of each device an entry's state includes.
 * A vector is a short list of (device id, counter); a device that is not
 * listed counts as 0, so {A:1} and {A:1, B:0} are the same vector.
 *
 * Canonical form (what vv_bump/vv_merge produce and vv_decode accepts):
 * at most VV_MAX entries, device ids strictly ascending (memcmp order),
 * every counter > 0. vv_compare and vv_get accept any vector whose device
 * ids are distinct, sorted or not.
 *
 * Byte form (the index stores it; the decoder is fuzzed): one count byte
 * n (0..VV_MAX), then n times the 8-byte device id and the counter as
 * 8 bytes big-endian. Decoding consumes everything and refuses anything
 * non-canonical, so encode(decode(b)) == b.
 *
 * All functions are pure (no I/O, no globals) and safe from any thread.
 */

#define VV_DEVICE_LEN 8
#define VV_MAX 8 /* entries; = SYNC_VV_MAX on the wire */
#define VV_ENC_MAX (1 + VV_MAX * (VV_DEVICE_LEN + 8))

struct vv_entry {
	uint8_t device[VV_DEVICE_LEN];
	uint64_t counter;
};

struct vv {
	uint8_t n; /* 0..VV_MAX */
	struct vv_entry e[VV_MAX];
};

enum vv_order {
	VV_EQUAL = 0,	   /* same history */
	VV_DOMINATES = 1,  /* a has seen everything b has, and more */
	VV_DOMINATED = 2,  /* b has seen everything a has, and more */
	VV_CONCURRENT = 3, /* each has a change the other lacks: a conflict */
};

/* The empty vector (every counter 0). */
void vv_init(struct vv *v);

/* The counter of device in v, 0 when it is not listed. */
uint64_t vv_get(const struct vv *v, const uint8_t device[static VV_DEVICE_LEN]);

/*
 * Records a local change made by device: its counter goes up by one (the
 * entry is added, in order, when missing). Returns 0; -ENOSPC when v is
 * full and device is not in it; -EOVERFLOW when the counter is at its
 * maximum; -EINVAL when v is not canonical. v is untouched on failure.
 */
int vv_bump(struct vv *v, const uint8_t device[static VV_DEVICE_LEN])
	__attribute__((warn_unused_result));

/*
 * dst = the element-wise maximum of dst and src (the smallest vector that
 * dominates or equals both). Returns 0; -ENOSPC when the union has more
 * than VV_MAX devices; -EINVAL when either is not canonical. dst is
 * untouched on failure. dst and src may be the same.
 */
int vv_merge(struct vv *dst, const struct vv *src) __attribute__((warn_unused_result));

/* How a relates to b (absent devices are 0). */
enum vv_order vv_compare(const struct vv *a, const struct vv *b);

/* Returns 1 when v is canonical, 0 otherwise. */
int vv_is_canonical(const struct vv *v);

/*
 * Writes v in byte form into buf. Returns the length (1 + 16 * n);
 * -EMSGSIZE when outlen is too small (VV_ENC_MAX always suffices);
 * -EINVAL when v is not canonical.
 */
int vv_encode(const struct vv *v, uint8_t *buf, size_t outlen) __attribute__((warn_unused_result));

/*
 * Reads a byte-form vector that must fill exactly len bytes. Returns 0 and
 * fills *ret, or -EBADMSG (wrong length, count above VV_MAX, ids not
 * strictly ascending, a zero counter); *ret is untouched on failure.
 */
int vv_decode(const uint8_t *buf, size_t len, struct vv *ret) __attribute__((warn_unused_result));

#endif
