/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_TESTKNOBS_H
#define TANDEM_DAEMON_TESTKNOBS_H

#include <stdint.h>

#include "config.h"

/*
 * The selftest's knobs: TANDEM_TEST_* environment variables that shorten
 * the daemon's timers, cap its sending rate, put a --dir daemon in lazy
 * mode or point the FUSE check at another device (docs/DAEMON.md, "Test
 * knobs"). They exist only in builds with the selftest (meson -Dselftest,
 * HAVE_SELFTEST); without it every knob gives the product's default and
 * no TANDEM_TEST_ name is compiled in. This header and testknobs.c are the
 * only places that know the names. Anything a user needs is a real option
 * instead (e.g. `up --cache-max`).
 */

enum testknob {
	TESTKNOB_HEARTBEAT_MS,	    /* PING interval */
	TESTKNOB_BACKOFF_MAX_MS,    /* longest reconnect/lookup backoff */
	TESTKNOB_FALLBACK_MS,	    /* the non-designated side's wait before it dials */
	TESTKNOB_ENSURE_TIMEOUT_MS, /* the mount's ensure timeout */
	TESTKNOB_REKEY_MS,	    /* the longest a send key lives */
	TESTKNOB_REKEY_FRAMES,	    /* frames under one send key */
	TESTKNOB_RATE_BPS,	    /* cap on the file data served, bytes/s (0: none) */
	TESTKNOB_LAZY,		    /* 1: a --dir daemon in lazy mode */
	TESTKNOB_LAZY_EVICT_AGE_MS, /* a file ensured this recently is not emptied */
	TESTKNOB_RELAY_AFTER_MS,    /* no direct connection this long: relayed */
	TESTKNOB_COUNT,
};

#if HAVE_SELFTEST
/*
 * The value of knob k from the environment, or def when it is unset or
 * not a number in the knob's range (then with a warning). Any thread.
 */
uint64_t testknob_get(enum testknob k, uint64_t def);
/* The FUSE device to check instead of /dev/fuse, or NULL. */
const char *testknob_fuse_dev(void);
/* The one ADDR:PORT to publish instead of the listen addresses (the
 * selftest's fault proxy), or NULL. */
const char *testknob_advertise(void);
/* TANDEM_TEST_CLOCK_OFFSET_S: seconds this daemon's wall clock is off for
 * the relay (buckets, record timestamps), -604800..604800; 0 when unset
 * or out of range (then with a warning). */
int64_t testknob_clock_offset_s(void);
#else
static inline uint64_t testknob_get(enum testknob k, uint64_t def)
{
	(void)k;
	return def;
}

static inline const char *testknob_fuse_dev(void)
{
	return NULL;
}

static inline const char *testknob_advertise(void)
{
	return NULL;
}

static inline int64_t testknob_clock_offset_s(void)
{
	return 0;
}
#endif

#endif
