/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Lazy (on-demand) content: the engine's side. docs/SYNC.md "Lazy mode".
 *
 * Design note.
 * - apply.c places a remote file as a sparse placeholder (size, mode and
 *   mtime right, no data) and calls lazy_track(): a row in the index's
 *   lazy table (lazy.h) and a struct lazy_file in an in-memory table that
 *   holds every tracked file, so "not in the table" means "complete".
 * - lazy_ensure() (engine_ensure(), FUSE threads) answers from the table
 *   under lz->mu when the range is present; otherwise it queues an
 *   ensure_wait, pokes the eventfd and waits on lz->cond with a deadline. The loop
 *   (lazy_on_ensure) marks the range plus readahead as wanted and
 *   lazy_pump() asks for those blocks with the fetch machinery's request
 *   slots (manifest first for multi-block files, kept in the index). Each
 *   block is verified, written in place with pwrite, then the placeholder's
 *   mtime from before the write is put back and its new stat identity
 *   stored (index_set_stat) in the same call, so the scanner never sees an
 *   edit (and still sees a touch of the user's). When the scanner does see
 *   a change of a placeholder (a touch), it records the metadata only
 *   (is_placeholder): hashing its holes would publish zeros. Waiters are answered
 *   as soon as their range is present, or -EIO when it cannot be. A
 *   placeholder the user moved where the scanner does not see a rename is
 *   found by its inode (moved_check): its mark moves to the new name, or,
 *   retired, it is removed (its content can never come).
 * - The presence bitmap is persisted after the data is durable: a finished
 *   file's at once (fdatasync), the others' by lazy_persist_all() (one
 *   syncfs) every LAZY_PERSIST_MS, when the peer goes away and at shutdown.
 *   A block on disk but not marked is only fetched again, a block marked is
 *   always on disk.
 * - A placeholder the peer replaces or deletes while it is incomplete can
 *   still be open in a reader, and its missing blocks will never come: it
 *   is retired (lz->retired, by inode). lazy_ensure() of a file whose
 *   inode is not the one tracked at its path (or with no path: unlinked)
 *   is answered from there, -EIO for a missing range, at once; never the
 *   zeros of a hole.
 * - Cache limit: when the present bytes exceed cache_max, clean files
 *   (content still the index version, identity unchanged, nobody has them
 *   open for writing, not ensured for LAZY_EVICT_AGE_MS) are emptied again
 *   with PUNCH_HOLE, least recently ensured first.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "sync/lazy.h"
#include "sync/lazy_int.h"
#include "sync/path.h"

#define LAZY_SWEEP_BATCH 256 /* files lazy_check_moves() drops per walk of the table */

/* Caller holds lz->mu, or is the loop. */
struct lazy_file *lazy_find(struct lazy *lz, const char *path)
{
	void *z;

	return map_get(&lz->tab, path, strlen(path), &z) ? z : NULL;
}

void lazy_mark(struct lazy *lz, struct lazy_file *z, uint64_t i)
{
	pthread_mutex_lock(&lz->mu);
	if (!lazy_bit_get(z->have, i)) {
		lazy_bit_set(z->have, i);
		z->nhave++;
		lz->bytes += blocks_len(z->size, i);
	}
	pthread_mutex_unlock(&lz->mu);
}

void lazy_unmark_all(struct lazy *lz, struct lazy_file *z)
{
	lz->bytes -= lazy_present_bytes(z);
	pthread_mutex_lock(&lz->mu);
	memset(z->have, 0, lazy_bits_len(z->size));
	z->nhave = 0;
	pthread_mutex_unlock(&lz->mu);
}

uint64_t lazy_used(struct lazy *lz, const struct lazy_file *z)
{
	uint64_t used;

	pthread_mutex_lock(&lz->mu);
	used = z->used;
	pthread_mutex_unlock(&lz->mu);
	return used;
}

struct lazy_file *lazy_active(struct lazy *lz)
{
	return lz->active;
}

uint64_t lazy_bytes(const struct lazy *lz)
{
	return lz->bytes;
}

void lazy_persist_later(struct lazy *lz)
{
	if (!lz->persist_due_ms)
		lz->persist_due_ms = lz->now_ms + LAZY_PERSIST_MS;
}

int lazy_foreach(struct lazy *lz, int (*fn)(struct lazy_file *z, void *ud), void *ud)
{
	void *z;

	for (size_t pos = 0; map_next(&lz->tab, &pos, NULL, NULL, &z);) {
		int r = fn(z, ud);
		if (r)
			return r;
	}
	return 0;
}

uint64_t lazy_present_bytes(const struct lazy_file *z)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < z->nblocks; i++)
		if (lazy_bit_get(z->have, i))
			n += blocks_len(z->size, i);
	return n;
}

static void file_free(struct lazy_file *z)
{
	if (!z)
		return;
	if (z->fd >= 0)
		close(z->fd);
	blocks_manifest_free(z->m);
	free(z->have);
	free(z->want);
	free(z->asked);
	free(z->moved_from);
	free(z->path);
	free(z);
}

/* NULL: out of memory, or size over BLOCKS_FILE_MAX (never a placeholder:
 * its block count would not fit the 32-bit indexes of requests). */
static struct lazy_file *file_new(const char *path, size_t len, const uint8_t *hash, uint64_t size)
{
	struct lazy_file *z;
	size_t bl;

	if (size > BLOCKS_FILE_MAX)
		return NULL;
	bl = lazy_bits_len(size);
	z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	z->fd = -1;
	z->path = strndup(path, len);
	z->path_len = len;
	memcpy(z->hash, hash, SYNC_HASH_LEN);
	z->size = size;
	z->nblocks = blocks_count(size);
	z->have = calloc(bl, 1);
	z->want = calloc(bl, 1);
	z->asked = calloc(bl, 1);
	if (!z->path || !z->have || !z->want || !z->asked) {
		file_free(z);
		return NULL;
	}
	return z;
}

/* Whether [off, off + len) of z is present. Caller holds lz->mu or is the loop. */
static bool range_present(const struct lazy_file *z, uint64_t off, uint64_t len)
{
	uint64_t end;

	if (z->nhave == z->nblocks || off >= z->size)
		return true;
	end = len == UINT64_MAX || len > z->size - off ? z->size : off + len;
	if (end <= off)
		return true;
	for (uint64_t i = off / BLOCKS_SIZE; i <= (end - 1) / BLOCKS_SIZE; i++)
		if (!lazy_bit_get(z->have, i))
			return false;
	return true;
}

/*
 * The answer for a reader of inode ino that is not (or no longer) the file
 * tracked at its path: -EIO when it is a retired placeholder missing part
 * of the range, else 0 (a complete file). Caller holds lz->mu.
 */
