/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The relay's request handling, sans-IO (see relay_core.h and docs/RELAY.md).
 *
 * Order of checks, so that the cheapest refusal wins and nothing is parsed
 * for a client that is over its rate: rate limit (429), size (413), route
 * (404), method (405), then per endpoint: bearer token (401), body (400),
 * write secret (400/403), store (404/503).
 *
 * Nothing a client sends is echoed back or logged: error messages are fixed
 * sentences with numbers from the configuration only.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "base/encoding.h"
#include "relay_core.h"
#include "relay_metrics.h"
#include "relay_ratelimit.h"

#define JSON_TYPE "application/json"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define MAX_BODY_MIN 64
#define MAX_BODY_MAX (1024 * 1024)
#define TTL_MAX 86400u
#define RATE_MAX 1000000u
#define RATE_CLIENTS_DEFAULT 65536

struct relay_core {
	struct relay_core_config cfg; /* read-only after relay_core_new */
	/*
	 * Protects store, rl and metrics. Innermost lock of the relay except
	 * the log module's; never held across a syscall.
	 */
	pthread_mutex_t lock;
	struct relay_store *store;    /* protected by lock */
	struct relay_ratelimit *rl;   /* protected by lock; NULL: no rate limit */
	struct relay_metrics metrics; /* protected by lock */
	relay_splice_stats_fn splice_stats; /* set before the server starts */
	void *splice_stats_data;
};

enum route {
	ROUTE_NONE,
	ROUTE_RECORDS,
	ROUTE_HEALTHZ,
	ROUTE_METRICS,
	ROUTE_SPLICE,
};

enum method {
	METHOD_OTHER,
	METHOD_GET,
	METHOD_HEAD,
	METHOD_POST,
	METHOD_DELETE,
};

static const struct {
	const char *path;
	enum route route;
	const char *allow;
} routes[] = {
	{"/v1/records", ROUTE_RECORDS, "GET, HEAD, POST, DELETE"},
	{"/healthz", ROUTE_HEALTHZ, "GET, HEAD"},
	{"/metrics", ROUTE_METRICS, "GET, HEAD"},
	{"/v1/splice", ROUTE_SPLICE, "GET"},
};

#define SPLICE_PROTOCOL "tandem-splice/1"

static const char oom_body[] =
	"{\"error\":\"internal\",\"message\":\"the relay is out of memory; retry in a moment\"}";

void relay_core_config_init(struct relay_core_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_records = 10000;
	cfg->max_records_per_client = 64;
	cfg->rate = 120;
	cfg->burst = 0;
	cfg->rate_clients = RATE_CLIENTS_DEFAULT;
	cfg->max_body = 8192;
	cfg->default_ttl = 600;
	cfg->max_ttl = 3600;
}

int relay_core_config_check(const struct relay_core_config *cfg, char *err, size_t errlen)
{
	if (cfg->max_records < 1 || cfg->max_records > RELAY_RECORDS_MAX)
		snprintf(err, errlen, "the record limit must be from 1 to %u", RELAY_RECORDS_MAX);
	else if (cfg->rate > RATE_MAX || cfg->burst > RATE_MAX)
		snprintf(err, errlen, "the rate must be from 0 (no limit) to %u requests a minute",
			 RATE_MAX);
	else if (cfg->rate &&
		 (cfg->rate_clients < 1 || cfg->rate_clients > RELAY_RATELIMIT_CLIENTS_MAX))
		snprintf(err, errlen, "the rate limiter must track from 1 to %u clients",
			 RELAY_RATELIMIT_CLIENTS_MAX);
	else if (cfg->max_body < MAX_BODY_MIN || cfg->max_body > MAX_BODY_MAX)
		snprintf(err, errlen, "the body limit must be from %d to %d bytes", MAX_BODY_MIN,
			 MAX_BODY_MAX);
	else if (cfg->max_ttl < 1 || cfg->max_ttl > TTL_MAX)
		snprintf(err, errlen, "the maximum TTL must be from 1 to %u seconds", TTL_MAX);
	else if (cfg->default_ttl < 1 || cfg->default_ttl > cfg->max_ttl)
		snprintf(err, errlen,
			 "the default TTL (--default-ttl %u) must be from 1 to the maximum TTL "
			 "(--max-ttl %u); lower the first or raise the second",
			 cfg->default_ttl, cfg->max_ttl);
	else
		return 0;
	return -EINVAL;
}

