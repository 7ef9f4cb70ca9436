/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Design note. One thread, one event loop (base/evloop.h): it owns the
 * listening socket, every connection to the peer, the control socket, a
 * signalfd (SIGTERM, SIGINT, SIGHUP) and the lookup worker's eventfd; each
 * turn waits for the earliest of the connections', the dialer's and the
 * engine's deadlines. The
 * relay is talked to only from other threads (the publisher keeps our
 * record, the lookup worker fetches the peer's), because libcurl blocks.
 * Objects closed while a batch of events is dispatched are freed after the
 * batch (connmgr_reap, control_reap), so no event ever points to freed
 * memory. Start-up reports "ok" or the error on opts->ready_fd, which
 * `tandem up` waits for.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "base/err.h"
#include "base/clock.h"
#include "base/evloop.h"
#include "daemon/connmgr.h"
#include "daemon/control.h"
#include "daemon/daemon.h"
#include "daemon/syncd.h"
#include "daemon/lookup.h"
#include "daemon/testknobs.h"
#include "daemon/mountd.h"
#include "base/fsutil.h"
#include "base/log.h"
#include "relay_client/relay_publisher.h"
#include "relay_client/relay_url.h"
#include "daemon/sd_notify.h"

#define RELAY_TIMEOUT_MS 5000
#define RECORD_TTL_S 600
/* One relayed attempt waits at most this long for the peer: longer than
 * the relay's own wait (--splice-wait-timeout, 30 s), whose 504 then ends
 * it first. */
#define SPLICE_TIMEOUT_MS 45000

/*
 * The daemon: the one owner of its parts (docs/DAEMON.md, "Layers"). Each
 * part has its own struct and header and talks back only through the ops
 * it was given: the connection manager (connmgr.h, and under it each
 * connection, conn.h), the sync engine's watches (syncd.h), the mount
 * (mountd.h), the control socket (control.h). Only this file knows them
 * all and wires them together. Everything here belongs to the loop thread
 * (the process's main thread): no locks. The relay publisher and the
 * lookup worker have threads of their own and are reached only through
 * their APIs (relay_publisher.h, lookup.h).
 */
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
	uint32_t relay_after_ms;  /* no direct connection this long: relayed, 5000 */
	uint32_t relay_off_ms;	  /* the relay does not splice: ask again after, 300000 */
};

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
	int lock_fd;
	char listen_text[RECORD_ADDR_TEXT_MAX];
	int punch_fd;		/* holds the punch port (punch.h); -1 without */
	uint16_t punch_port;	/* 0 without */

	/* relay */
	struct relay_publisher *pub;
	struct lookup *lookup;
	struct peer_record self_rec; /* what we publish */
	char lookup_error[ERR_LEN];  /* "" once the lookup found the record */
	bool relay_unreachable;	     /* the last lookup could not reach it */
	char relay_warning[ERR_LEN]; /* plain http to another machine, or "" */

	struct connmgr cm;  /* the peer and our connections to it */
	struct syncd sync;  /* the sync engine */
	bool pump_wanted;   /* the active connection has room: the engine may send more */
	bool engine_down;   /* the active connection closed: tell the engine after the events */
	struct mountd mnt;  /* the FUSE mount with --mount */
	struct control ctl; /* the control socket and its clients */
};

/* Stops the loop after this batch of events; nothing dials or accepts
 * any more. */
static void daemon_stop(struct daemon *d)
{
	d->stop = true;
	connmgr_stop(&d->cm);
}

/* Log lines with a timestamp, for the log file of a background daemon. */
static void file_sink(enum log_level level, const char *msg, void *userdata)
{
	struct timespec ts;
	struct tm tm;
	char when[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld tandem[%ld]: %s: %s\n", when, ts.tv_nsec / 1000000,
		(long)getpid(), log_level_name(level), msg);
}

static void report_ready(const struct daemon *d, const char *err)
{
	char line[ERR_LEN + 16];
	int n;

	if (d->opts->ready_fd < 0)
		return;
	if (err)
		n = snprintf(line, sizeof(line), "error: %s\n", err);
	else
		n = snprintf(line, sizeof(line), "ok\n");
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	if (fs_write_all(d->opts->ready_fd, line, (size_t)n) < 0)
		log_debug("cannot tell 'tandem up' how start-up went: %s", strerror(errno));
}

