/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `tandem up --mount DIR -o OPTIONS`: which FUSE mount options pass
 * (mountopt.h). The list is closed on purpose: libfuse's low-level
 * options (clone_fd, max_idle_threads, writeback_cache ...) belong to
 * fuse/, and an option we do not know could change what the mount
 * promises (docs/FUSE.md "Mount options").
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "daemon/mountopt.h"

#define MOUNTOPT_NAME_MAX 32

static const char *const passed[] = {
	"allow_other", "allow_root", "ro",	  "rw",		"default_permissions",
	"atime",       "noatime",    "relatime",  "strictatime", "nodiratime",
	"exec",	       "noexec",     "nosuid",	  "nodev",	"sync",
	"async",       "dirsync",
};

/* refused, with the reason */
static const struct {
	const char *name;
	const char *why;
} refused[] = {
	{"suid", "tandem mounts are nosuid: a setuid bit from the share must not run as its owner"},
	{"dev", "tandem mounts are nodev: device nodes on the mount are local entries, not "
		"devices to open"},
	{"fsname", "tandem names its mounts fsname=tandem,subtype=tandem (fuse.tandem)"},
	{"subtype", "tandem names its mounts fsname=tandem,subtype=tandem (fuse.tandem)"},
	{"auto_unmount", "tandem unmounts itself ('tandem down', SIGTERM) and the next "
			 "'tandem up' clears a mount left by a crash"},
};

/* pairs that contradict each other */
static const char *const conflicts[][2] = {
	{"ro", "rw"},	  {"allow_other", "allow_root"}, {"exec", "noexec"},
	{"sync", "async"}, {"atime", "noatime"},
};

bool mountopt_has(const char *buf, const char *name)
{
	size_t n = strlen(name);
	const char *p = buf;

	while (*p) {
		const char *e = strchrnul(p, ',');

		if ((size_t)(e - p) == n && memcmp(p, name, n) == 0)
			return true;
		p = *e ? e + 1 : e;
	}
	return false;
}

static int check_one(const char *opt, size_t n, const char *list, struct err *err)
{
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		size_t k = strlen(refused[i].name);

		if (n >= k && memcmp(opt, refused[i].name, k) == 0 && (n == k || opt[k] == '=')) {
			err_set(err, "mount option '%.*s' is not allowed: %s", (int)n, opt,
				refused[i].why);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < sizeof(passed) / sizeof(passed[0]); i++)
		if (strlen(passed[i]) == n && memcmp(opt, passed[i], n) == 0)
			return 0;
	if (n == 0) {
		err_set(err, "empty mount option in '%.64s'; give a comma list like "
			     "'-o allow_other,ro'", list);
		return -EINVAL;
	}
	err_set(err,
		"unknown mount option '%.*s'; tandem passes allow_other, allow_root, ro, rw, "
		"default_permissions (always on), atime, noatime, relatime, strictatime, "
		"nodiratime, exec, noexec, nosuid, nodev, sync, async and dirsync",
		(int)(n > MOUNTOPT_NAME_MAX ? MOUNTOPT_NAME_MAX : n), opt);
	return -EINVAL;
}

int mountopt_add(char buf[static MOUNTOPT_MAX], const char *list, struct err *err)
{
	char out[MOUNTOPT_MAX];
	const char *p = list;
	size_t len;

	len = strlen(buf);
	memcpy(out, buf, len + 1);
	for (;;) {
		const char *e = strchrnul(p, ',');
		size_t n = (size_t)(e - p);
		char name[MOUNTOPT_NAME_MAX];
		int r = check_one(p, n, list, err);

		if (r < 0)
			return r;
		memcpy(name, p, n); /* a known name: shorter than the cap */
		name[n] = '\0';
		for (size_t i = 0; i < sizeof(conflicts) / sizeof(conflicts[0]); i++) {
			for (int j = 0; j < 2; j++) {
				if (strcmp(name, conflicts[i][j]) != 0 ||
				    !mountopt_has(out, conflicts[i][!j]))
					continue;
				err_set(err, "mount options '%s' and '%s' contradict each other; "
					     "keep one",
					conflicts[i][!j], name);
				return -EINVAL;
			}
		}
		if (strcmp(name, "default_permissions") != 0 && !mountopt_has(out, name)) {
			/* every known name once fits: the cap holds them all */
			if (len)
				out[len++] = ',';
			memcpy(out + len, name, n + 1);
			len += n;
		}
		if (!*e)
			break;
		p = e + 1;
	}
	memcpy(buf, out, len + 1);
	return 0;
}