int relay_core_new(const struct relay_core_config *cfg, int64_t now_ms, struct relay_core **ret)
{
	struct relay_core *core;
	char err[160];
	int r;

	if (relay_core_config_check(cfg, err, sizeof(err)) < 0)
		return -EINVAL;
	if (sodium_init() < 0)
		return -ENOMEM;
	core = calloc(1, sizeof(*core));
	if (!core)
		return -ENOMEM;
	core->cfg = *cfg;
	if (core->cfg.max_records_per_client > cfg->max_records)
		core->cfg.max_records_per_client = cfg->max_records;
	r = relay_store_new(cfg->max_records, core->cfg.max_records_per_client, &core->store);
	if (r < 0)
		goto fail;
	if (cfg->rate) {
		r = relay_ratelimit_new(cfg->rate, cfg->burst ? cfg->burst : cfg->rate,
					cfg->rate_clients, &core->rl);
		if (r < 0)
			goto fail;
	}
	r = -pthread_mutex_init(&core->lock, NULL);
	if (r < 0)
		goto fail;
	relay_metrics_init(&core->metrics, now_ms);
	*ret = core;
	return 0;
fail:
	relay_ratelimit_free(core->rl);
	relay_store_free(core->store);
	free(core);
	return r;
}

void relay_core_free(struct relay_core *core)
{
	if (!core)
		return;
	pthread_mutex_destroy(&core->lock);
	relay_ratelimit_free(core->rl);
	relay_store_free(core->store);
	free(core);
}

void relay_core_response_done(struct relay_response *resp)
{
	free(resp->body_owned);
	resp->body_owned = NULL;
	resp->body = NULL;
	resp->body_len = 0;
}

/* ---- responses ---- */

static void set_oom(struct relay_response *resp)
{
	relay_core_response_done(resp);
	resp->status = 500;
	resp->body = oom_body;
	resp->body_len = sizeof(oom_body) - 1;
	resp->content_type = JSON_TYPE;
	resp->retry_after = 0;
}

/* Renders obj (stolen) as the body, into memory from malloc. */
static void set_json(struct relay_response *resp, int status, json_t *obj)
{
	size_t n;
	char *buf;

	resp->status = status;
	resp->content_type = JSON_TYPE;
	n = obj ? json_dumpb(obj, NULL, 0, JSON_COMPACT) : 0;
	buf = n ? malloc(n + 1) : NULL;
	if (!buf || json_dumpb(obj, buf, n, JSON_COMPACT) != n) {
		free(buf);
		json_decref(obj);
		set_oom(resp);
		return;
	}
	json_decref(obj);
	buf[n] = '\0';
	resp->body_owned = buf;
	resp->body = buf;
	resp->body_len = n;
}

__attribute__((format(printf, 4, 5))) static void set_error(struct relay_response *resp, int status,
							    const char *code, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_json(resp, status, json_pack("{s:s,s:s}", "error", code, "message", msg));
}

void relay_core_error(struct relay_response *resp, int status, const char *code, const char *fmt,
		      ...)
{
	char msg[320];
	va_list ap;

	memset(resp, 0, sizeof(*resp));
	resp->route = "-";
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_json(resp, status, json_pack("{s:s,s:s}", "error", code, "message", msg));
}

static unsigned ms_to_retry_after(int64_t ms)
{
	int64_t s = (ms + 999) / 1000;

	if (s < 1)
		return 1;
	if (s > 86400)
		return 86400;
	return (unsigned)s;
}

static enum relay_reason status_reason(int status)
{
	switch (status) {
	case 400:
		return RELAY_REASON_BAD_REQUEST;
	case 401:
		return RELAY_REASON_UNAUTHORIZED;
	case 403:
		return RELAY_REASON_FORBIDDEN;
	case 413:
		return RELAY_REASON_TOO_LARGE;
	case 429:
		return RELAY_REASON_RATE_LIMITED;
	case 503:
		return RELAY_REASON_CAPACITY;
	default:
		return RELAY_REASON_NONE;
	}
}

