/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tandem.conf (src/daemon/conf.c): the cache-max key and its checks. */
#include <errno.h>
#include <string.h>

#include "daemon/conf.h"
#include "tap.h"

static int parse(const char *text, struct conf *c, struct err *err)
{
	return conf_parse("tandem.conf", text, strlen(text), c, err);
}

TEST(cache_max_read)
{
	struct conf c = {0};
	struct err err = {.msg = ""};

	REQUIRE(parse("peer = K7QF\n# the mount's cache\ncache-max = 512M\nmount = m\n", &c,
		      &err) == 0);
	CHECK_STR_EQ(c.cache_max, "512M");
	CHECK_STR_EQ(c.mount, "m");
	CHECK_STR_EQ(c.peer, "K7QF");
	conf_done(&c);
	CHECK(c.cache_max == NULL);
}

TEST(cache_max_absent)
{
	struct conf c = {0};
	struct err err = {.msg = ""};

	REQUIRE(parse("dir = d\n", &c, &err) == 0);
	CHECK(c.cache_max == NULL);
	conf_done(&c);
}

/* A bad size is an error naming file:line, the key and the accepted form. */
TEST(cache_max_bad)
{
	static const char *const bad[] = {"cache-max = 10X\n", "cache-max = -1\n",
					  "cache-max = 1.5G\n", "cache-max = 10GB\n",
					  "cache-max = 99999999999999999999\n"};
	struct conf c = {0};
	struct err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "dir = d\n%s", bad[i]);
		err.msg[0] = '\0';
		CHECK(parse(text, &c, &err) == -EINVAL);
		if (!strstr(err.msg, "tandem.conf:2:") || !strstr(err.msg, "cache-max"))
			printf("# %s-> %s\n", bad[i], err.msg);
		CHECK(strstr(err.msg, "tandem.conf:2:") != NULL);
		CHECK(strstr(err.msg, "cache-max") != NULL);
		CHECK(c.dir == NULL && c.cache_max == NULL);
	}
}

TEST(cache_max_twice_and_empty)
{
	struct conf c = {0};
	struct err err = {.msg = ""};

	CHECK(parse("cache-max = 1G\ncache-max = 2G\n", &c, &err) == -EINVAL);
	CHECK(strstr(err.msg, "tandem.conf:2:") != NULL && strstr(err.msg, "line 1") != NULL);
	CHECK(parse("cache-max =\n", &c, &err) == -EINVAL);
	CHECK(strstr(err.msg, "no value") != NULL);
}

/* The unknown-key message lists the new key too. */
TEST(unknown_key_lists_cache_max)
{
	struct conf c = {0};
	struct err err = {.msg = ""};

	CHECK(parse("cachemax = 1G\n", &c, &err) == -EINVAL);
	CHECK(strstr(err.msg, "cache-max") != NULL);
	CHECK(strstr(err.msg, "relay-data") != NULL);
}

/* Every key, comments, blank lines, CRLF and spaces around '=' and the value. */
TEST(all_keys)
{
	static const char text[] = "# tandem.conf\r\n"
				   "\n"
				   "  peer=K7QF-AAAA  \r\n"
				   "relay = https://relay.example:8443/\n"
				   "\t# indented comment\n"
				   "dir\t=\t/srv/share\n"
				   "listen = [::]:0\n"
				   "mount = m\n"
				   "symlinks = all\n"
				   "relay-data = always\n"
				   "cache-max = 2G"; /* no newline at the end */
	struct conf c = {0};
	struct err err = {.msg = "x"};

	REQUIRE(parse(text, &c, &err) == 0);
	CHECK(err.msg[0] == '\0');
	CHECK_STR_EQ(c.peer, "K7QF-AAAA");
	CHECK_STR_EQ(c.relay, "https://relay.example:8443/");
	CHECK_STR_EQ(c.dir, "/srv/share");
	CHECK_STR_EQ(c.listen, "[::]:0");
	CHECK_STR_EQ(c.mount, "m");
	CHECK_STR_EQ(c.symlinks, "all");
	CHECK_STR_EQ(c.cache_max, "2G");
	CHECK_STR_EQ(c.relay_data, "always");
	CHECK_INT_EQ(c.line[0], 3);
	CHECK_INT_EQ(c.line[6], 11);
	CHECK_INT_EQ(c.line[7], 10);
	conf_done(&c);
	CHECK(c.peer == NULL && c.relay == NULL && c.line[0] == 0);
}

