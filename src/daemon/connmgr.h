/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_CONNMGR_H
#define TANDEM_DAEMON_CONNMGR_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/daemon_int.h"

/*
 * The connection rules (docs/DAEMON.md, "Connections"): who dials and
 * when, which of two connections to keep, reconnecting with backoff after
 * a loss. Loop thread only.
 */

struct conn;

/* A connection was made (conn_dial/conn_accept): link it in. */
void connmgr_add(struct daemon *d, struct conn *c);

/* The lookup worker found the peer's record. */
void connmgr_on_record(struct daemon *d, const struct peer_record *rec);

/* c finished its handshake and the peer proved itself. */
void connmgr_on_up(struct daemon *d, struct conn *c);

/* c was closed (it is DEAD; was_up: it had been UP). */
void connmgr_on_closed(struct daemon *d, struct conn *c, bool was_up);

/* The listening socket is readable: accept. */
void connmgr_on_listen(struct ev_watch *w, uint32_t events);

/* Runs due timers of the manager and of every connection. */
void connmgr_tick(struct daemon *d, uint64_t now);

/* The next time connmgr_tick() has something to do, or UINT64_MAX. */
uint64_t connmgr_deadline(const struct daemon *d);

/* Frees the connections closed since the last call (after each batch of
 * events, so no event refers to freed memory). */
void connmgr_reap(struct daemon *d);

/* Closes every connection with a CLOSE frame (shutting down) and frees them. */
void connmgr_shutdown(struct daemon *d);

#endif
