/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Design note. One thread runs a poll loop over the listening socket, an
 * eventfd (woken by every setter) and both sockets of each connection. All
 * sockets are non-blocking. Bytes read from one side become a chunk with a
 * release time (now + latency + jitter, never before the previous chunk's)
 * in that direction's queue; a chunk is written when its time has come and
 * neither a stall nor a partition holds the direction, as far as the rate's
 * token bucket allows. A queue holds at most QUEUE_MAX bytes, then the
 * proxy stops reading that side, and TCP's own flow control pushes back on
 * the writer. The byte faults are applied as bytes are read: a flip changes
 * the chunk, a reset, half-close or truncation cuts it and rides on it as
 * the action to take once it is written, and what the side sends after it
 * is read and dropped.
 *
 * The setters only write the wanted state under the lock and wake the
 * thread; the thread copies that state at the top of each round and never
 * holds the lock across a socket call. Counters are updated under the lock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "st_proxy.h"
#include "st_rand.h"

#define CONNS_MAX 32
#define QUEUE_MAX (256u << 10)
#define READ_MAX (64u << 10)
#define FLIPS_MAX 16
#define POLL_MAX_MS 100
#define RATE_TICK_MS 5

enum action {
	ACT_NONE,
	ACT_RESET,
	ACT_HALFCLOSE,
	ACT_TRUNCATE,
};

struct chunk {
	struct chunk *next;
	uint64_t release_ms;
	size_t len, off;
	bool held;	    /* waited for a fault */
	enum action action; /* to do once written */
	uint8_t data[];
};

/* One direction of one connection: read from fd[dir], written to fd[1 - dir]. */
struct flow {
	struct chunk *head, *tail;
	size_t queued;
	uint64_t off; /* bytes read since the faults were set (or the start) */
	uint64_t last_release;
	bool eof;      /* the source ended (FIN, or an error: rst) */
	bool rst;      /* the source was reset: reset the destination too */
	bool shut;     /* FIN passed on */
	bool dropping; /* a cut happened: read and drop the rest */
	bool hit;      /* a byte fault struck here: the shot is counted */
	bool blocked;  /* the destination said EAGAIN: wait for POLLOUT */
	unsigned nflips;
	uint64_t flip_at[FLIPS_MAX];
	uint8_t flip_bit[FLIPS_MAX];
};

struct pconn {
	int fd[2];	 /* a (accepted), b (to the target) */
	bool connecting; /* fd[1]'s connect is under way */
	struct flow flow[2];
};

/* What the thread works with, copied from the shared part each round. */
struct dir_state {
	struct st_proxy_faults f;
	uint64_t stall_until;
	unsigned shots_left;
	bool armed; /* byte faults on */
	double tokens;
	uint64_t refill_ms;
};

struct st_proxy {
	/* Lock order: lock only, never held across a socket call. */
	pthread_mutex_t lock;
	struct st_proxy_faults want[2];	      /* protected by lock */
	uint64_t want_stall_until[2];	      /* protected by lock */
	uint64_t want_reset_at;		      /* protected by lock; 0: none */
	unsigned gen;			      /* protected by lock: bumped by set */
	struct sockaddr_storage target;	      /* protected by lock */
	socklen_t target_len;		      /* protected by lock; 0: none */
	struct st_proxy_counters counters[2]; /* protected by lock */
	unsigned open;			      /* protected by lock */
	uint64_t wakeups;		      /* protected by lock: the thread's polls */
	bool stop;			      /* protected by lock */

	/* the thread's own */
	struct st_rand rand;
	struct dir_state dir[2];
	unsigned seen_gen;
	struct pconn *conns[CONNS_MAX];
	uint8_t buf[READ_MAX];

	int listen_fd;
	int wake_fd;
	char addr[64];
	pthread_t thread;
};

static void wake(struct st_proxy *p)
{
	uint64_t one = 1;

	(void)!write(p->wake_fd, &one, sizeof(one));
}

static void count(struct st_proxy *p, int dir, size_t field, uint64_t n)
{
	pthread_mutex_lock(&p->lock);
	*(uint64_t *)((char *)&p->counters[dir] + field) += n;
	pthread_mutex_unlock(&p->lock);
}

#define COUNT(p, dir, name, n) count((p), (dir), offsetof(struct st_proxy_counters, name), (n))

static bool byte_faults(const struct st_proxy_faults *f)
{
	return f->reset_after || f->halfclose_after || f->truncate_after ||
	       f->flip_to > f->flip_from;
}

static bool same_byte_faults(const struct st_proxy_faults *x, const struct st_proxy_faults *y)
{
	return x->reset_after == y->reset_after && x->halfclose_after == y->halfclose_after &&
	       x->truncate_after == y->truncate_after && x->flip_from == y->flip_from &&
	       x->flip_to == y->flip_to && x->flip_bits == y->flip_bits && x->shots == y->shots;
}

/* Draws where this flow's bits flip, and counts its bytes from here. */
static void flow_arm(struct st_proxy *p, int dir, struct flow *fl)
{
	const struct st_proxy_faults *f = &p->dir[dir].f;
	unsigned n = f->flip_bits ? f->flip_bits : 1;

	fl->off = 0;
	fl->hit = false;
	fl->nflips = 0;
	if (f->flip_to <= f->flip_from)
		return;
	if (n > FLIPS_MAX)
		n = FLIPS_MAX;
	/* at most 8 bits per byte of the range, each drawn once */
	if (f->flip_to - f->flip_from < 8 && n > 8 * (f->flip_to - f->flip_from))
		n = (unsigned)(8 * (f->flip_to - f->flip_from));
	while (fl->nflips < n) {
		uint64_t at = f->flip_from + st_rand_below(&p->rand, f->flip_to - f->flip_from);
		uint8_t bit = (uint8_t)st_rand_below(&p->rand, 8);
		bool dup = false;
		for (unsigned i = 0; i < fl->nflips; i++)
			dup = dup || (fl->flip_at[i] == at && fl->flip_bit[i] == bit);
		if (dup)
			continue;
		fl->flip_at[fl->nflips] = at;
		fl->flip_bit[fl->nflips++] = bit;
	}
}

/* A byte fault struck flow fl: one shot used (once per connection). */
static void shot(struct st_proxy *p, int dir, struct flow *fl)
{
	struct dir_state *ds = &p->dir[dir];

	if (fl->hit)
		return;
	fl->hit = true;
	if (ds->f.shots && ds->shots_left && --ds->shots_left == 0)
		ds->armed = false;
}

/* Takes the shared state: new faults, stalls, a reset due. Returns whether
 * every connection must be reset now. */
static bool sync_state(struct st_proxy *p, uint64_t now, bool *stop)
{
	struct st_proxy_faults want[2];
	bool changed = false, reset = false;

	pthread_mutex_lock(&p->lock);
	*stop = p->stop;
	if (p->gen != p->seen_gen) {
		p->seen_gen = p->gen;
		changed = true;
		memcpy(want, p->want, sizeof(want));
	}
	for (int d = 0; d < 2; d++)
		p->dir[d].stall_until = p->want_stall_until[d];
	if (p->want_reset_at && now >= p->want_reset_at) {
		p->want_reset_at = 0;
		reset = true;
	}
	pthread_mutex_unlock(&p->lock);

	for (int d = 0; changed && d < 2; d++) {
		struct dir_state *ds = &p->dir[d];
		bool rearm = !same_byte_faults(&ds->f, &want[d]);
		if (ds->f.rate_bps != want[d].rate_bps) {
			ds->tokens = 0;
			ds->refill_ms = now;
		}
		ds->f = want[d];
		if (!rearm)
			continue;
		ds->shots_left = ds->f.shots;
		ds->armed = byte_faults(&ds->f);
		for (int i = 0; i < CONNS_MAX; i++)
			if (p->conns[i])
				flow_arm(p, d, &p->conns[i]->flow[d]);
	}
	return reset;
}

static void fd_reset(int fd)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};

	if (fd < 0)
		return;
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static void conn_free(struct st_proxy *p, int slot, bool rst)
{
	struct pconn *c = p->conns[slot];

	for (int d = 0; d < 2; d++) {
		struct chunk *ch = c->flow[d].head, *next;
		for (; ch; ch = next) {
			next = ch->next;
			free(ch);
		}
		if (rst)
			fd_reset(c->fd[d]);
		else if (c->fd[d] >= 0)
			close(c->fd[d]);
	}
	free(c);
	p->conns[slot] = NULL;
	pthread_mutex_lock(&p->lock);
	p->open--;
	pthread_mutex_unlock(&p->lock);
}

