/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fuzzes the version-vector decoder with oracles: what decodes is
 * canonical, re-encodes to the same bytes, compares EQUAL to itself, and
 * merge/bump/compare on it keep their laws. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sync/vv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vv a, b, m;
	uint8_t out[VV_ENC_MAX];
	size_t half = size / 2;
	int n, ra, rb;

	ra = vv_decode(data, size, &a);
	if (ra == 0) {
		if (!vv_is_canonical(&a))
			abort();
		n = vv_encode(&a, out, sizeof(out));
		if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
			abort();
		if (vv_compare(&a, &a) != VV_EQUAL)
			abort();
	}
	/* Split the input into two vectors and check merge/compare laws. */
	ra = vv_decode(data, half, &a);
	rb = vv_decode(data + half, size - half, &b);
	if (ra < 0 || rb < 0)
		return 0;
	enum vv_order ab = vv_compare(&a, &b), ba = vv_compare(&b, &a);
	if ((ab == VV_DOMINATES) != (ba == VV_DOMINATED) || (ab == VV_EQUAL) != (ba == VV_EQUAL) ||
	    (ab == VV_CONCURRENT) != (ba == VV_CONCURRENT))
		abort();
	m = a;
	if (vv_merge(&m, &b) == 0) {
		enum vv_order ma = vv_compare(&m, &a), mb = vv_compare(&m, &b);
		if (!vv_is_canonical(&m) || (ma != VV_DOMINATES && ma != VV_EQUAL) ||
		    (mb != VV_DOMINATES && mb != VV_EQUAL))
			abort();
		if (vv_bump(&m, a.n ? a.e[0].device : (const uint8_t *)"bumper!!") == 0 &&
		    (vv_compare(&m, &a) != VV_DOMINATES || vv_compare(&m, &b) != VV_DOMINATES))
			abort();
	}
	return 0;
}
