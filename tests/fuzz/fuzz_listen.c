/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzzes listen_spec_parse (src/daemon/listen.c), the --listen value (also
 * from tandem.conf). The input is the string up to its first NUL. A
 * failure says why in err, naming the value; a success is formatted back
 * as [IPv6]:PORT, IPv4:PORT or none, which must parse to the same spec,
 * and the spec must be bindable as it is (family, length, wildcard flag);
 * its port is decimal digits only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/listen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static void format(const struct listen_spec *ls, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN];

	if (ls->none) {
		snprintf(out, cap, "none");
	} else if (ls->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ls->ss;
		check(inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)) != NULL);
		snprintf(out, cap, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ls->ss;
		check(inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)) != NULL);
		snprintf(out, cap, "%s:%u", host, ntohs(in->sin_port));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err;
	char text[INET6_ADDRSTRLEN + 16];
	struct listen_spec ls, again;
	char *s;
	int r;

	s = malloc(size + 1);
	check(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	memset(err.msg, 'X', sizeof(err.msg));
	r = listen_spec_parse(s, &ls, &err);
	if (r < 0) {
		size_t n = strnlen(err.msg, sizeof(err.msg));
		check(r == -EINVAL);
		check(n > 0 && n < sizeof(err.msg));
		check(strncmp(err.msg, "--listen '", 10) == 0);
		free(s);
		return 0;
	}
	check(err.msg[0] == '\0');
	if (!ls.none) {
		/* the port is decimal digits and nothing else */
		const char *port = strrchr(s, ':') + 1;
		check(*port != '\0' && strspn(port, "0123456789") == strlen(port));
	}
	if (ls.none) {
		check(strcmp(s, "none") == 0);
	} else if (ls.ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ls.ss;
		check(ls.len == sizeof(struct sockaddr_in6));
		check(ls.wildcard == !!IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr));
		check(in6->sin6_scope_id == 0 && in6->sin6_flowinfo == 0);
	} else {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ls.ss;
		check(ls.ss.ss_family == AF_INET && ls.len == sizeof(struct sockaddr_in));
		check(ls.wildcard == (in->sin_addr.s_addr == htonl(INADDR_ANY)));
	}

	format(&ls, text, sizeof(text));
	memset(&again, 0x5a, sizeof(again));
	r = listen_spec_parse(text, &again, &err);
	check(r == 0);
	check(again.none == ls.none && again.wildcard == ls.wildcard && again.len == ls.len);
	check(memcmp(&again.ss, &ls.ss, sizeof(ls.ss)) == 0);
	free(s);
	return 0;
}
