/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * relay_splice_dial: a plain TCP socket, the upgrade request, and the
 * relay's answer read with MSG_PEEK so that not one byte past the 101's
 * head is taken from the socket (the peer's first bytes may follow it in
 * the same segment). One deadline covers the whole dial.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "base/clock.h"
#include "relay_client/relay_splice.h"
#include "relay_client/relay_splice_tls.h"

#define HOST_MAX 256

struct url_parts {
	char host[HOST_MAX]; /* as typed, for the Host header: "[::1]:8480" */
	char name[HOST_MAX]; /* to resolve: "::1" */
	char port[8];
	char prefix[HOST_MAX]; /* path without a trailing slash, or "" */
	bool tls;	       /* https:// */
};

static int url_split(const char *url, struct url_parts *u, struct err *err)
{
	const char *p, *auth_end, *port = NULL;
	size_t n;

	if (!url)
		goto bad;
	u->tls = strncasecmp(url, "https://", 8) == 0;
	if (!u->tls && strncasecmp(url, "http://", 7) != 0)
		goto bad;
	p = url + (u->tls ? 8 : 7);
	auth_end = p + strcspn(p, "/?#");
	if (auth_end == p || (size_t)(auth_end - p) >= HOST_MAX ||
	    memchr(p, '@', (size_t)(auth_end - p)))
		goto bad;
	memcpy(u->host, p, (size_t)(auth_end - p));
	u->host[auth_end - p] = '\0';
	if (u->host[0] == '[') {
		char *close = strchr(u->host, ']');
		if (!close)
			goto bad;
		n = (size_t)(close - u->host - 1);
		memcpy(u->name, u->host + 1, n);
		u->name[n] = '\0';
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			goto bad;
	} else {
		const char *colon = strchr(u->host, ':');
		n = colon ? (size_t)(colon - u->host) : strlen(u->host);
		memcpy(u->name, u->host, n);
		u->name[n] = '\0';
		if (colon)
			port = colon + 1;
	}
	if (!u->name[0])
		goto bad;
	if (port) {
		if (!*port || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port) ||
		    atoi(port) < 1 || atoi(port) > 65535)
			goto bad;
		snprintf(u->port, sizeof(u->port), "%s", port);
	} else {
		snprintf(u->port, sizeof(u->port), "%s", u->tls ? "443" : "80");
	}
	n = strcspn(auth_end, "?#");
	while (n > 0 && auth_end[n - 1] == '/')
		n--;
	if (n >= sizeof(u->prefix))
		goto bad;
	memcpy(u->prefix, auth_end, n);
	u->prefix[n] = '\0';
	return 0;
bad:
	err_set(err, "the relay URL \"%.200s\" is not http[s]://HOST[:PORT][/PATH]",
		url ? url : "");
	return -EINVAL;
}

int relay_splice_wait_fd(int fd, short events, int cancel_fd, uint64_t deadline_ms)
{
	struct pollfd pfd[2] = {{.fd = fd, .events = events}, {.fd = cancel_fd, .events = POLLIN}};

	for (;;) {
		uint64_t now = clock_mono_ms();
		int r;
		if (now >= deadline_ms)
			return -ETIMEDOUT;
		r = poll(pfd, cancel_fd >= 0 ? 2 : 1, (int)(deadline_ms - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (cancel_fd >= 0 && pfd[1].revents)
			return -ECANCELED;
		if (r > 0)
			return 0;
	}
}

static int connect_one(const struct addrinfo *ai, int cancel_fd, uint64_t deadline_ms, int *ret_fd)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			ai->ai_protocol);
	int r, soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		r = -errno;
		goto fail;
	}
	r = relay_splice_wait_fd(fd, POLLOUT, cancel_fd, deadline_ms);
	if (r < 0)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
		r = -errno;
		goto fail;
	}
	if (soerr) {
		r = -soerr;
		goto fail;
	}
	*ret_fd = fd;
	return 0;
fail:
	close(fd);
	return r;
}

static int send_all(int fd, const char *buf, size_t len, int cancel_fd, uint64_t deadline_ms)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = relay_splice_wait_fd(fd, POLLOUT, cancel_fd, deadline_ms);
			if (r < 0)
				return r;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int relay_splice_refusal(const struct relay_splice_reply *rep, const char *url, struct err *err)
{
	const char *msg = rep->message[0] ? rep->message : "no reason given";
	int r;

	switch (rep->status) {
	case 504:
		r = -ETIMEDOUT;
		break;
	case 409:
		r = -EEXIST;
		break;
	case 429:
		r = -EAGAIN;
		break;
	case 503:
		r = -EBUSY;
		break;
	case 401:
		r = -EACCES;
		break;
	case 404:
	case 405:
		err_set(err,
			"the relay %.200s does not offer relayed connections (HTTP %d); upgrade "
			"tandem-relay there or use another relay",
			url, rep->status);
		return -ENOENT;
	default:
		r = -EPROTO;
		break;
	}
	err_set(err, "the relay %.200s refused the relayed connection: HTTP %d%s%s: %s", url,
		rep->status, rep->error[0] ? " " : "", rep->error, msg);
	return r;
}

/* Takes exactly n bytes (already peeked) off the socket into buf. */
static int consume(int fd, uint8_t *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t k = recv(fd, buf + got, n - got, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		got += (size_t)k;
	}
	return 0;
}

