/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The SHA256_* calls are deprecated in OpenSSL 3 in favour of EVP, which
 * needs a heap context per hash; these are plain structs that use the
 * same SHA-NI code. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <sodium.h>

#include "sync/blocks.h"


/* Domain separation: each hash starts with its own 16-byte prefix. */
#define PREFIX_LEN 16
static const uint8_t block_personal[PREFIX_LEN] = "tandem.block.v2";
static const uint8_t file_personal[PREFIX_LEN] = "tandem.file.v2";

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void state_init(SHA256_CTX *st, const uint8_t *personal)
{
	(void)SHA256_Init(st);
	(void)SHA256_Update(st, personal, PREFIX_LEN);
}

_Static_assert(BLOCKS_COUNT_MAX == BLOCKS_FILE_MAX / BLOCKS_SIZE, "the count cap is exact");

uint64_t blocks_count(uint64_t size)
{
	return size / BLOCKS_SIZE + (size % BLOCKS_SIZE != 0);
}

uint32_t blocks_len(uint64_t size, uint64_t index)
{
	uint64_t off;

	if (index >= blocks_count(size))
		return 0; /* also where index * BLOCKS_SIZE would wrap */
	off = index * BLOCKS_SIZE;
	return size - off < BLOCKS_SIZE ? (uint32_t)(size - off) : BLOCKS_SIZE;
}

void blocks_hash_block(const uint8_t *data, size_t len, uint8_t ret_hash[static BLOCKS_HASH_LEN])
{
	SHA256_CTX st;

	state_init(&st, block_personal);
	(void)SHA256_Update(&st, data, len);
	(void)SHA256_Final(ret_hash, &st);
}

/* The file hash's trailer: le64 size, le32 block size. */
static void file_trailer(SHA256_CTX *st, uint64_t size)
{
	uint8_t t[12];

	put_le64(t, size);
	put_le32(t + 8, BLOCKS_SIZE);
	(void)SHA256_Update(st, t, sizeof(t));
}

void blocks_hasher_init(struct blocks_hasher *h, blocks_block_fn fn, void *userdata)
{
	memset(h, 0, sizeof(*h));
	state_init(&h->block_state, block_personal);
	state_init(&h->file_state, file_personal);
	h->fn = fn;
	h->userdata = userdata;
}

/* Ends the current block: hash it into the file hash, report it, start the next. */
static int hasher_close_block(struct blocks_hasher *h)
{
	uint8_t bh[BLOCKS_HASH_LEN];
	int r = 0;

	(void)SHA256_Final(bh, &h->block_state);
	(void)SHA256_Update(&h->file_state, bh, sizeof(bh));
	if (h->fn)
		r = h->fn(h->userdata, h->index, bh);
	h->index++;
	h->fill = 0;
	state_init(&h->block_state, block_personal);
	return r < 0 ? r : 0;
}

int blocks_hasher_update(struct blocks_hasher *h, const void *data, size_t len)
{
	const uint8_t *p = data;
	int r;

	if (len > BLOCKS_FILE_MAX - h->size)
		return -EFBIG;
	while (len > 0) {
		size_t n = BLOCKS_SIZE - h->fill;

		/* A block is closed only when more data follows or at the end. */
		if (n == 0) {
			r = hasher_close_block(h);
			if (r < 0)
				return r;
			continue;
		}
		if (n > len)
			n = len;
		(void)SHA256_Update(&h->block_state, p, n);
		h->fill += (uint32_t)n;
		h->size += n;
		p += n;
		len -= n;
	}
	return 0;
}

int blocks_hasher_final(struct blocks_hasher *h, uint8_t ret_hash[static BLOCKS_HASH_LEN])
{
	int r;

	if (h->fill > 0) {
		r = hasher_close_block(h);
		if (r < 0)
			return r;
	}
	file_trailer(&h->file_state, h->size);
	(void)SHA256_Final(ret_hash, &h->file_state);
	return 0;
}

int blocks_hash_buf(const void *data, size_t len, blocks_block_fn fn, void *userdata,
		    uint8_t ret_hash[static BLOCKS_HASH_LEN])
{
	struct blocks_hasher h;
	int r;

	blocks_hasher_init(&h, fn, userdata);
	r = blocks_hasher_update(&h, data, len);
	if (r < 0)
		return r;
	return blocks_hasher_final(&h, ret_hash);
}

/*
 * Large files are hashed by several threads at once: each takes every
 * n-th block (its own buffer, its own pread), the block hashes land in one
 * array, and the file hash is then computed over them in order. The result
 * is the same as hashing sequentially. If the file turns out shorter or
 * longer than fstat said (it is being written), the sequential path runs
 * instead, which reads to the end as before.
 */
#define PAR_MIN_BLOCKS 8
#define PAR_THREADS_MAX 4

struct par {
	int fd;
	uint64_t size;
	uint32_t count;
	uint8_t *hashes;
	unsigned nthreads;
	int err; /* first error, written under lock */
	pthread_mutex_t lock;
};

