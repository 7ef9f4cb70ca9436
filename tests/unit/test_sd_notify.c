/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/sd_notify.h"
#include "tap.h"

/*
 * A stand-in for systemd's notify socket: an AF_UNIX datagram socket with
 * SO_PASSCRED, bound to a path or an abstract name. recv_note() returns what
 * one sd_notify datagram carried and the sender's pid from the credentials.
 */

static char tmpdir[] = "/tmp/tandem-test-sdnotify-XXXXXX";

static int bind_listener(const char *addr_text)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	socklen_t len;
	int one = 1;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (addr_text[0] == '@') {
		size_t n = strlen(addr_text);
		memcpy(a.sun_path + 1, addr_text + 1, n - 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", addr_text);
		len = (socklen_t)sizeof(a);
	}
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Receives one datagram into buf (NUL-terminated); *ret_pid from SCM_CREDENTIALS. */
static int recv_note(int fd, char *buf, size_t size, pid_t *ret_pid)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = size - 1};
	struct msghdr m = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = &ctl,
		.msg_controllen = sizeof(ctl),
	};
	ssize_t n;

	*ret_pid = 0;
	if (poll(&p, 1, 2000) != 1)
		return -ETIMEDOUT;
	n = recvmsg(fd, &m, MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred cred;
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			*ret_pid = cred.pid;
		}
	}
	return (int)n;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

TEST(unset_is_a_noop)
{
	unsetenv("NOTIFY_SOCKET");
	CHECK_INT_EQ(sdnotify_ready(), 0);
	CHECK_INT_EQ(sdnotify_stopping(), 0);
	CHECK_INT_EQ(sdnotify_status("connecting to %s", "peer"), 0);
	CHECK_INT_EQ(sdnotify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	CHECK_INT_EQ(sdnotify_ready(), 0);
	CHECK_INT_EQ(sdnotify_status("x"), 0);
	CHECK_INT_EQ(sdnotify_send_to(NULL, "READY=1"), 0);
	unsetenv("NOTIFY_SOCKET");
}

TEST(ready_to_a_path_socket)
{
	char path[sizeof(tmpdir) + 16], buf[256], want[64];
	pid_t pid;
	int fd;

	snprintf(path, sizeof(path), "%s/notify", tmpdir);
	fd = bind_listener(path);
	REQUIRE(fd >= 0);
	setenv("NOTIFY_SOCKET", path, 1);

	CHECK_INT_EQ(sdnotify_ready(), 1);
	snprintf(want, sizeof(want), "READY=1\nMAINPID=%ld", (long)getpid());
	CHECK(recv_note(fd, buf, sizeof(buf), &pid) > 0);
	CHECK_STR_EQ(buf, want);
	/* What systemd checks under NotifyAccess=main: the sender's pid. */
	CHECK_INT_EQ(pid, getpid());

	CHECK_INT_EQ(sdnotify_stopping(), 1);
	CHECK(recv_note(fd, buf, sizeof(buf), &pid) > 0);
	CHECK_STR_EQ(buf, "STOPPING=1");

	unsetenv("NOTIFY_SOCKET");
	close(fd);
	unlink(path);
}

TEST(status_to_an_abstract_socket)
{
	char addr[64], buf[1024];
	pid_t pid;
	int fd;

	snprintf(addr, sizeof(addr), "@tandem-test-sdnotify-%ld", (long)getpid());
	fd = bind_listener(addr);
	REQUIRE(fd >= 0);
	setenv("NOTIFY_SOCKET", addr, 1);

	CHECK_INT_EQ(sdnotify_status("connected to %s, rtt %d ms", "K7QF", 3), 1);
	CHECK(recv_note(fd, buf, sizeof(buf), &pid) > 0);
	CHECK_STR_EQ(buf, "STATUS=connected to K7QF, rtt 3 ms");

	/* A newline in the text must not start a second assignment. */
	CHECK_INT_EQ(sdnotify_status("%s", "evil\nREADY=1\r\nx"), 1);
	CHECK(recv_note(fd, buf, sizeof(buf), &pid) > 0);
	CHECK_STR_EQ(buf, "STATUS=evil READY=1  x");

	/* A long status is cut, not refused. */
	char longtext[2000];
	memset(longtext, 'a', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = '\0';
	CHECK_INT_EQ(sdnotify_status("%s", longtext), 1);
	CHECK(recv_note(fd, buf, sizeof(buf), &pid) > 0);
	CHECK(strncmp(buf, "STATUS=aaaa", 11) == 0);

	CHECK_INT_EQ(sdnotify_send("READY=1\nSTATUS=up"), 1);
	CHECK(recv_note(fd, buf, sizeof(buf), &pid) > 0);
	CHECK_STR_EQ(buf, "READY=1\nSTATUS=up");

	unsetenv("NOTIFY_SOCKET");
	close(fd);
}

TEST(bad_addresses_and_states)
{
	char longpath[200];

	CHECK_INT_EQ(sdnotify_send_to("relative/notify", "READY=1"), -EINVAL);
	CHECK_INT_EQ(sdnotify_send_to("vsock:2:1234", "READY=1"), -EINVAL);
	CHECK_INT_EQ(sdnotify_send_to("@", "READY=1"), -EINVAL);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	CHECK_INT_EQ(sdnotify_send_to(longpath, "READY=1"), -EINVAL);
	longpath[0] = '@';
	CHECK_INT_EQ(sdnotify_send_to(longpath, "READY=1"), -EINVAL);

	CHECK_INT_EQ(sdnotify_send_to("@tandem-test-none", ""), -EINVAL);
	CHECK_INT_EQ(sdnotify_send_to("@tandem-test-none", NULL), -EINVAL);
	char *big = malloc(SDNOTIFY_STATE_MAX + 2);
	REQUIRE(big);
	memset(big, 'S', SDNOTIFY_STATE_MAX + 1);
	big[SDNOTIFY_STATE_MAX + 1] = '\0';
	CHECK_INT_EQ(sdnotify_send_to("@tandem-test-none", big), -EMSGSIZE);
	free(big);

	/* Nobody listening: an error, not a hang or a crash. */
	char path[sizeof(tmpdir) + 16];
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	CHECK(sdnotify_send_to(path, "READY=1") < 0);
	setenv("NOTIFY_SOCKET", "not-absolute", 1);
	CHECK_INT_EQ(sdnotify_ready(), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

TEST(no_fd_leak)
{
	int before = count_fds();
	char path[sizeof(tmpdir) + 16];

	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	for (int i = 0; i < 50; i++) {
		(void)sdnotify_send_to(path, "READY=1");
		(void)sdnotify_send_to("@tandem-test-none", "STOPPING=1");
	}
	CHECK_INT_EQ(count_fds(), before);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		/* A TAP skip: meson reads the plan, not exit status 77. */
		printf("1..0 # SKIP cannot create a temporary directory: %s\n", strerror(errno));
		return 0;
	}
	RUN(unset_is_a_noop);
	RUN(ready_to_a_path_socket);
	RUN(status_to_an_abstract_socket);
	RUN(bad_addresses_and_states);
	RUN(no_fd_leak);
	rmdir(tmpdir);
	return tap_done();
}
