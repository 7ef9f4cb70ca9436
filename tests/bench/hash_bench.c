/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hash throughput of src/sync/blocks.c: the file hash (block hashes plus
 * the list) of a 1 GiB buffer, fed in BLOCKS_SIZE chunks, and of a 1 GiB
 * file through blocks_hash_fd() (page cache warm). Prints MB/s; never
 * asserts anything.
 *   hash_bench [MiB]    (default 1024)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, when built by hand */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "sync/blocks.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
	size_t n = mib * 1024 * 1024;
	uint8_t h[BLOCKS_HASH_LEN];
	struct blocks_hasher hs;
	uint8_t *buf;
	double t;
	int fd;

	if (sodium_init() < 0 || n == 0)
		return 1;
	buf = malloc(n);
	if (!buf)
		return 1;
	randombytes_buf(buf, n);

	t = now();
	blocks_hasher_init(&hs, NULL, NULL);
	for (size_t off = 0; off < n; off += BLOCKS_SIZE)
		if (blocks_hasher_update(&hs, buf + off,
					 n - off < BLOCKS_SIZE ? n - off : BLOCKS_SIZE))
			return 1;
	if (blocks_hasher_final(&hs, h))
		return 1;
	t = now() - t;
	printf("blocks_hasher  %6zu MiB  %8.1f MB/s\n", mib, (double)n / t / 1e6);

	fd = memfd_create("hash-bench", MFD_CLOEXEC);
	if (fd < 0 || write(fd, buf, n) != (ssize_t)n)
		return 1;
	t = now();
	if (blocks_hash_fd(fd, NULL, NULL, h, NULL))
		return 1;
	t = now() - t;
	printf("blocks_hash_fd %6zu MiB  %8.1f MB/s  (memfd)\n", mib, (double)n / t / 1e6);
	close(fd);
	free(buf);
	return 0;
}
