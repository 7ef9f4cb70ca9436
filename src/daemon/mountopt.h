/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_MOUNTOPT_H
#define TANDEM_DAEMON_MOUNTOPT_H

#include <stdbool.h>

#include "base/err.h"

/*
 * The FUSE options of `tandem up --mount DIR -o OPTIONS` (repeatable) and
 * of `mount-options =` in tandem.conf, as sshfs takes them: a comma list.
 * The usual mount options pass through to the kernel (allow_other,
 * allow_root, ro, rw, noatime, noexec, nosuid, nodev, sync, dirsync ...,
 * docs/FUSE.md "Mount options"); options that would undo what tandem
 * relies on (suid, dev, fsname=, subtype=, auto_unmount) and every unknown
 * one are refused with the reason. Pure: no libfuse here.
 */

#define MOUNTOPT_MAX 256 /* the accepted options, comma separated, with the NUL */

/*
 * Checks list and appends its options to buf (a NUL-terminated comma
 * list, "" at first), each once. Returns 0, or -EINVAL with a sentence in
 * err naming the option and buf untouched.
 */
int mountopt_add(char buf[static MOUNTOPT_MAX], const char *list, struct err *err)
	__attribute__((warn_unused_result));

/* Whether the comma list buf holds the option name. */
bool mountopt_has(const char *buf, const char *name);

#endif
