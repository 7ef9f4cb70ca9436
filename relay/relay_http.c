/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The relay's HTTP layer on libmicrohttpd: sockets, limits, TLS, and the
 * translation between microhttpd's callbacks and relay_core. No decision
 * about a request is taken here except the ones that must be taken while
 * reading it (a body larger than the cap is never buffered; an upload that
 * takes too long is cut).
 *
 * Design note. Every --listen address gets its own socket, created here
 * (dual-stack for [::] and *), and its own microhttpd daemon with one
 * internal epoll thread; all daemons share one relay_core. The access
 * handler is called (1) once with the headers: relay_core_admit answers
 * 429/413 right there, before any body byte is read, and microhttpd then
 * closes the connection; (2) with each piece of the body, copied into a
 * buffer of at most max_body bytes; (3) once at the end: relay_core_handle.
 * The per-request state is freed by the completion callback, which also
 * counts requests in flight so that relay_server_stop can let them finish.
 *
 * Slow clients. microhttpd only has an idle timeout, which a client resets
 * by sending one header byte now and then. So every connection is also
 * tracked in relay_conns (relay_conns.h) from microhttpd's connection
 * notifications, with its socket: a connection that has not sent a whole
 * request (headers and body) request_deadline seconds after its accept, or
 * after the end of its previous request, is shut down (shutdown(2), which
 * microhttpd then sees as a closed connection) by a sweeper thread. The
 * same table counts connections per client (IPv4 address or IPv6 /64, over
 * all listeners) and evicts the oldest waiting connection when a new one
 * would leave fewer than a few free slots (relay_conns_reserve), so that
 * new clients still get in while slow ones hold most slots. A socket stays
 * open until microhttpd's CLOSED notification returns, and that
 * notification untracks the connection under conns_lock; the sweeper calls
 * shutdown under the same lock, so it never hits a reused descriptor.
 *
 * TLS. With --tls-cert the listening sockets belong to the TLS front
 * (relay_tls.h): it accepts, runs the handshakes and adds each connection
 * to its listener's daemon (started with MHD_USE_NO_LISTEN_SOCKET) as one
 * end of a socketpair carrying plain HTTP, with the client's real address
 * (tls_handoff). Everything below then works as on a plain listener; the
 * upgrade of GET /v1/splice included, which microhttpd's own TLS does
 * badly before 1.0.0 (docs/RELAY.md §6).
 *
 * Lock order: relay_server.lock, conns_lock and the core's lock are never
 * held together; the log module's lock is innermost. The TLS front's lock
 * is held across tls_handoff, so it comes before conns_lock. conns_lock is held
 * across shutdown(2) only (see above), which does not block.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "base/clock.h"
#include "base/log.h"
#include "relay.h"
#include "relay_addr.h"
#include "relay_conns.h"
#include "relay_core.h"
#include "relay_http_splice.h"
#include "relay_metrics.h"
#include "relay_pairing.h"
#include "relay_splice.h"
#include "relay_tls.h"

#define CONN_MEMORY (32 * 1024) /* microhttpd pool per connection */
#define DISCARD_MAX (64 * 1024) /* body bytes read past max_body before hanging up */
#define PEM_MAX (1024 * 1024)
#define MAX_CONNECTIONS_MAX 100000u
#define REQUEST_TIMEOUT_MAX 3600u
#define STOP_GRACE_MAX 60000u
#define SPLICE_TIMEOUT_MAX 86400u

struct listener {
	struct relay_server *srv;
	struct relay_listen_addr addr; /* as configured */
	char spec[RELAY_ADDR_STRLEN];  /* the configured text, for messages */
	uint16_t last_port;	       /* bound before: reused on restart for port 0 */
	int fd;			       /* ours until microhttpd takes it, else -1 */
	int quiesced_fd;	       /* handed back by MHD_quiesce_daemon, else -1 */
	struct MHD_Daemon *daemon;
	unsigned port;
	char url[RELAY_ADDR_STRLEN + 16];
};

struct relay_server {
	struct relay_config cfg; /* strings owned: tls_cert, tls_key; listen unused */
	struct relay_core *core;
	struct listener listeners[RELAY_MAX_LISTEN];
	size_t nlisteners;
	bool running;	      /* controlling thread only */
	int starting;	      /* atomic: relay_server_start runs ... */
	pthread_t starter;    /* ... on this thread */
	pthread_mutex_t lock; /* protects inflight; never held with another lock */
	pthread_cond_t idle;  /* signalled when inflight drops to 0 */
	unsigned inflight;    /* protected by lock */
	pthread_mutex_t conns_lock;  /* protects conns and sweeper_stop; see the design note */
	struct relay_conns *conns;   /* protected by conns_lock */
	struct splice_hub *splice;   /* GET /v1/splice; its own lock */
	struct relay_tls *tls;	     /* the TLS front while running with --tls-cert */
	pthread_cond_t sweeper_wake; /* signalled to stop the sweeper */
	bool sweeper_stop;	     /* protected by conns_lock */
	bool sweeper_running;	     /* controlling thread only */
	pthread_t sweeper;
};

/* One request, from its headers to the completion callback. */
struct http_req {
	struct relay_server *srv;
	int64_t start_ms;
	bool cl_known;
	uint64_t cl;
	uint8_t *body; /* at most max_body bytes */
	size_t len, cap;
	uint64_t discarded; /* bytes dropped after the cap */
	bool too_large;
	struct relay_client_key client;
	struct splice_half *splice; /* a splice request, until completed */
};