static void on_accept(struct st_proxy *p)
{
	struct sockaddr_storage target;
	socklen_t tlen;
	int one = 1, fd, slot = -1;
	struct pconn *c;

	fd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	pthread_mutex_lock(&p->lock);
	target = p->target;
	tlen = p->target_len;
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < CONNS_MAX && slot < 0; i++)
		if (!p->conns[i])
			slot = i;
	c = slot >= 0 && tlen ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		close(fd);
		return;
	}
	c->fd[0] = fd;
	c->fd[1] = socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd[1] < 0 ||
	    (connect(c->fd[1], (struct sockaddr *)&target, tlen) < 0 && errno != EINPROGRESS)) {
		fd_reset(c->fd[0]);
		if (c->fd[1] >= 0)
			close(c->fd[1]);
		free(c);
		return;
	}
	c->connecting = true;
	(void)setsockopt(c->fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(c->fd[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->conns[slot] = c;
	for (int d = 0; d < 2; d++)
		flow_arm(p, d, &c->flow[d]);
	pthread_mutex_lock(&p->lock);
	p->open++;
	p->counters[0].conns++;
	p->counters[1].conns++;
	pthread_mutex_unlock(&p->lock);
}

/* Bytes read in direction dir: apply the byte faults, queue them. */
static void flow_take(struct st_proxy *p, int dir, struct flow *fl, uint8_t *b, size_t n,
		      uint64_t now)
{
	struct dir_state *ds = &p->dir[dir];
	const struct st_proxy_faults *f = &ds->f;
	enum action act = ACT_NONE;
	uint64_t o = fl->off, limit = 0;
	size_t keep = n;
	struct chunk *ch;

	if (fl->dropping) {
		COUNT(p, dir, dropped, n);
		return;
	}
	fl->off += n;
	if (ds->armed) {
		for (unsigned i = 0; i < fl->nflips; i++) {
			if (fl->flip_at[i] < o || fl->flip_at[i] >= o + n)
				continue;
			b[fl->flip_at[i] - o] ^= (uint8_t)(1u << fl->flip_bit[i]);
			COUNT(p, dir, flips, 1);
			shot(p, dir, fl);
		}
		static const enum action acts[] = {ACT_RESET, ACT_HALFCLOSE, ACT_TRUNCATE};
		const uint64_t at[] = {f->reset_after, f->halfclose_after, f->truncate_after};
		for (int i = 0; i < 3; i++) {
			if (at[i] && (!limit || at[i] < limit)) {
				limit = at[i];
				act = acts[i];
			}
		}
		if (limit && o + n >= limit) {
			keep = limit > o ? (size_t)(limit - o) : 0;
			fl->dropping = true;
			COUNT(p, dir, dropped, n - keep);
			shot(p, dir, fl);
		} else {
			act = ACT_NONE;
		}
	}
	ch = malloc(sizeof(*ch) + keep);
	if (!ch)
		return;
	memcpy(ch->data, b, keep);
	ch->next = NULL;
	ch->len = keep;
	ch->off = 0;
	ch->action = act;
	ch->release_ms = now;
	if (f->latency_ms || f->jitter_ms)
		ch->release_ms +=
			f->latency_ms + st_rand_below(&p->rand, (uint64_t)f->jitter_ms + 1);
	if (ch->release_ms < fl->last_release)
		ch->release_ms = fl->last_release;
	fl->last_release = ch->release_ms;
	ch->held = ch->release_ms > now;
	if (fl->tail)
		fl->tail->next = ch;
	else
		fl->head = ch;
	fl->tail = ch;
	fl->queued += keep;
}

static bool paused(const struct dir_state *ds, uint64_t now)
{
	return ds->f.partition || now < ds->stall_until;
}

/* Writes what may go now in direction dir. Returns 1 when the connection
 * must be reset, 2 closed, else 0. */
static int flow_write(struct st_proxy *p, struct pconn *c, int dir, uint64_t now)
{
	struct dir_state *ds = &p->dir[dir];
	struct flow *fl = &c->flow[dir];
	int dst = c->fd[1 - dir];

	while (fl->head) {
		struct chunk *ch = fl->head;
		size_t want = ch->len - ch->off;
		ssize_t k = 0;

		if (paused(ds, now) || ch->release_ms > now) {
			ch->held = true;
			return 0;
		}
		if (ds->f.rate_bps && want) {
			double burst = (double)ds->f.rate_bps / (1000.0 / RATE_TICK_MS / 4);
			ds->tokens +=
				(double)(now - ds->refill_ms) * (double)ds->f.rate_bps / 1000.0;
			ds->refill_ms = now;
			if (burst < 512)
				burst = 512;
			if (ds->tokens > burst)
				ds->tokens = burst;
			if (ds->tokens < 1) {
				ch->held = true;
				return 0;
			}
			if ((double)want > ds->tokens) {
				want = (size_t)ds->tokens;
				ch->held = true;
			}
		}
		if (want) {
			k = send(dst, ch->data + ch->off, want, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				fl->blocked = true;
				return 0;
			}
			if (k < 0)
				return 1; /* the destination is gone: tell the source */
			ch->off += (size_t)k;
			fl->queued -= (size_t)k;
			if (ds->f.rate_bps)
				ds->tokens -= (double)k;
			COUNT(p, dir, bytes, (uint64_t)k);
			if (ch->held)
				COUNT(p, dir, delayed, (uint64_t)k);
		}
		if (ch->off < ch->len)
			continue;
		fl->head = ch->next;
		if (!fl->head)
			fl->tail = NULL;
		switch (ch->action) {
		case ACT_RESET:
			free(ch);
			COUNT(p, dir, resets, 1);
			return 1;
		case ACT_TRUNCATE:
			free(ch);
			COUNT(p, dir, truncates, 1);
			return 2;
		case ACT_HALFCLOSE:
			COUNT(p, dir, halfcloses, 1);
			(void)shutdown(dst, SHUT_WR);
			fl->shut = true;
			break;
		case ACT_NONE:
			break;
		}
		free(ch);
	}
	if (fl->eof && !fl->shut && !paused(ds, now)) {
		if (fl->rst)
			return 1;
		(void)shutdown(dst, SHUT_WR);
		fl->shut = true;
	}
	return 0;
}

static void flow_read(struct st_proxy *p, struct pconn *c, int dir, uint64_t now)
{
	struct flow *fl = &c->flow[dir];
	ssize_t k;

	while (!fl->eof && (fl->dropping || fl->queued < QUEUE_MAX)) {
		k = recv(c->fd[dir], p->buf, sizeof(p->buf), MSG_DONTWAIT);
		if (k > 0) {
			flow_take(p, dir, fl, p->buf, (size_t)k, now);
			continue;
		}
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		fl->eof = true;
		fl->rst = k < 0;
		/* after a half-close or a cut nothing more goes this way */
		if (fl->dropping)
			fl->shut = true;
	}
}

/* One connection after poll. Returns 0, or 1 reset / 2 close it. */
static int conn_step(struct st_proxy *p, struct pconn *c, const struct pollfd *pf, uint64_t now)
{
	int r;

	if (c->connecting) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (!(pf[1].revents & (POLLOUT | POLLERR | POLLHUP)))
			return 0;
		if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err)
			return 1;
		c->connecting = false;
	}
	for (int d = 0; d < 2; d++) {
		if (pf[d].revents & (POLLIN | POLLHUP | POLLERR))
			flow_read(p, c, d, now);
		if (pf[1 - d].revents & (POLLOUT | POLLERR | POLLHUP))
			c->flow[d].blocked = false;
	}
	for (int d = 0; d < 2; d++) {
		if (c->flow[d].blocked)
			continue;
		r = flow_write(p, c, d, now);
		if (r)
			return r;
	}
	/* both ways ended and passed on: done */
	if (c->flow[0].shut && c->flow[1].shut && !c->flow[0].head && !c->flow[1].head &&
	    c->flow[0].eof && c->flow[1].eof)
		return 2;
	return 0;
}

