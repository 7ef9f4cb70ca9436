/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_CONN_H
#define TANDEM_DAEMON_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "base/err.h"
#include "base/evloop.h"
#include "chan/frame.h"
#include "chan/handshake.h"
#include "daemon/connpolicy.h"
#include "daemon/dio.h"
#include "daemon/hello.h"
#include "identity/fingerprint.h"
#include "identity/identity.h"
#include "identity/record.h"

/*
 * One TCP connection to the peer, driven by the loop: connect (outbound),
 * the secure channel handshake (docs/CHANNEL.md) under a deadline, then
 * frames: our HELLO, heartbeats with RTT, CLOSE. What to do with a
 * connection (keep it, replace it, dial again) is its owner's business
 * (connmgr.c): conn knows nothing of it nor of the daemon, and reports
 * through the ops its owner gave it (struct conn_ops). It is the direct
 * transport (CONN_PATH_DIRECT); a relayed one hands the same ops the same
 * events (docs/DAEMON.md, "Layers").
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

struct conn;

/* What every connection needs; owned by connmgr, outlives its connections. */
struct conn_env {
	struct evloop *loop;
	const struct identity *id;     /* ours */
	const struct fingerprint *peer; /* the one we accept */
	uint32_t ping_ms;	       /* PING interval: 2000 */
	uint32_t dead_ms;	       /* no frame for this long: dead (3 pings) */
	uint32_t connect_ms;	       /* TCP connect: 5000 */
	uint32_t handshake_ms;	       /* handshake: 10000 */
	uint64_t rekey_frames;	       /* frames per send key: FRAME_REKEY_FRAMES */
	uint32_t rekey_ms;	       /* and at most this long: one hour */
};

/*
 * How a connection talks to its owner (loop thread; ud is the owner's).
 * Each may close connections (c too) but must not free them: a DEAD
 * connection is freed with conn_free() after the batch of events.
 */
struct conn_ops {
	/* The peer proved who it is: c is UP. */
	void (*on_up)(struct conn *c, void *ud);
	/* One DATA message after the peer's HELLO (the sync engine's). */
	void (*on_msg)(struct conn *c, void *ud, const uint8_t *msg, size_t len);
	/* Queued bytes went out: there is room to send more. */
	void (*on_room)(struct conn *c, void *ud);
	/* c is DEAD now; was_up: it had been UP; error: what went wrong, for
	 * `tandem status` last_error, or NULL (a normal close, a replaced one). */
	void (*on_closed)(struct conn *c, void *ud, bool was_up, const char *error);
};

struct conn {
	struct ev_watch w; /* first */
	const struct conn_env *env;
	const struct conn_ops *ops;
	void *ud;
	struct conn *next; /* the owner's list link */
	enum conn_path path;
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
	bool data_since_ping; /* a DATA frame went either way since the last PING */
	uint64_t start_us; /* PONGs must echo a time after this */
	uint64_t srtt_us;  /* smoothed RTT, 0 when unknown */
	uint64_t rekey_at_ms; /* when the send key is an hour old: rekey */
	char error[ERR_LEN];  /* why it is closing, for on_closed; "" when none */
};

/*
 * Starts an outbound connection to a (serial numbers connections in
 * creation order). Returns 0 and *ret (connecting), or -errno when even the
 * socket could not be started; when the connect itself failed at once err
 * holds the sentence for last_error (else it is left cleared).
 */
int conn_dial(const struct conn_env *env, const struct conn_ops *ops, void *ud, uint64_t serial,
	      const struct record_addr *a, struct conn **ret, struct err *err)
	__attribute__((warn_unused_result));

/* Takes over an accepted socket fd from the address ss. Returns 0 and *ret,
 * or -errno (fd closed). */
int conn_accept(const struct conn_env *env, const struct conn_ops *ops, void *ud, uint64_t serial,
		int fd, const struct sockaddr_storage *ss, struct conn **ret)
	__attribute__((warn_unused_result));

/*
 * Takes over fd, a connected stream socket that reaches the peer over path
 * (a relayed transport's spliced stream, or a test's socketpair), and runs
 * the handshake on it: as the initiator when initiator (the connection
 * then counts as outbound, and the handshake starts on the loop's first
 * turn), else as the responder. addr names the way in messages (at most
 * RECORD_ADDR_TEXT_MAX - 1 bytes are kept). Returns 0 and *ret, or -errno
 * (fd closed). No op runs before it returns.
 */
int conn_adopt(const struct conn_env *env, const struct conn_ops *ops, void *ud, uint64_t serial,
	       int fd, bool initiator, enum conn_path path, const char *addr, struct conn **ret)
	__attribute__((warn_unused_result));

/*
 * Closes c: an established connection first gets a CLOSE frame with code
 * (none when code < 0) and text. Then c is DEAD and ops->on_closed runs.
 * No-op on a DEAD connection.
 */
void conn_close(struct conn *c, int code, const char *text);

/* Sends one DATA frame. Returns 0, or -errno (the connection is closed). */
int conn_send_data(struct conn *c, const uint8_t *payload, size_t len);

/* How many bytes of DATA payload may be sent now without filling the
 * send buffer (0 when not UP). */
size_t conn_room(const struct conn *c);

/* Timers: deadlines, PINGs, dead-peer detection, the hourly rekey. */
void conn_tick(struct conn *c, uint64_t now);

/* The next time conn_tick() has something to do, or UINT64_MAX. */
uint64_t conn_deadline(const struct conn *c);

/* Frees a connection (closing it first if it is not DEAD). NULL: no-op. */
void conn_free(struct conn *c);

#endif
