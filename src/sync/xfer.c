/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The transfer table (xfer.h). */
#include <string.h>

#include "sync/xfer.h"

void xfer_init(struct xfer *x)
{
	memset(x, 0, sizeof(*x));
}

struct xfer_req *xfer_req_new(struct xfer *x, const struct xfer_ops *ops, void *owner, void *item)
{
	for (unsigned i = 0; i < XFER_MAX; i++) {
		struct xfer_req *q = &x->reqs[i];
		if (q->id)
			continue;
		if (++x->next_id == 0)
			x->next_id = 1;
		*q = (struct xfer_req){.id = x->next_id, .ops = ops, .owner = owner, .item = item};
		x->n++;
		return q;
	}
	return NULL;
}

void xfer_req_sent(struct xfer *x, struct xfer_req *q)
{
	if (q->manifest || q->counted)
		return;
	x->window += q->len;
	q->counted = true;
}

void xfer_req_done(struct xfer *x, struct xfer_req *q)
{
	if (!q->id)
		return;
	if (q->counted)
		x->window -= q->len;
	*q = (struct xfer_req){0};
	x->n--;
}

bool xfer_window_fits(const struct xfer *x, uint64_t len)
{
	return x->window + len <= XFER_WINDOW;
}

void xfer_drop_item(struct xfer *x, const void *item, void (*cancel)(void *ud, uint32_t id),
		    void *ud)
{
	for (unsigned i = 0; i < XFER_MAX; i++) {
		struct xfer_req *q = &x->reqs[i];
		if (!q->id || q->item != item)
			continue;
		if (cancel)
			cancel(ud, q->id);
		xfer_req_done(x, q);
	}
}

void xfer_reset(struct xfer *x)
{
	memset(x->reqs, 0, sizeof(x->reqs));
	x->n = 0;
	x->window = 0;
}

static struct xfer_req *find(struct xfer *x, uint32_t id)
{
	if (!id)
		return NULL;
	for (unsigned i = 0; i < XFER_MAX; i++)
		if (x->reqs[i].id == id)
			return &x->reqs[i];
	return NULL;
}

void xfer_on_manifest(struct xfer *x, const struct sync_manifest *m)
{
	struct xfer_req *q = find(x, m->req_id);

	if (q && q->manifest)
		q->ops->on_manifest(q->owner, q, m);
}

void xfer_on_block(struct xfer *x, const struct sync_block_data *b)
{
	struct xfer_req *q = find(x, b->req_id);

	if (q && !q->manifest) /* else cancelled or unknown: it crossed our CANCEL */
		q->ops->on_block(q->owner, q, b);
}

void xfer_on_error(struct xfer *x, const struct sync_block_error *b)
{
	struct xfer_req *q = find(x, b->req_id);

	if (q)
		q->ops->on_error(q->owner, q, b);
}
