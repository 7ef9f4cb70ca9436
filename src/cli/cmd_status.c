/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `tandem status` and `tandem down`: clients of the daemon's control socket. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "cli/control_client.h"
#include "base/log.h"

#define STATUS_TIMEOUT_MS 5000
#define DOWN_TIMEOUT_MS 15000

static const char status_help[] =
	"Usage: tandem [--home DIR] status [--json]\n"
	"\n"
	"Show what the running daemon is doing: its state (connecting, connected),\n"
	"the peer's fingerprint and address, the round-trip time, since when it is\n"
	"connected, the relay's state, the sync state (offline, scanning, syncing,\n"
	"idle, stopped), files in sync and pending, and each transfer in progress\n"
	"(a progress bar on a terminal).\n"
	"\n"
	"Options:\n"
	"  --json       print the daemon's answer as one JSON object\n"
	"  -h, --help   show this help\n"
	"\n"
	"Exit status: 0 when a daemon answered, 1 when none runs.\n";

static const char down_help[] =
	"Usage: tandem [--home DIR] down\n"
	"\n"
	"Stop the running daemon: it closes the connection to the peer, removes its\n"
	"record from the relay and exits. Returns once it has exited (at most 15 s).\n"
	"\n"
	"Options:\n"
	"  -h, --help   show this help\n";

static const char *home_arg(const struct cli_ctx *ctx, char *buf, size_t len)
{
	if (!ctx->home)
		return "";
	snprintf(buf, len, " --home %s", ctx->home);
	return buf;
}

/* Connects, or explains why not. Returns 0, or 1 after printing. */
static int open_daemon(const struct cli_ctx *ctx, const char *what, struct control_client **ret)
{
	char sock[CONTROL_PATH_MAX], h[PATH_MAX + 16];
	int r;

	if (control_path_get(&ctx->paths, sock) < 0) {
		cli_error("no tandem daemon can run for %s: the socket path %s/%s is too long "
			  "for a Unix socket; use a shorter --home",
			  ctx->paths.config, ctx->paths.runtime, CONTROL_SOCKET_NAME);
		return 1;
	}
	r = control_client_open(sock, ret);
	if (r == -ENOENT) {
		cli_error("no tandem daemon is running for %s (no socket at %s)%s%s",
			  ctx->paths.config, sock, what ? "; " : "", what ? what : "");
		return 1;
	}
	if (r == -ECONNREFUSED) {
		cli_error("no tandem daemon is running for %s (the socket %s is left over from "
			  "one that did not stop cleanly; 'tandem%s up' clears it)%s%s",
			  ctx->paths.config, sock, home_arg(ctx, h, sizeof(h)), what ? "; " : "",
			  what ? what : "");
		return 1;
	}
	if (r < 0) {
		cli_error("cannot reach the tandem daemon at %s: %s", sock, strerror(-r));
		return 1;
	}
	return 0;
}

/*
 * The string at key, escaped for the terminal (log.h): names and messages
 * come from the peer and the relay, and an ESC in them must not reach the
 * terminal. The result lives in a ring of buffers, enough for one line.
 */
static const char *jstr(json_t *o, const char *key)
{
	static char ring[8][2048];
	static unsigned next;
	const char *s = json_string_value(json_object_get(o, key));
	char *b;

	if (!s)
		return NULL;
	b = ring[next++ % 8];
	return log_escape(s, strlen(s), b, sizeof(ring[0]), 0);
}