/* ---- configuration ---- */

void relay_config_init(struct relay_config *cfg)
{
	struct relay_core_config cc;

	relay_core_config_init(&cc);
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_records = cc.max_records;
	cfg->max_records_per_client = cc.max_records_per_client;
	cfg->rate = cc.rate;
	cfg->burst = cc.burst;
	cfg->rate_clients = cc.rate_clients;
	cfg->max_body = cc.max_body;
	cfg->default_ttl = cc.default_ttl;
	cfg->max_ttl = cc.max_ttl;
	cfg->max_connections = 512;
	cfg->max_connections_per_ip = 32;
	cfg->request_timeout = 10;
	cfg->request_deadline = 10;
	cfg->stop_grace_ms = 5000;
	cfg->max_splice_sessions = 256;
	cfg->max_splice_sessions_per_client = 16;
	cfg->splice_rate = 0;
	cfg->splice_total_rate = 0;
	cfg->splice_idle_timeout = 300;
	cfg->splice_wait_timeout = 30;
}

static void core_config_from(const struct relay_config *cfg, struct relay_core_config *cc)
{
	relay_core_config_init(cc);
	cc->max_records = cfg->max_records;
	cc->max_records_per_client = cfg->max_records_per_client;
	cc->rate = cfg->rate;
	cc->burst = cfg->burst;
	cc->rate_clients = cfg->rate_clients;
	cc->max_body = cfg->max_body;
	cc->default_ttl = cfg->default_ttl;
	cc->max_ttl = cfg->max_ttl;
}

int relay_config_check(const struct relay_config *cfg, char *err, size_t errlen)
{
	struct relay_core_config cc;
	struct relay_listen_addr a;
	char q[64];

	core_config_from(cfg, &cc);
	if (relay_core_config_check(&cc, err, errlen) < 0)
		return -EINVAL;
	if (cfg->nlisten > RELAY_MAX_LISTEN) {
		snprintf(err, errlen, "at most %d listen addresses can be given", RELAY_MAX_LISTEN);
		return -EINVAL;
	}
	for (size_t i = 0; i < cfg->nlisten; i++) {
		if (relay_addr_parse(cfg->listen[i], &a) < 0) {
			snprintf(err, errlen,
				 "bad listen address %s; write ADDR:PORT with ADDR an IPv6 address "
				 "in brackets, an IPv4 address or *, e.g. [::]:8480 or "
				 "127.0.0.1:8480",
				 log_quote(cfg->listen[i], 48, q, sizeof(q)));
			return -EINVAL;
		}
	}
	if (!cfg->tls_cert != !cfg->tls_key) {
		snprintf(err, errlen,
			 "HTTPS needs both a certificate and a key; give both "
			 "--tls-cert and --tls-key, or neither");
		return -EINVAL;
	}
	if (cfg->max_connections < 1 || cfg->max_connections > MAX_CONNECTIONS_MAX) {
		snprintf(err, errlen, "the connection limit must be from 1 to %u",
			 MAX_CONNECTIONS_MAX);
		return -EINVAL;
	}
	if (cfg->max_connections_per_ip > cfg->max_connections) {
		snprintf(err, errlen,
			 "the per-address connection limit (--max-connections-per-ip %u) must "
			 "not exceed the connection limit (--max-connections %u); 0 means no "
			 "per-address limit",
			 cfg->max_connections_per_ip, cfg->max_connections);
		return -EINVAL;
	}
	if (cfg->request_timeout < 1 || cfg->request_timeout > REQUEST_TIMEOUT_MAX) {
		snprintf(err, errlen, "the request timeout must be from 1 to %u seconds",
			 REQUEST_TIMEOUT_MAX);
		return -EINVAL;
	}
	if (cfg->request_deadline < 1 || cfg->request_deadline > REQUEST_TIMEOUT_MAX) {
		snprintf(err, errlen, "the request deadline must be from 1 to %u seconds",
			 REQUEST_TIMEOUT_MAX);
		return -EINVAL;
	}
	if (cfg->max_splice_sessions < 1 || cfg->max_splice_sessions > RELAY_PAIR_SESSIONS_MAX) {
		snprintf(err, errlen, "the splice session limit must be from 1 to %u",
			 RELAY_PAIR_SESSIONS_MAX);
		return -EINVAL;
	}
	if (cfg->max_splice_sessions_per_client > cfg->max_splice_sessions) {
		snprintf(err, errlen,
			 "the per-client splice limit (--max-splice-sessions-per-client %u) must not "
			 "exceed the splice session limit (--max-splice-sessions %u); 0 means no "
			 "per-client limit",
			 cfg->max_splice_sessions_per_client, cfg->max_splice_sessions);
		return -EINVAL;
	}
	if (cfg->splice_idle_timeout < 1 || cfg->splice_idle_timeout > SPLICE_TIMEOUT_MAX) {
		snprintf(err, errlen, "the splice idle timeout must be from 1 to %u seconds",
			 SPLICE_TIMEOUT_MAX);
		return -EINVAL;
	}
	if (cfg->splice_wait_timeout < 1 || cfg->splice_wait_timeout > REQUEST_TIMEOUT_MAX) {
		snprintf(err, errlen, "the splice wait timeout must be from 1 to %u seconds",
			 REQUEST_TIMEOUT_MAX);
		return -EINVAL;
	}
	if (cfg->stop_grace_ms > STOP_GRACE_MAX) {
		snprintf(err, errlen, "the stop grace time must be at most %u ms", STOP_GRACE_MAX);
		return -EINVAL;
	}
	return 0;
}