static void on_signal(struct ev_watch *w, uint32_t events)
{
	struct daemon *d = w->ud;
	struct signalfd_siginfo si;

	while (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (!d->stop)
			log_info("stopping: received %s", si.ssi_signo == SIGTERM  ? "SIGTERM"
							  : si.ssi_signo == SIGINT ? "SIGINT"
										   : "SIGHUP");
		daemon_stop(d);
	}
}

static bool unreachable(int err)
{
	return err == -ECONNREFUSED || err == -EHOSTUNREACH || err == -ETIMEDOUT || err == -ENXIO ||
	       err == -EIO;
}

static void on_lookup(struct ev_watch *w, uint32_t events)
{
	struct daemon *d = w->ud;
	struct lookup_result res;
	struct relay_publisher_status ps;
	bool was_unreachable = d->relay_unreachable;

	if (!lookup_take(d->lookup, &res))
		return;
	d->relay_unreachable = res.err != 0 && unreachable(res.err);
	if (res.err == 0) {
		d->lookup_error[0] = '\0';
		connmgr_on_record(&d->cm, &res.rec);
	} else {
		if (strcmp(d->lookup_error, res.message) != 0)
			log_info("looking the peer up on the relay: %s; retrying", res.message);
		snprintf(d->lookup_error, sizeof(d->lookup_error), "%s", res.message);
	}
	/* The relay answers again: republish at once rather than at the end of
	 * the publisher's backoff. */
	if (was_unreachable && !d->relay_unreachable) {
		relay_publisher_get_status(d->pub, &ps);
		if (ps.last_error) {
			log_info("the relay %s answers again; publishing our record",
				 d->opts->relay_url);
			relay_publisher_update(d->pub, &d->self_rec);
		}
	}
}

static void tunables_load(struct daemon_tunables *t)
{
	uint32_t hb = (uint32_t)testknob_get(TESTKNOB_HEARTBEAT_MS, 2000);
	uint32_t bmax = (uint32_t)testknob_get(TESTKNOB_BACKOFF_MAX_MS, 10000);

	t->ping_ms = hb;
	t->dead_ms = 3 * hb;
	t->connect_ms = 5000;
	t->handshake_ms = 10000;
	t->fallback_ms = (uint32_t)testknob_get(TESTKNOB_FALLBACK_MS, 3000);
	t->reconnect.base_ms = bmax < 200 ? bmax : 200;
	t->reconnect.max_ms = bmax;
	/*
	 * Both peers usually start within a moment of each other, and the
	 * first one's first lookup finds no record yet: retry that soon
	 * (12-25 ms, then doubling), so pairing takes tens of milliseconds,
	 * not a quarter second. Ten attempts reach the 30 s cap.
	 */
	t->lookup.base_ms = bmax < 25 ? bmax : 25;
	t->lookup.max_ms = bmax < 30000 ? bmax : 30000;
	t->rekey_ms = (uint32_t)testknob_get(TESTKNOB_REKEY_MS, 3600 * 1000);
	t->rekey_frames = testknob_get(TESTKNOB_REKEY_FRAMES, FRAME_REKEY_FRAMES);
	t->clock_offset_s = testknob_clock_offset_s();
	t->relay_after_ms = (uint32_t)testknob_get(TESTKNOB_RELAY_AFTER_MS, 5000);
	t->relay_off_ms = 300000;
}

static int lock_take(struct daemon *d, struct err *err)
{
	char path[PATH_MAX], pid[32];
	int r, n;

	if ((size_t)snprintf(path, sizeof(path), "%s/tandem.lock", d->opts->paths->runtime) >=
	    sizeof(path)) {
		err_set(err, "the path of the lock file is too long");
		return -ENAMETOOLONG;
	}
	d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (d->lock_fd < 0) {
		r = -errno;
		err_set(err, "cannot open the lock file %s: %s", path, strerror(-r));
		return r;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		if (r == -EWOULDBLOCK)
			err_set(err,
				"another tandem daemon is running or starting for %s (it holds "
				"%s); 'tandem status' shows it, 'tandem down' stops it",
				d->opts->paths->config, path);
		else
			err_set(err, "cannot lock %s: %s", path, strerror(-r));
		return r;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(d->lock_fd, 0) < 0 || fs_write_all(d->lock_fd, pid, (size_t)n) < 0)
		log_debug("cannot write our pid into %s", path);
	return 0;
}