static void count(struct relay_core *core, const struct relay_response *resp)
{
	pthread_mutex_lock(&core->lock);
	relay_metrics_count(&core->metrics, resp->status,
			    resp->reason ? (enum relay_reason)resp->reason
					 : status_reason(resp->status));
	pthread_mutex_unlock(&core->lock);
}

/* ---- request parsing ---- */

static enum route route_find(const char *path, const char **ret_allow, const char **ret_name)
{
	for (size_t i = 0; path && i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(path, routes[i].path) == 0) {
			*ret_allow = routes[i].allow;
			*ret_name = routes[i].path;
			return routes[i].route;
		}
	}
	*ret_allow = NULL;
	*ret_name = "-";
	return ROUTE_NONE;
}

static enum method method_find(const char *m)
{
	if (!m)
		return METHOD_OTHER;
	if (strcmp(m, "GET") == 0)
		return METHOD_GET;
	if (strcmp(m, "HEAD") == 0)
		return METHOD_HEAD;
	if (strcmp(m, "POST") == 0)
		return METHOD_POST;
	if (strcmp(m, "DELETE") == 0)
		return METHOD_DELETE;
	return METHOD_OTHER;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Exactly 32 bytes of unpadded base64url, with optional surrounding blanks. */
static int key32_parse(const char *s, uint8_t out[static 32])
{
	size_t n;

	while (is_space(*s))
		s++;
	n = strnlen(s, B64URL_LEN(32) + 16);
	while (n > 0 && is_space(s[n - 1]))
		n--;
	if (n != B64URL_LEN(32))
		return -EINVAL;
	if (b64url_decode(s, n, out, 32) != 32)
		return -EINVAL;
	return 0;
}

/* "Bearer <token>": -ENOENT without header, -EINVAL when malformed. */
static int bearer_parse(const char *v, uint8_t token[static RELAY_TOKEN_LEN])
{
	if (!v)
		return -ENOENT;
	while (is_space(*v))
		v++;
	if (strncasecmp(v, "Bearer", 6) != 0 || !is_space(v[6]))
		return -EINVAL;
	return key32_parse(v + 6, token);
}

struct post_body {
	uint8_t blob[RELAY_BLOB_MAX];
	size_t blob_len;
	unsigned ttl;
};

/* Parses {"blob":"..","ttl":n}; on error fills resp with a 400. */
static int post_parse(const struct relay_core_config *cfg, const struct relay_request *req,
		      struct post_body *ret, struct relay_response *resp)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *key;
	const char *b64;
	size_t b64len;
	int r = -EINVAL;
	int n;

	root = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root || !json_is_object(root)) {
		set_error(resp, 400, "invalid_json",
			  "the request body is not a JSON object without duplicate keys; send "
			  "{\"blob\":\"<base64url>\",\"ttl\":<seconds>}");
		goto out;
	}
	/* clang-format off */
	json_object_foreach(root, key, v) {
		if (strcmp(key, "blob") != 0 && strcmp(key, "ttl") != 0) {
			set_error(resp, 400, "unknown_field",
				  "the request body has a field other than \"blob\" and \"ttl\"; "
				  "send only those two");
			goto out;
		}
	}
	/* clang-format on */
	v = json_object_get(root, "blob");
	if (!v) {
		set_error(resp, 400, "invalid_blob",
			  "the request body has no \"blob\"; send the record as a base64url "
			  "string in \"blob\"");
		goto out;
	}
	if (!json_is_string(v)) {
		set_error(resp, 400, "invalid_blob",
			  "\"blob\" must be a string of base64url (no padding)");
		goto out;
	}
	b64 = json_string_value(v);
	b64len = json_string_length(v);
	if (b64len == 0) {
		set_error(resp, 400, "invalid_blob", "\"blob\" is empty; send a non-empty record");
		goto out;
	}
	if (b64len > B64URL_LEN(RELAY_BLOB_MAX)) {
		set_error(resp, 400, "invalid_blob",
			  "\"blob\" decodes to more than %d bytes, the largest record the relay "
			  "keeps; send a smaller record",
			  RELAY_BLOB_MAX);
		goto out;
	}
	n = b64url_decode(b64, b64len, ret->blob, sizeof(ret->blob));
	if (n <= 0) {
		set_error(resp, 400, "invalid_blob",
			  "\"blob\" is not valid base64url (letters, digits, '-' and '_', no "
			  "padding); encode the record with the URL-safe alphabet");
		goto out;
	}
	ret->blob_len = (size_t)n;
	ret->ttl = cfg->default_ttl;
	v = json_object_get(root, "ttl");
	if (v) {
		json_int_t t = json_is_integer(v) ? json_integer_value(v) : -1;
		if (t < 1 || t > (json_int_t)cfg->max_ttl) {
			set_error(resp, 400, "invalid_ttl",
				  "\"ttl\" must be an integer number of seconds from 1 to %u; omit "
				  "it for the default of %u",
				  cfg->max_ttl, cfg->default_ttl);
			goto out;
		}
		ret->ttl = (unsigned)t;
	}
	r = 0;
