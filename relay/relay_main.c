/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tandem-relay: the rendezvous server (docs/RELAY.md), a thin CLI over relay.h. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "base/log.h"
#include "relay.h"

#define EXIT_USAGE 2

static const char usage[] =
	"Usage: tandem-relay [OPTION]...\n"
	"The tandem rendezvous server: peers store and fetch small encrypted records\n"
	"under lookup tokens (HTTP API in docs/RELAY.md). It never sees plaintext and\n"
	"never logs tokens, records or client addresses.\n"
	"\n"
	"  --listen ADDR:PORT      listen there (repeatable, at most 8); ADDR is [IPv6],\n"
	"                          IPv4 or * (all); PORT 0 picks a free port\n"
	"                          (default [::]:8480, IPv6 and IPv4)\n"
	"  --tls-cert FILE         serve HTTPS with this PEM certificate (chain)\n"
	"  --tls-key FILE          ... and this PEM private key\n"
	"  --max-records N         records kept at most (default 10000); when full, new\n"
	"                          tokens get 503 with Retry-After\n"
	"  --max-records-per-client N\n"
	"                          records one client address (IPv6: one /64) holds at\n"
	"                          most (64; 0: no limit); over it, 429 with Retry-After\n"
	"  --rate N                requests per minute per client address (IPv6: per /64),\n"
	"                          burst of N (default 120; 0: no limit)\n"
	"  --max-body BYTES        largest request body (default 8192)\n"
	"  --default-ttl S         record lifetime when the request gives none (600)\n"
	"  --max-ttl S             longest record lifetime accepted (3600)\n"
	"  --max-connections N     open connections per listen address (512)\n"
	"  --max-connections-per-ip N\n"
	"                          open connections per client address (IPv6: per /64)\n"
	"                          over all listen addresses (32; 0: no limit)\n"
	"  --request-timeout S     close connections idle this long, and requests whose\n"
	"                          body takes longer (10)\n"
	"  --request-deadline S    close connections that have not sent a whole request\n"
	"                          (headers and body) S seconds after they were accepted\n"
	"                          or their previous request ended (10)\n"
	"\n"
	"Relayed connections (GET /v1/splice, peers that cannot reach each other):\n"
	"  --max-splice-sessions N sessions waiting or spliced at once (256); over it,\n"
	"                          503 with Retry-After\n"
	"  --max-splice-sessions-per-client N\n"
	"                          splice connections one client address (IPv6: one\n"
	"                          /64) holds at most (16; 0: no limit); over it, 429\n"
	"  --splice-rate BYTES     bytes per second per session, both ways together\n"
	"                          (0: no limit, the default)\n"
	"  --splice-total-rate BYTES\n"
	"                          bytes per second of all sessions (0: no limit)\n"
	"  --splice-idle-timeout S close a spliced session after S seconds without a\n"
	"                          byte either way (300)\n"
	"  --splice-wait-timeout S the first side waits S seconds for the second, then\n"
	"                          gets 504 (30)\n"
	"\n"
	"  --log-level LEVEL       error, warning, notice, info (default) or debug\n"
	"  --help                  show this help and exit\n"
	"  --version               show the version and exit\n"
	"\n"
	"On start it prints one line per listen address, e.g.\n"
	"\"listening on http://[::1]:8480\". SIGTERM or SIGINT stops it gracefully.\n"
	"Exit status: 0 stopped by a signal, 1 could not start, 2 usage error.\n";

