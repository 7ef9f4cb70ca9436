/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The inode table: (st_dev, st_ino) -> struct tfs_inode, with lookup counts. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tfs_internal.h"

/* The map key of an inode: no padding, so its bytes are the identity. */
struct inode_key {
	uint64_t dev, ino;
};

static struct inode_key key_of(dev_t dev, ino_t ino)
{
	return (struct inode_key){.dev = (uint64_t)dev, .ino = (uint64_t)ino};
}

int tfs_itable_init(struct tfs *tfs)
{
	map_init(&tfs->inodes, 0);
	return 0;
}

void tfs_itable_done(struct tfs *tfs)
{
	void *v;

	for (size_t pos = 0; map_next(&tfs->inodes, &pos, NULL, NULL, &v);) {
		struct tfs_inode *n = v;

		if (n != &tfs->root) {
			close(n->fd);
			free(n);
		}
	}
	map_done(&tfs->inodes);
}

int tfs_itable_add_root(struct tfs *tfs)
{
	struct inode_key k = key_of(tfs->root.dev, tfs->root.ino);

	return map_put(&tfs->inodes, &k, sizeof(k), &tfs->root, NULL) < 0 ? -ENOMEM : 0;
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
	struct inode_key k = key_of(dev, ino);
	void *v;

	return map_get(&tfs->inodes, &k, sizeof(k), &v) ? v : NULL;
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
	if (fresh) {
		struct inode_key k = key_of(st->st_dev, st->st_ino);

		fresh->fd = fd;
		fresh->dev = st->st_dev;
		fresh->ino = st->st_ino;
		fresh->nlookup = 1;
		if (map_put(&tfs->inodes, &k, sizeof(k), fresh, NULL) < 0) {
			free(fresh);
			fresh = NULL;
		}
	}
	pthread_mutex_unlock(&tfs->lock);
	return fresh; /* NULL: out of memory, fd still the caller's */
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
		struct inode_key k = key_of(inode->dev, inode->ino);

		(void)map_del(&tfs->inodes, &k, sizeof(k), NULL);
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
	void *v;

	pthread_mutex_lock(&tfs->lock);
	ids = malloc((map_count(&tfs->inodes) + 1) * sizeof(*ids));
	if (!ids) {
		pthread_mutex_unlock(&tfs->lock);
		return -ENOMEM;
	}
	for (size_t pos = 0; map_next(&tfs->inodes, &pos, NULL, NULL, &v);) {
		struct tfs_inode *n = v;

		ids[k++] = n == &tfs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
	}
	pthread_mutex_unlock(&tfs->lock);
	*ret_ids = ids;
	return (ssize_t)k;
}
