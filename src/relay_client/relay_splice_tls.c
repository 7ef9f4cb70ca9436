/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * relay_splice_dial over https:// (relay_splice_tls.h).
 *
 * libcurl makes the TLS connection (CURLOPT_CONNECT_ONLY: TCP, TLS
 * handshake, certificate check, nothing else); the upgrade request and
 * the relay's answer go through curl_easy_send/curl_easy_recv and the
 * sans-IO relay_splice_request_format/relay_splice_reply_parse. The
 * daemon wants a plain socket for its event loop, so after the 101 a
 * pump thread copies bytes between the TLS session and one end of a
 * socketpair(AF_UNIX, SOCK_STREAM); the caller gets the other end.
 *
 * The pump holds at most PUMP_BUF bytes per direction (plus what the
 * socketpair and the TLS library buffer). An end of one direction is
 * passed on as a shutdown(SHUT_WR) once that direction is drained: the
 * relay's end (TLS close or TCP FIN) as a shutdown of the socketpair, the
 * caller's shutdown(SHUT_WR) as a TCP shutdown towards the relay (libcurl
 * cannot send a lone close_notify; the relay sees the end of the stream
 * either way). The thread ends, and frees the TLS session and its end of
 * the socketpair, when both directions have ended, on an error of either
 * side, or when the caller closes its end (POLLHUP).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "base/clock.h"
#include "relay_client/relay_splice_tls.h"
#include "relay_client/relay_url.h"

#define PUMP_BUF (16 * 1024) /* per direction; one TLS record */

struct tls_pump {
	CURL *h;
	curl_socket_t net;    /* libcurl's socket, for poll only */
	int local;	      /* our end of the socketpair */
	uint8_t in[PUMP_BUF]; /* relay -> caller */
	size_t in_off, in_len;
	uint8_t out[PUMP_BUF]; /* caller -> relay */
	size_t out_off, out_len;
	bool net_eof, local_eof;   /* that source has ended */
	bool net_shut, local_shut; /* that destination was shut down for writing */
	bool closing;		   /* the caller closed its end: drain what it wrote, then end */
};