out:
	json_decref(root);
	return r;
}

/* The write secret header: 0 and *ret_present, or a 400 in resp. */
static int secret_parse(const struct relay_request *req, uint8_t secret[static RELAY_SECRET_LEN],
			bool *ret_present, struct relay_response *resp)
{
	*ret_present = false;
	if (!req->write_secret)
		return 0;
	if (key32_parse(req->write_secret, secret) < 0) {
		set_error(resp, 400, "invalid_write_secret",
			  "malformed X-Tandem-Write-Secret header; it must be the base64url (no "
			  "padding) of exactly 32 bytes");
		return -EINVAL;
	}
	*ret_present = true;
	return 0;
}

/* ---- endpoints ---- */

/* A copy of one record, taken under the lock. */
struct got_record {
	uint8_t blob[RELAY_BLOB_MAX];
	size_t len;
	int64_t expires_ms;
};

static json_t *record_json(const struct got_record *g, int64_t now_ms)
{
	char *b64 = malloc(B64URL_LEN(g->len) + 1);
	json_t *o;

	if (!b64)
		return NULL;
	b64url_encode(g->blob, g->len, b64, B64URL_LEN(g->len) + 1);
	o = json_pack("{s:s,s:I}", "blob", b64, "expires_in",
		      (json_int_t)((g->expires_ms - now_ms + 999) / 1000));
	free(b64);
	return o;
}

/*
 * {"blob":..,"expires_in":..,"records":[{"blob":..,"expires_in":..},..]}:
 * every writer's record, most recently written first; "blob" and
 * "expires_in" repeat the first one for clients older than "records".
 */
static void records_get(struct relay_core *core, const struct relay_request *req,
			const uint8_t *token, struct relay_response *resp)
{
	struct relay_store_entry e[RELAY_TOKEN_WRITERS];
	struct got_record *got;
	json_t *root = NULL, *arr, *o;
	size_t n;

	got = malloc(RELAY_TOKEN_WRITERS * sizeof(*got));
	if (!got) {
		set_oom(resp);
		return;
	}
	pthread_mutex_lock(&core->lock);
	n = relay_store_get_all(core->store, token, req->now_ms, e, RELAY_TOKEN_WRITERS);
	for (size_t i = 0; i < n; i++) {
		memcpy(got[i].blob, e[i].blob, e[i].blob_len);
		got[i].len = e[i].blob_len;
		got[i].expires_ms = e[i].expires_ms;
	}
	pthread_mutex_unlock(&core->lock);
	if (n == 0) {
		set_error(resp, 404, "not_found",
			  "no record under this token: it was never stored, was deleted, or "
			  "expired; the peer may not be online yet");
		goto out;
	}
	root = record_json(&got[0], req->now_ms);
	arr = json_array();
	if (!root || !arr) {
		json_decref(arr);
		goto oom;
	}
	if (json_object_set_new(root, "records", arr) < 0)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		o = record_json(&got[i], req->now_ms);
		if (!o || json_array_append_new(arr, o) < 0)
			goto oom;
	}
	set_json(resp, 200, root);
	goto out;
oom:
	json_decref(root);
	set_oom(resp);
out:
	free(got);
}

