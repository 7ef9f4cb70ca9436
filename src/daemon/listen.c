/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "daemon/listen.h"
#include "log.h"

static int parse_port(const char *s, uint16_t *ret)
{
	unsigned long v;
	char *end;

	/* digits only: strtoul alone would take " 80", "\t+80" */
	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 65535)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

int listen_spec_parse(const char *s, struct listen_spec *ret, struct err *err)
{
	struct listen_spec ls;
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_s;
	uint16_t port;
	size_t hl;

	memset(&ls, 0, sizeof(ls));
	err_clear(err);
	if (strcmp(s, "none") == 0) {
		ls.none = true;
		*ret = ls;
		return 0;
	}
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			goto bad;
		hl = (size_t)(close - s - 1);
		port_s = close + 2;
		if (hl >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon)
			goto bad;
		hl = (size_t)(colon - s);
		port_s = colon + 1;
		if (hl >= sizeof(host))
			goto bad;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	if (parse_port(port_s, &port) < 0)
		goto bad;
	if (strchr(host, '%')) {
		err_set(err,
			"--listen '%.64s': link-local addresses with a scope cannot be published; "
			"use a global address or [::]:PORT",
			s);
		return -EINVAL;
	}
	if (strcmp(host, "*") == 0)
		snprintf(host, sizeof(host), "::");
	if (s[0] == '[' || strcmp(host, "::") == 0) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ls.ss;
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			goto bad;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		ls.len = sizeof(*in6);
		ls.wildcard = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ls.ss;
		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			goto bad;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		ls.len = sizeof(*in);
		ls.wildcard = in->sin_addr.s_addr == htonl(INADDR_ANY);
	}
	*ret = ls;
	return 0;
bad:
	err_set(err,
		"--listen '%.64s' is not ADDR:PORT: use [IPv6]:PORT, IPv4:PORT, [::]:0 for "
		"every address with a free port, or none (no host names)",
		s);
	return -EINVAL;
}

int listen_open(const struct listen_spec *ls, int *ret_fd, struct record_addr *ret_bound,
		struct err *err)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd, on = 1, off = 0, r;
	char text[RECORD_ADDR_TEXT_MAX];
	struct record_addr want;

	err_clear(err);
	if (record_addr_from_sockaddr((const struct sockaddr *)&ls->ss, &want) < 0) {
		/* port 0: format it ourselves */
		memset(&want, 0, sizeof(want));
		want.family = ls->ss.ss_family == AF_INET ? 4 : 6;
		if (want.family == 4)
			memcpy(want.ip, &((const struct sockaddr_in *)&ls->ss)->sin_addr, 4);
		else
			memcpy(want.ip, &((const struct sockaddr_in6 *)&ls->ss)->sin6_addr, 16);
	}
	record_addr_format(&want, text);

	fd = socket(ls->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0) {
		r = -errno;
		err_set(err, "cannot create a TCP socket for %s: %s", text, strerror(-r));
		return r;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ls->ss.ss_family == AF_INET6 && ls->wildcard)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	if (bind(fd, (const struct sockaddr *)&ls->ss, ls->len) < 0) {
		r = -errno;
		err_set(err, "cannot listen for the peer on %s: %s; %s", text, strerror(-r),
			r == -EADDRINUSE      ? "pick another port with --listen, or [::]:0"
			: r == -EADDRNOTAVAIL ? "that address is not one of this machine's; "
						"check --listen"
					      : "check --listen");
		close(fd);
		return r;
	}
	errno = 0;
	if (listen(fd, 16) < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    record_addr_from_sockaddr((const struct sockaddr *)&ss, ret_bound) < 0) {
		r = errno ? -errno : -EINVAL;
		err_set(err, "cannot listen for the peer on %s: %s", text, strerror(-r));
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static bool addr_usable(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
			&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		return !IN6_IS_ADDR_LOOPBACK(a) && !IN6_IS_ADDR_LINKLOCAL(a) &&
		       !IN6_IS_ADDR_MULTICAST(a) && !IN6_IS_ADDR_UNSPECIFIED(a) &&
		       !IN6_IS_ADDR_V4MAPPED(a);
	}
	if (sa->sa_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);
		return (a >> 24) != 127 && (a >> 16) != 0xa9fe && a != 0 && (a >> 28) != 0xe;
	}
	return false;
}

static void rec_add(struct peer_record *rec, const struct record_addr *a)
{
	for (unsigned i = 0; i < rec->naddrs; i++)
		if (memcmp(&rec->addrs[i], a, sizeof(*a)) == 0)
			return;
	if (rec->naddrs < RECORD_MAX_ADDRS)
		rec->addrs[rec->naddrs++] = *a;
}

/* The host's usable addresses of one family, with port. */
static void add_host_addrs(struct ifaddrs *list, int family, uint16_t port, struct peer_record *rec)
{
	for (struct ifaddrs *i = list; i; i = i->ifa_next) {
		struct record_addr a;

		if (!i->ifa_addr || i->ifa_addr->sa_family != family || !(i->ifa_flags & IFF_UP) ||
		    (i->ifa_flags & IFF_LOOPBACK) || !addr_usable(i->ifa_addr))
			continue;
		memset(&a, 0, sizeof(a));
		a.family = family == AF_INET ? 4 : 6;
		if (family == AF_INET)
			memcpy(a.ip, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, 4);
		else
			memcpy(a.ip, &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, 16);
		a.port = port;
		rec_add(rec, &a);
	}
}

void listen_record_fill(const struct listen_spec *ls, const struct record_addr *bound,
			struct peer_record *rec)
{
	struct ifaddrs *list = NULL;
	bool v6 = ls->ss.ss_family == AF_INET6;

	rec->naddrs = 0;
	rec->flags = 0;
	memset(rec->addrs, 0, sizeof(rec->addrs));
	if (ls->none)
		return;
	if (!ls->wildcard) {
		rec_add(rec, bound);
	} else {
		if (getifaddrs(&list) < 0) {
			log_warn("cannot list this machine's addresses (getifaddrs: %s); "
				 "publishing only loopback",
				 strerror(errno));
			list = NULL;
		}
		if (v6)
			add_host_addrs(list, AF_INET6, bound->port, rec);
		add_host_addrs(list, AF_INET, bound->port, rec);
		freeifaddrs(list);
		if (rec->naddrs == 0) {
			struct record_addr lo = {.family = 4, .port = bound->port};
			log_notice("this machine has no address but loopback: publishing loopback, "
				   "so only a peer on this machine can reach us");
			if (v6) {
				struct record_addr lo6 = {.family = 6, .port = bound->port};
				lo6.ip[15] = 1;
				rec_add(rec, &lo6);
			}
			lo.ip[0] = 127;
			lo.ip[3] = 1;
			rec_add(rec, &lo);
		}
	}
	if (rec->naddrs)
		rec->flags |= RECORD_FLAG_INBOUND;
}
