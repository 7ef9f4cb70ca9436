/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The --listen value (src/daemon/listen.c: listen_spec_parse). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "daemon/listen.h"
#include "tap.h"

static uint16_t port_of(const struct listen_spec *ls)
{
	if (ls->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&ls->ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&ls->ss)->sin_port);
}

static const char *addr_of(const struct listen_spec *ls, char *buf, size_t len)
{
	if (ls->ss.ss_family == AF_INET6)
		return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&ls->ss)->sin6_addr, buf,
				 (socklen_t)len);
	return inet_ntop(AF_INET, &((const struct sockaddr_in *)&ls->ss)->sin_addr, buf,
			 (socklen_t)len);
}

/* Each accepted form gives the family, address, port and wildcard it says. */
TEST(forms)
{
	static const struct {
		const char *in;
		int family;
		const char *addr;
		uint16_t port;
		bool wildcard;
	} ok[] = {
		{LISTEN_DEFAULT, AF_INET6, "::", 0, true},
		{"[::]:4000", AF_INET6, "::", 4000, true},
		{"*:4001", AF_INET6, "::", 4001, true},
		{"[::1]:65535", AF_INET6, "::1", 65535, false},
		{"[2001:db8::7]:22000", AF_INET6, "2001:db8::7", 22000, false},
		{"0.0.0.0:80", AF_INET, "0.0.0.0", 80, true},
		{"127.0.0.1:0", AF_INET, "127.0.0.1", 0, false},
		{"192.0.2.9:1", AF_INET, "192.0.2.9", 1, false},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct listen_spec ls;
		struct err err = {.msg = "x"};
		char buf[INET6_ADDRSTRLEN];

		if (listen_spec_parse(ok[i].in, &ls, &err) != 0) {
			printf("# %s: %s\n", ok[i].in, err.msg);
			CHECK(0);
			continue;
		}
		CHECK(err.msg[0] == '\0');
		CHECK(!ls.none);
		CHECK_INT_EQ(ls.ss.ss_family, ok[i].family);
		CHECK_STR_EQ(addr_of(&ls, buf, sizeof(buf)), ok[i].addr);
		CHECK_INT_EQ(port_of(&ls), ok[i].port);
		CHECK_INT_EQ(ls.wildcard, ok[i].wildcard);
		CHECK_INT_EQ(ls.len, ok[i].family == AF_INET6 ? sizeof(struct sockaddr_in6)
							       : sizeof(struct sockaddr_in));
	}
}

TEST(none)
{
	struct listen_spec ls;
	struct err err = {.msg = ""};

	REQUIRE(listen_spec_parse("none", &ls, &err) == 0);
	CHECK(ls.none);
	CHECK(!ls.wildcard);
	CHECK(listen_spec_parse("None", &ls, &err) == -EINVAL);
}

/* What is not ADDR:PORT is refused with a sentence that shows the accepted forms. */
TEST(refused)
{
	static const char *const bad[] = {
		"",
		":",
		"80",
		"::1:80",	     /* IPv6 without brackets */
		"[::1]",	     /* no port */
		"[::1]80",	     /* no colon */
		"[::1]:",	     /* empty port */
		"[::1]:65536",	     /* port too large */
		"[::1]:-1",
		"[::1]: 80",	     /* strtoul would take it */
		"[::1]:+80",
		"[::1]:0x50",
		"[::1]:99999999999999999999",
		"127.0.0.1:80 ",
		"localhost:80",	     /* no host names */
		"256.1.1.1:80",
		"[127.0.0.1]:80",    /* IPv4 in brackets */
		"[::1:80",
		"[[::1]]:80",
		"[:::]:80",
		"[0123456789012345678901234567890123456789012345678901234567890]:1",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct listen_spec ls = {.none = true};
		struct err err = {.msg = ""};

		if (listen_spec_parse(bad[i], &ls, &err) != -EINVAL) {
			printf("# accepted: '%s'\n", bad[i]);
			CHECK(0);
			continue;
		}
		if (!strstr(err.msg, "is not ADDR:PORT"))
			printf("# '%s' -> %s\n", bad[i], err.msg);
		CHECK(strstr(err.msg, "is not ADDR:PORT") != NULL);
		CHECK(strstr(err.msg, "[::]:0") != NULL);
		CHECK(ls.none); /* *ret untouched */
	}
}

/* A scoped link-local address is refused with its own reason. */
TEST(scope_refused)
{
	struct listen_spec ls;
	struct err err = {.msg = ""};

	CHECK(listen_spec_parse("[fe80::1%eth0]:80", &ls, &err) == -EINVAL);
	CHECK(strstr(err.msg, "link-local") != NULL);
}

/* A long value is cut in the message, which still ends in the advice. */
TEST(long_value_cut)
{
	char in[600];
	struct err err = {.msg = ""};
	struct listen_spec ls;

	memset(in, 'a', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	CHECK(listen_spec_parse(in, &ls, &err) == -EINVAL);
	CHECK(strlen(err.msg) < ERR_LEN - 1);
	CHECK(strstr(err.msg, "no host names") != NULL);
}

int main(void)
{
	RUN(forms);
	RUN(none);
	RUN(refused);
	RUN(scope_refused);
	RUN(long_value_cut);
	return tap_done();
}