static int other_version(const struct lazy *lz, uint64_t ino, uint64_t off, uint64_t len)
{
	for (unsigned i = 0; ino && i < LAZY_RETIRED_MAX; i++) {
		const struct lazy_file *z = lz->retired[i];
		if (z && z->ino == ino)
			return range_present(z, off, len) ? 0 : -EIO;
	}
	return 0;
}

/* Whether ino is a retired placeholder's. Caller holds lz->mu. */
static bool retired(const struct lazy *lz, uint64_t ino)
{
	for (unsigned i = 0; ino && i < LAZY_RETIRED_MAX; i++)
		if (lz->retired[i] && lz->retired[i]->ino == ino)
			return true;
	return false;
}

/* Whether z, tracked at a reader's path, is another file than the reader's. */
static bool not_the_readers(const struct lazy_file *z, uint64_t ino)
{
	return z && ino && z->ino && z->ino != ino;
}

/* An inode number in use now by a tracked file: a retired one of that number
 * is gone for good. Caller holds lz->mu. */
static void unretire(struct lazy *lz, uint64_t ino)
{
	for (unsigned i = 0; ino && i < LAZY_RETIRED_MAX; i++)
		if (lz->retired[i] && lz->retired[i]->ino == ino) {
			file_free(lz->retired[i]);
			lz->retired[i] = NULL;
		}
}

/* Answers the waiters whose range is present; with fail_path, fails those
 * on that path (NULL: every one) with -EIO. */
/*
 * Whether ino is an incomplete placeholder the table tracks at another
 * path than path, whose entry there is still that version while the
 * inode has left it: the user moved it to path, and the scanner has not
 * said so yet (nor that the user wrote into it since: it then records
 * the move or the deletion, and a wake answers the reader). The loop,
 * holding lz->mu.
 */
static bool moved_away(struct lazy *lz, const struct lazy_file *z);

static bool moved_here_unseen(struct lazy *lz, const char *path, uint64_t ino)
{
	void *v;

	for (size_t pos = 0; ino && map_next(&lz->tab, &pos, NULL, NULL, &v);) {
		const struct lazy_file *y = v;
		if (y->ino == ino && y->nhave < y->nblocks && strcmp(y->path, path) != 0)
			return moved_away(lz, y);
	}
	return false;
}

void lazy_wake(struct lazy *lz, bool fail, const char *fail_path)
{
	struct ensure_wait **pp;
	bool any = false;

	pthread_mutex_lock(&lz->mu);
	for (pp = &lz->wait; *pp;) {
		struct ensure_wait *w = *pp;
		struct lazy_file *z = lazy_find(lz, w->path);
		bool failing = fail && (!fail_path || strcmp(fail_path, w->path) == 0);

		if ((!z || not_the_readers(z, w->ino)) && moved_here_unseen(lz, w->path, w->ino)) {
			/* a placeholder moved over what is tracked at its path (or
			 * to a path not tracked): the walk records the move, and
			 * lazy_check_moves() hands the reader to the loop again
			 * (long-run seed 2009282); never a complete file's 0 */
			if (!failing) {
				pp = &w->next;
				continue;
			}
			w->result = -EIO;
		} else if (!z || not_the_readers(z, w->ino))
			w->result = other_version(lz, w->ino, w->off, w->len);
		else if (range_present(z, w->off, w->len))
			w->result = 0;
		else if (failing)
			w->result = -EIO;
		else {
			pp = &w->next;
			continue;
		}
		w->done = true;
		*pp = w->next;
		any = true;
	}
	if (any)
		pthread_cond_broadcast(&lz->cond);
	pthread_mutex_unlock(&lz->mu);
}

void lazy_deactivate(struct lazy *lz, struct lazy_file *z)
{
	struct lazy_file **pp;

	if (!z->active)
		return;
	for (pp = &lz->active; *pp; pp = &(*pp)->anext)
		if (*pp == z) {
			*pp = z->anext;
			break;
		}
	z->active = false;
	z->anext = NULL;
	if (z->fd >= 0)
		close(z->fd);
	z->fd = -1;
}

/* syncfs of the store's file system (the scanner's root fd is O_PATH, which
 * syncfs refuses). 0, or -1 with errno. */
static int store_syncfs(struct lazy *lz)
{
	int fd = openat(lz->c.rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), r, err;

	if (fd < 0)
		return -1;
	r = syncfs(fd);
	err = errno;
	close(fd);
	errno = err;
	return r;
}

/* Writes the presence bitmap to the index, after the data is durable. */
void lazy_persist(struct lazy *lz, struct lazy_file *z)
{
	if (!z->dirty)
		return;
	if (z->fd >= 0 ? fdatasync(z->fd) < 0 : store_syncfs(lz) < 0)
		return; /* not marked: fetched again later */
	if (index_lazy_put(lz->c.idx, z->path, z->path_len, z->hash, z->size, z->have,
			   lazy_bits_len(z->size)) < 0)
		log_debug("cannot record the blocks of %s: %s", LOG_Q(z->path),
			  index_errmsg(lz->c.idx));
	else
		z->dirty = false;
}

void lazy_persist_all(struct lazy *lz)
{
	bool any = false, tx;
	size_t pos = 0;
	void *v;

	lz->persist_due_ms = 0;
	while (!any && map_next(&lz->tab, &pos, NULL, NULL, &v))
		any = ((struct lazy_file *)v)->dirty;
	if (!any)
		return;
	if (store_syncfs(lz) < 0) {
		log_debug("syncfs of the store: %s", strerror(errno));
		return; /* not marked: fetched again later */
	}
	tx = index_begin(lz->c.idx) == 0; /* else inside the engine's own transaction */
	for (pos = 0; map_next(&lz->tab, &pos, NULL, NULL, &v);) {
		struct lazy_file *z = v;
		if (!z->dirty)
			continue;
		if (index_lazy_put(lz->c.idx, z->path, z->path_len, z->hash, z->size, z->have,
				   lazy_bits_len(z->size)) < 0)
			log_debug("cannot record the blocks of %s: %s", LOG_Q(z->path),
				  index_errmsg(lz->c.idx));
		else
			z->dirty = false;
	}
	if (tx && index_commit(lz->c.idx) < 0) {
		log_debug("cannot record the blocks: %s", index_errmsg(lz->c.idx));
		(void)index_rollback(lz->c.idx);
	}
}

void lazy_tick(struct lazy *lz, uint64_t now_ms)
{
	lz->now_ms = now_ms;
	if (lz->persist_due_ms && now_ms >= lz->persist_due_ms)
		lazy_persist_all(lz);
}

uint64_t lazy_deadline(const struct lazy *lz)
{
	return lz->persist_due_ms ? lz->persist_due_ms : UINT64_MAX;
}

static void forget_mem(struct lazy *lz, struct lazy_file *z);

