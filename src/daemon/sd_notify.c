/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/sd_notify.h"

/* Fills *ret_addr / *ret_len from "/path" or "@abstract". */
static int parse_addr(const char *s, struct sockaddr_un *ret_addr, socklen_t *ret_len)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = strlen(s);

	if (s[0] == '/') {
		if (n >= sizeof(a.sun_path))
			return -EINVAL;
		memcpy(a.sun_path, s, n + 1);
		*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	} else if (s[0] == '@') {
		/* Abstract: a leading NUL, the name, and no terminator counted. */
		if (n < 2 || n > sizeof(a.sun_path))
			return -EINVAL;
		a.sun_path[0] = '\0';
		memcpy(a.sun_path + 1, s + 1, n - 1);
		*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		/* Relative paths and other families (vsock:) are not supported. */
		return -EINVAL;
	}
	*ret_addr = a;
	return 0;
}

int sdnotify_send_to(const char *socket_addr, const char *state)
{
	struct sockaddr_un addr;
	socklen_t addrlen;
	size_t len;
	ssize_t n;
	int fd, r;

	if (!socket_addr || !socket_addr[0])
		return 0;
	if (!state || !state[0])
		return -EINVAL;
	len = strlen(state);
	if (len > SDNOTIFY_STATE_MAX)
		return -EMSGSIZE;
	r = parse_addr(socket_addr, &addr, &addrlen);
	if (r < 0)
		return r;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do {
		n = sendto(fd, state, len, MSG_NOSIGNAL | MSG_DONTWAIT,
			   (const struct sockaddr *)&addr, addrlen);
	} while (n < 0 && errno == EINTR);
	r = n < 0 ? -errno : ((size_t)n == len ? 1 : -EMSGSIZE);
	close(fd);
	return r;
}

int sdnotify_send(const char *state)
{
	return sdnotify_send_to(getenv("NOTIFY_SOCKET"), state);
}

int sdnotify_ready(void)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "READY=1\nMAINPID=%ld", (long)getpid());
	return sdnotify_send(buf);
}

int sdnotify_stopping(void)
{
	return sdnotify_send("STOPPING=1");
}

int sdnotify_status(const char *fmt, ...)
{
	const char *socket_addr = getenv("NOTIFY_SOCKET");
	const size_t pre = sizeof("STATUS=") - 1;
	char buf[512];
	va_list ap;

	/* Not even formatted when nobody listens. */
	if (!socket_addr || !socket_addr[0])
		return 0;
	memcpy(buf, "STATUS=", pre);
	va_start(ap, fmt);
	/* A status longer than the buffer is cut; that is fine for a status. */
	(void)vsnprintf(buf + pre, sizeof(buf) - pre, fmt, ap);
	va_end(ap);
	for (char *p = buf + pre; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return sdnotify_send_to(socket_addr, buf);
}
