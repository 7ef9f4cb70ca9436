/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The inode table: (st_dev, st_ino) -> struct tfs_inode, with lookup counts. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tfs_internal.h"

#define TFS_BUCKETS_MIN 256

static size_t hash_key(dev_t dev, ino_t ino, size_t nbuckets)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4fULL;

	return (size_t)(h >> 17) & (nbuckets - 1);
}

int tfs_itable_init(struct tfs *tfs)
{
	tfs->nbuckets = TFS_BUCKETS_MIN;
	tfs->buckets = calloc(tfs->nbuckets, sizeof(*tfs->buckets));
	if (!tfs->buckets)
		return -ENOMEM;
	tfs->count = 0;
	return 0;
}

void tfs_itable_done(struct tfs *tfs)
{
	for (size_t i = 0; i < tfs->nbuckets; i++) {
		struct tfs_inode *n = tfs->buckets ? tfs->buckets[i] : NULL;

		while (n) {
			struct tfs_inode *next = n->next;

			if (n != &tfs->root) {
				close(n->fd);
				free(n);
			}
			n = next;
		}
	}
	free(tfs->buckets);
	tfs->buckets = NULL;
	tfs->nbuckets = 0;
	tfs->count = 0;
}

void tfs_itable_add_root(struct tfs *tfs)
{
	size_t h = hash_key(tfs->root.dev, tfs->root.ino, tfs->nbuckets);

	tfs->root.next = tfs->buckets[h];
	tfs->buckets[h] = &tfs->root;
	tfs->count++;
}

struct tfs_inode *tfs_inode_get(fuse_req_t req, fuse_ino_t ino)
{
	struct tfs *tfs = fuse_req_userdata(req);

	if (ino == FUSE_ROOT_ID)
		return &tfs->root;
	return (struct tfs_inode *)(uintptr_t)ino;
}

/* Called with tfs->lock held. */
static struct tfs_inode *find_locked(struct tfs *tfs, dev_t dev, ino_t ino)
{
	struct tfs_inode *n = tfs->buckets[hash_key(dev, ino, tfs->nbuckets)];

	while (n && !(n->dev == dev && n->ino == ino))
		n = n->next;
	return n;
}

/* Called with tfs->lock held; failure to grow only costs speed. */
static void grow_locked(struct tfs *tfs)
{
	size_t nb = tfs->nbuckets * 2;
	struct tfs_inode **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < tfs->nbuckets; i++) {
		struct tfs_inode *n = tfs->buckets[i];

		while (n) {
			struct tfs_inode *next = n->next;
			size_t h = hash_key(n->dev, n->ino, nb);

			n->next = b[h];
			b[h] = n;
			n = next;
		}
	}
	free(tfs->buckets);
	tfs->buckets = b;
	tfs->nbuckets = nb;
}

struct tfs_inode *tfs_inode_find(struct tfs *tfs, dev_t dev, ino_t ino)
{
	struct tfs_inode *n;

	pthread_mutex_lock(&tfs->lock);
	n = find_locked(tfs, dev, ino);
	pthread_mutex_unlock(&tfs->lock);
	return n;
}

struct tfs_inode *tfs_inode_ref(struct tfs *tfs, int fd, const struct stat *st)
{
	struct tfs_inode *n, *fresh;

	/* Allocate outside the lock; usually the node is new. */
	fresh = calloc(1, sizeof(*fresh));
	pthread_mutex_lock(&tfs->lock);
	n = find_locked(tfs, st->st_dev, st->st_ino);
	if (n) {
		n->nlookup++;
		pthread_mutex_unlock(&tfs->lock);
		free(fresh);
		close(fd);
		return n;
	}
	if (!fresh) {
		pthread_mutex_unlock(&tfs->lock);
		return NULL;
	}
	fresh->fd = fd;
	fresh->dev = st->st_dev;
	fresh->ino = st->st_ino;
	fresh->nlookup = 1;
	if (tfs->count >= tfs->nbuckets * 2)
		grow_locked(tfs);
	size_t h = hash_key(fresh->dev, fresh->ino, tfs->nbuckets);
	fresh->next = tfs->buckets[h];
	tfs->buckets[h] = fresh;
	tfs->count++;
	pthread_mutex_unlock(&tfs->lock);
	return fresh;
}

void tfs_inode_unref(struct tfs *tfs, struct tfs_inode *inode, uint64_t n)
{
	bool dead = false;

	if (!inode || inode == &tfs->root)
		return;
	pthread_mutex_lock(&tfs->lock);
	/* The kernel never forgets more than it looked up; clamp if it did. */
	inode->nlookup -= n < inode->nlookup ? n : inode->nlookup;
	if (inode->nlookup == 0) {
		struct tfs_inode **pp = &tfs->buckets[hash_key(inode->dev, inode->ino, tfs->nbuckets)];

		while (*pp && *pp != inode)
			pp = &(*pp)->next;
		if (*pp)
			*pp = inode->next;
		tfs->count--;
		dead = true;
	}
	pthread_mutex_unlock(&tfs->lock);
	if (dead) {
		close(inode->fd);
		free(inode);
	}
}

ssize_t tfs_inode_list(struct tfs *tfs, fuse_ino_t **ret_ids)
{
	fuse_ino_t *ids;
	size_t k = 0;

	pthread_mutex_lock(&tfs->lock);
	ids = malloc((tfs->count + 1) * sizeof(*ids));
	if (!ids) {
		pthread_mutex_unlock(&tfs->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < tfs->nbuckets; i++)
		for (struct tfs_inode *n = tfs->buckets[i]; n; n = n->next)
			if (k < tfs->count + 1)
				ids[k++] = n == &tfs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
	pthread_mutex_unlock(&tfs->lock);
	*ret_ids = ids;
	return (ssize_t)k;
}