/* Forgets z (its path changed: the disk is the truth now). */
void lazy_forget(struct lazy *lz, struct lazy_file *z)
{
	if (index_lazy_del(lz->c.idx, z->path, z->path_len) < 0)
		log_debug("cannot drop the lazy row of %s", LOG_Q(z->path));
	forget_mem(lz, z);
}

/* Takes z out of the table (if it is there: insert() may have put another
 * version at its path) and frees it; its index row is left alone. */
static void forget_mem(struct lazy *lz, struct lazy_file *z)
{
	void **at;

	xfer_drop_item(lz->c.xfer, z, NULL, NULL); /* answers still coming are ignored */
	lazy_deactivate(lz, z);
	lz->bytes -= lazy_present_bytes(z);
	pthread_mutex_lock(&lz->mu);
	at = map_ref(&lz->tab, z->path, strlen(z->path));
	if (at && *at == z)
		(void)map_del(&lz->tab, z->path, strlen(z->path), NULL);
	pthread_mutex_unlock(&lz->mu);
	file_free(z);
}

void lazy_gone(struct lazy *lz, const char *path)
{
	struct lazy_file *z = lazy_find(lz, path);

	if (z) {
		lazy_forget(lz, z);
		lazy_wake(lz, false, NULL); /* its waiters: answered from the retired copy */
	}
}

/* Whether x is a file of z's content. */
static bool same_content(const struct index_entry *x, const struct lazy_file *z)
{
	return x->type == INDEX_FILE && x->has_hash && memcmp(x->hash, z->hash, SYNC_HASH_LEN) == 0 &&
	       x->size == z->size;
}

/*
 * Whether z is still the version the index has at its path (live, or
 * deleted or moved away by the user: a reader may hold it). A file the
 * user gave content of their own (an open with O_TRUNC keeps the inode)
 * lost its row to the index's trigger, not its entry here: z is stale.
 * So is z when the user moved it away and gave it content of their own
 * there: its inode is recorded under the new name with that content.
 */
static bool still_indexed(struct lazy *lz, const struct lazy_file *z)
{
	struct index_entry *x = malloc(sizeof(*x));
	struct stat st;
	bool yes;

	if (!x)
		return true; /* cannot tell: keep it, as before */
	yes = index_get(lz->c.idx, z->path, z->path_len, x) == 0 && same_content(x, z);
	if (yes && z->ino && fstat(lz->c.rootfd, &st) == 0 &&
	    index_get_by_ino(lz->c.idx, (uint64_t)st.st_dev, z->ino, x) == 0 &&
	    strcmp(x->path, z->path) != 0 && !same_content(x, z))
		yes = false;
	free(x);
	return yes;
}

void lazy_retire(struct lazy *lz, const char *path)
{
	struct lazy_file *z = lazy_find(lz, path), *c;

	if (z && !still_indexed(lz, z)) {
		/* its inode holds the user's content now: never answered as a
		 * placeholder's (a reader of that file would get -EIO) */
		forget_mem(lz, z);
		return;
	}
	if (!z || !z->ino || z->nhave == z->nblocks)
		return;
	c = file_new(z->path, z->path_len, z->hash, z->size);
	if (!c) {
		log_warn("out of memory: a reader still holding the old %s may read zeros where "
			 "it had no data yet",
			 LOG_Q(path));
		return;
	}
	memcpy(c->have, z->have, lazy_bits_len(z->size));
	c->nhave = z->nhave;
	c->ino = z->ino;
	pthread_mutex_lock(&lz->mu);
	unretire(lz, c->ino);
	file_free(lz->retired[lz->retired_next]);
	lz->retired[lz->retired_next] = c;
	lz->retired_next = (lz->retired_next + 1) % LAZY_RETIRED_MAX;
	pthread_mutex_unlock(&lz->mu);
}

/* Puts z in the table; a file there before at its path (another version)
 * is forgotten. 0 or -ENOMEM (z is not in the table then). */
static int insert(struct lazy *lz, struct lazy_file *z)
{
	void *old = NULL;
	int r;

	pthread_mutex_lock(&lz->mu);
	r = map_put(&lz->tab, z->path, strlen(z->path), z, &old);
	pthread_mutex_unlock(&lz->mu);
	if (old)
		forget_mem(lz, old);
	return r < 0 ? r : 0;
}

int lazy_track(struct lazy *lz, const char *path, size_t len, const uint8_t *hash, uint64_t size,
	       uint64_t ino)
{
	struct lazy_file *z = lazy_find(lz, path), *n;
	int r;

	if (size > BLOCKS_FILE_MAX)
		return -EFBIG;
	if (z)
		forget_mem(lz, z); /* its row is replaced below */
	n = file_new(path, len, hash, size);
	if (!n)
		return -ENOMEM;
	n->ino = ino;
	pthread_mutex_lock(&lz->mu);
	unretire(lz, ino);
	pthread_mutex_unlock(&lz->mu);
	r = index_lazy_put(lz->c.idx, path, len, hash, size, n->have, lazy_bits_len(size));
	if (r < 0) {
		file_free(n);
		return r;
	}
	r = insert(lz, n);
	if (r < 0) {
		/* not tracked, not marked: a row alone would say it is */
		if (index_lazy_del(lz->c.idx, path, len) < 0)
			log_debug("cannot drop the lazy row of %s", LOG_Q(path));
		file_free(n);
		return r;
	}
	lazy_wake(lz, false, NULL); /* waiters on the old version: answered from the retired one */
	return 0;
}

/*
 * Whether block i of z (behind fd), not marked present, is still the
 * placeholder's: nothing but zeros (a hole), or the block of z's content
 * (we wrote it and did not mark it yet: a crash, a power cut). m: z's block
 * list, or NULL for a one-block file.
 */
static bool block_is_ours(int fd, const struct lazy_file *z, const struct blocks_manifest *m,
			  uint64_t i, uint8_t *buf)
{
	uint64_t off = i * BLOCKS_SIZE, len = blocks_len(z->size, i);
	off_t data = lseek(fd, (off_t)off, SEEK_DATA);
	uint8_t h[BLOCKS_HASH_LEN];
	size_t k;

	if (data < 0 && errno == ENXIO)
		return true; /* only holes from here on */
	if (data >= 0 && (uint64_t)data >= off + len)
		return true; /* a hole over the whole block */
	if (pread(fd, buf, len, (off_t)off) != (ssize_t)len)
		return false;
	for (k = 0; k < len && !buf[k]; k++)
		;
	if (k == len)
		return true;
	if (m)
		return blocks_manifest_verify(m, i, buf, len) == 0;
	return z->nblocks == 1 && blocks_hash_buf(buf, len, NULL, NULL, h) == 0 &&
	       memcmp(h, z->hash, BLOCKS_HASH_LEN) == 0;
}

