/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ST_FUSE_H
#define TANDEM_ST_FUSE_H

#include <stdbool.h>

#include "selftest.h"

struct st_pair;

/*
 * The FUSE peer in the selftest (suite "fuse", and side a of every sync
 * pair when FUSE is usable). A FUSE scenario starts with st_fuse_need():
 * with --no-fuse, or when this machine cannot mount, it skips with the
 * reason, and under --require-fuse that is a failure instead.
 */

/* NULL when this tandem can mount here and --no-fuse was not given, else
 * why not (a sentence). */
const char *st_fuse_unusable(void);
/* 0 when FUSE is usable; else ST_SKIP (reason set) or ST_FAIL (--require-fuse). */
int st_fuse_need(struct st_env *env);
/* st_fuse_need, then a pair started and idle whose side a is the mount:
 * 0, or the scenario's result (p zeroed when nothing started; else clean
 * it up with st_pair_cleanup). */
int st_fuse_pair(struct st_env *env, struct st_pair *p);
/* Runs script (sh, set -eu) with M (side a, the mount), B (side b) and W
 * (work, outside both) set; a non-zero exit fails the scenario, noting
 * what, the script and its output. Returns whether it exited 0. */
bool st_fuse_sh(struct st_env *env, const struct st_pair *p, const char *work,
		const char *script, const char *what);

/* Whether path is a mount point in /proc/self/mounts. */
bool st_mounted(const char *path);
/* Detaches a mount at path (a crashed daemon's). Returns 0 or -errno. */
int st_unmount_lazy(const char *path);
/* Mount points under prefix still in the mount table: detaches each and
 * returns how many there were. */
int st_mounts_clear_under(const char *prefix);

/* The scenarios (st_scenarios.c registers them). */
int st_fuse_reads(struct st_env *env);
int st_fuse_offline(struct st_env *env);
int st_fuse_replaced(struct st_env *env);
int st_fuse_cold_copy(struct st_env *env);
int st_fuse_append_slow(struct st_env *env);
int st_fuse_unread_meta(struct st_env *env);
int st_fuse_writers(struct st_env *env);
int st_fuse_stale(struct st_env *env);
int st_fuse_signals(struct st_env *env);
int st_fuse_cli(struct st_env *env);
int st_fuse_special(struct st_env *env);
int st_fuse_hardlink(struct st_env *env);
int st_fuse_ro(struct st_env *env);
/* st_fuse_cache.c */
int st_fuse_cache_max(struct st_env *env);
int st_fuse_slow_writer(struct st_env *env);
int st_fuse_down_reading(struct st_env *env);
int st_fuse_prog_cp(struct st_env *env);
int st_fuse_prog_tar(struct st_env *env);
int st_fuse_prog_rsync(struct st_env *env);
int st_fuse_prog_git(struct st_env *env);
int st_fuse_prog_sqlite(struct st_env *env);
int st_fuse_prog_make(struct st_env *env);
int st_fuse_prog_editor(struct st_env *env);

#endif
