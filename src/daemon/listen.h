/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_LISTEN_H
#define TANDEM_DAEMON_LISTEN_H

#include <stdbool.h>
#include <sys/socket.h>

#include "base/err.h"
#include "record.h"

/*
 * Where the daemon accepts the peer's connections (`tandem up --listen`),
 * and which addresses it publishes on the relay.
 *
 *   "[::]:0"        default: every address, IPv6 and IPv4 (dual-stack), a
 *                   port the OS picks; publishes the host's addresses
 *                   (not loopback, not link-local) with that port
 *   "[ADDR]:PORT"   one IPv6 address; publishes exactly that
 *   "A.B.C.D:PORT"  one IPv4 address ("0.0.0.0": every IPv4 address)
 *   "*:PORT"        same as "[::]:PORT"
 *   "none"          accept no connection: publish no address, and the
 *                   peer must accept ours
 */

#define LISTEN_DEFAULT "[::]:0"

struct listen_spec {
	bool none;
	bool wildcard;
	struct sockaddr_storage ss;
	socklen_t len;
};

/* Parses a --listen value. Returns 0, or -EINVAL with a sentence in err. */
int listen_spec_parse(const char *s, struct listen_spec *ret, struct err *err)
	__attribute__((warn_unused_result));

/*
 * Binds and listens: non-blocking, CLOEXEC, SO_REUSEADDR; "[::]" accepts
 * IPv4 too. Returns 0, *ret_fd and the bound address (with the real port)
 * in *ret_bound, or -errno with a sentence in err.
 */
int listen_open(const struct listen_spec *ls, int *ret_fd, struct record_addr *ret_bound,
		struct err *err) __attribute__((warn_unused_result));

/*
 * Fills the addresses and flags of the record we publish: none for "none";
 * the bound address when it is a specific one; else the host's addresses
 * (getifaddrs: up, not loopback, not link-local, IPv6 first, at most
 * RECORD_MAX_ADDRS) with the bound port, or loopback when the host has no
 * other address. RECORD_FLAG_INBOUND is set when there is an address.
 */
void listen_record_fill(const struct listen_spec *ls, const struct record_addr *bound,
			struct peer_record *rec);

#endif
