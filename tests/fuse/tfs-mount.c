/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tfs-mount: mounts a backing directory for scripts to drive.
 *
 *   tfs-mount BACKING MOUNTPOINT [INVAL_FILE]   mount; print "ready" on stdout
 *   tfs-mount --check                          tfs_check_available(); 0 or 1
 *
 * $TANDEM_TEST_FUSE_DEV, when set, is the FUSE device to check instead of
 * /dev/fuse (check.sh simulates a missing one).
 *
 * Clears a stale mount at MOUNTPOINT first. Then waits for signals:
 * SIGTERM/SIGINT unmount and exit 0; SIGUSR1 reads INVAL_FILE (one relative
 * path a line) and calls tfs_invalidate() for each, then appends "done" to
 * INVAL_FILE.done; SIGUSR2 calls tfs_invalidate_all(). Exits 1 on failure
 * with the reason on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/log.h"
#include "tfs.h"

static void do_inval(struct tfs *tfs, const char *file)
{
	char line[4096], done[4096];
	FILE *f;

	if (!file)
		return;
	f = fopen(file, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			tfs_invalidate(tfs, line);
		}
		fclose(f);
	}
	tfs_invalidate_flush(tfs);
	snprintf(done, sizeof(done), "%s.done", file);
	f = fopen(done, "ae");
	if (f) {
		fputs("done\n", f);
		fclose(f);
	}
}

int main(int argc, char **argv)
{
	char err[512];
	struct tfs *tfs;
	sigset_t set;
	int fd, r, sig;

	log_set_ident("tfs-mount");
	if (argc == 2 && strcmp(argv[1], "--check") == 0) {
		r = tfs_check_available(getenv("TANDEM_TEST_FUSE_DEV"), err, sizeof(err));
		if (r < 0) {
			printf("%s\n", err);
			return 1;
		}
		printf("ok\n");
		return 0;
	}
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: tfs-mount BACKING MOUNTPOINT [INVAL_FILE] | --check\n");
		return 2;
	}
	if (getenv("TANDEM_FUSE_DEBUG"))
		log_set_level(LOG_LVL_DEBUG);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (tfs_check_available(getenv("TANDEM_TEST_FUSE_DEV"), err, sizeof(err)) < 0 ||
	    tfs_clear_stale(argv[2], err, sizeof(err)) < 0) {
		fprintf(stderr, "tfs-mount: %s\n", err);
		return 1;
	}
	fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "tfs-mount: cannot open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	r = tfs_mount(argv[2], fd, NULL, NULL, &tfs, err, sizeof(err));
	close(fd);
	if (r < 0) {
		fprintf(stderr, "tfs-mount: %s\n", err);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGUSR1)
			do_inval(tfs, argc == 4 ? argv[3] : NULL);
		else if (sig == SIGUSR2)
			tfs_invalidate_all(tfs);
		else
			break;
	}
	tfs_unmount(tfs);
	return 0;
}
