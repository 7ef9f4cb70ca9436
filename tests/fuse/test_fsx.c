/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsx-style: a long seeded random mix of write, truncate, read, mmap read
 * and mmap write on one file through the mount, every read checked against
 * an in-memory model; at the end the backing file must equal the model.
 *
 *   test-fuse-fsx [SEED [OPS]]     (TANDEM_FSX_SEED also sets the seed)
 */
#include <inttypes.h>
#include <sys/mman.h>
#include <time.h>

#include "fuse_harness.h"

#define FSX_MAXLEN (1 << 20)
#define FSX_MAXOP (64 << 10)

static struct harness h;
static unsigned char model[FSX_MAXLEN], buf[FSX_MAXLEN];
static size_t model_len;
static uint64_t rng;

static uint64_t next(void)
{
	/* xorshift64*: deterministic across machines */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

static size_t rnd(size_t n)
{
	return n ? (size_t)(next() % n) : 0;
}

static int fail(unsigned long op, const char *what, size_t off, size_t len)
{
	printf("not ok 1 - fsx: op %lu: %s at %zu len %zu (file length %zu)\n", op, what, off, len,
	       model_len);
	return 1;
}

static int check_range(unsigned long op, const char *what, const unsigned char *got, size_t off,
		       size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (got[i] != model[off + i]) {
			printf("# byte %zu: got 0x%02x, want 0x%02x\n", off + i, got[i],
			       model[off + i]);
			return fail(op, what, off, len);
		}
	return 0;
}

static int run(int fd, unsigned long nops)
{
	long page = sysconf(_SC_PAGESIZE);

	for (unsigned long op = 0; op < nops; op++) {
		size_t off, len;
		unsigned int kind = (unsigned int)rnd(100);

		if (kind < 30) { /* write, sometimes beyond the end (a hole) */
			off = rnd(model_len + FSX_MAXOP);
			if (off >= FSX_MAXLEN)
				off = FSX_MAXLEN - 1;
			len = 1 + rnd(FSX_MAXOP);
			if (off + len > FSX_MAXLEN)
				len = FSX_MAXLEN - off;
			for (size_t i = 0; i < len; i++)
				buf[i] = (unsigned char)next();
			if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
				return fail(op, "pwrite", off, len);
			if (off > model_len)
				memset(model + model_len, 0, off - model_len);
			memcpy(model + off, buf, len);
			if (off + len > model_len)
				model_len = off + len;
		} else if (kind < 40) { /* truncate up or down */
			size_t nl = rnd(FSX_MAXLEN);

			if (ftruncate(fd, (off_t)nl) < 0)
				return fail(op, "ftruncate", nl, 0);
			if (nl > model_len)
				memset(model + model_len, 0, nl - model_len);
			model_len = nl;
		} else if (kind < 70) { /* read */
			off = rnd(model_len + 1);
			len = rnd(FSX_MAXOP);
			ssize_t n = pread(fd, buf, len, (off_t)off);
			size_t want = off + len > model_len ? model_len - off : len;

			if (n != (ssize_t)want) {
				printf("# pread returned %zd, want %zu\n", n, want);
				return fail(op, "pread length", off, len);
			}
			if (check_range(op, "pread data", buf, off, want))
				return 1;
		} else if (kind < 85) { /* mmap read */
			if (model_len == 0)
				continue;
			off = rnd(model_len);
			len = 1 + rnd(model_len - off);
			size_t pg = off - off % (size_t)page;
			unsigned char *p = mmap(NULL, len + off - pg, PROT_READ, MAP_SHARED, fd,
						(off_t)pg);

			if (p == MAP_FAILED)
				return fail(op, "mmap read", off, len);
			int r = check_range(op, "mmap read data", p + (off - pg), off, len);
			munmap(p, len + off - pg);
			if (r)
				return 1;
		} else { /* mmap write, then msync */
			if (model_len == 0)
				continue;
			off = rnd(model_len);
			len = 1 + rnd(model_len - off);
			if (len > FSX_MAXOP)
				len = FSX_MAXOP;
			size_t pg = off - off % (size_t)page;
			unsigned char *p = mmap(NULL, len + off - pg, PROT_READ | PROT_WRITE,
						MAP_SHARED, fd, (off_t)pg);

			if (p == MAP_FAILED)
				return fail(op, "mmap write", off, len);
			for (size_t i = 0; i < len; i++)
				model[off + i] = p[off - pg + i] = (unsigned char)next();
			int r = msync(p, len + off - pg, MS_SYNC);
			munmap(p, len + off - pg);
			if (r < 0)
				return fail(op, "msync", off, len);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *env = getenv("TANDEM_FSX_SEED");
	unsigned long nops = 4000;
	uint64_t seed;
	char path[160];
	int fd, r;

	harness_skip_unless_fuse();
	if (argc > 1)
		seed = strtoull(argv[1], NULL, 0);
	else if (env && *env)
		seed = strtoull(env, NULL, 0);
	else
		seed = (uint64_t)time(NULL);
	if (argc > 2)
		nops = strtoul(argv[2], NULL, 0);
	rng = seed ? seed : 1;
	printf("# fsx seed %" PRIu64 ", %lu ops (rerun: test-fuse-fsx %" PRIu64 " %lu)\n", seed,
	       nops, seed, nops);
	harness_start(&h, "tfs-fsx", 120);

	snprintf(path, sizeof(path), "%s/fsx.bin", h.mnt);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		printf("Bail out! open %s: %s\n", path, strerror(errno));
		return 1;
	}
	r = run(fd, nops);
	if (r == 0 && fsync(fd) < 0)
		r = fail(nops, "fsync", 0, 0);
	close(fd);
	if (r == 0) {
		/* the backing file holds exactly the model */
		snprintf(path, sizeof(path), "%s/fsx.bin", h.back);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? pread(fd, buf, FSX_MAXLEN, 0) : -1;

		if (fd >= 0)
			close(fd);
		if (n != (ssize_t)model_len)
			r = fail(nops, "backing file length", 0, (size_t)n);
		else
			r = check_range(nops, "backing file data", buf, 0, model_len);
	}
	harness_end(&h);
	if (r == 0)
		printf("ok 1 - fsx: %lu ops, final length %zu\n", nops, model_len);
	printf("1..1\n");
	return r;
}
