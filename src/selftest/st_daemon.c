/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Scenarios with real `tandem up` daemons: pairing, status, down, faults. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/control_client.h"
#include "identity/derive.h"
#include "identity/identity.h"
#include "identity/record.h"
#include "relay.h"
#include "relay_client/relay_client.h"
#include "st_daemon.h"
#include "st_internal.h"

#define POLL_MS 20
#define STATUS_TIMEOUT_MS 2000
#define CLEANUP_MS 4000 /* below the watchdog's grace */

static void sleep_ms(unsigned ms)
{
	poll(NULL, 0, (int)ms);
}


/* `tandem status --json` of p, parsed (json_decref it), or NULL. */
static json_t *status_get(struct st_env *env, const struct st_peer *p)
{
	struct st_proc_out out;
	json_error_t jerr;
	json_t *j;

	const char *argv[] = {"--home", p->home, "status", "--json", NULL};
	if (st_run_tandem(env, &out, argv) < 0 || out.status != 0)
		return NULL;
	j = json_loads(out.out, 0, &jerr);
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool jstr_is(json_t *o, const char *key, const char *want)
{
	const char *s = jstr(o, key);
	return s && strcmp(s, want) == 0;
}

static bool jstr_has(json_t *o, const char *key, const char *needle)
{
	const char *s = jstr(o, key);
	return s && strstr(s, needle);
}

json_t *st_peer_status(struct st_env *env, const struct st_peer *p)
{
	struct control_client *c = NULL;
	char sock[600];
	json_t *st = NULL;
	uint64_t left = st_left_ms(env);

	snprintf(sock, sizeof(sock), "%s/%s", p->home, CONTROL_SOCKET_NAME);
	if (control_client_open(sock, &c) < 0)
		return NULL;
	if (control_client_call(c, "{\"cmd\":\"status\"}",
				left < STATUS_TIMEOUT_MS ? (int)left + 1 : STATUS_TIMEOUT_MS, &st,
				NULL) < 0)
		st = NULL;
	control_client_free(c);
	if (st && !json_is_object(st)) {
		json_decref(st);
		st = NULL;
	}
	return st;
}

typedef bool (*status_pred)(json_t *st, const void *arg);

/*
 * Polls p's status until pred holds or ms passed. Returns that status
 * (json_decref it) or NULL, noting what was seen last. The polls ask the
 * control socket (cheap); the status returned is `tandem status --json`'s,
 * as a user sees it, and pred must hold for it too.
 */
static json_t *status_wait(struct st_env *env, const struct st_peer *p, status_pred pred,
			   const void *arg, unsigned ms, const char *what)
{
	uint64_t end = st_now_ms() + ms;
	json_t *st;

	for (;;) {
		st = st_peer_status(env, p);
		if (st && pred(st, arg)) {
			json_decref(st);
			st = status_get(env, p);
			if (st && pred(st, arg))
				return st;
		}
		if (st_now_ms() >= end || st_left_ms(env) < POLL_MS)
			break;
		json_decref(st);
		sleep_ms(POLL_MS);
	}
	char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
	st_note(env, "%s never became %s; last status: %s", p->name, what, text ? text : "none");
	free(text);
	json_decref(st);
	return NULL;
}

/* connected to the peer whose fingerprint is arg */
static bool is_connected_to(json_t *st, const void *arg)
{
	return jstr_is(st, "state", "connected") && jstr_is(st, "peer", arg) &&
	       json_is_string(json_object_get(st, "peer_addr"));
}

static bool is_connecting(json_t *st, const void *arg)
{
	return jstr_is(st, "state", "connecting");
}

static bool has_rtt(json_t *st, const void *arg)
{
	return is_connected_to(st, arg) && json_is_number(json_object_get(st, "rtt_ms"));
}

static bool relay_error_has(json_t *st, const void *arg)
{
	return jstr_has(st, "relay_error", arg);
}

/* Waits until a and b are connected to each other. */
static bool pair_wait(struct st_env *env, struct st_peer *a, struct st_peer *b, unsigned ms)
{
	json_t *sa = status_wait(env, a, is_connected_to, b->fp, ms, "connected");
	json_t *sb = sa ? status_wait(env, b, is_connected_to, a->fp, ms, "connected") : NULL;
	bool ok = sa && sb;

	json_decref(sa);
	json_decref(sb);
	return ok;
}

/* Makes a and b and connects them. */
static int pair_up(struct st_env *env, struct st_peer *a, struct st_peer *b)
{
	if (st_peer_make(env, a, "ana") < 0 || st_peer_make(env, b, "ben") < 0)
		return -1;
	if (st_peer_up(env, a, b->fp, NULL) < 0 || st_peer_up(env, b, a->fp, NULL) < 0)
		return -1;
	return pair_wait(env, a, b, 5000) ? 0 : -1;
}

/* A well-formed fingerprint nobody uses. */
static void nobody_fp(char out[static FP_TEXT_LEN + 1])
{
	struct identity *id = NULL;
	uint8_t seed[IDENTITY_SEED_LEN];

	memset(seed, 0x5a, sizeof(seed));
	if (identity_new(seed, &id) == 0)
		fp_format(&id->fp, out);
	identity_free(id);
}

/* What the relay holds while two daemons are paired: opaque bytes only. */
struct leak_scan {
	struct fingerprint fp[2];
	const char *fptext[2];
	int records;
	int leaks;
};

static void leak_scan_record(const uint8_t *token, size_t token_len, const uint8_t *blob,
			     size_t blob_len, void *userdata)
{
	struct leak_scan *s = userdata;
	const uint8_t *part[2] = { token, blob };
	size_t len[2] = { token_len, blob_len };

	s->records++;
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < 2; i++)
			if (memmem(part[k], len[k], s->fp[i].b, 8) ||
			    memmem(part[k], len[k], s->fptext[i], 9))
				s->leaks++;
		if (memmem(part[k], len[k], &in6addr_loopback, 16) ||
		    memmem(part[k], len[k], "::1", 3))
			s->leaks++;
	}
}

