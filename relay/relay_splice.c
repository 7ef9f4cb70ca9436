/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The splice pump (relay_splice.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "relay_splice.h"

#define SCAN_MS 250   /* idle checks at most this often */
#define PARK_MIN_MS 5 /* a rate-limited session sleeps at least this long */
#define STEP_ROUNDS 4 /* moves per direction per wake-up, then others get a turn */
#define EVENTS_MAX 64

struct bucket {
	uint64_t rate; /* bytes per second, 0: no limit */
	double tokens; /* bytes it may move now */
	int64_t at_ms; /* last refill */
};

struct dir {
	int from, to; /* sockets */
	int pipe[2];  /* splice mode, else -1 */
	uint8_t *buf; /* read/write mode: RELAY_SPLICE_BUF bytes */
	size_t len;   /* bytes held (in the pipe or at buf + off) */
	size_t off;
	bool eof;  /* from has ended */
	bool full; /* the pipe took nothing though it holds less than its size */
	bool shut; /* to was shut down for writing */
};

struct psess;

/* What epoll hands back: one per socket of a session. */
struct endpoint {
	struct psess *s;
	int i;		 /* socket index: 0 or 1 */
	uint32_t events; /* registered now */
	bool gone;	 /* hung up: no longer watched, read until its end */
};

struct psess {
	int fd[2];
	struct dir d[2]; /* d[i] copies fd[i] to fd[1 - i] */
	struct endpoint ep[2];
	struct bucket bucket;
	void *ctx;
	int64_t last_ms; /* last byte moved */
	int64_t park_ms; /* > 0: parked by the rate limit until then */
	bool dead;
	enum relay_splice_end why;
	struct psess *prev, *next;
};

struct relay_splice {
	struct relay_splice_config cfg;
	relay_splice_end_fn end_fn;
	relay_splice_tick_fn tick_fn;
	void *userdata;
	int epfd, evfd;
	pthread_t thread;
	bool running;		/* controlling thread only */
	pthread_mutex_t lock;	/* protects incoming and stopping */
	struct psess *incoming; /* added, not yet watched */
	bool stopping;
	struct psess *head;  /* the pump thread's only */
	struct bucket total; /* the pump thread's only */
	int64_t next_tick_ms, next_scan_ms;
	uint64_t bytes; /* atomic */
};

static void bucket_init(struct bucket *b, uint64_t rate, int64_t now_ms)
{
	b->rate = rate;
	b->tokens = (double)(rate > RELAY_SPLICE_BUF ? rate : RELAY_SPLICE_BUF);
	b->at_ms = now_ms;
}

static double bucket_cap(const struct bucket *b)
{
	return (double)(b->rate > RELAY_SPLICE_BUF ? b->rate : RELAY_SPLICE_BUF);
}

static void bucket_refill(struct bucket *b, int64_t now_ms)
{
	if (!b->rate || now_ms <= b->at_ms)
		return;
	b->tokens += (double)b->rate * (double)(now_ms - b->at_ms) / 1000.0;
	if (b->tokens > bucket_cap(b))
		b->tokens = bucket_cap(b);
	b->at_ms = now_ms;
}

/* Bytes s may move now (at most want). */
static size_t allowance(struct relay_splice *sp, struct psess *s, size_t want)
{
	if (s->bucket.rate && s->bucket.tokens < (double)want)
		want = s->bucket.tokens < 1 ? 0 : (size_t)s->bucket.tokens;
	if (sp->total.rate && sp->total.tokens < (double)want)
		want = sp->total.tokens < 1 ? 0 : (size_t)sp->total.tokens;
	return want;
}

static void spend(struct relay_splice *sp, struct psess *s, size_t n)
{
	if (s->bucket.rate)
		s->bucket.tokens -= (double)n;
	if (sp->total.rate)
		sp->total.tokens -= (double)n;
}

/* When the buckets will allow a useful amount again. */
static int64_t park_until(struct relay_splice *sp, struct psess *s, int64_t now_ms)
{
	const double want = 16 * 1024;
	int64_t at = now_ms + PARK_MIN_MS;

	if (s->bucket.rate && s->bucket.tokens < want) {
		int64_t t = now_ms +
			    (int64_t)((want - s->bucket.tokens) * 1000.0 / (double)s->bucket.rate) +
			    1;
		if (t > at)
			at = t;
	}
	if (sp->total.rate && sp->total.tokens < want) {
		int64_t t = now_ms +
			    (int64_t)((want - sp->total.tokens) * 1000.0 / (double)sp->total.rate) +
			    1;
		if (t > at)
			at = t;
	}
	return at;
}

static void dir_done(struct dir *d)
{
	if (d->pipe[0] >= 0)
		close(d->pipe[0]);
	if (d->pipe[1] >= 0)
		close(d->pipe[1]);
	d->pipe[0] = d->pipe[1] = -1;
	free(d->buf);
	d->buf = NULL;
}

static void sess_free(struct psess *s)
{
	if (!s)
		return;
	dir_done(&s->d[0]);
	dir_done(&s->d[1]);
	free(s);
}

/* Read/write mode for d, with the bytes already in its pipe (none) kept. */
static int dir_to_buffer(struct dir *d)
{
	if (!d->buf) {
		d->buf = malloc(RELAY_SPLICE_BUF);
		if (!d->buf)
			return -ENOMEM;
	}
	if (d->pipe[0] >= 0) {
		close(d->pipe[0]);
		close(d->pipe[1]);
		d->pipe[0] = d->pipe[1] = -1;
	}
	return 0;
}

static int dir_init(struct dir *d, int from, int to, const void *extra, size_t n)
{
	d->from = from;
	d->to = to;
	d->pipe[0] = d->pipe[1] = -1;
	if (pipe2(d->pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
		/* the default size; say it, so the bound does not depend on it */
		(void)fcntl(d->pipe[1], F_SETPIPE_SZ, RELAY_SPLICE_BUF);
		if (fcntl(d->pipe[1], F_GETPIPE_SZ) != RELAY_SPLICE_BUF) {
			close(d->pipe[0]);
			close(d->pipe[1]);
			d->pipe[0] = d->pipe[1] = -1;
		}
	} else {
		d->pipe[0] = d->pipe[1] = -1;
	}
	if (d->pipe[0] < 0 && dir_to_buffer(d) < 0)
		return -ENOMEM;
	if (n == 0)
		return 0;
	if (d->pipe[1] >= 0) {
		ssize_t w = write(d->pipe[1], extra, n);
		if (w == (ssize_t)n) {
			d->len = n;
			return 0;
		}
		if (w > 0)
			return -EIO; /* cannot happen: the pipe is empty and large enough */
		if (dir_to_buffer(d) < 0)
			return -ENOMEM;
	}
	memcpy(d->buf, extra, n);
	d->len = n;
	return 0;
}

static bool would_block(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

/* Reads up to room bytes from d->from into the pipe or the buffer. */
static ssize_t dir_read(struct dir *d, size_t room)
{
	size_t tail;

	if (d->pipe[1] >= 0)
		return splice(d->from, NULL, d->pipe[1], NULL, room,
			      SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (d->len == 0)
		d->off = 0;
	tail = RELAY_SPLICE_BUF - d->off - d->len;
	if (tail == 0) {
		memmove(d->buf, d->buf + d->off, d->len);
		d->off = 0;
		tail = RELAY_SPLICE_BUF - d->len;
	}
	return read(d->from, d->buf + d->off + d->len, tail < room ? tail : room);
}

/* Writes what d holds to d->to. */
static ssize_t dir_write(struct dir *d)
{
	ssize_t m;

	if (d->pipe[0] >= 0)
		return splice(d->pipe[0], NULL, d->to, NULL, d->len,
			      SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	m = send(d->to, d->buf + d->off, d->len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (m > 0)
		d->off += (size_t)m;
	return m;
}

/*
 * Moves what it can in direction d (rounds times at most, or until
 * nothing moves). Returns the bytes read from the source, or -errno.
 */
static ssize_t dir_step(struct relay_splice *sp, struct psess *s, struct dir *d, int rounds)
{
	size_t moved = 0;

	for (int round = 0; round < rounds; round++) {
		bool progress = false;
		if (!d->eof && d->len < RELAY_SPLICE_BUF && !s->park_ms && !d->full) {
			size_t room = allowance(sp, s, RELAY_SPLICE_BUF - d->len);
			ssize_t n = 0;
			if (room == 0)
				s->park_ms = park_until(sp, s, (int64_t)clock_mono_ms());
			else
				n = dir_read(d, room);
			if (n < 0 && (errno == EINVAL || errno == ENOSYS || errno == EPERM) &&
			    d->pipe[1] >= 0 && d->len == 0) {
				/* this socket (or a seccomp filter) refuses splice: copy instead */
				if (dir_to_buffer(d) < 0)
					return -ENOMEM;
				continue;
			}
			if (n > 0) {
				d->len += (size_t)n;
				moved += (size_t)n;
				spend(sp, s, (size_t)n);
				progress = true;
			} else if (n == 0 && room) {
				d->eof = true;
			} else if (n < 0 && !would_block(errno)) {
				return -errno;
			} else if (n < 0 && d->pipe[1] >= 0 && d->len > 0) {
				/*
				 * A pipe counts pages, not bytes: one holding partial
				 * pages can be full below RELAY_SPLICE_BUF. Stop
				 * watching the source until the pipe drains, or a
				 * readable source would wake the loop again and again.
				 */
				d->full = true;
			}
		}
		if (d->len > 0) {
			ssize_t m = dir_write(d);
			if (m > 0) {
				d->len -= (size_t)m;
				d->full = false;
				progress = true;
			} else if (m < 0 && !would_block(errno)) {
				return -errno;
			}
		}
		if (d->eof && d->len == 0 && !d->shut) {
			(void)shutdown(d->to, SHUT_WR);
			d->shut = true;
		}
		if (!progress)
			break;
	}
	return (ssize_t)moved;
}

static uint32_t wanted_events(const struct psess *s, int i)
{
	const struct dir *in = &s->d[i], *out = &s->d[1 - i];
	uint32_t ev = 0;

	if (!in->eof && in->len < RELAY_SPLICE_BUF && !s->park_ms && !in->full)
		ev |= EPOLLIN;
	if (out->len > 0)
		ev |= EPOLLOUT;
	return ev;
}

static int watch(struct relay_splice *sp, struct psess *s, int i, bool add)
{
	struct epoll_event ev = {.events = wanted_events(s, i), .data.ptr = &s->ep[i]};

	if (s->ep[i].gone || (!add && ev.events == s->ep[i].events))
		return 0;
	if (epoll_ctl(sp->epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, s->fd[i], &ev) < 0)
		return -errno;
	s->ep[i].events = ev.events;
	return 0;
}

static void sess_kill(struct psess *s, enum relay_splice_end why)
{
	if (s->dead)
		return;
	s->dead = true;
	s->why = why;
}

/* Runs both directions of s after an event or a wake-up. */
static void sess_run(struct relay_splice *sp, struct psess *s, int64_t now_ms)
{
	ssize_t n[2];

	if (s->dead)
		return;
	bucket_refill(&s->bucket, now_ms);
	for (int i = 0; i < 2; i++) {
		n[i] = dir_step(sp, s, &s->d[i], s->ep[i].gone ? INT32_MAX : STEP_ROUNDS);
		if (n[i] < 0) {
			sess_kill(s, RELAY_SPLICE_END_ERROR);
			return;
		}
		if (n[i] > 0) {
			s->last_ms = now_ms;
			__atomic_add_fetch(&sp->bytes, (uint64_t)n[i], __ATOMIC_RELAXED);
		}
	}
	if (s->d[0].shut && s->d[1].shut) {
		sess_kill(s, RELAY_SPLICE_END_CLOSED);
		return;
	}
	if (watch(sp, s, 0, false) < 0 || watch(sp, s, 1, false) < 0)
		sess_kill(s, RELAY_SPLICE_END_ERROR);
}

/*
 * ep's socket hung up (EPOLLHUP: it can neither send nor receive any
 * more; EPOLLERR: it failed). If we had not shut its sending side
 * ourselves, its peer reset the connection: the session is over.
 * Otherwise its peer's last bytes may still wait to be read: stop
 * watching it (a hang-up is reported again and again) and read the rest
 * without waiting for events.
 */
static void hung_up(struct relay_splice *sp, struct endpoint *ep, int64_t now_ms)
{
	struct psess *s = ep->s;

	if (s->dead || ep->gone)
		return;
	if (!s->d[1 - ep->i].shut) {
		sess_kill(s, RELAY_SPLICE_END_ERROR);
		return;
	}
	ep->gone = true;
	(void)epoll_ctl(sp->epfd, EPOLL_CTL_DEL, s->fd[ep->i], NULL);
	sess_run(sp, s, now_ms);
}

/* Unlinks every dead session and tells the owner. */
static void reap(struct relay_splice *sp)
{
	struct psess *s = sp->head, *next;

	for (; s; s = next) {
		next = s->next;
		if (!s->dead)
			continue;
		if (s->prev)
			s->prev->next = s->next;
		else
			sp->head = s->next;
		if (s->next)
			s->next->prev = s->prev;
		for (int i = 0; i < 2; i++)
			if (!s->ep[i].gone)
				(void)epoll_ctl(sp->epfd, EPOLL_CTL_DEL, s->fd[i], NULL);
		sp->end_fn(sp->userdata, s->ctx, s->why);
		sess_free(s);
	}
}

/* Takes the sessions added since the last look. Returns false when stopping. */
static bool take_incoming(struct relay_splice *sp, int64_t now_ms)
{
	struct psess *in, *next;
	bool stopping;
	uint64_t v;

	(void)read(sp->evfd, &v, sizeof(v));
	pthread_mutex_lock(&sp->lock);
	in = sp->incoming;
	sp->incoming = NULL;
	stopping = sp->stopping;
	pthread_mutex_unlock(&sp->lock);
	sp->next_tick_ms = 0;
	for (; in; in = next) {
		next = in->next;
		in->prev = NULL;
		in->next = sp->head;
		if (sp->head)
			sp->head->prev = in;
		sp->head = in;
		in->last_ms = now_ms;
		bucket_init(&in->bucket, sp->cfg.session_rate, now_ms);
		if (watch(sp, in, 0, true) < 0 || watch(sp, in, 1, true) < 0)
			sess_kill(in, RELAY_SPLICE_END_ERROR);
		else
			sess_run(sp, in, now_ms); /* bytes that came before the hand-over */
	}
	return !stopping;
}

/* Idle sessions, and rate-parked ones whose time has come. Returns the next time to look. */
static int64_t scan(struct relay_splice *sp, int64_t now_ms)
{
	int64_t next = now_ms + SCAN_MS;

	for (struct psess *s = sp->head; s; s = s->next) {
		if (s->dead)
			continue;
		if (now_ms - s->last_ms >= sp->cfg.idle_ms) {
			sess_kill(s, RELAY_SPLICE_END_IDLE);
			continue;
		}
		if (s->park_ms && s->park_ms <= now_ms) {
			s->park_ms = 0;
			sess_run(sp, s, now_ms);
		}
		if (s->park_ms && s->park_ms < next)
			next = s->park_ms;
	}
	return next;
}

static void *pump_main(void *arg)
{
	struct relay_splice *sp = arg;
	struct epoll_event evs[EVENTS_MAX];
	int64_t now_ms = (int64_t)clock_mono_ms();

	sp->next_scan_ms = now_ms + SCAN_MS;
	sp->next_tick_ms = 0;
	for (;;) {
		int64_t wake =
			sp->next_scan_ms < sp->next_tick_ms ? sp->next_scan_ms : sp->next_tick_ms;
		int timeout =
			wake <= now_ms ? 0 : (int)(wake - now_ms > 60000 ? 60000 : wake - now_ms);
		int n = epoll_wait(sp->epfd, evs, EVENTS_MAX, timeout);
		bool go_on = true;

		now_ms = (int64_t)clock_mono_ms();
		bucket_refill(&sp->total, now_ms);
		for (int i = 0; i < n; i++) {
			struct endpoint *ep = evs[i].data.ptr;
			if (!ep) {
				go_on = take_incoming(sp, now_ms);
				continue;
			}
			sess_run(sp, ep->s, now_ms);
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				hung_up(sp, ep, now_ms);
		}
		if (now_ms >= sp->next_scan_ms)
			sp->next_scan_ms = scan(sp, now_ms);
		reap(sp);
		if (!go_on)
			break;
		if (now_ms >= sp->next_tick_ms)
			sp->next_tick_ms = sp->tick_fn(sp->userdata, now_ms);
	}
	return NULL;
}

int relay_splice_new(const struct relay_splice_config *cfg, relay_splice_end_fn end_fn,
		     relay_splice_tick_fn tick_fn, void *userdata, struct relay_splice **ret)
{
	struct relay_splice *sp;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	int r;

	if (cfg->idle_ms <= 0 || !end_fn || !tick_fn)
		return -EINVAL;
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	sp->cfg = *cfg;
	sp->end_fn = end_fn;
	sp->tick_fn = tick_fn;
	sp->userdata = userdata;
	sp->evfd = -1;
	sp->stopping = true; /* until started */
	sp->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sp->epfd < 0)
		goto fail_errno;
	sp->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sp->evfd < 0 || epoll_ctl(sp->epfd, EPOLL_CTL_ADD, sp->evfd, &ev) < 0)
		goto fail_errno;
	r = -pthread_mutex_init(&sp->lock, NULL);
	if (r < 0)
		goto fail;
	*ret = sp;
	return 0;
fail_errno:
	r = -errno;
fail:
	if (sp->evfd >= 0)
		close(sp->evfd);
	if (sp->epfd >= 0)
		close(sp->epfd);
	free(sp);
	return r;
}

static void kick(struct relay_splice *sp)
{
	uint64_t one = 1;

	(void)write(sp->evfd, &one, sizeof(one));
}

int relay_splice_start(struct relay_splice *sp)
{
	sigset_t all, old;
	int r;

	if (sp->running)
		return -EALREADY;
	pthread_mutex_lock(&sp->lock);
	sp->stopping = false;
	pthread_mutex_unlock(&sp->lock);
	bucket_init(&sp->total, sp->cfg.total_rate, (int64_t)clock_mono_ms());
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&sp->thread, NULL, pump_main, sp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		return r;
	sp->running = true;
	return 0;
}

void relay_splice_stop(struct relay_splice *sp)
{
	struct psess *s, *in;

	if (!sp || !sp->running)
		return;
	pthread_mutex_lock(&sp->lock);
	sp->stopping = true;
	pthread_mutex_unlock(&sp->lock);
	kick(sp);
	pthread_join(sp->thread, NULL);
	sp->running = false;
	pthread_mutex_lock(&sp->lock);
	in = sp->incoming;
	sp->incoming = NULL;
	pthread_mutex_unlock(&sp->lock);
	/* the handed-over ones that were never watched end the same way */
	while (in) {
		s = in;
		in = in->next;
		s->next = sp->head;
		s->prev = NULL;
		if (sp->head)
			sp->head->prev = s;
		sp->head = s;
	}
	for (s = sp->head; s; s = s->next)
		sess_kill(s, RELAY_SPLICE_END_STOPPING);
	reap(sp);
}

void relay_splice_free(struct relay_splice *sp)
{
	if (!sp)
		return;
	relay_splice_stop(sp);
	pthread_mutex_destroy(&sp->lock);
	close(sp->evfd);
	close(sp->epfd);
	free(sp);
}

int relay_splice_add(struct relay_splice *sp, int fd_a, const void *extra_a, size_t na, int fd_b,
		     const void *extra_b, size_t nb, void *ctx)
{
	struct psess *s;
	int r;

	if (na > RELAY_SPLICE_BUF || nb > RELAY_SPLICE_BUF)
		return -EMSGSIZE;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->d[0].pipe[0] = s->d[0].pipe[1] = s->d[1].pipe[0] = s->d[1].pipe[1] = -1;
	s->fd[0] = fd_a;
	s->fd[1] = fd_b;
	s->ctx = ctx;
	for (int i = 0; i < 2; i++) {
		int fl = fcntl(s->fd[i], F_GETFL);
		s->ep[i].s = s;
		s->ep[i].i = i;
		if (fl < 0 || fcntl(s->fd[i], F_SETFL, fl | O_NONBLOCK) < 0) {
			r = -errno;
			goto fail;
		}
	}
	r = dir_init(&s->d[0], fd_a, fd_b, extra_a, na);
	if (r == 0)
		r = dir_init(&s->d[1], fd_b, fd_a, extra_b, nb);
	if (r < 0)
		goto fail;
	pthread_mutex_lock(&sp->lock);
	if (sp->stopping) {
		pthread_mutex_unlock(&sp->lock);
		r = -ESHUTDOWN;
		goto fail;
	}
	s->next = sp->incoming;
	sp->incoming = s;
	pthread_mutex_unlock(&sp->lock);
	kick(sp);
	return 0;
fail:
	sess_free(s);
	return r;
}

void relay_splice_wake(struct relay_splice *sp)
{
	kick(sp);
}

uint64_t relay_splice_bytes(const struct relay_splice *sp)
{
	return __atomic_load_n(&sp->bytes, __ATOMIC_RELAXED);
}
