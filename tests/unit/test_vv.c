/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdint.h>

#include "sync/vv.h"
#include "tap.h"

static const uint8_t A[VV_DEVICE_LEN] = {1, 1, 1, 1, 1, 1, 1, 1};
static const uint8_t B[VV_DEVICE_LEN] = {2, 0, 0, 0, 0, 0, 0, 0};
static const uint8_t C[VV_DEVICE_LEN] = {0, 0, 0, 0, 0, 0, 0, 9};

/* Sets v to the given (device, counter) pairs without canonicalizing. */
static void mk(struct vv *v, unsigned n, const uint8_t *const *dev, const uint64_t *cnt)
{
	vv_init(v);
	v->n = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		memcpy(v->e[i].device, dev[i], VV_DEVICE_LEN);
		v->e[i].counter = cnt[i];
	}
}

TEST(bump)
{
	struct vv v;

	vv_init(&v);
	CHECK_INT_EQ(vv_get(&v, A), 0);
	CHECK_INT_EQ(vv_bump(&v, A), 0);
	CHECK_INT_EQ(vv_bump(&v, A), 0);
	CHECK_INT_EQ(vv_bump(&v, C), 0); /* C sorts before A: inserted in front */
	CHECK_INT_EQ(v.n, 2);
	CHECK(memcmp(v.e[0].device, C, VV_DEVICE_LEN) == 0);
	CHECK_INT_EQ(vv_get(&v, A), 2);
	CHECK_INT_EQ(vv_get(&v, C), 1);
	CHECK_INT_EQ(vv_get(&v, B), 0);
	CHECK(vv_is_canonical(&v));

	v.e[1].counter = UINT64_MAX;
	struct vv before = v;
	CHECK_INT_EQ(vv_bump(&v, A), -EOVERFLOW);
	CHECK(memcmp(&before, &v, sizeof(v)) == 0);

	/* full vector: a new device does not fit, a known one does */
	vv_init(&v);
	for (unsigned i = 0; i < VV_MAX; i++) {
		uint8_t d[VV_DEVICE_LEN] = {0x10, (uint8_t)i};
		CHECK_INT_EQ(vv_bump(&v, d), 0);
	}
	CHECK_INT_EQ(vv_bump(&v, B), -ENOSPC);
	CHECK_INT_EQ(v.n, VV_MAX);
	uint8_t d0[VV_DEVICE_LEN] = {0x10, 0};
	CHECK_INT_EQ(vv_bump(&v, d0), 0);
	CHECK_INT_EQ(vv_get(&v, d0), 2);

	/* non-canonical input refused */
	const uint8_t *dv[] = {B, A};
	const uint64_t cv[] = {1, 1};
	mk(&v, 2, dv, cv);
	CHECK_INT_EQ(vv_bump(&v, A), -EINVAL);
}

TEST(compare)
{
	struct vv a, b;
	const uint8_t *ab[] = {A, B};

	/* empty vs empty */
	vv_init(&a);
	vv_init(&b);
	CHECK_INT_EQ(vv_compare(&a, &b), VV_EQUAL);

	/* absent means 0: {A:1} > {} */
	CHECK_INT_EQ(vv_bump(&a, A), 0);
	CHECK_INT_EQ(vv_compare(&a, &b), VV_DOMINATES);
	CHECK_INT_EQ(vv_compare(&b, &a), VV_DOMINATED);

	/* {A:1,B:1} vs {A:1}: dominates; vs {B:1}: dominates */
	mk(&a, 2, ab, (const uint64_t[]){1, 1});
	mk(&b, 1, ab, (const uint64_t[]){1});
	CHECK_INT_EQ(vv_compare(&a, &b), VV_DOMINATES);
	CHECK_INT_EQ(vv_compare(&b, &a), VV_DOMINATED);
	mk(&b, 1, (const uint8_t *[]){B}, (const uint64_t[]){1});
	CHECK_INT_EQ(vv_compare(&a, &b), VV_DOMINATES);

	/* {A:2} vs {B:1}: concurrent both ways */
	mk(&a, 1, ab, (const uint64_t[]){2});
	CHECK_INT_EQ(vv_compare(&a, &b), VV_CONCURRENT);
	CHECK_INT_EQ(vv_compare(&b, &a), VV_CONCURRENT);

	/* {A:2,B:1} vs {A:1,B:2}: concurrent */
	mk(&a, 2, ab, (const uint64_t[]){2, 1});
	mk(&b, 2, ab, (const uint64_t[]){1, 2});
	CHECK_INT_EQ(vv_compare(&a, &b), VV_CONCURRENT);

	/* equal, also with an explicit zero entry and in another order */
	mk(&b, 2, ab, (const uint64_t[]){2, 1});
	CHECK_INT_EQ(vv_compare(&a, &b), VV_EQUAL);
	mk(&b, 3, (const uint8_t *[]){B, C, A}, (const uint64_t[]){1, 0, 2});
	CHECK_INT_EQ(vv_compare(&a, &b), VV_EQUAL);
	CHECK_INT_EQ(vv_compare(&b, &a), VV_EQUAL);

	/* larger counter on one device, equal elsewhere */
	mk(&b, 2, ab, (const uint64_t[]){2, 7});
	CHECK_INT_EQ(vv_compare(&a, &b), VV_DOMINATED);
	CHECK_INT_EQ(vv_compare(&b, &a), VV_DOMINATES);

	/* a device only b has, and a larger counter only a has */
	mk(&a, 1, ab, (const uint64_t[]){3});
	mk(&b, 2, (const uint8_t *[]){A, C}, (const uint64_t[]){2, 1});
	CHECK_INT_EQ(vv_compare(&a, &b), VV_CONCURRENT);

	/* the extremes */
	mk(&a, 1, ab, (const uint64_t[]){UINT64_MAX});
	mk(&b, 1, ab, (const uint64_t[]){UINT64_MAX - 1});
	CHECK_INT_EQ(vv_compare(&a, &b), VV_DOMINATES);
}