/* ---- microhttpd callbacks ---- */

/*
 * microhttpd's messages. While relay_server_start runs (on its own thread)
 * they explain why starting failed: logged in full as warnings. Later they
 * are about single connections, which clients control, and some carry the
 * request path: logged at debug with every %-conversion left out, so that
 * nothing a client sent reaches the log.
 */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct relay_server *srv = cls;
	bool starting = __atomic_load_n(&srv->starting, __ATOMIC_ACQUIRE) &&
			pthread_equal(pthread_self(), srv->starter);
	char msg[512];
	size_t n = 0;

	if (starting) {
		vsnprintf(msg, sizeof(msg), fmt, ap);
		n = strlen(msg);
	} else {
		for (const char *p = fmt; *p && n < sizeof(msg) - 2; p++) {
			if (*p != '%') {
				msg[n++] = *p;
				continue;
			}
			if (p[1] == '%') {
				msg[n++] = *++p;
				continue;
			}
			/* flags, width, precision, length, then the conversion */
			while (p[1] && strchr("#0- +'.0123456789hlLqjzt", p[1]))
				p++;
			if (p[1])
				p++;
			msg[n++] = '?';
		}
		msg[n] = '\0';
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = ' ';
	while (n > 0 && msg[n - 1] == ' ')
		msg[--n] = '\0';
	log_msg(starting ? LOG_LVL_WARN : LOG_LVL_DEBUG, "microhttpd: %s", msg);
}

static void mhd_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
	log_err("libmicrohttpd failed an internal check (%s:%u: %s); aborting", file ? file : "?",
		line, reason ? reason : "?");
	abort();
}

static void inflight_add(struct relay_server *srv, int d)
{
	pthread_mutex_lock(&srv->lock);
	if (d > 0)
		srv->inflight++;
	else if (srv->inflight > 0 && --srv->inflight == 0)
		pthread_cond_broadcast(&srv->idle);
	pthread_mutex_unlock(&srv->lock);
}

struct header_count {
	unsigned auth, secret, side;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	struct header_count *hc = cls;

	if (!key)
		return MHD_YES;
	if (strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0)
		hc->auth++;
	else if (strcasecmp(key, "X-Tandem-Write-Secret") == 0)
		hc->secret++;
	else if (strcasecmp(key, "X-Tandem-Splice-Side") == 0)
		hc->side++;
	return MHD_YES;
}

/* Content-Length as microhttpd accepted it (it refuses malformed values). */
static void content_length_get(struct MHD_Connection *conn, struct http_req *hr)
{
	const char *v =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t n = 0;

	hr->cl_known = false;
	if (!v)
		return;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v < '0' || *v > '9')
		return;
	for (; *v >= '0' && *v <= '9'; v++) {
		if (n > (UINT64_MAX - 9) / 10) {
			n = UINT64_MAX; /* saturate: surely too large */
			break;
		}
		n = n * 10 + (uint64_t)(*v - '0');
	}
	hr->cl_known = true;
	hr->cl = n;
}

static void request_fill(struct MHD_Connection *conn, struct http_req *hr, const char *url,
			 const char *method, bool with_body, struct relay_request *req)
{
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->path = url;
	req->client = hr->client;
	req->content_length_known = hr->cl_known;
	req->content_length = hr->cl;
	req->now_ms = (int64_t)clock_mono_ms();
	if (!with_body)
		return;
	struct header_count hc = {0, 0, 0};
	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &hc);
	req->duplicate_header = hc.auth > 1 || hc.secret > 1 || hc.side > 1;
	req->upgrade = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE);
	req->connection =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONNECTION);
	req->splice_side =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Tandem-Splice-Side");
	req->authorization =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	req->write_secret =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Tandem-Write-Secret");
	req->body = hr->body;
	req->body_len = hr->len;
	req->body_too_large = hr->too_large;
	req->admitted = true;
}

static const char *method_name(const char *m)
{
	static const char *const known[] = {"GET", "HEAD", "POST", "DELETE", "PUT", "OPTIONS"};

	for (size_t i = 0; m && i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(m, known[i]) == 0)
			return known[i];
	return "(other method)";
}

enum MHD_Result relay_http_respond(struct MHD_Connection *conn, const char *method,
				   struct relay_response *resp)
{
	struct MHD_Response *mr;
	const union MHD_ConnectionInfo *ci;
	enum MHD_Result ret = MHD_NO;
	char num[24], observed[RELAY_ADDR_STRLEN];
	bool ok = true;

