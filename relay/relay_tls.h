/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_TLS_H
#define TANDEM_RELAY_TLS_H

#include <stdint.h>
#include <sys/socket.h>

#include "relay_core.h"

/*
 * The relay's TLS front (docs/RELAY.md §6, "Over the relay's own HTTPS"):
 * with --tls-cert the relay terminates TLS itself, with GnuTLS, and hands
 * microhttpd plain HTTP over a socketpair, so that an upgraded connection
 * (GET /v1/splice) runs microhttpd's plain path whatever its version.
 * Internal to relay/; no microhttpd here (relay_http.c passes the handoff).
 *
 * One thread with one epoll set serves every TLS listener and connection:
 * it accepts, runs the handshakes (each must finish within handshake_ms,
 * else the connection is closed), then creates a socketpair, hands one end
 * to the handoff function with the client's real address and pumps bytes
 * between the TLS session and the other end through two fixed buffers of
 * RELAY_TLS_BUF bytes (allocated after the handshake). End of stream and
 * half-close pass both ways (TLS close_notify <-> shutdown(SHUT_WR)); when
 * microhttpd closes its end, the TLS connection is closed too.
 *
 * Limits before the handshake: at most max_connections TLS connections per
 * listener (a new one over it evicts the oldest one still in its handshake,
 * else is refused) and max_per_client per client (relay_addr_key_derive; 0:
 * none). After the handoff microhttpd's own limits apply as well.
 */

#define RELAY_TLS_BUF (16 * 1024) /* per direction: one TLS record of plaintext */

struct relay_tls;

/*
 * Hands fd (one end of a socketpair, plain HTTP inside) to listener's HTTP
 * server with the client's address. The callee owns fd from then on, also
 * on failure (microhttpd closes it). Returns 0 or -errno.
 */
typedef int (*relay_tls_handoff_fn)(void *userdata, unsigned listener, int fd,
				    const struct sockaddr *addr, socklen_t addrlen);

struct relay_tls_config {
	unsigned max_connections; /* per listener, >= 1 */
	unsigned max_per_client;  /* 0: no limit */
	unsigned handshake_ms;	  /* >= 1 */
};

/*
 * cert_pem/key_pem: the PEM texts (copied). Returns 0, -EINVAL (they are
 * not a usable certificate and matching key) or -ENOMEM.
 */
int relay_tls_new(const char *cert_pem, const char *key_pem, const struct relay_tls_config *cfg,
		  relay_tls_handoff_fn handoff, void *userdata, struct relay_core *core,
		  struct relay_tls **ret) __attribute__((warn_unused_result));

/* Adds listening socket fd (ours from now on) as listener index, before start. */
int relay_tls_listen(struct relay_tls *t, unsigned index, int fd)
	__attribute__((warn_unused_result));

int relay_tls_start(struct relay_tls *t) __attribute__((warn_unused_result));

/*
 * Stops accepting and handing over; when it returns, the handoff function
 * is no longer called. Connections already handed over keep being pumped.
 */
void relay_tls_quiesce(struct relay_tls *t);

/* Closes every connection and socket and joins the thread; then frees. NULL is a no-op. */
void relay_tls_free(struct relay_tls *t);

#endif
