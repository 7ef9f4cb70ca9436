/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Design note. One thread, one epoll loop: it owns the listening socket,
 * every connection to the peer, the control socket, a signalfd (SIGTERM,
 * SIGINT, SIGHUP) and the lookup worker's eventfd; timers are the epoll
 * timeout, computed from the connections' and the dialer's deadlines. The
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
#include "daemon/conn.h"
#include "daemon/connmgr.h"
#include "daemon/control.h"
#include "daemon/daemon_int.h"
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

void daemon_set_error(struct daemon *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->last_error, sizeof(d->last_error), fmt, ap);
	va_end(ap);
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
		d->stop = true;
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
		connmgr_on_record(d, &res.rec);
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
	t->lookup.base_ms = bmax < 250 ? bmax : 250;
	t->lookup.max_ms = bmax < 30000 ? bmax : 30000;
	t->rekey_ms = (uint32_t)testknob_get(TESTKNOB_REKEY_MS, 3600 * 1000);
	t->rekey_frames = testknob_get(TESTKNOB_REKEY_FRAMES, FRAME_REKEY_FRAMES);
	t->clock_offset_s = testknob_clock_offset_s();
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

	r = syncd_start(d, err);
	if (r < 0)
		return r;
	if (o->mount) {
		r = mountd_start(d, err);
		if (r < 0)
			return r;
	}

	if (!o->listen.none) {
		r = listen_open(&o->listen, &d->listen_w.fd, &bound, &lerr);
		if (r < 0) {
			err_set(err, "%s", lerr.msg);
			return r;
		}
		d->listen_w.on_event = connmgr_on_listen;
		d->listen_w.ud = d;
		r = evloop_watch_add(d->loop, &d->listen_w, EPOLLIN);
		if (r < 0) {
			err_set(err, "cannot watch the listening socket: %s", strerror(-r));
			return r;
		}
		record_addr_format(&bound, d->listen_text);
	}
	listen_record_fill(&o->listen, &bound, &d->self_rec);
	if (!o->listen.none)
		advertise_override(&d->self_rec);
	if (o->listen.none) {
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
	r = relay_publisher_start(o->relay_url, &ro, o->id, &d->self_rec, RECORD_TTL_S, &d->pub,
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

	return control_open(d, err);
}

static void loop(struct daemon *d)
{
	while (!d->stop) {
		uint64_t now = clock_mono_ms(), next = connmgr_deadline(d);
		if (d->engine && engine_deadline(d->engine) < next)
			next = engine_deadline(d->engine);
		if (d->pump_wanted)
			next = now;
		int r = evloop_run_once(d->loop, next);

		if (r < 0) {
			log_err("epoll_wait failed: %s; stopping", strerror(-r));
			break;
		}
		connmgr_tick(d, clock_mono_ms());
		if (d->engine)
			engine_tick(d->engine, clock_mono_ms());
		if (d->engine && d->engine_down) {
			d->engine_down = false;
			engine_on_down(d->engine, clock_mono_ms());
		}
		if (d->engine && d->pump_wanted) {
			d->pump_wanted = false;
			engine_pump(d->engine, clock_mono_ms());
		}
		connmgr_reap(d);
		control_reap(d);
	}
}

static void teardown(struct daemon *d)
{
	if (d->loop)
		(void)sdnotify_stopping();
	d->stop = true;
	evloop_watch_close(d->loop, &d->listen_w);
	connmgr_shutdown(d);
	/* unmount first: nothing writes into the store behind the engine's back */
	mountd_stop(d);
	syncd_stop(d);
	/* The lookup worker's eventfd is its own: stop watching, it closes it. */
	if (d->loop)
		evloop_watch_del(d->loop, &d->lookup_w);
	d->lookup_w.fd = -1;
	lookup_stop(d->lookup);
	d->lookup = NULL;
	/* Deletes our record from the relay. */
	relay_publisher_stop(d->pub);
	d->pub = NULL;
	control_close(d);
	evloop_watch_close(d->loop, &d->sig_w);
	evloop_free(d->loop);
	d->loop = NULL;
	if (d->lock_fd >= 0)
		close(d->lock_fd);
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
	d->sig_w.fd = -1;
	d->lookup_w.fd = -1;
	d->listen_w.fd = -1;
	d->ctl_w.fd = -1;
	d->inotify_w.fd = -1;
	d->hash_w.fd = -1;
	d->work_w.fd = -1;
	d->tfs_w.fd = -1;
	tunables_load(&d->tun);
	fp_format(&opts->id->fp, d->self_text);
	fp_format(&opts->peer, d->peer_text);
	d->self_lower = memcmp(opts->id->fp.b, opts->peer.b, FP_BYTES) < 0;
	d->waiting_since_ms = clock_mono_ms();

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
