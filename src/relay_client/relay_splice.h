/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_SPLICE_CLIENT_H
#define TANDEM_RELAY_SPLICE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "identity/identity.h"

/*
 * Relayed connections, the client's side (docs/PROTOCOL.md §6,
 * docs/RELAY.md "Relayed connections"): when two peers cannot reach each
 * other, both dial the relay's GET /v1/splice with the same rendezvous
 * token, and the relay copies bytes between the two connections. The
 * secure channel (docs/CHANNEL.md) then runs over the returned socket
 * unchanged: the relay sees only its ciphertext.
 *
 *   token = relay_splice_token(me, peer_pk, bucket)   both peers get the same
 *   side  = relay_splice_side(me, peer_pk)             1 or 2; side 1 is the
 *                                                      channel's initiator
 *   relay_splice_dial(url, token, side, timeout, ...)  -> connected socket
 *
 * The token is keyed with the static X25519 secret the two identities
 * share, so only the two peers can compute it: the relay learns nothing
 * but a random-looking token that changes every bucket, and a third party
 * who knows both fingerprints (or public keys) cannot present it.
 *
 * The parsing and formatting below are sans-IO (for the fuzzer and for an
 * event loop that dials by itself); relay_splice_dial is the blocking
 * dialer with a deadline and a cancel fd, for a worker thread.
 */

#define RELAY_SPLICE_TOKEN_LEN 32
#define RELAY_SPLICE_PROTOCOL "tandem-splice/1"
#define RELAY_SPLICE_HEAD_MAX 8192   /* a reply's head (status line and headers), at most */
#define RELAY_SPLICE_REPLY_MAX 16384 /* a refusal's head and JSON body, at most */
#define RELAY_SPLICE_REQUEST_MAX 1024

/*
 * The rendezvous token of me and the peer whose Ed25519 public key is
 * peer_pk, for a time bucket (derive_bucket(time, RELAY_BUCKET_SECONDS)).
 * Returns 0, or -EINVAL when peer_pk is not a usable key (not a curve
 * point, a small-order point, or me's own key).
 */
int relay_splice_token(const struct identity *me, const uint8_t peer_pk[static IDENTITY_PK_LEN],
		       uint64_t bucket, uint8_t out[static RELAY_SPLICE_TOKEN_LEN])
	__attribute__((warn_unused_result));

/* 1 when me's public key sorts first (bytewise), else 2; side 1 opens the channel (initiator). */
int relay_splice_side(const struct identity *me, const uint8_t peer_pk[static IDENTITY_PK_LEN]);

/*
 * The upgrade request for host (the URL's "host:port" as typed) and path
 * prefix (the URL's path without a trailing slash, "" for none) into buf.
 * Returns its length, or -EINVAL (side not 1 or 2, host or prefix with
 * characters that do not belong in a request line), -EMSGSIZE.
 */
int relay_splice_request_format(const char *host, const char *prefix,
				const uint8_t token[static RELAY_SPLICE_TOKEN_LEN], int side,
				char *buf, size_t len) __attribute__((warn_unused_result));

struct relay_splice_reply {
	int status;	      /* HTTP status */
	uint32_t retry_after; /* seconds, 0 if none */
	char error[64];	      /* a refusal's error code, or "" */
	char message[256];    /* the relay's message, or "" */
};

/*
 * Parses what the relay sent so far (buf, len; eof when it closed). Returns
 * the number of bytes that make up the reply once it is complete: for 101,
 * the head only (what follows is already the peer's data); for a refusal,
 * the head and its body. Returns 0 when more bytes are needed, or -EPROTO
 * (with a sentence in ret->message): not an HTTP/1.1 reply, a head larger
 * than RELAY_SPLICE_HEAD_MAX, a 101 without "Upgrade: tandem-splice/1",
 * a refusal cut short. ret is always initialised.
 */
int relay_splice_reply_parse(const uint8_t *buf, size_t len, bool eof,
			     struct relay_splice_reply *ret) __attribute__((warn_unused_result));

/*
 * Dials the relay at url ("http://host:port" or "https://host:port", an
 * optional path prefix allowed) and asks to be spliced under token as
 * side. Waits for the other side at most timeout_ms in all (connecting
 * included), or until cancel_fd (-1: none) becomes readable (a host name
 * is resolved with getaddrinfo first, which the deadline does not bound:
 * give an address literal where that matters). Blocks: call it from a
 * worker thread, or drive relay_splice_request_format and
 * relay_splice_reply_parse from an event loop instead. Returns 0 and a
 * connected, blocking, CLOEXEC stream socket in *ret_fd whose next byte is
 * the peer's; or -errno with a sentence in err:
 *   -EINVAL            a malformed URL
 *   -ENXIO             the host name does not resolve
 *   -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH, ...: cannot connect
 *   -EKEYREJECTED      https: TLS failed (certificate not trusted, host
 *                      name not in it, handshake error)
 *   -ETIMEDOUT         no answer in time, or the relay's 504 (the peer did
 *                      not come within the relay's wait time)
 *   -EEXIST            409: two peers are spliced under this token already,
 *                      or a newer connection of ours replaced this one
 *   -EAGAIN (429), -EBUSY (503): the relay's limits; *ret_retry_after (if
 *                      not NULL) gets Retry-After
 *   -EACCES (401), -EPROTO (426, 400, 501, a reply that is not the
 *                      protocol), -ENOENT (404/405: a relay without
 *                      relayed connections)
 *   -ECANCELED         cancel_fd became readable
 *
 * https:// (docs/RELAY.md, "Relayed connections"): TLS through libcurl,
 * the relay's certificate and host name verified as for its records (the
 * system's CA bundle). *ret_fd is then one end of a socketpair(AF_UNIX,
 * SOCK_STREAM): a detached thread of this module copies between it and
 * the TLS session, passes a shutdown(SHUT_WR) on in both directions, and
 * ends (freeing the session) once both directions have ended, on an error
 * of either side, or when the caller closes *ret_fd. For http:// *ret_fd
 * is the TCP socket itself.
 */
int relay_splice_dial(const char *url, const uint8_t token[static RELAY_SPLICE_TOKEN_LEN], int side,
		      int timeout_ms, int cancel_fd, int *ret_fd, uint32_t *ret_retry_after,
		      struct err *err) __attribute__((warn_unused_result));

/* relay_splice_dial, trusting for https:// the CA certificates in the PEM
 * file ca_file instead of the system's bundle (NULL: the system's); as
 * relay_client_opts.ca_file. */
int relay_splice_dial_ca(const char *url, const char *ca_file,
			 const uint8_t token[static RELAY_SPLICE_TOKEN_LEN], int side,
			 int timeout_ms, int cancel_fd, int *ret_fd, uint32_t *ret_retry_after,
			 struct err *err) __attribute__((warn_unused_result));

#endif
