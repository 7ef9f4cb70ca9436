/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The relay's TLS front (relay_tls.h has the what and the limits).
 *
 * Each connection is served by tls_service, which does every step it can
 * without blocking and then sets the epoll interest of its two sockets
 * from what it waits for (level-triggered):
 *
 *   TLS -> plain: gnutls_record_recv into in[] while it has room, then
 *   send(2) to the socketpair. The end of the TLS stream (close_notify, or
 *   the TCP end without it) becomes shutdown(SHUT_WR) once in[] is empty.
 *
 *   plain -> TLS: recv(2) into out[] when it is empty, then
 *   gnutls_record_send until it is. After EAGAIN, GnuTLS wants the same
 *   call again, so out[] is not touched while a send is pending. The end
 *   of the plain stream becomes close_notify (gnutls_bye SHUT_WR).
 *
 * A connection is closed when both directions have ended, on an error of
 * either socket, or when microhttpd has closed its end (EPOLLHUP on ours):
 * then what it wrote is still passed on for at most handshake_ms.
 *
 * Connections freed during an epoll batch are only unlinked then; the
 * memory goes after the batch, so that a later event of the same batch
 * never touches freed memory.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "base/clock.h"
#include "base/log.h"
#include "relay_addr.h"
#include "relay_metrics.h"
#include "relay_tls.h"

#define TLS_LISTEN_MAX 8
#define ACCEPT_BATCH 64	  /* accepts per wake-up and listener */
#define SWEEP_MS 250	  /* how often deadlines are looked at */
#define EVENTS_MAX 64

enum ep_kind { EP_WAKE, EP_LISTEN, EP_TCP, EP_PLAIN };

struct ep {
	enum ep_kind kind;
	unsigned index;	     /* EP_LISTEN */
	struct tls_conn *c;  /* EP_TCP, EP_PLAIN */
};

struct tls_conn {
	struct relay_tls *t;
	unsigned listener;
	int tcp, plain; /* plain: -1 until the handoff */
	gnutls_session_t s;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct relay_client_key key;
	int64_t deadline_ms; /* INT64_MAX: none */
	bool handshaking, dead;
	bool tls_eof;	    /* no more bytes from the client */
	bool plain_shut;    /* shutdown(plain, SHUT_WR) done */
	bool plain_eof;	    /* no more bytes from microhttpd */
	bool plain_hup;	    /* microhttpd closed its end */
	bool tx_pending;    /* gnutls_record_send said EAGAIN */
	bool bye_done;
	uint32_t ev_tcp, ev_plain; /* epoll interest set */
	struct ep e_tcp, e_plain;
	uint8_t *in, *out; /* RELAY_TLS_BUF each, after the handoff */
	size_t in_off, in_len, out_off, out_len;
	struct tls_conn *prev, *next; /* t->conns, by accept time */
};

struct relay_tls {
	struct relay_tls_config cfg;
	relay_tls_handoff_fn handoff;
	void *userdata;
	struct relay_core *core;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	int ep_fd, wake_fd;
	struct ep e_wake;
	int listen_fd[TLS_LISTEN_MAX];
	struct ep e_listen[TLS_LISTEN_MAX];
	unsigned count[TLS_LISTEN_MAX]; /* thread only: connections per listener */
	size_t nlisten;
	struct tls_conn *conns, *conns_tail; /* thread only */
	struct tls_conn *graveyard;	     /* thread only: freed after the batch */
	pthread_t thread;
	bool thread_running;		     /* controlling thread only */
	pthread_mutex_t lock;		     /* protects quiescing, quit; held across handoff */
	bool quiescing, quit;
};

/* ---- connections ---- */

static void ep_set(struct relay_tls *t, int fd, struct ep *e, uint32_t *cur, uint32_t want)
{
	struct epoll_event ev = {.events = want, .data.ptr = e};

	if (fd < 0 || *cur == want)
		return;
	if (epoll_ctl(t->ep_fd, EPOLL_CTL_MOD, fd, &ev) == 0)
		*cur = want;
}