/*
 * Reads the relay's answer. Bytes are peeked first and taken off the socket
 * only up to the end of the answer: the head of a 101 is followed by the
 * peer's bytes, which stay for the caller.
 */
static int reply_read(int fd, const char *url, int cancel_fd, uint64_t deadline_ms,
		      uint32_t *ret_retry_after, struct err *err)
{
	uint8_t *buf = malloc(RELAY_SPLICE_REPLY_MAX);
	struct relay_splice_reply rep;
	size_t have = 0;
	int r;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;
		r = relay_splice_wait_fd(fd, POLLIN, cancel_fd, deadline_ms);
		if (r == -ETIMEDOUT) {
			err_set(err,
				"the relay %.200s did not pair this connection in time (the "
				"peer did not come, or the relay is slow)",
				url);
			goto out;
		}
		if (r < 0)
			goto out;
		n = recv(fd, buf + have, RELAY_SPLICE_REPLY_MAX - have, MSG_PEEK);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			r = -errno;
			err_set(err, "lost the connection to the relay %.200s: %s", url,
				strerror(-r));
			goto out;
		}
		r = relay_splice_reply_parse(buf, have + (size_t)n,
					     n == 0 || have + (size_t)n == RELAY_SPLICE_REPLY_MAX,
					     &rep);
		if (r < 0) {
			err_set(err,
				"the relay %.200s answered the splice request with something "
				"that is not the protocol: %s",
				url, rep.message);
			goto out;
		}
		if (r > 0) {
			/* the whole answer is in: take it (a 101's head, nothing more) */
			size_t take = (size_t)r > have ? (size_t)r - have : 0;
			if (take > (size_t)n)
				take = (size_t)n;
			if (consume(fd, buf + have, take) < 0) {
				r = -EIO;
				err_set(err, "lost the connection to the relay %.200s", url);
				goto out;
			}
			break;
		}
		/* incomplete: what was peeked is all answer, take it */
		if (consume(fd, buf + have, (size_t)n) < 0) {
			r = -EIO;
			err_set(err, "lost the connection to the relay %.200s", url);
			goto out;
		}
		have += (size_t)n;
	}
	if (ret_retry_after)
		*ret_retry_after = rep.retry_after;
	r = rep.status == 101 ? 0 : relay_splice_refusal(&rep, url, err);
out:
	free(buf);
	return r;
}

int relay_splice_dial(const char *url, const uint8_t token[static RELAY_SPLICE_TOKEN_LEN], int side,
		      int timeout_ms, int cancel_fd, int *ret_fd, uint32_t *ret_retry_after,
		      struct err *err)
{
	return relay_splice_dial_ca(url, NULL, token, side, timeout_ms, cancel_fd, ret_fd,
				    ret_retry_after, err);
}

int relay_splice_dial_ca(const char *url, const char *ca_file,
			 const uint8_t token[static RELAY_SPLICE_TOKEN_LEN], int side,
			 int timeout_ms, int cancel_fd, int *ret_fd, uint32_t *ret_retry_after,
			 struct err *err)
{
	uint64_t deadline_ms = clock_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	struct url_parts u;
	char req[RELAY_SPLICE_REQUEST_MAX];
	int fd = -1, r, len, fl;

	err_clear(err);
	if (ret_retry_after)
		*ret_retry_after = 0;
	r = url_split(url, &u, err);
	if (r < 0)
		return r;
	len = relay_splice_request_format(u.host, u.prefix, token, side, req, sizeof(req));
	if (len < 0) {
		err_set(err, "cannot make a splice request for the relay URL \"%.200s\"", url);
		return len;
	}
	if (u.tls) {
		r = relay_splice_tls_dial(url, ca_file, req, (size_t)len, deadline_ms, timeout_ms,
					  cancel_fd, ret_fd, ret_retry_after, err);
		if (r == -ECANCELED)
			err_set(err, "the relayed connection through %.200s was cancelled", url);
		goto out;
	}
	r = getaddrinfo(u.name, u.port, &hints, &res);
	if (r != 0) {
		err_set(err, "cannot resolve the relay's host name \"%.200s\": %s", u.name,
			gai_strerror(r));
		r = -ENXIO;
		goto out;
	}
	r = -EHOSTUNREACH;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		r = connect_one(ai, cancel_fd, deadline_ms, &fd);
		if (r == -ECANCELED || r == -ETIMEDOUT)
			break;
	}
	if (fd < 0) {
		if (r == -ETIMEDOUT)
			err_set(err, "cannot connect to the relay %.200s within %d ms", url,
				timeout_ms);
		else if (r != -ECANCELED)
			err_set(err, "cannot connect to the relay %.200s: %s", url, strerror(-r));
		goto out;
	}
	r = send_all(fd, req, (size_t)len, cancel_fd, deadline_ms);
	if (r < 0) {
		if (r != -ECANCELED)
			err_set(err, "cannot send the splice request to the relay %.200s: %s", url,
				strerror(-r));
		goto out;
	}
	r = reply_read(fd, url, cancel_fd, deadline_ms, ret_retry_after, err);
	if (r < 0)
		goto out;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		r = -errno;
		goto out;
	}
	*ret_fd = fd;
	fd = -1;
	r = 0;
out:
	if (r == -ECANCELED)
		err_set(err, "the relayed connection through %.200s was cancelled", url);
	if (fd >= 0)
		close(fd);
	if (res)
		freeaddrinfo(res);
	sodium_memzero(req, sizeof(req));
	return r;
}