int st_daemon_pairing(struct st_env *env)
{
	struct st_peer p[2];
	struct st_proc_out out;
	uint64_t t0;
	json_t *st;

	memset(p, 0, sizeof(p));
	if (st_peer_make(env, &p[0], "ana") < 0 || st_peer_make(env, &p[1], "ben") < 0)
		goto out;
	t0 = st_now_ms();
	ST_CHECK(env, st_peer_up(env, &p[0], p[1].fp, NULL) == 0);
	ST_CHECK(env, st_peer_up(env, &p[1], p[0].fp, NULL) == 0);
	if (env->failures || !pair_wait(env, &p[0], &p[1], 5000)) {
		ST_CHECK(env, !"the peers connected");
		goto out;
	}
	st_note(env, "both daemons started and connected in %llu ms",
		(unsigned long long)(st_now_ms() - t0));
	for (int i = 0; i < 2; i++) {
		st = status_wait(env, &p[i], has_rtt, p[1 - i].fp, 2000, "connected with an RTT");
		ST_CHECK(env, st != NULL);
		if (!st)
			continue;
		ST_CHECK(env, jstr_is(st, "self", p[i].fp));
		ST_CHECK(env, json_number_value(json_object_get(st, "rtt_ms")) > 0);
		ST_CHECK(env, json_integer_value(json_object_get(st, "pid")) == p[i].pid);
		ST_CHECK(env, jstr_has(st, "peer_addr", "[::1]:"));
		ST_CHECK(env, jstr_is(st, "path", "direct"));
		ST_CHECK(env, json_is_integer(json_object_get(st, "connected_since")));
		ST_CHECK(env, json_integer_value(json_object_get(st, "reconnects")) == 0);
		ST_CHECK(env, json_is_null(json_object_get(st, "relay_error")));
		ST_CHECK(env, jstr_is(st, "relay", env->relay_url));
		ST_CHECK(env, json_is_integer(json_object_get(st, "files_in_sync")) &&
				      json_is_integer(json_object_get(st, "files_pending")) &&
				      json_is_array(json_object_get(st, "transfers")));
		json_decref(st);
		ST_CHECK(env, st_peer_log_has(&p[i], "runs \"tandem "));

		const char *argv[] = {"--home", p[i].home, "status", NULL};
		ST_CHECK(env, st_run_tandem(env, &out, argv) == 0 && out.status == 0);
		ST_CHECK(env, strstr(out.out, "state:       connected") != NULL);
		ST_CHECK(env, strstr(out.out, p[1 - i].fp) && strstr(out.out, "rtt:"));
		ST_CHECK(env, strstr(out.out, "since:") != NULL);
		ST_CHECK(env, strstr(out.out, "path:        direct") != NULL);
	}

	/* Relay privacy with real daemons: their records hold no fingerprint or address. */
	struct leak_scan scan = { .fptext = { p[0].fp, p[1].fp } };
	struct err err;
	ST_CHECK(env, fp_parse(p[0].fp, &scan.fp[0], &err) == 0 &&
			      fp_parse(p[1].fp, &scan.fp[1], &err) == 0);
	relay_server_foreach_record(env->relay, leak_scan_record, &scan);
	st_note(env, "the relay holds %d records, %d leaks", scan.records, scan.leaks);
	ST_CHECK(env, scan.records == 2);
	ST_CHECK(env, scan.leaks == 0);
out:
	st_peers_cleanup(env, p, 2);
	return ST_PASS;
}