struct progress {
	int cancel_fd;
	uint64_t deadline_ms;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_status;

static void curl_init_once(void)
{
	curl_init_status = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int on_progress(void *p, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
	const struct progress *pr = p;
	struct pollfd pfd = {.fd = pr->cancel_fd, .events = POLLIN};

	(void)dlt;
	(void)dln;
	(void)ult;
	(void)uln;
	if (clock_mono_ms() >= pr->deadline_ms)
		return 1;
	return pr->cancel_fd >= 0 && poll(&pfd, 1, 0) > 0 ? 1 : 0;
}

/* libcurl's failure to connect as -errno and a sentence. */
static int connect_error(CURLcode rc, const char *errbuf, const char *url, int timeout_ms,
			 const struct progress *pr, struct err *err)
{
	const char *d = errbuf[0] ? errbuf : curl_easy_strerror(rc);

	if (relay_url_tls_failed(rc)) {
		err_set(err,
			"TLS with the relay %.200s failed: %s; check that the URL names the "
			"relay's real host and that its certificate is valid and trusted here",
			url, d);
		return -EKEYREJECTED;
	}
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		err_set(err, "cannot resolve the relay's host name in %.200s: %s", url, d);
		return -ENXIO;
	case CURLE_COULDNT_CONNECT:
		err_set(err, "cannot connect to the relay %.200s: %s", url, d);
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		err_set(err, "cannot connect to the relay %.200s within %d ms", url, timeout_ms);
		return -ETIMEDOUT;
	case CURLE_ABORTED_BY_CALLBACK:
		if (clock_mono_ms() >= pr->deadline_ms) {
			err_set(err, "cannot connect to the relay %.200s within %d ms", url,
				timeout_ms);
			return -ETIMEDOUT;
		}
		return -ECANCELED;
	case CURLE_URL_MALFORMAT:
		err_set(err, "the relay URL \"%.200s\" is not usable: %s", url, d);
		return -EINVAL;
	default:
		err_set(err, "cannot connect to the relay %.200s: %s", url, d);
		return -EIO;
	}
}

/* Sends len bytes through the TLS session. */
static int tls_send_all(CURL *h, curl_socket_t net, const char *buf, size_t len, int cancel_fd,
			uint64_t deadline_ms)
{
	while (len > 0) {
		size_t n = 0;
		CURLcode rc = curl_easy_send(h, buf, len, &n);
		if (rc == CURLE_AGAIN) {
			int r = relay_splice_wait_fd(net, POLLOUT, cancel_fd, deadline_ms);
			if (r < 0)
				return r;
			continue;
		}
		if (rc != CURLE_OK)
			return -EIO;
		buf += n;
		len -= n;
	}
	return 0;
}

/*
 * Reads the relay's answer into buf (RELAY_SPLICE_REPLY_MAX bytes). TLS
 * cannot peek: what came behind a 101's head is the peer's first bytes,
 * left in buf at *ret_extra (*ret_extra_len bytes) for the pump.
 */
static int tls_reply_read(CURL *h, curl_socket_t net, uint8_t *buf, const char *url, int cancel_fd,
			  uint64_t deadline_ms, size_t *ret_extra, size_t *ret_extra_len,
			  uint32_t *ret_retry_after, struct err *err)
{
	struct relay_splice_reply rep;
	size_t have = 0;
	int r;

	for (;;) {
		size_t n = 0;
		bool eof = false;
		CURLcode rc = curl_easy_recv(h, buf + have, RELAY_SPLICE_REPLY_MAX - have, &n);
		if (rc == CURLE_AGAIN) {
			r = relay_splice_wait_fd(net, POLLIN, cancel_fd, deadline_ms);
			if (r == -ETIMEDOUT)
				err_set(err,
					"the relay %.200s did not pair this connection in time "
					"(the "
					"peer did not come, or the relay is slow)",
					url);
			if (r < 0)
				return r;
			continue;
		}
		if (rc != CURLE_OK && have == 0) {
			err_set(err, "lost the connection to the relay %.200s: %s", url,
				curl_easy_strerror(rc));
			return -EIO;
		}
		if (rc != CURLE_OK || n == 0)
			eof = true;
		have += n;
		r = relay_splice_reply_parse(buf, have, eof || have == RELAY_SPLICE_REPLY_MAX,
					     &rep);
		if (r < 0) {
			err_set(err,
				"the relay %.200s answered the splice request with something "
				"that is not the protocol: %s",
				url, rep.message);
			return r;
		}
		if (r > 0)
			break;
		if (eof) {
			err_set(err, "the relay %.200s closed the connection without an answer",
				url);
			return -EPROTO;
		}
	}
	if (ret_retry_after)
		*ret_retry_after = rep.retry_after;
	if (rep.status != 101)
		return relay_splice_refusal(&rep, url, err);
	*ret_extra = (size_t)r;
	*ret_extra_len = have - (size_t)r;
	return 0;
}

static void pump_free(struct tls_pump *p)
{
	if (!p)
		return;
	if (p->h)
		curl_easy_cleanup(p->h);
	if (p->local >= 0)
		close(p->local);
	free(p);
}

static bool would_block(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

/* One round of moves. Returns 1 if something moved, 0 if not, -1 to end. */
static int pump_step(struct tls_pump *p)
{
	bool moved = false;

	/* relay -> in */
	if (!p->net_eof && !p->closing && p->in_len < PUMP_BUF) {
		size_t n = 0;
		CURLcode rc;
		if (p->in_off + p->in_len == PUMP_BUF) {
			memmove(p->in, p->in + p->in_off, p->in_len);
			p->in_off = 0;
		}
		rc = curl_easy_recv(p->h, p->in + p->in_off + p->in_len,
				    PUMP_BUF - p->in_off - p->in_len, &n);
		if (rc == CURLE_OK && n > 0) {
			p->in_len += n;
			moved = true;
		} else if (rc != CURLE_AGAIN) {
			/* the relay's end (or a TLS error: the stream ends here either way) */
			p->net_eof = true;
			moved = true;
		}
	}
	/* in -> caller */
	if (p->in_len > 0 && !p->closing) {
		ssize_t w =
			send(p->local, p->in + p->in_off, p->in_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			p->in_off += (size_t)w;
			p->in_len -= (size_t)w;
			if (p->in_len == 0)
				p->in_off = 0;
			moved = true;
		} else if (w < 0 && !would_block(errno)) {
			return -1; /* the caller is gone */
		}
	}
	if (p->net_eof && p->in_len == 0 && !p->local_shut) {
		(void)shutdown(p->local, SHUT_WR);
		p->local_shut = true;
	}
	/* caller -> out */
	if (!p->local_eof && p->out_len < PUMP_BUF) {
		ssize_t n;
		if (p->out_len == 0)
			p->out_off = 0;
		if (p->out_off + p->out_len == PUMP_BUF) {
			memmove(p->out, p->out + p->out_off, p->out_len);
			p->out_off = 0;
		}
		n = recv(p->local, p->out + p->out_off + p->out_len,
			 PUMP_BUF - p->out_off - p->out_len, MSG_DONTWAIT);
		if (n > 0) {
			p->out_len += (size_t)n;
			moved = true;
		} else if (n == 0 || !would_block(errno)) {
			p->local_eof = true;
			moved = true;
		}
	}
	/* out -> relay */
	if (p->out_len > 0) {
		size_t n = 0;
		CURLcode rc = curl_easy_send(p->h, p->out + p->out_off, p->out_len, &n);
		if (rc == CURLE_OK && n > 0) {
			p->out_off += n;
			p->out_len -= n;
			moved = true;
		} else if (rc != CURLE_AGAIN && rc != CURLE_OK) {
			return -1; /* the relay is gone */
		}
	}
	if (p->local_eof && p->out_len == 0 && !p->net_shut) {
		(void)shutdown(p->net, SHUT_WR);
		p->net_shut = true;
	}
	if (p->closing && p->local_eof && p->out_len == 0)
		return -1;
	if (p->net_shut && p->local_shut)
		return -1;
	return moved ? 1 : 0;
}

static void *pump_main(void *arg)
{
	struct tls_pump *p = arg;

	for (;;) {
		struct pollfd pfd[2] = {{.fd = p->local}, {.fd = p->net}};
		int r = pump_step(p);
		if (r < 0)
			break;
		if (r > 0)
			continue;
		if (!p->local_eof && p->out_len < PUMP_BUF)
			pfd[0].events |= POLLIN;
		if (p->in_len > 0 && !p->closing)
			pfd[0].events |= POLLOUT;
		if (!p->net_eof && !p->closing && p->in_len < PUMP_BUF)
			pfd[1].events |= POLLIN;
		if (p->out_len > 0)
			pfd[1].events |= POLLOUT;
		if (p->local_eof && (p->closing || p->local_shut))
			pfd[0].fd = -1; /* nothing more to do there; its hang-up would spin */
		r = poll(pfd, 2, -1);
		if (r < 0 && errno != EINTR)
			break;
		/*
		 * A hang-up of our end that we did not cause by shutting it down
		 * ourselves: the caller closed its socket. Take what it wrote
		 * before, pass it on, and end.
		 */
		if (r > 0 && (pfd[0].revents & (POLLHUP | POLLERR)) && !p->local_shut)
			p->closing = true;
	}
	pump_free(p);
	return NULL;
}

static int pump_start(CURL *h, curl_socket_t net, const uint8_t *extra, size_t extra_len,
		      int *ret_fd)
{
	struct tls_pump *p;
	int sv[2], r;
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;

	if (extra_len > PUMP_BUF)
		return -EMSGSIZE;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		r = -errno;
		free(p);
		return r;
	}
	p->h = h;
	p->net = net;
	p->local = sv[1];
	memcpy(p->in, extra, extra_len);
	p->in_len = extra_len;
	r = -pthread_attr_init(&attr);
	if (r < 0)
		goto fail;
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&th, &attr, pump_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (r < 0)
		goto fail;
	*ret_fd = sv[0];
	return 0;
fail:
	p->h = NULL; /* the caller's still */
	pump_free(p);
	close(sv[0]);
	return r;
}

int relay_splice_tls_dial(const char *url, const char *ca_file, const char *req, size_t len,
			  uint64_t deadline_ms, int timeout_ms, int cancel_fd, int *ret_fd,
			  uint32_t *ret_retry_after, struct err *err)
{
	struct progress pr = {.cancel_fd = cancel_fd, .deadline_ms = deadline_ms};
	char errbuf[CURL_ERROR_SIZE] = "";
	uint8_t *buf = NULL;
	size_t extra = 0, extra_len = 0;
	curl_socket_t net = CURL_SOCKET_BAD;
	uint64_t now = clock_mono_ms();
	long left = deadline_ms > now ? (long)(deadline_ms - now) : 1;
	CURLcode rc;
	CURL *h;
	int r;

	pthread_once(&curl_once, curl_init_once);
	if (curl_init_status != CURLE_OK) {
		err_set(err, "cannot initialise libcurl: %s", curl_easy_strerror(curl_init_status));
		return -ENOMEM;
	}
	h = curl_easy_init();
	buf = malloc(RELAY_SPLICE_REPLY_MAX);
	if (!h || !buf) {
		r = -ENOMEM;
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
	/* ALPN offers http/1.1 only: the upgrade is HTTP/1.1 */
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, left);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &pr);
	if (ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		r = connect_error(rc, errbuf, url, timeout_ms, &pr, err);
		goto out;
	}
	if (curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &net) != CURLE_OK ||
	    net == CURL_SOCKET_BAD) {
		err_set(err, "lost the connection to the relay %.200s", url);
		r = -EIO;
		goto out;
	}
	r = tls_send_all(h, net, req, len, cancel_fd, deadline_ms);
	if (r < 0) {
		if (r != -ECANCELED)
			err_set(err, "cannot send the splice request to the relay %.200s", url);
		goto out;
	}
	r = tls_reply_read(h, net, buf, url, cancel_fd, deadline_ms, &extra, &extra_len,
			   ret_retry_after, err);
	if (r < 0)
		goto out;
	r = pump_start(h, net, buf + extra, extra_len, ret_fd);
	if (r < 0) {
		err_set(err, "cannot start the relayed connection's TLS pump: %s", strerror(-r));
		goto out;
	}
	h = NULL; /* the pump's now */
out:
	if (h)
		curl_easy_cleanup(h);
	if (buf) {
		sodium_memzero(buf, RELAY_SPLICE_REPLY_MAX);
		free(buf);
	}
	return r;
}