/* When the thread must look again without a socket event. */
static uint64_t next_due(struct st_proxy *p, uint64_t now)
{
	uint64_t due = now + POLL_MAX_MS;

	for (int d = 0; d < 2; d++) {
		struct dir_state *ds = &p->dir[d];
		if (ds->stall_until > now && ds->stall_until < due)
			due = ds->stall_until;
		for (int i = 0; i < CONNS_MAX; i++) {
			struct pconn *c = p->conns[i];
			uint64_t at;
			/* blocked: POLLOUT wakes us, not a timer */
			if (!c || !c->flow[d].head || c->flow[d].blocked || paused(ds, now))
				continue;
			at = c->flow[d].head->release_ms;
			/* released but over the rate: the next tick's tokens, not a spin */
			if (ds->f.rate_bps && at < now + RATE_TICK_MS)
				at = now + RATE_TICK_MS;
			if (at < due)
				due = at;
		}
	}
	pthread_mutex_lock(&p->lock);
	if (p->want_reset_at && p->want_reset_at < due)
		due = p->want_reset_at;
	pthread_mutex_unlock(&p->lock);
	return due;
}

static void reset_all(struct st_proxy *p)
{
	for (int i = 0; i < CONNS_MAX; i++) {
		if (!p->conns[i])
			continue;
		COUNT(p, ST_PROXY_AB, resets, 1);
		conn_free(p, i, true);
	}
}