/* z's complete block list (its own, or the one kept in the index), or NULL;
 * *owned says whether the caller frees it. */
static const struct blocks_manifest *manifest_of(struct lazy *lz, const struct lazy_file *z,
						 struct blocks_manifest **owned)
{
	uint8_t *blob = NULL;
	size_t len = 0;

	*owned = NULL;
	if (z->m && z->m->filled == z->m->count)
		return z->m;
	if (index_manifest_get(lz->c.idx, z->hash, &blob, &len) == 0 &&
	    blocks_manifest_decode(blob, len, owned) == 0 &&
	    blocks_manifest_check(*owned, z->hash) < 0) {
		blocks_manifest_free(*owned);
		*owned = NULL;
	}
	free(blob);
	return *owned;
}

/*
 * The scanner's placeholder check (scan_set_placeholder_check): path is
 * tracked and incomplete, has the tracked size, and every block not marked
 * present is still the placeholder's (block_is_ours). A block holding other
 * data (an open with O_TRUNC and new content) makes it a file of the
 * user's, to hash.
 */
static bool holes_still(struct lazy *lz, const struct lazy_file *z, const char *path);

static bool is_placeholder(void *ud, const char *path, uint64_t size)
{
	struct lazy *lz = ud;
	struct lazy_file *z = lazy_find(lz, path);
	bool yes;

	if (!z || z->nhave == z->nblocks || z->size != size)
		return false;
	yes = holes_still(lz, z, path);
	if (yes)
		log_debug("sync: %s changed on disk but is still a placeholder: its metadata only",
			  LOG_Q(path));
	return yes;
}

/* Whether every block of z not marked present is still the placeholder's
 * (block_is_ours) in the file at path (z's, or where the user moved it). */
static bool holes_still(struct lazy *lz, const struct lazy_file *z, const char *path)
{
	struct blocks_manifest *owned = NULL;
	const struct blocks_manifest *m;
	const char *name;
	uint8_t *buf = NULL;
	bool yes = true;
	int dirfd, fd;

	dirfd = disk_open_parent(lz->c.disk, path, false, &name);
	if (dirfd < 0)
		return false;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	close(dirfd);
	buf = malloc(BLOCKS_SIZE);
	m = manifest_of(lz, z, &owned);
	for (uint64_t i = 0; yes && i < z->nblocks; i++)
		if (!lazy_bit_get(z->have, i))
			yes = fd >= 0 && buf && block_is_ours(fd, z, m, i, buf);
	blocks_manifest_free(owned);
	free(buf);
	if (fd >= 0)
		close(fd);
	return yes;
}

/* The incomplete placeholder of inode ino and size bytes tracked at
 * another path than path, or NULL. The loop. */
static struct lazy_file *find_moved(struct lazy *lz, const char *path, uint64_t ino,
				    uint64_t size)
{
	void *v;

	for (size_t pos = 0; ino && map_next(&lz->tab, &pos, NULL, NULL, &v);) {
		struct lazy_file *z = v;
		if (z->ino == ino && z->size == size && z->nhave < z->nblocks &&
		    strcmp(z->path, path) != 0)
			return z;
	}
	return NULL;
}

/* The retired placeholder of inode ino and size bytes, or NULL. The loop
 * (the only writer of lz->retired). */
static struct lazy_file *find_retired(struct lazy *lz, uint64_t ino, uint64_t size)
{
	for (unsigned i = 0; ino && i < LAZY_RETIRED_MAX; i++) {
		struct lazy_file *z = lz->retired[i];
		if (z && z->ino == ino && z->size == size && z->nhave < z->nblocks)
			return z;
	}
	return NULL;
}

/* The user moved z's file to path: the mark goes with it (its row at its
 * old path and the one at path are replaced by one at path). */
static int claim_moved(struct lazy *lz, struct lazy_file *z, const char *path, uint64_t ino)
{
	uint8_t hash[SYNC_HASH_LEN], *have;
	uint64_t size = z->size, nhave = z->nhave;
	struct lazy_file *n;
	size_t bl = lazy_bits_len(size);
	char *from;
	int r;

	have = malloc(bl);
	from = strdup(z->path);
	if (!have || !from) {
		free(have);
		free(from);
		return -ENOMEM;
	}
	memcpy(have, z->have, bl);
	memcpy(hash, z->hash, sizeof(hash));
	lazy_forget(lz, z);
	r = lazy_track(lz, path, strlen(path), hash, size, ino);
	n = r == 0 ? lazy_find(lz, path) : NULL;
	if (n) {
		/* the blocks it holds: marked now, in the index at the next persist
		 * (until then only fetched again if lost) */
		pthread_mutex_lock(&lz->mu);
		memcpy(n->have, have, bl);
		n->nhave = nhave;
		pthread_mutex_unlock(&lz->mu);
		lz->bytes += lazy_present_bytes(n);
		n->moved_from = from;
		from = NULL;
		if (nhave) {
			n->dirty = true;
			lazy_persist_later(lz);
		}
		log_debug("sync: the placeholder moved to %s from %s by the user stays one",
			  LOG_Q(path), LOG_Q(n->moved_from));
	}
	free(from);
	free(have);
	return r;
}

/* Removes the file at path if it is still the placeholder z (its inode,
 * its holes). 0, or -errno. */
static int remove_placeholder(struct lazy *lz, const struct lazy_file *z, const char *path,
			      uint64_t ino)
{
	const char *name;
	struct stat st;
	int dirfd, r = 0;

	if (!holes_still(lz, z, path))
		return -EEXIST; /* data of the user's in it now: theirs */
	dirfd = disk_open_parent(lz->c.disk, path, false, &name);
	if (dirfd < 0)
		return dirfd;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	else if ((uint64_t)st.st_ino != ino)
		r = -EEXIST;
	else if (unlinkat(dirfd, name, 0) < 0)
		r = -errno;
	close(dirfd);
	return r;
}

/*
 * The scanner's check for a file at path whose inode its entry does not
 * know (scan_set_moved_check): a placeholder the user moved (rename). A
 * sparse file only: a placeholder still missing a block has a hole.
 */
