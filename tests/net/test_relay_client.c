/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The relay client (src/net) against the real tandem-relay process on
 * [::1] with a port the OS picks, plus a few fake servers for the failure
 * cases. Usage: test-relay-client PATH-TO-tandem-relay
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "base/log.h"
#include "relay_client/relay_client.h"
#include "relay_client/relay_publisher.h"
#include "tap.h"

static const char *relay_bin;
static char tmpdir[128];
static struct identity *alice, *bob, *mallory;

struct relay_proc {
	pid_t pid;
	char url[128];
};

/* Starts tandem-relay with extra args and reads "listening on URL". */
static int relay_start(struct relay_proc *rp, const char *const *extra)
{
	const char *argv[32];
	int n = 0, out[2];
	char buf[512];
	size_t len = 0;

	argv[n++] = relay_bin;
	argv[n++] = "--listen";
	argv[n++] = "[::1]:0";
	for (; extra && *extra && n < 30; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	if (pipe2(out, O_CLOEXEC) < 0)
		return -errno;
	rp->pid = fork();
	if (rp->pid < 0)
		return -errno;
	if (rp->pid == 0) {
		dup2(out[1], 1);
		execv(relay_bin, (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	/* Read until a full line, 10 s at most. */
	for (;;) {
		struct pollfd p = { .fd = out[0], .events = POLLIN };
		if (poll(&p, 1, 10000) <= 0)
			break;
		ssize_t r = read(out[0], buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = '\0';
		if (strchr(buf, '\n'))
			break;
	}
	close(out[0]);
	buf[len] = '\0';
	if (sscanf(buf, "listening on %127s", rp->url) != 1) {
		printf("# relay did not start: '%s'\n", buf);
		kill(rp->pid, SIGKILL);
		waitpid(rp->pid, NULL, 0);
		return -EIO;
	}
	return 0;
}

static int relay_stop(struct relay_proc *rp)
{
	int st = 0;

	kill(rp->pid, SIGTERM);
	if (waitpid(rp->pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

static void sample_record(struct peer_record *rec, uint16_t port)
{
	memset(rec, 0, sizeof(*rec));
	rec->flags = RECORD_FLAG_INBOUND;
	rec->naddrs = 1;
	rec->addrs[0].family = 6;
	inet_pton(AF_INET6, "::1", rec->addrs[0].ip);
	rec->addrs[0].port = port;
}

static struct relay_client *client_for(const char *url, const struct relay_client_opts *o)
{
	struct relay_client *c = NULL;
	struct err err;

	if (relay_client_new(url, o, &c, &err) < 0)
		printf("# client: %s\n", err.msg);
	return c;
}

static struct relay_proc relay;

TEST(publish_then_lookup)
{
	struct relay_client *a = client_for(relay.url, NULL), *b = client_for(relay.url, NULL);
	struct relay_result res;
	struct peer_record rec, got;

	REQUIRE(a && b);
	sample_record(&rec, 40001);
	CHECK_INT_EQ(relay_client_publish(a, alice, &rec, 60, time(NULL), &res), 0);
	CHECK_INT_EQ(res.status, 201);
	CHECK_INT_EQ(res.expires_in, 60);
	/* again: replaced */
	rec.addrs[0].port = 40002;
	CHECK_INT_EQ(relay_client_publish(a, alice, &rec, 60, time(NULL), &res), 0);
	CHECK_INT_EQ(res.status, 200);

	memset(&got, 0, sizeof(got));
	CHECK_INT_EQ(relay_client_lookup(b, &alice->fp, time(NULL), &got, &res), 0);
	CHECK(memcmp(got.pk, alice->pk, 32) == 0);
	CHECK_INT_EQ(got.naddrs, 1);
	CHECK_INT_EQ(got.addrs[0].port, 40002);

	/* unknown fingerprint: a clear 404 */
	CHECK_INT_EQ(relay_client_lookup(b, &bob->fp, time(NULL), &got, &res), -ENOENT);
	CHECK(strstr(res.message, "no record for this fingerprint") != NULL);

	/* unpublish: gone */
	CHECK_INT_EQ(relay_client_unpublish(a, alice, time(NULL), &res), 0);
	CHECK_INT_EQ(relay_client_lookup(b, &alice->fp, time(NULL), &got, &res), -ENOENT);
	relay_client_free(a);
	relay_client_free(b);
}

TEST(only_owner_can_replace)
{
	struct relay_client *c = client_for(relay.url, NULL);
	struct relay_result res;
	struct peer_record rec, got;
	uint8_t token[32], secret[32], blob[RECORD_BLOB_MAX];
	uint64_t bucket = derive_bucket(time(NULL), 0);
	int n;

	REQUIRE(c);
	sample_record(&rec, 40003);
	REQUIRE(relay_client_publish(c, alice, &rec, 60, time(NULL), &res) == 0);
	/* mallory knows alice's fingerprint, hence her token, not her write secret */
	derive_relay_token(&alice->fp, bucket, token);
	derive_write_secret(mallory->seed, token, secret);
	n = record_seal(mallory, &rec, bucket, blob, sizeof(blob));
	REQUIRE(n > 0);
	/* she can add a record of her own next to alice's, newer than hers ... */
	sample_record(&rec, 40009);
	n = record_seal(mallory, &rec, bucket, blob, sizeof(blob));
	REQUIRE(n > 0);
	CHECK_INT_EQ(relay_client_put(c, token, secret, blob, (size_t)n, 60, &res), 0);
	/* ... but a lookup keeps alice's, the one with alice's key */
	CHECK_INT_EQ(relay_client_lookup(c, &alice->fp, time(NULL), &got, &res), 0);
	CHECK_INT_EQ(got.addrs[0].port, 40003);
	CHECK(memcmp(got.pk, alice->pk, sizeof(got.pk)) == 0);
	/* and deleting deletes only her own */
	CHECK_INT_EQ(relay_client_delete(c, token, secret, &res), 0);
	CHECK_INT_EQ(relay_client_delete(c, token, secret, &res), -EPERM);
	CHECK(strstr(res.message, "403") != NULL);
	/* alice's record is intact */
	CHECK_INT_EQ(relay_client_lookup(c, &alice->fp, time(NULL), &got, &res), 0);
	CHECK_INT_EQ(got.addrs[0].port, 40003);
	CHECK_INT_EQ(relay_client_unpublish(c, alice, time(NULL), &res), 0);
	relay_client_free(c);
}

TEST(impostor_record_rejected)
{
	struct relay_client *c = client_for(relay.url, NULL);
	struct relay_result res;
	struct peer_record rec, got;
	struct identity fake;
	uint8_t token[32], secret[32], blob[RECORD_BLOB_MAX];
	uint64_t bucket = derive_bucket(time(NULL), 0);
	int n;

	REQUIRE(c);
	/* bob is offline; mallory stores a record under bob's token, sealed
	 * with bob's record key (she knows bob's fingerprint) but her own key */
	fake = *mallory;
	fake.fp = bob->fp;
	sample_record(&rec, 40004);
	n = record_seal(&fake, &rec, bucket, blob, sizeof(blob));
	REQUIRE(n > 0);
	derive_relay_token(&bob->fp, bucket, token);
	derive_write_secret(mallory->seed, token, secret);
	REQUIRE(relay_client_put(c, token, secret, blob, (size_t)n, 60, &res) == 0);
	CHECK_INT_EQ(relay_client_lookup(c, &bob->fp, time(NULL), &got, &res), -EKEYREJECTED);
	CHECK(strstr(res.message, "impostor") != NULL);
	/* garbage under the token */
	memset(blob, 7, 100);
	REQUIRE(relay_client_put(c, token, secret, blob, 100, 60, &res) == 0);
	CHECK_INT_EQ(relay_client_lookup(c, &bob->fp, time(NULL), &got, &res), -EPROTONOSUPPORT);
	blob[0] = 1;
	REQUIRE(relay_client_put(c, token, secret, blob, 100, 60, &res) == 0);
	CHECK_INT_EQ(relay_client_lookup(c, &bob->fp, time(NULL), &got, &res), -EBADMSG);
	CHECK(strstr(res.message, "not decrypt") != NULL);
	/* bob comes online: his record is found next to the garbage */
	sample_record(&rec, 40005);
	REQUIRE(relay_client_publish(c, bob, &rec, 60, time(NULL), &res) == 0);
	CHECK_INT_EQ(relay_client_lookup(c, &bob->fp, time(NULL), &got, &res), 0);
	CHECK_INT_EQ(got.addrs[0].port, 40005);
	CHECK_INT_EQ(relay_client_unpublish(c, bob, time(NULL), &res), 0);
	CHECK_INT_EQ(relay_client_delete(c, token, secret, &res), 0);
	relay_client_free(c);
}

TEST(previous_bucket_is_found)
{
	struct relay_client_opts o;
	struct relay_client *c;
	struct relay_result res;
	struct peer_record rec, got;
	time_t t0;

	relay_client_opts_init(&o);
	o.bucket_seconds = 2;
	c = client_for(relay.url, &o);
	REQUIRE(c);
	sample_record(&rec, 40005);
	t0 = time(NULL);
	REQUIRE(relay_client_publish(c, alice, &rec, 60, t0, &res) == 0);
	/* one bucket later: found in the previous bucket */
	CHECK_INT_EQ(relay_client_lookup(c, &alice->fp, t0 + 2, &got, &res), 0);
	/* two buckets later: not any more */
	CHECK_INT_EQ(relay_client_lookup(c, &alice->fp, t0 + 4, &got, &res), -ENOENT);
	CHECK_INT_EQ(relay_client_unpublish(c, alice, t0, &res), 0);
	relay_client_free(c);
}

TEST(next_bucket_is_found)
{
	struct relay_client_opts o;
	struct relay_client *c;
	struct relay_result res;
	struct peer_record rec, got;
	time_t t0;

	relay_client_opts_init(&o);
	o.bucket_seconds = 2;
	c = client_for(relay.url, &o);
	REQUIRE(c);
	sample_record(&rec, 40006);
	t0 = time(NULL);
	/* alice's clock is one bucket ahead of ours: found in the next bucket */
	REQUIRE(relay_client_publish(c, alice, &rec, 60, t0 + 2, &res) == 0);
	CHECK_INT_EQ(relay_client_lookup(c, &alice->fp, t0, &got, &res), 0);
	CHECK_INT_EQ(got.addrs[0].port, 40006);
	CHECK_INT_EQ(relay_client_unpublish(c, alice, t0 + 2, &res), 0);
	/* two buckets ahead: not */
	REQUIRE(relay_client_publish(c, alice, &rec, 60, t0 + 4, &res) == 0);
	CHECK_INT_EQ(relay_client_lookup(c, &alice->fp, t0, &got, &res), -ENOENT);
	CHECK_INT_EQ(relay_client_unpublish(c, alice, t0 + 4, &res), 0);
	relay_client_free(c);
}

TEST(clock_offset_shifts_now)
{
	struct relay_client_opts o;
	struct relay_client *c;
	time_t t0;

	relay_client_opts_init(&o);
	o.clock_offset_s = 3600;
	c = client_for(relay.url, &o);
	REQUIRE(c);
	t0 = time(NULL);
	time_t now = relay_client_now(c);
	CHECK(now >= t0 + 3600 && now <= time(NULL) + 3600);
	relay_client_free(c);
}

struct late_publish {
	const char *url;
	unsigned delay_ms;
	int result;
};

static void *late_publish_main(void *arg)
{
	struct late_publish *lp = arg;
	struct relay_client *c = client_for(lp->url, NULL);
	struct relay_result res;
	struct peer_record rec;

	poll(NULL, 0, (int)lp->delay_ms);
	sample_record(&rec, 40006);
	lp->result = c ? relay_client_publish(c, bob, &rec, 60, time(NULL), &res) : -ENOMEM;
	relay_client_free(c);
	return NULL;
}

TEST(lookup_retries_until_published)
{
	struct relay_client_opts o;
	struct relay_client *c;
	struct relay_result res;
	struct peer_record got;
	struct late_publish lp = { relay.url, 1200, -1 };
	pthread_t t;

	relay_client_opts_init(&o);
	o.retry_base_ms = 100;
	o.retry_max_ms = 400;
	c = client_for(relay.url, &o);
	REQUIRE(c);
	REQUIRE(pthread_create(&t, NULL, late_publish_main, &lp) == 0);
	CHECK_INT_EQ(relay_client_lookup_retry(c, &bob->fp, 100, &got, &res), 0);
	pthread_join(t, NULL);
	CHECK_INT_EQ(lp.result, 0);
	CHECK_INT_EQ(got.addrs[0].port, 40006);
	CHECK_INT_EQ(relay_client_unpublish(c, bob, time(NULL), &res), 0);
	/* bounded attempts end with the last error */
	CHECK_INT_EQ(relay_client_lookup_retry(c, &bob->fp, 2, &got, &res), -ENOENT);
	relay_client_free(c);
}

TEST(lookup_retry_cancelled)
{
	struct relay_client_opts o;
	struct relay_client *c;
	struct relay_result res;
	struct peer_record got;
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t one = 1;

	REQUIRE(efd >= 0);
	relay_client_opts_init(&o);
	o.cancel_fd = efd;
	o.retry_base_ms = 60000;
	o.retry_max_ms = 60000;
	c = client_for(relay.url, &o);
	REQUIRE(c);
	REQUIRE(write(efd, &one, sizeof(one)) == sizeof(one));
	/* would wait a minute between attempts; the cancel fd ends it */
	CHECK_INT_EQ(relay_client_lookup_retry(c, &mallory->fp, 0, &got, &res), -ECANCELED);
	relay_client_free(c);
	close(efd);
}

TEST(publisher_refreshes_and_cleans_up)
{
	struct relay_client *c = client_for(relay.url, NULL);
	struct relay_publisher *pub = NULL;
	struct relay_publisher_status st;
	struct relay_result res;
	struct peer_record rec, got;
	struct err err;

	REQUIRE(c);
	sample_record(&rec, 40007);
	/* TTL 3 s: without refreshes the record would expire after 3 s */
	REQUIRE(relay_publisher_start(relay.url, NULL, alice, &rec, 3, &pub, &err) == 0);
	for (int i = 0; i < 50; i++) {
		relay_publisher_get_status(pub, &st);
		if (st.publishes >= 1)
			break;
		poll(NULL, 0, 100);
	}
	CHECK(st.publishes >= 1);
	/* after 3 TTLs the record is still there, and was refreshed */
	poll(NULL, 0, 9000);
	CHECK_INT_EQ(relay_client_lookup(c, &alice->fp, time(NULL), &got, &res), 0);
	relay_publisher_get_status(pub, &st);
	CHECK(st.publishes >= 3);
	CHECK_INT_EQ(st.last_error, 0);
	/* an update is published at once */
	rec.addrs[0].port = 40008;
	relay_publisher_update(pub, &rec);
	int seen = 0;
	for (int i = 0; i < 50 && !seen; i++) {
		if (relay_client_lookup(c, &alice->fp, time(NULL), &got, &res) == 0 &&
		    got.addrs[0].port == 40008)
			seen = 1;
		else
			poll(NULL, 0, 100);
	}
	CHECK(seen);
	relay_publisher_stop(pub);
	CHECK_INT_EQ(relay_client_lookup(c, &alice->fp, time(NULL), &got, &res), -ENOENT);
	relay_client_free(c);
}

TEST(unreachable_relay)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	socklen_t len = sizeof(sa);
	struct relay_client *c;
	struct relay_result res;
	struct peer_record got;
	struct err err;
	char url[64];
	int fd;

	/* a port that was free a moment ago and has no listener */
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin6_addr = in6addr_loopback;
	REQUIRE(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	REQUIRE(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	close(fd);
	snprintf(url, sizeof(url), "http://[::1]:%u", ntohs(sa.sin6_port));
	c = client_for(url, NULL);
	REQUIRE(c);
	CHECK_INT_EQ(relay_client_lookup(c, &alice->fp, time(NULL), &got, &res), -ECONNREFUSED);
	CHECK(strstr(res.message, "cannot reach the relay") != NULL);
	printf("# %s\n", res.message);
	relay_client_free(c);

	CHECK_INT_EQ(relay_client_new("ftp://x", NULL, &c, &err), -EINVAL);
	CHECK(strstr(err.msg, "http://") != NULL);
	CHECK_INT_EQ(relay_client_new("http://", NULL, &c, &err), -EINVAL);
	CHECK_INT_EQ(relay_client_new("http://a b", NULL, &c, &err), -EINVAL);
	CHECK_INT_EQ(relay_client_new(NULL, NULL, &c, &err), -EINVAL);
}

/* A fake server: answers every connection with a canned reply. */
struct fake {
	int fd;
	const char *reply;
	size_t reply_len;
	int conns;
	struct timespec when[8];
	pthread_t t;
};

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		int c = accept4(f->fd, NULL, NULL, SOCK_CLOEXEC);
		char buf[4096];
		if (c < 0)
			return NULL;
		if (f->conns < 8)
			clock_gettime(CLOCK_MONOTONIC, &f->when[f->conns]);
		f->conns++;
		/* read the request headers (best effort), then answer */
		struct pollfd p = { .fd = c, .events = POLLIN };
		if (poll(&p, 1, 2000) > 0) {
			ssize_t n = read(c, buf, sizeof(buf));
			(void)n;
		}
		size_t off = 0;
		while (off < f->reply_len) {
			ssize_t n = send(c, f->reply + off, f->reply_len - off, MSG_NOSIGNAL);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		shutdown(c, SHUT_WR);
		poll(NULL, 0, 50);
		close(c);
	}
}

static int fake_start(struct fake *f, const char *reply, size_t len, char url[static 64])
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	socklen_t sl = sizeof(sa);

	memset(f, 0, sizeof(*f));
	f->reply = reply;
	f->reply_len = len;
	f->fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin6_addr = in6addr_loopback;
	if (bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(f->fd, 8) < 0 ||
	    getsockname(f->fd, (struct sockaddr *)&sa, &sl) < 0)
		return -errno;
	snprintf(url, 64, "http://[::1]:%u", ntohs(sa.sin6_port));
	return pthread_create(&f->t, NULL, fake_main, f) == 0 ? 0 : -EAGAIN;
}

static void fake_stop(struct fake *f)
{
	shutdown(f->fd, SHUT_RDWR);
	pthread_join(f->t, NULL);
	close(f->fd);
}

static int lookup_against(const char *reply, size_t len, struct relay_result *res)
{
	struct fake f;
	char url[64];
	struct peer_record got;
	struct relay_client_opts o;
	int r;

	relay_client_opts_init(&o);
	o.timeout_ms = 3000;
	if (fake_start(&f, reply, len, url) < 0)
		return -999;
	struct relay_client *c = client_for(url, &o);
	r = c ? relay_client_lookup(c, &alice->fp, time(NULL), &got, res) : -ENOMEM;
	relay_client_free(c);
	fake_stop(&f);
	return r;
}

TEST(malformed_replies)
{
	struct relay_result res;
	static const char notjson[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
	static const char noblob[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
	static const char garbage[] = "SSH-2.0-OpenSSH_9.2\r\n";
	static char huge[RELAY_REPLY_MAX + 4096];

	CHECK_INT_EQ(lookup_against(notjson, sizeof(notjson) - 1, &res), -EPROTO);
	CHECK(strstr(res.message, "malformed reply") != NULL);
	printf("# %s\n", res.message);
	CHECK_INT_EQ(lookup_against(noblob, sizeof(noblob) - 1, &res), -EPROTO);
	CHECK(strstr(res.message, "blob") != NULL);
	CHECK_INT_EQ(lookup_against(garbage, sizeof(garbage) - 1, &res), -EPROTO);
	printf("# %s\n", res.message);
	int n = snprintf(huge, sizeof(huge), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
			 RELAY_REPLY_MAX + 1);
	memset(huge + n, '{', RELAY_REPLY_MAX + 1);
	CHECK_INT_EQ(lookup_against(huge, (size_t)n + RELAY_REPLY_MAX + 1, &res), -EPROTO);
	CHECK(strstr(res.message, "larger than") != NULL);
	/* an unexpected status */
	static const char teapot[] = "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n";
	CHECK_INT_EQ(lookup_against(teapot, sizeof(teapot) - 1, &res), -EPROTO);
	CHECK(strstr(res.message, "418") != NULL);
}

/* A port bound (not listening) with SO_REUSEADDR, as the daemon reserves
 * its punch port. Returns the fd; *port. */
static int reserve_port(uint16_t *port)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
	socklen_t sl = sizeof(sa);
	int on = 1, fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	*port = ntohs(sa.sin6_port);
	return fd;
}

/* Requests from the punch port: the relay's X-Tandem-Observed names that
 * port; a fresh client from the same port to the same relay works again
 * and again (no TIME_WAIT of ours is left in the way). */
TEST(observed_from_punch_port)
{
	struct relay_client_opts o;
	struct relay_result res;
	struct peer_record rec;
	char txt[RECORD_ADDR_TEXT_MAX], want[RECORD_ADDR_TEXT_MAX];
	uint16_t port = 0;
	int hold = reserve_port(&port);

	REQUIRE(hold >= 0);
	relay_client_opts_init(&o);
	o.local_port = port;
	snprintf(want, sizeof(want), "[::1]:%u", port);
	sample_record(&rec, 40011);
	for (int i = 0; i < 3; i++) {
		struct relay_client *c = client_for(relay.url, &o);
		REQUIRE(c);
		CHECK_INT_EQ(relay_client_publish(c, alice, &rec, 60, time(NULL), &res), 0);
		CHECK(res.has_observed);
		CHECK(!res.observed_bad);
		record_addr_format(&res.observed, txt);
		CHECK_STR_EQ(txt, want);
		relay_client_free(c); /* closes its connection: a new one next time */
	}
	close(hold);
}

/* A hostile relay's header is refused, not half-read: malformed, or two. */
TEST(observed_header_malformed)
{
	static const char bad[] = "HTTP/1.1 404 Not Found\r\nX-Tandem-Observed: 198.51.100.50:99999"
				  "\r\nContent-Length: 0\r\n\r\n";
	static const char two[] = "HTTP/1.1 404 Not Found\r\nX-Tandem-Observed: 198.51.100.50:1"
				  "\r\nX-Tandem-Observed: 198.51.100.51:2\r\nContent-Length: 0\r\n\r\n";
	static const char good[] = "HTTP/1.1 404 Not Found\r\nx-tandem-observed:  198.51.100.50:1"
				   "\r\nContent-Length: 0\r\n\r\n";
	struct relay_result res;

	CHECK_INT_EQ(lookup_against(bad, sizeof(bad) - 1, &res), -ENOENT);
	CHECK(!res.has_observed && res.observed_bad);
	CHECK_INT_EQ(lookup_against(two, sizeof(two) - 1, &res), -ENOENT);
	CHECK(!res.has_observed && res.observed_bad);
	CHECK_INT_EQ(lookup_against(good, sizeof(good) - 1, &res), -ENOENT);
	CHECK(res.has_observed && !res.observed_bad);
	CHECK_INT_EQ(res.observed.port, 1);
}

TEST(retry_after_is_honoured)
{
	static const char busy[] = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"
				   "Content-Length: 0\r\nConnection: close\r\n\r\n";
	struct relay_client_opts o;
	struct relay_result res;
	struct peer_record got;
	struct fake f;
	char url[64];

	relay_client_opts_init(&o);
	o.retry_base_ms = 10; /* our own backoff alone would come back at once */
	o.retry_max_ms = 20;
	REQUIRE(fake_start(&f, busy, sizeof(busy) - 1, url) == 0);
	struct relay_client *c = client_for(url, &o);
	REQUIRE(c);
	CHECK_INT_EQ(relay_client_lookup_retry(c, &alice->fp, 2, &got, &res), -EAGAIN);
	CHECK_INT_EQ(res.retry_after, 1);
	CHECK(strstr(res.message, "rate-limiting") != NULL);
	relay_client_free(c);
	fake_stop(&f);
	/* 2 attempts, each of which asks the current bucket only (429 is not 404) */
	CHECK_INT_EQ(f.conns, 2);
	if (f.conns >= 2) {
		double gap = (double)(f.when[1].tv_sec - f.when[0].tv_sec) +
			     (double)(f.when[1].tv_nsec - f.when[0].tv_nsec) / 1e9;
		printf("# second attempt after %.3f s\n", gap);
		CHECK(gap >= 0.99); /* never sooner than the relay asked */
	}
}

TEST(tls)
{
	char cert[256], key[256], cmd[1024];
	struct relay_proc tr;
	struct relay_client_opts o;
	struct relay_result res;
	struct peer_record rec, got;

	snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 "
		 "-subj /CN=localhost -addext subjectAltName=IP:::1 >/dev/null 2>&1",
		 key, cert);
	REQUIRE(system(cmd) == 0);
	const char *extra[] = { "--tls-cert", cert, "--tls-key", key, NULL };
	REQUIRE(relay_start(&tr, extra) == 0);
	CHECK(strncmp(tr.url, "https://", 8) == 0);

	/* not trusted: a clear TLS error */
	relay_client_opts_init(&o);
	struct relay_client *c = client_for(tr.url, &o);
	REQUIRE(c);
	CHECK_INT_EQ(relay_client_lookup(c, &alice->fp, time(NULL), &got, &res), -EKEYREJECTED);
	CHECK(strstr(res.message, "TLS") != NULL);
	printf("# %s\n", res.message);
	relay_client_free(c);

	/* trusted: works */
	o.ca_file = cert;
	c = client_for(tr.url, &o);
	REQUIRE(c);
	sample_record(&rec, 40009);
	CHECK_INT_EQ(relay_client_publish(c, alice, &rec, 60, time(NULL), &res), 0);
	CHECK_INT_EQ(relay_client_lookup(c, &alice->fp, time(NULL), &got, &res), 0);
	CHECK_INT_EQ(got.addrs[0].port, 40009);
	relay_client_free(c);

	/* plain http against the https port: a clear error, not a hang */
	char url[160];
	snprintf(url, sizeof(url), "http://%s", tr.url + 8);
	c = client_for(url, NULL);
	REQUIRE(c);
	CHECK(relay_client_lookup(c, &alice->fp, time(NULL), &got, &res) < 0);
	printf("# %s\n", res.message);
	relay_client_free(c);
	CHECK_INT_EQ(relay_stop(&tr), 0);
}

int main(int argc, char **argv)
{
	char cmd[256];

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH-TO-tandem-relay\n", argv[0]);
		return 2;
	}
	relay_bin = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return 99;
	log_set_level(LOG_LVL_WARN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tandem-test-client-XXXXXX");
	if (!mkdtemp(tmpdir))
		return 99;
	if (identity_new(NULL, &alice) < 0 || identity_new(NULL, &bob) < 0 ||
	    identity_new(NULL, &mallory) < 0)
		return 99;
	/* many requests from one address: lift the per-client rate limit */
	static const char *const rate[] = { "--rate", "100000", NULL };
	if (relay_start(&relay, rate) < 0) {
		printf("Bail out! cannot start %s\n", relay_bin);
		return 1;
	}
	RUN(publish_then_lookup);
	RUN(only_owner_can_replace);
	RUN(impostor_record_rejected);
	RUN(previous_bucket_is_found);
	RUN(next_bucket_is_found);
	RUN(clock_offset_shifts_now);
	RUN(lookup_retries_until_published);
	RUN(lookup_retry_cancelled);
	RUN(publisher_refreshes_and_cleans_up);
	RUN(unreachable_relay);
	RUN(malformed_replies);
	RUN(observed_from_punch_port);
	RUN(observed_header_malformed);
	RUN(retry_after_is_honoured);
	RUN(tls);
	if (relay_stop(&relay) < 0) {
		printf("not ok %d - relay exits 0 on SIGTERM\n", ++tap_n);
		tap_failed_total++;
	}
	identity_free(alice);
	identity_free(bob);
	identity_free(mallory);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		return 99;
	return tap_done();
}
