/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>

#include "relay_client/relay_reply.h"
#include "tap.h"

static struct relay_reply rep;

static int parse(enum relay_reply_kind k, int status, const char *body)
{
	return relay_reply_parse(k, status, body, strlen(body), &rep);
}

TEST(record_ok)
{
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, "{\"blob\":\"AQID\",\"expires_in\":42}"), 0);
	CHECK_INT_EQ(rep.nrecords, 1);
	CHECK_INT_EQ(rep.records[0].blob_len, 3);
	CHECK(rep.records[0].blob[0] == 1 && rep.records[0].blob[1] == 2 &&
	      rep.records[0].blob[2] == 3);
	CHECK_INT_EQ(rep.expires_in, 42);
	CHECK_INT_EQ(rep.records[0].expires_in, 42);
}

/* Several writers under one token: every usable entry, in order; the rest
 * (a squatter's oversized or malformed entries) skipped, never fatal. */
TEST(records_several)
{
	static char body[RELAY_REPLY_MAX];
	size_t n;

	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200,
			   "{\"blob\":\"AQID\",\"expires_in\":42,\"records\":["
			   "{\"blob\":\"AQID\",\"expires_in\":42},{\"blob\":\"BA\",\"expires_in\":7}]}"),
		     0);
	CHECK_INT_EQ(rep.nrecords, 2);
	CHECK_INT_EQ(rep.skipped, 0);
	CHECK_INT_EQ(rep.records[0].blob_len, 3);
	CHECK_INT_EQ(rep.records[1].blob_len, 1);
	CHECK_INT_EQ(rep.records[1].blob[0], 4);
	CHECK_INT_EQ(rep.records[1].expires_in, 7);

	/* the newest, in "blob", is a 4096-byte squatter's record: ignored with
	 * "records" present; its entry is skipped like the malformed ones */
	snprintf(body, sizeof(body), "{\"blob\":\"");
	n = strlen(body);
	memset(body + n, 'A', 5461);
	n += 5461;
	n += (size_t)snprintf(body + n, sizeof(body) - n, "\",\"records\":[{\"blob\":\"");
	memset(body + n, 'A', 5461);
	n += 5461;
	snprintf(body + n, sizeof(body) - n,
		 "\"},5,{},{\"blob\":7},{\"blob\":\"a+b/\"},{\"blob\":\"\"},"
		 "{\"blob\":\"BQ\",\"expires_in\":\"x\"}]}");
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, body), 0);
	CHECK_INT_EQ(rep.nrecords, 1);
	CHECK_INT_EQ(rep.skipped, 6);
	CHECK_INT_EQ(rep.records[0].blob[0], 5);
	CHECK_INT_EQ(rep.records[0].expires_in, -1);
	CHECK_STR_EQ(rep.message, "");

	/* nothing usable is still a reply; more than RELAY_REPLY_RECORDS_MAX are cut */
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, "{\"records\":[]}"), 0);
	CHECK_INT_EQ(rep.nrecords, 0);
	snprintf(body, sizeof(body), "{\"records\":[");
	for (int i = 0; i < RELAY_REPLY_RECORDS_MAX + 3; i++)
		strcat(body, i ? ",{\"blob\":\"AQ\"}" : "{\"blob\":\"AQ\"}");
	strcat(body, "]}");
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, body), 0);
	CHECK_INT_EQ(rep.nrecords, RELAY_REPLY_RECORDS_MAX);
	CHECK_INT_EQ(rep.skipped, 3);

	/* "records" must be an array */
	CHECK_INT_EQ(parse(RELAY_REPLY_RECORD, 200, "{\"blob\":\"AQ\",\"records\":{}}"), -EPROTO);
	CHECK(strstr(rep.message, "records") != NULL);
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

static int observed(const char *v, struct record_addr *a)
{
	return relay_observed_parse(v, strlen(v), a);
}

/* X-Tandem-Observed: an address to try, parsed strictly (a hostile relay's
 * header is refused, never half-read). */
TEST(observed_header)
{
	struct record_addr a, keep;
	char txt[RECORD_ADDR_TEXT_MAX];

	CHECK_INT_EQ(observed("198.51.100.50:4001", &a), 0);
	record_addr_format(&a, txt);
	CHECK_STR_EQ(txt, "198.51.100.50:4001");
	CHECK_INT_EQ(a.family, 4);
	/* as curl hands the value over: spaces before, CRLF after */
	CHECK_INT_EQ(observed("  [2001:db8:a::2]:65535\r\n", &a), 0);
	record_addr_format(&a, txt);
	CHECK_STR_EQ(txt, "[2001:db8:a::2]:65535");
	CHECK_INT_EQ(a.family, 6);
	CHECK_INT_EQ(observed("[::1]:1", &a), 0);

	static const char *const bad[] = {
		"",
		"   ",
		"198.51.100.50",
		"198.51.100.50:",
		"198.51.100.50:0",
		"198.51.100.50:65536",
		"198.51.100.50:99999999999999999999",
		"198.51.100.50:+80",
		"198.51.100.50:-80",
		"198.51.100.50: 80",
		"198.51.100.50:80x",
		"198.51.100.50:80 junk",
		"198.51.100.050:80",
		"198.51.100:80",
		"relay.example:80",
		"[198.51.100.50]:80",
		"2001:db8::1:80",
		"[2001:db8::1]",
		"[2001:db8::1]80",
		"[2001:db8::1%eth0]:80",
		"[::ffff:198.51.100.50]:80",
		"[::]:80",
		"0.0.0.0:80",
		"[ff02::1]:80",
		"224.0.0.1:80",
		"[2001:db8::1]:80, 198.51.100.50:80",
		"198.51.100.50:80\r\n198.51.100.51:80",
		"[2001:0db8:0000:0000:0000:0000:0000:0001:0001]:80",
	};
	keep.family = 9;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = keep;
		int r = observed(bad[i], &a);
		if (r != -EINVAL)
			printf("#   accepted \"%s\"\n", bad[i]);
		CHECK_INT_EQ(r, -EINVAL);
		CHECK_INT_EQ(a.family, 9); /* untouched */
	}
	/* longer than any address: refused before it is copied */
	char big[300];
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_INT_EQ(observed(big, &a), -EINVAL);
	/* not NUL-terminated: only len bytes are read */
	CHECK_INT_EQ(relay_observed_parse("192.0.2.1:80garbage", 12, &a), 0);
	CHECK_INT_EQ(a.port, 80);
}

int main(void)
{
	RUN(record_ok);
	RUN(observed_header);
	RUN(record_malformed);
	RUN(records_several);
	RUN(errors_are_read_never_fail);
	RUN(stored_and_empty);
	return tap_done();
}
