/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "base/clock.h"
#include "base/err.h"
#include "daemon/conn.h"
#include "daemon/control.h"
#include "daemon/control_req.h"
#include "daemon/dio.h"
#include "base/log.h"
#include "sync/engine.h"
#include "relay_client/relay_publisher.h"

struct ctl_client {
	struct ev_watch w; /* first */
	struct daemon *d;
	struct ctl_client *next;
	char in[CONTROL_REQUEST_MAX + 1];
	size_t inlen;
	struct dio_buf out;
	bool closing; /* close once out is sent */
	bool dead;
};

static void client_kill(struct ctl_client *cl)
{
	if (cl->dead)
		return;
	cl->dead = true;
	evloop_watch_close(cl->d->loop, &cl->w);
	dio_buf_free(&cl->out);
}

static void client_flush(struct ctl_client *cl)
{
	if (dio_buf_flush(&cl->out, cl->w.fd) < 0) {
		client_kill(cl);
		return;
	}
	if (cl->out.len == 0 && cl->closing) {
		client_kill(cl);
		return;
	}
	evloop_watch_set(cl->d->loop, &cl->w, cl->out.len ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void reply(struct ctl_client *cl, json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6));

	json_decref(obj);
	if (!text || dio_buf_append(&cl->out, text, strlen(text)) < 0 ||
	    dio_buf_append(&cl->out, "\n", 1) < 0) {
		log_warn("cannot answer a control request: out of memory");
		cl->closing = true;
	}
	free(text);
}

