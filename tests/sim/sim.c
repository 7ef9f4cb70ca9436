/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The deterministic simulation of two sync engines: the scheduler, the
 * in-memory channel and the engines' life (docs/SIM.md; sim.h has the
 * overview).
 *
 * Determinism: every choice comes from the seeded PRNG; the engines'
 * threads are kept out of the way (hashing inline, blocks verified on the
 * loop), and engine_ensure's waiting thread is only let go once the loop
 * has nothing left to do; file mtimes come from a virtual clock. What
 * differs between two runs (inode numbers, ctimes, temp paths) is never
 * traced.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "base/log.h"
#include "sim.h"
#include "sync/index.h"
#include "sync/msg.h"
#include "sync/vv.h"

#define SIM_ROOM_MIN ((size_t)1200 << 10) /* one largest message and then some */
#define SIM_SETTLE_STEPS 200000
#define SIM_OPS_MAX 100000 /* --ops */
#define SIM_ENSURE_WAIT_MS 30000 /* real time: only a hang reaches it */

/* ---- PRNG ---- */

/* The selftest's generator (src/selftest/st_rand.c); sim_rng_below keeps
 * its plain modulo: the seeds in known-failures.txt and the regression
 * seeds are draws of it. */
void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
	st_rand_seed(&r->r, seed);
}

uint64_t sim_rng_next(struct sim_rng *r)
{
	return st_rand_next(&r->r);
}

uint64_t sim_rng_below(struct sim_rng *r, uint64_t n)
{
	return n ? sim_rng_next(r) % n : 0;
}

bool sim_rng_chance(struct sim_rng *r, unsigned permille)
{
	return sim_rng_below(r, 1000) < permille;
}

/* ---- trace and failures ---- */

void sim_trace(struct sim *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	crypto_generichash_update(&s->th, (const uint8_t *)buf, (size_t)n + 1);
	if (s->trace)
		printf("%8" PRIu64 " %s\n", s->now_ms, buf);
}

void sim_failf(struct sim *s, const char *fmt, ...)
{
	va_list ap;

	if (s->failed)
		return;
	s->failed = true;
	va_start(ap, fmt);
	vsnprintf(s->fail, sizeof(s->fail), fmt, ap);
	va_end(ap);
	sim_trace(s, "FAIL %s", s->fail);
}

static void on_log(enum log_level level, const char *msg, void *ud)
{
	struct sim *s = ud;
	const char *kept = strstr(msg, "; ours is kept as \"");

	if (level == LOG_LVL_NOTICE && !strncmp(msg, "conflict: ", 10) && kept) {
		/* a conflict copy: the engine wrote that path (names here are plain) */
		char path[SIM_PATH_MAX];
		snprintf(path, sizeof(path), "%s", kept + strlen("; ours is kept as \""));
		char *q = strrchr(path, '"');
		if (q) {
			*q = '\0';
			sim_fs_engine_wrote(s, path);
		}
	}
	/* not traced: messages quote temp paths, which differ between runs */
	if (s->trace || s->verbose > 1 || (s->verbose && level <= LOG_LVL_WARN))
		printf("         %c log<%d> %s\n", s->cur ? s->cur : '?', (int)level, msg);
}

/* ---- the channel ---- */

static void queue_push(struct sim_queue *q, struct sim_msg *m)
{
	m->next = NULL;
	if (q->tail)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
	q->n++;
	q->bytes += m->len;
}

static struct sim_msg *queue_pop(struct sim_queue *q)
{
	struct sim_msg *m = q->head;

	if (!m)
		return NULL;
	q->head = m->next;
	if (!q->head)
		q->tail = NULL;
	q->n--;
	q->bytes -= m->len;
	return m;
}

static void queue_clear(struct sim_queue *q)
{
	struct sim_msg *m;

	while ((m = queue_pop(q)))
		free(m);
}