	log_debug("%s %s -> %d", method_name(method), resp->route, resp->status);
	if (resp->body_owned) {
		mr = MHD_create_response_from_buffer(resp->body_len, resp->body_owned,
						     MHD_RESPMEM_MUST_FREE);
		if (mr)
			resp->body_owned = NULL; /* microhttpd frees it */
	} else {
		mr = MHD_create_response_from_buffer(resp->body_len, (void *)resp->body,
						     MHD_RESPMEM_PERSISTENT);
	}
	if (!mr)
		goto out;
	if (resp->content_type)
		ok &= MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
					      resp->content_type) == MHD_YES;
	ok &= MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES;
	ok &= MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff") == MHD_YES;
	if (resp->retry_after) {
		snprintf(num, sizeof(num), "%u", resp->retry_after);
		ok &= MHD_add_response_header(mr, MHD_HTTP_HEADER_RETRY_AFTER, num) == MHD_YES;
	}
	if (resp->allow)
		ok &= MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, resp->allow) == MHD_YES;
	if (resp->upgrade)
		ok &= MHD_add_response_header(mr, MHD_HTTP_HEADER_UPGRADE, resp->upgrade) == MHD_YES;
	if (resp->www_authenticate)
		ok &= MHD_add_response_header(mr, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					      "Bearer realm=\"tandem-relay\"") == MHD_YES;
	/* Where the client's connection came from (its public address behind
	 * NAT), for hole punching (docs/RELAY.md, "X-Tandem-Observed"). */
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && relay_addr_observed(ci->client_addr, observed, sizeof(observed)))
		ok &= MHD_add_response_header(mr, "X-Tandem-Observed", observed) == MHD_YES;
	if (ok)
		ret = MHD_queue_response(conn, (unsigned)resp->status, mr);
	MHD_destroy_response(mr);
out:
	relay_core_response_done(resp);
	return ret;
}

/* Stores one piece of the body. MHD_NO hangs up. */
static enum MHD_Result body_add(struct http_req *hr, const char *data, size_t n)
{
	const struct relay_config *cfg = &hr->srv->cfg;

	if ((int64_t)clock_mono_ms() - hr->start_ms > (int64_t)cfg->request_timeout * 1000) {
		log_debug("closing a connection whose request body took over %u s",
			  cfg->request_timeout);
		return MHD_NO;
	}
	if (!hr->too_large && n > cfg->max_body - hr->len) {
		hr->too_large = true;
		free(hr->body);
		hr->body = NULL;
		hr->len = hr->cap = 0;
	}
	if (hr->too_large) {
		hr->discarded += n;
		if (hr->discarded > DISCARD_MAX) {
			log_debug("closing a connection that sent over %d bytes past the body "
				  "limit",
				  DISCARD_MAX);
			return MHD_NO;
		}
		return MHD_YES;
	}
	if (hr->len + n > hr->cap) {
		size_t cap = hr->cap ? hr->cap * 2 : 1024;
		uint8_t *p;
		if (cap < hr->len + n)
			cap = hr->len + n;
		if (cap > cfg->max_body)
			cap = cfg->max_body;
		p = realloc(hr->body, cap);
		if (!p)
			return MHD_NO;
		hr->body = p;
		hr->cap = cap;
	}
	memcpy(hr->body + hr->len, data, n);
	hr->len += n;
	return MHD_YES;
}

/* ---- slow clients (see the design note) ---- */

static struct relay_conn *conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* The request on conn is in: no deadline while it is answered. */
static void conn_answering(struct relay_server *srv, struct MHD_Connection *conn)
{
	struct relay_conn *c = conn_of(conn);

	if (!c)
		return;
	pthread_mutex_lock(&srv->conns_lock);
	relay_conns_answering(srv->conns, c);
	pthread_mutex_unlock(&srv->conns_lock);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct listener *l = cls;
	struct relay_server *srv = l->srv;
	struct relay_conn *c = *socket_context, *evict = NULL;
	const union MHD_ConnectionInfo *ci;
	int r;

	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (!c)
			return;
		pthread_mutex_lock(&srv->conns_lock);
		relay_conns_close(srv->conns, c);
		pthread_mutex_unlock(&srv->conns_lock);
		free(c);
		*socket_context = NULL;
		return;
	}
	if (code != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		log_debug("closing a new connection: out of memory");
		shutdown(ci->connect_fd, SHUT_RDWR);
		return;
	}
	c->fd = ci->connect_fd;
	c->group = (unsigned)(l - srv->listeners);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	relay_addr_key_derive(ci ? ci->client_addr : NULL, &c->key);
	pthread_mutex_lock(&srv->conns_lock);
	r = relay_conns_open(srv->conns, c, (int64_t)clock_mono_ms(), &evict);
	if (r < 0)
		shutdown(c->fd, SHUT_RDWR);
	if (evict)
		shutdown(evict->fd, SHUT_RDWR);
	pthread_mutex_unlock(&srv->conns_lock);
	*socket_context = c;
	if (r == -EUSERS)
		relay_core_count_closed(srv->core, RELAY_CLOSE_PER_CLIENT, 1);
	if (evict)
		relay_core_count_closed(srv->core, RELAY_CLOSE_EVICTED, 1);
	if (r == -EUSERS)
		log_debug("closing a new connection: its client already has %u open",
			  srv->cfg.max_connections_per_ip);
	else if (r < 0)
		log_debug("closing a new connection: out of memory");
	if (evict)
		log_debug("closing the oldest connection still waiting for its request, to keep "
			  "slots free for new ones");
}

