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
}

int main(void)
{
	RUN(cache_max_read);
	RUN(cache_max_absent);
	RUN(cache_max_bad);
	RUN(cache_max_twice_and_empty);
	RUN(unknown_key_lists_cache_max);
	return tap_done();
}
