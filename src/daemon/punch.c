/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/punch.h"

uint64_t punch_next_slot(const struct punch_facts *f)
{
	uint64_t s;

	if (!f->have_port || !f->peer_observed || !f->family_ok || f->direct_up || f->stopping ||
	    f->running)
		return 0;
	/* the slot under way, if it began just now; else the next one */
	s = f->now_ms / PUNCH_SLOT_MS * PUNCH_SLOT_MS;
	if (f->now_ms - s >= PUNCH_JOIN_MS || (f->last_slot_ms && s <= f->last_slot_ms))
		s += PUNCH_SLOT_MS;
	while ((f->last_slot_ms && s <= f->last_slot_ms) || s < f->since_ms + PUNCH_AFTER_MS)
		s += PUNCH_SLOT_MS;
	/* after the first minute only the slow slots */
	if (s > f->since_ms + PUNCH_EAGER_MS && s % PUNCH_SLOW_SLOT_MS != 0) {
		s = (s / PUNCH_SLOW_SLOT_MS + 1) * PUNCH_SLOW_SLOT_MS;
		/* the slow slot under way is joined like any other */
		uint64_t cur = f->now_ms / PUNCH_SLOW_SLOT_MS * PUNCH_SLOW_SLOT_MS;
		if (f->now_ms - cur < PUNCH_JOIN_MS && cur > f->last_slot_ms &&
		    cur > f->since_ms + PUNCH_EAGER_MS)
			s = cur;
	}
	return s;
}

static int punch_sockopt(int fd)
{
	int on = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
		return -errno;
	return 0;
}

static int bound_socket(int family, uint16_t port, int *ret_fd)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, off = 0, r;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_any;
		in6->sin6_port = htons(port);
		sl = sizeof(*in6);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_ANY);
		in->sin_port = htons(port);
		sl = sizeof(*in);
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	r = punch_sockopt(fd);
	if (r == 0 && family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0)
		r = -errno;
	if (r == 0 && bind(fd, (struct sockaddr *)&ss, sl) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int punch_port_open(uint16_t *ret_port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd, r;

	r = bound_socket(AF_INET6, 0, &fd);
	if (r < 0)
		r = bound_socket(AF_INET, 0, &fd); /* no IPv6 here */
	if (r < 0)
		return r;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						   : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* One connect() from the punch port. */
static void try_connect(struct punch_attempt *a, uint64_t now)
{
	struct sockaddr_storage to;
	socklen_t tl;
	int r;

	a->tries++;
	r = bound_socket(a->to.family == 6 ? AF_INET6 : AF_INET, a->port, &a->fd);
	if (r < 0) {
		a->fd = -1;
		a->last_error = r;
		a->next_ms = now + PUNCH_RETRY_MS;
		return;
	}
	record_addr_to_sockaddr(&a->to, &to, &tl);
	if (connect(a->fd, (struct sockaddr *)&to, tl) < 0 && errno != EINPROGRESS) {
		a->last_error = -errno;
		close(a->fd);
		a->fd = -1;
		a->next_ms = now + PUNCH_RETRY_MS;
		return;
	}
	a->next_ms = now + PUNCH_POLL_MS;
}

void punch_attempt_start(struct punch_attempt *a, uint16_t port, const struct record_addr *to,
			 uint64_t now, uint32_t window_ms)
{
	memset(a, 0, sizeof(*a));
	a->running = true;
	a->fd = -1;
	a->port = port;
	a->to = *to;
	a->end_ms = now + window_ms;
	try_connect(a, now);
}

enum punch_poll punch_attempt_poll(struct punch_attempt *a, uint64_t now, int *ret_fd)
{
	if (!a->running)
		return PUNCH_GAVE_UP;
	if (a->fd >= 0) {
		struct pollfd p = {.fd = a->fd, .events = POLLOUT};
		if (poll(&p, 1, 0) > 0) {
			int e = 0;
			socklen_t el = sizeof(e);
			if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
				e = errno;
			if (e == 0) {
				*ret_fd = a->fd;
				a->fd = -1;
				a->running = false;
				return PUNCH_CONNECTED;
			}
			/* refused (the other side is not connecting yet), or
			 * unreachable: a fresh socket after a pause */
			a->last_error = -e;
			close(a->fd);
			a->fd = -1;
			a->next_ms = now + PUNCH_RETRY_MS;
		} else {
			a->next_ms = now + PUNCH_POLL_MS;
		}
	} else if (now >= a->next_ms && now < a->end_ms) {
		try_connect(a, now);
	}
	if (now >= a->end_ms) {
		punch_attempt_stop(a);
		return PUNCH_GAVE_UP;
	}
	if (a->next_ms > a->end_ms)
		a->next_ms = a->end_ms;
	return PUNCH_RUNNING;
}

uint64_t punch_attempt_deadline(const struct punch_attempt *a)
{
	return a->running ? a->next_ms : UINT64_MAX;
}

void punch_attempt_stop(struct punch_attempt *a)
{
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	a->running = false;
}
