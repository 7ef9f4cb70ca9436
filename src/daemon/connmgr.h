/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_CONNMGR_H
#define TANDEM_DAEMON_CONNMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/backoff.h"
#include "base/err.h"
#include "base/evloop.h"
#include "daemon/conn.h"
#include "daemon/connpolicy.h"
#include "daemon/punch.h"
#include "identity/record.h"

/*
 * The connection manager (docs/DAEMON.md, "Connections" and "Layers"):
 * owns every connection to the peer, asks connpolicy.h what to do (who
 * dials and when, which of two connections to keep, when to dial again)
 * and does it. Exactly one connection is "active": the sync engine's
 * transport. The manager talks to its owner (the daemon) through struct
 * connmgr_ops only. Loop thread only.
 */

struct connmgr_ops {
	/* A connection became the active one (replaced: it took over from
	 * another active one, which is being closed). */
	void (*on_active)(void *ud, const struct conn *c, bool replaced);
	/* The active connection closed; no connection is active now. Called
	 * from inside sends: do not send from here. */
	void (*on_inactive)(void *ud);
	/* A DATA message on the active connection. */
	void (*on_msg)(void *ud, const uint8_t *msg, size_t len);
	/* The active connection has room to send again. Called from inside
	 * sends: do not send from here. */
	void (*on_room)(void *ud);
	/* Ask the relay for the peer's record again (its address may have
	 * changed); the answer comes to connmgr_on_record(). */
	void (*want_record)(void *ud);
};

struct connmgr_cfg {
	struct conn_env env;
	const char *peer_text;	  /* the peer's fingerprint, for messages */
	bool self_lower;	  /* our fingerprint sorts before the peer's */
	bool we_accept;		  /* we listen for connections */
	uint32_t fallback_ms;	  /* we dial if the peer has not after: 3000 */
	struct backoff reconnect; /* 200 .. 10000 ms, each path its own count */
	/* the relayed transport (docs/DAEMON.md, "Two transports") */
	enum connpolicy_relay relay; /* --relay-data */
	const char *relay_url;	     /* the relay that splices; borrowed */
	uint32_t relay_after_ms;     /* no direct connection this long: relayed (5000) */
	uint32_t splice_timeout_ms;  /* one relayed attempt at most (45000) */
	uint32_t relay_off_ms;	     /* the relay does not splice: ask again after (300000) */
	int64_t clock_offset_s;	     /* added to the wall clock for the token's bucket */
	uint16_t punch_port;	  /* our punch port (punch.h); 0: no hole punching */
};

struct connmgr {
	struct connmgr_cfg cfg;
	const struct connmgr_ops *ops;
	void *ud;
	bool stopping;
	struct conn *conns; /* every connection, newest first */
	unsigned nconns;
	struct conn *active;  /* the established connection, or NULL */
	struct conn *dialing; /* our outbound attempt in progress, or NULL */
	bool have_rec;
	struct peer_record rec; /* the peer's newest record */
	uint8_t dial_order[RECORD_MAX_ADDRS];
	unsigned dial_n;	   /* addresses in this round */
	unsigned dial_next;	   /* the next one to try */
	uint64_t next_dial_ms;	   /* when to start a round; 0: none planned */
	uint64_t backoff_until_ms; /* no round before this */
	uint64_t waiting_since_ms; /* not connected since */
	unsigned failures;	   /* rounds failed in a row */
	unsigned established;	   /* times we went from connecting to connected */
	time_t connected_since;	   /* unix seconds; 0 when not connected */
	uint64_t serial;	   /* numbers connections in creation order */
	bool warned_no_inbound;
	char last_error[ERR_LEN]; /* "" when none yet */
	/* relayed attempts (NULL splicer: --relay-data never) */
	struct splicer *splicer;
	struct ev_watch splice_w;
	struct conn *relay_pending;	       /* spliced, its handshake under way, or NULL */
	uint64_t next_relay_ms;		       /* when to ask the relay; 0: none planned */
	uint64_t relay_backoff_until_ms;       /* no relayed attempt before this */
	unsigned relay_failures;	       /* relayed attempts failed in a row */
	bool relay_off_said;		       /* "the relay does not splice" logged */
	char relay_name[RECORD_ADDR_TEXT_MAX]; /* "relay HOST:PORT", for messages */
	/* hole punching (punch.h), towards rec.observed */
	struct punch_attempt punch;
	uint64_t punch_at_ms;	/* monotonic: start the planned attempt; 0 none */
	uint64_t punch_slot_ms; /* wall clock: its slot */
	uint64_t punch_last_slot_ms;
	unsigned punches;	/* attempts made */
};

/* What `tandem status` shows of the connections (control_status.h). */
struct connmgr_status {
	bool connected;
	enum conn_path path;		      /* of the active connection */
	char peer_addr[RECORD_ADDR_TEXT_MAX]; /* "" when not connected */
	uint64_t srtt_us;		      /* 0 when unknown */
	time_t connected_since;		      /* 0 when not connected */
	unsigned reconnects;		      /* established again after the first */
	char last_error[ERR_LEN];	      /* "" when none */
};

/* Sets m up (no connection yet; waiting since now). */
void connmgr_init(struct connmgr *m, const struct connmgr_cfg *cfg, const struct connmgr_ops *ops,
		  void *ud, uint64_t now);

/* The lookup worker found the peer's record. */
void connmgr_on_record(struct connmgr *m, const struct peer_record *rec);

/* Starts the relayed transport's dialer (with --relay-data fallback or
 * always; a no-op with never). Returns 0, or -errno with err set. */
int connmgr_relay_start(struct connmgr *m, struct err *err) __attribute__((warn_unused_result));

/* An ev_watch callback for the listening socket (w->ud: the connmgr):
 * accepts. */
void connmgr_on_listen(struct ev_watch *w, uint32_t events);

/* Runs due timers of the manager and of every connection. */
void connmgr_tick(struct connmgr *m, uint64_t now);

/* The next time connmgr_tick() has something to do, or UINT64_MAX. */
uint64_t connmgr_deadline(const struct connmgr *m);

/* Sends one message on the active connection. Returns 0, -ENOTCONN when
 * none is UP, or -errno (that connection is closed). */
int connmgr_send(struct connmgr *m, const uint8_t *msg, size_t len);

/* Bytes of one message the active connection takes now (0: none, or full). */
size_t connmgr_room(const struct connmgr *m);

/* Closes the active connection after a protocol error (why: logged and
 * sent in the CLOSE frame). */
void connmgr_close_active(struct connmgr *m, const char *why);

/* Remembers a connection-level error for `tandem status` (last_error). */
void connmgr_set_error(struct connmgr *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Fills *ret for `tandem status`. */
void connmgr_status(const struct connmgr *m, struct connmgr_status *ret);

/* Frees the connections closed since the last call (after each batch of
 * events, so no event refers to freed memory). */
void connmgr_reap(struct connmgr *m);

/* No more dialing, accepting or reconnecting (the daemon is stopping). */
void connmgr_stop(struct connmgr *m);

/* Stops, closes every connection with a CLOSE frame (shutting down) and
 * frees them. */
void connmgr_shutdown(struct connmgr *m);

#endif
