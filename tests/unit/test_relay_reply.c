/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>

#include "relay_reply.h"
#include "tap.h"

static struct relay_reply rep;

static int parse(enum relay_reply_kind k, int status, const char *body)
{
	return relay_reply_parse(k, status, body, strlen(body), &rep);
}

TEST(record_ok)
{
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, "{\"blob\":\"AQID\",\"expires_in\":42}"), 0);
	CHECK_INT_EQ(rep.blob_len, 3);
	CHECK(rep.blob[0] == 1 && rep.blob[1] == 2 && rep.blob[2] == 3);
	CHECK_INT_EQ(rep.expires_in, 42);
}

TEST(record_malformed)
{
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, ""), -EPROTO);
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, "<html>"), -EPROTO);
	CHECK(strstr(rep.message, "not a JSON object") != NULL);
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, "[1,2]"), -EPROTO);
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, "{}"), -EPROTO);
	CHECK(strstr(rep.message, "blob") != NULL);
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, "{\"blob\":5}"), -EPROTO);
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, "{\"blob\":\"\"}"), -EPROTO);
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, "{\"blob\":\"a+b/\"}"), -EPROTO);
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, "{\"blob\":\"AQID\",\"expires_in\":-1}"),
		     -EPROTO);
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, "{\"blob\":\"AQID\",\"expires_in\":\"x\"}"),
		     -EPROTO);
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, "{\"blob\":\"AQID\",\"blob\":\"AQID\"}"),
		     -EPROTO);
	/* a blob bigger than any record */
	static char big[RELAY_REPLY_MAX];
	snprintf(big, sizeof(big), "{\"blob\":\"");
	size_t n = strlen(big);
	memset(big + n, 'A', 2000);
	snprintf(big + n + 2000, 8, "\"}");
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, big), -EPROTO);
	CHECK(strstr(rep.message, "larger") != NULL);
	/* oversized body */
	CHECK_INT_EQ(relay_reply_parse(RELAY_REPLY_RECORD, 200, big, RELAY_REPLY_MAX + 1, &rep),
		     -EPROTO);
}

TEST(errors_are_read_never_fail)
{
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 404,
			   "{\"error\":\"not_found\",\"message\":\"no record\"}"),
		     0);
	CHECK_INT_EQ(rep.status, 404);
	CHECK_STR_EQ(rep.error, "not_found");
	CHECK_STR_EQ(rep.message, "no record");
	CHECK_INT_EQ(parse(RELAY_REPLY_STORED, 503, "<html>busy</html>"), 0);
	CHECK_STR_EQ(rep.message, "");
	/* control characters from the relay are not passed through to logs */
	CHECK_INT_EQ(parse(RELAY_REPLY_STORED, 400, "{\"message\":\"a\\u001b[31mb\\nc\"}"), 0);
	CHECK_STR_EQ(rep.message, "a\\x1b[31mb\\x0ac");
}

TEST(stored_and_empty)
{
	CHECK_INT_EQ(parse(RELAY_REPLY_STORED, 201, "{\"expires_in\":600}"), 0);
	CHECK_INT_EQ(rep.expires_in, 600);
	CHECK_INT_EQ(parse(RELAY_REPLY_STORED, 200, "{}"), 0);
	CHECK_INT_EQ(rep.expires_in, -1);
	CHECK_INT_EQ(parse(RELAY_REPLY_STORED, 201, "nope"), -EPROTO);
	CHECK_INT_EQ(parse(RELAY_REPLY_EMPTY, 204, ""), 0);
}

int main(void)
{
	RUN(record_ok);
	RUN(record_malformed);
	RUN(errors_are_read_never_fail);
	RUN(stored_and_empty);
	return tap_done();
}
