/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzzes the sync engine (src/sync/engine.h) through its I/O seam: one
 * engine over a fresh share and index per input, fed a sequence of
 * messages from a peer that the input describes, in plain or lazy mode.
 *
 * Input: byte 0 is a set of flags (FL_*): lazy mode, structured or raw
 * input, and a few options. Raw input is a list of messages, each a
 * 2-byte big-endian length and that many bytes, fed as they are. Structured
 * input is a list of operations (OP_*), each an opcode byte and its
 * arguments, that builds well-formed messages with msg.h's encoders (START,
 * INDEX_UPDATE, INDEX_DONE, peer requests, CANCEL), answers the engine's
 * own requests (MANIFEST, BLOCK_DATA, BLOCK_ERROR; right, wrong or lying),
 * advances the fake clock, reconnects, changes files locally and, in lazy
 * mode, calls engine_ensure() from a thread so the lazy fetcher and its
 * presence bitmaps are reached; OP_RAW mixes raw messages in. File content
 * comes from a small table of known files (plus two from the input), so an
 * answer can be right and a fetch can complete.
 *
 * Properties checked besides the sanitizers: every message the engine
 * sends decodes; it sends nothing while the connection is closed or down;
 * nothing appears outside the share (a peer's symlinks point there); the
 * engine starts on a fresh share; engine_free leaves no thread and no
 * leak; in plain mode, every file in the share has content someone wrote.
 * A huge size a peer announces (tests/fuzz/README.md) is patched into an
 * encoded entry, since the encoders refuse it.
 *
 * TANDEM_FUZZ_LOG=1 in the environment shows the engine's log (debug).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "sync/blocks.h"
#include "sync/engine.h"
#include "sync/msg.h"
#include "sync/scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
	FL_LAZY = 1U << 0,
	FL_STRUCTURED = 1U << 1,
	FL_SYMLINKS_ALL = 1U << 2, /* structured only: the harness chooses the targets */
	FL_CACHE_SMALL = 1U << 3,  /* lazy: a cache limit of 1 MiB */
	FL_RATE = 1U << 4,	   /* a serving rate cap */
	FL_UMASK = 1U << 5,	   /* mode_mask 022 */
	FL_HUGE = 1U << 6,	   /* structured: every file entry announces a size past the caps */
};

enum {
	OP_RAW,
	OP_START,
	OP_INDEX,
	OP_DONE,
	OP_ANSWER,
	OP_ANSWER_ALL,
	OP_REQUEST,
	OP_CANCEL,
	OP_TICK,
	OP_ENSURE,
	OP_RECONNECT,
	OP_LOCAL,
	OP_ROOM,
	OP_COUNT,
};

#define NPATHS 16
#define NCONTENT 7 /* 5 fixed, 2 from the input */
#define NPEND 256
#define NTHREADS 8
#define DYN_MAX 300

static const char *const paths[NPATHS] = {
	"a", "b",   "c",   "d", "d/a", "d/b",	  "d/e", "d/e/f",
	"e", "e/a", "big", "l", "d/l", ".tandem", "a/b", "sub dir/\xc3\xbc",
};

static const char *const targets[8] = {
	"a", "d/a", "../outside", "../outside/x", "../../outside", "..", "d", "nonexistent",
};

/* Sizes past the caps (and at them), patched into encoded entries: mostly
 * block counts past 32 bits that keep a small low half, what a count cut
 * to 32 bits would make of them. */
static const uint64_t huge_sizes[8] = {
	SYNC_FILE_MAX + 1,
	(UINT64_C(1) << 52) + 1,
	(UINT64_C(1) << 62) + 1,
	SYNC_FILE_MAX,
	(UINT64_C(1) << 56) + 3,
	(UINT64_C(1) << 60) + 7,
	(UINT64_C(1) << 52) + BLOCKS_SIZE,
	INT64_MAX,
};

/* FL_HUGE's sizes, by path: mostly block counts past 32 bits whose low
 * 32 bits are small (what a count cut to 32 bits would keep). */
static const uint64_t lying_sizes[8] = {
	(UINT64_C(1) << 52) + 1,
	(UINT64_C(1) << 62) + 1,
	(UINT64_C(1) << 56) + 3,
	SYNC_FILE_MAX + 1,
	(UINT64_C(1) << 52) + 5 * BLOCKS_SIZE,
	(UINT64_C(1) << 60) + 7,
	INT64_MAX,
	(UINT64_C(1) << 52) + BLOCKS_SIZE,
};

