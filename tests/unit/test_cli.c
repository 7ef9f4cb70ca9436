/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The command line (src/cli/cli.c): global options, dispatch over the
 * executable's command table, and the options every simple command shares. */
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tap.h"

/* What the fake command saw. */
static int ran;
static int ran_argc;
static char ran_arg1[64];
static const char *ran_home;

static int cmd_fake(struct cli_ctx *ctx, int argc, char **argv)
{
	ran++;
	ran_argc = argc;
	snprintf(ran_arg1, sizeof(ran_arg1), "%s", argc > 1 ? argv[1] : "");
	ran_home = ctx->home;
	return 7;
}

static const struct cli_command fake_commands[] = {
	{ "fake", "a command for the test", cmd_fake },
};

/* Runs cli_main on a NULL-terminated list with stdout and stderr silenced
 * (the help and the usage errors are not TAP). */
static int run_main(const char **args)
{
	char *argv[16];
	int argc = 0;
	int out, errfd, null, r;

	argv[argc++] = (char *)"tandem";
	while (*args && argc < 15)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;

	fflush(stdout);
	fflush(stderr);
	out = dup(1);
	errfd = dup(2);
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	dup2(null, 1);
	dup2(null, 2);
	optind = 0; /* glibc: start getopt afresh */
	r = cli_main(argc, argv, fake_commands, 1);
	fflush(stdout);
	fflush(stderr);
	dup2(out, 1);
	dup2(errfd, 2);
	close(out);
	close(errfd);
	close(null);
	return r;
}

static int run_simple(bool with_json, bool *json, const char **args)
{
	char *argv[16];
	int argc = 0;
	int out, errfd, null, r;

	argv[argc++] = (char *)"status";
	while (*args && argc < 15)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;

	fflush(stdout);
	fflush(stderr);
	out = dup(1);
	errfd = dup(2);
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	dup2(null, 1);
	dup2(null, 2);
	r = cli_parse_simple_options("status", "help text\n", argc, argv, with_json ? json : NULL);
	fflush(stdout);
	fflush(stderr);
	dup2(out, 1);
	dup2(errfd, 2);
	close(out);
	close(errfd);
	close(null);
	return r;
}

TEST(dispatch_passes_the_command_its_arguments)
{
	ran = 0;
	CHECK_INT_EQ(run_main((const char *[]){ "--home", "/h", "fake", "x", NULL }), 7);
	CHECK_INT_EQ(ran, 1);
	CHECK_INT_EQ(ran_argc, 2);
	CHECK_STR_EQ(ran_arg1, "x");
	CHECK_STR_EQ(ran_home, "/h");
}

TEST(usage_errors_exit_2)
{
	ran = 0;
	CHECK_INT_EQ(run_main((const char *[]){ NULL }), EXIT_USAGE);
	CHECK_INT_EQ(run_main((const char *[]){ "nope", NULL }), EXIT_USAGE);
	CHECK_INT_EQ(run_main((const char *[]){ "--bogus", "fake", NULL }), EXIT_USAGE);
	CHECK_INT_EQ(run_main((const char *[]){ "--home", "", "fake", NULL }), EXIT_USAGE);
	CHECK_INT_EQ(run_main((const char *[]){ "--home", NULL }), EXIT_USAGE);
	CHECK_INT_EQ(run_main((const char *[]){ "--log-level", "loud", "fake", NULL }),
		     EXIT_USAGE);
	CHECK_INT_EQ(ran, 0);
}

TEST(help_and_version_exit_0)
{
	ran = 0;
	CHECK_INT_EQ(run_main((const char *[]){ "--help", NULL }), 0);
	CHECK_INT_EQ(run_main((const char *[]){ "-V", NULL }), 0);
	CHECK_INT_EQ(run_main((const char *[]){ "--log-level", "debug", "fake", NULL }), 7);
	CHECK_INT_EQ(ran, 1);
}

TEST(simple_options)
{
	bool json = false;

	CHECK_INT_EQ(run_simple(true, &json, (const char *[]){ NULL }), -1);
	CHECK(!json);
	CHECK_INT_EQ(run_simple(true, &json, (const char *[]){ "--json", NULL }), -1);
	CHECK(json);
	CHECK_INT_EQ(run_simple(false, NULL, (const char *[]){ "--json", NULL }), EXIT_USAGE);
	CHECK_INT_EQ(run_simple(true, &json, (const char *[]){ "--help", NULL }), 0);
	CHECK_INT_EQ(run_simple(true, &json, (const char *[]){ "--what", NULL }), EXIT_USAGE);
	CHECK_INT_EQ(run_simple(true, &json, (const char *[]){ "extra", NULL }), EXIT_USAGE);
}

int main(void)
{
	RUN(dispatch_passes_the_command_its_arguments);
	RUN(usage_errors_exit_2);
	RUN(help_and_version_exit_0);
	RUN(simple_options);
	return tap_done();
}
