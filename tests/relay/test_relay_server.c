/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The relay as a library (relay.h), in-process as `tandem selftest` uses it:
 * start on [::1] with a port the OS picks, serve, hand out the stored
 * records, stop, start again on the same port, and leave no descriptor or
 * thread behind.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/encoding.h"
#include "base/log.h"
#include "relay.h"
#include "tap.h"

static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static int thread_count(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int n = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* One request over [::1]:port; returns the status (0 on failure), body in out. */
static int http(unsigned port, const char *request, char *out, size_t outlen)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 5};
	size_t len = 0;
	int fd, status = 0;
	char *body;

	out[0] = '\0';
	sa.sin6_addr = in6addr_loopback;
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, request, strlen(request)) != (ssize_t)strlen(request))
		goto out;
	for (;;) {
		ssize_t n = read(fd, out + len, outlen - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == outlen - 1)
			break;
	}
	out[len] = '\0';
	sscanf(out, "HTTP/1.1 %d", &status);
	body = strstr(out, "\r\n\r\n");
	if (body)
		memmove(out, body + 4, strlen(body + 4) + 1);
out:
	close(fd);
	return status;
}

struct seen {
	int records;
	int token_ok, blob_ok;
	int64_t expires_in_ms;
};

static uint8_t token[32], blob[3] = {7, 8, 9};

static void on_record(const uint8_t *t, size_t tlen, const uint8_t *b, size_t blen, void *ud)
{
	struct seen *s = ud;

	s->records++;
	s->token_ok = tlen == 32 && memcmp(t, token, 32) == 0;
	s->blob_ok = blen == 3 && memcmp(b, blob, 3) == 0;
}

static void on_info(const struct relay_record_info *rec, void *ud)
{
	struct seen *s = ud;

	s->records++;
	s->expires_in_ms = rec->expires_in_ms;
}

TEST(lifecycle)
{
	struct relay_config cfg;
	struct relay_server *srv = NULL, *other = NULL;
	struct seen seen = {0};
	char tok64[64], sec64[64], req[512], reply[2048], url[64];
	uint8_t secret[32];
	unsigned port;
	int fds = fd_count(), threads = thread_count();

	memset(token, 0x5a, sizeof(token));
	memset(secret, 0xa5, sizeof(secret));
	b64url_encode(token, 32, tok64, sizeof(tok64));
	b64url_encode(secret, 32, sec64, sizeof(sec64));

	relay_config_init(&cfg);
	cfg.listen[cfg.nlisten++] = "[::1]:0";
	cfg.rate = 0;
	REQUIRE(relay_server_new(&cfg, &srv) == 0);
	CHECK_INT_EQ(relay_server_listener_count(srv), 1);
	CHECK(relay_server_url(srv, 0) == NULL);
	REQUIRE(relay_server_start(srv) == 0);
	CHECK_INT_EQ(relay_server_start(srv), -EALREADY);
	port = relay_server_port(srv, 0);
	CHECK(port > 0);
	snprintf(url, sizeof(url), "http://[::1]:%u", port);
	CHECK_STR_EQ(relay_server_url(srv, 0), url);
	CHECK(relay_server_url(srv, 1) == NULL);

	snprintf(req, sizeof(req),
		 "POST /v1/records HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		 "Authorization: Bearer %s\r\nX-Tandem-Write-Secret: %s\r\n"
		 "Content-Length: 24\r\n\r\n{\"blob\":\"BwgJ\",\"ttl\":60}",
		 tok64, sec64);
	CHECK_INT_EQ(http(port, req, reply, sizeof(reply)), 201);
	CHECK_STR_EQ(reply, "{\"expires_in\":60}");

	/* the stored state: raw token and blob, nothing else */
	relay_server_foreach_record(srv, on_record, &seen);
	CHECK_INT_EQ(seen.records, 1);
	CHECK(seen.token_ok && seen.blob_ok);
	memset(&seen, 0, sizeof(seen));
	relay_server_foreach_record_info(srv, on_info, &seen);
	CHECK_INT_EQ(seen.records, 1);
	CHECK(seen.expires_in_ms > 55000 && seen.expires_in_ms <= 60000);

	/* a second server cannot take the same port */
	cfg.listen[0] = url + 7;
	REQUIRE(relay_server_new(&cfg, &other) == 0);
	CHECK_INT_EQ(relay_server_start(other), -EADDRINUSE);
	relay_server_free(other);
	cfg.listen[0] = "[::1]:0";

	/* stopped: nothing listens; started again: same port, same records */
	relay_server_stop(srv);
	CHECK_INT_EQ(relay_server_port(srv, 0), 0);
	CHECK(relay_server_url(srv, 0) == NULL);
	CHECK_INT_EQ(http(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", reply, sizeof(reply)),
		     0);
	relay_server_stop(srv);
	REQUIRE(relay_server_start(srv) == 0);
	CHECK_INT_EQ(relay_server_port(srv, 0), port);
	snprintf(req, sizeof(req),
		 "GET /v1/records HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		 "Authorization: Bearer %s\r\n\r\n",
		 tok64);
	CHECK_INT_EQ(http(port, req, reply, sizeof(reply)), 200);
	CHECK(strstr(reply, "\"blob\":\"BwgJ\"") != NULL);
	relay_server_free(srv);

	/* everything released */
	CHECK_INT_EQ(fd_count(), fds);
	CHECK_INT_EQ(thread_count(), threads);
}

TEST(bad_configurations)
{
	struct relay_config cfg;
	struct relay_server *srv = NULL;
	char err[256];

	relay_config_init(&cfg);
	CHECK_INT_EQ(relay_config_check(&cfg, err, sizeof(err)), 0);
	cfg.default_ttl = 7200;
	CHECK_INT_EQ(relay_config_check(&cfg, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "default TTL") != NULL);
	CHECK_INT_EQ(relay_server_new(&cfg, &srv), -EINVAL);
	CHECK(srv == NULL);

	relay_config_init(&cfg);
	cfg.listen[cfg.nlisten++] = "localhost:80";
	CHECK_INT_EQ(relay_config_check(&cfg, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "\"localhost:80\"") != NULL);

	relay_config_init(&cfg);
	cfg.tls_key = "key.pem";
	CHECK_INT_EQ(relay_config_check(&cfg, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "--tls-cert") != NULL);

	/* a missing TLS file fails at start, and nothing is left open */
	int fds = fd_count();
	relay_config_init(&cfg);
	cfg.listen[cfg.nlisten++] = "[::1]:0";
	cfg.tls_cert = "/nonexistent/cert.pem";
	cfg.tls_key = "/nonexistent/key.pem";
	REQUIRE(relay_server_new(&cfg, &srv) == 0);
	CHECK_INT_EQ(relay_server_start(srv), -ENOENT);
	CHECK_INT_EQ(relay_server_port(srv, 0), 0);
	relay_server_free(srv);
	CHECK_INT_EQ(fd_count(), fds);
}

static void *nothing(void *arg)
{
	return arg;
}

int main(void)
{
	pthread_t t;

	/* a first thread, so that runtime helpers (TSan's) exist before counting */
	if (pthread_create(&t, NULL, nothing, NULL) == 0)
		pthread_join(t, NULL);
	log_set_ident("test-relay-server");
	RUN(lifecycle);
	RUN(bad_configurations);
	return tap_done();
}