static int moved_check_one(struct lazy *lz, const char *path, const struct stat *st, bool claim,
			   uint8_t *ret_hash)
{
	uint64_t ino = (uint64_t)st->st_ino, size = (uint64_t)st->st_size;
	struct lazy_file *z;
	struct stat ost;

	if (!S_ISREG(st->st_mode) || (uint64_t)st->st_blocks * 512 >= size)
		return 0;
	z = find_moved(lz, path, ino, size);
	if (z && claim)
		return claim_moved(lz, z, path, ino);
	if (z) {
		if (fstatat(lz->c.rootfd, z->path, &ost, AT_SYMLINK_NOFOLLOW) == 0 &&
		    (uint64_t)ost.st_ino == ino)
			return 0; /* still there too (a hard link): not a move */
		if (!holes_still(lz, z, path))
			return 0; /* data of the user's where it had none: theirs */
		memcpy(ret_hash, z->hash, SYNC_HASH_LEN);
		return 1;
	}
	z = claim ? NULL : find_retired(lz, ino, size);
	if (!z || !holes_still(lz, z, path))
		return 0;
	/*
	 * The peer replaced or deleted this version before it was fetched and
	 * the user moved it meanwhile: its missing blocks can never come, and
	 * its holes are not content. It goes, as the peer's change of its old
	 * name won over the move (that name has the peer's version).
	 */
	int r = remove_placeholder(lz, z, path, ino);
	if (r == -EEXIST)
		return 0;
	if (r < 0) {
		log_warn("cannot remove %s, a placeholder whose content the peer no longer has: "
			 "%s",
			 LOG_Q(path), strerror(-r));
		return r;
	}
	log_warn("removed %s: moved there from %s before its content was fetched, and the peer "
		 "has replaced that version since; it cannot be fetched any more",
		 LOG_Q(path), LOG_Q(z->path));
	pthread_mutex_lock(&lz->mu);
	unretire(lz, ino);
	pthread_mutex_unlock(&lz->mu);
	return 2;
}

static int moved_check(void *ud, const char *path, const struct stat *st, bool claim,
		       uint8_t *ret_hash)
{
	struct lazy *lz = ud;
	int r = moved_check_one(lz, path, st, claim, ret_hash);

	if (r == 0 && !claim) {
		/* hashed as the user's: whatever placeholder its inode was (moved
		 * here and written, a retired one too), a reader gets that data */
		pthread_mutex_lock(&lz->mu);
		unretire(lz, (uint64_t)st->st_ino);
		pthread_mutex_unlock(&lz->mu);
	}
	return r;
}

void lazy_version_gone(struct lazy *lz, const char *path, const uint8_t *hash)
{
	struct lazy_file *z = lazy_find(lz, path);
	char **gone = NULL, **cand = NULL;
	size_t n = 0, ncand = 0;
	void *v;

	if (!lz->c.on)
		return;
	if (z && memcmp(z->hash, hash, SYNC_HASH_LEN) == 0) {
		lazy_retire(lz, path); /* found under a new name later: removed */
		lazy_gone(lz, path);
	}
	/* the candidates first: the table must not change during a walk */
	for (size_t pos = 0; map_next(&lz->tab, &pos, NULL, NULL, &v);) {
		struct lazy_file *y = v;
		char **c;

		if (!y->moved_from || strcmp(y->moved_from, path) != 0 ||
		    memcmp(y->hash, hash, SYNC_HASH_LEN) != 0 || y->nhave == y->nblocks)
			continue;
		c = realloc(cand, (ncand + 1) * sizeof(*cand));
		if (!c || !(c[ncand] = strdup(y->path))) {
			cand = c ? c : cand;
			log_warn("out of memory: a placeholder moved from %s whose content the "
				 "peer no longer has stays", LOG_Q(path));
			break;
		}
		cand = c;
		ncand++;
	}
	for (size_t i = 0; i < ncand; i++) {
		struct lazy_file *y = lazy_find(lz, cand[i]);
		char **g;
		int r;

		free(cand[i]);
		if (!y)
			continue;
		g = realloc(gone, (n + 1) * sizeof(*gone));
		r = g ? remove_placeholder(lz, y, y->path, y->ino) : -ENOMEM;
		gone = g ? g : gone;
		if (r < 0) {
			if (r != -EEXIST && r != -ENOENT)
				log_warn("cannot remove %s, a placeholder whose content the "
					 "peer no longer has: %s",
					 LOG_Q(y->path), strerror(-r));
			continue;
		}
		log_warn("removed %s: moved there from %s before its content was fetched, "
			 "and the peer has deleted or replaced that version since; it "
			 "cannot be fetched any more",
			 LOG_Q(y->path), LOG_Q(path));
		if ((gone[n] = strdup(y->path)))
			n++;
		lazy_forget(lz, y);
	}
	free(cand);
	/* its deletion, for the peer (which never could fetch it) */
	for (size_t i = 0; i < n; i++) {
		struct err err;
		if (scan_path_now(lz->c.scan, gone[i], strlen(gone[i]), &err) < 0)
			log_debug("cannot rescan %s: %s", LOG_Q(gone[i]), err.msg);
		free(gone[i]);
	}
	free(gone);
	lazy_wake(lz, false, NULL);
}

bool lazy_partial(struct lazy *lz, const char *path, const uint8_t *hash)
{
	struct lazy_file *z = lazy_find(lz, path);

	return z && z->nhave < z->nblocks && memcmp(z->hash, hash, SYNC_HASH_LEN) == 0;
}

bool lazy_partial_beneath(struct lazy *lz, const char *path, size_t len)
{
	void *v;

	for (size_t pos = 0; map_next(&lz->tab, &pos, NULL, NULL, &v);) {
		const struct lazy_file *z = v;
		if (z->nhave < z->nblocks && strncmp(z->path, path, len) == 0 &&
		    z->path[len] == '/')
			return true;
	}
	return false;
}

/* ---- the ensure seam ---- */

/*
 * A path not in the table is complete, unless it is a placeholder that was
 * renamed and the scanner has not told the index yet: a sparse file goes
 * to the loop, which rescans it first. Called with lz->mu held; drops it
 * around the stat.
 */