/*
 * The advertise test knob (testknobs.h): publish that one address instead
 * of the ones we listen on, so the peer dials it (the selftest's fault
 * proxy, which forwards to our real listener). A bad value is ignored with
 * a warning.
 */
static void advertise_override(struct peer_record *rec)
{
	const char *adv = testknob_advertise();
	struct listen_spec ls;
	struct record_addr a;
	struct err lerr;
	char q[80];

	if (!adv)
		return;
	if (listen_spec_parse(adv, &ls, &lerr) < 0 || ls.none || ls.wildcard ||
	    record_addr_from_sockaddr((const struct sockaddr *)&ls.ss, &a) < 0) {
		log_warn("ignoring the advertise test knob %s: not one ADDR:PORT with a port",
			 log_quote(adv, 64, q, sizeof(q)));
		return;
	}
	memset(rec->addrs, 0, sizeof(rec->addrs));
	rec->addrs[0] = a;
	rec->naddrs = 1;
	rec->flags |= RECORD_FLAG_INBOUND;
}

/* The connection manager's ops: the active connection is the engine's
 * transport. */
static void cm_on_active(void *ud, const struct conn *c, bool replaced)
{
	struct daemon *d = ud;
	struct engine *e = d->sync.engine;

	if (!replaced)
		(void)sdnotify_status("connected to the peer %s at %s", d->peer_text, c->addr);
	if (!e)
		return;
	/* a loss not yet told (engine_down) or the connection replaced: the
	 * engine starts over on the new one */
	if (d->engine_down || replaced) {
		d->engine_down = false;
		engine_on_down(e, clock_mono_ms());
	}
	engine_on_up(e, clock_mono_ms());
}

static void cm_on_inactive(void *ud)
{
	struct daemon *d = ud;

	/*
	 * Not engine_on_down() here: this runs inside the engine's own calls
	 * when a send fails or it closes the connection after a protocol
	 * error, and engine_on_down() frees what those calls are walking. The
	 * loop tells it after the current events.
	 */
	if (d->sync.engine)
		d->engine_down = true;
	if (!d->stop)
		(void)sdnotify_status("connecting to the peer %s (lost the connection)",
				      d->peer_text);
}

static void cm_on_msg(void *ud, const uint8_t *msg, size_t len)
{
	struct daemon *d = ud;

	if (d->sync.engine)
		(void)engine_on_msg(d->sync.engine, msg, len, clock_mono_ms());
}

static void cm_on_room(void *ud)
{
	struct daemon *d = ud;

	/* not engine_pump() here: this runs inside the engine's own sends */
	d->pump_wanted = true;
}

static void cm_want_record(void *ud)
{
	struct daemon *d = ud;

	lookup_request(d->lookup);
}

static const struct connmgr_ops cm_ops = {
	.on_active = cm_on_active,
	.on_inactive = cm_on_inactive,
	.on_msg = cm_on_msg,
	.on_room = cm_on_room,
	.want_record = cm_want_record,
};

/* The engine's transport and change notices. */
static int io_send(void *ud, const uint8_t *msg, size_t len)
{
	struct daemon *d = ud;

	return connmgr_send(&d->cm, msg, len);
}

static size_t io_room(void *ud)
{
	struct daemon *d = ud;

	return connmgr_room(&d->cm);
}

static void io_close(void *ud, const char *why)
{
	struct daemon *d = ud;

	connmgr_close_active(&d->cm, why);
}

static void io_changed(void *ud, const char *path)
{
	struct daemon *d = ud;

	mountd_changed(&d->mnt, path);
}

static void on_mount_gone(void *ud)
{
	struct daemon *d = ud;

	if (!d->stop)
		log_warn("the FUSE mount at \"%s\" went away (unmounted by someone else, or its "
			 "connection was aborted); stopping",
			 d->opts->mount);
	daemon_stop(d);
}

