/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <jansson.h>
#include <string.h>

#include "daemon/control_status.h"
#include "tap.h"

static struct daemon_status sample(void)
{
	struct daemon_status st;

	memset(&st, 0, sizeof(st));
	st.peer = "PEER";
	st.self = "SELF";
	st.pid = 42;
	st.relay = "http://[::1]:8480";
	st.dir = "/share";
	st.listen = "[::]:4000";
	st.version = "0.1.0";
	return st;
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

TEST(connecting)
{
	struct daemon_status st = sample();
	json_t *o;

	snprintf(st.relay_error, sizeof(st.relay_error), "no record yet");
	snprintf(st.conn.last_error, sizeof(st.conn.last_error), "cannot connect");
	o = control_status_json(&st);
	REQUIRE(o != NULL);
	CHECK_STR_EQ(str(o, "state"), "connecting");
	CHECK_STR_EQ(str(o, "peer"), "PEER");
	CHECK_STR_EQ(str(o, "self"), "SELF");
	CHECK_INT_EQ(json_integer_value(json_object_get(o, "pid")), 42);
	CHECK(json_is_null(json_object_get(o, "rtt_ms")));
	CHECK(json_is_null(json_object_get(o, "peer_addr")));
	CHECK(json_is_null(json_object_get(o, "path")));
	CHECK(json_is_null(json_object_get(o, "connected_since")));
	CHECK_INT_EQ(json_integer_value(json_object_get(o, "reconnects")), 0);
	CHECK_STR_EQ(str(o, "relay_error"), "no record yet");
	CHECK_STR_EQ(str(o, "last_error"), "cannot connect");
	CHECK_STR_EQ(str(o, "relay"), "http://[::1]:8480");
	CHECK_STR_EQ(str(o, "dir"), "/share");
	CHECK_STR_EQ(str(o, "listen"), "[::]:4000");
	CHECK(json_is_null(json_object_get(o, "mount")));
	CHECK_STR_EQ(str(o, "version"), "0.1.0");
	CHECK(json_is_array(json_object_get(o, "warnings")) &&
	      json_array_size(json_object_get(o, "warnings")) == 0);
	CHECK(json_is_integer(json_object_get(o, "files_in_sync")));
	CHECK(json_is_array(json_object_get(o, "transfers")));
	json_decref(o);
}

TEST(connected_direct)
{
	struct daemon_status st = sample();
	json_t *o;

	st.conn.connected = true;
	st.conn.path = CONN_PATH_DIRECT;
	snprintf(st.conn.peer_addr, sizeof(st.conn.peer_addr), "[::1]:40000");
	st.conn.srtt_us = 1500;
	st.conn.connected_since = 1700000000;
	st.conn.reconnects = 2;
	st.warning = "plain http";
	st.mount = "/mnt/share";
	st.listen = "";
	o = control_status_json(&st);
	REQUIRE(o != NULL);
	CHECK_STR_EQ(str(o, "state"), "connected");
	CHECK_STR_EQ(str(o, "peer_addr"), "[::1]:40000");
	CHECK_STR_EQ(str(o, "path"), "direct");
	CHECK(json_number_value(json_object_get(o, "rtt_ms")) == 1.5);
	CHECK_INT_EQ(json_integer_value(json_object_get(o, "connected_since")), 1700000000);
	CHECK_INT_EQ(json_integer_value(json_object_get(o, "reconnects")), 2);
	CHECK(json_is_null(json_object_get(o, "relay_error")));
	CHECK(json_is_null(json_object_get(o, "last_error")));
	CHECK(json_is_null(json_object_get(o, "listen")));
	CHECK_STR_EQ(str(o, "mount"), "/mnt/share");
	CHECK_STR_EQ(json_string_value(json_array_get(json_object_get(o, "warnings"), 0)),
		     "plain http");
	json_decref(o);
}

TEST(relayed_and_stopping)
{
	struct daemon_status st = sample();
	json_t *o;

	st.conn.connected = true;
	st.conn.path = CONN_PATH_RELAYED;
	st.stopping = true;
	o = control_status_json(&st);
	REQUIRE(o != NULL);
	CHECK_STR_EQ(str(o, "state"), "stopping");
	CHECK_STR_EQ(str(o, "path"), "relayed");
	CHECK(json_is_null(json_object_get(o, "rtt_ms"))); /* no sample yet */
	json_decref(o);
}

int main(void)
{
	RUN(connecting);
	RUN(connected_direct);
	RUN(relayed_and_stopping);
	return tap_done();
}
