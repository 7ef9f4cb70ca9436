/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_SPLICE_TLS_H
#define TANDEM_RELAY_SPLICE_TLS_H

/*
 * Internal to the relay client: relay_splice_dial's https:// half
 * (relay_splice_tls.c) and what it shares with the plain half
 * (relay_splice_dial.c). Not for other modules.
 */

#include <stdint.h>

#include "base/err.h"
#include "relay_client/relay_splice.h"

/* Waits for events on fd (and the cancel fd) until deadline_ms. Returns 0, -ETIMEDOUT,
 * -ECANCELED or -errno. */
int relay_splice_wait_fd(int fd, short events, int cancel_fd, uint64_t deadline_ms);

/* The relay's refusal rep as -errno, with a sentence in err. */
int relay_splice_refusal(const struct relay_splice_reply *rep, const char *url, struct err *err);

/*
 * The https:// dial: url is "https://host[:port][/prefix]" already split
 * into host (for the Host header and the certificate check) and the
 * request req (len bytes). TLS through libcurl (certificate and host name
 * verified against the system's CA bundle, or ca_file when not NULL);
 * after the 101 a detached pump thread copies between the TLS session and
 * one end of a socketpair, whose other end goes to *ret_fd (blocking,
 * CLOEXEC). The thread ends, freeing everything, once both directions
 * have ended, on an error of either side, or as soon as the caller closes
 * *ret_fd. Returns 0 or -errno with a sentence in err (as
 * relay_splice_dial, plus -EKEYREJECTED: TLS failed).
 */
int relay_splice_tls_dial(const char *url, const char *ca_file, const char *req, size_t len,
			  uint64_t deadline_ms, int timeout_ms, int cancel_fd, int *ret_fd,
			  uint32_t *ret_retry_after, struct err *err)
	__attribute__((warn_unused_result));

#endif