/* The control socket's ops: each part fills its own piece of the status. */
static void ctl_status(void *ud, struct daemon_status *st)
{
	struct daemon *d = ud;
	struct relay_publisher_status ps;

	st->stopping = d->stop;
	st->peer = d->peer_text;
	st->self = d->self_text;
	st->pid = (long long)getpid();
	st->relay = d->opts->relay_url;
	st->warning = d->relay_warning;
	st->dir = d->opts->dir;
	st->mount = d->opts->mount;
	st->listen = d->listen_text;
	st->version = TANDEM_VERSION;
	connmgr_status(&d->cm, &st->conn);
	relay_publisher_get_status(d->pub, &ps);
	if (ps.last_error)
		snprintf(st->relay_error, sizeof(st->relay_error), "%s", ps.message);
	else if (!st->conn.connected && d->lookup_error[0])
		snprintf(st->relay_error, sizeof(st->relay_error), "%s", d->lookup_error);
}

static void ctl_status_more(void *ud, json_t *o)
{
	struct daemon *d = ud;

	if (d->sync.engine)
		engine_status(d->sync.engine, o, clock_mono_ms());
}

static void ctl_down(void *ud)
{
	struct daemon *d = ud;

	if (!d->stop)
		log_info("stopping: asked to by 'tandem down'");
	daemon_stop(d);
}

static struct engine *ctl_engine(void *ud)
{
	struct daemon *d = ud;

	return d->sync.engine;
}

static const struct control_ops ctl_ops = {
	.status = ctl_status,
	.status_more = ctl_status_more,
	.down = ctl_down,
	.engine = ctl_engine,
};

