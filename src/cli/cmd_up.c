/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `tandem up`: check everything, then run the daemon (in the background by default). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "cli/control_client.h"
#include "daemon/conf.h"
#include "daemon/daemon.h"
#include "daemon/mountd.h"
#include "daemon/mountopt.h"
#include "base/fsutil.h"
#include "identity/identity.h"
#include "relay_client/relay_client.h"
#include "base/size.h"
#include "sync/engine.h"

#define READY_TIMEOUT_MS 10000
#define LOG_FILE "tandem.log"

static const char up_help[] =
	"Usage: tandem [--home DIR] up --peer FP --relay URL (--dir DIR | --mount DIR)\n"
	"                             [OPTIONS]\n"
	"\n"
	"Start the tandem daemon: publish how to reach this machine on the relay, find\n"
	"the peer there, connect to it directly over an end-to-end encrypted channel,\n"
	"and keep the connection up. Without --foreground it returns once the daemon\n"
	"runs (its log goes to STATE/tandem.log); connecting to the peer goes on in the\n"
	"background: 'tandem status' shows how far it got, 'tandem down' stops it.\n"
	"\n"
	"Options:\n"
	"  --peer FP           the other machine's fingerprint ('tandem id' there)\n"
	"  --relay URL         the relay both peers use, e.g. https://relay.example:8480\n"
	"  --dir DIR           the folder to keep in sync (it must exist)\n"
	"  --mount DIR         show the shared folder as a FUSE mount at DIR (an existing\n"
	"                      empty directory) instead; its files are kept in\n"
	"                      STATE/store. Needs /dev/fuse (and fusermount3 unless\n"
	"                      root); unmounted again by 'tandem down', SIGTERM, SIGINT\n"
	"  -o OPTIONS          with --mount: FUSE mount options, a comma list, repeatable:\n"
	"                      allow_other, allow_root, ro, rw, noatime, noexec, nosuid,\n"
	"                      nodev, sync, dirsync ... ('man tandem' lists them; suid,\n"
	"                      dev, fsname, subtype and auto_unmount are refused)\n"
	"  --listen ADDR:PORT  where to accept the peer's connections: [::]:0 (default:\n"
	"                      every address, a free port), [IPv6]:PORT, IPv4:PORT, or\n"
	"                      none to accept nothing (the peer must then accept ours)\n"
	"  --symlinks=WHICH    which of the peer's symlinks to make here: inside (default:\n"
	"                      those that stay in the share; one that is absolute or\n"
	"                      climbs out is logged and not made) or all\n"
	"  --cache-max SIZE    with --mount: the most of the peer's file content kept in\n"
	"                      the store (default 10G); beyond it the least recently\n"
	"                      read files are dropped again (fetched anew when read).\n"
	"                      SIZE in bytes or with K, M, G or T (1024-based); 0: no\n"
	"                      limit. A --dir folder keeps every file whole\n"
	"  --relay-data WHEN   relayed connections through the relay (end-to-end\n"
	"                      encrypted; the relay copies ciphertext): fallback\n"
	"                      (default: when no direct connection is up within 5 s,\n"
	"                      moving back to direct when it can), always (relayed\n"
	"                      only: no direct connections either way), never\n"
	"  --foreground        stay in the foreground and log to stderr\n"
	"  -h, --help          show this help\n"
	"\n"
	"The same keys may be set in CONFIG/tandem.conf, one 'key = value' per line\n"
	"(peer, relay, dir, mount, listen, symlinks, cache-max, relay-data,\n"
	"mount-options); options on the command line win.\n";

struct up_args {
	const char *peer, *relay, *dir, *mount, *listen, *symlinks, *cache_max, *relay_data;
	bool foreground;
	bool has_o;			    /* -o given: the config's mount-options do not count */
	char mount_opts[MOUNTOPT_MAX];	    /* -o, checked (mountopt.h) */
};

