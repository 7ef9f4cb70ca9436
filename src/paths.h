/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_PATHS_H
#define TANDEM_PATHS_H

#include <limits.h>

#include "base/err.h"

/*
 * Where a peer keeps things. With --home DIR everything lives under DIR
 * (config and identity in DIR, state in DIR/state, the control socket in
 * DIR), so several peers can run on one machine. Otherwise the XDG base
 * directories: $XDG_CONFIG_HOME/tandem, $XDG_STATE_HOME/tandem and
 * $XDG_RUNTIME_DIR/tandem (falling back to the state dir).
 */

struct tandem_paths {
	char config[PATH_MAX];
	char state[PATH_MAX];
	char runtime[PATH_MAX];
};

/* Fills *ret. Relative --home is made absolute. Returns 0, or -errno with a
 * sentence in err (e.g. neither HOME nor XDG_CONFIG_HOME set). */
int paths_resolve(const char *home, struct tandem_paths *ret, struct err *err)
	__attribute__((warn_unused_result));

#endif
