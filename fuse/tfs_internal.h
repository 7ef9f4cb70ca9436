/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_TFS_INTERNAL_H
#define TANDEM_TFS_INTERNAL_H

/*
 * Inside the FUSE adapter. Only the fuse/ sources include this (and libfuse).
 *
 * Design note. Like libfuse's passthrough_ll, every inode the kernel knows
 * is a struct tfs_inode holding an O_PATH fd of the backing object, keyed
 * by (st_dev, st_ino) so hard links and repeated lookups share one node.
 * The FUSE nodeid is the struct's address; the root is FUSE_ROOT_ID. The
 * kernel's lookup count lives in nlookup and the node is freed when forget
 * brings it to zero. Handlers never hold tfs->lock across a syscall or a
 * fuse_reply_*: they take it only to find, insert or drop a node.
 *
 * Cache invalidation for changes the engine makes in the backing directory
 * is queued by tfs_invalidate() and sent by the notifier thread, which holds
 * no lock while it calls into the kernel (an invalidation waits for the
 * kernel's inode locks, which a request in flight may hold).
 *
 * Lock order: tfs->lock and tfs->qlock are never held together.
 */

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/map.h"
#include "tfs.h"

struct tfs_inode {
	int fd;                 /* O_PATH|O_NOFOLLOW, immutable */
	dev_t dev;              /* immutable */
	ino_t ino;              /* immutable */
	uint64_t nlookup;       /* protected by tfs->lock */
};

struct tfs_inval {
	struct tfs_inval *next;
	char path[]; /* relative path, "" for everything */
};

struct tfs {
	struct fuse_session *se;
	char *mountpoint;
	char *root_path; /* backing root as /proc names it, for hook paths */
	int procfd;      /* /proc/self/fd, O_PATH */
	int eventfd;     /* readable once the session loop ended */
	dev_t mnt_dev;   /* st_dev of the mount, names the connection */
	struct tfs_hooks hooks;
	void *ud;

	pthread_mutex_t lock;
	struct tfs_inode root;        /* never freed before tfs_unmount */
	struct map inodes;            /* (dev, ino) -> tfs_inode *, protected by lock */

	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct tfs_inval *qhead;      /* protected by qlock */
	struct tfs_inval **qtail;     /* protected by qlock */
	bool qall;                    /* protected by qlock */
	bool qstop;                   /* protected by qlock */
	pthread_cond_t qdone;         /* signalled when a batch was sent */
	uint64_t qgen_queued;         /* protected by qlock */
	uint64_t qgen_done;           /* protected by qlock */

	pthread_t loop_thread;
	pthread_t notify_thread;
	bool loop_started, notify_started;
};

/* tfs_inode.c: the inode table. */
int tfs_itable_init(struct tfs *tfs);
void tfs_itable_done(struct tfs *tfs);
/* Puts tfs->root (dev, ino filled in) into the empty table. */
int tfs_itable_add_root(struct tfs *tfs);
struct tfs_inode *tfs_inode_get(fuse_req_t req, fuse_ino_t ino);
/* Finds the node for (st->st_dev, st->st_ino) and adds one lookup, or makes
 * one owning fd. Returns the node; on success fd is consumed (closed when a
 * node existed). NULL on ENOMEM (fd untouched). */
struct tfs_inode *tfs_inode_ref(struct tfs *tfs, int fd, const struct stat *st);
/* Finds the node without taking a reference: only its address escapes. */
struct tfs_inode *tfs_inode_find(struct tfs *tfs, dev_t dev, ino_t ino);
void tfs_inode_unref(struct tfs *tfs, struct tfs_inode *inode, uint64_t n);
/* Copies the nodeids of every known inode; returns the count, or -ENOMEM. */
ssize_t tfs_inode_list(struct tfs *tfs, fuse_ino_t **ret_ids);

/* tfs_ops.c: the request handlers. */
extern const struct fuse_lowlevel_ops tfs_ops;
double tfs_timeout(void);

/* Is name hidden in the directory parent? */
bool tfs_name_hidden(struct tfs *tfs, struct tfs_inode *parent, const char *name);

#endif
