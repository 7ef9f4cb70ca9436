/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One control socket request line (src/daemon/control_req.c). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "daemon/control_req.h"
#include "tap.h"

static int parse(const char *line, struct control_request *req, const char **code,
		 struct err *err)
{
	*code = NULL;
	err->msg[0] = '\0';
	return control_request_parse(line, strlen(line), req, code, err);
}

TEST(status_and_down)
{
	struct control_request req;
	const char *code;
	struct err err;

	REQUIRE(parse("{\"cmd\":\"status\"}", &req, &code, &err) == 0);
	CHECK_INT_EQ(req.cmd, CONTROL_CMD_STATUS);
	control_request_done(&req);
	REQUIRE(parse("{\"cmd\":\"down\"}", &req, &code, &err) == 0);
	CHECK_INT_EQ(req.cmd, CONTROL_CMD_DOWN);
	control_request_done(&req);
}

TEST(unknown_command)
{
	struct control_request req;
	const char *code;
	struct err err;

	CHECK_INT_EQ(parse("{\"cmd\":\"reboot\"}", &req, &code, &err), -ENOENT);
	CHECK_STR_EQ(code, "unknown_command");
	CHECK(err.msg[0] != '\0');
}

/* Malformed lines: bad_request with a sentence, never a crash. */
TEST(malformed)
{
	static const char *const bad[] = {
		"", "{", "[]", "\"status\"", "{}", "{\"cmd\":1}", "{\"cmd\":null}",
		"{\"cmd\":\"status\"} trailing",
	};
	struct control_request req;
	const char *code;
	struct err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse(bad[i], &req, &code, &err);

		if (r != -EINVAL)
			printf("# '%s': r=%d\n", bad[i], r);
		CHECK_INT_EQ(r, -EINVAL);
		CHECK_STR_EQ(code, "bad_request");
		CHECK(err.msg[0] != '\0');
	}
}

/* The test seam "ensure" exists only in builds with the selftest. */
TEST(ensure)
{
	struct control_request req;
	const char *code;
	struct err err;
	int r = parse("{\"cmd\":\"ensure\",\"path\":\"a/b\",\"offset\":4,\"length\":8}", &req,
		      &code, &err);

	if (!HAVE_SELFTEST) {
		CHECK(r < 0);
		return;
	}
	REQUIRE(r == 0);
	CHECK_INT_EQ(req.cmd, CONTROL_CMD_ENSURE);
	CHECK_STR_EQ(req.path, "a/b");
	CHECK_INT_EQ(req.off, 4);
	CHECK_INT_EQ(req.len, 8);
	control_request_done(&req);
	REQUIRE(parse("{\"cmd\":\"ensure\",\"path\":\"a\"}", &req, &code, &err) == 0);
	CHECK(req.len == UINT64_MAX);
	control_request_done(&req);
}

int main(void)
{
	RUN(status_and_down);
	RUN(unknown_command);
	RUN(malformed);
	RUN(ensure);
	return tap_done();
}