static int parse_args(int argc, char **argv, struct up_args *a)
{
	static const struct option opts[] = {
		{"peer", required_argument, NULL, 'p'},	  {"relay", required_argument, NULL, 'r'},
		{"dir", required_argument, NULL, 'd'},	  {"mount", required_argument, NULL, 'm'},
		{"listen", required_argument, NULL, 'l'}, {"foreground", no_argument, NULL, 'f'},
		{"symlinks", required_argument, NULL, 's'}, {"cache-max", required_argument, NULL, 'c'},
		{"relay-data", required_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},	  {0},
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:ho:", opts, NULL)) != -1) {
		struct err err;

		switch (c) {
		case 'o':
			if (mountopt_add(a->mount_opts, optarg, &err) < 0)
				return cli_usage_error("up", "-o %s: %s", optarg, err.msg);
			a->has_o = true;
			break;
		case 'p':
			a->peer = optarg;
			break;
		case 'r':
			a->relay = optarg;
			break;
		case 'd':
			a->dir = optarg;
			break;
		case 'l':
			a->listen = optarg;
			break;
		case 'f':
			a->foreground = true;
			break;
		case 's':
			a->symlinks = optarg;
			break;
		case 'm':
			a->mount = optarg;
			break;
		case 'c':
			a->cache_max = optarg;
			break;
		case 'R':
			a->relay_data = optarg;
			break;
		case 'h':
			fputs(up_help, stdout);
			return 0;
		case ':':
			return cli_usage_error("up", "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error("up", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("up", "unexpected argument '%s'", argv[optind]);
	return -1;
}

/* " --home H" for the commands we suggest, or "". */
static const char *home_arg(const struct cli_ctx *ctx, char *buf, size_t len)
{
	if (!ctx->home)
		return "";
	snprintf(buf, len, " --home %s", ctx->home);
	return buf;
}

/* Is a daemon answering on sock? Returns 1 (running, *ret_pid), 0 (no), or
 * -1 after printing why we cannot tell. */
static int running_check(const struct cli_ctx *ctx, const char *sock, long *ret_pid)
{
	struct control_client *c = NULL;
	json_t *reply = NULL;
	char h[PATH_MAX + 16];
	int r;

	r = control_client_open(sock, &c);
	if (r == -ENOENT || r == -ECONNREFUSED)
		return 0; /* none, or a crashed daemon's socket: the new one clears it */
	if (r < 0) {
		cli_error("cannot check for a running daemon at %s: %s", sock, strerror(-r));
		return -1;
	}
	r = control_client_call(c, "{\"cmd\":\"status\"}", 3000, &reply, NULL);
	control_client_free(c);
	if (r < 0) {
		cli_error("a tandem daemon seems to run for %s but does not answer on %s (%s); "
			  "stop it with 'tandem%s down', or end its process",
			  ctx->paths.config, sock, strerror(-r), home_arg(ctx, h, sizeof(h)));
		return -1;
	}
	*ret_pid = (long)json_integer_value(json_object_get(reply, "pid"));
	json_decref(reply);
	return 1;
}

/* Waits for the daemon's first line on fd. Returns the exit code for up. */
static int wait_ready(int fd, pid_t pid, const char *log_path)
{
	char buf[1024];
	size_t len = 0;
	int left = READY_TIMEOUT_MS, st;
	uint64_t t0 = clock_mono_ms();

	while (len < sizeof(buf) - 1 && !memchr(buf, '\n', len)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, left);
		ssize_t n;

		left = READY_TIMEOUT_MS - (int)(clock_mono_ms() - t0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 || left <= 0) {
			cli_error("the daemon (pid %ld) did not report that it runs within %d s; "
				  "stopped it. Its log is %s",
				  (long)pid, READY_TIMEOUT_MS / 1000, log_path);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return 1;
		}
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (strcmp(buf, "ok") == 0) {
		fprintf(stderr,
			"tandem: the daemon runs (pid %ld); its log is %s. 'tandem status' "
			"shows the connection, 'tandem down' stops it.\n",
			(long)pid, log_path);
		return 0;
	}
	/* It failed: it exits at once; reap it so no zombie is left. */
	for (int i = 0; i < 200 && waitpid(pid, &st, WNOHANG) == 0; i++)
		poll(NULL, 0, 10);
	if (strncmp(buf, "error: ", 7) == 0)
		cli_error("%s", buf + 7);
	else
		cli_error("the daemon exited during start-up without saying why; see its log %s",
			  log_path);
	return 1;
}

/* Forks the daemon. In the parent returns up's exit code; in the child, the
 * daemon's, once it has stopped. */
static int spawn(struct daemon_opts *o)
{
	int pfd[2], logfd, nullfd, r;
	pid_t pid;

	r = fs_mkdir_p(o->paths->state, 0700);
	if (r < 0) {
		cli_error("cannot create the state directory %s: %s", o->paths->state,
			  strerror(-r));
		return 1;
	}
	logfd = open(o->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (logfd < 0) {
		cli_error("cannot open the log file %s: %s", o->log_path, strerror(errno));
		return 1;
	}
	nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nullfd < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
		cli_error("cannot start the daemon: %s", strerror(errno));
		close(logfd);
		if (nullfd >= 0)
			close(nullfd);
		return 1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		cli_error("cannot start the daemon (fork): %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		close(logfd);
		close(nullfd);
		return 1;
	}
	if (pid == 0) {
		close(pfd[0]);
		/* Readiness goes to systemd only from a --foreground daemon (the
		 * unit's main process); a detached one must not claim it. */
		unsetenv("NOTIFY_SOCKET");
		(void)setsid();
		if (chdir("/") < 0) {
			/* cannot happen; stay where we are */
		}
		dup2(nullfd, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		close(nullfd);
		close(logfd);
		o->ready_fd = pfd[1];
		r = daemon_run(o);
		close(pfd[1]);
		return r;
	}
	close(pfd[1]);
	close(logfd);
	close(nullfd);
	r = wait_ready(pfd[0], pid, o->log_path);
	close(pfd[0]);
	return r;
}

static int load_identity(struct cli_ctx *ctx, struct identity **ret)
{
	char h[PATH_MAX + 16];
	int world = 0, r;

	r = identity_load(ctx->paths.config, ret, &world);
	if (r == -ENOENT) {
		cli_error("no identity in %s: run 'tandem%s init' first, then give your "
			  "fingerprint to the other person",
			  ctx->paths.config, home_arg(ctx, h, sizeof(h)));
		return 1;
	}
	if (r < 0) {
		cli_error("cannot read the identity %s/%s: %s; restore it from a backup, or move "
			  "it away and run 'tandem init' (your fingerprint will change)",
			  ctx->paths.config, IDENTITY_FILE,
			  r == -EBADMSG ? "the file is damaged" : strerror(-r));
		return 1;
	}
	if (world)
		cli_error("warning: %s/%s can be read by other users; run 'chmod 600 %s/%s'",
			  ctx->paths.config, IDENTITY_FILE, ctx->paths.config, IDENTITY_FILE);
	return 0;
}

/*
 * --mount M: FUSE usable, M an existing directory (or a dead mount left by
 * a crash, which the daemon clears), the store STATE/store made (0700).
 * Returns -1 to go on (store_abs, mount_abs filled), or the exit code.
 */
static int check_mount(struct cli_ctx *ctx, const char *mount, char store_abs[static PATH_MAX],
		       char mount_abs[static PATH_MAX])
{
	struct err err;
	char store[PATH_MAX + 16], parent[PATH_MAX], base[NAME_MAX + 1];
	char tmp[PATH_MAX];
	struct stat st;
	int r;

	if (mountd_available(&err) < 0) {
		cli_error("cannot mount the share at %s: %s", mount, err.msg);
		return 1;
	}
	r = stat(mount, &st) < 0 ? -errno : 0;
	if (r < 0 && r != -ENOTCONN && r != -ECONNABORTED) {
		if (r == -ENOENT)
			cli_error("the mount point %s does not exist; create it with 'mkdir -p %s' "
				  "(an empty directory), or choose another with --mount",
				  mount, mount);
		else
			cli_error("cannot use the mount point %s: %s", mount, strerror(-r));
		return 1;
	} else if (r == 0 && !S_ISDIR(st.st_mode)) {
		cli_error("%s is not a directory; --mount needs an empty directory to mount on",
			  mount);
		return 1;
	}
	/* realpath of the parent: a dead mount cannot be resolved itself */
	snprintf(tmp, sizeof(tmp), "%s", mount);
	snprintf(base, sizeof(base), "%s", basename(tmp));
	snprintf(tmp, sizeof(tmp), "%s", mount);
	if (!realpath(dirname(tmp), parent) || !strcmp(base, "..") || !strcmp(base, ".") ||
	    !strcmp(base, "/")) {
		if (!realpath(mount, mount_abs)) {
			cli_error("cannot resolve the mount point %s: %s", mount, strerror(errno));
			return 1;
		}
	} else if ((size_t)snprintf(mount_abs, PATH_MAX, "%s/%s", strcmp(parent, "/") ? parent : "",
				    base) >= PATH_MAX) {
		cli_error("the mount point %s has too long a path", mount);
		return 1;
	}
	snprintf(store, sizeof(store), "%s/store", ctx->paths.state);
	r = fs_mkdir_p(store, 0700);
	if (r < 0) {
		cli_error("cannot create the store %s for the mount: %s", store, strerror(-r));
		return 1;
	}
	if (!realpath(store, store_abs)) {
		cli_error("cannot resolve the store %s: %s", store, strerror(errno));
		return 1;
	}
	if (!strncmp(mount_abs, store_abs, strlen(store_abs)) &&
	    (mount_abs[strlen(store_abs)] == '/' || !mount_abs[strlen(store_abs)])) {
		cli_error("the mount point %s lies inside the store %s; choose another with --mount",
			  mount_abs, store_abs);
		return 1;
	}
	return -1;
}

/* Everything that needs no identity: returns -1 to go on, or the exit code. */
static int check_args(struct cli_ctx *ctx, const struct up_args *a, struct daemon_opts *o,
		      char dir_abs[static PATH_MAX], char mount_abs[static PATH_MAX])
{
	struct err err;
	char conf_path[PATH_MAX + 16];
	struct relay_client *rc = NULL;
	struct stat st;

	snprintf(conf_path, sizeof(conf_path), "%s/%s", ctx->paths.config, CONF_FILE);
	if (!a->peer)
		return cli_usage_error("up",
				       "no peer given: pass --peer FP (the other machine's "
				       "'tandem id'), or set 'peer = FP' in %s",
				       conf_path);
	if (!a->relay)
		return cli_usage_error("up",
				       "no relay given: pass --relay URL, or set 'relay = "
				       "URL' in %s",
				       conf_path);
	if (!a->dir && !a->mount)
		return cli_usage_error("up",
				       "no folder to share: pass --dir DIR (or --mount DIR), or "
				       "set 'dir = DIR' (or 'mount = DIR') in %s",
				       conf_path);
	if (a->dir && a->mount)
		return cli_usage_error("up",
				       "--dir and --mount both given (or both set in %s); a peer "
				       "shares either a plain folder or a mount, pass one",
				       conf_path);
	if (fp_parse(a->peer, &o->peer, &err) < 0)
		return cli_usage_error("up", "the peer fingerprint is not valid: %s", err.msg);
	if (relay_client_new(a->relay, NULL, &rc, &err) < 0)
		return cli_usage_error("up", "%s", err.msg);
	relay_client_free(rc);
	if (listen_spec_parse(a->listen ? a->listen : LISTEN_DEFAULT, &o->listen, &err) < 0)
		return cli_usage_error("up", "%s", err.msg);
	if (a->symlinks && strcmp(a->symlinks, "inside") != 0 && strcmp(a->symlinks, "all") != 0)
		return cli_usage_error("up",
				       "--symlinks (or 'symlinks' in %s) is 'inside' or 'all', "
				       "not '%s'",
				       conf_path, a->symlinks);
	o->symlinks_all = a->symlinks && strcmp(a->symlinks, "all") == 0;
	o->cache_max = ENGINE_CACHE_MAX_DEFAULT;
	if (a->cache_max && size_parse(a->cache_max, &o->cache_max, &err) < 0)
		return cli_usage_error("up", "--cache-max: %s", err.msg);
	if (!a->relay_data || strcmp(a->relay_data, "fallback") == 0)
		o->relay_data = CONNPOLICY_RELAY_FALLBACK;
	else if (strcmp(a->relay_data, "never") == 0)
		o->relay_data = CONNPOLICY_RELAY_NEVER;
	else if (strcmp(a->relay_data, "always") == 0)
		o->relay_data = CONNPOLICY_RELAY_ALWAYS;
	else
		return cli_usage_error("up",
				       "--relay-data (or 'relay-data' in %s) is 'never', "
				       "'fallback' or 'always', not '%.64s'",
				       conf_path, a->relay_data);
	if (a->mount_opts[0] && !a->mount)
		return cli_usage_error("up",
				       "-o (or 'mount-options' in %s) sets FUSE mount options; "
				       "it needs --mount DIR",
				       conf_path);
	o->mount_opts = a->mount_opts;
	if (a->mount)
		return check_mount(ctx, a->mount, dir_abs, mount_abs);
	if (stat(a->dir, &st) < 0) {
		if (errno == ENOENT)
			cli_error(
				"the folder to share, %s, does not exist; create it with 'mkdir -p "
				"%s', or choose another with --dir",
				a->dir, a->dir);
		else
			cli_error("cannot use the folder %s: %s", a->dir, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		cli_error("%s is not a directory; --dir needs the folder to share", a->dir);
		return 1;
	}
	if (!realpath(a->dir, dir_abs)) {
		cli_error("cannot resolve the folder %s: %s", a->dir, strerror(errno));
		return 1;
	}
	return -1;
}

int cmd_up(struct cli_ctx *ctx, int argc, char **argv)
{
	struct up_args a = {0};
	struct daemon_opts o = {.ready_fd = -1};
	struct identity *id = NULL;
	struct conf conf = {0};
	struct err err;
	char sock[CONTROL_PATH_MAX], log_path[PATH_MAX + 16];
	char dir_abs[PATH_MAX], mount_abs[PATH_MAX], fp[FP_TEXT_LEN + 1], h[PATH_MAX + 16];
	long pid = 0;
	int r;

	r = parse_args(argc, argv, &a);
	if (r >= 0)
		return r;
	if (cli_resolve_paths(ctx))
		return 1;
	r = conf_load(ctx->paths.config, &conf, &err);
	if (r < 0) {
		if (r == -EINVAL)
			return cli_usage_error("up", "%s", err.msg);
		cli_error("%s", err_is_set(&err) ? err.msg : strerror(-r));
		return 1;
	}
	a.peer = a.peer ? a.peer : conf.peer;
	a.relay = a.relay ? a.relay : conf.relay;
	if (!a.dir && !a.mount) {
		a.dir = conf.dir;
		a.mount = conf.mount;
	}
	a.listen = a.listen ? a.listen : conf.listen;
	a.symlinks = a.symlinks ? a.symlinks : conf.symlinks;
	a.cache_max = a.cache_max ? a.cache_max : conf.cache_max;
	a.relay_data = a.relay_data ? a.relay_data : conf.relay_data;
	if (!a.has_o && conf.mount_options &&
	    mountopt_add(a.mount_opts, conf.mount_options, &err) < 0) {
		r = cli_usage_error("up", "%s/%s: mount-options: %s", ctx->paths.config,
				    CONF_FILE, err.msg);
		goto out;
	}

	r = check_args(ctx, &a, &o, dir_abs, mount_abs);
	if (r >= 0)
		goto out;
	r = 1;
	if (load_identity(ctx, &id))
		goto out;
	if (fp_equal(&id->fp, &o.peer)) {
		fp_format(&id->fp, fp);
		r = cli_usage_error("up",
				    "--peer is this machine's own fingerprint (%s); pass the "
				    "other machine's, which 'tandem id' prints there",
				    fp);
		goto out;
	}
	if (control_path_get(&ctx->paths, sock) < 0) {
		cli_error("the control socket path %s/%s is longer than %d bytes, the limit of a "
			  "Unix socket; use a shorter --home (or XDG_RUNTIME_DIR)",
			  ctx->paths.runtime, CONTROL_SOCKET_NAME, CONTROL_PATH_MAX - 1);
		goto out;
	}
	r = fs_mkdir_p(ctx->paths.runtime, 0700);
	if (r < 0) {
		cli_error("cannot create the directory %s for the control socket: %s",
			  ctx->paths.runtime, strerror(-r));
		r = 1;
		goto out;
	}
	r = fs_mkdir_p(ctx->paths.state, 0700); /* the index lives there */
	if (r < 0) {
		cli_error("cannot create the state directory %s: %s", ctx->paths.state,
			  strerror(-r));
		r = 1;
		goto out;
	}
	r = running_check(ctx, sock, &pid);
	if (r != 0) {
		if (r > 0)
			cli_error("a tandem daemon already runs for %s (pid %ld); stop it with "
				  "'tandem%s down'",
				  ctx->paths.config, pid, home_arg(ctx, h, sizeof(h)));
		r = 1;
		goto out;
	}

	snprintf(log_path, sizeof(log_path), "%s/%s", ctx->paths.state, LOG_FILE);
	o.paths = &ctx->paths;
	o.home = ctx->home;
	o.id = id;
	o.relay_url = a.relay;
	o.dir = dir_abs;
	o.mount = a.mount ? mount_abs : NULL;
	o.sock_path = sock;
	o.log_path = a.foreground ? NULL : log_path;
	o.foreground = a.foreground;
	/* Still one thread: read the umask by setting it back at once. */
	o.mode_mask = umask(022);
	umask((mode_t)o.mode_mask);
	if (a.foreground)
		r = daemon_run(&o);
	else
		r = spawn(&o);
out:
	identity_free(id);
	conf_done(&conf);
	return r;
}