static void reply_error(struct ctl_client *cl, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reply_error(struct ctl_client *cl, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply(cl, json_pack("{s:s, s:s}", "error", code, "message", msg));
}

static json_t *str_or_null(const char *s)
{
	return s && s[0] ? json_string(s) : json_null();
}

static json_t *status_json(struct daemon *d)
{
	struct relay_publisher_status ps;
	const struct conn *a = d->active;
	const char *relay_error = NULL;
	const char *state = d->stop ? "stopping" : a ? "connected" : "connecting";
	json_t *o;

	relay_publisher_get_status(d->pub, &ps);
	if (ps.last_error)
		relay_error = ps.message;
	else if (!a && d->lookup_error[0])
		relay_error = d->lookup_error;
	o = json_pack("{s:s, s:s, s:s, s:o, s:I, s:s, s:o, s:o, s:o, s:I, s:o, s:i, s:i, s:[], "
		      "s:s, s:s, s:o, s:o}",
		      "state", state, "peer", d->peer_text, "self", d->self_text, "rtt_ms",
		      a && a->srtt_us ? json_real((double)a->srtt_us / 1000.0) : json_null(), "pid",
		      (json_int_t)getpid(), "relay", d->opts->relay_url, "relay_error",
		      str_or_null(relay_error), "peer_addr", a ? json_string(a->addr) : json_null(),
		      "connected_since",
		      d->connected_since ? json_integer(d->connected_since) : json_null(),
		      "reconnects", (json_int_t)(d->established ? d->established - 1 : 0),
		      "last_error", str_or_null(d->last_error), "files_in_sync", 0, "files_pending",
		      0, "transfers", "dir", d->opts->dir, "version", TANDEM_VERSION, "listen",
		      str_or_null(d->listen_text), "mount", str_or_null(d->opts->mount));
	if (o) {
		json_t *w = json_array();
		if (w && d->relay_warning[0])
			json_array_append_new(w, json_string(d->relay_warning));
		json_object_set_new(o, "warnings", w ? w : json_null());
	}
	if (o && d->engine)
		engine_status(d->engine, o, clock_mono_ms());
	return o;
}

#if HAVE_SELFTEST
/*
 * Hidden test seam for lazy mode, only in builds with the selftest
 * (testknobs.h): {"cmd":"ensure","path":P,"offset":O,
 * "length":L} (length -1 or absent: the whole file) calls engine_ensure on
 * a thread, which answers on a dup of the client socket itself, so the
 * loop keeps fetching meanwhile. The engine outlives the thread
 * (engine_free waits for engine_ensure callers).
 */
struct ensure_job {
	struct engine *engine;
	int fd;
	char *path;
	uint64_t off, len;
};

static void *ensure_thread(void *arg)
{
	struct ensure_job *j = arg;
	int r = engine_ensure(j->engine, j->path, NULL, j->off, j->len, 10000);
	char line[160];
	int n = r == 0 ? snprintf(line, sizeof(line), "{\"ok\":true}\n")
		       : snprintf(line, sizeof(line),
				  "{\"error\":\"ensure_failed\",\"message\":\"%s\"}\n",
				  strerror(-r));
	(void)!send(j->fd, line, (size_t)n, MSG_NOSIGNAL);
	close(j->fd);
	free(j->path);
	free(j);
	return NULL;
}

static void handle_ensure(struct ctl_client *cl, struct control_request *req)
{
	struct ensure_job *j;
	pthread_attr_t at;
	pthread_t t;
	sigset_t all, old;
	int r;

	if (!cl->d->engine) {
		reply_error(cl, "bad_request", "ensure needs \"path\", \"offset\", \"length\"");
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		reply_error(cl, "internal", "out of memory");
		return;
	}
	j->engine = cl->d->engine;
	j->path = req->path; /* the job owns it now */
	req->path = NULL;
	j->off = req->off;
	j->len = req->len;
	/* shares O_NONBLOCK with the loop's fd: the one short line fits anyway */
	j->fd = fcntl(cl->w.fd, F_DUPFD_CLOEXEC, 0);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = j->fd < 0 ? errno : pthread_create(&t, &at, ensure_thread, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&at);
	if (r != 0) {
		if (j->fd >= 0)
			close(j->fd);
		free(j->path);
		free(j);
		reply_error(cl, "internal", "cannot start the ensure: %s", strerror(r));
	}
}
#endif /* HAVE_SELFTEST */

static void handle_line(struct ctl_client *cl, const char *line, size_t len)
{
	struct daemon *d = cl->d;
	struct control_request req;
	struct err err;
	const char *code;

	if (control_request_parse(line, len, &req, &code, &err) < 0) {
		reply_error(cl, code, "%s", err.msg);
		return;
	}
	switch (req.cmd) {
	case CONTROL_CMD_STATUS: {
		json_t *st = status_json(d);
		if (st)
			reply(cl, st);
		else
			reply_error(cl, "internal", "cannot build the status: out of memory");
		break;
	}
	case CONTROL_CMD_DOWN:
		reply(cl, json_pack("{s:b, s:I}", "ok", 1, "pid", (json_int_t)getpid()));
		if (!d->stop)
			log_info("stopping: asked to by 'tandem down'");
		d->stop = true;
		break;
	case CONTROL_CMD_ENSURE:
#if HAVE_SELFTEST
		handle_ensure(cl, &req);
#endif
		break;
	}
	control_request_done(&req);
}

static void client_read(struct ctl_client *cl)
{
	for (;;) {
		ssize_t n = recv(cl->w.fd, cl->in + cl->inlen, CONTROL_REQUEST_MAX - cl->inlen, 0);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			/* End of requests: answer a last one without newline, then close. */
			if (n == 0 && cl->inlen)
				handle_line(cl, cl->in, cl->inlen);
			cl->inlen = 0;
			cl->closing = true;
			break;
		}
		cl->inlen += (size_t)n;
		while (!cl->closing && (nl = memchr(cl->in, '\n', cl->inlen))) {
			size_t len = (size_t)(nl - cl->in);
			handle_line(cl, cl->in, len);
			memmove(cl->in, nl + 1, cl->inlen - len - 1);
			cl->inlen -= len + 1;
		}
		if (cl->inlen == CONTROL_REQUEST_MAX) {
			reply_error(cl, "request_too_large",
				    "a request line is limited to %d bytes", CONTROL_REQUEST_MAX);
			cl->inlen = 0;
			cl->closing = true;
		}
		if (cl->closing)
			break;
	}
	client_flush(cl);
}