static bool maybe_placeholder(struct lazy *lz, const char *path)
{
	struct stat st;
	bool sparse;

	pthread_mutex_unlock(&lz->mu);
	sparse = fstatat(lz->c.rootfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
		 (uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size;
	pthread_mutex_lock(&lz->mu);
	return sparse || lazy_find(lz, path) != NULL;
}

/*
 * *dl: now plus ms (lz->cond waits on CLOCK_MONOTONIC); returns now in ms.
 * The one clock read of the engine: lazy_ensure() runs on a FUSE thread
 * and waits for the loop in real time, by nature (the loop's time comes
 * in as now_ms, the same clock_mono_ms() of the daemon's, base/clock.h).
 */
static uint64_t deadline_in(struct timespec *dl, int ms)
{
	return clock_mono_deadline(dl, ms > 0 ? (uint64_t)ms : 0);
}

int lazy_ensure(struct lazy *lz, const char *path, const struct stat *st, uint64_t off,
		uint64_t len, int timeout_ms)
{
	uint64_t ino = st ? (uint64_t)st->st_ino : 0;
	struct ensure_wait w = {.path = path, .ino = ino, .off = off, .len = len};
	struct ensure_wait **pp;
	struct timespec dl;
	struct lazy_file *z;
	uint64_t one = 1, now;
	uint32_t seen;
	int r = 0;

	if (!lz->c.on)
		return 0;
	if (!path) { /* the reader's file is no longer in the share */
		pthread_mutex_lock(&lz->mu);
		r = other_version(lz, ino, off, len);
		pthread_mutex_unlock(&lz->mu);
		return r;
	}
	if (path_check(path, strlen(path), NULL) < 0)
		return -EINVAL;
	now = deadline_in(&dl, timeout_ms);
	pthread_mutex_lock(&lz->mu);
	if (lz->closing) {
		pthread_mutex_unlock(&lz->mu);
		return -EIO;
	}
	lz->callers++;
	z = lazy_find(lz, path);
	if (z)
		z->used = now;
	if (!z && !maybe_placeholder(lz, path))
		goto out;
	z = lazy_find(lz, path);
	if (not_the_readers(z, ino)) {
		/* A version the peer replaced, answered from the retired copy;
		 * else maybe the peer's new one, placed a moment ago and not yet
		 * in the table: the loop knows (with the peer gone, none is
		 * placed: a file of the user's) */
		if (retired(lz, ino) || !lz->up || timeout_ms <= 0) {
			r = other_version(lz, ino, off, len);
			goto out;
		}
	} else if (z && st && (uint64_t)st->st_size != z->size) {
		goto out; /* resized by the user: not the placeholder any more */
	} else if (z && range_present(z, off, len)) {
		goto out;
	}
	if (!lz->up || timeout_ms <= 0) {
		r = -EIO;
		goto out;
	}
	w.next = lz->new;
	lz->new = &w;
	pthread_mutex_unlock(&lz->mu);
	if (write(lz->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("cannot wake the engine: %s", strerror(errno));
	pthread_mutex_lock(&lz->mu);
	z = lazy_find(lz, path);
	seen = z ? z->nhave : 0;
	while (!w.done && !lz->closing) {
		if (pthread_cond_timedwait(&lz->cond, &lz->mu, &dl) != ETIMEDOUT)
			continue;
		/* The deadline is for a peer that sends nothing. While blocks of
		 * the file keep coming, a long range (a whole large file, for an
		 * open for writing) waits on. */
		z = lazy_find(lz, path);
		if (!z || !lz->up || z->nhave <= seen)
			break;
		seen = z->nhave;
		(void)deadline_in(&dl, timeout_ms);
	}
	if (w.done) {
		r = w.result;
	} else {
		/* timed out or closing: take it out of whichever list holds it */
		r = -EIO;
		for (pp = &lz->new; *pp; pp = &(*pp)->next)
			if (*pp == &w) {
				*pp = w.next;
				break;
			}
		for (pp = &lz->wait; *pp; pp = &(*pp)->next)
			if (*pp == &w) {
				*pp = w.next;
				break;
			}
	}
out:
	lz->callers--;
	pthread_cond_broadcast(&lz->cond);
	pthread_mutex_unlock(&lz->mu);
	return r;
}

int lazy_ensure_fd(const struct lazy *lz)
{
	return lz->efd;
}

/* Opens z for writing blocks; checks it is still the placeholder we made. */
static int activate(struct lazy *lz, struct lazy_file *z)
{
	struct index_entry *x;
	const char *name;
	struct stat st;
	int dirfd, r = 0;

	if (z->active)
		return 0;
	x = malloc(sizeof(*x));
	if (!x)
		return -ENOMEM;
	if (index_get(lz->c.idx, z->path, z->path_len, x) < 0 || x->deleted ||
	    x->type != INDEX_FILE || !x->has_hash || memcmp(x->hash, z->hash, SYNC_HASH_LEN) ||
	    x->size != z->size) {
		r = -ESTALE;
		goto out;
	}
	dirfd = disk_open_parent(lz->c.disk, z->path, false, &name);
	if (dirfd < 0) {
		r = -ESTALE;
		goto out;
	}
	z->fd = openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	close(dirfd);
	if (z->fd < 0 || fstat(z->fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_ino != x->ino || (uint64_t)st.st_size != z->size) {
		r = -ESTALE; /* replaced or edited behind our back: the scanner says what */
		goto out;
	}
	if ((int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec != x->ctime_ns) {
		/* changed since the index saw it (a touch, or new bytes written with
		 * O_TRUNC): fetched blocks must not land on the user's bytes */
		r = -EAGAIN;
		goto out;
	}
	if (z->ino != (uint64_t)st.st_ino) {
		pthread_mutex_lock(&lz->mu);
		unretire(lz, (uint64_t)st.st_ino);
		z->ino = (uint64_t)st.st_ino;
		pthread_mutex_unlock(&lz->mu);
	}
	z->active = true;
	z->anext = lz->active;
	lz->active = z;
out:
	if (r < 0 && z->fd >= 0) {
		close(z->fd);
		z->fd = -1;
	}
	free(x);
	return r;
}

/* Marks [off, off + len) plus readahead as wanted. */
/* z has blocks to ask for, or asked for and not here yet. */
static bool wants_more(const struct lazy_file *z)
{
	if (z->inflight || z->manifest_req)
		return true;
	for (uint64_t i = 0; i < z->nblocks; i++)
		if (lazy_bit_get(z->want, i) && !lazy_bit_get(z->have, i))
			return true;
	return false;
}

static void want_range(struct lazy_file *z, uint64_t off, uint64_t len)
{
	uint64_t end;

	if (off >= z->size)
		return;
	end = len == UINT64_MAX || len > z->size - off ? z->size : off + len;
	/*
	 * A reader that comes back where the last readahead ended reads
	 * sequentially (cat, cp): double its readahead, up to 64 MiB, so it
	 * waits for a round trip a few times per file, not every 4 MiB. A
	 * random reader keeps 4 MiB.
	 */
	if (len != UINT64_MAX) {
		if (z->ra && end <= z->ra_end && off + z->ra + LAZY_READAHEAD >= z->ra_end) {
			/* inside what is already on its way: wait for it */
		} else {
			if (z->ra && off <= z->ra_end + BLOCKS_SIZE && off + z->ra + LAZY_READAHEAD >= z->ra_end)
				z->ra = z->ra * 2 > LAZY_READAHEAD_MAX ? LAZY_READAHEAD_MAX : z->ra * 2;
			else
				z->ra = LAZY_READAHEAD;
			end = end + z->ra > z->size ? z->size : end + z->ra;
			z->ra_end = end;
		}
	}
	for (uint64_t i = off / BLOCKS_SIZE; end > off && i <= (end - 1) / BLOCKS_SIZE; i++)
		if (!lazy_bit_get(z->have, i))
			lazy_bit_set(z->want, i);
}

/*
 * Whether z's inode is no longer at its path (moved away, or the path
 * replaced) while its index entry is still z's version: the scanner says
 * what became of it (a move keeps the placeholder under its new name, its
 * holes never hashed), so it is not forgotten here.
 */
static bool moved_away(struct lazy *lz, const struct lazy_file *z)
{
	struct index_entry *x = malloc(sizeof(*x));
	struct stat st;
	bool r;

	if (!x)
		return false;
	r = z->ino && index_get(lz->c.idx, z->path, z->path_len, x) == 0 && !x->deleted &&
	    x->type == INDEX_FILE && x->has_hash && !memcmp(x->hash, z->hash, SYNC_HASH_LEN) &&
	    x->ino == z->ino &&
	    (fstatat(lz->c.rootfd, z->path, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	     (uint64_t)st.st_ino != z->ino);
	free(x);
	return r;
}

static void check_moves(struct lazy *lz, bool requeue);

void lazy_on_ensure(struct lazy *lz, uint64_t now_ms)
{
	struct ensure_wait *w, *list;
	uint64_t v;
	bool up;

	lz->now_ms = now_ms;
	if (read(lz->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("cannot read the ensure eventfd: %s", strerror(errno));
	pthread_mutex_lock(&lz->mu);
	list = lz->new;
	lz->new = NULL;
	up = lz->up;
	/* the loop reads w->path etc. below without the lock: a waiter that
	 * times out takes itself out of lz->wait under the lock, and the loop
	 * looks at lz->wait only under it; copy what is needed first */
	size_t n = 0;
	for (w = list; w; w = w->next)
		n++;
	struct {
		char *path;
		uint64_t ino, off, len;
	} *c = calloc(n ? n : 1, sizeof(*c));
	size_t i = 0;
	while (list) {
		w = list;
		list = w->next;
		if (c && (c[i].path = strdup(w->path))) {
			c[i].ino = w->ino;
			c[i].off = w->off;
			c[i].len = w->len;
			i++;
		}
		w->next = lz->wait;
		lz->wait = w;
	}
	pthread_mutex_unlock(&lz->mu);
	for (size_t k = 0; k < i; k++) {
		struct lazy_file *z = lazy_find(lz, c[k].path);
		if (!z) {
			/* a renamed placeholder the scanner has not seen yet? */
			struct err err;
			if (scan_path_now(lz->c.scan, c[k].path, strlen(c[k].path), &err) < 0)
				log_debug("cannot rescan %s: %s", LOG_Q(c[k].path), err.msg);
			check_moves(lz, false); /* the loop is at its waiters */
			z = lazy_find(lz, c[k].path);
		}
		int r = z && up ? activate(lz, z) : 0;
		if (r == -EAGAIN) {
			/* the scanner says first what the change was: a touch leaves a
			 * placeholder, new bytes make it the user's file */
			struct err err;
			if (scan_path_now(lz->c.scan, c[k].path, strlen(c[k].path), &err) < 0)
				log_debug("cannot rescan %s: %s", LOG_Q(c[k].path), err.msg);
			check_moves(lz, false); /* the loop is at its waiters */
			z = lazy_find(lz, c[k].path);
			r = z ? activate(lz, z) : 0;
		}
		if (r == -ESTALE && !moved_away(lz, z)) {
			struct err err;

			lazy_forget(lz, z);
			/* stale (the user's file now, recorded): maybe another
			 * placeholder moved here since, which the scanner has not
			 * seen yet; it says (long-run seed 2007948) */
			if (scan_path_now(lz->c.scan, c[k].path, strlen(c[k].path), &err) < 0)
				log_debug("cannot rescan %s: %s", LOG_Q(c[k].path), err.msg);
			check_moves(lz, false); /* the loop is at its waiters */
			z = lazy_find(lz, c[k].path);
			r = z && up ? activate(lz, z) : -ESTALE;
		}
		if (r == -ESTALE) {
			/* forgotten above, or moved away: the scanner says where */
		} else if (r == -EAGAIN) {
			log_warn("%s changed on disk and the index does not say how yet; not "
				 "fetching into it",
				 LOG_Q(c[k].path));
			lazy_wake(lz, true, c[k].path);
		} else if (r == 0 && z && up && !not_the_readers(z, c[k].ino)) {
			want_range(z, c[k].off, c[k].len);
			if (!wants_more(z))
				lazy_deactivate(lz, z); /* all here already: no burst ends it */
		}
		free(c[k].path);
	}
	free(c);
	lazy_wake(lz, !up || !c, NULL);
}

/* ---- life cycle ---- */

static int reload_row(const struct lazy_row *row, void *ud)
{
	struct lazy *lz = ud;
	struct lazy_file *z = lazy_find(lz, row->path);

	if (z && memcmp(z->hash, row->hash, SYNC_HASH_LEN) == 0 && z->size == row->size) {
		z->seen = true;
		return 0;
	}
	if (z)
		z->seen = false; /* another version: replaced below */
	z = file_new(row->path, row->path_len, row->hash, row->size);
	if (!z)
		return -ENOMEM;
	memcpy(z->have, row->bits, row->bits_len);
	for (uint64_t i = 0; i < z->nblocks; i++)
		z->nhave += lazy_bit_get(z->have, i);
	lz->bytes += lazy_present_bytes(z);
	z->seen = true;
	z->used = lz->now_ms;
	if (insert(lz, z) < 0) { /* replaces the old one (forgotten) */
		lz->bytes -= lazy_present_bytes(z);
		file_free(z);
		return -ENOMEM;
	}
	return 0;
}

/*
 * After a reload: a waiter on a path whose placeholder is the reader's
 * file now and is not being fetched (moved there by the user, the walk
 * has recorded it since the loop took the waiter) goes back to the loop,
 * which asks for its range.
 */
static void requeue_moved(struct lazy *lz)
{
	struct ensure_wait **pp;
	uint64_t one = 1;
	bool any = false;

	pthread_mutex_lock(&lz->mu);
	for (pp = &lz->wait; *pp;) {
		struct ensure_wait *w = *pp;
		struct lazy_file *z = lazy_find(lz, w->path);
		if (!z || z->active || not_the_readers(z, w->ino) || z->nhave == z->nblocks) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->next = lz->new;
		lz->new = w;
		any = true;
	}
	pthread_mutex_unlock(&lz->mu);
	if (any && write(lz->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("cannot wake the engine: %s", strerror(errno));
}

/* Renames moved rows in the index: bring the table in line with it
 * (requeue: and hand waiters whose file it tracks now to the loop). */
static void check_moves(struct lazy *lz, bool requeue)
{
	struct lazy_file *gone[LAZY_SWEEP_BATCH];
	uint64_t moves;
	size_t n;
	void *v;

	if (!lz->c.on)
		return;
	moves = index_lazy_moves(lz->c.idx);
	if (moves == lz->moves) {
		lazy_wake(lz, false, NULL); /* a reader left for a scan (moved_here_unseen) */
		return;
	}
	lz->moves = moves;
	for (size_t pos = 0; map_next(&lz->tab, &pos, NULL, NULL, &v);)
		((struct lazy_file *)v)->seen = false;
	if (index_lazy_foreach(lz->c.idx, reload_row, lz) < 0) {
		log_warn("cannot reload the lazy-content records: %s", index_errmsg(lz->c.idx));
		return;
	}
	/* The files whose rows are gone: a batch at a time, as the table
	 * must not change during a walk. */
	do {
		n = 0;
		for (size_t pos = 0;
		     n < LAZY_SWEEP_BATCH && map_next(&lz->tab, &pos, NULL, NULL, &v);)
			if (!((struct lazy_file *)v)->seen)
				gone[n++] = v;
		for (size_t i = 0; i < n; i++)
			forget_mem(lz, gone[i]);
	} while (n == LAZY_SWEEP_BATCH);
	lazy_wake(lz, false, NULL);
	if (requeue)
		requeue_moved(lz);
}

void lazy_check_moves(struct lazy *lz)
{
	check_moves(lz, true);
}

/* The waiters on path go back to lz->new: the loop takes them again
 * (lazy_on_ensure) and wants their ranges of the file at path now. */
static void requeue(struct lazy *lz, const char *path)
{
	struct ensure_wait **pp;
	uint64_t one = 1;
	bool any = false;

	pthread_mutex_lock(&lz->mu);
	for (pp = &lz->wait; *pp;) {
		struct ensure_wait *w = *pp;
		if (strcmp(w->path, path) != 0) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->next = lz->new;
		lz->new = w;
		any = true;
	}
	pthread_mutex_unlock(&lz->mu);
	if (any && write(lz->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("cannot wake the engine: %s", strerror(errno));
}

int lazy_moved(struct lazy *lz, const char *from, size_t from_len, const char *to,
	       size_t to_len)
{
	struct lazy_file *z;
	int r;

	if (!lz->c.on)
		return 0;
	z = lazy_find(lz, to);
	if (z)
		forget_mem(lz, z); /* its row goes in index_lazy_move */
	z = lazy_find(lz, from);
	if (z)
		lazy_persist(lz, z); /* the blocks it holds move with it */
	r = index_lazy_move(lz->c.idx, from, from_len, to, to_len);
	lazy_check_moves(lz);
	/* Readers waiting on the file that was at to: the blocks they asked
	 * for went with it (its requests were dropped, nothing answers them).
	 * The holder of the replaced placeholder gets its retired copy's
	 * answer at once, a reader of a complete file 0; any other is asked
	 * again, of the file now at to. */
	lazy_wake(lz, false, NULL);
	requeue(lz, to);
	return r;
}

void lazy_on_up(struct lazy *lz)
{
	pthread_mutex_lock(&lz->mu);
	lz->up = true;
	pthread_mutex_unlock(&lz->mu);
}

void lazy_on_down(struct lazy *lz)
{
	struct lazy_file *z;

	pthread_mutex_lock(&lz->mu);
	lz->up = false;
	pthread_mutex_unlock(&lz->mu);
	while ((z = lz->active)) {
		xfer_drop_item(lz->c.xfer, z, NULL, NULL);
		memset(z->want, 0, lazy_bits_len(z->size));
		memset(z->asked, 0, lazy_bits_len(z->size));
		z->inflight = 0;
		z->manifest_req = 0;
		blocks_manifest_free(z->m);
		z->m = NULL;
		lazy_deactivate(lz, z);
	}
	lazy_persist_all(lz);
	lazy_wake(lz, true, NULL);
}

static int load_row(const struct lazy_row *row, void *ud)
{
	struct lazy *lz = ud;
	struct lazy_file *z = file_new(row->path, row->path_len, row->hash, row->size);
	struct stat st;

	if (!z)
		return -ENOMEM;
	memcpy(z->have, row->bits, row->bits_len);
	for (uint64_t i = 0; i < z->nblocks; i++)
		z->nhave += lazy_bit_get(z->have, i);
	for (uint64_t i = z->nblocks; i < (uint64_t)row->bits_len * 8; i++)
		lazy_bit_clear(z->have, i);
	lz->bytes += lazy_present_bytes(z);
	if (fstatat(lz->c.rootfd, z->path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size == z->size)
		z->ino = (uint64_t)st.st_ino; /* else the scanner will say what it is */
	if (insert(lz, z) < 0) {
		lz->bytes -= lazy_present_bytes(z);
		file_free(z);
		return -ENOMEM;
	}
	return 0;
}

int lazy_new(const struct lazy_ctx *c, struct lazy **ret)
{
	pthread_condattr_t ca;
	struct lazy *lz = calloc(1, sizeof(*lz));
	int r;

	*ret = lz;
	if (!lz)
		return -ENOMEM;
	lz->c = *c;
	lz->efd = -1;
	pthread_mutex_init(&lz->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&lz->cond, &ca);
	pthread_condattr_destroy(&ca);
	map_init(&lz->tab, 0); /* paths are the peer's: keyed at random */
	if (!lz->c.on)
		return 0;
	lz->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (lz->efd < 0)
		return -errno;
	r = index_lazy_init(lz->c.idx);
	if (r < 0)
		return r;
	lz->moves = index_lazy_moves(lz->c.idx);
	scan_set_placeholder_check(lz->c.scan, is_placeholder, lz);
	scan_set_moved_check(lz->c.scan, moved_check, lz);
	return index_lazy_foreach(lz->c.idx, load_row, lz);
}

void lazy_ensure_stop(struct lazy *lz)
{
	if (!lz->c.on)
		return;
	pthread_mutex_lock(&lz->mu);
	lz->closing = true;
	pthread_cond_broadcast(&lz->cond);
	pthread_mutex_unlock(&lz->mu);
}

void lazy_free(struct lazy *lz)
{
	void *v;

	if (!lz)
		return;
	lazy_ensure_stop(lz);
	pthread_mutex_lock(&lz->mu);
	while (lz->callers > 0)
		pthread_cond_wait(&lz->cond, &lz->mu);
	pthread_mutex_unlock(&lz->mu);
	if (lz->c.idx)
		lazy_persist_all(lz);
	for (size_t pos = 0; map_next(&lz->tab, &pos, NULL, NULL, &v);)
		file_free(v);
	map_done(&lz->tab);
	for (unsigned i = 0; i < LAZY_RETIRED_MAX; i++) {
		file_free(lz->retired[i]);
		lz->retired[i] = NULL;
	}
	lz->active = NULL;
	if (lz->efd >= 0)
		close(lz->efd);
	lz->efd = -1;
	pthread_mutex_destroy(&lz->mu);
	pthread_cond_destroy(&lz->cond);
	free(lz);
}
