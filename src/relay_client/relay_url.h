/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_URL_H
#define TANDEM_RELAY_URL_H

#include <stdbool.h>

/*
 * What a relay URL exposes (docs/RELAY.md, "Plain http"). Over http the
 * relay's traffic is in the clear: anyone on the path can see who talks to
 * the relay and delete or withhold a record. That is harmless only when the
 * relay is on this machine, so `tandem up` warns about any other http URL.
 *
 * The host is read as libcurl reads it: the authority ends at the first
 * '/', '?' or '#', and userinfo ("user@") before it is skipped. A host is
 * loopback only when it provably is: "localhost" (any case), a dotted-quad
 * IPv4 address in 127.0.0.0/8, or the bracketed IPv6 [::1] (in any
 * spelling, or ::ffff:127.x.y.z). Anything else, short forms like
 * "127.1", a zone id or two '@' included, counts as remote: the check
 * errs towards warning.
 */

enum relay_url_kind {
	RELAY_URL_INVALID,	 /* NULL, not http:// or https://, or no host */
	RELAY_URL_HTTPS,	 /* https:// (any case) */
	RELAY_URL_HTTP_LOOPBACK, /* http:// to this machine */
	RELAY_URL_HTTP_REMOTE,	 /* http:// to anywhere else: warn */
};

enum relay_url_kind relay_url_classify(const char *url);

/*
 * Whether a libcurl result (a CURLcode) is a failure of TLS with the relay
 * (handshake, certificate, host name): the record client and the relayed
 * connections' dialer both report those as -EKEYREJECTED with the same
 * advice.
 */
bool relay_url_tls_failed(int curlcode);

#endif