static const uint8_t peer_a[SYNC_DEVICE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t peer_b[SYNC_DEVICE_LEN] = {9, 9, 9, 9, 9, 9, 9, 9};

struct content {
	uint8_t *data;
	size_t len;
	uint8_t hash[SYNC_HASH_LEN];
	uint8_t *bh; /* block hashes */
	uint32_t nb;
};

struct pend {
	enum sync_msg_type type;
	uint32_t id;
	uint8_t hash[SYNC_HASH_LEN];
	uint64_t offset;
	uint32_t len;
};

struct ensure_thread {
	pthread_t t;
	struct engine *e;
	char path[64];
	struct stat st;
	bool has_st;
	uint64_t off, len;
	atomic_bool done;
	int result;
};

static struct {
	bool init;
	char base[256];
	unsigned runs;
	struct content c[NCONTENT];
	uint8_t dyn[2][DYN_MAX];
	uint8_t *buf; /* messages we build */

	/* per input */
	char dir[300], share[320], outside[320], index[320];
	struct engine *e;
	unsigned flags;
	bool up, closed;
	uint64_t now;
	uint8_t self[SYNC_DEVICE_LEN];
	bool got_self;
	const uint8_t *peer;
	uint64_t seq;
	size_t room;
	struct pend pend[NPEND];
	unsigned npend;
	uint64_t last_size[NPATHS]; /* of the file entry last sent for each path */
	uint8_t last_file;	    /* the path of the last file entry sent */
	struct ensure_thread th[NTHREADS];
	unsigned nth;
	unsigned sent;
	unsigned hash_waits; /* op_local's waits for the hasher, this input */
	bool verbose;	     /* TANDEM_FUZZ_LOG */
} S;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_engine: %s\n", what);
	abort();
}

/* ---- the input ---- */

struct in {
	const uint8_t *p;
	size_t left;
};

static uint8_t u8(struct in *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static uint16_t u16(struct in *in)
{
	uint16_t v = u8(in);
	return (uint16_t)(v << 8 | u8(in));
}

static uint64_t u64(struct in *in)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | u8(in);
	return v;
}

/* ---- content ---- */

static uint8_t part_hash[NCONTENT][SYNC_HASH_LEN]; /* of what op_local writes of one */

static int add_block(void *ud, uint32_t index, const uint8_t hash[BLOCKS_HASH_LEN])
{
	struct content *c = ud;

	memcpy(c->bh + (size_t)index * SYNC_HASH_LEN, hash, SYNC_HASH_LEN);
	return 0;
}

static void content_set(struct content *c, const uint8_t *data, size_t len)
{
	c->data = (uint8_t *)data;
	c->len = len;
	c->nb = (uint32_t)blocks_count(len);
	if (blocks_hash_buf(data, len, add_block, c, c->hash) < 0)
		fail("cannot hash a content");
}

static void content_init(void)
{
	static const size_t lens[5] = {0, 6, 5000, BLOCKS_SIZE + 100, 2 * BLOCKS_SIZE + 1};

	for (int k = 0; k < 5; k++) {
		uint8_t *d = malloc(lens[k] ? lens[k] : 1);
		if (!d)
			fail("out of memory");
		for (size_t i = 0; i < lens[k]; i++)
			d[i] = k == 1 ? (uint8_t) "hello\n"[i]
				      : (uint8_t)(i * (7 + 6 * k) ^ i >> 9);
		S.c[k].bh = malloc(3 * SYNC_HASH_LEN);
		content_set(&S.c[k], d, lens[k]);
	}
	for (int k = 5; k < NCONTENT; k++)
		S.c[k].bh = malloc(SYNC_HASH_LEN);
	for (int k = 0; k < 5; k++) /* what op_local writes of a large one */
		if (blocks_hash_buf(S.c[k].data, S.c[k].len > 65536 ? 65536 : S.c[k].len, NULL,
				    NULL, part_hash[k]) < 0)
			fail("cannot hash a content");
}

static const struct content *content_by_hash(const uint8_t *hash)
{
	for (int k = 0; k < NCONTENT; k++)
		if (memcmp(S.c[k].hash, hash, SYNC_HASH_LEN) == 0)
			return &S.c[k];
	return NULL;
}

/* ---- the seam ---- */

static void pend_add(enum sync_msg_type type, uint32_t id, const uint8_t *hash, uint64_t offset,
		     uint32_t len)
{
	if (S.npend == NPEND) {
		memmove(S.pend, S.pend + 1, (NPEND - 1) * sizeof(S.pend[0]));
		S.npend--;
	}
	S.pend[S.npend] = (struct pend){.type = type, .id = id, .offset = offset, .len = len};
	memcpy(S.pend[S.npend].hash, hash, SYNC_HASH_LEN);
	S.npend++;
}

static void pend_del(unsigned i)
{
	memmove(S.pend + i, S.pend + i + 1, (S.npend - i - 1) * sizeof(S.pend[0]));
	S.npend--;
}

