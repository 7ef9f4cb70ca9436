/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_SYNCD_H
#define TANDEM_DAEMON_SYNCD_H

#include <sys/epoll.h>

#include "base/err.h"
#include "daemon/daemon_int.h"
#include "sync/engine.h"

/* Starts the sync engine on d->opts->dir (index in the state dir) and
 * watches its fds. Returns 0 or -errno with a sentence in err. */
int syncd_start(struct daemon *d, struct err *err) __attribute__((warn_unused_result));

/* Stops it (saving nothing more: the index is always committed). */
void syncd_stop(struct daemon *d);

#endif
