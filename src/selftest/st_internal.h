/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ST_INTERNAL_H
#define TANDEM_ST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "selftest.h"

/* Shared between the selftest's own files; not for scenarios. */

enum st_fuse_mode {
	ST_FUSE_AUTO,
	ST_FUSE_OFF,
	ST_FUSE_REQUIRED,
};
extern enum st_fuse_mode st_fuse_mode;

void st_children_add(pid_t pid);
void st_children_del(pid_t pid);

/* True when the in-process relay's log holds these bytes. */
bool st_logs_contain(const void *needle, size_t len);
size_t st_logs_size(void);

int st_relay_start(struct st_env *env);
void st_relay_stop(struct st_env *env);

#endif
