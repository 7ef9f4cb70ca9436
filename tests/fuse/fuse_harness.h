/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_FUSE_HARNESS_H
#define TANDEM_FUSE_HARNESS_H

/*
 * Shared by the C FUSE tests: skip (77) when FUSE cannot be used, a private
 * work dir with back/ and mnt/, and a watchdog parent so the mount is gone
 * and the dir removed even when the test crashes or hangs.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tfs.h"

struct harness {
	char dir[64];
	char back[96];
	char mnt[96];
	int backfd;
	struct tfs *tfs;
};

static inline void harness_skip_unless_fuse(void)
{
	char err[512];

	if (geteuid() != 0) {
		printf("1..0 # SKIP the FUSE tests mount for real and need root\n");
		exit(77);
	}
	if (tfs_check_available(NULL, err, sizeof(err)) < 0) {
		printf("1..0 # SKIP %s\n", err);
		exit(77);
	}
}

/*
 * Aborts the FUSE connection mounted at mnt through fusectl, without
 * touching the mount itself (which may hang); mounts fusectl if needed.
 */
static inline void harness_abort(const char *mnt)
{
	char line[1024], path[96];
	unsigned int maj, min;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char mp[512];

		if (sscanf(line, "%*u %*u %u:%u %*s %511s", &maj, &min, mp) == 3 &&
		    strcmp(mp, mnt) == 0) {
			int fd;

			snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort",
				 (maj << 20) | min);
			if (access("/sys/fs/fuse/connections", F_OK) == 0 &&
			    access(path, F_OK) < 0)
				(void)mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0,
					    NULL);
			fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd >= 0) {
				if (write(fd, "1", 1) != 1)
					perror("abort");
				close(fd);
			}
		}
	}
	fclose(f);
}

/*
 * Makes the work dirs, then forks: the child mounts and returns to run the
 * tests; the parent waits (timeout_s at most), cleans up and exits with the
 * child's status. Only the child returns.
 */
static inline void harness_start(struct harness *h, const char *name, int timeout_s)
{
	char err[512], cmd[128];
	pid_t pid;
	int st, r;

	snprintf(h->dir, sizeof(h->dir), "/tmp/%s-XXXXXX", name);
	if (!mkdtemp(h->dir)) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(h->back, sizeof(h->back), "%s/back", h->dir);
	snprintf(h->mnt, sizeof(h->mnt), "%s/mnt", h->dir);
	if (mkdir(h->back, 0755) < 0 || mkdir(h->mnt, 0755) < 0) {
		perror("mkdir");
		exit(1);
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		alarm((unsigned int)timeout_s);
		h->backfd = open(h->back, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = tfs_mount(h->mnt, h->backfd, NULL, NULL, &h->tfs, err, sizeof(err));
		if (r < 0) {
			printf("Bail out! tfs_mount: %s\n", err);
			exit(1);
		}
		return;
	}
	for (int waited = 0;; waited++) {
		r = (int)waitpid(pid, &st, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			break;
		if (waited == (timeout_s + 10) * 10) {
			/* a child that dies while it serves its own mount can hang in exit */
			harness_abort(h->mnt);
			kill(pid, SIGKILL);
		}
		usleep(100000);
	}
	/* Whatever happened, leave no mount and no files behind. */
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		harness_abort(h->mnt);
	(void)umount2(h->mnt, MNT_DETACH);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", h->dir);
	if (WIFSIGNALED(st)) {
		printf("# test process killed by signal %d%s\n", WTERMSIG(st),
		       WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
		exit(1);
	}
	exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

static inline void harness_end(struct harness *h)
{
	tfs_unmount(h->tfs);
	h->tfs = NULL;
	close(h->backfd);
}

#endif