static void client_on_event(struct ev_watch *w, uint32_t events)
{
	struct ctl_client *cl = (struct ctl_client *)w;

	if (cl->dead)
		return;
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		client_read(cl);
	else
		client_flush(cl);
}

static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return cred.uid == getuid() || cred.uid == 0;
}

/* At the client limit, the oldest client (it connected first and is still
 * there: stuck or idle) makes way for the new one. */
static void make_room(struct daemon *d)
{
	struct ctl_client *oldest = NULL;
	unsigned live = 0;

	for (struct ctl_client *cl = d->clients; cl; cl = cl->next) {
		if (cl->dead)
			continue;
		live++;
		oldest = cl; /* the list is newest first */
	}
	if (live >= CONTROL_CLIENTS_MAX && oldest) {
		log_debug("too many control connections: closing the oldest");
		client_kill(oldest);
	}
}

static void listen_on_event(struct ev_watch *w, uint32_t events)
{
	struct daemon *d = w->ud;
	for (int i = 0; i < 8; i++) {
		struct ctl_client *cl;
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("cannot accept a control connection: %s", strerror(errno));
			return;
		}
		if (!peer_allowed(fd)) {
			log_debug("refusing a control connection from another user");
			close(fd);
			continue;
		}
		make_room(d);
		cl = calloc(1, sizeof(*cl));
		if (!cl) {
			close(fd);
			continue;
		}
		cl->w.fd = fd;
		cl->w.on_event = client_on_event;
		cl->w.ud = d;
		cl->d = d;
		dio_buf_init(&cl->out, CONTROL_REPLY_BUF_MAX);
		if (evloop_watch_add(d->loop, &cl->w, EPOLLIN) < 0) {
			close(fd);
			free(cl);
			continue;
		}
		cl->next = d->clients;
		d->clients = cl;
		d->nclients++;
	}
}

int control_open(struct daemon *d, struct err *err)
{
	const char *path = d->opts->sock_path;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	mode_t old;
	int fd, r;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		err_set(err,
			"the control socket path %s is longer than %zu bytes; use a shorter "
			"--home",
			path, sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		err_set(err, "cannot create the control socket: %s", strerror(-r));
		return r;
	}
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
	umask(old);
	if (r == 0 && chmod(path, 0600) < 0)
		r = -errno;
	if (r == 0 && listen(fd, 8) < 0)
		r = -errno;
	if (r == 0) {
		d->ctl_w.fd = fd;
		d->ctl_w.on_event = listen_on_event;
		d->ctl_w.ud = d;
		r = evloop_watch_add(d->loop, &d->ctl_w, EPOLLIN);
		if (r < 0)
			d->ctl_w.fd = -1;
	}
	if (r < 0) {
		err_set(err,
			"cannot listen on the control socket %s: %s; check that the directory "
			"exists and is writable",
			path, strerror(-r));
		close(fd);
		(void)unlink(path);
		return r;
	}
	return 0;
}

void control_reap(struct daemon *d)
{
	struct ctl_client **pp = &d->clients;

	while (*pp) {
		struct ctl_client *cl = *pp;
		if (cl->dead) {
			*pp = cl->next;
			d->nclients--;
			free(cl);
		} else {
			pp = &cl->next;
		}
	}
}

void control_close(struct daemon *d)
{
	for (struct ctl_client *cl = d->clients; cl; cl = cl->next) {
		if (!cl->dead)
			(void)dio_buf_flush(&cl->out, cl->w.fd);
		client_kill(cl);
	}
	control_reap(d);
	if (d->ctl_w.fd >= 0) {
		evloop_watch_close(d->loop, &d->ctl_w);
		(void)unlink(d->opts->sock_path);
	}
}