enum {
	OPT_LISTEN = 256,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_MAX_RECORDS,
	OPT_MAX_RECORDS_PER_CLIENT,
	OPT_RATE,
	OPT_MAX_BODY,
	OPT_DEFAULT_TTL,
	OPT_MAX_TTL,
	OPT_MAX_CONNECTIONS,
	OPT_MAX_CONNECTIONS_PER_IP,
	OPT_REQUEST_TIMEOUT,
	OPT_REQUEST_DEADLINE,
	OPT_MAX_SPLICE_SESSIONS,
	OPT_MAX_SPLICE_SESSIONS_PER_CLIENT,
	OPT_SPLICE_RATE,
	OPT_SPLICE_TOTAL_RATE,
	OPT_SPLICE_IDLE_TIMEOUT,
	OPT_SPLICE_WAIT_TIMEOUT,
	OPT_LOG_LEVEL,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option options[] = {
	{"listen", required_argument, NULL, OPT_LISTEN},
	{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
	{"tls-key", required_argument, NULL, OPT_TLS_KEY},
	{"max-records", required_argument, NULL, OPT_MAX_RECORDS},
	{"max-records-per-client", required_argument, NULL, OPT_MAX_RECORDS_PER_CLIENT},
	{"rate", required_argument, NULL, OPT_RATE},
	{"max-body", required_argument, NULL, OPT_MAX_BODY},
	{"default-ttl", required_argument, NULL, OPT_DEFAULT_TTL},
	{"max-ttl", required_argument, NULL, OPT_MAX_TTL},
	{"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
	{"max-connections-per-ip", required_argument, NULL, OPT_MAX_CONNECTIONS_PER_IP},
	{"request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT},
	{"request-deadline", required_argument, NULL, OPT_REQUEST_DEADLINE},
	{"max-splice-sessions", required_argument, NULL, OPT_MAX_SPLICE_SESSIONS},
	{"max-splice-sessions-per-client", required_argument, NULL,
	 OPT_MAX_SPLICE_SESSIONS_PER_CLIENT},
	{"splice-rate", required_argument, NULL, OPT_SPLICE_RATE},
	{"splice-total-rate", required_argument, NULL, OPT_SPLICE_TOTAL_RATE},
	{"splice-idle-timeout", required_argument, NULL, OPT_SPLICE_IDLE_TIMEOUT},
	{"splice-wait-timeout", required_argument, NULL, OPT_SPLICE_WAIT_TIMEOUT},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("tandem-relay: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

/* A whole decimal number in [min, max]: no sign, no blanks, no suffix. */
static int number_parse(const char *s, unsigned long long min, unsigned long long max,
			unsigned long long *ret)
{
	unsigned long long v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (max - (unsigned long long)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (unsigned long long)(*s - '0');
	}
	if (v < min)
		return -ERANGE;
	*ret = v;
	return 0;
}

static int number_opt(const char *name, const char *arg, unsigned long long min,
		      unsigned long long max, unsigned long long *ret)
{
	char q[48];

	if (number_parse(arg, min, max, ret) == 0)
		return 0;
	usage_error("--%s wants a whole number from %llu to %llu, not %s", name, min, max,
		    log_quote(arg, strlen(arg), q, sizeof(q)));
	return -EINVAL;
}

static int args_parse(int argc, char **argv, struct relay_config *cfg, int *ret_exit)
{
	unsigned long long v;
	enum log_level level;
	char q[64], err[256];
	bool per_ip_given = false, per_client_given = false, splice_per_client_given = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
		switch (c) {
		case OPT_LISTEN:
			if (cfg->nlisten >= RELAY_MAX_LISTEN) {
				*ret_exit = usage_error("at most %d --listen addresses can be "
							"given; drop some",
							RELAY_MAX_LISTEN);
				return -EINVAL;
			}
			cfg->listen[cfg->nlisten++] = optarg;
			break;
		case OPT_TLS_CERT:
			cfg->tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			cfg->tls_key = optarg;
			break;
		case OPT_MAX_RECORDS:
			if (number_opt("max-records", optarg, 1, 1000000, &v) < 0)
				goto bad;
			cfg->max_records = (size_t)v;
			break;
		case OPT_MAX_RECORDS_PER_CLIENT:
			if (number_opt("max-records-per-client", optarg, 0, 1000000, &v) < 0)
				goto bad;
			cfg->max_records_per_client = (size_t)v;
			per_client_given = true;
			break;
		case OPT_RATE:
			if (number_opt("rate", optarg, 0, 1000000, &v) < 0)
				goto bad;
			cfg->rate = (unsigned)v;
			break;
		case OPT_MAX_BODY:
			if (number_opt("max-body", optarg, 64, 1024 * 1024, &v) < 0)
				goto bad;
			cfg->max_body = (size_t)v;
			break;
		case OPT_DEFAULT_TTL:
			if (number_opt("default-ttl", optarg, 1, 86400, &v) < 0)
				goto bad;
			cfg->default_ttl = (unsigned)v;
			break;
		case OPT_MAX_TTL:
			if (number_opt("max-ttl", optarg, 1, 86400, &v) < 0)
				goto bad;
			cfg->max_ttl = (unsigned)v;
			break;
		case OPT_MAX_CONNECTIONS:
			if (number_opt("max-connections", optarg, 1, 100000, &v) < 0)
				goto bad;
			cfg->max_connections = (unsigned)v;
			break;
		case OPT_MAX_CONNECTIONS_PER_IP:
			if (number_opt("max-connections-per-ip", optarg, 0, 100000, &v) < 0)
				goto bad;
			cfg->max_connections_per_ip = (unsigned)v;
			per_ip_given = true;
			break;
		case OPT_REQUEST_TIMEOUT:
			if (number_opt("request-timeout", optarg, 1, 3600, &v) < 0)
				goto bad;
			cfg->request_timeout = (unsigned)v;
			break;
		case OPT_REQUEST_DEADLINE:
			if (number_opt("request-deadline", optarg, 1, 3600, &v) < 0)
				goto bad;
			cfg->request_deadline = (unsigned)v;
			break;
		case OPT_MAX_SPLICE_SESSIONS:
			if (number_opt("max-splice-sessions", optarg, 1, 100000, &v) < 0)
				goto bad;
			cfg->max_splice_sessions = (unsigned)v;
			break;
		case OPT_MAX_SPLICE_SESSIONS_PER_CLIENT:
			if (number_opt("max-splice-sessions-per-client", optarg, 0, 100000, &v) < 0)
				goto bad;
			cfg->max_splice_sessions_per_client = (unsigned)v;
			splice_per_client_given = true;
			break;
		case OPT_SPLICE_RATE:
			if (number_opt("splice-rate", optarg, 0, UINT64_C(1) << 40, &v) < 0)
				goto bad;
			cfg->splice_rate = v;
			break;
		case OPT_SPLICE_TOTAL_RATE:
			if (number_opt("splice-total-rate", optarg, 0, UINT64_C(1) << 40, &v) < 0)
				goto bad;
			cfg->splice_total_rate = v;
			break;
		case OPT_SPLICE_IDLE_TIMEOUT:
			if (number_opt("splice-idle-timeout", optarg, 1, 86400, &v) < 0)
				goto bad;
			cfg->splice_idle_timeout = (unsigned)v;
			break;
		case OPT_SPLICE_WAIT_TIMEOUT:
			if (number_opt("splice-wait-timeout", optarg, 1, 3600, &v) < 0)
				goto bad;
			cfg->splice_wait_timeout = (unsigned)v;
			break;
		case OPT_LOG_LEVEL:
			if (log_level_parse(optarg, &level) < 0) {
				*ret_exit = usage_error(
					"unknown log level %s; use error, warning, notice, info or "
					"debug",
					log_quote(optarg, strlen(optarg), q, sizeof(q)));
				return -EINVAL;
			}
			log_set_level(level);
			break;
		case OPT_HELP:
			fputs(usage, stdout);
			*ret_exit = 0;
			return 1;
		case OPT_VERSION:
			printf("tandem-relay %s\n", TANDEM_VERSION);
			*ret_exit = 0;
			return 1;
		case ':':
			*ret_exit = usage_error("option %s needs a value; see tandem-relay --help",
						log_quote(name, strlen(name), q, sizeof(q)));
			return -EINVAL;
		default:
			*ret_exit = usage_error("unknown option %s; see tandem-relay --help",
						log_quote(name, strlen(name), q, sizeof(q)));
			return -EINVAL;
		}
	}
	if (optind < argc) {
		*ret_exit =
			usage_error("unexpected argument %s; tandem-relay takes options only "
				    "(see --help)",
				    log_quote(argv[optind], strlen(argv[optind]), q, sizeof(q)));
		return -EINVAL;
	}
	/* the per-address limit follows a smaller total unless given */
	if (!per_ip_given && cfg->max_connections_per_ip > cfg->max_connections)
		cfg->max_connections_per_ip = cfg->max_connections;
	/* so does the per-client record limit */
	if (cfg->max_records_per_client > cfg->max_records) {
		if (per_client_given) {
			*ret_exit = usage_error(
				"the per-client record limit (--max-records-per-client %zu) must not "
				"exceed the record limit (--max-records %zu); 0 means no per-client "
				"limit",
				cfg->max_records_per_client, cfg->max_records);
			return -EINVAL;
		}
		cfg->max_records_per_client = cfg->max_records;
	}
	/* and the per-client splice limit a smaller total */
	if (!splice_per_client_given &&
	    cfg->max_splice_sessions_per_client > cfg->max_splice_sessions)
		cfg->max_splice_sessions_per_client = cfg->max_splice_sessions;
	if (relay_config_check(cfg, err, sizeof(err)) < 0) {
		*ret_exit = usage_error("%s", err);
		return -EINVAL;
	}
	return 0;
bad:
	*ret_exit = EXIT_USAGE;
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct relay_server *srv = NULL;
	struct relay_config cfg;
	sigset_t sigs;
	int status = 1, r, sig = 0;

	log_set_ident("tandem-relay");
	relay_config_init(&cfg);
	r = args_parse(argc, argv, &cfg, &status);
	if (r != 0)
		return status;

	/* Before any thread exists: the signals are taken by sigwait only. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	r = relay_server_new(&cfg, &srv);
	if (r < 0) {
		if (r != -EINVAL) /* -EINVAL is logged with its reason */
			log_err("cannot set up the relay: %s", strerror(-r));
		return 1;
	}
	/* a failure is logged once, with its reason, by relay_server_start */
	if (relay_server_start(srv) < 0)
		goto out;
	for (size_t i = 0; i < relay_server_listener_count(srv); i++)
		printf("listening on %s\n", relay_server_url(srv, i));
	fflush(stdout);

	while (sig != SIGTERM && sig != SIGINT) {
		if (sigwait(&sigs, &sig) != 0)
			sig = 0;
	}
	log_info("stopping on %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	relay_server_stop(srv);
	status = 0;
out:
	relay_server_free(srv);
	return status;
}