static void *proxy_thread(void *arg)
{
	struct st_proxy *p = arg;
	struct pollfd pf[2 + 2 * CONNS_MAX];
	int slot[CONNS_MAX];
	bool stop = false;

	for (;;) {
		uint64_t now = clock_mono_ms(), due;
		int n = 2, m = 0;

		/* what a setter changed before the bytes came counts for them */
		if (sync_state(p, now, &stop))
			reset_all(p);
		if (stop)
			break;
		pf[0] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
		pf[1] = (struct pollfd){.fd = p->wake_fd, .events = POLLIN};
		for (int i = 0; i < CONNS_MAX; i++) {
			struct pconn *c = p->conns[i];
			if (!c)
				continue;
			slot[m++] = i;
			for (int s = 0; s < 2; s++) {
				struct flow *in = &c->flow[s], *out = &c->flow[1 - s];
				short ev = 0;
				if (!c->connecting && !in->eof &&
				    (in->dropping || in->queued < QUEUE_MAX))
					ev |= POLLIN;
				if ((s == 1 && c->connecting) || out->blocked)
					ev |= POLLOUT;
				/* nothing wanted: left out, so a hang-up does not spin us */
				pf[n++] = (struct pollfd){.fd = ev ? c->fd[s] : -1, .events = ev};
			}
		}
		due = next_due(p, now);
		if (poll(pf, (nfds_t)n, (int)(due > now ? due - now : 0)) < 0 && errno != EINTR)
			break;
		now = clock_mono_ms();
		pthread_mutex_lock(&p->lock);
		p->wakeups++;
		pthread_mutex_unlock(&p->lock);
		if (pf[1].revents & POLLIN) {
			uint64_t v;
			(void)!read(p->wake_fd, &v, sizeof(v));
		}
		if (sync_state(p, now, &stop)) {
			reset_all(p);
			continue;
		}
		if (stop)
			break;
		for (int j = 0; j < m; j++) {
			int r = conn_step(p, p->conns[slot[j]], &pf[2 + 2 * j], now);
			if (r)
				conn_free(p, slot[j], r == 1);
		}
		if (pf[0].revents & POLLIN)
			on_accept(p);
	}
	for (int i = 0; i < CONNS_MAX; i++)
		if (p->conns[i])
			conn_free(p, i, false);
	return NULL;
}

