/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <sodium.h>

#include "config.h"
#include "base/err.h"
#include "base/backoff.h"
#include "identity/derive.h"
#include "base/encoding.h"
#include "base/log.h"
#include "relay_client/relay_client.h"
#include "relay_client/relay_url.h"

#define URL_MAX 256

struct relay_client {
	CURL *curl;
	char base[URL_MAX];	/* no trailing slash */
	char records_url[URL_MAX + 16];
	struct relay_client_opts opts;
};

/* One exchange's reply, collected by the curl callbacks. */
struct exchange {
	char body[RELAY_REPLY_MAX + 1];
	size_t len;
	int too_large;
	uint32_t retry_after;
	bool has_observed;
	bool observed_bad;
	struct record_addr observed;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_status;

static void curl_init_once(void)
{
	curl_init_status = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void relay_client_opts_init(struct relay_client_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->cancel_fd = -1;
}

int relay_client_new(const char *url, const struct relay_client_opts *opts,
		     struct relay_client **ret, struct err *err)
{
	struct relay_client *c;
	size_t n;

	err_clear(err);
	if (!url || (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)) {
		err_set(err,
			"the relay URL '%s' must start with http:// or https:// (for example "
			"https://relay.example.org:8480)",
			url ? url : "");
		return -EINVAL;
	}
	n = strlen(url);
	if (n >= URL_MAX) {
		err_set(err, "the relay URL is too long");
		return -EINVAL;
	}
	const char *host = strstr(url, "://") + 3;
	if (!*host || *host == '/' || strpbrk(url, " \t\r\n\"<>\\^`{|}")) {
		err_set(err,
			"the relay URL '%s' has no host name or contains spaces or invalid "
			"characters",
			url);
		return -EINVAL;
	}
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_status != CURLE_OK) {
		err_set(err, "cannot initialise libcurl: %s", curl_easy_strerror(curl_init_status));
		return -ENOMEM;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	memcpy(c->base, url, n + 1);
	while (n > 0 && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	snprintf(c->records_url, sizeof(c->records_url), "%s/v1/records", c->base);
	if (opts)
		c->opts = *opts;
	else
		relay_client_opts_init(&c->opts);
	if (!c->opts.timeout_ms)
		c->opts.timeout_ms = 10000;
	if (!c->opts.bucket_seconds)
		c->opts.bucket_seconds = RELAY_BUCKET_SECONDS;
	if (!c->opts.retry_base_ms)
		c->opts.retry_base_ms = 500;
	if (!c->opts.retry_max_ms)
		c->opts.retry_max_ms = 30000;
	c->curl = curl_easy_init();
	if (!c->curl) {
		free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

void relay_client_free(struct relay_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	free(c);
}

const char *relay_client_url(const struct relay_client *c)
{
	return c->base;
}

time_t relay_client_now(const struct relay_client *c)
{
	return time(NULL) + (time_t)c->opts.clock_offset_s;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct exchange *x = userdata;
	size_t n = size * nmemb;

	if (x->len + n > RELAY_REPLY_MAX) {
		x->too_large = 1;
		return 0; /* abort the transfer */
	}
	memcpy(x->body + x->len, ptr, n);
	x->len += n;
	return n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct exchange *x = userdata;
	size_t n = size * nitems;
	static const char name[] = "retry-after:";
	static const char obs[] = "x-tandem-observed:";

	if (n > sizeof(obs) - 1 && strncasecmp(buf, obs, sizeof(obs) - 1) == 0) {
		/* a relay's word, checked strictly (once only: two are malformed
		 * too); only ever an address to try */
		if (!x->has_observed && !x->observed_bad &&
		    relay_observed_parse(buf + sizeof(obs) - 1, n - (sizeof(obs) - 1),
					 &x->observed) == 0) {
			x->has_observed = true;
		} else {
			x->has_observed = false;
			x->observed_bad = true;
		}
		return n;
	}
	if (n > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
		char tmp[32];
		size_t vlen = n - (sizeof(name) - 1);
		char *end;
		unsigned long v;

		if (vlen >= sizeof(tmp))
			vlen = sizeof(tmp) - 1;
		memcpy(tmp, buf + sizeof(name) - 1, vlen);
		tmp[vlen] = '\0';
		v = strtoul(tmp, &end, 10);
		while (*end == ' ' || *end == '\r' || *end == '\n')
			end++;
		if (end != tmp && *end == '\0')
			x->retry_after = v > 3600 ? 3600 : (uint32_t)v;
		else
			x->retry_after = 5; /* an HTTP date: just wait a little */
	}
	return n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const struct relay_client *c = userdata;
	struct pollfd p = { .fd = c->opts.cancel_fd, .events = POLLIN };

	if (c->opts.cancel_fd < 0)
		return 0;
	return poll(&p, 1, 0) > 0 ? 1 : 0;
}

/*
 * Requests from the punch port (opts.local_port): it is reserved by another
 * socket, so SO_REUSEADDR; and closed with a reset (SO_LINGER 0), so that no
 * TIME_WAIT of ours keeps the next request to the same relay from the same
 * port.
 */
static int on_sockopt(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
	int on = 1;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	(void)clientp;
	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKOPT_OK;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		return CURL_SOCKOPT_ERROR;
	return CURL_SOCKOPT_OK;
}

/* Maps a curl failure to -errno and a sentence. */
static int transport_error(const struct relay_client *c, CURLcode cc, const char *detail,
			   const struct exchange *x, struct relay_result *res)
{
	const char *d = detail && detail[0] ? detail : curl_easy_strerror(cc);

	if (relay_url_tls_failed(cc)) {
		snprintf(res->message, sizeof(res->message),
			 "TLS with the relay %s failed: %s; check that the URL names the relay's "
			 "real host and that its certificate is valid and trusted here",
			 c->base, d);
		return -EKEYREJECTED;
	}
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(res->message, sizeof(res->message),
			 "cannot reach the relay %s: its host name does not resolve (%s); check "
			 "the URL and your network",
			 c->base, d);
		return -ENXIO;
	case CURLE_COULDNT_CONNECT:
		snprintf(res->message, sizeof(res->message),
			 "cannot reach the relay %s: %s; check that tandem-relay runs there and "
			 "that the URL and port are right",
			 c->base, d);
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(res->message, sizeof(res->message),
			 "the relay %s did not answer within %ld ms (%s); it may be overloaded "
			 "or unreachable",
			 c->base, c->opts.timeout_ms, d);
		return -ETIMEDOUT;
	case CURLE_ABORTED_BY_CALLBACK:
		snprintf(res->message, sizeof(res->message), "request to the relay %s cancelled",
			 c->base);
		return -ECANCELED;
	case CURLE_WRITE_ERROR:
		if (x->too_large) {
			snprintf(res->message, sizeof(res->message),
				 "the relay %s sent a malformed reply: larger than %d bytes; is "
				 "the URL really a tandem relay?",
				 c->base, RELAY_REPLY_MAX);
			return -EPROTO;
		}
		break;
	case CURLE_URL_MALFORMAT:
		snprintf(res->message, sizeof(res->message), "the relay URL %s is not usable: %s",
			 c->base, d);
		return -EINVAL;
	case CURLE_UNSUPPORTED_PROTOCOL: /* the scheme was checked: an HTTP/0.9 answer */
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		snprintf(res->message, sizeof(res->message),
			 "the relay %s broke off or sent a malformed reply (%s); is the URL "
			 "really a tandem relay (http vs https)?",
			 c->base, d);
		return -EPROTO;
	default:
		break;
	}
	snprintf(res->message, sizeof(res->message), "request to the relay %s failed: %s", c->base,
		 d);
	return -EIO;
}

static int status_error(const struct relay_client *c, const struct relay_reply *reply,
			struct relay_result *res)
{
	const char *what;
	int r;

	switch (reply->status) {
	case 400: what = "rejected the request as malformed"; r = -EINVAL; break;
	case 401: what = "rejected the request's token"; r = -EACCES; break;
	case 403: what = "refused: the record belongs to another key"; r = -EPERM; break;
	case 404: what = "has no such record (the peer may not be online yet)"; r = -ENOENT; break;
	case 413: what = "refused the request as too large"; r = -EMSGSIZE; break;
	case 429: what = "is rate-limiting us"; r = -EAGAIN; break;
	case 503: what = "is at capacity"; r = -EBUSY; break;
	default: what = "answered with an unexpected status"; r = -EPROTO; break;
	}
	snprintf(res->message, sizeof(res->message), "the relay %s %s (HTTP %d%s%s)%s", c->base,
		 what, reply->status, reply->message[0] ? ": " : "", reply->message,
		 res->retry_after ? "; it asks us to retry later" : "");
	return r;
}

/* One HTTP exchange. method: "GET", "POST" or "DELETE". */
static int exchange(struct relay_client *c, const char *method, const uint8_t token[static 32],
		    const uint8_t *write_secret, const char *body, enum relay_reply_kind kind,
		    struct relay_reply *reply, struct relay_result *res)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	char auth[32 + B64URL_LEN(32) + 1], wsec[32 + B64URL_LEN(32) + 1];
	char tok[B64URL_LEN(32) + 1], sec[B64URL_LEN(32) + 1];
	struct curl_slist *hdrs = NULL;
	struct exchange *x;
	CURLcode cc;
	long status = 0;
	int r;

	memset(res, 0, sizeof(*res));
	res->expires_in = -1;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;

	b64url_encode(token, 32, tok, sizeof(tok));
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
	hdrs = curl_slist_append(hdrs, auth);
	if (write_secret) {
		b64url_encode(write_secret, 32, sec, sizeof(sec));
		snprintf(wsec, sizeof(wsec), "X-Tandem-Write-Secret: %s", sec);
		hdrs = curl_slist_append(hdrs, wsec);
		sodium_memzero(sec, sizeof(sec));
	}
	if (body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");

	CURL *h = c->curl;
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, c->records_url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "tandem/" TANDEM_VERSION);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->opts.timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->opts.timeout_ms);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
	if (c->opts.ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->opts.ca_file);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else if (strcmp(method, "DELETE") == 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}

	if (c->opts.local_port) {
		curl_easy_setopt(h, CURLOPT_LOCALPORT, (long)c->opts.local_port);
		curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
	}

	cc = curl_easy_perform(h);
	if (cc == CURLE_INTERFACE_FAILED && c->opts.local_port) {
		/* the punch port cannot be bound (taken after all): without it;
		 * the observed port is then of no use for punching */
		log_debug("cannot send from the punch port %u: %s; sending from any port",
			  c->opts.local_port, errbuf);
		curl_easy_setopt(h, CURLOPT_LOCALPORT, 0L);
		curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, NULL);
		x->len = 0;
		x->too_large = 0;
		x->has_observed = x->observed_bad = false;
		errbuf[0] = '\0';
		cc = curl_easy_perform(h);
		x->has_observed = false;
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	sodium_memzero(wsec, sizeof(wsec));
	if (cc != CURLE_OK) {
		r = transport_error(c, cc, errbuf, x, res);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	res->status = (int)status;
	res->retry_after = x->retry_after;
	res->has_observed = x->has_observed;
	res->observed = x->observed;
	res->observed_bad = x->observed_bad;
	r = relay_reply_parse(kind, (int)status, x->body, x->len, reply);
	if (r < 0) {
		snprintf(res->message, sizeof(res->message),
			 "the relay %s sent a malformed reply (HTTP %ld): %s; is the URL really a "
			 "tandem relay?",
			 c->base, status, reply->message);
		goto out;
	}
	res->expires_in = reply->expires_in;
	if (status < 200 || status >= 300)
		r = status_error(c, reply, res);
out:
	free(x);
	return r;
}

int relay_client_put(struct relay_client *c, const uint8_t token[static 32],
		     const uint8_t write_secret[static 32], const uint8_t *blob, size_t len,
		     unsigned ttl, struct relay_result *res)
{
	struct relay_reply *reply;
	char *body;
	size_t b64len = B64URL_LEN(len);
	int r;

	if (len > RECORD_BLOB_MAX)
		return -EMSGSIZE;
	body = malloc(b64len + 64);
	reply = malloc(sizeof(*reply));
	if (!body || !reply) {
		free(body);
		free(reply);
		return -ENOMEM;
	}
	memcpy(body, "{\"blob\":\"", 9);
	b64url_encode(blob, len, body + 9, b64len + 1);
	snprintf(body + 9 + b64len, 64, "\",\"ttl\":%u}", ttl);
	r = exchange(c, "POST", token, write_secret, body, RELAY_REPLY_STORED, reply, res);
	free(body);
	free(reply);
	return r;
}

int relay_client_get(struct relay_client *c, const uint8_t token[static 32],
		     struct relay_reply *reply, struct relay_result *res)
{
	return exchange(c, "GET", token, NULL, NULL, RELAY_REPLY_RECORD, reply, res);
}

int relay_client_delete(struct relay_client *c, const uint8_t token[static 32],
			const uint8_t write_secret[static 32], struct relay_result *res)
{
	struct relay_reply *reply = malloc(sizeof(*reply));
	int r;

	if (!reply)
		return -ENOMEM;
	r = exchange(c, "DELETE", token, write_secret, NULL, RELAY_REPLY_EMPTY, reply, res);
	free(reply);
	return r;
}

int relay_client_publish(struct relay_client *c, const struct identity *id,
			 const struct peer_record *rec, unsigned ttl, time_t now,
			 struct relay_result *res)
{
	uint8_t blob[RECORD_BLOB_MAX];
	uint8_t token[32], secret[32];
	uint64_t bucket = derive_bucket(now, c->opts.bucket_seconds);
	int n, r;

	n = record_seal(id, rec, bucket, blob, sizeof(blob));
	if (n < 0) {
		memset(res, 0, sizeof(*res));
		snprintf(res->message, sizeof(res->message), "cannot build our relay record: %s",
			 strerror(-n));
		return n;
	}
	derive_relay_token(&id->fp, bucket, token);
	derive_write_secret(id->seed, token, secret);
	r = relay_client_put(c, token, secret, blob, (size_t)n, ttl, res);
	sodium_memzero(secret, sizeof(secret));
	return r;
}

int relay_client_unpublish(struct relay_client *c, const struct identity *id, time_t now,
			   struct relay_result *res)
{
	uint64_t bucket = derive_bucket(now, c->opts.bucket_seconds);
	uint8_t token[32], secret[32];
	int r = 0, r2;

	for (int i = 0; i < 2 && !(i == 1 && bucket == 0); i++) {
		uint64_t b = bucket - (uint64_t)i;

		derive_relay_token(&id->fp, b, token);
		derive_write_secret(id->seed, token, secret);
		r2 = relay_client_delete(c, token, secret, res);
		if (r2 < 0 && r2 != -ENOENT && r == 0)
			r = r2;
	}
	sodium_memzero(secret, sizeof(secret));
	return r;
}

/*
 * Opens every record of one reply and keeps, among those that hold fp's key
 * and verify, the most recently made. Returns 0 and *ret, or the reason the
 * last record was refused (-ENOENT when there was none to open).
 */
static int lookup_pick(const struct fingerprint *fp, uint64_t bucket,
		       const struct relay_reply *reply, struct peer_record *ret, size_t *ret_refused)
{
	struct peer_record rec;
	int r = -ENOENT, found = 0;

	for (size_t i = 0; i < reply->nrecords; i++) {
		int o = record_open(fp, bucket, reply->records[i].blob, reply->records[i].blob_len,
				    &rec);

		if (o < 0) {
			(*ret_refused)++;
			if (r != -EPROTONOSUPPORT)
				r = o;
			continue;
		}
		if (!found || rec.timestamp > ret->timestamp)
			*ret = rec;
		found = 1;
	}
	*ret_refused += reply->skipped;
	if (found)
		return 0;
	if (r == -ENOENT && reply->skipped)
		r = -EBADMSG;
	return r;
}

int relay_client_lookup(struct relay_client *c, const struct fingerprint *fp, time_t now,
			struct peer_record *ret, struct relay_result *res)
{
	uint64_t bucket = derive_bucket(now, c->opts.bucket_seconds);
	struct relay_reply *reply;
	uint8_t token[32];
	size_t refused = 0;
	int r = -ENOENT, bad = 0;

	reply = malloc(sizeof(*reply));
	if (!reply)
		return -ENOMEM;
	/*
	 * Anyone who knows fp can add records under its tokens (docs/RELAY.md):
	 * the one that holds fp's key and verifies wins, the others are ignored.
	 * The current bucket, the previous one (the peer has not republished
	 * since the hour turned), and the next one (the peer's clock is ahead
	 * of ours: it publishes where we look only in the next hour).
	 */
	static const int step[3] = { 0, -1, 1 };
	for (int i = 0; i < 3; i++) {
		if (bucket == 0 && step[i] < 0)
			continue;
		uint64_t b = bucket + (uint64_t)(int64_t)step[i];

		derive_relay_token(fp, b, token);
		r = relay_client_get(c, token, reply, res);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			break;
		r = lookup_pick(fp, b, reply, ret, &refused);
		if (r == 0)
			break;
		if (r != -ENOENT && bad != -EPROTONOSUPPORT)
			bad = r;
		r = -ENOENT;
	}
	if (r == -ENOENT && bad) {
		r = bad;
		snprintf(res->message, sizeof(res->message),
			 "the relay %s holds no valid record for this fingerprint yet, only %zu "
			 "that %s; ignoring %s",
			 c->base, refused,
			 r == -EKEYREJECTED ? "hold another key (an impostor?)"
			 : r == -EPROTONOSUPPORT
				 ? "have a newer format than this tandem understands (upgrade tandem)"
				 : "do not decrypt or verify (tampered, or not made by that peer)",
			 refused == 1 ? "it" : "them");
	} else if (r == -ENOENT) {
		snprintf(res->message, sizeof(res->message),
			 "the relay %s has no record for this fingerprint yet (is the other peer "
			 "running 'tandem up' with the same relay?)",
			 c->base);
	}
	free(reply);
	return r;
}

int relay_client_wait(const struct relay_client *c, uint32_t ms)
{
	struct pollfd p = { .fd = c->opts.cancel_fd, .events = POLLIN };
	int r;

	if (c->opts.cancel_fd < 0) {
		poll(NULL, 0, (int)ms);
		return 0;
	}
	do {
		r = poll(&p, 1, (int)ms);
	} while (r < 0 && errno == EINTR);
	return r > 0 ? -ECANCELED : 0;
}

int relay_error_is_transient(int err)
{
	switch (err) {
	case -ENOENT:
	case -EAGAIN:
	case -EBUSY:
	case -ECONNREFUSED:
	case -EHOSTUNREACH:
	case -ETIMEDOUT:
	case -ENXIO:
	case -EIO:
		return 1;
	default:
		return 0;
	}
}

int relay_lookup_error_is_squat(int err)
{
	return err == -EKEYREJECTED || err == -EBADMSG;
}

int relay_client_lookup_retry(struct relay_client *c, const struct fingerprint *fp,
			      unsigned max_attempts, struct peer_record *ret,
			      struct relay_result *res)
{
	struct backoff b = { c->opts.retry_base_ms, c->opts.retry_max_ms };
	int r;

	for (unsigned attempt = 0;; attempt++) {
		r = relay_client_lookup(c, fp, relay_client_now(c), ret, res);
		if (r == 0 || !(relay_error_is_transient(r) || relay_lookup_error_is_squat(r)))
			return r;
		if (max_attempts && attempt + 1 >= max_attempts)
			return r;
		uint32_t ms = backoff_delay_ms(&b, attempt, res->retry_after, randombytes_random());
		log_debug("relay lookup: %s; retrying in %u ms", res->message, ms);
		if (relay_client_wait(c, ms) < 0)
			return -ECANCELED;
	}
}