static void records_post(struct relay_core *core, const struct relay_request *req,
			 const uint8_t *token, struct relay_response *resp)
{
	struct post_body *pb;
	uint8_t secret[RELAY_SECRET_LEN];
	bool have_secret;
	int64_t retry_ms = 0;
	int r;

	pb = malloc(sizeof(*pb));
	if (!pb) {
		set_oom(resp);
		return;
	}
	if (post_parse(&core->cfg, req, pb, resp) < 0 ||
	    secret_parse(req, secret, &have_secret, resp) < 0)
		goto out;
	pthread_mutex_lock(&core->lock);
	r = relay_store_put(core->store, token, &req->client, have_secret ? secret : NULL,
			    pb->blob, pb->blob_len, req->now_ms + (int64_t)pb->ttl * 1000,
			    req->now_ms, &retry_ms);
	pthread_mutex_unlock(&core->lock);
	switch (r) {
	case RELAY_STORE_CREATED:
	case RELAY_STORE_REPLACED:
		set_json(resp, r == RELAY_STORE_CREATED ? 201 : 200,
			 json_pack("{s:I}", "expires_in", (json_int_t)pb->ttl));
		break;
	case -EACCES:
		set_error(resp, 403, "forbidden",
			  "missing X-Tandem-Write-Secret header; a POST must carry the base64url "
			  "of the writer's 32-byte write secret");
		break;
	case -ENOKEY:
		set_error(resp, 400, "missing_write_secret",
			  "missing X-Tandem-Write-Secret header; the first POST for a token must "
			  "carry the base64url of a 32-byte write secret");
		break;
	case -EDQUOT:
		resp->retry_after = ms_to_retry_after(retry_ms);
		set_error(resp, 429, "too_many_records",
			  "your address already holds %zu records on this relay, its limit; "
			  "retry after %u seconds, when the first of them expires, or delete "
			  "one",
			  core->cfg.max_records_per_client, resp->retry_after);
		resp->reason = RELAY_REASON_TOO_MANY_RECORDS;
		break;
	case -ENOSPC:
		set_error(resp, 503, "capacity",
			  "the relay is full (%zu records); retry later or use another relay",
			  core->cfg.max_records);
		resp->retry_after = ms_to_retry_after(retry_ms);
		break;
	default:
		set_oom(resp);
		break;
	}
out:
	sodium_memzero(secret, sizeof(secret));
	free(pb);
}

static void records_delete(struct relay_core *core, const struct relay_request *req,
			   const uint8_t *token, struct relay_response *resp)
{
	uint8_t secret[RELAY_SECRET_LEN];
	bool have_secret;
	int r;

	if (secret_parse(req, secret, &have_secret, resp) < 0)
		goto out;
	pthread_mutex_lock(&core->lock);
	r = relay_store_delete(core->store, token, have_secret ? secret : NULL, req->now_ms);
	pthread_mutex_unlock(&core->lock);
	if (r == 0) {
		resp->status = 204;
	} else if (r == -ENOENT) {
		set_error(resp, 404, "not_found",
			  "no record under this token: it was never stored, was deleted, or "
			  "expired");
	} else {
		set_error(resp, 403, "forbidden",
			  "no record under this token belongs to this writer: the "
			  "X-Tandem-Write-Secret header is missing or is not the one a record was "
			  "stored with");
	}
out:
	sodium_memzero(secret, sizeof(secret));
}

static void records(struct relay_core *core, const struct relay_request *req, enum method m,
		    struct relay_response *resp)
{
	uint8_t token[RELAY_TOKEN_LEN];
	int r;

	if (req->duplicate_header) {
		set_error(resp, 400, "duplicate_header",
			  "the Authorization or X-Tandem-Write-Secret header appears more than "
			  "once; send each at most once");
		return;
	}
	r = bearer_parse(req->authorization, token);
	if (r < 0) {
		if (r == -ENOENT)
			set_error(resp, 401, "unauthorized",
				  "missing Authorization header; send \"Authorization: Bearer "
				  "<token>\" with the base64url (no padding) of the 32-byte token");
		else
			set_error(resp, 401, "unauthorized",
				  "malformed Authorization header; it must be \"Bearer <token>\" "
				  "with the base64url (no padding) of exactly 32 bytes");
		resp->www_authenticate = true;
		return;
	}
	if (m == METHOD_GET || m == METHOD_HEAD)
		records_get(core, req, token, resp);
	else if (m == METHOD_POST)
		records_post(core, req, token, resp);
	else
		records_delete(core, req, token, resp);
}

