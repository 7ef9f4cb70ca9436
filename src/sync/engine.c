/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine's life cycle, the index exchange and status. Applying remote
 * changes is apply.c, fetching content fetch.c, serving it serve.c; the
 * design note is in engine.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "sync/engine_int.h"

/*
 * Every entry point gives the time to the engine and to each part at once,
 * so that a part's callbacks from the transfer table (an answer dispatched
 * to it) see the time of this call, not of its last own entry.
 */
static void set_now(struct engine *e, uint64_t now_ms)
{
	e->now_ms = now_ms;
	if (e->fetch)
		e->fetch->now_ms = now_ms;
	if (e->serve)
		e->serve->now_ms = now_ms;
	if (e->apply)
		e->apply->now_ms = now_ms;
	if (e->lazyf)
		e->lazyf->now_ms = now_ms;
	if (e->lazy)
		e->lazy->now_ms = now_ms;
}

static void engine_stop(struct engine *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void engine_protocol_error(struct engine *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void engine_pump_transfers(struct engine *e);

static void engine_stop(struct engine *e, const char *fmt, ...)
{
	va_list ap;

	if (e->stopped[0])
		return;
	va_start(ap, fmt);
	vsnprintf(e->stopped, sizeof(e->stopped), fmt, ap);
	va_end(ap);
	log_err("syncing stopped: %s", e->stopped);
	fetch_on_down(e->fetch, e->now_ms);
	xfer_reset(&e->xfer);
}

const char *engine_stopped(const struct engine *e)
{
	return e->stopped[0] ? e->stopped : NULL;
}

static int engine_send(struct engine *e, const uint8_t *msg, size_t len)
{
	if (!e->up)
		return -ENOTCONN;
	int r = e->io.send(e->io.ud, msg, len);
	if (r < 0)
		e->up = false;
	return r;
}

static void engine_protocol_error(struct engine *e, const char *fmt, ...)
{
	char why[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (e->up) {
		e->up = false;
		e->io.close(e->io.ud, why); /* logs it, with the peer's address */
	} else {
		log_warn("protocol error from the peer: %s", why);
	}
}

/* The peer's changes we have applied: up to its last INDEX_DONE, but not
 * past a change still being fetched. */
static int engine_store_applied(struct engine *e)
{
	uint64_t safe = e->peer_done_seq, min = fetch_min_pending_seq(e->fetch);

	if (!e->peer_known)
		return 0;
	if (min && min - 1 < safe)
		safe = min - 1;
	if (safe <= e->peer_applied)
		return 0;
	int r = index_peer_seq_set(e->idx, e->peer_dev, safe);
	if (r < 0)
		return r;
	e->peer_applied = safe;
	return 0;
}

/* ---- local changes ---- */

static void run_scan(struct engine *e)
{
	struct err err = {.msg = ""};
	int r;

	e->scan_due_ms = 0;
	if (e->stopped[0])
		return;
	r = scan_run(e->scan, e->now_ms, &err);
	if (r == -ESTALE) {
		engine_stop(e, "%s", err.msg);
		return;
	}
	if (r < 0)
		log_warn("cannot scan the share %s: %s", e->opts.root,
			 err_is_set(&err) ? err.msg : strerror(-r));
	engine_pump(e, e->now_ms);
}

void engine_on_inotify(struct engine *e, uint64_t now_ms)
{
	int r;

	set_now(e, now_ms);
	r = scan_on_inotify(e->scan);
	if (r > 0 && !e->scan_due_ms)
		e->scan_due_ms = now_ms + ENGINE_SCAN_DELAY_MS;
}

void engine_on_hash(struct engine *e, uint64_t now_ms)
{
	struct err err = {.msg = ""};
	int r;

	set_now(e, now_ms);
	r = scan_on_hash_done(e->scan, &err);
	if (r < 0)
		log_warn("cannot record hashed files: %s",
			 err_is_set(&err) ? err.msg : strerror(-r));
	engine_pump(e, now_ms);
}

/* ---- sending our index ---- */

struct send_ctx {
	struct engine *e;
	struct msg_index_writer w;
	uint64_t last_seq; /* of the last entry in w */
	uint64_t sent_seq; /* of the last entry in a sent message */
	int err;
};

static void entry_to_sync(const struct index_entry *x, struct sync_entry *s)
{
	memset(s, 0, sizeof(*s));
	s->path = x->path;
	s->path_len = x->path_len;
	s->kind = (uint8_t)x->type;
	s->flags = x->deleted ? SYNC_ENTRY_DELETED : 0;
	s->mode = (uint16_t)(x->mode & 0777);
	s->size = x->type == INDEX_DIR ? 0 : x->size;
	s->mtime_ns = x->mtime_ns;
	if (x->type != INDEX_DIR && x->has_hash)
		memcpy(s->hash, x->hash, SYNC_HASH_LEN);
	if (x->type == INDEX_SYMLINK) {
		s->target = x->target;
		s->target_len = x->deleted ? 0 : x->target_len;
	}
	s->nvv = x->vv.n;
	for (unsigned i = 0; i < x->vv.n; i++) {
		memcpy(s->vv[i].device, x->vv.e[i].device, SYNC_DEVICE_LEN);
		s->vv[i].counter = x->vv.e[i].counter;
	}
	s->seq = x->seq;
}

static int flush_batch(struct send_ctx *c)
{
	int n = msg_index_finish(&c->w);

	if (n < 0)
		return n;
	if (engine_send(c->e, c->w.buf, (size_t)n) < 0)
		return -ENOTCONN;
	log_debug("sync: sent %u entries", c->w.count);
	c->sent_seq = c->last_seq;
	c->e->done_owed = true;
	return 0;
}

static int send_one(const struct index_entry *x, void *ud)
{
	struct send_ctx *c = ud;
	struct sync_entry s;
	int r;

	entry_to_sync(x, &s);
	r = msg_index_add(&c->w, &s);
	if (r == -EMSGSIZE && c->w.count > 0) {
		r = flush_batch(c);
		if (r < 0) {
			c->err = r;
			return 1;
		}
		/* the next message must fit too */
		if (c->e->io.room(c->e->io.ud) < SYNC_INDEX_MSG_MAX + 1024) {
			c->w.count = 0;
			return 1;
		}
		r = msg_index_writer_init(&c->w, c->e->buf, SYNC_INDEX_MSG_MAX);
		if (r == 0)
			r = msg_index_add(&c->w, &s);
	}
	if (r < 0)
		log_warn("cannot send the index entry of %s: %s; skipping it", LOG_Q(x->path),
			 strerror(-r));
	c->last_seq = x->seq;
	if (r < 0 && c->w.count == 0)
		c->sent_seq = x->seq; /* nothing pending before it */
	return 0;
}

#define INDEX_ROOM (SYNC_INDEX_MSG_MAX + 1024)

static void send_index(struct engine *e)
{
	struct send_ctx c = {.e = e};
	uint64_t top = index_seq(e->idx);
	int r;

	if (!e->up || !e->got_start || e->stopped[0])
		return;
	if (e->send_seq < top) {
		if (e->io.room(e->io.ud) < INDEX_ROOM)
			return;
		if (msg_index_writer_init(&c.w, e->buf, SYNC_INDEX_MSG_MAX) < 0)
			return;
		c.last_seq = c.sent_seq = e->send_seq;
		r = index_changes_since(e->idx, e->send_seq, send_one, &c);
		if (r < 0) {
			log_warn("cannot read the index: %s", index_errmsg(e->idx));
			return;
		}
		if (c.err < 0)
			return; /* the connection is gone */
		if (r == 0) {
			/* walked to the end: send the rest */
			if (c.w.count > 0) {
				if (e->io.room(e->io.ud) < INDEX_ROOM) {
					e->send_seq = c.sent_seq;
					return;
				}
				if (flush_batch(&c) < 0)
					return;
			}
			e->send_seq = c.last_seq > top ? c.last_seq : top;
		} else {
			e->send_seq = c.sent_seq; /* out of room: go on when writable */
			return;
		}
	}
	if (e->done_owed && e->io.room(e->io.ud) >= 64) {
		uint8_t b[16];
		struct sync_msg m = {.type = SYNC_MSG_INDEX_DONE};
		m.index_done.seq = e->send_seq;
		int n = msg_encode(&m, b, sizeof(b));
		if (n > 0 && engine_send(e, b, (size_t)n) == 0)
			e->done_owed = false;
	}
}

void engine_pump(struct engine *e, uint64_t now_ms)
{
	set_now(e, now_ms);
	lazy_check_moves(e->lazy); /* a scan may have renamed a placeholder */
	if (!e->up || e->stopped[0])
		return;
	send_index(e);
	serve_pump(e->serve, e->now_ms);
	send_index(e); /* a placeholder the peer asked for may have gone */
	engine_pump_transfers(e);
}

/* The lazy fetcher, then the fetcher: what fits of our requests. */
static void engine_pump_transfers(struct engine *e)
{
	if (!e->up || e->stopped[0])
		return;
	lazy_pump(e->lazyf, e->now_ms); /* a reader waits for these: before the eager fetches */
	fetch_pump(e->fetch, e->now_ms);
}

/* ---- connection ---- */

void engine_on_up(struct engine *e, uint64_t now_ms)
{
	struct sync_msg m = {.type = SYNC_MSG_START};
	uint8_t b[64];
	uint64_t since = 0;
	int n;

	set_now(e, now_ms);
	e->up = true;
	e->sent_start = e->got_start = e->got_done = false;
	e->done_owed = false;
	if (index_peer_get(e->idx, m.start.expect) == 0 &&
	    index_peer_seq_get(e->idx, m.start.expect, &since) < 0)
		since = 0;
	memcpy(m.start.device, e->self_dev, VV_DEVICE_LEN);
	m.start.since = since;
	n = msg_encode(&m, b, sizeof(b));
	if (n < 0 || engine_send(e, b, (size_t)n) < 0)
		return;
	e->sent_start = true;
	lazy_on_up(e->lazy);
	log_debug("sync: sent START (since %" PRIu64 ")", since);
}

void engine_on_down(struct engine *e, uint64_t now_ms)
{
	set_now(e, now_ms);
	e->up = false;
	e->got_start = e->sent_start = false;
	lazy_on_down(e->lazy);
	for (size_t i = 0; i < e->nbatch; i++)
		rentry_free(&e->batch[i]);
	e->nbatch = 0;
	e->batch_str = 0;
	fetch_on_down(e->fetch, now_ms);
	xfer_reset(&e->xfer);
	serve_on_down(e->serve);
}

static int on_start(struct engine *e, const struct sync_start *s)
{
	uint64_t top = index_seq(e->idx), applied = 0;
	int r;

	if (e->got_start) {
		engine_protocol_error(e, "a second START");
		return -EBADMSG;
	}
	if (memcmp(s->device, e->self_dev, VV_DEVICE_LEN) == 0) {
		engine_protocol_error(e, "the peer claims our own device id");
		return -EBADMSG;
	}
	e->got_start = true;
	memcpy(e->peer_dev, s->device, VV_DEVICE_LEN);
	apply_set_peer(e->apply, s->device);
	e->peer_known = true;
	r = index_peer_set(e->idx, s->device);
	if (r == -EEXIST)
		log_notice("the peer's index was recreated (new device id): exchanging the whole "
			   "index again");
	else if (r < 0)
		log_warn("cannot store the peer's device id: %s", index_errmsg(e->idx));
	if (index_peer_seq_get(e->idx, s->device, &applied) == 0)
		e->peer_applied = applied;
	e->peer_done_seq = e->peer_applied;
	if (memcmp(s->expect, e->self_dev, VV_DEVICE_LEN) != 0 || s->since > top) {
		e->send_seq = 0;
	} else {
		e->send_seq = s->since;
		/* The peer has applied our tombstones up to since: it cannot bring
		 * those paths back any more. */
		r = index_gc_tombstones(e->idx, s->since);
		if (r > 0)
			log_debug("sync: forgot %d tombstones the peer has applied", r);
	}
	log_debug("sync: peer START, sending our changes after %" PRIu64 " (of %" PRIu64 ")",
		  e->send_seq, top);
	e->done_owed = true; /* the first INDEX_DONE is owed even for nothing */
	engine_pump(e, e->now_ms);
	return 0;
}

size_t engine_rentry_str_bytes(size_t path_len, size_t target_len)
{
	return rentry_str_bytes(path_len, target_len);
}

size_t engine_batch_room(size_t n, size_t cap, size_t str, size_t need, size_t max)
{
	const size_t slot = sizeof(struct rentry);
	size_t slots;

	if (n > cap || str > max || need > max - str)
		return 0;
	slots = (max - str - need) / slot; /* what the bytes left can hold */
	if (slots <= n)
		return 0;
	if (n < cap) /* room in the array; it shrinks when the strings need its bytes */
		return cap <= slots ? cap : slots;
	return cap == 0 ? (slots < 256 ? slots : 256) : (slots < cap * 2 ? slots : cap * 2);
}

void engine_apply_batch(struct engine *e, bool final)
{
	log_debug("sync: applying a batch of %zu entries", e->nbatch);
	apply_batch(e->apply, &e->batch, &e->nbatch, &e->batch_cap, &e->batch_str,
		    ENGINE_BATCH_BYTES, final, e->now_ms);
}

/*
 * Holds s in the batch. Returns 0, -ENOBUFS when it does not fit within
 * ENGINE_BATCH_BYTES (apply the batch, then add it), or -ENOMEM.
 */
static int batch_add(struct engine *e, const struct sync_entry *s)
{
	size_t tlen = s->kind == SYNC_KIND_SYMLINK ? s->target_len : 0;
	size_t need = engine_rentry_str_bytes(s->path_len, tlen);
	size_t cap = engine_batch_room(e->nbatch, e->batch_cap, e->batch_str, need,
				       ENGINE_BATCH_BYTES);
	struct rentry *r;

	if (cap == 0)
		return -ENOBUFS;
	if (cap != e->batch_cap) {
		struct rentry *nb = realloc(e->batch, cap * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		e->batch = nb;
		e->batch_cap = cap;
	}
	r = &e->batch[e->nbatch];
	memset(r, 0, sizeof(*r));
	r->path = strndup(s->path, s->path_len);
	if (!r->path)
		return -ENOMEM;
	r->path_len = s->path_len;
	r->kind = s->kind;
	r->deleted = s->flags & SYNC_ENTRY_DELETED;
	r->mode = s->mode;
	r->size = s->size;
	r->mtime_ns = s->mtime_ns;
	memcpy(r->hash, s->hash, SYNC_HASH_LEN);
	if (tlen) {
		r->target = strndup(s->target, s->target_len);
		if (!r->target) {
			free(r->path);
			return -ENOMEM;
		}
		r->target_len = s->target_len;
	}
	vv_init(&r->vv);
	for (unsigned i = 0; i < s->nvv; i++) {
		memcpy(r->vv.e[i].device, s->vv[i].device, VV_DEVICE_LEN);
		r->vv.e[i].counter = s->vv[i].counter;
	}
	r->vv.n = s->nvv;
	r->seq = s->seq;
	e->nbatch++;
	e->batch_str += need;
	return 0;
}

static int on_index_update(struct engine *e, const struct sync_index_update *u)
{
	struct msg_index_iter it;
	struct sync_entry s;
	int r;

	msg_index_iter_init(&it, u);
	while ((r = msg_index_next(&it, &s)) > 0) {
		if (scan_excluded(s.path, s.path_len)) {
			char q[128];
			log_warn("refused the peer's entry %s: the name is reserved for tandem",
				 log_quote(s.path, s.path_len, q, sizeof(q)));
			e->refused++;
			continue;
		}
		r = batch_add(e, &s);
		if (r == -ENOBUFS) {
			/* what we hold reached ENGINE_BATCH_BYTES: apply it first */
			log_debug("sync: applying %zu of the peer's entries before its INDEX_DONE",
				  e->nbatch);
			engine_apply_batch(e, false);
			r = batch_add(e, &s);
		}
		if (r < 0) {
			engine_protocol_error(e, "out of memory holding the peer's index");
			return -EBADMSG;
		}
	}
	return 0;
}

static void on_index_done(struct engine *e, uint64_t seq)
{
	/* the mark rises after the batch: a download dropped while applying
	 * it (replaced by a newer version) records what is applied, and
	 * downloads of the batch not yet queued must still hold it back */
	engine_apply_batch(e, true);
	if (seq > e->peer_done_seq)
		e->peer_done_seq = seq;
	e->got_done = true;
	if (engine_store_applied(e) < 0)
		log_warn("cannot record the peer's sequence: %s", index_errmsg(e->idx));
	engine_pump(e, e->now_ms);
}

int engine_on_msg(struct engine *e, const uint8_t *p, size_t len, uint64_t now_ms)
{
	struct err err;
	struct sync_msg m;
	int r;

	set_now(e, now_ms);
	r = msg_decode(p, len, &m, &err);
	if (r == -EPROTONOSUPPORT) {
		log_debug("ignoring a sync message the peer's newer version sent: %s", err.msg);
		return 0;
	}
	if (r < 0) {
		engine_protocol_error(e, "%s", err.msg);
		return -EBADMSG;
	}
	if (m.type != SYNC_MSG_START && !e->got_start) {
		engine_protocol_error(e, "%s before START", msg_type_name(m.type));
		return -EBADMSG;
	}
	if (e->stopped[0] && m.type != SYNC_MSG_START)
		return 0; /* nothing moves while stopped */
	switch (m.type) {
	case SYNC_MSG_START:
		return on_start(e, &m.start);
	case SYNC_MSG_INDEX_UPDATE:
		return on_index_update(e, &m.index_update);
	case SYNC_MSG_INDEX_DONE:
		on_index_done(e, m.index_done.seq);
		return 0;
	case SYNC_MSG_BLOCK_REQUEST:
	case SYNC_MSG_MANIFEST_REQUEST:
		r = serve_on_request(e->serve, &m);
		if (r == 0)
			serve_pump(e->serve, now_ms);
		return r;
	case SYNC_MSG_CANCEL:
		serve_on_cancel(e->serve, m.cancel.req_id);
		return 0;
	case SYNC_MSG_MANIFEST:
		xfer_on_manifest(&e->xfer, &m.manifest);
		engine_pump_transfers(e);
		return 0;
	case SYNC_MSG_BLOCK_DATA:
		xfer_on_block(&e->xfer, &m.block_data);
		engine_pump_transfers(e);
		return 0;
	case SYNC_MSG_BLOCK_ERROR:
		xfer_on_error(&e->xfer, &m.block_error);
		engine_pump_transfers(e);
		return 0;
	}
	return 0;
}

/* ---- timers ---- */

uint64_t engine_deadline(const struct engine *e)
{
	uint64_t t = UINT64_MAX;

	if (e->scan_due_ms)
		t = e->scan_due_ms;
	if (!e->stopped[0] && scan_deadline(e->scan) < t)
		t = scan_deadline(e->scan); /* held deletions (scan.h) */
	if (fetch_deadline(e->fetch) < t)
		t = fetch_deadline(e->fetch);
	if (serve_deadline(e->serve) < t)
		t = serve_deadline(e->serve);
	if (lazy_deadline(e->lazy) < t)
		t = lazy_deadline(e->lazy);
	if (lazy_fetch_deadline(e->lazyf) < t)
		t = lazy_fetch_deadline(e->lazyf);
	if (hold_deadline(e->hold) < t)
		t = hold_deadline(e->hold);
	return t;
}

void engine_tick(struct engine *e, uint64_t now)
{
	set_now(e, now);
	if (hold_expire(e->hold, now) && scan_retry_held(e->scan))
		run_scan(e); /* a file open for writing too long goes out (hold.h) */
	if ((e->scan_due_ms && now >= e->scan_due_ms) || now >= scan_deadline(e->scan))
		run_scan(e);
	fetch_tick(e->fetch, now);
	lazy_tick(e->lazy, now);
	lazy_fetch_tick(e->lazyf, now);
	serve_tick(e->serve, now);
}

/* ---- status ---- */

static const char *state_name(struct engine *e)
{
	if (e->stopped[0])
		return "stopped";
	if (!e->up)
		return "offline";
	if (scan_pending(e->scan) || e->scan_due_ms)
		return "scanning";
	if (!e->got_done || fetch_busy(e->fetch) || e->send_seq < index_seq(e->idx) ||
	    e->done_owed || e->nbatch)
		return "syncing";
	return "idle";
}

static void add_special(const char *path, void *ud)
{
	json_array_append_new(ud, json_string(path));
}

void engine_status(struct engine *e, json_t *o, uint64_t now_ms)
{
	uint64_t files = 0, dirs = 0, links = 0, hfiles = 0, hbytes = 0, received, refused;
	json_t *tr = json_array();

	set_now(e, now_ms);
	if (index_count_live(e->idx, &files, &dirs, &links) < 0)
		files = dirs = links = 0;
	scan_stats(e->scan, &hfiles, &hbytes);
	fetch_status(e->fetch, tr, now_ms);
	json_object_set_new(o, "sync_state", json_string(state_name(e)));
	json_object_set_new(o, "sync_error", e->stopped[0] ? json_string(e->stopped) : json_null());
	/* a file being fetched is pending, not in sync; only an update of
	 * ours is also among the live files */
	json_object_set_new(o, "files_in_sync",
			    json_integer((json_int_t)(files + links > e->fetch->nfetch_update
							      ? files + links - e->fetch->nfetch_update
							      : 0)));
	json_object_set_new(o, "files_pending",
			    json_integer((json_int_t)(e->fetch->nfetch + hfiles)));
	json_object_set_new(o, "dirs", json_integer((json_int_t)dirs));
	json_object_set_new(o, "bytes_sent", json_integer((json_int_t)e->serve->bytes_sent));
	/* each part counts its own */
	received = e->fetch->bytes_received + e->lazyf->bytes_received;
	refused = e->refused + e->disk.refused + e->fetch->refused + e->serve->refused +
		  e->lazyf->refused + e->apply->refused;
	json_object_set_new(o, "bytes_received", json_integer((json_int_t)received));
	json_object_set_new(o, "conflicts", json_integer((json_int_t)e->apply->conflicts));
	json_object_set_new(o, "refused", json_integer((json_int_t)refused));
	/* FIFOs, sockets, device nodes: kept here, never sent (SYNC.md §1) */
	json_t *sp = json_array();
	uint64_t nsp = scan_special(e->scan, ENGINE_STATUS_SPECIAL_MAX, add_special, sp);
	json_object_set_new(o, "not_synced", json_integer((json_int_t)nsp));
	json_object_set_new(o, "not_synced_paths", sp);
	json_object_set_new(o, "transfers", tr);
	json_object_set_new(o, "disk_full", fetch_disk_full(e->fetch));
	json_object_set_new(o, "sync_debug",
			    json_pack("{s:I, s:I, s:I, s:I, s:I, s:b}", "requests",
				      (json_int_t)e->xfer.n, "window", (json_int_t)e->xfer.window,
				      "serving", (json_int_t)e->serve->n, "fetches",
				      (json_int_t)e->fetch->nfetch, "room",
				      (json_int_t)(e->up ? e->io.room(e->io.ud) : 0), "up", e->up));
}

/* ---- lazy mode ---- */

int engine_ensure(struct engine *e, const char *path, const struct stat *st, uint64_t off,
		  uint64_t len, int timeout_ms)
{
	return lazy_ensure(e->lazy, path, st, off, len, timeout_ms);
}

int engine_ensure_fd(const struct engine *e)
{
	return lazy_ensure_fd(e->lazy);
}

void engine_ensure_stop(struct engine *e)
{
	lazy_ensure_stop(e->lazy);
}

void engine_on_ensure(struct engine *e, uint64_t now_ms)
{
	set_now(e, now_ms);
	lazy_on_ensure(e->lazy, now_ms);
	engine_pump(e, now_ms); /* a rename the rescan found goes out before our requests */
}

/* ---- writes through the mount (hold.h) ---- */

int engine_write_open(struct engine *e, uint64_t dev, uint64_t ino)
{
	return hold_open(e->hold, dev, ino);
}

void engine_write_close(struct engine *e, uint64_t dev, uint64_t ino)
{
	hold_close(e->hold, dev, ino);
}

void engine_write_publish(struct engine *e, uint64_t dev, uint64_t ino)
{
	hold_publish(e->hold, dev, ino);
}

int engine_hold_fd(const struct engine *e)
{
	return hold_fd(e->hold);
}

void engine_on_hold(struct engine *e, uint64_t now_ms)
{
	set_now(e, now_ms);
	if (hold_on_event(e->hold) && scan_retry_held(e->scan) && !e->scan_due_ms)
		e->scan_due_ms = now_ms + ENGINE_SCAN_DELAY_MS;
}

static bool held_cb(void *ud, uint64_t dev, uint64_t ino)
{
	struct engine *e = ud;

	return hold_defer(e->hold, dev, ino, e->now_ms);
}

/* ---- life cycle ---- */

int engine_inotify_fd(const struct engine *e)
{
	return scan_inotify_fd(e->scan);
}

int engine_hash_fd(const struct engine *e)
{
	return scan_hash_fd(e->scan);
}

int engine_work_fd(const struct engine *e)
{
	return fetch_work_fd(e->fetch);
}

void engine_on_work(struct engine *e, uint64_t now_ms)
{
	set_now(e, now_ms);
	fetch_on_work(e->fetch, now_ms);
}

/* ---- what the parts get ---- */

static bool link_up_cb(void *ud)
{
	struct engine *e = ud;

	return e->up;
}

static int link_send_cb(void *ud, const uint8_t *msg, size_t len)
{
	return engine_send(ud, msg, len);
}

static size_t link_room_cb(void *ud)
{
	struct engine *e = ud;

	return e->io.room(e->io.ud);
}

static void link_fail_cb(void *ud, const char *why)
{
	engine_protocol_error(ud, "%s", why);
}

static int fetch_commit_cb(void *ud, struct fetch *f, bool synced)
{
	struct engine *e = ud;

	return apply_commit_fetch(e->apply, f, synced, e->now_ms);
}

static void fetch_applied_cb(void *ud)
{
	struct engine *e = ud;

	if (engine_store_applied(e) < 0)
		log_warn("cannot record the peer's sequence: %s", index_errmsg(e->idx));
}

static void fetch_pump_cb(void *ud)
{
	struct engine *e = ud;

	engine_pump(e, e->now_ms);
}

static bool serve_partial_cb(void *ud, const char *path, const uint8_t *hash)
{
	struct engine *e = ud;

	return lazy_partial(e->lazy, path, hash);
}

/* The peer asked for a placeholder of ours: nobody can fill it; it goes,
 * recorded as our deletion (lazy_fetch_drop). */
static void serve_unservable_cb(void *ud, const char *path, const uint8_t *hash)
{
	struct engine *e = ud;
	struct err err = {.msg = ""};
	int r = lazy_fetch_drop(e->lazyf, path, hash);

	if (r <= 0) {
		if (r < 0)
			log_debug("cannot drop the placeholder %s: %s", LOG_Q(path), strerror(-r));
		return;
	}
	log_info("sync: %s was only a placeholder here and the peer has not got its content "
		 "either (it asked for it): it can never be read, so it is deleted",
		 LOG_Q(path));
	if (scan_path_now(e->scan, path, strlen(path), &err) < 0)
		log_warn("cannot record the deletion of %s: %s", LOG_Q(path), err.msg);
	if (e->io.changed)
		e->io.changed(e->io.ud, path);
}

static void changed_cb(void *ud, const char *path)
{
	struct engine *e = ud;

	e->io.changed(e->io.ud, path);
}

static void transfers_pump_cb(void *ud)
{
	engine_pump_transfers(ud);
}

static const struct fetch_ops fetch_ops = {
	.commit = fetch_commit_cb,
	.applied = fetch_applied_cb,
	.pump = fetch_pump_cb,
};

/* The parts below the lazy table, each with what it needs (docs/SYNC.md
 * "Parts and threads"). 0 or -ENOMEM. */
static int parts_new(struct engine *e, const struct engine_opts *opts,
		     const struct engine_io *io)
{
	struct sync_link link = {.ud = e, .up = link_up_cb, .send = link_send_cb,
				 .room = link_room_cb, .fail = link_fail_cb};
	struct fetch_ctx fc = {.idx = e->idx, .xfer = &e->xfer, .disk = &e->disk, .link = link,
			       .buf = e->buf, .buf_len = ENGINE_MSG_BUF, .ops = &fetch_ops, .ud = e,
			       .no_workers = opts->no_workers};
	struct serve_ctx sc = {.idx = e->idx, .rootfd = e->rootfd, .link = link, .buf = e->buf,
			       .buf_len = ENGINE_MSG_BUF, .rate_bps = opts->rate_bps,
			       .partial = opts->lazy ? serve_partial_cb : NULL,
			       .unservable = opts->lazy ? serve_unservable_cb : NULL, .ud = e};
	struct lazy_fetch_ctx lfc = {.lz = e->lazy, .xfer = &e->xfer, .idx = e->idx,
				     .disk = &e->disk, .link = link, .buf = e->buf,
				     .buf_len = ENGINE_MSG_BUF, .cache_max = opts->cache_max,
				     .evict_age_ms = opts->evict_age_ms, .pump = transfers_pump_cb,
				     .ud = e};
	struct apply_ctx ac = {.idx = e->idx, .scan = e->scan, .disk = &e->disk, .lazy = e->lazy,
			       .lazy_mode = opts->lazy, .symlinks_all = opts->symlinks_all,
			       .changed = io->changed ? changed_cb : NULL, .ud = e};
	int r;

	memcpy(ac.self_dev, e->self_dev, VV_DEVICE_LEN);
	r = fetcher_new(&fc, &e->fetch);
	if (r < 0)
		return r;
	lfc.fetch = ac.fetch = e->fetch;
	r = server_new(&sc, &e->serve);
	if (r == 0)
		r = lazy_fetcher_new(&lfc, &e->lazyf);
	if (r == 0)
		r = applier_new(&ac, &e->apply);
	return r;
}

int engine_new(const struct engine_opts *opts, const struct engine_io *io, struct engine **ret,
	       struct err *err, uint64_t now_ms)
{
	struct lazy_ctx lc;
	struct engine *e;
	int r;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->opts = *opts;
	e->io = *io;
	e->now_ms = now_ms;
	e->buf = malloc(ENGINE_MSG_BUF);
	if (!e->buf) {
		r = -ENOMEM;
		err_set(err, "out of memory");
		goto fail;
	}
	r = index_open(opts->index_file, &e->idx, err);
	if (r < 0)
		goto fail;
	index_device_id(e->idx, e->self_dev);
	r = scan_new(opts->root, e->idx, &e->scan, err);
	if (r < 0)
		goto fail;
	r = hold_new(&e->hold);
	if (r < 0) {
		err_set(err, "cannot set up the write holds: %s", strerror(-r));
		goto fail;
	}
	scan_set_held_check(e->scan, held_cb, e);
	e->rootfd = scan_root_fd(e->scan);
	e->disk = (struct disk){.rootfd = e->rootfd, .idx = e->idx, .mode_mask = opts->mode_mask};
	lc = (struct lazy_ctx){.on = opts->lazy, .idx = e->idx, .scan = e->scan, .disk = &e->disk,
			       .xfer = &e->xfer, .rootfd = e->rootfd};
	r = lazy_new(&lc, &e->lazy); /* after rootfd: it looks at the placeholders */
	if (r < 0) {
		err_set(err, "cannot load the lazy-content records of %s: %s", opts->index_file,
			r == -ENOMEM ? strerror(-r) : index_errmsg(e->idx));
		goto fail;
	}
	r = parts_new(e, opts, io);
	if (r < 0) {
		err_set(err, "out of memory");
		goto fail;
	}
	if (opts->no_workers)
		scan_set_hash_inline(e->scan, true); /* hash on the loop too */
	e->scan_due_ms = now_ms ? now_ms : 1; /* the first, full scan at once (0: none) */
	*ret = e;
	return 0;
fail:
	engine_free(e);
	return r;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	if (e->fetch && e->serve && e->lazyf && e->apply)
		engine_on_down(e, e->now_ms);
	/* the fetcher first: its callbacks reach the others */
	fetcher_free(e->fetch);
	server_free(e->serve);
	applier_free(e->apply);
	lazy_fetcher_free(e->lazyf);
	lazy_free(e->lazy); /* waits for the FUSE threads inside engine_ensure() */
	free(e->batch);
	scan_free(e->scan);
	hold_free(e->hold);
	index_free(e->idx);
	free(e->buf);
	free(e);
}
