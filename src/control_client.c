/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "control_client.h"
#include "fsutil.h"

struct control_client {
	int fd;
	size_t len; /* bytes in buf */
	char buf[CONTROL_REPLY_MAX + 1];
};

int control_path_get(const struct tandem_paths *paths, char out[static CONTROL_PATH_MAX])
{
	int n = snprintf(out, CONTROL_PATH_MAX, "%s/%s", paths->runtime, CONTROL_SOCKET_NAME);

	return (n < 0 || n >= CONTROL_PATH_MAX) ? -ENAMETOOLONG : 0;
}

int control_client_open(const char *path, struct control_client **ret)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct control_client *c;
	int r;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		r = -errno;
		free(c);
		return r;
	}
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		r = -errno;
		control_client_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

/* Waits for fd to become readable until the deadline. */
static int wait_readable(int fd, long long deadline)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	for (;;) {
		long long left = deadline - (long long)clock_mono_ms();
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int control_client_call(struct control_client *c, const char *req, int timeout_ms, json_t **ret,
			const char **ret_raw)
{
	long long deadline = (long long)clock_mono_ms() + timeout_ms;
	json_error_t jerr;
	char *nl;
	json_t *j;
	int r;

	c->len = 0;
	r = fs_write_all(c->fd, req, strlen(req));
	if (r == 0)
		r = fs_write_all(c->fd, "\n", 1);
	if (r < 0)
		return r;
	while (!(nl = memchr(c->buf, '\n', c->len))) {
		ssize_t n;

		if (c->len == CONTROL_REPLY_MAX)
			return -EPROTO;
		r = wait_readable(c->fd, deadline);
		if (r < 0)
			return r;
		n = read(c->fd, c->buf + c->len, CONTROL_REPLY_MAX - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		c->len += (size_t)n;
	}
	*nl = '\0';
	j = json_loads(c->buf, 0, &jerr);
	if (!json_is_object(j)) {
		json_decref(j);
		return -EPROTO;
	}
	*ret = j;
	if (ret_raw)
		*ret_raw = c->buf;
	return 0;
}

int control_client_wait_close(struct control_client *c, int timeout_ms)
{
	long long deadline = (long long)clock_mono_ms() + timeout_ms;
	char sink[512];

	for (;;) {
		int r = wait_readable(c->fd, deadline);
		ssize_t n;

		if (r < 0)
			return r;
		n = read(c->fd, sink, sizeof(sink));
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return 0;
	}
}

void control_client_free(struct control_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}
