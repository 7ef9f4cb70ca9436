/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The TANDEM_TEST_* knobs (testknobs.h); built only with -Dselftest=true. */
#include <errno.h>
#include <stdlib.h>

#include "chan/frame.h"
#include "daemon/testknobs.h"
#include "base/log.h"

#if !HAVE_SELFTEST
#error "testknobs.c is built only with the selftest (meson -Dselftest=true)"
#endif

static const struct {
	const char *name;
	uint64_t min, max;
} knobs[TESTKNOB_COUNT] = {
	[TESTKNOB_HEARTBEAT_MS] = {"TANDEM_TEST_HEARTBEAT_MS", 50, 600000},
	[TESTKNOB_BACKOFF_MAX_MS] = {"TANDEM_TEST_BACKOFF_MAX_MS", 50, 600000},
	[TESTKNOB_FALLBACK_MS] = {"TANDEM_TEST_FALLBACK_MS", 10, 600000},
	[TESTKNOB_ENSURE_TIMEOUT_MS] = {"TANDEM_TEST_ENSURE_TIMEOUT_MS", 100, 600000},
	[TESTKNOB_REKEY_MS] = {"TANDEM_TEST_REKEY_MS", 100, 3600 * 1000},
	[TESTKNOB_REKEY_FRAMES] = {"TANDEM_TEST_REKEY_FRAMES", 2, FRAME_REKEY_FRAMES},
	[TESTKNOB_RATE_BPS] = {"TANDEM_TEST_RATE_BPS", 1, UINT64_MAX},
	[TESTKNOB_LAZY] = {"TANDEM_TEST_LAZY", 0, 1},
	[TESTKNOB_LAZY_EVICT_AGE_MS] = {"TANDEM_TEST_LAZY_EVICT_AGE_MS", 100, 600000},
	[TESTKNOB_RELAY_AFTER_MS] = {"TANDEM_TEST_RELAY_AFTER_MS", 100, 600000},
};

uint64_t testknob_get(enum testknob k, uint64_t def)
{
	const char *v;
	unsigned long long n;
	char *end, q[48];

	if ((unsigned)k >= TESTKNOB_COUNT)
		return def;
	v = getenv(knobs[k].name);
	if (!v || !*v)
		return def;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || v[0] < '0' || v[0] > '9' || n < knobs[k].min || n > knobs[k].max) {
		log_warn("ignoring %s=%s: not a number in %llu..%llu", knobs[k].name,
			 log_quote(v, 32, q, sizeof(q)), (unsigned long long)knobs[k].min,
			 (unsigned long long)knobs[k].max);
		return def;
	}
	return n;
}

const char *testknob_fuse_dev(void)
{
	const char *dev = getenv("TANDEM_TEST_FUSE_DEV");

	return dev && *dev ? dev : NULL;
}

const char *testknob_advertise(void)
{
	const char *adv = getenv("TANDEM_TEST_ADVERTISE");

	return adv && *adv ? adv : NULL;
}

#define CLOCK_OFFSET_MAX_S (7 * 86400) /* a week either way */

int64_t testknob_clock_offset_s(void)
{
	const char *v = getenv("TANDEM_TEST_CLOCK_OFFSET_S");
	long long n;
	char *end, q[48];

	if (!v || !*v)
		return 0;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || *end || n < -CLOCK_OFFSET_MAX_S || n > CLOCK_OFFSET_MAX_S) {
		log_warn("ignoring TANDEM_TEST_CLOCK_OFFSET_S=%s: not a number of seconds in "
			 "-%d..%d",
			 log_quote(v, 32, q, sizeof(q)), CLOCK_OFFSET_MAX_S, CLOCK_OFFSET_MAX_S);
		return 0;
	}
	log_info("TANDEM_TEST_CLOCK_OFFSET_S: the relay sees our clock %lld s off", n);
	return n;
}