struct par_worker {
	struct par *p;
	unsigned k;
};

static void *par_run(void *arg)
{
	struct par_worker *w = arg;
	struct par *p = w->p;
	uint8_t *buf = malloc(BLOCKS_SIZE);
	int err = buf ? 0 : -ENOMEM;

	for (uint32_t i = w->k; i < p->count && !err; i += p->nthreads) {
		uint32_t len = blocks_len(p->size, i);
		size_t got = 0;
		while (got < len) {
			ssize_t n = pread(p->fd, buf + got, len - got,
					  (off_t)((uint64_t)i * BLOCKS_SIZE + got));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				err = n < 0 ? -errno : -EAGAIN; /* shorter than fstat said */
				break;
			}
			got += (size_t)n;
		}
		if (!err)
			blocks_hash_block(buf, len, p->hashes + (size_t)i * BLOCKS_HASH_LEN);
	}
	free(buf);
	if (err) {
		pthread_mutex_lock(&p->lock);
		if (!p->err)
			p->err = err;
		pthread_mutex_unlock(&p->lock);
	}
	return NULL;
}

/* Returns 0, -EAGAIN (use the sequential path), or -errno. */
static int hash_fd_par(int fd, uint64_t size, unsigned nthreads, blocks_block_fn fn,
		       void *userdata, uint8_t ret_hash[static BLOCKS_HASH_LEN])
{
	/* size <= BLOCKS_FILE_MAX (blocks_hash_fd checked): the count fits */
	struct par p = {.fd = fd,
			.size = size,
			.count = (uint32_t)blocks_count(size),
			.nthreads = nthreads};
	struct par_worker w[PAR_THREADS_MAX];
	pthread_t t[PAR_THREADS_MAX];
	SHA256_CTX st;
	sigset_t all, old;
	unsigned started = 0;
	uint8_t probe;
	int r = 0;

	p.hashes = malloc((size_t)p.count * BLOCKS_HASH_LEN);
	if (!p.hashes)
		return -ENOMEM;
	pthread_mutex_init(&p.lock, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old); /* the threads inherit it */
	for (unsigned k = 1; k < nthreads; k++) {
		w[k] = (struct par_worker){.p = &p, .k = k};
		if (pthread_create(&t[k], NULL, par_run, &w[k]) != 0)
			break;
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started + 1 < nthreads) {
		p.nthreads = 1; /* could not start them all: stop the ones running early */
		r = -EAGAIN;
	}
	w[0] = (struct par_worker){.p = &p, .k = 0};
	if (!r)
		par_run(&w[0]);
	for (unsigned k = 1; k <= started; k++)
		pthread_join(t[k], NULL);
	pthread_mutex_destroy(&p.lock);
	if (!r)
		r = p.err;
	/* grown since fstat: hash it the slow way, to its end */
	if (!r && pread(fd, &probe, 1, (off_t)size) != 0)
		r = -EAGAIN;
	if (r < 0)
		goto out;
	state_init(&st, file_personal);
	for (uint32_t i = 0; i < p.count; i++) {
		const uint8_t *h = p.hashes + (size_t)i * BLOCKS_HASH_LEN;
		(void)SHA256_Update(&st, h, BLOCKS_HASH_LEN);
		if (fn) {
			r = fn(userdata, i, h);
			if (r < 0)
				goto out;
		}
	}
	file_trailer(&st, size);
	(void)SHA256_Final(ret_hash, &st);
out:
	free(p.hashes);
	return r;
}

static int hash_fd_seq(int fd, blocks_block_fn fn, void *userdata,
		   uint8_t ret_hash[static BLOCKS_HASH_LEN], uint64_t *ret_size)
{
	struct blocks_hasher h;
	uint8_t *buf;
	uint64_t off = 0;
	int r;

	buf = malloc(BLOCKS_SIZE);
	if (!buf)
		return -ENOMEM;
	/* Only a hint: a pipe or an odd file system may refuse it. */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	blocks_hasher_init(&h, fn, userdata);
	for (;;) {
		ssize_t n = pread(fd, buf, BLOCKS_SIZE, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto cleanup;
		}
		if (n == 0)
			break;
		r = blocks_hasher_update(&h, buf, (size_t)n);
		if (r < 0)
			goto cleanup;
		off += (uint64_t)n;
	}
	r = blocks_hasher_final(&h, ret_hash);
	if (r == 0 && ret_size)
		*ret_size = off;
cleanup:
	free(buf);
	return r;
}

int blocks_hash_fd(int fd, blocks_block_fn fn, void *userdata,
		   uint8_t ret_hash[static BLOCKS_HASH_LEN], uint64_t *ret_size)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned nthreads = ncpu < 2 ? 1 : ncpu > PAR_THREADS_MAX ? PAR_THREADS_MAX : (unsigned)ncpu;
	struct stat st;
	int r;

	if (nthreads > 1 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size <= BLOCKS_FILE_MAX &&
	    blocks_count((uint64_t)st.st_size) >= PAR_MIN_BLOCKS) {
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		r = hash_fd_par(fd, (uint64_t)st.st_size, nthreads, fn, userdata, ret_hash);
		if (r != -EAGAIN) {
			if (r == 0 && ret_size)
				*ret_size = (uint64_t)st.st_size;
			return r;
		}
	}
	return hash_fd_seq(fd, fn, userdata, ret_hash, ret_size);
}

