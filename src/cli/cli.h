/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_CLI_H
#define TANDEM_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "base/paths.h"

/*
 * The `tandem` command line. Exit codes: 0 ok, 1 runtime failure, 2 usage
 * error. Every error says what failed, why, and what to do.
 */

#define EXIT_USAGE 2

struct cli_ctx {
	const char *home;	/* --home, or NULL */
	struct tandem_paths paths;
};

struct cli_command {
	const char *name;
	const char *summary;
	int (*run)(struct cli_ctx *ctx, int argc, char **argv);
};

/* Prints "tandem: " + message to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Usage error: prints the message and a pointer to `tandem CMD --help`;
 * returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Parses the options of a command that has only --help (json == NULL) or
 * --help and --json. Returns -1 to go on, else the exit code to return
 * (0 after printing help, EXIT_USAGE after a usage error).
 */
int cli_parse_simple_options(const char *cmd, const char *help, int argc, char **argv,
			     bool *json);
/* Resolves ctx->paths from ctx->home; prints the error and returns 1 on failure. */
int cli_resolve_paths(struct cli_ctx *ctx);

int cmd_init(struct cli_ctx *ctx, int argc, char **argv);
int cmd_id(struct cli_ctx *ctx, int argc, char **argv);
int cmd_up(struct cli_ctx *ctx, int argc, char **argv);
int cmd_status(struct cli_ctx *ctx, int argc, char **argv);
int cmd_down(struct cli_ctx *ctx, int argc, char **argv);

/*
 * Runs `tandem` with argv: the global options, then the command named in
 * commands[0..n_commands) (the help lists them in that order). The table
 * is the executable's (src/main.c): it alone knows every library, the
 * selftest included, so this library calls no layer above it. Returns the
 * exit code.
 */
int cli_main(int argc, char **argv, const struct cli_command *commands, size_t n_commands);

#endif