static int io_send(void *ud, const uint8_t *msg, size_t len)
{
	struct sim_peer *p = ud;
	struct sim *s = p->sim;
	struct sim_msg *m;

	if (!s->conn)
		return -ENOTCONN;
	if (len == 0 || len > SYNC_MSG_MAX) {
		sim_failf(s, "%c sent a message of %zu bytes", p->name, len);
		return -EINVAL;
	}
	m = malloc(sizeof(*m) + len);
	if (!m)
		abort();
	m->len = len;
	memcpy(m->data, msg, len);
	queue_push(&p->out, m);
	p->sent++;
	return 0;
}

static size_t io_room(void *ud)
{
	struct sim_peer *p = ud;
	struct sim *s = p->sim;

	if (!s->conn)
		return 0;
	return p->out.bytes >= s->room_cap ? 0 : s->room_cap - p->out.bytes;
}

static void io_close(void *ud, const char *why)
{
	struct sim_peer *p = ud;

	/* a compliant peer never sends what the other refuses */
	sim_failf(p->sim, "%c closed the connection: %s", p->name, why);
}

static void io_changed(void *ud, const char *path)
{
	struct sim_peer *p = ud;

	sim_trace(p->sim, "%c changed %s", p->name, path);
}

/* ---- the engines, with the time they are given ---- */

static int peer_open(struct sim *s, struct sim_peer *p)
{
	struct engine_io io = {.ud = p,
			       .send = io_send,
			       .room = io_room,
			       .close = io_close,
			       .changed = io_changed};
	struct engine_opts o = {.root = p->root,
				.index_file = p->index,
				.lazy = p->lazy,
				.cache_max = 0,
				.mode_mask = 0,
				.symlinks_all = true,
				/* the engine's threads out of the way: hashing and block
				 * writes on the loop, in the order of the calls */
				.no_workers = true};
	struct err err = {.msg = ""};
	int r;

	r = engine_new(&o, &io, &p->e, &err, s->now_ms);
	if (r < 0)
		sim_failf(s, "engine_new %c: %s", p->name, err.msg);
	return r;
}

/* A new index with a device id from the seed, so that tie-breaks and
 * conflict names are the same in every run. */
static int index_create(struct sim *s, struct sim_peer *p)
{
	struct err ierr;
	struct index *idx = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	uint64_t x = s->seed * 2 + (uint64_t)p->id + 1;
	uint8_t dev[VV_DEVICE_LEN];
	int r;

	for (int i = 0; i < VV_DEVICE_LEN; i++)
		dev[i] = (uint8_t)(st_splitmix64(&x) >> 7);
	r = index_open(p->index, &idx, &ierr);
	if (r < 0) {
		sim_failf(s, "index_open %c: %s", p->name, ierr.msg);
		return r;
	}
	index_free(idx);
	if (sqlite3_open(p->index, &db) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE meta SET value = ?1 WHERE key = 'device_id'", -1, &st,
			       NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_blob(st, 1, dev, sizeof(dev), SQLITE_STATIC);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
out:
	if (r < 0)
		sim_failf(s, "cannot set the device id of %c: %s", p->name, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

static void conn_up(struct sim *s)
{
	if (s->conn)
		return;
	s->conn = true;
	sim_trace(s, "up");
	for (int i = 0; i < 2; i++) {
		s->cur = s->p[i].name;
		engine_on_up(s->p[i].e, s->now_ms);
	}
}

static void conn_down(struct sim *s, const char *why)
{
	if (!s->conn)
		return;
	s->conn = false;
	sim_trace(s, "down (%s; %zu + %zu messages lost)", why, s->p[0].out.n, s->p[1].out.n);
	queue_clear(&s->p[0].out);
	queue_clear(&s->p[1].out);
	for (int i = 0; i < 2; i++) {
		s->cur = s->p[i].name;
		if (s->p[i].e)
			engine_on_down(s->p[i].e, s->now_ms);
	}
	s->st.drops++;
}

/* A file's bytes, or NULL (ENOENT: *len 0). */
static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	*len = 0;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n)
			*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

static void spit(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f;

	if (!buf) {
		unlink(path);
		return;
	}
	f = fopen(path, "wb");
	if (f) {
		(void)!fwrite(buf, 1, len, f);
		fclose(f);
	}
}

/*
 * Crash and restart p. hard: its index is put back as it was before
 * engine_free (as after a kill -9: what engine_free writes on the way out
 * is lost, and the index is still marked open).
 */
static void crash(struct sim *s, struct sim_peer *p, bool hard)
{
	char wal[SIM_PATH_MAX + 8], shm[SIM_PATH_MAX + 8];
	uint8_t *db = NULL, *wl = NULL;
	size_t dblen = 0, wllen = 0;

	conn_down(s, "crash");
	sim_trace(s, "%c %s crash", p->name, hard ? "hard" : "soft");
	snprintf(wal, sizeof(wal), "%s-wal", p->index);
	snprintf(shm, sizeof(shm), "%s-shm", p->index);
	if (hard) {
		db = slurp(p->index, &dblen);
		wl = slurp(wal, &wllen);
	}
	engine_free(p->e);
	p->e = NULL;
	if (hard) {
		spit(p->index, db, dblen);
		spit(wal, wl, wllen);
		unlink(shm);
		free(db);
		free(wl);
		s->st.hard_crashes++;
	}
	s->st.crashes++;
	sim_fs_dir_mtimes(s, p);
	(void)peer_open(s, p);
}

/* ---- the steps ---- */

static bool readable(int fd)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};

	return fd >= 0 && poll(&pf, 1, 0) == 1;
}