int blocks_manifest_new(uint64_t size, uint32_t block_size, struct blocks_manifest **ret)
{
	struct blocks_manifest *m;
	uint32_t count;

	if (block_size != BLOCKS_SIZE)
		return -EINVAL;
	if (size > BLOCKS_FILE_MAX)
		return -EFBIG;
	count = (uint32_t)blocks_count(size); /* <= BLOCKS_COUNT_MAX */
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->size = size;
	m->count = count;
	if (count > 0) {
		m->hashes = malloc((size_t)count * BLOCKS_HASH_LEN);
		if (!m->hashes) {
			free(m);
			return -ENOMEM;
		}
	}
	*ret = m;
	return 0;
}

void blocks_manifest_free(struct blocks_manifest *m)
{
	if (!m)
		return;
	free(m->hashes);
	free(m);
}

int blocks_manifest_add(struct blocks_manifest *m, uint32_t first, uint32_t n,
			const uint8_t *hashes)
{
	if (first != m->filled || n > m->count - first)
		return -EBADMSG;
	if (n > 0)
		memcpy(m->hashes + (size_t)first * BLOCKS_HASH_LEN, hashes,
		       (size_t)n * BLOCKS_HASH_LEN);
	m->filled += n;
	return 0;
}

int blocks_manifest_check(const struct blocks_manifest *m,
			  const uint8_t file_hash[static BLOCKS_HASH_LEN])
{
	SHA256_CTX st;
	uint8_t got[BLOCKS_HASH_LEN];

	if (m->filled != m->count)
		return -EAGAIN;
	state_init(&st, file_personal);
	if (m->count > 0)
		(void)SHA256_Update(&st, m->hashes, (size_t)m->count * BLOCKS_HASH_LEN);
	file_trailer(&st, m->size);
	(void)SHA256_Final(got, &st);
	return memcmp(got, file_hash, BLOCKS_HASH_LEN) == 0 ? 0 : -EBADMSG;
}

int blocks_manifest_verify(const struct blocks_manifest *m, uint64_t index, const uint8_t *data,
			   size_t len)
{
	uint8_t got[BLOCKS_HASH_LEN];

	if (index >= m->filled)
		return -ERANGE;
	if (len != blocks_len(m->size, index))
		return -EMSGSIZE;
	blocks_hash_block(data, len, got);
	if (memcmp(got, m->hashes + (size_t)index * BLOCKS_HASH_LEN, BLOCKS_HASH_LEN) != 0)
		return -EBADMSG;
	return 0;
}

size_t blocks_manifest_encoded_len(const struct blocks_manifest *m)
{
	return BLOCKS_MANIFEST_HEADER_LEN + (size_t)m->count * BLOCKS_HASH_LEN;
}

int blocks_manifest_encode(const struct blocks_manifest *m, uint8_t *buf, size_t outlen)
{
	size_t len = blocks_manifest_encoded_len(m);

	if (m->filled != m->count)
		return -EAGAIN;
	if (outlen < len || len > INT32_MAX)
		return -EMSGSIZE;
	put_le64(buf, m->size);
	put_le32(buf + 8, BLOCKS_SIZE);
	put_le32(buf + 12, m->count);
	if (m->count > 0)
		memcpy(buf + BLOCKS_MANIFEST_HEADER_LEN, m->hashes,
		       (size_t)m->count * BLOCKS_HASH_LEN);
	return (int)len;
}

int blocks_manifest_decode(const uint8_t *buf, size_t len, struct blocks_manifest **ret)
{
	struct blocks_manifest *m;
	uint64_t size;
	uint32_t count;
	int r;

	if (len < BLOCKS_MANIFEST_HEADER_LEN)
		return -EBADMSG;
	size = get_le64(buf);
	if (get_le32(buf + 8) != BLOCKS_SIZE)
		return -EBADMSG;
	if (size > BLOCKS_FILE_MAX)
		return -EFBIG;
	count = get_le32(buf + 12);
	if (count != blocks_count(size))
		return -EBADMSG;
	if (len - BLOCKS_MANIFEST_HEADER_LEN != (size_t)count * BLOCKS_HASH_LEN)
		return -EBADMSG;
	r = blocks_manifest_new(size, BLOCKS_SIZE, &m);
	if (r < 0)
		return r;
	r = blocks_manifest_add(m, 0, count, buf + BLOCKS_MANIFEST_HEADER_LEN);
	if (r < 0) {
		blocks_manifest_free(m);
		return r;
	}
	*ret = m;
	return 0;
}
