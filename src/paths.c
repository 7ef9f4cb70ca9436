/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "paths.h"

static int join(char out[static PATH_MAX], const char *a, const char *b)
{
	int n = snprintf(out, PATH_MAX, "%s%s%s", a, b[0] ? "/" : "", b);
	return (n < 0 || n >= PATH_MAX) ? -ENAMETOOLONG : 0;
}

/* $var if set and absolute, else $HOME/fallback. */
static int xdg_dir(const char *var, const char *fallback, char out[static PATH_MAX],
		   struct err *err)
{
	const char *v = getenv(var);
	const char *home;
	char tmp[PATH_MAX];

	if (v && v[0] == '/')
		return join(out, v, "tandem");
	home = getenv("HOME");
	if (!home || home[0] != '/') {
		err_set(err,
			"cannot find a place for tandem's files: neither %s nor HOME is set to an "
			"absolute path; set one, or pass --home DIR",
			var);
		return -ENOENT;
	}
	if (join(tmp, home, fallback) < 0)
		return -ENAMETOOLONG;
	return join(out, tmp, "tandem");
}

int paths_resolve(const char *home, struct tandem_paths *ret, struct err *err)
{
	struct tandem_paths p;
	char cwd[PATH_MAX];
	int r;

	err_clear(err);
	if (home) {
		if (!home[0]) {
			err_set(err, "--home needs a directory name");
			return -EINVAL;
		}
		if (home[0] == '/') {
			r = join(p.config, home, "");
		} else {
			if (!getcwd(cwd, sizeof(cwd))) {
				r = -errno;
				err_set(err, "cannot get the current directory: %s", strerror(-r));
				return r;
			}
			char abs[PATH_MAX];
			r = join(abs, cwd, home);
			if (r >= 0)
				r = join(p.config, abs, "");
		}
		/* Strip trailing slashes for tidy messages ("/x/" -> "/x"). */
		size_t n = strlen(p.config);
		while (r >= 0 && n > 1 && p.config[n - 1] == '/')
			p.config[--n] = '\0';
		if (r >= 0)
			r = join(p.state, p.config, "state");
		if (r >= 0)
			r = join(p.runtime, p.config, "");
	} else {
		r = xdg_dir("XDG_CONFIG_HOME", ".config", p.config, err);
		if (r >= 0)
			r = xdg_dir("XDG_STATE_HOME", ".local/state", p.state, err);
		if (r >= 0) {
			const char *rt = getenv("XDG_RUNTIME_DIR");
			if (rt && rt[0] == '/')
				r = join(p.runtime, rt, "tandem");
			else
				r = join(p.runtime, p.state, "");
		}
	}
	if (r == -ENAMETOOLONG && !err_is_set(err))
		err_set(err, "the path of tandem's directory is too long");
	if (r < 0)
		return r;
	*ret = p;
	return 0;
}