int st_daemon_one_inbound(struct st_env *env)
{
	struct st_peer p[2];
	json_t *st;

	memset(p, 0, sizeof(p));
	if (st_peer_make(env, &p[0], "ana") < 0 || st_peer_make(env, &p[1], "ben") < 0)
		goto out;
	/* ben accepts nothing: he must dial ana, whatever the fingerprints say */
	ST_CHECK(env, st_peer_up(env, &p[0], p[1].fp, NULL) == 0);
	ST_CHECK(env, st_peer_up(env, &p[1], p[0].fp, "none") == 0);
	if (env->failures)
		goto out;
	ST_CHECK(env, pair_wait(env, &p[0], &p[1], 5000));
	st = status_get(env, &p[1]);
	ST_CHECK(env, st && json_is_null(json_object_get(st, "listen")));
	json_decref(st);
	ST_CHECK(env, st_peer_log_has(&p[1], "accepting no connections"));
	ST_CHECK(env, st_peer_log_has(&p[1], "(we dialed)"));
	ST_CHECK(env, st_peer_log_has(&p[0], "(it dialed)"));
out:
	st_peers_cleanup(env, p, 2);
	return ST_PASS;
}

/* Runs tandem with argv; checks the exit status and that stderr has needle. */
static void expect(struct st_env *env, const char *const *argv, int status, const char *needle)
{
	struct st_proc_out out;

	if (st_run_tandem(env, &out, argv) < 0) {
		ST_CHECK(env, !"cannot run tandem");
		return;
	}
	if (out.status != status ||
	    !strstr(needle[0] == '!' ? out.out : out.err, needle + (needle[0] == '!'))) {
		st_note(env, "'tandem %s %s' exited %d (expected %d); stderr: %s", argv[2],
			argv[3] ? argv[3] : "", out.status, status, out.err);
		st_fail(env, __FILE__, __LINE__, "expected exit %d and '%s'", status, needle);
	}
}

int st_daemon_cli(struct st_env *env)
{
	struct st_peer p[2];
	char file[600], bad[FP_TEXT_LEN + 1], none[512];

	memset(p, 0, sizeof(p));
	if (st_peer_make(env, &p[0], "ana") < 0 || st_peer_make(env, &p[1], "ben") < 0)
		return ST_FAIL;
	const char *u = env->relay_url, *h = p[0].home, *d = p[0].dir, *fp = p[1].fp;
	snprintf(file, sizeof(file), "%s/identity.key", h);
	snprintf(bad, sizeof(bad), "%s", fp);
	bad[FP_TEXT_LEN - 1] = bad[FP_TEXT_LEN - 1] == 'A' ? 'B' : 'A'; /* a typo */
	ST_REQUIRE(env, st_mkdir(env, "nobody", none) == 0);

	static const char *const helps[] = {"up", "status", "down"};
	for (size_t i = 0; i < 3; i++) {
		const char *argv[] = {"--home", h, helps[i], "--help", NULL};
		expect(env, argv, 0, "!Usage: tandem");
	}
	expect(env, (const char *[]){"--home", h, "up", NULL}, 2, "no peer given");
	expect(env,
	       (const char *[]){"--home", h, "up", "--peer", "K7QF-2M4X", "--relay", u, "--dir", d,
				NULL},
	       2, "expected 36");
	expect(env,
	       (const char *[]){"--home", h, "up", "--peer", bad, "--relay", u, "--dir", d, NULL},
	       2, "checksum");
	expect(env,
	       (const char *[]){"--home", h, "up", "--peer", p[0].fp, "--relay", u, "--dir", d,
				NULL},
	       2, "own fingerprint");
	expect(env,
	       (const char *[]){"--home", h, "up", "--peer", fp, "--relay", "relay.example",
				"--dir", d, NULL},
	       2, "must start with http://");
	expect(env,
	       (const char *[]){"--home", h, "up", "--peer", fp, "--relay", u, "--dir", d,
				"--listen", "localhost:1", NULL},
	       2, "is not ADDR:PORT");
	expect(env,
	       (const char *[]){"--home", h, "up", "--peer", fp, "--relay", u, "--dir",
				"/nonexistent/tandem-share", NULL},
	       1, "mkdir -p");
	expect(env,
	       (const char *[]){"--home", h, "up", "--peer", fp, "--relay", u, "--dir", file, NULL},
	       1, "not a directory");
	expect(env,
	       (const char *[]){"--home", none, "up", "--peer", fp, "--relay", u, "--dir", d, NULL},
	       1, "init' first");
	expect(env,
	       (const char *[]){"--home", h, "up", "--peer", fp, "--relay", u, "--mount", d,
				"--dir", d, NULL},
	       2, "--dir and --mount");
	expect(env,
	       (const char *[]){"--home", h, "up", "--peer", fp, "--relay", u, "--dir", d,
				"--cache-max", "1.5G", NULL},
	       2, "--cache-max: '1.5G' is not a size");
	expect(env,
	       (const char *[]){"--home", h, "up", "--peer", fp, "--relay", u, "--dir", d,
				"--cache-max=99999999999T", NULL},
	       2, "too large");
	expect(env,
	       (const char *[]){"--home", h, "up", "--peer", fp, "--relay", u, "--dir", d,
				"--relay-data", "sometimes", NULL},
	       2, "is 'never', 'fallback' or 'always', not 'sometimes'");
	expect(env,
	       (const char *[]){"--home", h, "up", "--peer", fp, "--relay", u, "--dir", d,
				"--relay-data", NULL},
	       2, "needs a value");
	expect(env, (const char *[]){"--home", h, "status", NULL}, 1,
	       "no tandem daemon is running");
	expect(env, (const char *[]){"--home", h, "down", NULL}, 1, "nothing to stop");
	expect(env, (const char *[]){"--home", h, "status", "--yaml", NULL}, 2, "--yaml");
	st_peers_cleanup(env, p, 2);
	return ST_PASS;
}

