/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_DAEMON_INT_H
#define TANDEM_DAEMON_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>
#include <time.h>

#include "base/err.h"
#include "base/backoff.h"
#include "base/evloop.h"
#include "daemon/daemon.h"
#include "identity/record.h"
#include "relay_client/relay_client.h"

/*
 * The daemon's shared state. Everything in struct daemon belongs to the
 * loop thread (the process's main thread): no locks. The relay publisher
 * and the lookup worker have threads of their own and are reached only
 * through their APIs (relay_publisher.h, lookup.h).
 */

struct daemon;
struct conn;
struct ctl_client;
struct engine;
struct tfs;

struct daemon_tunables {
	uint32_t ping_ms;	  /* PING interval: 2000 */
	uint32_t dead_ms;	  /* no frame for this long: dead (3 pings) */
	uint32_t connect_ms;	  /* TCP connect: 5000 */
	uint32_t handshake_ms;	  /* handshake: 10000 */
	uint32_t fallback_ms;	  /* we dial if the peer has not after: 3000 */
	struct backoff reconnect; /* 200 .. 10000 ms */
	struct backoff lookup;	  /* 250 .. 30000 ms */
	uint64_t rekey_frames;	  /* frames per send key: FRAME_REKEY_FRAMES */
	uint32_t rekey_ms;	  /* and at most this long: one hour */
	int64_t clock_offset_s;	  /* added to the wall clock for the relay: 0 */
};

#define DAEMON_SOCK_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

struct daemon {
	const struct daemon_opts *opts;
	struct daemon_tunables tun;
	char self_text[FP_TEXT_LEN + 1];
	char peer_text[FP_TEXT_LEN + 1];
	bool self_lower; /* our fingerprint sorts before the peer's */
	struct evloop *loop;
	bool stop;
	struct ev_watch sig_w;
	struct ev_watch lookup_w;
	struct ev_watch listen_w; /* fd -1 with --listen none */
	struct ev_watch ctl_w;
	int lock_fd;
	char listen_text[RECORD_ADDR_TEXT_MAX];

	/* relay */
	struct relay_publisher *pub;
	struct lookup *lookup;
	struct peer_record self_rec;	  /* what we publish */
	char lookup_error[ERR_LEN];	  /* "" once the lookup found the record */
	bool relay_unreachable;		  /* the last lookup could not reach it */

	/* the peer and our connections to it (connmgr.c) */
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
	char last_error[ERR_LEN];    /* "" when none yet */
	char relay_warning[ERR_LEN]; /* plain http to another machine, or "" */

	/* the sync engine (syncd.c) */
	struct engine *engine;
	struct ev_watch inotify_w;
	struct ev_watch hash_w;
	struct ev_watch work_w;
	bool pump_wanted; /* the active connection sent data: the engine may send more */
	bool engine_down; /* the active connection closed: tell the engine after the events */

	/* the FUSE mount with --mount (mountd.c), or NULL */
	struct tfs *tfs;
	struct ev_watch tfs_w; /* tfs_event_fd: the mount went away */

	/* control clients (control.c) */
	struct ctl_client *clients;
	unsigned nclients;
};

/* Remembers a connection-level error for `tandem status` (last_error). */
void daemon_set_error(struct daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