TEST(merge)
{
	struct vv a, b, m;
	const uint8_t *abc[] = {C, A, B}; /* ascending order */

	mk(&a, 2, abc, (const uint64_t[]){5, 1});
	mk(&b, 2, (const uint8_t *[]){A, B}, (const uint64_t[]){3, 4});
	m = a;
	CHECK_INT_EQ(vv_merge(&m, &b), 0);
	CHECK_INT_EQ(m.n, 3);
	CHECK_INT_EQ(vv_get(&m, C), 5);
	CHECK_INT_EQ(vv_get(&m, A), 3);
	CHECK_INT_EQ(vv_get(&m, B), 4);
	CHECK(vv_is_canonical(&m));
	CHECK(vv_compare(&m, &a) == VV_DOMINATES && vv_compare(&m, &b) == VV_DOMINATES);

	/* merge with itself and with the empty vector changes nothing */
	struct vv e, same = m;
	CHECK_INT_EQ(vv_merge(&m, &m), 0);
	CHECK_INT_EQ(vv_compare(&m, &same), VV_EQUAL);
	vv_init(&e);
	CHECK_INT_EQ(vv_merge(&m, &e), 0);
	CHECK_INT_EQ(vv_compare(&m, &same), VV_EQUAL);
	CHECK_INT_EQ(vv_merge(&e, &m), 0);
	CHECK_INT_EQ(vv_compare(&e, &same), VV_EQUAL);

	/* merge then bump resolves a conflict: the result dominates both */
	mk(&a, 1, (const uint8_t *[]){A}, (const uint64_t[]){2});
	mk(&b, 1, (const uint8_t *[]){B}, (const uint64_t[]){1});
	m = a;
	CHECK_INT_EQ(vv_merge(&m, &b), 0);
	CHECK_INT_EQ(vv_bump(&m, A), 0);
	CHECK(vv_compare(&m, &a) == VV_DOMINATES && vv_compare(&m, &b) == VV_DOMINATES);

	/* overflow of the cap leaves dst untouched */
	vv_init(&a);
	vv_init(&b);
	for (unsigned i = 0; i < VV_MAX; i++) {
		uint8_t d[VV_DEVICE_LEN] = {0x10, (uint8_t)i};
		uint8_t d2[VV_DEVICE_LEN] = {0x20, (uint8_t)i};
		CHECK_INT_EQ(vv_bump(&a, d), 0);
		if (i < 1)
			CHECK_INT_EQ(vv_bump(&b, d2), 0);
	}
	m = a;
	CHECK_INT_EQ(vv_merge(&m, &b), -ENOSPC);
	CHECK(memcmp(&m, &a, sizeof(m)) == 0);
}

TEST(codec)
{
	struct vv v, got;
	uint8_t buf[VV_ENC_MAX + 1];
	int n;

	vv_init(&v);
	n = vv_encode(&v, buf, sizeof(buf));
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(vv_decode(buf, 1, &got), 0);
	CHECK_INT_EQ(got.n, 0);

	CHECK_INT_EQ(vv_bump(&v, A), 0);
	CHECK_INT_EQ(vv_bump(&v, B), 0);
	v.e[1].counter = 0x0102030405060708ULL;
	n = vv_encode(&v, buf, sizeof(buf));
	REQUIRE(n == 33);
	CHECK_INT_EQ(buf[0], 2);
	CHECK_INT_EQ(buf[25], 0x01);
	CHECK_INT_EQ(buf[32], 0x08);
	CHECK_INT_EQ(vv_decode(buf, (size_t)n, &got), 0);
	CHECK(vv_compare(&v, &got) == VV_EQUAL && got.n == 2);
	CHECK_INT_EQ(vv_encode(&v, buf, 32), -EMSGSIZE);

	/* every truncation and an extra byte are refused */
	for (int len = 0; len < n; len++)
		CHECK_INT_EQ(vv_decode(buf, (size_t)len, &got), -EBADMSG);
	CHECK_INT_EQ(vv_decode(buf, (size_t)n + 1, &got), -EBADMSG);

	/* zero counter, unsorted, duplicate ids, count above the cap */
	uint8_t bad[VV_ENC_MAX + 16];
	memcpy(bad, buf, (size_t)n);
	bad[32] = 0;
	bad[25] = 0;
	memset(bad + 26, 0, 6);
	CHECK_INT_EQ(vv_decode(bad, (size_t)n, &got), -EBADMSG);
	memcpy(bad, buf, (size_t)n);
	memcpy(bad + 17, A, VV_DEVICE_LEN); /* same id twice */
	CHECK_INT_EQ(vv_decode(bad, (size_t)n, &got), -EBADMSG);
	memcpy(bad + 1, B, VV_DEVICE_LEN); /* B before A: not ascending */
	CHECK_INT_EQ(vv_decode(bad, (size_t)n, &got), -EBADMSG);
	memset(bad, 0, sizeof(bad));
	bad[0] = VV_MAX + 1;
	CHECK_INT_EQ(vv_decode(bad, 1 + (VV_MAX + 1) * 16, &got), -EBADMSG);

	/* non-canonical vectors are not encoded */
	v.e[0].counter = 0;
	CHECK_INT_EQ(vv_encode(&v, buf, sizeof(buf)), -EINVAL);
}

int main(void)
{
	RUN(bump);
	RUN(compare);
	RUN(merge);
	RUN(codec);
	return tap_done();
}