int st_daemon_wrong_fp(struct st_env *env)
{
	struct st_peer p;
	char nobody[FP_TEXT_LEN + 1];
	json_t *st;

	memset(&p, 0, sizeof(p));
	nobody_fp(nobody);
	if (st_peer_make(env, &p, "ana") < 0 || st_peer_up(env, &p, nobody, NULL) < 0) {
		ST_CHECK(env, !"ana's daemon runs");
		goto out;
	}
	st = status_wait(env, &p, relay_error_has, "no record for this fingerprint yet", 3000,
			 "waiting for a peer that never comes");
	ST_CHECK(env, st != NULL);
	ST_CHECK(env, st && jstr_is(st, "state", "connecting") && jstr_is(st, "peer", nobody));
	ST_CHECK(env, st && jstr_has(st, "relay_error", env->relay_url));
	json_decref(st);
out:
	st_peers_cleanup(env, &p, 1);
	return ST_PASS;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -1;
}

int st_daemon_conf_running(struct st_env *env)
{
	struct st_peer p;
	char conf[600], share[600], text[1024], nobody[FP_TEXT_LEN + 1], want[1200];
	json_t *st;

	memset(&p, 0, sizeof(p));
	nobody_fp(nobody);
	if (st_peer_make(env, &p, "ana") < 0)
		goto out;
	snprintf(conf, sizeof(conf), "%s/tandem.conf", p.home);
	snprintf(share, sizeof(share), "%s/share", p.home);
	ST_REQUIRE(env, mkdir(share, 0700) == 0);

	/* a key it does not know: file:line */
	snprintf(text, sizeof(text), "peer = %s\ncolour = blue\n", nobody);
	ST_REQUIRE(env, write_file(conf, text) == 0);
	expect(env, (const char *[]){"--home", p.home, "up", NULL}, 2,
	       "tandem.conf:2: unknown key 'colour'");

	/* flags win over the file: its bad peer is not even looked at */
	ST_REQUIRE(env, write_file(conf, "peer = not-a-fingerprint\n") == 0);
	expect(env,
	       (const char *[]){"--home", p.home, "up", "--peer", nobody, "--relay", env->relay_url,
				"--dir", "/nonexistent/x", NULL},
	       1, "does not exist");

	/* everything from the file, the folder relative to it */
	snprintf(text, sizeof(text),
		 "# ana's peer\npeer = %s\nrelay = %s\n  dir = share  \nlisten = [::1]:0\n", nobody,
		 env->relay_url);
	ST_REQUIRE(env, write_file(conf, text) == 0);
	{
		struct st_proc_out out;
		const char *argv[] = {"--home", p.home, "up", NULL};
		const char *pp;
		st_knobs_set();
		ST_REQUIRE(env, st_run_tandem(env, &out, argv) == 0);
		pp = strstr(out.err, "(pid ");
		if (out.status != 0 || !pp) {
			st_note(env, "up from tandem.conf exited %d: %s", out.status, out.err);
			ST_CHECK(env, !"up from tandem.conf");
			goto out;
		}
		p.pid = (pid_t)strtol(pp + 5, NULL, 10);
		st_children_add(p.pid);
	}
	st = status_get(env, &p);
	ST_CHECK(env, st && jstr_is(st, "peer", nobody));
	ST_CHECK(env, st && jstr_has(st, "dir", "/ana/share"));
	json_decref(st);

	/* a second daemon for the same home is refused, with the pid and the way out */
	snprintf(want, sizeof(want),
		 "already runs for %s (pid %d); stop it with 'tandem --home %s "
		 "down'",
		 p.home, (int)p.pid, p.home);
	expect(env, (const char *[]){"--home", p.home, "up", NULL}, 1, want);
	expect(env,
	       (const char *[]){"--home", p.home, "up", "--peer", nobody, "--relay", env->relay_url,
				"--dir", p.dir, "--listen", "none", NULL},
	       1, "already runs");
out:
	st_peers_cleanup(env, &p, 1);
	return ST_PASS;
}

