/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_RELAY_HTTP_SPLICE_H
#define TANDEM_RELAY_HTTP_SPLICE_H

#include <stdbool.h>

#include <microhttpd.h>

#include "relay.h"
#include "relay_addr.h"
#include "relay_core.h"

/*
 * GET /v1/splice on microhttpd (docs/RELAY.md, "Relayed connections"):
 * the glue between relay_http.c's callbacks, the rendezvous table
 * (relay_pairing.h) and the pump (relay_splice.h). Internal to relay/.
 *
 * Flow. A request that passed the core's checks is suspended
 * (MHD_suspend_connection: no reply, no timeout) and joins the table. The
 * first side stays suspended until the other side comes, its wait
 * deadline passes (504), a newer connection of the same side replaces it
 * (409) or the relay stops (503); the second side, and a refused request,
 * are resumed at once. A resumed request's access handler runs again and
 * queues the answer it was given. Both sides get "101 Switching Protocols";
 * once microhttpd has sent both and handed over both sockets (the upgrade
 * handler), the pair goes to the pump. When the pump ends a session, both
 * sockets are given back to microhttpd to close (MHD_UPGRADE_ACTION_CLOSE).
 *
 * Lock order: microhttpd's own locks, then the hub's (microhttpd calls
 * back with its locks held, so the hub calls microhttpd only after
 * releasing its lock); the core's lock is never taken with the hub's. The
 * pump's callbacks take the hub's lock; the pump's lock comes after it.
 */

struct splice_hub;
struct splice_half;

/* Returns 0, -EINVAL (bad limits) or -ENOMEM. */
int splice_hub_new(const struct relay_config *cfg, struct relay_core *core, struct splice_hub **ret)
	__attribute__((warn_unused_result));
void splice_hub_free(struct splice_hub *hub);
int splice_hub_start(struct splice_hub *hub) __attribute__((warn_unused_result));

/* Answers every waiting side (503), ends every spliced session and stops the pump. */
void splice_hub_stop(struct splice_hub *hub);

/*
 * A GET /v1/splice the core let through (resp->splice; resp is released
 * here). *ret_half is the request's state until splice_hub_completed.
 * Returns what the access handler returns.
 */
enum MHD_Result splice_hub_request(struct splice_hub *hub, struct MHD_Connection *conn,
				   const struct relay_client_key *client,
				   struct relay_response *resp, struct splice_half **ret_half);

/* The access handler runs again for a resumed half: queue its answer. */
enum MHD_Result splice_hub_resumed(struct splice_hub *hub, struct MHD_Connection *conn,
				   struct splice_half *half);

/*
 * microhttpd is done with the request of half (it was upgraded, or its
 * answer was sent, or the connection failed). Returns true when the
 * connection was upgraded: it carries no more HTTP.
 */
bool splice_hub_completed(struct splice_hub *hub, struct splice_half *half);

/* relay_http.c's reply writer (adds the common headers, releases resp). */
enum MHD_Result relay_http_respond(struct MHD_Connection *conn, const char *method,
				   struct relay_response *resp);

#endif