static void conn_close(struct tls_conn *c)
{
	struct relay_tls *t = c->t;

	if (c->dead)
		return;
	c->dead = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		t->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		t->conns_tail = c->prev;
	t->count[c->listener]--;
	close(c->tcp); /* also leaves the epoll set */
	if (c->plain >= 0)
		close(c->plain);
	c->tcp = c->plain = -1;
	c->next = t->graveyard;
	t->graveyard = c;
}

static void conn_free(struct tls_conn *c)
{
	gnutls_deinit(c->s);
	free(c->in); /* wiped by graveyard_empty: it held plaintext */
	free(c->out);
	free(c);
}

static void graveyard_empty(struct relay_tls *t)
{
	while (t->graveyard) {
		struct tls_conn *c = t->graveyard;
		t->graveyard = c->next;
		if (c->in)
			explicit_bzero(c->in, RELAY_TLS_BUF);
		if (c->out)
			explicit_bzero(c->out, RELAY_TLS_BUF);
		conn_free(c);
	}
}

/* Gives the handshaken connection to microhttpd. */
static int conn_handoff(struct tls_conn *c)
{
	struct relay_tls *t = c->t;
	struct epoll_event ev = {.events = 0, .data.ptr = &c->e_plain};
	int sv[2], r;

	c->in = malloc(RELAY_TLS_BUF);
	c->out = malloc(RELAY_TLS_BUF);
	if (!c->in || !c->out)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (epoll_ctl(t->ep_fd, EPOLL_CTL_ADD, sv[0], &ev) < 0) {
		r = -errno;
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	c->plain = sv[0];
	pthread_mutex_lock(&t->lock);
	if (t->quiescing) {
		close(sv[1]);
		r = -ESHUTDOWN;
	} else {
		r = t->handoff(t->userdata, c->listener, sv[1], (struct sockaddr *)&c->addr,
			       c->addrlen);
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

static void conn_handshake(struct tls_conn *c)
{
	int r = gnutls_handshake(c->s);

	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED || (r < 0 && !gnutls_error_is_fatal(r))) {
		ep_set(c->t, c->tcp, &c->e_tcp, &c->ev_tcp,
		       gnutls_record_get_direction(c->s) ? EPOLLOUT : EPOLLIN);
		return;
	}
	if (r < 0) {
		log_debug("closing a TLS connection whose handshake failed: %s",
			  gnutls_strerror(r));
		conn_close(c);
		return;
	}
	c->handshaking = false;
	c->deadline_ms = INT64_MAX;
	r = conn_handoff(c);
	if (r < 0) {
		log_debug("closing a TLS connection microhttpd did not take: %s", strerror(-r));
		conn_close(c);
	}
}

static bool plain_again(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Moves bytes both ways until nothing moves; closes c when it is over. */
static void conn_service(struct tls_conn *c)
{
	bool progress;
	ssize_t n;

	if (c->handshaking) {
		conn_handshake(c);
		if (c->dead || c->handshaking)
			return;
	}
	do {
		progress = false;
		/* TLS -> plain */
		if (!c->tls_eof && c->in_len < RELAY_TLS_BUF) {
			n = gnutls_record_recv(c->s, c->in + c->in_len, RELAY_TLS_BUF - c->in_len);
			if (n > 0) {
				if (c->plain_hup)
					n = 0; /* nobody reads it any more */
				c->in_len += (size_t)n;
				progress = true;
			} else if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) {
				c->tls_eof = true;
				progress = true;
			} else if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED &&
				   gnutls_error_is_fatal((int)n)) {
				goto fail;
			}
		}
		if (c->in_off < c->in_len && !c->plain_hup) {
			n = send(c->plain, c->in + c->in_off, c->in_len - c->in_off, MSG_NOSIGNAL);
			if (n > 0) {
				c->in_off += (size_t)n;
				progress = true;
			} else if (n < 0 && !plain_again()) {
				goto fail;
			}
		}
		if (c->in_off == c->in_len)
			c->in_off = c->in_len = 0;
		if (c->tls_eof && c->in_len == 0 && !c->plain_shut) {
			(void)shutdown(c->plain, SHUT_WR);
			c->plain_shut = true;
		}
		/* plain -> TLS */
		if (!c->plain_eof && !c->tx_pending && c->out_len == 0) {
			n = recv(c->plain, c->out, RELAY_TLS_BUF, 0);
			if (n > 0) {
				c->out_len = (size_t)n;
				progress = true;
			} else if (n == 0) {
				c->plain_eof = true;
				progress = true;
			} else if (!plain_again()) {
				goto fail;
			}
		}
		if (c->out_off < c->out_len) {
			n = gnutls_record_send(c->s, c->out + c->out_off, c->out_len - c->out_off);
			c->tx_pending = n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED;
			if (n > 0) {
				c->out_off += (size_t)n;
				progress = true;
			} else if (!c->tx_pending) {
				goto fail;
			}
		}
		if (c->out_off == c->out_len)
			c->out_off = c->out_len = 0;
		if (c->plain_eof && c->out_len == 0 && !c->bye_done) {
			int r = gnutls_bye(c->s, GNUTLS_SHUT_WR);
			if (r == 0)
				c->bye_done = true;
			else if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED)
				goto fail;
		}
	} while (progress && !c->dead);
	if (c->bye_done && (c->plain_hup || (c->plain_shut && c->tls_eof))) {
		conn_close(c);
		return;
	}
	uint32_t want_tcp = 0, want_plain = 0;
	if (!c->tls_eof && c->in_len < RELAY_TLS_BUF)
		want_tcp |= EPOLLIN;
	if (c->tx_pending || (c->plain_eof && c->out_len == 0 && !c->bye_done))
		want_tcp |= gnutls_record_get_direction(c->s) ? EPOLLOUT : EPOLLIN;
	if (!c->plain_hup) {
		if (c->in_len > 0)
			want_plain |= EPOLLOUT;
		if (!c->plain_eof && !c->tx_pending && c->out_len == 0)
			want_plain |= EPOLLIN;
	}
	ep_set(c->t, c->tcp, &c->e_tcp, &c->ev_tcp, want_tcp);
	ep_set(c->t, c->plain, &c->e_plain, &c->ev_plain, want_plain);
	return;
fail:
	conn_close(c);
}

