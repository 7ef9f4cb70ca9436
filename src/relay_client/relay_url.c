/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Design note. The question is whether plain http can leave this machine,
 * so the parse is the conservative half of libcurl's: the same split of
 * scheme, authority and userinfo, but a host counts as loopback only in
 * the strict spellings of relay_url.h. A spelling curl would also take for
 * loopback (127.1, 0x7f.0.0.1) gets a needless warning, never the reverse.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "relay_client/relay_url.h"

#define HOST_MAX 256

static bool ipv4_loopback(const char *host)
{
	struct in_addr a;

	/* inet_pton takes only four decimal parts, without leading zeros */
	return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static bool ipv6_loopback(const char *host)
{
	struct in6_addr a;

	if (inet_pton(AF_INET6, host, &a) != 1)
		return false;
	if (IN6_IS_ADDR_LOOPBACK(&a))
		return true;
	return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
}

/* A port: empty or digits only. */
static bool port_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

/* Is the authority a[0..n) (no scheme, no path) this machine? */
static bool authority_loopback(const char *a, size_t n)
{
	char host[HOST_MAX];
	const char *at = memchr(a, '@', n), *end;
	size_t hn;

	if (at) {
		if (memchr(at + 1, '@', n - (size_t)(at + 1 - a)))
			return false; /* two '@': readers disagree on the host */
		n -= (size_t)(at + 1 - a);
		a = at + 1;
	}
	if (n && a[0] == '[') {
		end = memchr(a, ']', n);
		if (!end)
			return false;
		hn = (size_t)(end - a - 1);
		if (hn >= sizeof(host))
			return false;
		memcpy(host, a + 1, hn);
		host[hn] = '\0';
		end++;
		if (end < a + n && (*end != ':' || !port_ok(end + 1, (size_t)(a + n - end - 1))))
			return false;
		return ipv6_loopback(host);
	}
	end = memchr(a, ':', n);
	hn = end ? (size_t)(end - a) : n;
	if (hn == 0 || hn >= sizeof(host))
		return false;
	if (end && !port_ok(end + 1, n - hn - 1))
		return false;
	memcpy(host, a, hn);
	host[hn] = '\0';
	return strcasecmp(host, "localhost") == 0 || ipv4_loopback(host);
}

enum relay_url_kind relay_url_classify(const char *url)
{
	const char *a;
	size_t n;

	if (!url)
		return RELAY_URL_INVALID;
	if (strncasecmp(url, "https://", 8) == 0)
		return url[8] && url[8] != '/' ? RELAY_URL_HTTPS : RELAY_URL_INVALID;
	if (strncasecmp(url, "http://", 7) != 0)
		return RELAY_URL_INVALID;
	a = url + 7;
	n = strcspn(a, "/?#");
	if (n == 0)
		return RELAY_URL_INVALID;
	return authority_loopback(a, n) ? RELAY_URL_HTTP_LOOPBACK : RELAY_URL_HTTP_REMOTE;
}

bool relay_url_tls_failed(int curlcode)
{
	switch ((CURLcode)curlcode) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_USE_SSL_FAILED:
		return true;
	default:
		return false;
	}
}