static void *sweeper_main(void *arg)
{
	struct relay_server *srv = arg;
	int64_t deadline_ms = (int64_t)srv->cfg.request_deadline * 1000;

	pthread_mutex_lock(&srv->conns_lock);
	while (!srv->sweeper_stop) {
		struct relay_conn *c;
		struct timespec ts;
		int64_t wake = 0;
		unsigned n = 0;

		while ((c = relay_conns_expired(srv->conns, (int64_t)clock_mono_ms(), deadline_ms,
						&wake))) {
			shutdown(c->fd, SHUT_RDWR);
			n++;
		}
		if (n) {
			/* the core's lock is never taken with conns_lock */
			pthread_mutex_unlock(&srv->conns_lock);
			relay_core_count_closed(srv->core, RELAY_CLOSE_DEADLINE, n);
			log_debug("closed %u connections that sent no whole request within %u s", n,
				  srv->cfg.request_deadline);
			pthread_mutex_lock(&srv->conns_lock);
			continue; /* look again: time went on */
		}
		clock_mono_timespec(&ts, (uint64_t)wake);
		pthread_cond_timedwait(&srv->sweeper_wake, &srv->conns_lock, &ts);
	}
	pthread_mutex_unlock(&srv->conns_lock);
	return NULL;
}

static int sweeper_start(struct relay_server *srv)
{
	int r;

	srv->sweeper_stop = false;
	r = -pthread_create(&srv->sweeper, NULL, sweeper_main, srv);
	if (r < 0) {
		log_err("cannot start the relay's connection sweeper: %s", strerror(-r));
		return r;
	}
	srv->sweeper_running = true;
	return 0;
}

