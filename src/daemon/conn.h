/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_CONN_H
#define TANDEM_DAEMON_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "chan/frame.h"
#include "chan/handshake.h"
#include "daemon/daemon_int.h"
#include "daemon/dio.h"
#include "daemon/hello.h"

/*
 * One TCP connection to the peer, driven by the loop: connect (outbound),
 * the secure channel handshake (docs/CHANNEL.md) under a deadline, then
 * frames: our HELLO, heartbeats with RTT, CLOSE. What to do with a
 * connection (keep it, replace it, dial again) is connmgr.c's business:
 * conn calls connmgr_on_up() and connmgr_on_closed().
 *
 * States:
 *   CONNECTING  outbound TCP connect in progress
 *   HANDSHAKE   handshake messages flowing
 *   CONFIRMING  outbound only: our handshake is done, but the responder has
 *               not yet shown (with a first frame) that it accepted us
 *   UP          established: both sides proved who they are
 *   DEAD        closed; freed by connmgr_reap()
 */

#define CONN_MAX 16			 /* connections at once, handshakes included */
#define CONN_OUT_MAX (2 * FRAME_MAX_LEN) /* bytes queued for a peer that does not read */

enum conn_state {
	CONN_CONNECTING,
	CONN_HANDSHAKE,
	CONN_CONFIRMING,
	CONN_UP,
	CONN_DEAD,
};

struct conn {
	struct ev_watch w; /* first */
	struct daemon *d;
	struct conn *next;
	enum conn_state state;
	bool outbound;
	uint64_t serial;
	char addr[RECORD_ADDR_TEXT_MAX];
	uint64_t deadline_ms; /* until UP */
	struct hs *hs;
	uint8_t hsbuf[HS_MSG_MAX];
	size_t hslen;	 /* bytes of the current handshake message held */
	size_t hsneed;	 /* its full length once the header was read, else 0 */
	size_t bytes_in; /* received before UP, for messages */
	struct frame_enc *enc;
	struct frame_dec *dec;
	struct dio_buf out;
	bool hello_seen;
	uint64_t up_ms;
	uint64_t last_rx_ms;
	uint64_t next_ping_ms;
	uint64_t start_us; /* PONGs must echo a time after this */
	uint64_t srtt_us;  /* smoothed RTT, 0 when unknown */
	uint64_t rekey_at_ms; /* when the send key is an hour old: rekey */
};

/*
 * Starts an outbound connection to a. Returns 0 and *ret (connecting), or
 * -errno when even the socket could not be started (logged at debug).
 */
int conn_dial(struct daemon *d, const struct record_addr *a, struct conn **ret)
	__attribute__((warn_unused_result));

/* Takes over an accepted socket fd from the address ss. Returns 0 or -errno
 * (fd closed). */
int conn_accept(struct daemon *d, int fd, const struct sockaddr_storage *ss)
	__attribute__((warn_unused_result));

/*
 * Closes c: an established connection first gets a CLOSE frame with code
 * (none when code < 0) and text. Then connmgr_on_closed() runs and c is
 * DEAD. No-op on a DEAD connection.
 */
void conn_close(struct conn *c, int code, const char *text);

/* Sends one DATA frame. Returns 0, or -errno (the connection is closed). */
int conn_send_data(struct conn *c, const uint8_t *payload, size_t len);

/* Timers: deadlines, PINGs, dead-peer detection, the hourly rekey. */
void conn_tick(struct conn *c, uint64_t now);

/* The next time conn_tick() has something to do, or UINT64_MAX. */
uint64_t conn_deadline(const struct conn *c);

/* Frees a DEAD connection (connmgr_reap). */
void conn_free(struct conn *c);

#endif