struct token_scan {
	uint8_t token[2][32];
	int found;
};

static void scan_token(const uint8_t *token, size_t token_len, const uint8_t *blob, size_t blob_len,
		       void *userdata)
{
	struct token_scan *s = userdata;

	for (int i = 0; i < 2; i++)
		if (token_len == 32 && memcmp(token, s->token[i], 32) == 0)
			s->found++;
}

/* How many records the relay holds for fingerprint text fp (this bucket and
 * the previous one). */
static int relay_records(struct st_env *env, const char *fptext)
{
	struct token_scan s = {0};
	struct fingerprint fp;
	struct err err;
	uint64_t b = derive_bucket(time(NULL), 0);

	if (fp_parse(fptext, &fp, &err) < 0)
		return -1;
	derive_relay_token(&fp, b, s.token[0]);
	derive_relay_token(&fp, b ? b - 1 : 0, s.token[1]);
	relay_server_foreach_record(env->relay, scan_token, &s);
	return s.found;
}

static bool relay_records_wait(struct st_env *env, const char *fp, int want, unsigned ms)
{
	uint64_t end = st_now_ms() + ms;

	while (relay_records(env, fp) != want) {
		if (st_now_ms() >= end || st_left_ms(env) < POLL_MS)
			return false;
		sleep_ms(POLL_MS);
	}
	return true;
}

static bool socket_exists(const struct st_peer *p)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/tandem.sock", p->home);
	return access(path, F_OK) == 0;
}

int st_daemon_down(struct st_env *env)
{
	struct st_peer p;
	char nobody[FP_TEXT_LEN + 1];
	pid_t pid;

	memset(&p, 0, sizeof(p));
	nobody_fp(nobody);
	if (st_peer_make(env, &p, "ana") < 0 || st_peer_up(env, &p, nobody, NULL) < 0) {
		ST_CHECK(env, !"ana's daemon runs");
		goto out;
	}
	ST_CHECK(env, relay_records_wait(env, p.fp, 1, 3000));
	ST_CHECK(env, socket_exists(&p));
	pid = p.pid;
	ST_CHECK(env, st_peer_down_cli(env, &p) == 0);
	/* down returned: the daemon is gone, and so are its socket and relay record */
	ST_CHECK(env, kill(pid, 0) < 0 && errno == ESRCH);
	ST_CHECK(env, !socket_exists(&p));
	ST_CHECK(env, relay_records(env, p.fp) == 0);
	expect(env, (const char *[]){"--home", p.home, "status", NULL}, 1,
	       "no tandem daemon is running");
	expect(env, (const char *[]){"--home", p.home, "down", NULL}, 1,
	       "no tandem daemon is running");

	/* SIGTERM: the same clean stop */
	if (st_peer_up(env, &p, nobody, NULL) < 0) {
		ST_CHECK(env, !"ana's daemon runs again");
		goto out;
	}
	ST_CHECK(env, relay_records_wait(env, p.fp, 1, 3000));
	kill(p.pid, SIGTERM);
	ST_CHECK(env, st_peer_reap(p.pid, 5000) == 0);
	p.pid = 0;
	ST_CHECK(env, !socket_exists(&p));
	ST_CHECK(env, relay_records(env, p.fp) == 0);
	ST_CHECK(env, st_peer_log_has(&p, "stopping: received SIGTERM"));
out:
	st_peers_cleanup(env, &p, 1);
	return ST_PASS;
}