static void sweeper_stop(struct relay_server *srv)
{
	if (!srv->sweeper_running)
		return;
	pthread_mutex_lock(&srv->conns_lock);
	srv->sweeper_stop = true;
	pthread_cond_signal(&srv->sweeper_wake);
	pthread_mutex_unlock(&srv->conns_lock);
	pthread_join(srv->sweeper, NULL);
	srv->sweeper_running = false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct relay_server *srv = cls;
	struct http_req *hr = *con_cls;
	struct relay_request req;
	struct relay_response resp;

	if (!hr) {
		const union MHD_ConnectionInfo *ci;

		hr = calloc(1, sizeof(*hr));
		if (!hr)
			return MHD_NO;
		hr->srv = srv;
		hr->start_ms = (int64_t)clock_mono_ms();
		*con_cls = hr;
		inflight_add(srv, 1);
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		relay_addr_key_derive(ci ? ci->client_addr : NULL, &hr->client);
		content_length_get(conn, hr);
		request_fill(conn, hr, url, method, false, &req);
		if (relay_core_admit(srv->core, &req, &resp)) {
			conn_answering(srv, conn);
			return relay_http_respond(conn, req.method, &resp);
		}
		if (hr->cl_known && hr->cl > 0) {
			/* admitted: cl <= max_body */
			hr->body = malloc((size_t)hr->cl);
			if (!hr->body)
				return MHD_NO;
			hr->cap = (size_t)hr->cl;
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		return body_add(hr, upload_data, n);
	}
	if (hr->splice) /* a splice request resumed: it has its answer */
		return splice_hub_resumed(srv->splice, conn, hr->splice);
	request_fill(conn, hr, url, method, true, &req);
	req.http10 = version && strcmp(version, MHD_HTTP_VERSION_1_1) != 0;
	conn_answering(srv, conn);
	relay_core_handle(srv->core, &req, &resp);
	if (resp.splice)
		return splice_hub_request(srv->splice, conn, &hr->client, &resp, &hr->splice);
	return relay_http_respond(conn, req.method, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct relay_server *srv = cls;
	struct http_req *hr = *con_cls;
	struct relay_conn *c = conn_of(conn);
	bool upgraded = false;

	(void)toe;
	if (hr && hr->splice) {
		upgraded = splice_hub_completed(srv->splice, hr->splice);
		hr->splice = NULL;
	}
	if (c && !upgraded) {
		/* the next request on this connection gets its own deadline */
		pthread_mutex_lock(&srv->conns_lock);
		relay_conns_done(srv->conns, c, (int64_t)clock_mono_ms());
		pthread_mutex_unlock(&srv->conns_lock);
	}
	if (!hr)
		return;
	*con_cls = NULL;
	free(hr->body);
	free(hr);
	inflight_add(srv, -1);
}

/* ---- server ---- */

int relay_server_new(const struct relay_config *cfg, struct relay_server **ret)
{
	static const char *const default_listen[] = {RELAY_DEFAULT_LISTEN};
	struct relay_core_config cc;
	struct relay_server *srv;
	pthread_condattr_t ca;
	const char *const *specs = cfg->nlisten ? cfg->listen : default_listen;
	size_t nlisten = cfg->nlisten ? cfg->nlisten : 1;
	char err[256];
	int r;

	if (relay_config_check(cfg, err, sizeof(err)) < 0) {
		log_err("bad relay configuration: %s", err);
		return -EINVAL;
	}
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->cfg = *cfg;
	memset(srv->cfg.listen, 0, sizeof(srv->cfg.listen));
	srv->cfg.tls_cert = srv->cfg.tls_key = NULL;
	if (cfg->tls_cert) {
		srv->cfg.tls_cert = strdup(cfg->tls_cert);
		srv->cfg.tls_key = strdup(cfg->tls_key);
		if (!srv->cfg.tls_cert || !srv->cfg.tls_key) {
			r = -ENOMEM;
			goto fail;
		}
	}
	for (size_t i = 0; i < nlisten; i++) {
		struct listener *l = &srv->listeners[i];
		l->srv = srv;
		l->fd = l->quiesced_fd = -1;
		if (relay_addr_parse(specs[i], &l->addr) < 0) {
			r = -EINVAL;
			goto fail;
		}
		snprintf(l->spec, sizeof(l->spec), "%s", specs[i]);
	}
	srv->nlisteners = nlisten;
	core_config_from(cfg, &cc);
	r = relay_core_new(&cc, (int64_t)clock_mono_ms(), &srv->core);
	if (r < 0)
		goto fail;
	r = relay_conns_new(cfg->max_connections_per_ip, cfg->max_connections, (unsigned)nlisten,
			    &srv->conns);
	if (r < 0)
		goto fail;
	r = splice_hub_new(cfg, srv->core, &srv->splice);
	if (r < 0)
		goto fail;
	r = -pthread_mutex_init(&srv->lock, NULL);
	if (r < 0)
		goto fail;
	r = -pthread_mutex_init(&srv->conns_lock, NULL);
	if (r < 0) {
		pthread_mutex_destroy(&srv->lock);
		goto fail;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	r = -pthread_cond_init(&srv->idle, &ca);
	if (r == 0) {
		r = -pthread_cond_init(&srv->sweeper_wake, &ca);
		if (r < 0)
			pthread_cond_destroy(&srv->idle);
	}
	pthread_condattr_destroy(&ca);
	if (r < 0) {
		pthread_mutex_destroy(&srv->conns_lock);
		pthread_mutex_destroy(&srv->lock);
		goto fail;
	}
	*ret = srv;
	return 0;
fail:
	splice_hub_free(srv->splice);
	relay_conns_free(srv->conns);
	relay_core_free(srv->core);
	free((char *)srv->cfg.tls_cert);
	free((char *)srv->cfg.tls_key);
	free(srv);
	return r;
}

static const char *bind_hint(int err)
{
	switch (err) {
	case EADDRINUSE:
		return "another program (maybe another tandem-relay) uses that port; stop it or "
		       "choose another port with --listen";
	case EACCES:
		return "ports below 1024 need privileges; use a higher port or grant "
		       "CAP_NET_BIND_SERVICE";
	case EADDRNOTAVAIL:
		return "no interface of this machine has that address; use one it has, or * for "
		       "all";
	case EAFNOSUPPORT:
		return "this machine does not support that address family; use an address of "
		       "the other family";
	default:
		return "check the --listen value";
	}
}

static void listener_close(struct listener *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

static int listener_bind(struct listener *l)
{
	struct relay_listen_addr a = l->addr;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char shown[RELAY_ADDR_STRLEN];
	int on = 1, r;
	uint16_t *port = a.ss.ss_family == AF_INET6 ? &((struct sockaddr_in6 *)&a.ss)->sin6_port
						    : &((struct sockaddr_in *)&a.ss)->sin_port;

	if (*port == 0 && l->last_port)
		*port = htons(l->last_port);
	l->fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_TCP);
	if (l->fd < 0 && errno == EAFNOSUPPORT && a.dual_stack) {
		/* no IPv6 on this machine: "*" and "[::]" still mean every IPv4 address */
		struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
		uint16_t p = *port;
		memset(&a.ss, 0, sizeof(a.ss));
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = p;
		a.len = sizeof(*sin);
		a.dual_stack = false;
		log_warn("no IPv6 on this machine: %s listens on IPv4 only", l->spec);
		l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_TCP);
	}
	if (l->fd < 0) {
		r = -errno;
		log_err("cannot listen on %s: cannot create a socket: %s; %s", l->spec,
			strerror(-r), bind_hint(-r));
		return r;
	}
	if (setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0) {
		r = -errno;
		goto fail;
	}
	if (a.ss.ss_family == AF_INET6) {
		int v6only = a.dual_stack ? 0 : 1;
		if (setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0) {
			r = -errno;
			goto fail;
		}
	}
	if (bind(l->fd, (struct sockaddr *)&a.ss, a.len) < 0 || listen(l->fd, SOMAXCONN) < 0 ||
	    getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0) {
		r = -errno;
		goto fail;
	}
	relay_addr_format((struct sockaddr *)&ss, shown, sizeof(shown));
	l->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					   : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	l->last_port = (uint16_t)l->port;
	snprintf(l->url, sizeof(l->url), "%s://%s", l->srv->cfg.tls_cert ? "https" : "http", shown);
	return 0;
fail:
	log_err("cannot listen on %s: %s; %s", l->spec, strerror(-r), bind_hint(-r));
	listener_close(l);
	return r;
}

/* Reads a whole PEM file into memory (NUL-terminated). */
static int pem_read(const char *path, bool secret, char **ret)
{
	const char *what = secret ? "key" : "certificate";
	char q[128];
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, r;

	log_quote(path, strlen(path), q, sizeof(q));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		log_err("cannot read the TLS %s %s: %s; check --tls-%s", what, q, strerror(-r),
			secret ? "key" : "cert");
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto fail_msg;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > PEM_MAX || st.st_size == 0) {
		r = -EINVAL;
		log_err("cannot use the TLS %s %s: it is not a regular PEM file of at most %d "
			"bytes; check --tls-%s",
			what, q, PEM_MAX, secret ? "key" : "cert");
		goto out;
	}
	if (secret && (st.st_mode & 0077))
		log_warn("the TLS key %s can be read by other users; chmod 600 it", q);
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto fail_msg;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto fail_msg;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	close(fd);
	*ret = buf;
	return 0;
fail_msg:
	log_err("cannot read the TLS %s %s: %s", what, q, strerror(-r));
out:
	if (buf) {
		sodium_memzero(buf, (size_t)st.st_size + 1);
		free(buf);
	}
	close(fd);
	return r;
}

static void pem_free(char *pem)
{
	if (!pem)
		return;
	sodium_memzero(pem, strlen(pem));
	free(pem);
}

/* The TLS front's handoff (relay_tls.h): fd joins listener index's daemon. */
static int tls_handoff(void *userdata, unsigned index, int fd, const struct sockaddr *addr,
		       socklen_t addrlen)
{
	struct relay_server *srv = userdata;

	errno = 0;
	if (MHD_add_connection(srv->listeners[index].daemon, fd, addr, addrlen) == MHD_YES)
		return 0;
	return errno ? -errno : -EIO; /* microhttpd closed fd */
}

/*
 * With TLS (front != NULL) the daemon has no listening socket: the TLS
 * front accepts on it and adds each connection, TLS already removed, with
 * MHD_add_connection (hence MHD_USE_ITC, which wakes the daemon's thread).
 */
static int listener_start(struct listener *l, struct relay_tls *front)
{
	struct relay_server *srv = l->srv;
	const struct relay_config *cfg = &srv->cfg;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE;
	struct MHD_OptionItem listen_opt[] = {
		{MHD_OPTION_LISTEN_SOCKET, (intptr_t)l->fd, NULL},
		{MHD_OPTION_END, 0, NULL},
	};
	struct stat before, after;
	int r;

	/* epoll where microhttpd has it, else poll (never select: FD_SETSIZE) */
	if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
		flags |= MHD_USE_EPOLL;
	else
		flags |= MHD_USE_POLL;
	if (front)
		flags |= MHD_USE_NO_LISTEN_SOCKET;
	if (fstat(l->fd, &before) < 0)
		return -errno;
	/* the logger first, so that microhttpd reports option errors through it */
	/* clang-format off */
	l->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_connections,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)cfg->max_connections_per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->request_timeout,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
		MHD_OPTION_ARRAY, front ? listen_opt + 1 : listen_opt,
		MHD_OPTION_END);
	/* clang-format on */
	if (l->daemon && front) {
		r = relay_tls_listen(front, (unsigned)(l - srv->listeners), l->fd);
		l->fd = -1; /* the front's now */
		return r;
	}
	if (l->daemon) {
		l->fd = -1; /* microhttpd's now */
		return 0;
	}
	/* microhttpd closes the socket on some failure paths only: close it if it
	 * is still ours (same descriptor number and same socket). */
	if (fstat(l->fd, &after) == 0 && after.st_ino == before.st_ino &&
	    after.st_dev == before.st_dev)
		listener_close(l);
	l->fd = -1;
	log_err("cannot start the HTTP server on %s (see the microhttpd message above)", l->spec);
	return -EIO;
}

