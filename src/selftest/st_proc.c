/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Child processes of the selftest: this same tandem binary. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "selftest.h"
#include "st_internal.h"

static int run_argv(struct st_env *env, struct st_proc_out *out, const char *const *args,
		    bool search);

int st_run_tandem(struct st_env *env, struct st_proc_out *out, const char *const *argv)
{
	const char *args[40];
	size_t n = 0;

	args[n++] = env->exe;
	for (; *argv && n < 39; argv++)
		args[n++] = *argv;
	args[n] = NULL;
	return run_argv(env, out, args, false);
}

int st_run_sh(struct st_env *env, struct st_proc_out *out, const char *script)
{
	const char *args[] = { "sh", "-c", script, NULL };

	return run_argv(env, out, args, true);
}

static int run_argv(struct st_env *env, struct st_proc_out *out, const char *const *args,
		    bool search)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	size_t lo = 0, le = 0;
	pid_t pid;
	int st = 0;

	memset(out, 0, sizeof(*out));
	out->status = -1;

	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		int r = -errno;
		if (po[0] >= 0) {
			close(po[0]);
			close(po[1]);
		}
		return r;
	}
	pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		return r;
	}
	if (pid == 0) {
		st_child_stdio(po[1], pe[1]);
		if (search)
			execvp(args[0], (char *const *)args);
		else
			execv(args[0], (char *const *)args);
		_exit(127);
	}
	st_children_add(pid);
	close(po[1]);
	close(pe[1]);

	struct pollfd p[2] = { { .fd = po[0], .events = POLLIN }, { .fd = pe[0], .events = POLLIN } };
	while (p[0].fd >= 0 || p[1].fd >= 0) {
		uint64_t left = st_left_ms(env);
		if (left == 0)
			break;
		int r = poll(p, 2, (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			char *buf = i ? out->err : out->out;
			size_t *len = i ? &le : &lo;
			size_t cap = i ? sizeof(out->err) : sizeof(out->out);
			char sink[4096];
			ssize_t k;

			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (*len + 1 < cap)
				k = read(p[i].fd, buf + *len, cap - 1 - *len);
			else
				k = read(p[i].fd, sink, sizeof(sink)); /* keep the child unblocked */
			if (k <= 0) {
				close(p[i].fd);
				p[i].fd = -1;
			} else if (*len + 1 < cap) {
				*len += (size_t)k;
				buf[*len] = '\0';
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	/* Output closed: the child is exiting. Past the deadline: kill it. */
	pid_t w;
	unsigned pause = 1;
	while ((w = waitpid(pid, &st, WNOHANG)) == 0 && st_left_ms(env) > 0) {
		poll(NULL, 0, (int)pause);
		pause = pause < 16 ? pause * 2 : 20;
	}
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		st_children_del(pid);
		st_note(env, "'%s %s' was killed: it ran past the scenario's deadline",
			search ? args[0] : "tandem", args[1] ? args[1] : "");
		return 0;
	}
	st_children_del(pid);
	if (WIFEXITED(st))
		out->status = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		out->status = 128 + WTERMSIG(st);
	return 0;
}

void st_child_stdio(int out, int err)
{
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (devnull >= 0)
		dup2(devnull, 0);
	dup2(out, 1);
	if (err >= 0)
		dup2(err, 2);
}

int st_proc_children(pid_t *pids, int cap)
{
	pid_t self = getpid();
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return 0;
	while ((de = readdir(d)) && n < cap) {
		char path[64], buf[512], *rp;
		long pid, ppid;
		ssize_t k;
		int fd;

		pid = strtol(de->d_name, &rp, 10);
		if (pid <= 0 || *rp)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		k = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (k <= 0)
			continue;
		buf[k] = '\0';
		/* "pid (comm) state ppid ...": comm may hold anything, even ") " */
		rp = strrchr(buf, ')');
		if (!rp || sscanf(rp + 1, " %*c %ld", &ppid) != 1)
			continue;
		if (ppid == self)
			pids[n++] = (pid_t)pid;
	}
	closedir(d);
	return n;
}

void st_proc_comm(pid_t pid, char out[static 64])
{
	char path[64];
	ssize_t k;
	int fd;

	snprintf(out, 64, "?");
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	k = read(fd, out, 63);
	close(fd);
	if (k <= 0) {
		snprintf(out, 64, "?");
		return;
	}
	out[k] = '\0';
	for (ssize_t i = 0; i + 1 < k; i++)
		if (out[i] == '\0')
			out[i] = ' ';
}
