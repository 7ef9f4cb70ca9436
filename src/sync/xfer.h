/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_XFER_H
#define TANDEM_SYNC_XFER_H

#include <stdbool.h>
#include <stdint.h>

#include "sync/msg.h"

/*
 * The transfer table: our MANIFEST_REQUEST and BLOCK_REQUEST messages in
 * flight, by request id, and the window (block bytes asked for and not yet
 * received). Each request carries who asked (an owner with its ops, and
 * the owner's item: a fetch, a placeholder), so an answer from the peer is
 * handed to exactly that owner; the table knows no client. The fetcher
 * (fetch.c) and the lazy fetcher (lazy_fetch.c) are its clients; the
 * engine owns it and feeds it the answers (xfer_on_*).
 *
 * Threads: the engine's loop only. No I/O: the clients send the requests.
 */

#define XFER_MAX 128			 /* requests in flight */
#define XFER_WINDOW ((uint64_t)32 << 20) /* block bytes asked for, not yet received */

struct xfer_req;

/* What an owner does with the answer to one of its requests. Each call
 * ends the request (the owner calls xfer_req_done) or leaves it for more
 * (a MANIFEST in chunks). */
struct xfer_ops {
	void (*on_manifest)(void *owner, struct xfer_req *q, const struct sync_manifest *m);
	void (*on_block)(void *owner, struct xfer_req *q, const struct sync_block_data *b);
	void (*on_error)(void *owner, struct xfer_req *q, const struct sync_block_error *b);
};

struct xfer_req {
	uint32_t id; /* 0: slot free */
	const struct xfer_ops *ops;
	void *owner;
	void *item;	/* the owner's: what the request is for */
	uint32_t block; /* block requests: index and length */
	uint32_t len;
	bool manifest;
	bool counted; /* its len is in the window */
};

struct xfer {
	struct xfer_req reqs[XFER_MAX];
	unsigned n; /* slots in use */
	uint32_t next_id;
	uint64_t window;
};

void xfer_init(struct xfer *x);

/* A free slot with a new id (never 0) for owner's item, or NULL when all
 * XFER_MAX are in flight. */
struct xfer_req *xfer_req_new(struct xfer *x, const struct xfer_ops *ops, void *owner, void *item);
/* q's block request went out: its len counts in the window until done. */
void xfer_req_sent(struct xfer *x, struct xfer_req *q);
/* Frees q's slot (its answer, if one still comes, is ignored). */
void xfer_req_done(struct xfer *x, struct xfer_req *q);
/* Whether len more block bytes fit in the window. */
bool xfer_window_fits(const struct xfer *x, uint64_t len);

/* Forgets every request for item; cancel (may be NULL) is called with each
 * id first, to tell the peer. */
void xfer_drop_item(struct xfer *x, const void *item, void (*cancel)(void *ud, uint32_t id),
		    void *ud);
/* Forgets every request (the connection is gone). */
void xfer_reset(struct xfer *x);

/* The peer's answers, handed to the request's owner; answers to unknown or
 * cancelled requests (or of the wrong kind) are ignored. */
void xfer_on_manifest(struct xfer *x, const struct sync_manifest *m);
void xfer_on_block(struct xfer *x, const struct sync_block_data *b);
void xfer_on_error(struct xfer *x, const struct sync_block_error *b);

#endif
