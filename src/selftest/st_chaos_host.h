/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ST_CHAOS_HOST_H
#define TANDEM_ST_CHAOS_HOST_H

#include "selftest.h"

/*
 * The chaos suite's faults off the network (st_chaos_host.c): a daemon killed
 * mid-transfer, the relay restarted, the receiver's disk full, the sender's
 * file changing while it is sent, one peer's clock an hour ahead. Each in
 * two pairings: two plain directories (_dir) and, where FUSE can be used,
 * a mount and a directory (_mount; skipped otherwise).
 */
int st_chaos_kill_dir(struct st_env *env);
int st_chaos_kill_mount(struct st_env *env);
int st_chaos_relay_restart_dir(struct st_env *env);
int st_chaos_relay_restart_mount(struct st_env *env);
int st_chaos_disk_full_dir(struct st_env *env);
int st_chaos_disk_full_mount(struct st_env *env);
int st_chaos_changing_file_dir(struct st_env *env);
int st_chaos_changing_file_mount(struct st_env *env);
int st_chaos_clock_skew_dir(struct st_env *env);
int st_chaos_clock_skew_mount(struct st_env *env);

/* The same in suite chaos-big (slow): with a file of ST_CHAOS_HUGE_SIZE
 * (st_sync.h) in the workload. */
int st_chaos_big_kill_dir(struct st_env *env);
int st_chaos_big_kill_mount(struct st_env *env);
int st_chaos_big_relay_restart_dir(struct st_env *env);
int st_chaos_big_relay_restart_mount(struct st_env *env);
int st_chaos_big_disk_full_dir(struct st_env *env);
int st_chaos_big_disk_full_mount(struct st_env *env);
int st_chaos_big_changing_file_dir(struct st_env *env);
int st_chaos_big_changing_file_mount(struct st_env *env);
int st_chaos_big_clock_skew_dir(struct st_env *env);
int st_chaos_big_clock_skew_mount(struct st_env *env);

#endif