static void show_entries(const struct sync_index_update *u)
{
	struct msg_index_iter it;
	struct sync_entry x;

	msg_index_iter_init(&it, u);
	while (msg_index_next(&it, &x) > 0) {
		fprintf(stderr, "fuzz_engine:    %.*s kind %u%s size %llu seq %llu vv",
			(int)x.path_len, x.path, x.kind,
			x.flags & SYNC_ENTRY_DELETED ? " deleted" : "", (unsigned long long)x.size,
			(unsigned long long)x.seq);
		for (unsigned i = 0; i < x.nvv; i++)
			fprintf(stderr, " %02x:%llu", x.vv[i].device[0],
				(unsigned long long)x.vv[i].counter);
		fprintf(stderr, "\n");
	}
}

static int io_send(void *ud, const uint8_t *msg, size_t len)
{
	struct err err;
	struct sync_msg m;

	(void)ud;
	if (!S.up || S.closed)
		fail("the engine sent a message while the connection was down or closed");
	if (msg_decode(msg, len, &m, &err) < 0) {
		fprintf(stderr, "fuzz_engine: the engine sent a bad message: %s\n", err.msg);
		abort();
	}
	S.sent++;
	if (S.verbose)
		fprintf(stderr, "fuzz_engine: <- %s (%zu bytes)\n", msg_type_name(m.type), len);
	if (S.verbose && m.type == SYNC_MSG_INDEX_UPDATE)
		show_entries(&m.index_update);
	switch (m.type) {
	case SYNC_MSG_START:
		memcpy(S.self, m.start.device, SYNC_DEVICE_LEN);
		S.got_self = true;
		break;
	case SYNC_MSG_BLOCK_REQUEST:
		pend_add(m.type, m.block_request.req_id, m.block_request.hash,
			 m.block_request.offset, m.block_request.len);
		break;
	case SYNC_MSG_MANIFEST_REQUEST:
		pend_add(m.type, m.manifest_request.req_id, m.manifest_request.hash, 0, 0);
		break;
	case SYNC_MSG_CANCEL:
		for (unsigned i = 0; i < S.npend; i++)
			if (S.pend[i].id == m.cancel.req_id) {
				pend_del(i);
				break;
			}
		break;
	default:
		break;
	}
	return 0;
}

static size_t io_room(void *ud)
{
	(void)ud;
	return S.room;
}

static void io_close(void *ud, const char *why)
{
	(void)ud;
	if (S.closed)
		fail("io->close called twice for one connection");
	S.closed = true;
	if (S.verbose)
		fprintf(stderr, "fuzz_engine: closed: %s\n", why);
}

static void io_changed(void *ud, const char *path)
{
	(void)ud;
	if (!path || !path[0])
		fail("io->changed without a path");
}

/* ---- driving the loop ---- */

/* Collects what block workers finished (none: no_workers, but the engine
 * may still have them when it cannot do without). */
static void settle(void)
{
	int fd = engine_work_fd(S.e);
	struct pollfd p = {.fd = fd, .events = POLLIN};

	while (fd >= 0 && poll(&p, 1, 0) == 1)
		engine_on_work(S.e, S.now);
}

/* One turn of the loop: pump, workers, timers, at now + ms. */
static void step(uint64_t ms)
{
	if (S.up && !S.closed)
		engine_pump(S.e, S.now);
	settle();
	S.now += ms;
	if (engine_deadline(S.e) <= S.now)
		engine_tick(S.e, S.now);
	settle();
}

static void feed(const uint8_t *msg, size_t len)
{
	if (!S.up || S.closed)
		return;
	if (S.verbose)
		fprintf(stderr, "fuzz_engine: -> %s (%zu bytes)\n", msg_type_name(len ? msg[0] : 0),
			len);
	(void)engine_on_msg(S.e, msg, len, S.now);
	step(1);
}