static void listeners_stop(struct relay_server *srv)
{
	for (size_t i = 0; i < srv->nlisteners; i++) {
		struct listener *l = &srv->listeners[i];
		if (l->daemon)
			MHD_stop_daemon(l->daemon);
		l->daemon = NULL;
		if (l->quiesced_fd >= 0)
			close(l->quiesced_fd);
		l->quiesced_fd = -1;
		listener_close(l);
		l->port = 0;
		l->url[0] = '\0';
	}
}

static void limits_log(const struct relay_config *cfg)
{
	char rate[48] = "no rate limit";

	if (cfg->rate)
		snprintf(rate, sizeof(rate), "%u requests a minute per client", cfg->rate);
	log_info("limits: %zu records (%zu per client), %s, %zu-byte bodies, TTL %u s (at most "
		 "%u s), %u connections (%u per client, %u kept free for new ones), %u s timeout, "
		 "%u s request deadline",
		 cfg->max_records, cfg->max_records_per_client, rate, cfg->max_body,
		 cfg->default_ttl, cfg->max_ttl, cfg->max_connections, cfg->max_connections_per_ip,
		 relay_conns_reserve(cfg->max_connections), cfg->request_timeout,
		 cfg->request_deadline);
	log_info("splice limits: %u sessions (%u connections per client), %llu bytes/s per session "
		 "and %llu in all (0: no limit), %u s idle timeout, %u s wait for the second side, "
		 "%d KiB buffered per session",
		 cfg->max_splice_sessions, cfg->max_splice_sessions_per_client,
		 (unsigned long long)cfg->splice_rate, (unsigned long long)cfg->splice_total_rate,
		 cfg->splice_idle_timeout, cfg->splice_wait_timeout, 2 * RELAY_SPLICE_BUF / 1024);
}

