/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>

#include "base/cursor.h"
#include "sync/msg.h"
#include "sync/vv.h"

_Static_assert(VV_MAX == SYNC_VV_MAX, "version vector cap differs from the wire's");
_Static_assert(VV_DEVICE_LEN == SYNC_DEVICE_LEN, "device id length differs from the wire's");

void vv_init(struct vv *v)
{
	memset(v, 0, sizeof(*v));
}

uint64_t vv_get(const struct vv *v, const uint8_t device[static VV_DEVICE_LEN])
{
	for (unsigned i = 0; i < v->n && i < VV_MAX; i++)
		if (memcmp(v->e[i].device, device, VV_DEVICE_LEN) == 0)
			return v->e[i].counter;
	return 0;
}

int vv_is_canonical(const struct vv *v)
{
	if (v->n > VV_MAX)
		return 0;
	for (unsigned i = 0; i < v->n; i++) {
		if (v->e[i].counter == 0)
			return 0;
		if (i > 0 && memcmp(v->e[i - 1].device, v->e[i].device, VV_DEVICE_LEN) >= 0)
			return 0;
	}
	return 1;
}

int vv_bump(struct vv *v, const uint8_t device[static VV_DEVICE_LEN])
{
	unsigned i;

	if (!vv_is_canonical(v))
		return -EINVAL;
	for (i = 0; i < v->n; i++) {
		int c = memcmp(v->e[i].device, device, VV_DEVICE_LEN);

		if (c == 0) {
			if (v->e[i].counter == UINT64_MAX)
				return -EOVERFLOW;
			v->e[i].counter++;
			return 0;
		}
		if (c > 0)
			break;
	}
	if (v->n == VV_MAX)
		return -ENOSPC;
	memmove(&v->e[i + 1], &v->e[i], (v->n - i) * sizeof(v->e[0]));
	memcpy(v->e[i].device, device, VV_DEVICE_LEN);
	v->e[i].counter = 1;
	v->n++;
	return 0;
}

int vv_merge(struct vv *dst, const struct vv *src)
{
	struct vv out;
	unsigned i = 0, j = 0;

	if (!vv_is_canonical(dst) || !vv_is_canonical(src))
		return -EINVAL;
	vv_init(&out);
	while (i < dst->n || j < src->n) {
		const struct vv_entry *pick;
		int c;

		if (i == dst->n)
			c = 1;
		else if (j == src->n)
			c = -1;
		else
			c = memcmp(dst->e[i].device, src->e[j].device, VV_DEVICE_LEN);
		if (out.n == VV_MAX)
			return -ENOSPC;
		if (c < 0) {
			pick = &dst->e[i++];
		} else if (c > 0) {
			pick = &src->e[j++];
		} else {
			pick = dst->e[i].counter >= src->e[j].counter ? &dst->e[i] : &src->e[j];
			i++;
			j++;
		}
		out.e[out.n++] = *pick;
	}
	*dst = out;
	return 0;
}

/* Walks the devices of a, then those of b that a lacks; absent means 0. */
enum vv_order vv_compare(const struct vv *a, const struct vv *b)
{
	int a_ahead = 0, b_ahead = 0;
	unsigned an = a->n < VV_MAX ? a->n : VV_MAX, bn = b->n < VV_MAX ? b->n : VV_MAX;

	for (unsigned i = 0; i < an; i++) {
		uint64_t x = a->e[i].counter, y = vv_get(b, a->e[i].device);

		a_ahead |= x > y;
		b_ahead |= y > x;
	}
	for (unsigned j = 0; j < bn; j++) {
		uint64_t y = b->e[j].counter, x = vv_get(a, b->e[j].device);

		a_ahead |= x > y;
		b_ahead |= y > x;
	}
	if (a_ahead && b_ahead)
		return VV_CONCURRENT;
	if (a_ahead)
		return VV_DOMINATES;
	if (b_ahead)
		return VV_DOMINATED;
	return VV_EQUAL;
}

int vv_encode(const struct vv *v, uint8_t *buf, size_t outlen)
{
	struct wcursor w = wcursor_make(buf, outlen);
	size_t len;

	if (!vv_is_canonical(v))
		return -EINVAL;
	len = 1 + (size_t)v->n * (VV_DEVICE_LEN + 8);
	if (outlen < len)
		return -EMSGSIZE;
	wcursor_u8(&w, (uint8_t)v->n);
	for (unsigned i = 0; i < v->n; i++) {
		wcursor_put(&w, v->e[i].device, VV_DEVICE_LEN);
		wcursor_u64(&w, v->e[i].counter);
	}
	return w.bad ? -EMSGSIZE : (int)len;
}

int vv_decode(const uint8_t *buf, size_t len, struct vv *ret)
{
	struct cursor c = cursor_make(buf, len);
	struct vv v;

	vv_init(&v);
	v.n = cursor_u8(&c);
	if (c.bad || v.n > VV_MAX || len != 1 + (size_t)v.n * (VV_DEVICE_LEN + 8))
		return -EBADMSG;
	for (unsigned i = 0; i < v.n; i++) {
		cursor_copy(&c, v.e[i].device, VV_DEVICE_LEN);
		v.e[i].counter = cursor_u64(&c);
	}
	if (!cursor_done(&c) || !vv_is_canonical(&v))
		return -EBADMSG;
	*ret = v;
	return 0;
}