static void metrics(struct relay_core *core, const struct relay_request *req,
		    struct relay_response *resp)
{
	struct relay_metrics_gauges g = {0};
	struct relay_splice_stats ss;
	char *text = NULL;
	size_t len = 0;
	int r;

	if (core->splice_stats) {
		memset(&ss, 0, sizeof(ss));
		core->splice_stats(core->splice_stats_data, &ss);
		g.splice = &ss;
	}
	pthread_mutex_lock(&core->lock);
	g.records = relay_store_count(core->store, req->now_ms);
	g.max_records = core->cfg.max_records;
	g.expired_total = relay_store_expired_total(core->store);
	g.evicted_total = relay_store_evicted_total(core->store);
	g.clients = core->rl ? relay_ratelimit_count(core->rl, req->now_ms) : 0;
	r = relay_metrics_format(&core->metrics, &g, req->now_ms, &text, &len);
	pthread_mutex_unlock(&core->lock);
	if (r < 0) {
		set_oom(resp);
		return;
	}
	resp->status = 200;
	resp->content_type = METRICS_TYPE;
	resp->body_owned = text;
	resp->body = text;
	resp->body_len = len;
}

/* True when the comma-separated header value v has the token want (any case). */
static bool header_has_token(const char *v, const char *want)
{
	size_t n = strlen(want);

	while (v && *v) {
		while (*v == ',' || is_space(*v))
			v++;
		const char *end = v;
		while (*end && *end != ',')
			end++;
		const char *last = end;
		while (last > v && is_space(last[-1]))
			last--;
		if ((size_t)(last - v) == n && strncasecmp(v, want, n) == 0)
			return true;
		v = end;
	}
	return false;
}

/*
 * GET /v1/splice: an HTTP/1.1 Upgrade to tandem-splice/1 with the
 * rendezvous token as a bearer token and the side (1 or 2) in
 * X-Tandem-Splice-Side. Fills resp->splice on success.
 */
static void splice(struct relay_core *core, const struct relay_request *req,
		   struct relay_response *resp)
{
	(void)core;
	if (req->duplicate_header) {
		set_error(resp, 400, "duplicate_header",
			  "the Authorization or X-Tandem-Splice-Side header appears more than "
			  "once; send each at most once");
		return;
	}
	if (req->http10 || !header_has_token(req->upgrade, SPLICE_PROTOCOL) ||
	    !header_has_token(req->connection, "upgrade")) {
		set_error(resp, 426, "upgrade_required",
			  "/v1/splice needs an HTTP/1.1 upgrade: send \"Connection: Upgrade\" "
			  "and \"Upgrade: " SPLICE_PROTOCOL "\"");
		resp->upgrade = SPLICE_PROTOCOL;
		resp->reason = RELAY_REASON_BAD_REQUEST;
		return;
	}
	int r = bearer_parse(req->authorization, resp->splice_token);
	if (r < 0) {
		set_error(resp, 401, "unauthorized",
			  "%s Authorization header; send \"Authorization: Bearer <token>\" with "
			  "the base64url (no padding) of the 32-byte rendezvous token",
			  r == -ENOENT ? "missing" : "malformed");
		resp->www_authenticate = true;
		return;
	}
	if (!req->splice_side ||
	    (strcmp(req->splice_side, "1") != 0 && strcmp(req->splice_side, "2") != 0)) {
		set_error(resp, 400, "invalid_side",
			  "missing or malformed X-Tandem-Splice-Side header; it must be 1 or 2 "
			  "(see docs/PROTOCOL.md)");
		return;
	}
	if (req->body_len > 0 || (req->content_length_known && req->content_length > 0)) {
		set_error(resp, 400, "unexpected_body",
			  "a splice request has no body; send the upgrade request alone and "
			  "wait for 101 before sending data");
		return;
	}
	resp->splice_side = req->splice_side[0] - '0';
	resp->splice = true;
	resp->status = 101;
	resp->route = "/v1/splice";
}

/* ---- entry points ---- */

static int admit(struct relay_core *core, const struct relay_request *req, enum route route,
		 struct relay_response *resp)
{
	int64_t wait_ms = 0;