int relay_server_start(struct relay_server *srv)
{
	char *cert = NULL, *key = NULL;
	sigset_t all, old;
	int r = 0;

	if (srv->running)
		return -EALREADY;
	if (srv->cfg.tls_cert) {
		struct relay_tls_config tc = {
			.max_connections = srv->cfg.max_connections,
			.max_per_client = srv->cfg.max_connections_per_ip,
			.handshake_ms = srv->cfg.request_deadline * 1000,
		};
		r = pem_read(srv->cfg.tls_cert, false, &cert);
		if (r < 0)
			goto out;
		r = pem_read(srv->cfg.tls_key, true, &key);
		if (r < 0)
			goto out;
		r = relay_tls_new(cert, key, &tc, tls_handoff, srv, srv->core, &srv->tls);
		if (r == -EINVAL)
			log_err("cannot serve HTTPS: GnuTLS refused the TLS setup; check that "
				"--tls-cert and --tls-key are a matching PEM certificate and key");
		else if (r < 0)
			log_err("cannot serve HTTPS: %s", strerror(-r));
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < srv->nlisteners; i++) {
		r = listener_bind(&srv->listeners[i]);
		if (r < 0)
			goto fail;
	}
	MHD_set_panic_func(mhd_panic, NULL);
	/* the daemons' threads inherit a mask that blocks every signal */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	srv->starter = pthread_self();
	__atomic_store_n(&srv->starting, 1, __ATOMIC_RELEASE);
	r = splice_hub_start(srv->splice);
	for (size_t i = 0; i < srv->nlisteners && r == 0; i++)
		r = listener_start(&srv->listeners[i], srv->tls);
	if (r == 0)
		r = sweeper_start(srv);
	if (r == 0 && srv->tls)
		r = relay_tls_start(srv->tls);
	__atomic_store_n(&srv->starting, 0, __ATOMIC_RELEASE);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		goto fail;
	srv->running = true;
	for (size_t i = 0; i < srv->nlisteners; i++)
		log_info("serving %s", srv->listeners[i].url);
	limits_log(&srv->cfg);
	goto out;
fail:
	relay_tls_quiesce(srv->tls);
	splice_hub_stop(srv->splice);
	listeners_stop(srv);
	relay_tls_free(srv->tls);
	srv->tls = NULL;
	sweeper_stop(srv);
out:
	pem_free(cert);
	pem_free(key);
	return r;
}

size_t relay_server_listener_count(const struct relay_server *srv)
{
	return srv->nlisteners;
}

unsigned relay_server_port(const struct relay_server *srv, size_t i)
{
	if (!srv->running || i >= srv->nlisteners)
		return 0;
	return srv->listeners[i].port;
}

const char *relay_server_url(const struct relay_server *srv, size_t i)
{
	if (!srv->running || i >= srv->nlisteners)
		return NULL;
	return srv->listeners[i].url;
}

void relay_server_stop(struct relay_server *srv)
{
	struct timespec deadline;
	unsigned left;

	if (!srv || !srv->running)
		return;
	/* the TLS front first: no connection is added to a quiesced daemon */
	relay_tls_quiesce(srv->tls);
	for (size_t i = 0; i < srv->nlisteners; i++) {
		struct listener *l = &srv->listeners[i];
		MHD_socket fd = MHD_quiesce_daemon(l->daemon);
		l->quiesced_fd = fd == MHD_INVALID_SOCKET ? -1 : fd;
	}
	/* waiting splice requests are answered, spliced sessions closed */
	splice_hub_stop(srv->splice);
	(void)clock_mono_deadline(&deadline, srv->cfg.stop_grace_ms);
	pthread_mutex_lock(&srv->lock);
	if (srv->inflight)
		log_info("stopping: letting %u requests finish", srv->inflight);
	while (srv->inflight > 0)
		if (pthread_cond_timedwait(&srv->idle, &srv->lock, &deadline) == ETIMEDOUT)
			break;
	left = srv->inflight;
	pthread_mutex_unlock(&srv->lock);
	if (left)
		log_warn("stopping: %u requests still unfinished after %u ms, closing them", left,
			 srv->cfg.stop_grace_ms);
	listeners_stop(srv);
	/* after microhttpd: its requests ran over the front until here */
	relay_tls_free(srv->tls);
	srv->tls = NULL;
	sweeper_stop(srv);
	srv->running = false;
	log_info("stopped");
}

void relay_server_free(struct relay_server *srv)
{
	if (!srv)
		return;
	relay_server_stop(srv);
	splice_hub_free(srv->splice);
	relay_core_free(srv->core);
	relay_conns_free(srv->conns);
	pthread_cond_destroy(&srv->sweeper_wake);
	pthread_cond_destroy(&srv->idle);
	pthread_mutex_destroy(&srv->conns_lock);
	pthread_mutex_destroy(&srv->lock);
	free((char *)srv->cfg.tls_cert);
	free((char *)srv->cfg.tls_key);
	free(srv);
}

struct visit {
	relay_record_fn fn;
	relay_record_info_fn info_fn;
	void *userdata;
	int64_t now_ms;
};

static void visit_one(const struct relay_store_entry *e, void *userdata)
{
	struct visit *v = userdata;

	if (v->fn) {
		v->fn(e->token, RELAY_TOKEN_LEN, e->blob, e->blob_len, v->userdata);
	} else {
		struct relay_record_info info = {
			.token = e->token,
			.token_len = RELAY_TOKEN_LEN,
			.blob = e->blob,
			.blob_len = e->blob_len,
			.expires_in_ms = e->expires_ms - v->now_ms,
		};
		v->info_fn(&info, v->userdata);
	}
}

void relay_server_foreach_record(struct relay_server *srv, relay_record_fn fn, void *userdata)
{
	struct visit v = {.fn = fn, .userdata = userdata, .now_ms = (int64_t)clock_mono_ms()};

	relay_core_foreach_record(srv->core, v.now_ms, visit_one, &v);
}

void relay_server_foreach_record_info(struct relay_server *srv, relay_record_info_fn fn,
				      void *userdata)
{
	struct visit v = {.info_fn = fn, .userdata = userdata, .now_ms = (int64_t)clock_mono_ms()};

	relay_core_foreach_record(srv->core, v.now_ms, visit_one, &v);
}
