/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ST_HOSTILE_H
#define TANDEM_ST_HOSTILE_H

#include "selftest.h"

/*
 * Scenarios where a fake peer (st_fakepeer.h) speaks the protocol to a
 * real daemon and says what a hostile peer would; registered in
 * st_scenarios.c.
 */

/* Bad HELLOs, data before HELLO: each connection is closed and logged. */
int st_hostile_hello(struct st_env *env);

/* Issue #4 point 7: hostile paths and symlinks never reach outside the share. */
int st_hostile_paths(struct st_env *env);

/* Issue #10 point 5: 2,100 INDEX_UPDATEs and no INDEX_DONE; peak RSS stays under 64 MiB. */
int st_hostile_index_flood(struct st_env *env);

/* Issue #10 point 1: huge file sizes are refused by a lazy and a mount daemon
 * (st_hostile_size.c). */
int st_hostile_huge_size(struct st_env *env);

/* Issue 10 point 6: a peer's names with a newline and an ESC are escaped in
 * the log and in `tandem status`. */
int st_hostile_names(struct st_env *env);

/* Point 7: the peer's modes get this side's umask, and stay stable. */
int st_peer_modes(struct st_env *env);

/* Point 8: symlinks out of the share are not made unless --symlinks=all. */
int st_hostile_symlinks(struct st_env *env);

#endif