/* An empty text (or only comments) is an empty conf. */
TEST(empty)
{
	struct conf c = {0};
	struct err err = {.msg = ""};

	REQUIRE(parse("", &c, &err) == 0);
	CHECK(c.peer == NULL && c.dir == NULL);
	REQUIRE(parse("# nothing\n\n   \n", &c, &err) == 0);
	CHECK(c.peer == NULL && c.dir == NULL);
}

/* Each malformed text is refused naming file:line, and leaves *ret empty. */
TEST(malformed)
{
	static const struct {
		const char *text;
		size_t len; /* 0: strlen */
		const char *line, *says;
	} bad[] = {
		{"peer K7QF\n", 0, "tandem.conf:1:", "expected 'key = value'"},
		{"dir = d\n= x\n", 0, "tandem.conf:2:", "unknown key ''"},
		{"dir = d\nDir = e\n", 0, "tandem.conf:2:", "unknown key 'Dir'"},
		{"dir = a\n\ndir = b\n", 0, "tandem.conf:3:", "already set on line 1"},
		{"mount = \n", 0, "tandem.conf:1:", "has no value"},
		{"dir = a\0b\n", 10, "tandem.conf:1:", "NUL byte"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct conf c = {0};
		struct err err = {.msg = ""};
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].text);

		CHECK(conf_parse("tandem.conf", bad[i].text, len, &c, &err) == -EINVAL);
		if (!strstr(err.msg, bad[i].line) || !strstr(err.msg, bad[i].says))
			printf("# case %zu -> %s\n", i, err.msg);
		CHECK(strstr(err.msg, bad[i].line) != NULL);
		CHECK(strstr(err.msg, bad[i].says) != NULL);
		CHECK(c.peer == NULL && c.dir == NULL && c.mount == NULL);
	}
}

/* A line over CONF_LINE_MAX is refused, not cut; one of exactly that length is read. */
TEST(line_length)
{
	char text[CONF_LINE_MAX + 16];
	struct conf c = {0};
	struct err err = {.msg = ""};

	memcpy(text, "dir = ", 6);
	memset(text + 6, 'd', CONF_LINE_MAX - 6);
	text[CONF_LINE_MAX] = '\n';
	REQUIRE(conf_parse("tandem.conf", text, CONF_LINE_MAX + 1, &c, &err) == 0);
	CHECK_INT_EQ(strlen(c.dir), CONF_LINE_MAX - 6);
	conf_done(&c);
	text[CONF_LINE_MAX] = 'd';
	text[CONF_LINE_MAX + 1] = '\n';
	CHECK(conf_parse("tandem.conf", text, CONF_LINE_MAX + 2, &c, &err) == -EINVAL);
	CHECK(strstr(err.msg, "tandem.conf:1:") != NULL && strstr(err.msg, "longer than") != NULL);
	CHECK(c.dir == NULL);
}

TEST(mount_options)
{
	struct conf c = {0};
	struct err err = {.msg = ""};

	REQUIRE(parse("mount = m\nmount-options = allow_other,ro\n", &c, &err) == 0);
	CHECK_STR_EQ(c.mount_options, "allow_other,ro");
	conf_done(&c);
	CHECK(c.mount_options == NULL);
	CHECK(parse("mount = m\n\nmount-options = allow_other,suid\n", &c, &err) == -EINVAL);
	CHECK(strstr(err.msg, "tandem.conf:3: mount-options:") != NULL);
	CHECK(strstr(err.msg, "'suid'") != NULL);
	CHECK(c.mount == NULL);
}

int main(void)
{
	RUN(cache_max_read);
	RUN(cache_max_absent);
	RUN(cache_max_bad);
	RUN(cache_max_twice_and_empty);
	RUN(unknown_key_lists_cache_max);
	RUN(all_keys);
	RUN(empty);
	RUN(malformed);
	RUN(line_length);
	RUN(mount_options);
	return tap_done();
}
