/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_CONF_H
#define TANDEM_DAEMON_CONF_H

#include <stddef.h>

#include "base/err.h"

/*
 * tandem.conf in the config dir: the defaults of `tandem up`, one
 * "key = value" per line; blank lines and lines starting with '#' are
 * ignored; keys: peer, relay, dir, mount, listen, symlinks, cache-max, relay-data,
 * mount-options (flags on the command line win; cache-max is checked here with
 * size_parse, mount-options with mountopt_add). A relative dir or mount is taken
 * relative to the config dir. Unknown keys, keys
 * set twice and malformed lines are errors that name file:line.
 */

#define CONF_FILE "tandem.conf"
#define CONF_MAX_BYTES 65536
#define CONF_LINE_MAX 1024

struct conf {
	char *peer; /* malloc'd, or NULL when not set */
	char *relay;
	char *dir;
	char *listen;
	char *mount;
	char *symlinks; /* "inside" or "all", checked by `up` */
	char *cache_max; /* a valid size (size.h) */
	char *relay_data; /* "never", "fallback" or "always", checked by `up` */
	char *mount_options; /* FUSE options for the mount, checked (mountopt.h) */
	int line[9];	 /* where each was set, 0 when not */
};

/*
 * Parses the text of a config file; name is used in messages. Returns 0,
 * or -EINVAL with "name:line: ..." in err. On failure *ret is left empty.
 */
int conf_parse(const char *name, const char *text, size_t len, struct conf *ret, struct err *err)
	__attribute__((warn_unused_result));

/*
 * Reads config_dir/tandem.conf. A missing file gives an empty conf and 0.
 * Returns -EINVAL (malformed, err says where), -EFBIG, or another -errno
 * (err says what failed).
 */
int conf_load(const char *config_dir, struct conf *ret, struct err *err)
	__attribute__((warn_unused_result));

/* Frees the strings; the conf is empty afterwards. */
void conf_done(struct conf *c);

#endif