int st_daemon_impostor(struct st_env *env)
{
	struct st_peer p[3]; /* ana, ben, and eve who pretends to be ben to ana */
	char want[200];
	json_t *st;

	memset(p, 0, sizeof(p));
	if (pair_up(env, &p[0], &p[1]) < 0 || st_peer_make(env, &p[2], "eve") < 0) {
		ST_CHECK(env, !"ana and ben connected");
		goto out;
	}
	/* eve has ana's fingerprint and dials her (accepting nothing, she dials at once) */
	ST_CHECK(env, st_peer_up(env, &p[2], p[0].fp, "none") == 0);
	ST_CHECK(env, st_peer_log_wait(env, &p[0], "refused a connection from [::1]:", 4000));
	snprintf(want, sizeof(want), "peer presented key with fingerprint %s, expected %s", p[2].fp,
		 p[1].fp);
	ST_CHECK(env, st_peer_log_has(&p[0], want));
	ST_CHECK(env, st_peer_log_wait(env, &p[2], "closed the connection during the handshake", 3000));

	/* ana stayed with ben all along */
	st = status_get(env, &p[0]);
	ST_CHECK(env, st && is_connected_to(st, p[1].fp));
	ST_CHECK(env, st && json_integer_value(json_object_get(st, "reconnects")) == 0);
	ST_CHECK(env, st && jstr_has(st, "last_error", "refused a connection"));
	json_decref(st);
	st = status_get(env, &p[2]);
	ST_CHECK(env, st && is_connecting(st, NULL));
	json_decref(st);
out:
	st_peers_cleanup(env, p, 3);
	return ST_PASS;
}

static bool reconnected(json_t *st, const void *arg)
{
	return is_connected_to(st, arg) &&
	       json_integer_value(json_object_get(st, "reconnects")) >= 1;
}

int st_daemon_restart(struct st_env *env)
{
	struct st_peer p[2];
	json_t *st;

	memset(p, 0, sizeof(p));
	if (pair_up(env, &p[0], &p[1]) < 0) {
		ST_CHECK(env, !"ana and ben connected");
		goto out;
	}
	/* ben crashes: his socket file stays behind */
	kill(p[1].pid, SIGKILL);
	env->faults++;
	ST_CHECK(env, st_peer_reap(p[1].pid, 3000) == 128 + SIGKILL);
	p[1].pid = 0;
	ST_CHECK(env, socket_exists(&p[1]));
	st = status_wait(env, &p[0], is_connecting, NULL, 3000, "connecting");
	ST_CHECK(env, st != NULL);
	json_decref(st);

	ST_CHECK(env, st_peer_up(env, &p[1], p[0].fp, NULL) == 0);
	ST_CHECK(env, st_peer_log_has(&p[1], "removing the stale control socket"));
	st = status_wait(env, &p[0], reconnected, p[1].fp, 5000, "reconnected");
	ST_CHECK(env, st != NULL);
	json_decref(st);
	ST_CHECK(env, pair_wait(env, &p[0], &p[1], 3000));
out:
	st_peers_cleanup(env, p, 2);
	return ST_PASS;
}

/* Restarts the in-process relay on the same port (records kept). */
static void relay_restart(struct st_env *env)
{
	const char *url;

	ST_CHECK(env, relay_server_start(env->relay) == 0);
	url = relay_server_url(env->relay, 0);
	ST_CHECK(env, url && strcmp(url, env->relay_url) == 0);
}

int st_daemon_relay_loss(struct st_env *env)
{
	struct st_peer p[2];
	json_t *s0 = NULL, *st;
	bool stopped = false;
	uint64_t t0;
	int r;

	memset(p, 0, sizeof(p));
	st_heartbeat_set("250"); /* a frozen peer is dead after 750 ms */
	r = pair_up(env, &p[0], &p[1]);
	st_heartbeat_set(NULL);
	if (r < 0) {
		ST_CHECK(env, !"ana and ben connected");
		goto out;
	}
	s0 = status_get(env, &p[0]);
	relay_server_stop(env->relay);
	stopped = true;
	env->faults++;

	/* a few heartbeats without the relay: still the same connection */
	sleep_ms(1000);
	for (int i = 0; i < 2; i++) {
		st = status_get(env, &p[i]);
		ST_CHECK(env, st && is_connected_to(st, p[1 - i].fp));
		ST_CHECK(env, st && json_integer_value(json_object_get(st, "reconnects")) == 0);
		if (i == 0)
			ST_CHECK(env, st && s0 &&
					      json_equal(json_object_get(st, "connected_since"),
							 json_object_get(s0, "connected_since")));
		json_decref(st);
	}

	/* ben freezes: ana notices within three heartbeats, then both meet again
	 * at the addresses they know, without the relay */
	kill(p[1].pid, SIGSTOP);
	env->faults++;
	t0 = st_now_ms();
	st = status_wait(env, &p[0], is_connecting, NULL, 3000, "connecting");
	ST_CHECK(env, st != NULL);
	json_decref(st);
	st_note(env, "ana noticed that ben froze after %llu ms",
		(unsigned long long)(st_now_ms() - t0));
	ST_CHECK(env, st_peer_log_has(&p[0], "is dead: no frame for"));
	kill(p[1].pid, SIGCONT);
	st = status_wait(env, &p[0], reconnected, p[1].fp, 5000, "reconnected");
	ST_CHECK(env, st != NULL);
	json_decref(st);
	ST_CHECK(env, pair_wait(env, &p[0], &p[1], 3000));
out:
	if (stopped)
		relay_restart(env);
	json_decref(s0);
	st_peers_cleanup(env, p, 2);
	return ST_PASS;
}

