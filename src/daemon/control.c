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
#include "daemon/control.h"
#include "daemon/control_req.h"
#include "daemon/dio.h"
#include "base/log.h"
#include "sync/engine.h"

struct ctl_client {
	struct ev_watch w; /* first */
	struct control *ctl;
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
	evloop_watch_close(cl->ctl->loop, &cl->w);
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
	evloop_watch_set(cl->ctl->loop, &cl->w, cl->out.len ? EPOLLIN | EPOLLOUT : EPOLLIN);
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

static json_t *status_json(struct control *ctl)
{
	struct daemon_status st;
	json_t *o;

	memset(&st, 0, sizeof(st));
	ctl->ops->status(ctl->ud, &st);
	o = control_status_json(&st);
	if (o && ctl->ops->status_more)
		ctl->ops->status_more(ctl->ud, o);
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

	struct engine *engine = cl->ctl->ops->engine ? cl->ctl->ops->engine(cl->ctl->ud) : NULL;

	if (!engine) {
		reply_error(cl, "bad_request", "ensure needs \"path\", \"offset\", \"length\"");
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		reply_error(cl, "internal", "out of memory");
		return;
	}
	j->engine = engine;
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
	struct control *ctl = cl->ctl;
	struct control_request req;
	struct err err;
	const char *code;

	if (control_request_parse(line, len, &req, &code, &err) < 0) {
		reply_error(cl, code, "%s", err.msg);
		return;
	}
	switch (req.cmd) {
	case CONTROL_CMD_STATUS: {
		json_t *st = status_json(ctl);
		if (st)
			reply(cl, st);
		else
			reply_error(cl, "internal", "cannot build the status: out of memory");
		break;
	}
	case CONTROL_CMD_DOWN:
		reply(cl, json_pack("{s:b, s:I}", "ok", 1, "pid", (json_int_t)getpid()));
		ctl->ops->down(ctl->ud);
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
static void make_room(struct control *ctl)
{
	struct ctl_client *oldest = NULL;
	unsigned live = 0;

	for (struct ctl_client *cl = ctl->clients; cl; cl = cl->next) {
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
	struct control *ctl = w->ud;

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
		make_room(ctl);
		cl = calloc(1, sizeof(*cl));
		if (!cl) {
			close(fd);
			continue;
		}
		cl->w.fd = fd;
		cl->w.on_event = client_on_event;
		cl->w.ud = cl;
		cl->ctl = ctl;
		dio_buf_init(&cl->out, CONTROL_REPLY_BUF_MAX);
		if (evloop_watch_add(ctl->loop, &cl->w, EPOLLIN) < 0) {
			close(fd);
			free(cl);
			continue;
		}
		cl->next = ctl->clients;
		ctl->clients = cl;
		ctl->nclients++;
	}
}

int control_open(struct control *ctl, struct evloop *loop, const char *sock_path,
		 const struct control_ops *ops, void *ud, struct err *err)
{
	const char *path = sock_path;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	mode_t old;
	int fd, r;

	ctl->loop = loop;
	ctl->sock_path = sock_path;
	ctl->ops = ops;
	ctl->ud = ud;
	ctl->listen_w.fd = -1;
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
		ctl->listen_w.fd = fd;
		ctl->listen_w.on_event = listen_on_event;
		ctl->listen_w.ud = ctl;
		r = evloop_watch_add(ctl->loop, &ctl->listen_w, EPOLLIN);
		if (r < 0)
			ctl->listen_w.fd = -1;
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

void control_reap(struct control *ctl)
{
	struct ctl_client **pp = &ctl->clients;

	while (*pp) {
		struct ctl_client *cl = *pp;
		if (cl->dead) {
			*pp = cl->next;
			ctl->nclients--;
			free(cl);
		} else {
			pp = &cl->next;
		}
	}
}

void control_close(struct control *ctl)
{
	for (struct ctl_client *cl = ctl->clients; cl; cl = cl->next) {
		if (!cl->dead)
			(void)dio_buf_flush(&cl->out, cl->w.fd);
		client_kill(cl);
	}
	control_reap(ctl);
	if (ctl->listen_w.fd >= 0) {
		evloop_watch_close(ctl->loop, &ctl->listen_w);
		(void)unlink(ctl->sock_path);
	}
}