/* microhttpd closed its end: pass on what it wrote, for a bounded time. */
static void conn_plain_hup(struct tls_conn *c)
{
	if (c->plain_hup)
		return;
	c->plain_hup = true;
	c->in_off = c->in_len = 0;
	c->deadline_ms = (int64_t)clock_mono_ms() + c->t->cfg.handshake_ms;
	/* EPOLLHUP is reported whatever the interest: take it out of the set */
	(void)epoll_ctl(c->t->ep_fd, EPOLL_CTL_DEL, c->plain, NULL);
	c->ev_plain = 0;
}

/* ---- accepting ---- */

static unsigned client_count(struct relay_tls *t, const struct relay_client_key *key)
{
	unsigned n = 0;

	for (struct tls_conn *c = t->conns; c; c = c->next)
		n += memcmp(&c->key, key, sizeof(*key)) == 0;
	return n;
}

/* The oldest connection of listener still in its handshake, or NULL. */
static struct tls_conn *oldest_handshaking(struct relay_tls *t, unsigned listener)
{
	for (struct tls_conn *c = t->conns; c; c = c->next)
		if (c->handshaking && c->listener == listener)
			return c;
	return NULL;
}

static void accept_one(struct relay_tls *t, unsigned index, int fd, const struct sockaddr *sa,
		       socklen_t salen)
{
	struct tls_conn *c, *evict = NULL;
	struct relay_client_key key;
	struct epoll_event ev;

	relay_addr_key_derive(sa, &key);
	if (t->cfg.max_per_client && client_count(t, &key) >= t->cfg.max_per_client) {
		log_debug("closing a new TLS connection: its client already has %u open",
			  t->cfg.max_per_client);
		relay_core_count_closed(t->core, RELAY_CLOSE_PER_CLIENT, 1);
		close(fd);
		return;
	}
	if (t->count[index] >= t->cfg.max_connections) {
		evict = oldest_handshaking(t, index);
		if (!evict) {
			log_debug("closing a new TLS connection: %u are open",
				  t->cfg.max_connections);
			close(fd);
			return;
		}
		log_debug("closing the oldest TLS connection still in its handshake, to let a "
			  "new one in");
		relay_core_count_closed(t->core, RELAY_CLOSE_EVICTED, 1);
		conn_close(evict);
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto fail_fd;
	c->t = t;
	c->listener = index;
	c->tcp = fd;
	c->plain = -1;
	c->key = key;
	memcpy(&c->addr, sa, salen);
	c->addrlen = salen;
	c->handshaking = true;
	c->deadline_ms = (int64_t)clock_mono_ms() + t->cfg.handshake_ms;
	c->e_tcp = (struct ep){.kind = EP_TCP, .c = c};
	c->e_plain = (struct ep){.kind = EP_PLAIN, .c = c};
	if (gnutls_init(&c->s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0) {
		free(c);
		goto fail_fd;
	}
	if (gnutls_priority_set(c->s, t->prio) < 0 ||
	    gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, t->cred) < 0)
		goto fail_session;
	gnutls_certificate_server_set_request(c->s, GNUTLS_CERT_IGNORE);
	gnutls_transport_set_int(c->s, fd);
	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &c->e_tcp};
	if (epoll_ctl(t->ep_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail_session;
	c->ev_tcp = EPOLLIN;
	c->prev = t->conns_tail;
	if (t->conns_tail)
		t->conns_tail->next = c;
	else
		t->conns = c;
	t->conns_tail = c;
	t->count[index]++;
	conn_service(c); /* the ClientHello may be there already */
	return;
fail_session:
	gnutls_deinit(c->s);
	free(c);
fail_fd:
	log_debug("closing a new TLS connection: out of memory");
	close(fd);
}

static void accept_all(struct relay_tls *t, unsigned index)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(t->listen_fd[index], (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or an error of that one connection */
		accept_one(t, index, fd, (struct sockaddr *)&ss, len);
	}
}

/* ---- the thread ---- */

static void sweep(struct relay_tls *t, int64_t now)
{
	unsigned n = 0;

	for (struct tls_conn *c = t->conns, *next; c; c = next) {
		next = c->next;
		if (c->deadline_ms > now)
			continue;
		n += c->handshaking;
		conn_close(c);
	}
	if (n) {
		relay_core_count_closed(t->core, RELAY_CLOSE_DEADLINE, n);
		log_debug("closed %u TLS connections that did not finish their handshake within "
			  "%u ms",
			  n, t->cfg.handshake_ms);
	}
}

static void quiesce_listeners(struct relay_tls *t)
{
	for (size_t i = 0; i < t->nlisten; i++)
		if (t->listen_fd[i] >= 0)
			(void)epoll_ctl(t->ep_fd, EPOLL_CTL_DEL, t->listen_fd[i], NULL);
}

static void *tls_main(void *arg)
{
	struct relay_tls *t = arg;
	struct epoll_event evs[EVENTS_MAX];
	int64_t last_sweep = (int64_t)clock_mono_ms();
	bool quiesced = false;

	for (;;) {
		bool quit, quiescing;
		int n;

		pthread_mutex_lock(&t->lock);
		quit = t->quit;
		quiescing = t->quiescing;
		pthread_mutex_unlock(&t->lock);
		if (quit)
			break;
		if (quiescing && !quiesced) {
			quiesce_listeners(t);
			quiesced = true;
		}
		n = epoll_wait(t->ep_fd, evs, EVENTS_MAX, t->conns ? SWEEP_MS : -1);
		for (int i = 0; i < n; i++) {
			struct ep *e = evs[i].data.ptr;
			switch (e->kind) {
			case EP_WAKE: {
				uint64_t v;
				(void)!read(t->wake_fd, &v, sizeof(v));
				break;
			}
			case EP_LISTEN:
				if (!quiesced)
					accept_all(t, e->index);
				break;
			case EP_PLAIN:
				if (!e->c->dead && (evs[i].events & (EPOLLHUP | EPOLLERR))) {
					/* read what is left first */
					conn_service(e->c);
					if (!e->c->dead)
						conn_plain_hup(e->c);
				}
				/* fall through */
			case EP_TCP:
				if (!e->c->dead)
					conn_service(e->c);
				/* a reset or a closed socket: nothing more goes through */
				if (e->kind == EP_TCP && !e->c->dead &&
				    (evs[i].events & (EPOLLHUP | EPOLLERR)))
					conn_close(e->c);
				break;
			}
		}
		graveyard_empty(t);
		int64_t now = (int64_t)clock_mono_ms();
		if (now - last_sweep >= SWEEP_MS) {
			sweep(t, now);
			graveyard_empty(t);
			last_sweep = now;
		}
	}
	while (t->conns)
		conn_close(t->conns);
	graveyard_empty(t);
	return NULL;
}

static void wake(struct relay_tls *t)
{
	uint64_t one = 1;

	(void)!write(t->wake_fd, &one, sizeof(one));
}

/* ---- the front ---- */

int relay_tls_new(const char *cert_pem, const char *key_pem, const struct relay_tls_config *cfg,
		  relay_tls_handoff_fn handoff, void *userdata, struct relay_core *core,
		  struct relay_tls **ret)
{
	gnutls_datum_t cert = {(unsigned char *)cert_pem, (unsigned)strlen(cert_pem)};
	gnutls_datum_t key = {(unsigned char *)key_pem, (unsigned)strlen(key_pem)};
	struct epoll_event ev;
	struct relay_tls *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	t->cfg = *cfg;
	t->handoff = handoff;
	t->userdata = userdata;
	t->core = core;
	t->ep_fd = t->wake_fd = -1;
	for (size_t i = 0; i < TLS_LISTEN_MAX; i++)
		t->listen_fd[i] = -1;
	r = -ENOMEM;
	if (gnutls_certificate_allocate_credentials(&t->cred) < 0) {
		t->cred = NULL;
		goto fail;
	}
	r = gnutls_certificate_set_x509_key_mem2(t->cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL,
						 0);
	if (r < 0) {
		log_debug("GnuTLS refused the certificate or key: %s", gnutls_strerror(r));
		r = -EINVAL;
		goto fail;
	}
	if (gnutls_priority_init(&t->prio, NULL, NULL) < 0 /* the system default */) {
		t->prio = NULL;
		r = -ENOMEM;
		goto fail;
	}
	t->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->ep_fd < 0 || t->wake_fd < 0) {
		r = -errno;
		goto fail;
	}
	t->e_wake.kind = EP_WAKE;
	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &t->e_wake};
	if (epoll_ctl(t->ep_fd, EPOLL_CTL_ADD, t->wake_fd, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	r = -pthread_mutex_init(&t->lock, NULL);
	if (r < 0)
		goto fail;
	*ret = t;
	return 0;
fail:
	if (t->prio)
		gnutls_priority_deinit(t->prio);
	if (t->cred)
		gnutls_certificate_free_credentials(t->cred);
	if (t->ep_fd >= 0)
		close(t->ep_fd);
	if (t->wake_fd >= 0)
		close(t->wake_fd);
	free(t);
	return r;
}

int relay_tls_listen(struct relay_tls *t, unsigned index, int fd)
{
	struct epoll_event ev;

	if (index >= TLS_LISTEN_MAX || t->listen_fd[index] >= 0) {
		close(fd);
		return -EINVAL;
	}
	t->listen_fd[index] = fd;
	if (index >= t->nlisten)
		t->nlisten = index + 1;
	t->e_listen[index] = (struct ep){.kind = EP_LISTEN, .index = index};
	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &t->e_listen[index]};
	if (epoll_ctl(t->ep_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

int relay_tls_start(struct relay_tls *t)
{
	int r = -pthread_create(&t->thread, NULL, tls_main, t);

	if (r < 0) {
		log_err("cannot start the relay's TLS thread: %s", strerror(-r));
		return r;
	}
	t->thread_running = true;
	return 0;
}

void relay_tls_quiesce(struct relay_tls *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->quiescing = true;
	pthread_mutex_unlock(&t->lock);
	wake(t);
}

void relay_tls_free(struct relay_tls *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->quiescing = t->quit = true;
	pthread_mutex_unlock(&t->lock);
	if (t->thread_running) {
		wake(t);
		pthread_join(t->thread, NULL);
	}
	for (size_t i = 0; i < t->nlisten; i++)
		if (t->listen_fd[i] >= 0)
			close(t->listen_fd[i]);
	gnutls_priority_deinit(t->prio);
	gnutls_certificate_free_credentials(t->cred);
	close(t->ep_fd);
	close(t->wake_fd);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
