/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "config.h"
#include "cli.h"
#include "log.h"

static const struct cli_command commands[] = {
	{ "init", "create this machine's identity and print its fingerprint", cmd_init },
	{ "id", "print this machine's fingerprint", cmd_id },
	{ "up", "start the daemon: connect to the peer and keep the folder in sync", cmd_up },
	{ "status", "show the daemon's state: connected or not, the peer, the relay", cmd_status },
	{ "down", "stop the daemon and wait until it has exited", cmd_down },
#if HAVE_SELFTEST
	{ "selftest", "prove tandem works on this machine (relay and peers on [::1])", cmd_selftest },
#endif
};

static void print_help(FILE *f)
{
	fputs("Usage: tandem [--home DIR] [--log-level LEVEL] COMMAND [OPTIONS]\n"
	      "\n"
	      "tandem keeps one folder in sync between two machines, end-to-end encrypted,\n"
	      "with no cloud: a small relay introduces the peers, then they talk directly.\n"
	      "\n"
	      "Commands:\n",
	      f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fputs("\n"
	      "Global options:\n"
	      "  --home DIR         keep identity, config, state and socket under DIR\n"
	      "                     (default: the XDG directories, ~/.config/tandem ...)\n"
	      "  --log-level LEVEL  error, warning, notice, info (default) or debug\n"
	      "  -h, --help         show this help\n"
	      "  -V, --version      show the version\n"
	      "\n"
	      "'tandem COMMAND --help' describes each command.\n",
	      f);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("tandem: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("tandem: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cmd)
		fprintf(stderr, "; see 'tandem %s --help'\n", cmd);
	else
		fputs("; see 'tandem --help'\n", stderr);
	return EXIT_USAGE;
}

int cli_parse_simple_options(const char *cmd, const char *help, int argc, char **argv,
			     bool *json)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			if (!json)
				return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
			*json = true;
			break;
		case 'h':
			fputs(help, stdout);
			return 0;
		default:
			return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return -1;
}

int cli_resolve_paths(struct cli_ctx *ctx)
{
	struct err err;

	if (paths_resolve(ctx->home, &ctx->paths, &err) < 0) {
		cli_error("%s", err.msg);
		return 1;
	}
	return 0;
}

int cli_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "home", required_argument, NULL, 'H' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct cli_ctx ctx = { 0 };
	enum log_level level;
	int c;

	log_set_ident("tandem");
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0) {
		cli_error("cannot initialise libsodium (no entropy source?)");
		return 1;
	}

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			if (!optarg[0])
				return cli_usage_error(NULL, "--home needs a directory name");
			ctx.home = optarg;
			break;
		case 'L':
			if (log_level_parse(optarg, &level) < 0)
				return cli_usage_error(NULL,
						       "unknown log level '%s' (use error, warning, "
						       "notice, info or debug)",
						       optarg);
			log_set_level(level);
			break;
		case 'h':
			print_help(stdout);
			return 0;
		case 'V':
			printf("tandem %s\n", TANDEM_VERSION);
			return 0;
		case ':':
			return cli_usage_error(NULL, "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error(NULL, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		print_help(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) == 0)
			return commands[i].run(&ctx, argc - optind, argv + optind);
	}
	if (!HAVE_SELFTEST && strcmp(argv[optind], "selftest") == 0) {
		cli_error("this tandem was built without the selftest (meson -Dselftest=false); "
			  "use a build or package that has it to run 'tandem selftest'");
		return EXIT_USAGE;
	}
	return cli_usage_error(NULL, "unknown command '%s'", argv[optind]);
}
