/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `tandem init` and `tandem id`. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "identity/identity.h"

static const char init_help[] =
	"Usage: tandem [--home DIR] init\n"
	"\n"
	"Create this machine's tandem identity (an Ed25519 key pair) and print its\n"
	"fingerprint. The secret key is written to DIR/identity.key with mode 0600;\n"
	"DIR is --home DIR, or $XDG_CONFIG_HOME/tandem (~/.config/tandem).\n"
	"An existing identity is never overwritten.\n"
	"\n"
	"Give the fingerprint to the person you share with, and ask for theirs.\n"
	"\n"
	"Options:\n"
	"  -h, --help   show this help\n";

static const char id_help[] =
	"Usage: tandem [--home DIR] id\n"
	"\n"
	"Print this machine's fingerprint, alone on one line, e.g.\n"
	"K7QF-2M4X-....  (36 characters in 9 groups of 4).\n"
	"\n"
	"Options:\n"
	"  -h, --help   show this help\n";

static int load_identity(struct cli_ctx *ctx, struct identity **ret)
{
	int world = 0;
	int r = identity_load(ctx->paths.config, ret, &world);

	if (r == -ENOENT) {
		cli_error("no identity in %s: run 'tandem%s%s init' first", ctx->paths.config,
			  ctx->home ? " --home " : "", ctx->home ? ctx->home : "");
		return 1;
	}
	if (r == -EBADMSG) {
		cli_error("the identity file %s/%s is damaged (not a tandem identity); restore it "
			  "from a backup, or move it away and run 'tandem init' (your fingerprint "
			  "will change)",
			  ctx->paths.config, IDENTITY_FILE);
		return 1;
	}
	if (r < 0) {
		cli_error("cannot read the identity in %s/%s: %s", ctx->paths.config,
			  IDENTITY_FILE, strerror(-r));
		return 1;
	}
	if (world)
		cli_error("warning: %s/%s can be read by other users; run 'chmod 600 %s/%s'",
			  ctx->paths.config, IDENTITY_FILE, ctx->paths.config, IDENTITY_FILE);
	return 0;
}

int cmd_init(struct cli_ctx *ctx, int argc, char **argv)
{
	struct identity *id = NULL, *old = NULL;
	char fp[FP_TEXT_LEN + 1];
	int r;

	r = cli_parse_simple_options("init", init_help, argc, argv, NULL);
	if (r >= 0)
		return r;
	if (cli_resolve_paths(ctx))
		return 1;
	r = identity_new(NULL, &id);
	if (r < 0) {
		cli_error("cannot create a key pair: %s", strerror(-r));
		return 1;
	}
	r = identity_save(id, ctx->paths.config);
	if (r == -EEXIST) {
		if (identity_load(ctx->paths.config, &old, NULL) >= 0) {
			fp_format(&old->fp, fp);
			cli_error("an identity already exists in %s/%s (fingerprint %s); refusing "
				  "to overwrite it. 'tandem id' prints it. To start over, move that "
				  "file away first.",
				  ctx->paths.config, IDENTITY_FILE, fp);
		} else {
			cli_error("%s/%s already exists; refusing to overwrite it. Move it away "
				  "first if you really want a new identity.",
				  ctx->paths.config, IDENTITY_FILE);
		}
		identity_free(old);
		identity_free(id);
		return 1;
	}
	if (r < 0) {
		cli_error("cannot write the identity to %s/%s: %s; check that the directory is "
			  "writable, or choose another with --home DIR",
			  ctx->paths.config, IDENTITY_FILE, strerror(-r));
		identity_free(id);
		return 1;
	}
	fp_format(&id->fp, fp);
	fprintf(stderr, "Created a new identity in %s/%s\n", ctx->paths.config, IDENTITY_FILE);
	fprintf(stderr, "Your fingerprint (give it to the other person; 'tandem id' shows it "
			"again):\n");
	printf("%s\n", fp);
	identity_free(id);
	return 0;
}

int cmd_id(struct cli_ctx *ctx, int argc, char **argv)
{
	struct identity *id = NULL;
	char fp[FP_TEXT_LEN + 1];
	int r;

	r = cli_parse_simple_options("id", id_help, argc, argv, NULL);
	if (r >= 0)
		return r;
	if (cli_resolve_paths(ctx))
		return 1;
	if (load_identity(ctx, &id))
		return 1;
	fp_format(&id->fp, fp);
	printf("%s\n", fp);
	identity_free(id);
	return 0;
}
