/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_H
#define TANDEM_RELAY_H

#include <stddef.h>
#include <stdint.h>

/*
 * The tandem relay as a library: the HTTP server of docs/RELAY.md on
 * libmicrohttpd, one listening socket and one microhttpd daemon (with its
 * own polling thread) per listen address, all sharing one record store;
 * with TLS, one more thread terminates TLS in front of them (relay_tls.h).
 * tandem-relay (relay_main.c) is a thin wrapper; `tandem selftest` starts
 * it in-process.
 *
 * Threads: relay_server_* functions are called from one controlling
 * thread. The server's threads block every signal; the process should
 * ignore SIGPIPE (microhttpd also suppresses it on its sockets). Logging
 * goes through log.h; no token, blob, secret or client address is ever
 * logged.
 */

#define RELAY_MAX_LISTEN 8
#define RELAY_DEFAULT_LISTEN "[::]:8480"

struct relay_server;

struct relay_config {
	/* "ADDR:PORT" (see relay_addr_parse); none means RELAY_DEFAULT_LISTEN */
	const char *listen[RELAY_MAX_LISTEN];
	size_t nlisten;
	const char *tls_cert; /* PEM file, with tls_key: serve HTTPS */
	const char *tls_key;
	size_t max_records;		 /* 10000 */
	size_t max_records_per_client;	 /* per IPv4 address or IPv6 /64, 64; 0: no limit */
	unsigned rate;			 /* requests per minute per client, 120; 0: no limit */
	unsigned burst;			 /* 0: same as rate */
	size_t rate_clients;		 /* clients the rate limiter tracks, 65536 */
	size_t max_body;		 /* request body bytes, 8192 */
	unsigned default_ttl;		 /* seconds, 600 */
	unsigned max_ttl;		 /* seconds, 3600 */
	unsigned max_connections;	 /* per listener, 512 */
	unsigned max_connections_per_ip; /* per client (IPv4 address, IPv6 /64), 32 */
	unsigned request_timeout;	 /* seconds of inactivity, and for a body, 10 */
	unsigned request_deadline;	 /* seconds from accept until a request is in, 10 */
	unsigned stop_grace_ms;		 /* relay_server_stop waits this long, 5000 */
	/* relayed connections (GET /v1/splice) */
	unsigned max_splice_sessions;		 /* waiting or spliced, 256 */
	unsigned max_splice_sessions_per_client; /* connections per client, 16; 0: no limit */
	uint64_t splice_rate;		/* bytes per second per session, both ways; 0: no limit */
	uint64_t splice_total_rate;	/* bytes per second of all sessions; 0: no limit */
	unsigned splice_idle_timeout;	/* seconds without a byte either way, 300 */
	unsigned splice_wait_timeout;	/* seconds the first side waits for the second, 30 */
};

/* Fills cfg with the defaults above. */
void relay_config_init(struct relay_config *cfg);

/*
 * Checks a configuration without touching the network (ranges, listen
 * syntax, TLS files given in pairs). Returns 0, or -EINVAL with a sentence
 * saying what is wrong and what to do in err (errlen bytes).
 */
int relay_config_check(const struct relay_config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Creates a server (not yet listening). The strings of cfg are copied.
 * Returns 0 and *ret, -EINVAL (bad config, logged) or -ENOMEM.
 */
int relay_server_new(const struct relay_config *cfg, struct relay_server **ret)
	__attribute__((warn_unused_result));

/*
 * Binds every listen address and starts serving. On failure nothing is
 * left listening and the cause is logged once (e.g. "cannot listen on
 * [::1]:8480: Address already in use; ..."); returns -errno (-EADDRINUSE,
 * -EACCES, -ENOENT for a missing TLS file, -ENOTSUP without TLS support in
 * libmicrohttpd, ...). -EALREADY when running. A server may be started
 * again after relay_server_stop: a listener configured with port 0 then
 * binds the port it had before; stored records are kept.
 */
int relay_server_start(struct relay_server *srv) __attribute__((warn_unused_result));

/* Listen addresses configured (at least 1). */
size_t relay_server_listener_count(const struct relay_server *srv);

/* The port listener i is bound to, or 0 when not running. */
unsigned relay_server_port(const struct relay_server *srv, size_t i);

/*
 * The URL of listener i, e.g. "http://[::1]:43567" or "https://127.0.0.1:8480",
 * valid until the server is stopped or freed; NULL when not running.
 */
const char *relay_server_url(const struct relay_server *srv, size_t i);

/*
 * Graceful stop: stops accepting, lets requests already being served finish
 * (at most stop_grace_ms), closes every connection and socket and joins the
 * threads. No-op when not running.
 */
void relay_server_stop(struct relay_server *srv);

/* Stops if needed and frees; NULL is a no-op. */
void relay_server_free(struct relay_server *srv);

/*
 * Hands out every stored, unexpired record exactly as the relay holds it:
 * the raw token bytes, the blob bytes and (second form) its remaining
 * lifetime, so a test can prove the relay holds nothing but opaque
 * ciphertext. The callback runs under the store's lock: it must be quick
 * and must not call into the server. Works whether or not it is running.
 */
typedef void (*relay_record_fn)(const uint8_t *token, size_t token_len, const uint8_t *blob,
				size_t blob_len, void *userdata);
void relay_server_foreach_record(struct relay_server *srv, relay_record_fn fn, void *userdata);

struct relay_record_info {
	const uint8_t *token;
	size_t token_len;
	const uint8_t *blob;
	size_t blob_len;
	int64_t expires_in_ms; /* > 0 */
};

typedef void (*relay_record_info_fn)(const struct relay_record_info *rec, void *userdata);
void relay_server_foreach_record_info(struct relay_server *srv, relay_record_info_fn fn,
				      void *userdata);

#endif
