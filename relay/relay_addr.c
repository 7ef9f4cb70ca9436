/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "relay_addr.h"

static int port_parse(const char *s, uint16_t *ret_port)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 5)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*ret_port = (uint16_t)v;
	return 0;
}

/* Numeric host of one family only, through getaddrinfo for IPv6 scopes. */
static int host_parse(const char *host, int family, struct relay_listen_addr *ret)
{
	struct addrinfo hints = {
		.ai_family = family,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_PASSIVE,
	};
	struct addrinfo *ai = NULL;

	if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai)
		return -EINVAL;
	if (ai->ai_addrlen > sizeof(ret->ss) || ai->ai_addr->sa_family != family) {
		freeaddrinfo(ai);
		return -EINVAL;
	}
	memcpy(&ret->ss, ai->ai_addr, ai->ai_addrlen);
	ret->len = (socklen_t)ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int relay_addr_parse(const char *s, struct relay_listen_addr *ret)
{
	struct relay_listen_addr a;
	char host[RELAY_ADDR_STRLEN];
	const char *colon;
	uint16_t port;
	size_t hlen;
	int r;

	if (!s)
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (port_parse(close + 2, &port) < 0)
			return -EINVAL;
		r = host_parse(host, AF_INET6, &a);
		if (r < 0)
			return r;
		((struct sockaddr_in6 *)&a.ss)->sin6_port = htons(port);
		a.dual_stack = IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&a.ss)->sin6_addr);
		*ret = a;
		return 0;
	}
	colon = strrchr(s, ':');
	if (!colon || strchr(s, ':') != colon)
		return -EINVAL;
	hlen = (size_t)(colon - s);
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (port_parse(colon + 1, &port) < 0)
		return -EINVAL;
	if (strcmp(host, "*") == 0) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons(port);
		a.len = sizeof(*sin6);
		a.dual_stack = true;
		*ret = a;
		return 0;
	}
	/* inet_pton is strict: no "1.2.3", no octal, no trailing junk */
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -EINVAL;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	a.len = sizeof(*sin);
	*ret = a;
	return 0;
}

char *relay_addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	/* copies, not casts: sa may be less aligned than sockaddr_in6 */
	if (sa && sa->sa_family == AF_INET6) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, sa, sizeof(sin6));
		if (!inet_ntop(AF_INET6, &sin6.sin6_addr, host, sizeof(host)))
			snprintf(host, sizeof(host), "?");
		if (sin6.sin6_scope_id)
			snprintf(buf, len, "[%s%%%u]:%u", host, (unsigned)sin6.sin6_scope_id,
				 ntohs(sin6.sin6_port));
		else
			snprintf(buf, len, "[%s]:%u", host, ntohs(sin6.sin6_port));
	} else if (sa && sa->sa_family == AF_INET) {
		struct sockaddr_in sin;
		memcpy(&sin, sa, sizeof(sin));
		if (!inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host)))
			snprintf(host, sizeof(host), "?");
		snprintf(buf, len, "%s:%u", host, ntohs(sin.sin_port));
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

bool relay_addr_observed(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	buf[0] = '\0';
	if (sa && sa->sa_family == AF_INET6) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, sa, sizeof(sin6));
		if (sin6.sin6_scope_id || !sin6.sin6_port)
			return false;
		if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
			if (!inet_ntop(AF_INET, &sin6.sin6_addr.s6_addr[12], host, sizeof(host)))
				return false;
			snprintf(buf, len, "%s:%u", host, ntohs(sin6.sin6_port));
			return true;
		}
		if (!inet_ntop(AF_INET6, &sin6.sin6_addr, host, sizeof(host)))
			return false;
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6.sin6_port));
		return true;
	}
	if (sa && sa->sa_family == AF_INET) {
		struct sockaddr_in sin;
		memcpy(&sin, sa, sizeof(sin));
		if (!sin.sin_port || !inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host)))
			return false;
		snprintf(buf, len, "%s:%u", host, ntohs(sin.sin_port));
		return true;
	}
	return false;
}

void relay_addr_key_derive(const struct sockaddr *sa, struct relay_client_key *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in sin;
		memcpy(&sin, sa, sizeof(sin));
		ret->b[0] = 4;
		memcpy(ret->b + 1, &sin.sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, sa, sizeof(sin6));
		if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
			ret->b[0] = 4;
			memcpy(ret->b + 1, sin6.sin6_addr.s6_addr + 12, 4);
		} else {
			ret->b[0] = 6;
			memcpy(ret->b + 1, sin6.sin6_addr.s6_addr, 8);
		}
	}
}
