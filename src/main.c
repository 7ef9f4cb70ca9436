/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stddef.h>

#include "config.h"
#include "cli/cli.h"
#if HAVE_SELFTEST
#include "selftest/selftest.h"
#endif

/* The commands, in the order `tandem --help` lists them. */
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

int main(int argc, char **argv)
{
	return cli_main(argc, argv, commands, sizeof(commands) / sizeof(commands[0]));
}