static void encode_feed(const struct sync_msg *m)
{
	int n = msg_encode(m, S.buf, SYNC_MSG_MAX);

	if (n < 0)
		return; /* the encoder refuses what the input built: nothing to send */
	feed(S.buf, (size_t)n);
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* ---- operations ---- */

static void op_start(struct in *in)
{
	struct sync_msg m = {.type = SYNC_MSG_START};
	uint8_t d = u8(in), s = u8(in), x = u8(in);

	/* mostly one peer; sometimes another, or our own id (refused) */
	S.peer = d % 8 == 7 ? S.self : d % 8 == 6 ? peer_b : peer_a;
	memcpy(m.start.device, S.peer, SYNC_DEVICE_LEN);
	m.start.since = s < 0xf0 ? s / 16 : u64(in);
	if (x % 3 == 1 && S.got_self)
		memcpy(m.start.expect, S.self, SYNC_DEVICE_LEN);
	else if (x % 3 == 2)
		memcpy(m.start.expect, peer_b, SYNC_DEVICE_LEN);
	encode_feed(&m);
}

/* Content selector: a known file, a bogus hash, or a huge size. */
static void pick_content(struct in *in, uint8_t s, struct sync_entry *x, uint64_t *ret_huge)
{
	unsigned k = s % 8;

	*ret_huge = 0;
	if (k < NCONTENT) {
		x->size = S.c[k].len;
		memcpy(x->hash, S.c[k].hash, SYNC_HASH_LEN);
	} else {
		x->size = u16(in);
		for (int i = 0; i < SYNC_HASH_LEN; i++)
			x->hash[i] = (uint8_t)(s + i);
	}
	if ((s & 0xc0) == 0xc0) /* a quarter of the selectors */
		*ret_huge = huge_sizes[(s >> 3) & 7];
}

static void op_index(struct in *in)
{
	struct msg_index_writer w;
	unsigned n = 1 + u8(in) % 8;

	if (msg_index_writer_init(&w, S.buf, SYNC_INDEX_MSG_MAX) < 0)
		return;
	for (unsigned i = 0; i < n; i++) {
		struct sync_entry x = {0};
		uint8_t p = u8(in) % NPATHS, kf = u8(in), md = u8(in), cs = u8(in), mt = u8(in);
		uint8_t v = u8(in), sq = u8(in);
		static const uint16_t modes[8] = {0644, 0755, 0600, 0444, 0777, 0, 0640, 0700};
		uint64_t huge = 0;
		size_t at = w.len;

		x.path = paths[p];
		x.path_len = strlen(paths[p]);
		x.kind = (uint8_t)(1 + (kf & 3) % 3);
		x.flags = kf & 4 ? SYNC_ENTRY_DELETED : 0;
		x.mode = modes[md % 8];
		x.mtime_ns = (int64_t)(int8_t)mt * 1000000007LL;
		if (x.kind == SYNC_KIND_FILE) {
			pick_content(in, cs, &x, &huge);
			if (S.flags & FL_HUGE)
				huge = lying_sizes[p % 8];
		} else if (x.kind == SYNC_KIND_SYMLINK) {
			const char *t = targets[cs % 8];
			if ((S.flags & FL_SYMLINKS_ALL) || cs % 8 < 2 || cs % 8 > 5) {
				x.target = t;
				x.target_len =
					x.flags & SYNC_ENTRY_DELETED && cs & 8 ? 0 : strlen(t);
			} else {
				x.target = "a";
				x.target_len = 1;
			}
			x.size = x.target_len;
			memset(x.hash, cs, SYNC_HASH_LEN);
		}
		x.nvv = v % 3;
		if (x.nvv >= 1) {
			memcpy(x.vv[0].device, S.peer ? S.peer : peer_a, SYNC_DEVICE_LEN);
			x.vv[0].counter = 1 + (v >> 2);
		}
		if (x.nvv == 2) {
			memcpy(x.vv[1].device, v & 0x80 && S.got_self ? S.self : peer_b,
			       SYNC_DEVICE_LEN);
			x.vv[1].counter = 1 + (sq & 3);
			if (memcmp(x.vv[1].device, x.vv[0].device, SYNC_DEVICE_LEN) == 0)
				x.nvv = 1;
		}
		if (sq == 0xff)
			x.seq = u64(in);
		else
			x.seq = S.seq += 1 + sq % 4;
		if (msg_index_add(&w, &x) < 0)
			break;
		if (x.kind == SYNC_KIND_FILE) {
			S.last_size[p] = huge ? huge : x.size;
			S.last_file = p;
		}
		if (huge) /* past the encoders' caps: patch the size field */
			put64(S.buf + at + 2 + x.path_len + 4, huge);
	}
	int len = msg_index_finish(&w);
	if (len > 0)
		feed(S.buf, (size_t)len);
}

static void op_done(struct in *in)
{
	struct sync_msg m = {.type = SYNC_MSG_INDEX_DONE};
	uint8_t b = u8(in);

	m.index_done.seq = b < 0xf0 ? S.seq - (b % 4 == 3 ? 1 : 0) : u64(in);
	encode_feed(&m);
}

static void send_error(uint32_t id, uint16_t code, const char *text)
{
	struct sync_msg m = {.type = SYNC_MSG_BLOCK_ERROR};

	m.block_error.req_id = id;
	m.block_error.code = code;
	m.block_error.text = text;
	m.block_error.text_len = strlen(text);
	encode_feed(&m);
}

/* Answers pending request i; how: 0 right, else a wrong answer of some kind. */
static void answer(unsigned i, uint8_t how)
{
	struct pend q = S.pend[i];
	const struct content *c = content_by_hash(q.hash);
	struct sync_msg m = {0};
	uint8_t hashes[3 * SYNC_HASH_LEN];
	unsigned kind = how % 8;

	if (kind != 7) /* 7: answered, but the request stays (a duplicate comes) */
		pend_del(i);
	if (kind == 1 || (!c && kind != 5)) {
		send_error(q.id, (uint16_t)(c ? 1 + (how >> 3) % 4 : SYNC_BLOCK_ERR_NOT_FOUND),
			   "no \"such\"\x01 file");
		return;
	}
	if (q.type == SYNC_MSG_MANIFEST_REQUEST) {
		m.type = SYNC_MSG_MANIFEST;
		m.manifest.req_id = q.id;
		memcpy(m.manifest.hash, q.hash, SYNC_HASH_LEN);
		if (kind == 5) { /* a manifest for a 1 TiB file */
			m.manifest.size = SYNC_FILE_MAX;
			m.manifest.block_size = BLOCKS_SIZE;
			m.manifest.block_count = (uint32_t)blocks_count(SYNC_FILE_MAX);
			m.manifest.n = 1;
			memset(hashes, 0, sizeof(hashes));
			m.manifest.hashes = hashes;
			encode_feed(&m);
			return;
		}
		m.manifest.size = c->len;
		m.manifest.block_size = BLOCKS_SIZE;
		m.manifest.block_count = c->nb;
		memcpy(hashes, c->bh, (size_t)c->nb * SYNC_HASH_LEN);
		if (kind == 2 && c->nb)
			hashes[0] ^= 1;
		m.manifest.hashes = hashes;
		if ((kind == 3 || kind == 4) && c->nb > 1) { /* in chunks; 4: out of order */
			for (uint32_t k = 0; k < c->nb; k++) {
				uint32_t b = kind == 4 ? c->nb - 1 - k : k;
				m.manifest.first = b;
				m.manifest.n = 1;
				m.manifest.hashes = hashes + (size_t)b * SYNC_HASH_LEN;
				encode_feed(&m);
			}
			return;
		}
		m.manifest.n = c->nb;
		if (kind == 6 && c->nb) /* a chunk short */
			m.manifest.n--;
		encode_feed(&m);
		return;
	}
	/* a block: what the file has from offset (the right answer), or not */
	uint64_t off = q.offset;
	size_t len = q.len;
	if (!c || off > c->len) {
		send_error(q.id, SYNC_BLOCK_ERR_CHANGED, "changed");
		return;
	}
	if (len > c->len - off)
		len = c->len - off;
	m.type = SYNC_MSG_BLOCK_DATA;
	m.block_data.req_id = q.id;
	m.block_data.offset = off;
	memcpy(S.buf + SYNC_BLOCK_DATA_HEADER_LEN, c->data + off, len);
	if (kind == 2 && len)
		S.buf[SYNC_BLOCK_DATA_HEADER_LEN + len / 2] ^= 0x40;
	if (kind == 3 && len)
		len--;
	if (kind == 4)
		m.block_data.offset += BLOCKS_SIZE;
	m.block_data.data = S.buf + SYNC_BLOCK_DATA_HEADER_LEN;
	m.block_data.len = len;
	encode_feed(&m);
}

static void op_answer(struct in *in)
{
	uint8_t sel = u8(in), how = u8(in);

	if (S.npend)
		answer(sel % S.npend, how);
}

/* Answers everything the engine asks, rightly, until it asks no more. */
static void op_answer_all(struct in *in)
{
	unsigned rounds = 1 + u8(in) % 64;

	while (rounds-- && S.npend && S.up && !S.closed)
		answer(0, 0);
}

/* The peer asks the engine for a block or a manifest. */
static void op_request(struct in *in)
{
	uint8_t t = u8(in), id = u8(in), p = u8(in), cs = u8(in), ix = u8(in);
	const struct content *c = &S.c[cs % NCONTENT];
	struct sync_msg m = {0};

	if (t & 1) {
		m.type = SYNC_MSG_MANIFEST_REQUEST;
		m.manifest_request.req_id = id;
		m.manifest_request.path = paths[p % NPATHS];
		m.manifest_request.path_len = strlen(paths[p % NPATHS]);
		memcpy(m.manifest_request.hash, c->hash, SYNC_HASH_LEN);
		if (cs & 0x80)
			m.manifest_request.hash[0] ^= 1;
	} else {
		m.type = SYNC_MSG_BLOCK_REQUEST;
		m.block_request.req_id = id;
		m.block_request.path = paths[p % NPATHS];
		m.block_request.path_len = strlen(paths[p % NPATHS]);
		memcpy(m.block_request.hash, c->hash, SYNC_HASH_LEN);
		if (cs & 0x80)
			m.block_request.hash[0] ^= 1;
		m.block_request.index = ix % 4;
		m.block_request.offset = (uint64_t)(ix % 4) * BLOCKS_SIZE;
		m.block_request.len = blocks_len(c->len, ix % 4);
		if (ix & 0x80) {
			m.block_request.offset += (uint64_t)(t >> 1);
			m.block_request.len = 1 + ix % 8 * 9000;
		}
		if (!m.block_request.len)
			m.block_request.len = 1;
	}
	encode_feed(&m);
}

static void op_cancel(struct in *in)
{
	struct sync_msg m = {.type = SYNC_MSG_CANCEL};

	m.cancel.req_id = u8(in);
	encode_feed(&m);
}

static void op_tick(struct in *in)
{
	static const uint64_t ms[8] = {1, 40, 101, 500, 2001, 3001, 5001, 60000};

	step(ms[u8(in) % 8]);
}

static void *ensure_run(void *arg)
{
	struct ensure_thread *t = arg;

	t->result = engine_ensure(t->e, t->path, t->has_st ? &t->st : NULL, t->off, t->len, 20000);
	atomic_store(&t->done, true);
	return NULL;
}

/*
 * A reader wants a range of a placeholder: engine_ensure on a thread (it
 * waits for the loop), and the loop takes the request at once, so the run
 * does not depend on timing. The thread waits until blocks come, the
 * connection goes, or the input ends (engine_ensure_stop).
 */
static void op_ensure(struct in *in)
{
	uint8_t p = u8(in), o = u8(in), l = u8(in);
	static const uint64_t lens[8] = {1,   4096, BLOCKS_SIZE, 3 * BLOCKS_SIZE,
					 100, 0,    UINT64_MAX,	 UINT64_MAX - 1};
	uint64_t size;
	struct ensure_thread *t;
	struct pollfd pf;

	if (!(S.flags & FL_LAZY) || S.nth == NTHREADS)
		return;
	/* mostly the file announced last (a reader opens what just came), or a
	 * path of the table */
	p = p & 0x80 ? p % NPATHS : S.last_file;
	size = S.last_size[p];
	t = &S.th[S.nth];
	memset(t, 0, sizeof(*t));
	t->e = S.e;
	snprintf(t->path, sizeof(t->path), "%s", paths[p]);
	switch (o % 8) {
	case 0:
		t->off = 0;
		break;
	case 1:
		t->off = BLOCKS_SIZE;
		break;
	case 2:
		t->off = size ? size - 1 : 0;
		break;
	case 3:
		t->off = size / 2;
		break;
	case 4:
		t->off = SYNC_FILE_MAX - 1;
		break;
	case 5:
		t->off = size > BLOCKS_SIZE ? size - BLOCKS_SIZE : 0;
		break;
	default:
		t->off = (uint64_t)o << 12;
		break;
	}
	t->len = lens[l % 8];
	if (l & 8) {
		char full[400];
		snprintf(full, sizeof(full), "%s/%s", S.share, t->path);
		t->has_st = lstat(full, &t->st) == 0;
		if (t->has_st && l & 16)
			t->st.st_ino++; /* a reader of another version */
	}
	atomic_store(&t->done, false);
	if (pthread_create(&t->t, NULL, ensure_run, t) != 0)
		return;
	S.nth++;
	/* the thread either answers itself at once or asks the loop */
	pf = (struct pollfd){.fd = engine_ensure_fd(S.e), .events = POLLIN};
	for (int i = 0; i < 2000 && !atomic_load(&t->done); i++) {
		if (poll(&pf, 1, 1) == 1) {
			engine_on_ensure(S.e, S.now);
			break;
		}
	}
	step(1);
}

static void op_reconnect(struct in *in)
{
	uint8_t b = u8(in);

	if (S.up) {
		engine_on_down(S.e, S.now);
		S.up = false;
	}
	S.npend = 0;
	if (b & 1)
		return; /* down until the next reconnect */
	S.closed = false;
	S.up = true;
	engine_on_up(S.e, S.now);
	step(1);
}

/* A change to the share by the user: top-level names only, never through a
 * symlink the peer made. Then the scan that notices it. */
static void op_local(struct in *in)
{
	uint8_t p = u8(in), a = u8(in);
	const char *name = paths[p % NPATHS];
	bool wrote = false;
	int root, fd;

	if (strchr(name, '/') || name[0] == '.')
		return;
	root = open(S.share, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return;
	switch (a & 7) { /* what; (a >> 3): which content */
	case 0:
	case 1:
	case 6:
	case 7: {
		const struct content *c = &S.c[(a >> 3) % NCONTENT];
		fd = openat(root, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			    0644);
		if (fd >= 0) {
			size_t n = c->len > 65536 && (a & 7) == 1 ? 65536 : c->len; /* 1: a part */
			wrote = write(fd, c->data, n) == (ssize_t)n;
			close(fd);
		}
		break;
	}
	case 2:
		(void)unlinkat(root, name, 0);
		break;
	case 3:
		(void)mkdirat(root, name, 0755);
		break;
	case 4:
		(void)fchmodat(root, name, a & 0x80 ? 0600 : 0755, 0);
		break;
	case 5:
		(void)unlinkat(root, name, AT_REMOVEDIR);
		break;
	}
	close(root);
	struct pollfd pf = {.fd = engine_inotify_fd(S.e), .events = POLLIN};
	if (poll(&pf, 1, 0) == 1)
		engine_on_inotify(S.e, S.now);
	step(101); /* the scan runs */
	/* a file written goes to the hasher thread: wait for its answer (a
	 * bounded number of times: a write to a directory fails, and a scan may
	 * find nothing new) */
	pf = (struct pollfd){.fd = engine_hash_fd(S.e), .events = POLLIN};
	if (wrote && S.hash_waits < 16) {
		S.hash_waits++;
		if (poll(&pf, 1, 1000) == 1)
			engine_on_hash(S.e, S.now);
	} else if (poll(&pf, 1, 0) == 1) {
		engine_on_hash(S.e, S.now);
	}
	step(1);
}

static void op_room(struct in *in)
{
	static const size_t rooms[4] = {0, 100, 9000, (size_t)64 << 20};

	S.room = rooms[u8(in) % 4];
	step(1);
}

static void op_raw(struct in *in)
{
	size_t len = u16(in) % 4096;

	if (len > in->left)
		len = in->left;
	/* a raw index entry could name any symlink target: not with symlinks_all */
	if (!(S.flags & FL_SYMLINKS_ALL) || !len || in->p[0] != SYNC_MSG_INDEX_UPDATE)
		feed(in->p, len);
	in->p += len;
	in->left -= len;
}

static void run_structured(struct in *in)
{
	while (in->left) {
		switch (u8(in) % OP_COUNT) {
		case OP_RAW:
			op_raw(in);
			break;
		case OP_START:
			op_start(in);
			break;
		case OP_INDEX:
			op_index(in);
			break;
		case OP_DONE:
			op_done(in);
			break;
		case OP_ANSWER:
			op_answer(in);
			break;
		case OP_ANSWER_ALL:
			op_answer_all(in);
			break;
		case OP_REQUEST:
			op_request(in);
			break;
		case OP_CANCEL:
			op_cancel(in);
			break;
		case OP_TICK:
			op_tick(in);
			break;
		case OP_ENSURE:
			op_ensure(in);
			break;
		case OP_RECONNECT:
			op_reconnect(in);
			break;
		case OP_LOCAL:
			op_local(in);
			break;
		case OP_ROOM:
			op_room(in);
			break;
		}
	}
}

static void run_raw(struct in *in)
{
	while (in->left >= 2) {
		size_t len = u16(in);
		if (len > in->left)
			len = in->left;
		feed(in->p, len);
		in->p += len;
		in->left -= len;
	}
}

/* ---- set-up ---- */

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

static void rm_tree(const char *path)
{
	(void)nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void)
{
	rm_tree(S.base);
}

static void log_discard(enum log_level level, const char *msg, void *ud)
{
	(void)level;
	(void)msg;
	(void)ud;
}

static void setup_once(void)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	struct stat st;

	/* a tmpfs keeps it fast, and takes placeholders of any size */
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";

	snprintf(S.base, sizeof(S.base), "%s/tandem-fuzz-engine-%d", tmp, (int)getpid());
	rm_tree(S.base);
	if (mkdir(S.base, 0700) < 0)
		fail("cannot create the scratch directory");
	atexit(cleanup);
	S.verbose = getenv("TANDEM_FUZZ_LOG") != NULL;
	if (S.verbose) {
		log_set_level(LOG_LVL_DEBUG);
	} else {
		log_set_level(LOG_LVL_ERR);
		log_set_sink(log_discard, NULL);
	}
	S.buf = malloc(SYNC_MSG_MAX);
	if (!S.buf)
		fail("out of memory");
	content_init();
	S.init = true;
}

/*
 * Plain mode: every file in the share has content the peer or the user
 * wrote whole: a known content, or the part of one a user wrote. Never a
 * block that did not verify, never a temp file renamed before it was
 * complete.
 */
static bool known_hash(const uint8_t *h)
{
	for (int k = 0; k < NCONTENT; k++)
		if (memcmp(S.c[k].hash, h, SYNC_HASH_LEN) == 0 ||
		    memcmp(part_hash[k], h, SYNC_HASH_LEN) == 0)
			return true;
	return false;
}

static int check_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const char *name = path + ftw->base;
	uint8_t h[SYNC_HASH_LEN];
	uint8_t *buf;
	ssize_t n;
	int fd;

	if (type != FTW_F || !S_ISREG(st->st_mode) || strncmp(name, SCAN_MARKER, 7) == 0 ||
	    st->st_size > 4 * BLOCKS_SIZE)
		return 0;
	buf = malloc((size_t)st->st_size + 1);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	n = fd >= 0 && buf ? read(fd, buf, (size_t)st->st_size + 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n >= 0 && blocks_hash_buf(buf, (size_t)n, NULL, NULL, h) == 0 && !known_hash(h)) {
		fprintf(stderr, "fuzz_engine: %s has %zd bytes of content nobody wrote\n", path, n);
		abort();
	}
	free(buf);
	return 0;
}

