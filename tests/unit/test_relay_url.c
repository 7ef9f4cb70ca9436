/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "relay_client/relay_url.h"
#include "tap.h"

struct tcase {
	const char *url;
	enum relay_url_kind want;
};

static void check_all(const struct tcase *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		enum relay_url_kind got = relay_url_classify(c[i].url);
		if (got != c[i].want)
			printf("# %s: got %d, want %d\n", c[i].url ? c[i].url : "(null)", (int)got,
			       (int)c[i].want);
		CHECK(got == c[i].want);
	}
}

TEST(scheme)
{
	static const struct tcase c[] = {
		{"https://relay.example:8480", RELAY_URL_HTTPS},
		{"HTTPS://relay.example/", RELAY_URL_HTTPS},
		{"https://127.0.0.1:8480", RELAY_URL_HTTPS},
		{"http://relay.example:8480", RELAY_URL_HTTP_REMOTE},
		{"HTTP://relay.example", RELAY_URL_HTTP_REMOTE},
		{"Http://192.0.2.1:8480", RELAY_URL_HTTP_REMOTE},
		{"http://192.0.2.1:8480", RELAY_URL_HTTP_REMOTE},
		{NULL, RELAY_URL_INVALID},
		{"", RELAY_URL_INVALID},
		{"ftp://127.0.0.1/", RELAY_URL_INVALID},
		{"relay.example:8480", RELAY_URL_INVALID},
		{"http:/127.0.0.1", RELAY_URL_INVALID},
		{"http://", RELAY_URL_INVALID},
		{"http:///x", RELAY_URL_INVALID},
	};
	check_all(c, sizeof(c) / sizeof(c[0]));
}

TEST(loopback)
{
	static const struct tcase c[] = {
		{"http://127.0.0.1:8480", RELAY_URL_HTTP_LOOPBACK},
		{"http://127.0.0.1", RELAY_URL_HTTP_LOOPBACK},
		{"http://127.0.0.1/", RELAY_URL_HTTP_LOOPBACK},
		{"http://127.1.2.3:1/v1/records?x#y", RELAY_URL_HTTP_LOOPBACK},
		{"http://127.255.255.255", RELAY_URL_HTTP_LOOPBACK},
		{"HTTP://127.0.0.1:8480", RELAY_URL_HTTP_LOOPBACK},
		{"http://[::1]:8480", RELAY_URL_HTTP_LOOPBACK},
		{"http://[::1]", RELAY_URL_HTTP_LOOPBACK},
		{"http://[::1]/", RELAY_URL_HTTP_LOOPBACK},
		{"http://[0:0:0:0:0:0:0:1]:9/", RELAY_URL_HTTP_LOOPBACK},
		{"http://[::ffff:127.0.0.1]:9", RELAY_URL_HTTP_LOOPBACK},
		{"http://localhost:8480", RELAY_URL_HTTP_LOOPBACK},
		{"http://LocalHost/", RELAY_URL_HTTP_LOOPBACK},
		{"http://user:pw@127.0.0.1:8480/", RELAY_URL_HTTP_LOOPBACK},
		{"http://evil.example@[::1]:8480/", RELAY_URL_HTTP_LOOPBACK},
		/* the '@' is in the path, query or fragment: not userinfo */
		{"http://127.0.0.1/@evil.example", RELAY_URL_HTTP_LOOPBACK},
		{"http://127.0.0.1?@evil.example", RELAY_URL_HTTP_LOOPBACK},
		{"http://127.0.0.1#@evil.example", RELAY_URL_HTTP_LOOPBACK},
	};
	check_all(c, sizeof(c) / sizeof(c[0]));
}

TEST(remote_lookalikes)
{
	static const struct tcase c[] = {
		/* userinfo tricks: the host is after the '@' */
		{"http://127.0.0.1@evil.example/", RELAY_URL_HTTP_REMOTE},
		{"http://localhost@evil.example", RELAY_URL_HTTP_REMOTE},
		{"http://[::1]@evil.example:8480", RELAY_URL_HTTP_REMOTE},
		{"http://a@127.0.0.1@evil.example/", RELAY_URL_HTTP_REMOTE},
		{"http://evil.example@127.0.0.1@x/", RELAY_URL_HTTP_REMOTE},
		/* names and addresses that only look local */
		{"http://127.0.0.1.evil.example/", RELAY_URL_HTTP_REMOTE},
		{"http://localhost.evil.example/", RELAY_URL_HTTP_REMOTE},
		{"http://localhostx/", RELAY_URL_HTTP_REMOTE},
		{"http://xlocalhost/", RELAY_URL_HTTP_REMOTE},
		{"http://128.0.0.1/", RELAY_URL_HTTP_REMOTE},
		{"http://126.255.255.255/", RELAY_URL_HTTP_REMOTE},
		{"http://10.0.0.1:8480", RELAY_URL_HTTP_REMOTE},
		{"http://[::2]:8480", RELAY_URL_HTTP_REMOTE},
		{"http://[::]:8480", RELAY_URL_HTTP_REMOTE},
		{"http://[::ffff:10.0.0.1]/", RELAY_URL_HTTP_REMOTE},
		{"http://[fe80::1%25lo]:8480", RELAY_URL_HTTP_REMOTE},
		{"http://[::1:8480", RELAY_URL_HTTP_REMOTE},
		{"http://[::1]evil/", RELAY_URL_HTTP_REMOTE},
		{"http://::1/", RELAY_URL_HTTP_REMOTE},
		/* not provably loopback: short and numeric forms, odd ports */
		{"http://127.1/", RELAY_URL_HTTP_REMOTE},
		{"http://2130706433/", RELAY_URL_HTTP_REMOTE},
		{"http://0x7f.0.0.1/", RELAY_URL_HTTP_REMOTE},
		{"http://127.0.0.01/", RELAY_URL_HTTP_REMOTE},
		{"http://%31%32%37.0.0.1/", RELAY_URL_HTTP_REMOTE},
		{"http://127.0.0.1:80:80/", RELAY_URL_HTTP_REMOTE},
		{"http://127.0.0.1:x/", RELAY_URL_HTTP_REMOTE},
		{"http://localhost./", RELAY_URL_HTTP_REMOTE},
	};
	check_all(c, sizeof(c) / sizeof(c[0]));
}

int main(void)
{
	RUN(scheme);
	RUN(loopback);
	RUN(remote_lookalikes);
	return tap_done();
}