static int setup(struct daemon *d, struct err *err)
{
	const struct daemon_opts *o = d->opts;
	struct relay_client_opts ro;
	struct record_addr bound = {0};
	struct stat st;
	sigset_t sigs;
	struct err lerr, rerr;
	int r;

	r = evloop_new(&d->loop);
	if (r < 0) {
		err_set(err, "cannot create an epoll instance: %s", strerror(-r));
		return r;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	d->sig_w.fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	d->sig_w.on_event = on_signal;
	d->sig_w.ud = d;
	if (d->sig_w.fd < 0 || evloop_watch_add(d->loop, &d->sig_w, EPOLLIN) < 0) {
		r = -errno;
		err_set(err, "cannot watch for signals: %s", strerror(-r));
		return r;
	}

	r = lock_take(d, err);
	if (r < 0)
		return r;
	/* We hold the lock: a socket file left there is a crashed daemon's. */
	if (lstat(o->sock_path, &st) == 0) {
		log_info("removing the stale control socket %s left by a daemon that did not stop "
			 "cleanly",
			 o->sock_path);
		(void)unlink(o->sock_path);
	}

	struct engine_io io = {.ud = d,
			       .send = io_send,
			       .room = io_room,
			       .close = io_close,
			       .changed = o->mount ? io_changed : NULL};
	r = syncd_start(&d->sync, d->loop, o, &io, err);
	if (r < 0)
		return r;
	if (o->mount) {
		r = mountd_start(&d->mnt, d->loop, d->sync.engine, o->mount, o->mount_opts, o->dir,
				 on_mount_gone, d, err);
		if (r < 0)
			return r;
	}

	/* --relay-data always: no direct connection either way, so nothing to
	 * listen on and a record that says so (the peer then goes relayed) */
	struct listen_spec ls = o->listen;
	if (o->relay_data == CONNPOLICY_RELAY_ALWAYS)
		ls.none = true;
	if (!ls.none) {
		r = listen_open(&ls, &d->listen_w.fd, &bound, &lerr);
		if (r < 0) {
			err_set(err, "%s", lerr.msg);
			return r;
		}
		d->listen_w.on_event = connmgr_on_listen;
		d->listen_w.ud = &d->cm;
		r = evloop_watch_add(d->loop, &d->listen_w, EPOLLIN);
		if (r < 0) {
			err_set(err, "cannot watch the listening socket: %s", strerror(-r));
			return r;
		}
		record_addr_format(&bound, d->listen_text);
	}
	listen_record_fill(&ls, &bound, &d->self_rec);
	if (!ls.none)
		advertise_override(&d->self_rec);
	if (o->relay_data == CONNPOLICY_RELAY_ALWAYS) {
		log_info("relayed connections only (--relay-data always): accepting and making "
			 "no direct connections");
	} else if (ls.none) {
		log_info("accepting no connections (--listen none): the peer must accept ours");
	} else {
		char addrs[RECORD_MAX_ADDRS * (RECORD_ADDR_TEXT_MAX + 2)] = "";
		size_t n = 0;
		for (unsigned i = 0; i < d->self_rec.naddrs; i++) {
			char a[RECORD_ADDR_TEXT_MAX];
			record_addr_format(&d->self_rec.addrs[i], a);
			n += (size_t)snprintf(addrs + n, sizeof(addrs) - n, "%s%s", i ? ", " : "",
					      a);
		}
		log_info("listening for the peer on %s (publishing %s)", d->listen_text, addrs);
	}

	/* The punch port: our requests to the relay go out from it, so the
	 * relay tells us what it maps to, and hole punches start from it.
	 * None with --relay-data always: a punched connection is direct, and
	 * would replace the relayed one that option asks for. */
	r = o->relay_data == CONNPOLICY_RELAY_ALWAYS ? 0 : punch_port_open(&d->punch_port);
	if (o->relay_data == CONNPOLICY_RELAY_ALWAYS) {
		d->punch_port = 0;
	} else if (r < 0) {
		log_info("cannot reserve a port for hole punching (%s); connecting without",
			 strerror(-r));
		d->punch_port = 0;
	} else {
		d->punch_fd = r;
		log_debug("hole punching from port %u", d->punch_port);
	}

	connmgr_init(&d->cm,
		     &(struct connmgr_cfg){.env = {.loop = d->loop,
						   .id = o->id,
						   .peer = &o->peer,
						   .ping_ms = d->tun.ping_ms,
						   .dead_ms = d->tun.dead_ms,
						   .connect_ms = d->tun.connect_ms,
						   .handshake_ms = d->tun.handshake_ms,
						   .rekey_frames = d->tun.rekey_frames,
						   .rekey_ms = d->tun.rekey_ms},
					   .peer_text = d->peer_text,
					   .self_lower = d->self_lower,
					   .we_accept = d->listen_w.fd >= 0,
					   .fallback_ms = d->tun.fallback_ms,
					   .reconnect = d->tun.reconnect,
					   .relay = o->relay_data,
					   .relay_url = o->relay_url,
					   .relay_after_ms = d->tun.relay_after_ms,
					   .splice_timeout_ms = SPLICE_TIMEOUT_MS,
					   .relay_off_ms = d->tun.relay_off_ms,
					   .clock_offset_s = d->tun.clock_offset_s,
					   .punch_port = d->punch_port},
		     &cm_ops, d, clock_mono_ms());
	r = connmgr_relay_start(&d->cm, err);
	if (r < 0)
		return r;

	if (relay_url_classify(o->relay_url) == RELAY_URL_HTTP_REMOTE) {
		snprintf(d->relay_warning, sizeof(d->relay_warning),
			 "the relay %s is plain http to another machine: anyone on the way can "
			 "see which peers use the relay and delete or withhold our record (the "
			 "channel itself stays encrypted); use an https:// relay URL",
			 o->relay_url);
		log_warn("%s", d->relay_warning);
	}
	relay_client_opts_init(&ro);
	ro.timeout_ms = RELAY_TIMEOUT_MS;
	ro.clock_offset_s = d->tun.clock_offset_s;
	struct relay_client_opts pro = ro;
	pro.local_port = d->punch_port; /* the relay tells us what it maps to */
	r = relay_publisher_start(o->relay_url, &pro, o->id, &d->self_rec, RECORD_TTL_S, &d->pub,
				  &rerr);
	if (r < 0) {
		err_set(err, "cannot start publishing our record: %s",
			err_is_set(&rerr) ? rerr.msg : strerror(-r));
		return r;
	}
	r = lookup_start(o->relay_url, &ro, &o->peer, &d->tun.lookup, &d->lookup, &rerr);
	if (r < 0) {
		err_set(err, "%s", rerr.msg);
		return r;
	}
	d->lookup_w.fd = lookup_notify_fd(d->lookup);
	d->lookup_w.on_event = on_lookup;
	d->lookup_w.ud = d;
	r = evloop_watch_add(d->loop, &d->lookup_w, EPOLLIN);
	if (r < 0) {
		d->lookup_w.fd = -1;
		err_set(err, "cannot watch the lookup worker: %s", strerror(-r));
		return r;
	}
	lookup_request(d->lookup);

	return control_open(&d->ctl, d->loop, o->sock_path, &ctl_ops, d, err);
}

static void loop(struct daemon *d)
{
	while (!d->stop) {
		struct engine *e = d->sync.engine;
		uint64_t now = clock_mono_ms(), next = connmgr_deadline(&d->cm);
		if (e && engine_deadline(e) < next)
			next = engine_deadline(e);
		if (d->pump_wanted)
			next = now;
		int r = evloop_run_once(d->loop, next);

		if (r < 0) {
			log_err("epoll_wait failed: %s; stopping", strerror(-r));
			break;
		}
		connmgr_tick(&d->cm, clock_mono_ms());
		if (e)
			engine_tick(e, clock_mono_ms());
		if (e && d->engine_down) {
			d->engine_down = false;
			engine_on_down(e, clock_mono_ms());
		}
		if (e && d->pump_wanted) {
			d->pump_wanted = false;
			engine_pump(e, clock_mono_ms());
		}
		connmgr_reap(&d->cm);
		control_reap(&d->ctl);
	}
}

static void teardown(struct daemon *d)
{
	if (d->loop)
		(void)sdnotify_stopping();
	daemon_stop(d);
	evloop_watch_close(d->loop, &d->listen_w);
	connmgr_shutdown(&d->cm);
	/* unmount first: nothing writes into the store behind the engine's back */
	mountd_stop(&d->mnt);
	syncd_stop(&d->sync);
	/* The lookup worker's eventfd is its own: stop watching, it closes it. */
	if (d->loop)
		evloop_watch_del(d->loop, &d->lookup_w);
	d->lookup_w.fd = -1;
	lookup_stop(d->lookup);
	d->lookup = NULL;
	/* Deletes our record from the relay. */
	relay_publisher_stop(d->pub);
	d->pub = NULL;
	control_close(&d->ctl);
	evloop_watch_close(d->loop, &d->sig_w);
	evloop_free(d->loop);
	d->loop = NULL;
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	if (d->punch_fd >= 0)
		close(d->punch_fd);
	d->punch_fd = -1;
}

int daemon_run(const struct daemon_opts *opts)
{
	struct daemon *d;
	struct err err = {.msg = ""};
	int r;

	if (!opts->foreground)
		log_set_sink(file_sink, NULL);
	d = calloc(1, sizeof(*d));
	if (!d) {
		report_ready(&(struct daemon){.opts = opts}, "out of memory");
		return 1;
	}
	d->opts = opts;
	d->lock_fd = -1;
	d->punch_fd = -1;
	d->sig_w.fd = -1;
	d->lookup_w.fd = -1;
	d->listen_w.fd = -1;
	d->ctl.listen_w.fd = -1;
	d->sync.inotify_w.fd = d->sync.hash_w.fd = d->sync.work_w.fd = -1;
	d->sync.ensure_w.fd = d->sync.hold_w.fd = -1;
	d->mnt.tfs_w.fd = -1;
	tunables_load(&d->tun);
	fp_format(&opts->id->fp, d->self_text);
	fp_format(&opts->peer, d->peer_text);
	d->self_lower = memcmp(opts->id->fp.b, opts->peer.b, FP_BYTES) < 0;

	log_info("tandem %s starting (pid %ld): this peer is %s, the peer is %s, relay %s, "
		 "folder %s%s%s",
		 TANDEM_VERSION, (long)getpid(), d->self_text, d->peer_text, opts->relay_url,
		 opts->dir, opts->mount ? " mounted at " : "", opts->mount ? opts->mount : "");
	r = setup(d, &err);
	if (r < 0) {
		log_err("%s", err.msg);
		report_ready(d, err.msg);
		teardown(d);
		free(d);
		return 1;
	}
	log_info("ready: control socket %s", opts->sock_path);
	report_ready(d, NULL);
	if (sdnotify_ready() < 0)
		log_debug("cannot tell the service manager that we are ready");
	(void)sdnotify_status("connecting to the peer %s", d->peer_text);

	loop(d);

	teardown(d);
	log_info("stopped");
	free(d);
	if (!opts->foreground)
		log_set_sink(NULL, NULL);
	return 0;
}