int st_proxy_new(uint64_t seed, struct st_proxy **ret)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	socklen_t sl = sizeof(sa);
	sigset_t all, old;
	struct st_proxy *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	st_rand_seed(&p->rand, seed);
	pthread_mutex_init(&p->lock, NULL);
	p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p->listen_fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->wake_fd < 0 || p->listen_fd < 0 ||
	    bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(p->listen_fd, 16) < 0 ||
	    getsockname(p->listen_fd, (struct sockaddr *)&sa, &sl) < 0) {
		r = -errno;
		goto fail;
	}
	snprintf(p->addr, sizeof(p->addr), "[::1]:%u", (unsigned)ntohs(sa.sin6_port));
	/* the thread takes no signal: the selftest's handlers stay where they are */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&p->thread, NULL, proxy_thread, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		goto fail;
	*ret = p;
	return 0;
fail:
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	pthread_mutex_destroy(&p->lock);
	free(p);
	return r;
}

void st_proxy_free(struct st_proxy *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_mutex_unlock(&p->lock);
	wake(p);
	pthread_join(p->thread, NULL);
	close(p->listen_fd);
	close(p->wake_fd);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

const char *st_proxy_addr(const struct st_proxy *p)
{
	return p->addr;
}

int st_proxy_set_target(struct st_proxy *p, const char *addr)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	char host[64];
	const char *colon = strrchr(addr, ':');
	unsigned long port;
	char *end;

	if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host))
		return -EINVAL;
	port = strtoul(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port == 0 || port > 65535)
		return -EINVAL;
	if (addr[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		if (colon[-1] != ']' || colon - addr < 3)
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr - 2), addr + 1);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -EINVAL;
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		len = sizeof(*s4);
	}
	pthread_mutex_lock(&p->lock);
	p->target = ss;
	p->target_len = len;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void st_proxy_set(struct st_proxy *p, enum st_proxy_dir dir, const struct st_proxy_faults *f)
{
	pthread_mutex_lock(&p->lock);
	if (f->partition && !p->want[dir].partition)
		p->counters[dir].partitions++;
	p->want[dir] = *f;
	p->gen++;
	pthread_mutex_unlock(&p->lock);
	wake(p);
}