/* --trace: what an INDEX_UPDATE says, entry by entry. */
static void trace_entries(const struct sim_msg *m)
{
	struct err err;
	struct sync_msg d;
	struct msg_index_iter it;
	struct sync_entry e;

	if (msg_decode(m->data, m->len, &d, &err) < 0)
		return;
	msg_index_iter_init(&it, &d.index_update);
	while (msg_index_next(&it, &e) > 0) {
		printf("           %.*s k%u%s %o %" PRIu64 " m%" PRId64 " h%02x%02x seq %" PRIu64
		       " vv",
		       (int)e.path_len, e.path, e.kind, e.flags ? " deleted" : "", e.mode, e.size,
		       e.mtime_ns, e.hash[0], e.hash[1], e.seq);
		for (unsigned i = 0; i < e.nvv; i++)
			printf(" %02x:%" PRIu64, e.vv[i].device[0], e.vv[i].counter);
		printf("\n");
	}
}

/*
 * The bytes of m as traced. A directory's mtime in an INDEX_UPDATE is the
 * kernel's clock's when the engine made the directory (it is not synced:
 * docs/SYNC.md "Known limits"), so it is left out.
 */
static void trace_msg(struct sim *s, const struct sim_msg *m, uint8_t h[16])
{
	uint8_t *c = NULL;
	struct err err;
	struct sync_msg d;
	struct msg_index_iter it;
	struct sync_entry e;

	if (m->data[0] == SYNC_MSG_INDEX_UPDATE && (c = malloc(m->len)) &&
	    msg_decode(m->data, m->len, &d, &err) == 0) {
		memcpy(c, m->data, m->len);
		msg_index_iter_init(&it, &d.index_update);
		while (msg_index_next(&it, &e) > 0) {
			size_t off = (size_t)((const uint8_t *)e.path - m->data) + e.path_len + 12;
			if (e.kind == SYNC_KIND_DIR && off + 8 <= m->len)
				memset(c + off, 0, 8);
		}
	}
	crypto_generichash(h, 16, c ? c : m->data, m->len, NULL, 0);
	crypto_generichash_update(&s->th, c ? c : m->data, m->len);
	free(c);
}

static void deliver(struct sim *s, struct sim_peer *from)
{
	struct sim_peer *to = &s->p[!from->id];
	struct sim_msg *m = queue_pop(&from->out);
	uint8_t h[16];

	if (!m)
		return;
	trace_msg(s, m, h);
	sim_trace(s, "%c>%c %s %zu %02x%02x%02x%02x", from->name, to->name,
		  msg_type_name((enum sync_msg_type)m->data[0]), m->len, h[0], h[1], h[2], h[3]);
	if (s->trace && m->data[0] == SYNC_MSG_INDEX_UPDATE)
		trace_entries(m);
	s->st.msgs++;
	s->st.bytes += m->len;
	s->cur = to->name;
	(void)engine_on_msg(to->e, m->data, m->len, s->now_ms);
	s->cur = from->name;
	free(m);
	if (s->conn)
		engine_pump(from->e, s->now_ms); /* room again */
}

