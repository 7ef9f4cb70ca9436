/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_DISK_H
#define TANDEM_SYNC_DISK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "sync/index.h"

/*
 * The disk operations the parts share when they change the share for the
 * peer: opening a parent directory beneath the root (creating it, refusing
 * and logging a symlink or a refused link of the peer's on the way), and
 * setting mode and mtime. No version logic (that is decide.h and apply.c).
 * Loop thread only; the engine owns it.
 */
struct disk {
	int rootfd;	    /* the share (O_PATH), the scanner's */
	struct index *idx;  /* the peer's refused links are looked up here */
	uint32_t mode_mask; /* bits cleared from every mode of the peer's */
	uint64_t refused;   /* paths refused (status "refused") */
};

/* A mode from the peer as it is applied here: within 0777, minus the mask. */
static inline uint16_t disk_peer_mode(const struct disk *d, uint32_t mode)
{
	return (uint16_t)(mode & 0777 & ~d->mode_mask);
}

/* Nanoseconds since the epoch (may be negative) as a timespec. */
static inline struct timespec disk_ns_to_ts(int64_t ns)
{
	struct timespec t = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};

	if (t.tv_nsec < 0) {
		t.tv_nsec += 1000000000;
		t.tv_sec -= 1;
	}
	return t;
}

/* Opens the directory of rel beneath the root (creating it when create);
 * *ret_name is rel's last component. Returns the fd or -errno; refusals
 * (-ELOOP, -EXDEV, -ENOTDIR) are logged and counted. */
int disk_open_parent(struct disk *d, const char *rel, bool create, const char **ret_name);

/* Removes the engine's temp files (scan_engine_tmp) directly in the
 * directory parent/name: what they hold can never be put in place once
 * that directory goes. Returns how many were removed, or -errno. */
int disk_drop_tmps(int parent, const char *name);

/* Sets mode and mtime of dirfd/name (not following a symlink; a directory
 * keeps its mtime) and stats it into *ret. 0 or -errno. */
int disk_meta_set(int dirfd, const char *name, uint8_t kind, uint16_t mode, int64_t mtime_ns,
		  struct stat *ret);

#endif