	/* /healthz is as cheap as a 429 and must answer load balancers */
	if (core->rl && route != ROUTE_HEALTHZ) {
		pthread_mutex_lock(&core->lock);
		wait_ms = relay_ratelimit_take(core->rl, &req->client, req->now_ms);
		pthread_mutex_unlock(&core->lock);
	}
	if (wait_ms > 0) {
		resp->retry_after = ms_to_retry_after(wait_ms);
		set_error(resp, 429, "rate_limited",
			  "too many requests from your address (limit %u a minute); retry after "
			  "%u seconds",
			  core->cfg.rate, resp->retry_after);
	} else if (req->content_length_known && req->content_length > core->cfg.max_body) {
		set_error(resp, 413, "too_large",
			  "the request body is larger than the relay's limit of %zu bytes; send a "
			  "smaller record",
			  core->cfg.max_body);
	} else {
		return 0;
	}
	count(core, resp);
	return 1;
}

static void response_begin(const struct relay_request *req, enum route *ret_route,
			   const char **ret_allow, struct relay_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	*ret_route = route_find(req->path, ret_allow, &resp->route);
}

int relay_core_admit(struct relay_core *core, const struct relay_request *req,
		     struct relay_response *resp)
{
	enum route route;
	const char *allow;

	response_begin(req, &route, &allow, resp);
	return admit(core, req, route, resp);
}

void relay_core_handle(struct relay_core *core, const struct relay_request *req,
		       struct relay_response *resp)
{
	enum route route;
	enum method m = method_find(req->method);
	const char *allow;

	response_begin(req, &route, &allow, resp);
	if (!req->admitted && admit(core, req, route, resp))
		return;
	if (req->body_too_large || req->body_len > core->cfg.max_body) {
		set_error(resp, 413, "too_large",
			  "the request body is larger than the relay's limit of %zu bytes; send a "
			  "smaller record",
			  core->cfg.max_body);
		goto out;
	}
	switch (route) {
	case ROUTE_NONE:
		set_error(resp, 404, "not_found",
			  "no such endpoint; the relay serves /v1/records, /v1/splice, /healthz and "
			  "/metrics "
			  "(see docs/RELAY.md)");
		goto out;
	case ROUTE_HEALTHZ:
		if (m != METHOD_GET && m != METHOD_HEAD)
			break;
		set_json(resp, 200, json_pack("{s:s}", "status", "ok"));
		goto out;
	case ROUTE_METRICS:
		if (m != METHOD_GET && m != METHOD_HEAD)
			break;
		metrics(core, req, resp);
		goto out;
	case ROUTE_RECORDS:
		if (m == METHOD_OTHER)
			break;
		records(core, req, m, resp);
		goto out;
	case ROUTE_SPLICE:
		if (m != METHOD_GET)
			break;
		splice(core, req, resp);
		if (resp->splice)
			return; /* the HTTP layer answers and counts */
		goto out;
	}
	set_error(resp, 405, "method_not_allowed", "method not allowed on %s; use %s", resp->route,
		  allow);
	resp->allow = allow;
out:
	count(core, resp);
}

void relay_core_foreach_record(struct relay_core *core, int64_t now_ms, relay_store_visit_fn fn,
			       void *userdata)
{
	pthread_mutex_lock(&core->lock);
	relay_store_foreach(core->store, now_ms, fn, userdata);
	pthread_mutex_unlock(&core->lock);
}

void relay_core_count_closed(struct relay_core *core, int reason, unsigned n)
{
	if (reason < 0 || reason >= RELAY_CLOSE_COUNT)
		return;
	pthread_mutex_lock(&core->lock);
	core->metrics.closed[reason] += n;
	pthread_mutex_unlock(&core->lock);
}

void relay_core_count(struct relay_core *core, int status, int reason)
{
	struct relay_response resp = {.status = status, .reason = reason};

	count(core, &resp);
}

void relay_core_set_splice_stats(struct relay_core *core, relay_splice_stats_fn fn, void *userdata)
{
	core->splice_stats = fn;
	core->splice_stats_data = userdata;
}

size_t relay_core_record_count(struct relay_core *core, int64_t now_ms)
{
	size_t n;

	pthread_mutex_lock(&core->lock);
	n = relay_store_count(core->store, now_ms);
	pthread_mutex_unlock(&core->lock);
	return n;
}
