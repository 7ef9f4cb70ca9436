/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The scanner's hasher thread: it opens each queued file beneath the root
 * (no symlink followed), hashes it with its block list, and hands the
 * result back through a mutex-protected list and an eventfd. It never
 * touches the index; the engine thread stores results (scan.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sync/blocks.h"
#include "sync/path.h"
#include "sync/scan_int.h"

struct hash_list {
	uint8_t *v;
	uint32_t n, cap;
};

static int add_block(void *userdata, uint32_t index, const uint8_t hash[BLOCKS_HASH_LEN])
{
	struct hash_list *l = userdata;

	if (index != l->n)
		return -EINVAL;
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? l->cap * 2 : 16;
		uint8_t *v;

		if (cap > BLOCKS_COUNT_MAX)
			cap = BLOCKS_COUNT_MAX;
		if (cap <= l->n)
			return -EFBIG;
		v = realloc(l->v, (size_t)cap * BLOCKS_HASH_LEN);
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memcpy(l->v + (size_t)l->n * BLOCKS_HASH_LEN, hash, BLOCKS_HASH_LEN);
	l->n++;
	return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       scan_ns(&a->st_mtim) == scan_ns(&b->st_mtim) &&
	       scan_ns(&a->st_ctim) == scan_ns(&b->st_ctim);
}

static int encode(const struct hash_list *l, uint64_t size, struct scan_job *j)
{
	struct blocks_manifest *m = NULL;
	uint8_t *blob = NULL;
	size_t len;
	int r;

	r = blocks_manifest_new(size, BLOCKS_SIZE, &m);
	if (r < 0)
		return r;
	if (l->n)
		r = blocks_manifest_add(m, 0, l->n, l->v);
	if (r < 0)
		goto cleanup;
	len = blocks_manifest_encoded_len(m);
	blob = malloc(len);
	if (!blob) {
		r = -ENOMEM;
		goto cleanup;
	}
	r = blocks_manifest_encode(m, blob, len);
	if (r < 0)
		goto cleanup;
	j->blob = blob;
	j->blob_len = len;
	blob = NULL;
	r = 0;
cleanup:
	free(blob);
	blocks_manifest_free(m);
	return r;
}

/* The hook is read under the lock; NULL h (scan_path_now) has none. */
static void run_hook(struct scan_hasher *h, const char *path)
{
	scan_hook_fn fn = NULL;
	void *ud = NULL;

	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	fn = h->hook;
	ud = h->hook_ud;
	pthread_mutex_unlock(&h->lock);
	if (fn)
		fn(path, ud);
}

static void hash_job(struct scan_hasher *h, int rootfd, struct scan_job *j)
{
	struct hash_list l = {NULL, 0, 0};
	struct stat before, after;
	const char *name;
	uint64_t size = 0;
	int pfd, fd = -1, r;

	free(j->blob);
	j->blob = NULL;
	j->blob_len = 0;
	pfd = path_open_parent(rootfd, j->path, 0, &name);
	if (pfd < 0) {
		r = pfd;
		goto cleanup;
	}
	/* O_NONBLOCK: a FIFO swapped in for the file must not hang us. */
	fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	close(pfd);
	if (fd < 0 || fstat(fd, &before) < 0) {
		r = -errno;
		goto cleanup;
	}
	if (!S_ISREG(before.st_mode)) {
		r = -EINVAL;
		goto cleanup;
	}
	r = blocks_hash_fd(fd, add_block, &l, j->hash, &size);
	if (r < 0)
		goto cleanup;
	run_hook(h, j->path);
	if (fstat(fd, &after) < 0) {
		r = -errno;
		goto cleanup;
	}
	if (!same_file(&before, &after) || (uint64_t)after.st_size != size) {
		r = -EAGAIN;
		goto cleanup;
	}
	r = encode(&l, size, j);
	if (r == 0)
		j->st = after;
cleanup:
	if (fd >= 0)
		close(fd);
	free(l.v);
	j->err = r;
}

void scan_hash_job(int rootfd, struct scan_job *j)
{
	hash_job(NULL, rootfd, j);
}

static void *worker(void *arg)
{
	struct scan_hasher *h = arg;
	struct scan_job *j;
	uint64_t one = 1;

	for (;;) {
		pthread_mutex_lock(&h->lock);
		while (!h->stop && !h->jobs)
			pthread_cond_wait(&h->cond, &h->lock);
		if (h->stop) {
			pthread_mutex_unlock(&h->lock);
			break;
		}
		j = h->jobs;
		h->jobs = j->next;
		if (!h->jobs)
			h->jobs_tail = NULL;
		h->njobs--;
		pthread_mutex_unlock(&h->lock);

		j->next = NULL;
		hash_job(h, h->rootfd, j);

		pthread_mutex_lock(&h->lock);
		bool wake = !h->done; /* else the loop has not taken the last ones yet */
		if (h->done_tail)
			h->done_tail->next = j;
		else
			h->done = j;
		h->done_tail = j;
		pthread_mutex_unlock(&h->lock);
		/* Cannot fail but for an overflowing counter, which still wakes the reader. */
		if (wake)
			(void)!write(h->efd, &one, sizeof(one));
	}
	return NULL;
}

int scan_hasher_start(struct scan_hasher *h, int rootfd)
{
	sigset_t all, old;
	int r;

	h->rootfd = rootfd;
	h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->efd < 0)
		return -errno;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	/* Signals belong to the main thread (signalfd): the worker starts with all blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&h->thread, NULL, worker, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		return r;
	h->started = true;
	return 0;
}

static void free_list(struct scan_job *j)
{
	while (j) {
		struct scan_job *next = j->next;

		scan_job_free(j);
		j = next;
	}
}

void scan_hasher_stop(struct scan_hasher *h)
{
	if (h->started) {
		pthread_mutex_lock(&h->lock);
		h->stop = true;
		pthread_cond_signal(&h->cond);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
		h->started = false;
	}
	free_list(h->jobs);
	free_list(h->done);
	h->jobs = h->jobs_tail = h->done = h->done_tail = NULL;
	if (h->efd >= 0) {
		pthread_mutex_destroy(&h->lock);
		pthread_cond_destroy(&h->cond);
		close(h->efd);
		h->efd = -1;
	}
}

int scan_hasher_push(struct scan_hasher *h, struct scan_job *j)
{
	int r = 0;

	pthread_mutex_lock(&h->lock);
	if (h->njobs >= SCAN_QUEUE_MAX) {
		r = -EAGAIN;
	} else {
		j->next = NULL;
		if (h->jobs_tail)
			h->jobs_tail->next = j;
		else
			h->jobs = j;
		h->jobs_tail = j;
		h->njobs++;
		pthread_cond_signal(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
	return r;
}

struct scan_job *scan_hasher_take(struct scan_hasher *h)
{
	struct scan_job *list;
	uint64_t n;

	(void)!read(h->efd, &n, sizeof(n));
	pthread_mutex_lock(&h->lock);
	list = h->done;
	h->done = h->done_tail = NULL;
	pthread_mutex_unlock(&h->lock);
	return list;
}

void scan_job_free(struct scan_job *j)
{
	if (!j)
		return;
	free(j->path);
	free(j->blob);
	free(j);
}

void scan_set_hash_hook(struct scan *s, scan_hook_fn fn, void *userdata)
{
	pthread_mutex_lock(&s->h.lock);
	s->h.hook = fn;
	s->h.hook_ud = userdata;
	pthread_mutex_unlock(&s->h.lock);
}