int st_daemon_relay_late(struct st_env *env)
{
	struct st_peer p[2];
	json_t *st;

	memset(p, 0, sizeof(p));
	relay_server_stop(env->relay);
	if (st_peer_make(env, &p[0], "ana") < 0 || st_peer_make(env, &p[1], "ben") < 0)
		goto out;
	/* up does not need the relay: it returns 0 and says what is wrong in status */
	ST_CHECK(env, st_peer_up(env, &p[0], p[1].fp, NULL) == 0);
	ST_CHECK(env, st_peer_up(env, &p[1], p[0].fp, NULL) == 0);
	if (env->failures)
		goto out;
	for (int i = 0; i < 2; i++) {
		st = status_wait(env, &p[i], relay_error_has, "cannot reach the relay", 3000,
				 "aware that the relay is down");
		ST_CHECK(env, st && jstr_has(st, "relay_error", env->relay_url));
		ST_CHECK(env, st && is_connecting(st, NULL));
		json_decref(st);
	}
	relay_restart(env);
	ST_CHECK(env, pair_wait(env, &p[0], &p[1], 8000));
out:
	if (!relay_server_url(env->relay, 0))
		relay_restart(env);
	st_peers_cleanup(env, p, 2);
	return ST_PASS;
}

/* `tandem up --relay URL` for p, the curl in the daemon sent to proxy for
 * plain http. Returns 0 or -1 (noted). */
static int up_via_proxy(struct st_env *env, struct st_peer *p, const char *peer_fp, const char *url,
			const char *proxy)
{
	static const char *const vars[] = {"http_proxy", "no_proxy", "NO_PROXY"};
	char *saved[3];
	struct st_proc_out out;
	const char *pp;
	int r;

	for (int i = 0; i < 3; i++) {
		saved[i] = getenv(vars[i]) ? strdup(getenv(vars[i])) : NULL;
		unsetenv(vars[i]);
	}
	setenv("http_proxy", proxy, 1);
	st_knobs_set();
	const char *argv[] = {"--home", p->home, "up",	 "--peer",   peer_fp,	"--relay",
			      url,	"--dir", p->dir, "--listen", "[::1]:0", NULL};
	r = st_run_tandem(env, &out, argv);
	for (int i = 0; i < 3; i++) {
		if (saved[i])
			setenv(vars[i], saved[i], 1);
		else
			unsetenv(vars[i]);
		free(saved[i]);
	}
	pp = r == 0 ? strstr(out.err, "(pid ") : NULL;
	if (out.status != 0 || !pp) {
		st_note(env, "tandem up --relay %s exited %d: %s", url, out.status, out.err);
		return -1;
	}
	p->pid = (pid_t)strtol(pp + 5, NULL, 10);
	st_children_add(p->pid);
	return 0;
}

/*
 * A plain-http relay that is not this machine: `up` warns once in the log,
 * and status says it (JSON "warnings", a "warning:" line). The daemon must
 * not reach 192.0.2.1 (only loopback here): its curl goes through an
 * http_proxy on [::1] where nothing listens, so every request is refused
 * on this machine. The selftest's own http://[::1] relay gets no warning.
 */