/* Local events of p that are ready: inotify, hash results, ensures. */
static bool local_events(struct sim *s, struct sim_peer *p)
{
	bool any = false;

	s->cur = p->name;
	if (readable(engine_inotify_fd(p->e))) {
		sim_trace(s, "%c inotify", p->name);
		engine_on_inotify(p->e, s->now_ms);
		any = true;
	}
	if (readable(engine_hash_fd(p->e))) {
		sim_trace(s, "%c hashed", p->name);
		engine_on_hash(p->e, s->now_ms);
		any = true;
	}
	if (readable(engine_ensure_fd(p->e))) {
		engine_on_ensure(p->e, s->now_ms);
		any = true;
	}
	return any;
}

/* The engines' timers: virtual time jumps to the first deadline, and
 * every engine due then ticks. Returns whether one did. */
static bool timers(struct sim *s)
{
	uint64_t d = UINT64_MAX;
	bool any = false;

	for (int i = 0; i < 2; i++) {
		uint64_t t = engine_deadline(s->p[i].e);
		if (t < d)
			d = t;
	}
	if (d == UINT64_MAX)
		return false;
	if (d > s->now_ms)
		s->now_ms = d;
	for (int i = 0; i < 2; i++) {
		if (engine_deadline(s->p[i].e) > s->now_ms)
			continue;
		sim_trace(s, "%c tick", s->p[i].name);
		s->cur = s->p[i].name;
		engine_tick(s->p[i].e, s->now_ms);
		any = true;
	}
	return any;
}

/* One step of moving things along, no user operation. Returns whether
 * anything happened. */
static bool step_engine(struct sim *s, bool only_drain)
{
	struct sim_peer *a = &s->p[0], *b = &s->p[1];
	unsigned k;

	s->st.steps++;
	s->now_ms += sim_rng_below(&s->rng, only_drain ? 3 : 20);
	k = (unsigned)sim_rng_below(&s->rng, 4);
	for (unsigned i = 0; i < 4; i++, k = (k + 1) % 4) {
		switch (k) {
		case 0:
		case 1:
			if (local_events(s, &s->p[k]))
				return true;
			break;
		case 2:
		case 3: {
			/* which direction first: the two streams interleave freely */
			struct sim_peer *from = (k == 2) ? a : b;
			if (!s->conn)
				break;
			if (!from->out.head)
				from = (from == a) ? b : a;
			if (from->out.head) {
				deliver(s, from);
				return true;
			}
			break;
		}
		}
	}
	return timers(s);
}

void sim_drain(struct sim *s)
{
	for (unsigned i = 0; i < SIM_SETTLE_STEPS && !s->failed; i++)
		if (!step_engine(s, true))
			return;
	sim_failf(s, "no end to the activity after %u steps", SIM_SETTLE_STEPS);
}

static bool idle(struct sim *s, char *why, size_t len)
{
	for (int i = 0; i < 2; i++) {
		json_t *o = json_object();
		const char *st;
		bool ok;

		engine_status(s->p[i].e, o, s->now_ms);
		st = json_string_value(json_object_get(o, "sync_state"));
		ok = st && strcmp(st, "idle") == 0;
		if (!ok) {
			char *d = json_dumps(o, JSON_COMPACT);
			snprintf(why, len, "%c is %s: %s", s->p[i].name, st ? st : "?", d ? d : "");
			free(d);
		}
		json_decref(o);
		if (!ok)
			return false;
	}
	return true;
}

/* Connection up, everything delivered and done on both sides: a barrier. */
void sim_settle(struct sim *s)
{
	char why[2048];

	s->down_steps = 0;
	conn_up(s);
	for (int round = 0; round < 4 && !s->failed; round++) {
		sim_drain(s);
		if (s->failed)
			return;
		if (idle(s, why, sizeof(why))) {
			s->epoch++;
			s->st.settles++;
			sim_trace(s, "settled (epoch %" PRIu64 ")", s->epoch);
			return;
		}
	}
	sim_failf(s, "not idle with nothing left to do: %s", why);
}