void st_proxy_get(struct st_proxy *p, enum st_proxy_dir dir, struct st_proxy_faults *ret)
{
	pthread_mutex_lock(&p->lock);
	*ret = p->want[dir];
	pthread_mutex_unlock(&p->lock);
}

void st_proxy_partition(struct st_proxy *p, bool on)
{
	pthread_mutex_lock(&p->lock);
	for (int d = 0; d < 2; d++) {
		if (on && !p->want[d].partition)
			p->counters[d].partitions++;
		p->want[d].partition = on;
	}
	p->gen++;
	pthread_mutex_unlock(&p->lock);
	wake(p);
}

void st_proxy_stall(struct st_proxy *p, enum st_proxy_dir dir, unsigned ms)
{
	pthread_mutex_lock(&p->lock);
	p->want_stall_until[dir] = clock_mono_ms() + ms;
	p->counters[dir].stalls++;
	pthread_mutex_unlock(&p->lock);
	wake(p);
}

void st_proxy_reset_at(struct st_proxy *p, unsigned ms)
{
	pthread_mutex_lock(&p->lock);
	p->want_reset_at = clock_mono_ms() + ms;
	if (!p->want_reset_at)
		p->want_reset_at = 1;
	pthread_mutex_unlock(&p->lock);
	wake(p);
}

void st_proxy_clear(struct st_proxy *p)
{
	pthread_mutex_lock(&p->lock);
	memset(p->want, 0, sizeof(p->want));
	memset(p->want_stall_until, 0, sizeof(p->want_stall_until));
	p->want_reset_at = 0;
	p->gen++;
	pthread_mutex_unlock(&p->lock);
	wake(p);
}

void st_proxy_counters(struct st_proxy *p, enum st_proxy_dir dir, struct st_proxy_counters *ret)
{
	pthread_mutex_lock(&p->lock);
	*ret = p->counters[dir];
	pthread_mutex_unlock(&p->lock);
}

uint64_t st_proxy_wakeups(struct st_proxy *p)
{
	uint64_t n;

	pthread_mutex_lock(&p->lock);
	n = p->wakeups;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned st_proxy_open_conns(struct st_proxy *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->open;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void st_proxy_format(struct st_proxy *p, enum st_proxy_dir dir, char *out, size_t len)
{
	struct st_proxy_counters c;

	st_proxy_counters(p, dir, &c);
	snprintf(out, len,
		 "proxy %s: %llu connections, %llu bytes forwarded, %llu delayed, %llu dropped, "
		 "%llu stalls, %llu partitions, %llu resets, %llu half-closes, %llu truncations, "
		 "%llu bits flipped",
		 dir == ST_PROXY_AB ? "a->b" : "b->a", (unsigned long long)c.conns,
		 (unsigned long long)c.bytes, (unsigned long long)c.delayed,
		 (unsigned long long)c.dropped, (unsigned long long)c.stalls,
		 (unsigned long long)c.partitions, (unsigned long long)c.resets,
		 (unsigned long long)c.halfcloses, (unsigned long long)c.truncates,
		 (unsigned long long)c.flips);
}

void st_proxy_print(struct st_proxy *p, FILE *f)
{
	char line[512];

	for (int d = 0; d < 2; d++) {
		st_proxy_format(p, (enum st_proxy_dir)d, line, sizeof(line));
		fprintf(f, "# %s\n", line);
	}
}