int st_daemon_http_relay(struct st_env *env)
{
	static const char remote[] = "http://192.0.2.1:8480";
	static const char needle[] = "is plain http to another machine";
	struct st_peer p;
	struct st_proc_out out;
	char nobody[FP_TEXT_LEN + 1];
	const char *ws;
	json_t *st, *w;

	memset(&p, 0, sizeof(p));
	nobody_fp(nobody);
	if (st_peer_make(env, &p, "hugo") < 0)
		goto out;
	if (up_via_proxy(env, &p, nobody, remote, "http://[::1]:1") < 0) {
		ST_CHECK(env, !"up with a plain-http relay");
		goto out;
	}
	st = status_get(env, &p);
	w = json_object_get(st, "warnings");
	ws = json_string_value(json_array_get(w, 0));
	ST_CHECK(env, json_array_size(w) == 1 && ws);
	ST_CHECK(env, ws && strstr(ws, remote) && strstr(ws, "https://"));
	st_note(env, "relay_error: %s", jstr(st, "relay_error") ? jstr(st, "relay_error") : "none");
	json_decref(st);
	const char *sargv[] = {"--home", p.home, "status", NULL};
	ST_CHECK(env, st_run_tandem(env, &out, sargv) == 0 && out.status == 0);
	ST_CHECK(env, strstr(out.out, "warning:") && strstr(out.out, needle));
	ST_CHECK(env, st_peer_log_count(&p, needle, NULL) == 1);
	ST_CHECK(env, st_peer_down(env, &p) == 0);

	/* the selftest's relay, http://[::1]:port: no warning */
	if (st_peer_up(env, &p, nobody, NULL) < 0) {
		ST_CHECK(env, !"up with the loopback relay");
		goto out;
	}
	st = status_get(env, &p);
	w = json_object_get(st, "warnings");
	ST_CHECK(env, json_is_array(w) && json_array_size(w) == 0);
	json_decref(st);
	ST_CHECK(env, st_run_tandem(env, &out, sargv) == 0 && out.status == 0);
	ST_CHECK(env, !strstr(out.out, "warning:"));
	ST_CHECK(env, st_peer_log_count(&p, needle, NULL) == 1); /* still the first run's one */
out:
	st_peers_cleanup(env, &p, 1);
	return ST_PASS;
}

/*
 * Token squatting (docs/PROTOCOL.md §3): eve knows both fingerprints and
 * stores records of her own under ana's and ben's tokens for this hour and
 * the next, before either is online. Her records are sealed with the record
 * keys (anyone with the fingerprint can make them), so they even decrypt;
 * only the key inside and the signature are hers. The peers still pair.
 */
static int squat(struct st_env *env, struct relay_client *c, const struct identity *eve,
		 const char *fptext, uint64_t bucket)
{
	struct identity fake = *eve;
	struct relay_result res;
	struct peer_record rec;
	uint8_t token[32], secret[32], blob[RECORD_BLOB_MAX];
	struct err err;
	int n, r;

	if (fp_parse(fptext, &fake.fp, &err) < 0)
		return -EINVAL;
	memset(&rec, 0, sizeof(rec));
	rec.flags = RECORD_FLAG_INBOUND;
	rec.naddrs = 1;
	rec.addrs[0].family = 6;
	rec.addrs[0].ip[15] = 1; /* [::1]:9, nobody there */
	rec.addrs[0].port = 9;
	n = record_seal(&fake, &rec, bucket, blob, sizeof(blob));
	if (n < 0)
		return n;
	derive_relay_token(&fake.fp, bucket, token);
	derive_write_secret(eve->seed, token, secret);
	r = relay_client_put(c, token, secret, blob, (size_t)n, 3600, &res);
	sodium_memzero(secret, sizeof(secret));
	if (r < 0)
		st_note(env, "eve's squat failed: %s", res.message);
	return r;
}

int st_daemon_relay_squatter(struct st_env *env)
{
	struct st_peer p[2];
	struct identity *eve = NULL;
	struct relay_client *c = NULL;
	struct relay_client_opts o;
	struct err err;
	uint64_t bucket = derive_bucket(time(NULL), 0);

	memset(p, 0, sizeof(p));
	if (st_peer_make(env, &p[0], "ana") < 0 || st_peer_make(env, &p[1], "ben") < 0)
		goto out;
	relay_client_opts_init(&o);
	o.timeout_ms = 5000;
	if (identity_new(NULL, &eve) < 0 || relay_client_new(env->relay_url, &o, &c, &err) < 0) {
		ST_CHECK(env, !"eve and her relay client");
		goto out;
	}
	for (int i = 0; i < 2; i++)
		for (uint64_t b = bucket; b <= bucket + 1; b++)
			ST_CHECK(env, squat(env, c, eve, p[i].fp, b) == 0);
	if (env->failures)
		goto out;
	st_note(env, "eve holds ana's and ben's tokens of this hour and the next");
	ST_CHECK(env, st_peer_up(env, &p[0], p[1].fp, NULL) == 0);
	ST_CHECK(env, st_peer_up(env, &p[1], p[0].fp, NULL) == 0);
	if (env->failures || !pair_wait(env, &p[0], &p[1], 8000)) {
		ST_CHECK(env, !"the peers connected despite the squatter");
		goto out;
	}
	st_note(env, "ana and ben found each other next to eve's records");
out:
	relay_client_free(c);
	identity_free(eve);
	st_peers_cleanup(env, p, 2);
	return ST_PASS;
}