static void human_bytes(double v, char *out, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	unsigned u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

/* One line per transfer: a progress bar on a terminal, plain text otherwise. */
static void print_transfers(json_t *arr, bool tty)
{
	size_t i;
	json_t *t;

	json_array_foreach(arr, i, t) {
		const char *path = jstr(t, "path");
		double done = (double)json_integer_value(json_object_get(t, "bytes_done"));
		double total = (double)json_integer_value(json_object_get(t, "bytes_total"));
		double rate = (double)json_integer_value(json_object_get(t, "rate"));
		double frac = total > 0 ? done / total : 1.0;
		char d[32], tt[32], r[32];

		if (frac > 1)
			frac = 1;
		human_bytes(done, d, sizeof(d));
		human_bytes(total, tt, sizeof(tt));
		human_bytes(rate, r, sizeof(r));
		if (tty) {
			char bar[31];
			int fill = (int)(frac * 30);
			for (int k = 0; k < 30; k++)
				bar[k] = k < fill ? '#' : '.';
			bar[30] = '\0';
			printf("  [%s] %3d%% %s / %s  %s/s  %s\n", bar, (int)(frac * 100), d, tt, r,
			       path ? path : "?");
		} else {
			printf("transfer:    %s %d%% (%s of %s, %s/s)\n", path ? path : "?",
			       (int)(frac * 100), d, tt, r);
		}
	}
}

static void print_human(json_t *st)
{
	json_t *rtt = json_object_get(st, "rtt_ms");
	json_t *since = json_object_get(st, "connected_since");
	const char *addr = jstr(st, "peer_addr"), *rerr = jstr(st, "relay_error");
	const char *lerr = jstr(st, "last_error");

	printf("state:       %s\n", jstr(st, "state") ? jstr(st, "state") : "?");
	const char *path = jstr(st, "path");
	bool relayed = path && strcmp(path, "relayed") == 0;

	printf("peer:        %s%s%s\n", jstr(st, "peer") ? jstr(st, "peer") : "?",
	       addr && !relayed ? " at " : "", addr && !relayed ? addr : "");
	if (relayed)
		printf("path:        relayed (via the relay %s)\n",
		       jstr(st, "relay") ? jstr(st, "relay") : "?");
	else if (path)
		printf("path:        %s\n", path);
	if (json_is_number(rtt))
		printf("rtt:         %.2f ms\n", json_number_value(rtt));
	if (json_is_integer(since)) {
		time_t t = (time_t)json_integer_value(since);
		struct tm tm;
		char when[64];
		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("since:       %s (%lld s)\n", when, (long long)(time(NULL) - t));
	}
	printf("reconnects:  %lld\n",
	       (long long)json_integer_value(json_object_get(st, "reconnects")));
	printf("relay:       %s (%s)\n", jstr(st, "relay") ? jstr(st, "relay") : "?",
	       rerr ? rerr : "ok");
	json_t *warns = json_object_get(st, "warnings");
	for (size_t i = 0; i < json_array_size(warns); i++)
		if (json_is_string(json_array_get(warns, i)))
			printf("warning:     %s\n", json_string_value(json_array_get(warns, i)));
	if (lerr)
		printf("last error:  %s\n", lerr);
	if (jstr(st, "sync_state"))
		printf("sync:        %s%s%s\n", jstr(st, "sync_state"),
		       jstr(st, "sync_error") ? ": " : "",
		       jstr(st, "sync_error") ? jstr(st, "sync_error") : "");
	json_t *full = json_object_get(st, "disk_full");
	if (json_is_object(full)) {
		long long n = (long long)json_integer_value(json_object_get(full, "files"));
		const char *why = json_string_value(json_object_get(full, "error"));
		printf("disk full:   the disk holding the share is full (%s): %lld file%s wait%s; "
		       "free space to resume\n",
		       why ? why : "no space", n, n == 1 ? "" : "s", n == 1 ? "s" : "");
	}
	printf("files:       %lld in sync, %lld pending",
	       (long long)json_integer_value(json_object_get(st, "files_in_sync")),
	       (long long)json_integer_value(json_object_get(st, "files_pending")));
	if (json_integer_value(json_object_get(st, "conflicts")))
		printf(", %lld conflicts", (long long)json_integer_value(json_object_get(st, "conflicts")));
	printf("\n");
	if (json_integer_value(json_object_get(st, "refused")))
		printf("refused:     %lld (paths and symlinks of the peer's; the log says which)\n",
		       (long long)json_integer_value(json_object_get(st, "refused")));
	if (json_integer_value(json_object_get(st, "not_synced"))) {
		json_t *v = json_object_get(st, "not_synced_paths");
		long long n = (long long)json_integer_value(json_object_get(st, "not_synced"));
		size_t i;
		json_t *p;

		printf("not synced:  %lld FIFO%s, socket%s or device node%s, local to this side:", n,
		       n == 1 ? "" : "s", n == 1 ? "" : "s", n == 1 ? "" : "s");
		json_array_foreach(v, i, p) {
			char q[256];

			if (json_is_string(p))
				printf("%s %s", i ? "," : "",
				       log_quote(json_string_value(p), json_string_length(p), q,
						 sizeof(q)));
		}
		printf("%s\n", (size_t)n > json_array_size(v) ? ", ..." : "");
	}
	if (json_is_integer(json_object_get(st, "bytes_received"))) {
		char in[32], out[32];
		human_bytes((double)json_integer_value(json_object_get(st, "bytes_received")), in,
			    sizeof(in));
		human_bytes((double)json_integer_value(json_object_get(st, "bytes_sent")), out,
			    sizeof(out));
		printf("content:     %s received, %s sent\n", in, out);
	}
	print_transfers(json_object_get(st, "transfers"), isatty(STDOUT_FILENO));
	printf("this peer:   %s\n", jstr(st, "self") ? jstr(st, "self") : "?");
	printf("daemon:      pid %lld, folder %s\n",
	       (long long)json_integer_value(json_object_get(st, "pid")),
	       jstr(st, "dir") ? jstr(st, "dir") : "?");
	if (jstr(st, "mount"))
		printf("mount:       %s (FUSE, over the folder above)\n", jstr(st, "mount"));
}

int cmd_status(struct cli_ctx *ctx, int argc, char **argv)
{
	struct control_client *c = NULL;
	json_t *st = NULL;
	const char *raw = NULL;
	char h[PATH_MAX + 16], hint[PATH_MAX + 96];
	bool json = false;
	int r;

	r = cli_parse_simple_options("status", status_help, argc, argv, &json);
	if (r >= 0)
		return r;
	if (cli_resolve_paths(ctx))
		return 1;
	snprintf(hint, sizeof(hint), "start one with 'tandem%s up --peer FP --relay URL --dir DIR'",
		 home_arg(ctx, h, sizeof(h)));
	if (open_daemon(ctx, hint, &c))
		return 1;
	r = control_client_call(c, "{\"cmd\":\"status\"}", STATUS_TIMEOUT_MS, &st, &raw);
	if (r < 0) {
		cli_error("the tandem daemon for %s did not answer the status request: %s",
			  ctx->paths.config,
			  r == -ETIMEDOUT ? "no answer within 5 s" : strerror(-r));
		control_client_free(c);
		return 1;
	}
	if (json)
		printf("%s\n", raw);
	else
		print_human(st);
	json_decref(st);
	control_client_free(c);
	return 0;
}

/* Gone, or a zombie its parent has not reaped yet: it has exited either way. */
static bool pid_gone(pid_t pid)
{
	char path[64], buf[256];
	FILE *f;
	char *p;
	bool zombie = false;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ')
		zombie = p[2] == 'Z' || p[2] == 'X';
	fclose(f);
	return zombie;
}

int cmd_down(struct cli_ctx *ctx, int argc, char **argv)
{
	struct control_client *c = NULL;
	json_t *reply = NULL;
	long long deadline;
	pid_t pid;
	int r;

	r = cli_parse_simple_options("down", down_help, argc, argv, NULL);
	if (r >= 0)
		return r;
	if (cli_resolve_paths(ctx))
		return 1;
	if (open_daemon(ctx, "nothing to stop", &c))
		return 1;
	deadline = (long long)clock_mono_ms() + DOWN_TIMEOUT_MS;
	r = control_client_call(c, "{\"cmd\":\"down\"}", STATUS_TIMEOUT_MS, &reply, NULL);
	if (r < 0 || !json_is_true(json_object_get(reply, "ok"))) {
		cli_error("the tandem daemon for %s did not accept the request to stop: %s; "
			  "stop its process with kill",
			  ctx->paths.config, r < 0 ? strerror(-r) : "it refused");
		json_decref(reply);
		control_client_free(c);
		return 1;
	}
	pid = (pid_t)json_integer_value(json_object_get(reply, "pid"));
	json_decref(reply);
	/* The daemon closes the socket last, then exits. */
	r = control_client_wait_close(c, (int)(deadline - (long long)clock_mono_ms()));
	control_client_free(c);
	while (r == 0 && pid > 0 && !pid_gone(pid)) {
		if ((long long)clock_mono_ms() >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		poll(NULL, 0, 20);
	}
	if (r < 0) {
		cli_error("the tandem daemon (pid %ld) did not stop within %d s; its log says why "
			  "(%s/tandem.log); 'kill %ld' ends it",
			  (long)pid, DOWN_TIMEOUT_MS / 1000, ctx->paths.state, (long)pid);
		return 1;
	}
	fprintf(stderr, "tandem: the daemon (pid %ld) has stopped\n", (long)pid);
	return 0;
}
