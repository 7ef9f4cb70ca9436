/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_ADDR_H
#define TANDEM_RELAY_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * Addresses for the relay: parsing of --listen values, printing of bound
 * addresses, and the key under which a client is rate-limited. Pure
 * functions, no I/O, no allocation.
 */

/* "[ffff:...:ffff%scope]:65535" with room to spare. */
#define RELAY_ADDR_STRLEN 96

/*
 * A client as the rate limiter sees it: IPv4 clients by address, IPv6
 * clients by their /64 (one host usually owns a whole /64). An IPv4-mapped
 * IPv6 address counts as IPv4. Byte 0 is the family (4 or 6, 0 unknown).
 */
#define RELAY_CLIENT_KEY_LEN 9

struct relay_client_key {
	uint8_t b[RELAY_CLIENT_KEY_LEN];
};

struct relay_listen_addr {
	struct sockaddr_storage ss; /* AF_INET6 or AF_INET, port set */
	socklen_t len;
	bool dual_stack; /* "[::]" or "*": also accept IPv4 */
};

/*
 * Parses a --listen value "ADDR:PORT": ADDR is "[IPv6]" (a scope as in
 * "[fe80::1%eth0]" is allowed), a dotted IPv4 address, or "*" for every
 * address (IPv6 dual-stack); PORT is 0..65535 (0: the OS picks). Host names
 * are refused. Returns 0 and fills *ret, or -EINVAL.
 */
int relay_addr_parse(const char *s, struct relay_listen_addr *ret)
	__attribute__((warn_unused_result));

/*
 * Writes "[::1]:8480" or "127.0.0.1:8480" for sa into buf (at least
 * RELAY_ADDR_STRLEN bytes). Returns buf; "?" for an unknown family.
 */
char *relay_addr_format(const struct sockaddr *sa, char *buf, size_t len);

/*
 * Writes the address and port a client's connection came from, as the
 * X-Tandem-Observed reply header tells it: "198.51.100.50:4001" or
 * "[2001:db8::2]:4001" (an IPv4-mapped IPv6 address as IPv4, no scope).
 * Returns false (buf "") for anything else (unknown family, a scoped
 * link-local address, port 0).
 */
bool relay_addr_observed(const struct sockaddr *sa, char *buf, size_t len);

/* Derives the rate-limiting key of a client address; NULL gives the zero key. */
void relay_addr_key_derive(const struct sockaddr *sa, struct relay_client_key *ret);

#endif