static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool empty = true;

	if (!d)
		return false;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = false;
	closedir(d);
	return empty;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct engine_io io = {
		.send = io_send, .room = io_room, .close = io_close, .changed = io_changed};
	struct engine_opts o = {0};
	struct err err;
	struct in in = {.p = data, .left = size};
	struct stat st;

	if (!S.init)
		setup_once();
	S.flags = u8(&in);
	snprintf(S.dir, sizeof(S.dir), "%s/%u", S.base, S.runs++);
	snprintf(S.share, sizeof(S.share), "%s/share", S.dir);
	snprintf(S.outside, sizeof(S.outside), "%s/outside", S.dir);
	snprintf(S.index, sizeof(S.index), "%s/index.db", S.dir);
	if (mkdir(S.dir, 0700) < 0 || mkdir(S.share, 0700) < 0 || mkdir(S.outside, 0700) < 0)
		fail("cannot create the share");

	/* two contents of the input's own: its first bytes after the flags */
	memset(S.dyn, 0, sizeof(S.dyn));
	for (int k = 0; k < 2; k++) {
		size_t n = in.left < 64 ? in.left : 64;
		memcpy(S.dyn[k], in.p, n);
		content_set(&S.c[5 + k], S.dyn[k], n + (size_t)k * 200);
	}

	o.root = S.share;
	o.index_file = S.index;
	o.lazy = S.flags & FL_LAZY;
	o.cache_max = S.flags & FL_CACHE_SMALL ? BLOCKS_SIZE : 0;
	o.evict_age_ms = 100;
	o.rate_bps = S.flags & FL_RATE ? 2 * BLOCKS_SIZE : 0;
	o.mode_mask = S.flags & FL_UMASK ? 022 : 0;
	o.no_workers = true; /* blocks verified on the loop: the same run every time */
	o.symlinks_all = (S.flags & FL_STRUCTURED) && (S.flags & FL_SYMLINKS_ALL);
	if (!(S.flags & FL_STRUCTURED))
		S.flags &= ~FL_SYMLINKS_ALL;

	S.up = S.closed = S.got_self = false;
	S.peer = NULL;
	S.seq = 0;
	S.npend = S.nth = S.sent = S.hash_waits = 0;
	S.room = (size_t)64 << 20;
	memset(S.last_size, 0, sizeof(S.last_size));
	S.last_file = 0;
	S.now = 1000000;
	if (engine_new(&o, &io, &S.e, &err, S.now) < 0) {
		fprintf(stderr, "fuzz_engine: engine_new: %s\n", err.msg);
		abort();
	}
	step(1); /* the first scan */
	S.up = true;
	engine_on_up(S.e, S.now);
	if (!S.got_self)
		fail("the engine did not send START");
	step(1);

	if (S.flags & FL_STRUCTURED)
		run_structured(&in);
	else
		run_raw(&in);
	step(1);

	engine_ensure_stop(S.e);
	for (unsigned i = 0; i < S.nth; i++)
		pthread_join(S.th[i].t, NULL);
	engine_free(S.e);
	S.e = NULL;
	if (!dir_empty(S.outside) || lstat(S.share, &st) < 0)
		fail("something was written outside the share, or the share went away");
	if (!(S.flags & FL_LAZY))
		(void)nftw(S.share, check_file, 16, FTW_PHYS);
	if (S.verbose) {
		char cmd[400];
		snprintf(cmd, sizeof(cmd), "ls -lR '%s' >&2", S.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "fuzz_engine: cannot list %s\n", S.dir);
	}
	rm_tree(S.dir);
	return 0;
}