/* ---- engine_ensure on a thread, as FUSE calls it ---- */

struct ensure_call {
	struct engine *e;
	char path[SIM_PATH_MAX];
	struct stat st;
	bool has_st;
	int result;
	int efd;
};

static void *ensure_thread(void *arg)
{
	struct ensure_call *c = arg;
	uint64_t one = 1;

	c->result = engine_ensure(c->e, c->path, c->has_st ? &c->st : NULL, 0, UINT64_MAX, 600000);
	(void)!write(c->efd, &one, sizeof(one));
	return NULL;
}

int sim_ensure(struct sim *s, struct sim_peer *p, const char *path)
{
	struct ensure_call c = {.e = p->e, .efd = eventfd(0, EFD_CLOEXEC)};
	char full[2 * SIM_PATH_MAX];
	pthread_t t;
	bool woke = false;

	if (!p->lazy)
		return 0;
	snprintf(c.path, sizeof(c.path), "%s", path);
	snprintf(full, sizeof(full), "%s/%s", p->root, path);
	c.has_st = lstat(full, &c.st) == 0;
	if (c.efd < 0 || pthread_create(&t, NULL, ensure_thread, &c) != 0)
		abort();
	s->st.ensures++;
	for (;;) {
		struct pollfd pf[2] = {{.fd = c.efd, .events = POLLIN},
				       {.fd = engine_ensure_fd(p->e), .events = POLLIN}};
		/* until the loop has the request, or the answer came at once */
		int n = poll(pf, woke ? 1 : 2, SIM_ENSURE_WAIT_MS);
		if (n <= 0) {
			sim_failf(s,
				  "engine_ensure(%s) on %c did not return with nothing left to do",
				  path, p->name);
			engine_ensure_stop(p->e);
			continue;
		}
		if (pf[0].revents & POLLIN)
			break;
		s->cur = p->name;
		engine_on_ensure(p->e, s->now_ms);
		woke = true;
		sim_drain(s); /* its blocks come; then it must have returned */
	}
	pthread_join(t, NULL);
	close(c.efd);
	sim_trace(s, "%c ensure %s: %d", p->name, path, c.result);
	if (c.result < 0)
		s->st.ensure_fail++;
	return c.result;
}

/* ---- one run ---- */

static int make_dir(struct sim *s, char *out, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int make_dir(struct sim *s, char *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, 200, fmt, ap);
	va_end(ap);
	if (mkdir(out, 0755) < 0) {
		sim_failf(s, "mkdir %s: %s", out, strerror(errno));
		return -errno;
	}
	return 0;
}

static void random_phase(struct sim *s)
{
	unsigned ops = 0;

	while (!s->failed && (ops < s->nops)) {
		uint64_t k = sim_rng_below(&s->rng, 1000);

		if (s->down_steps && --s->down_steps == 0)
			conn_up(s);
		if (k < 300) {
			sim_fs_op(s, &s->p[sim_rng_below(&s->rng, 2)]);
			ops++;
		} else if (k < 320) {
			sim_fs_concurrent(s);
			ops++;
		} else if (k < 330 && s->conn) {
			conn_down(s, "drop");
			s->down_steps = 1 + (unsigned)sim_rng_below(&s->rng, 40);
		} else if (k < 334 && s->crashes_left) {
			s->crashes_left--;
			crash(s, &s->p[sim_rng_below(&s->rng, 2)], sim_rng_chance(&s->rng, 500));
			s->down_steps = 1 + (unsigned)sim_rng_below(&s->rng, 20);
		} else if (k < 344) {
			sim_settle(s);
		} else {
			(void)step_engine(s, false);
		}
	}
}

struct sim_opts {
	bool lazy, trace, keep, no_type_clash, list_failures;
	uint64_t *known; /* --known: seeds that fail today (engine bugs reported), sorted */
	size_t nknown;
	int verbose;
	unsigned nops;
	char base[200];
	const char *argv0;
};

/* The mode of a run as the --known file names it: "ops=N[,lazy][,no-type-clash]". */
static const char *mode_name(const struct sim_opts *o)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "ops=%u%s%s", o->nops, o->lazy ? ",lazy" : "",
		 o->no_type_clash ? ",no-type-clash" : "");
	return buf;
}

static bool is_known(const struct sim_opts *o, uint64_t seed)
{
	size_t lo = 0, hi = o->nknown;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (o->known[mid] < seed)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < o->nknown && o->known[lo] == seed;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * --known FILE: lines "SEED MODE # why" (what --list-failures prints);
 * the seeds of this run's mode fail today because of engine bugs that are
 * reported (docs/SIM.md), and are counted apart instead of failing the run.
 */
static int load_known(struct sim_opts *o, const char *file)
{
	char line[1024], mode[64];
	FILE *f = fopen(file, "r");
	size_t cap = 0;

	if (!f) {
		fprintf(stderr, "sim: cannot open %s: %s\n", file, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long seed;
		if (sscanf(line, "%llu %63s", &seed, mode) != 2 || strcmp(mode, mode_name(o)))
			continue;
		if (o->nknown == cap) {
			cap = cap ? 2 * cap : 256;
			o->known = realloc(o->known, cap * sizeof(*o->known));
			if (!o->known)
				abort();
		}
		o->known[o->nknown++] = seed;
	}
	fclose(f);
	qsort(o->known, o->nknown, sizeof(*o->known), cmp_u64);
	return 0;
}

static int run_seed(uint64_t seed, const struct sim_opts *opts, uint8_t ret_hash[32],
		    struct sim_stats *ret_stats)
{
	struct sim *s = calloc(1, sizeof(*s));
	int r = 0;

	if (!s)
		abort();
	s->seed = seed;
	s->lazy = opts->lazy;
	s->trace = opts->trace;
	s->no_type_clash = opts->no_type_clash;
	s->verbose = opts->verbose;
	s->nops = opts->nops;
	sim_rng_seed(&s->rng, seed ^ (opts->lazy ? 0x4c415a59ULL : 0));
	crypto_generichash_init(&s->th, NULL, 0, 32);
	log_set_sink(on_log, s);
	log_set_level(opts->verbose > 1 ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	s->wall_ns = (int64_t)1577836800 * 1000000000; /* 2020-01-01: long before any run */
	s->now_ms = 1;				       /* never 0 (engine.h) */
	s->room_cap = SIM_ROOM_MIN + (size_t)sim_rng_below(&s->rng, 8 << 20);
	s->crashes_left = 2;
	sim_trace(s, "seed %" PRIu64 "%s, %u ops, room %zu", seed, s->lazy ? " lazy" : "", s->nops,
		  s->room_cap);
	snprintf(s->base, sizeof(s->base), "%s/sim.XXXXXX", opts->base);
	if (!mkdtemp(s->base)) {
		fprintf(stderr, "sim: cannot make a temp directory in %s: %s\n", opts->base,
			strerror(errno));
		exit(2);
	}
	for (int i = 0; i < 2; i++) {
		struct sim_peer *p = &s->p[i];
		p->sim = s;
		p->id = i;
		p->name = (char)('A' + i);
		p->lazy = s->lazy && i == 1;
		if (make_dir(s, p->root, "%s/%c", s->base, p->name) < 0)
			goto out;
		snprintf(p->index, sizeof(p->index), "%s/%c.db", s->base, p->name);
		if (index_create(s, p) < 0 || peer_open(s, p) < 0)
			goto out;
	}
	if (sim_rng_chance(&s->rng, 700))
		conn_up(s);
	else
		s->down_steps = 1 + (unsigned)sim_rng_below(&s->rng, 30);
	random_phase(s);
	if (!s->failed)
		sim_settle(s);
	if (!s->failed)
		sim_fs_check(s);
out:
	for (int i = 0; i < 2; i++) {
		engine_free(s->p[i].e);
		queue_clear(&s->p[i].out);
	}
	crypto_generichash_final(&s->th, ret_hash, 32);
	if (s->failed && opts->list_failures) {
		printf("%" PRIu64 " %s # %s\n", seed, mode_name(opts), s->fail);
		r = -1;
	} else if (s->failed && is_known(opts, seed)) {
		printf("KNOWN seed %" PRIu64 "%s: %s\n", seed, s->lazy ? " (lazy)" : "", s->fail);
		r = 1;
	} else if (s->failed) {
		printf("FAIL seed %" PRIu64 "%s: %s\n", seed, s->lazy ? " (lazy)" : "", s->fail);
		printf("  replay: %s --seed %" PRIu64 "%s%s --ops %u --trace\n", opts->argv0, seed,
		       s->lazy ? " --lazy" : "", s->no_type_clash ? " --no-type-clash" : "",
		       s->nops);
		if (opts->keep)
			printf("  kept: %s\n", s->base);
		r = -1;
	}
	if (!s->failed && is_known(opts, seed))
		printf("note: seed %" PRIu64 "%s passes now: drop it from the known failures\n", seed,
		       s->lazy ? " (lazy)" : "");
	if (!(s->failed && opts->keep))
		(void)sim_fs_rmtree(s->base);
	*ret_stats = s->st;
	log_set_sink(NULL, NULL);
	sim_fs_model_free(s);
	free(s);
	return r;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: sim [--seed N | --seeds A-B] [--lazy] [--ops N] [--no-type-clash]\n"
		   "           [--trace] [--twice] [--keep] [--dir DIR] [-v]\n"
		   "           [--known FILE] [--list-failures]\n"
		   "Runs the deterministic simulation of two sync engines (docs/SIM.md).\n");
}

static void pick_base(char *out)
{
	const char *env = getenv("TANDEM_SIM_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");

	if (env && *env)
		snprintf(out, 200, "%s", env);
	else if (access("/dev/shm", W_OK) == 0)
		snprintf(out, 200, "/dev/shm");
	else if (xdg && *xdg && access(xdg, W_OK) == 0)
		snprintf(out, 200, "%s", xdg);
	else
		snprintf(out, 200, "%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
}

static void hex(const uint8_t *h, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", h[i]);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A decimal number from s up to *end (digits only, no sign, no overflow);
 * false with a message naming what for when it is not one. */
static bool parse_num(const char *s, const char **end, uint64_t max, const char *what,
		      uint64_t *ret)
{
	uint64_t v = 0;
	const char *p = s;

	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (v > (max - d) / 10)
			break;
		v = v * 10 + d;
		p++;
	}
	if (p == s || (*p >= '0' && *p <= '9') || (!end && *p)) {
		fprintf(stderr, "sim: %s '%s' is not a number from 0 to %" PRIu64 "\n", what, s,
			max);
		return false;
	}
	if (end)
		*end = p;
	*ret = v;
	return true;
}

int main(int argc, char **argv)
{
	struct sim_opts o = {.nops = 40, .argv0 = argv[0]};
	struct sim_stats tot = {0};
	uint64_t first = 1, last = 1, failed = 0, known = 0;
	bool twice = false;
	const char *known_file = NULL;
	size_t heap0 = 0, heap_max = 0;
	double t0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--seed") && i + 1 < argc) {
			if (!parse_num(argv[++i], NULL, UINT64_MAX, "--seed", &first))
				return 2;
			last = first;
		} else if (!strcmp(a, "--seeds") && i + 1 < argc) {
			const char *end;
			if (!parse_num(argv[++i], &end, UINT64_MAX, "--seeds", &first))
				return 2;
			last = first;
			if (*end == '-' && !parse_num(end + 1, NULL, UINT64_MAX, "--seeds", &last))
				return 2;
			if (*end != '-' && *end) {
				fprintf(stderr, "sim: --seeds '%s' is not N or A-B\n", argv[i]);
				return 2;
			}
			if (last < first) {
				fprintf(stderr, "sim: empty range %s\n", argv[i]);
				return 2;
			}
		} else if (!strcmp(a, "--known") && i + 1 < argc) {
			known_file = argv[++i];
		} else if (!strcmp(a, "--list-failures")) {
			o.list_failures = true;
		} else if (!strcmp(a, "--no-type-clash")) {
			o.no_type_clash = true;
		} else if (!strcmp(a, "--lazy")) {
			o.lazy = true;
		} else if (!strcmp(a, "--ops") && i + 1 < argc) {
			uint64_t n;
			if (!parse_num(argv[++i], NULL, SIM_OPS_MAX, "--ops", &n))
				return 2;
			o.nops = (unsigned)n;
		} else if (!strcmp(a, "--trace")) {
			o.trace = true;
		} else if (!strcmp(a, "--twice")) {
			twice = true;
		} else if (!strcmp(a, "--keep")) {
			o.keep = true;
		} else if (!strcmp(a, "--dir") && i + 1 < argc) {
			snprintf(o.base, sizeof(o.base), "%s", argv[++i]);
		} else if (!strcmp(a, "-v")) {
			o.verbose++;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (sodium_init() < 0)
		return 2;
	if (known_file && load_known(&o, known_file) < 0)
		return 2;
	if (!o.base[0])
		pick_base(o.base);
	setvbuf(stdout, NULL, _IOLBF, 0);
	t0 = now_s();
	for (uint64_t seed = first; seed <= last; seed++) {
		uint8_t h[32], h2[32];
		char x[65];
		struct sim_stats st;

		int rr = run_seed(seed, &o, h, &st);
		if (rr < 0)
			failed++;
		else if (rr > 0)
			known++;
		tot.ops += st.ops;
		tot.ops_skipped += st.ops_skipped;
		tot.msgs += st.msgs;
		tot.bytes += st.bytes;
		tot.drops += st.drops;
		tot.crashes += st.crashes;
		tot.hard_crashes += st.hard_crashes;
		tot.settles += st.settles;
		tot.ensures += st.ensures;
		tot.ensure_fail += st.ensure_fail;
		tot.steps += st.steps;
		hex(h, 32, x);
		if (first == last || o.verbose)
			printf("seed %" PRIu64 "%s trace %s\n", seed, o.lazy ? " lazy" : "", x);
		if (twice) {
			bool tr = o.trace;
			o.trace = false;
			(void)run_seed(seed, &o, h2, &st);
			o.trace = tr;
			if (memcmp(h, h2, 32) != 0) {
				hex(h2, 32, x);
				printf("FAIL seed %" PRIu64
				       "%s: not deterministic: the second run's "
				       "trace is %s\n  replay: %s --seed %" PRIu64 "%s --twice\n",
				       seed, o.lazy ? " (lazy)" : "", x, argv[0], seed,
				       o.lazy ? " --lazy" : "");
				failed++;
			}
		}
		/* memory: what stays allocated after a run must not grow */
		struct mallinfo2 mi = mallinfo2();
		if (seed - first == 2)
			heap0 = mi.uordblks;
		if (seed - first >= 2 && mi.uordblks > heap_max)
			heap_max = mi.uordblks;
	}
	double dt = now_s() - t0;
	uint64_t n = last - first + 1;
	printf("sim: seeds %" PRIu64 "-%" PRIu64 "%s: %" PRIu64 " run, %" PRIu64 " failed, %" PRIu64
	       " known, %.1f s, "
	       "%.0f seeds/min; %" PRIu64 " ops (%" PRIu64 " skipped), %" PRIu64
	       " messages, %" PRIu64 " bytes, %" PRIu64 " drops, %" PRIu64 " crashes (%" PRIu64
	       " hard), %" PRIu64 " settles, %" PRIu64 " ensures (%" PRIu64 " failed)\n",
	       first, last, o.lazy ? " lazy" : "", n, failed, known, dt,
	       dt > 0 ? (double)n * 60 / dt : 0, tot.ops, tot.ops_skipped, tot.msgs, tot.bytes,
	       tot.drops, tot.crashes, tot.hard_crashes, tot.settles, tot.ensures, tot.ensure_fail);
	if (n > 20 && heap_max > heap0 + ((size_t)16 << 20)) {
		printf("FAIL memory: the heap in use after a run grew from %zu to %zu bytes\n",
		       heap0, heap_max);
		failed++;
	}
	free(o.known);
	return failed && !o.list_failures ? 1 : 0;
}
