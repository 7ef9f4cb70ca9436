/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Scenarios: identity and relay rendezvous. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/encoding.h"
#include "relay.h"
#include "relay_client/relay_client.h"
#include "selftest.h"
#include "st_chaos_host.h"
#include "st_daemon.h"
#include "st_fuse.h"
#include "st_hostile.h"
#include "st_internal.h"
#include "st_self.h"
#include "st_sync.h"

static bool looks_like_fp(const char *s)
{
	struct fingerprint fp;
	struct err err;
	size_t n = strcspn(s, "\n");

	return n == FP_TEXT_LEN && s[n] == '\n' && s[n + 1] == '\0' && fp_parse(s, &fp, &err) == 0;
}

/* `tandem --home DIR init` in a fresh dir; returns the fingerprint line. */
static int make_peer(struct st_env *env, const char *name, char home[static 512],
		     char fp[static FP_TEXT_LEN + 1])
{
	struct st_proc_out out;

	if (st_mkdir(env, name, home) < 0)
		return -1;
	const char *argv[] = { "--home", home, "init", NULL };
	if (st_run_tandem(env, &out, argv) < 0 || out.status != 0) {
		st_note(env, "tandem init failed (%d): %s", out.status, out.err);
		return -1;
	}
	if (!looks_like_fp(out.out)) {
		st_note(env, "tandem init printed '%s'", out.out);
		return -1;
	}
	memcpy(fp, out.out, FP_TEXT_LEN);
	fp[FP_TEXT_LEN] = '\0';
	return 0;
}

static int sc_identity(struct st_env *env)
{
	char home[512], fp[FP_TEXT_LEN + 1], key[600];
	struct st_proc_out out;
	struct stat st;

	ST_REQUIRE(env, make_peer(env, "ana", home, fp) == 0);
	const char *id[] = { "--home", home, "id", NULL };
	ST_REQUIRE(env, st_run_tandem(env, &out, id) == 0);
	ST_CHECK(env, out.status == 0);
	ST_CHECK(env, strncmp(out.out, fp, FP_TEXT_LEN) == 0 && looks_like_fp(out.out));

	snprintf(key, sizeof(key), "%s/identity.key", home);
	ST_REQUIRE(env, stat(key, &st) == 0);
	ST_CHECK(env, (st.st_mode & 0777) == 0600);

	/* a second init refuses and changes nothing */
	const char *init[] = { "--home", home, "init", NULL };
	ST_REQUIRE(env, st_run_tandem(env, &out, init) == 0);
	ST_CHECK(env, out.status == 1);
	ST_CHECK(env, strstr(out.err, "refusing to overwrite") != NULL);
	ST_CHECK(env, strstr(out.err, fp) != NULL);
	ST_REQUIRE(env, st_run_tandem(env, &out, id) == 0);
	ST_CHECK(env, strncmp(out.out, fp, FP_TEXT_LEN) == 0);

	/* two peers, two fingerprints */
	char home2[512], fp2[FP_TEXT_LEN + 1];
	ST_REQUIRE(env, make_peer(env, "ben", home2, fp2) == 0);
	ST_CHECK(env, strcmp(fp, fp2) != 0);
	return ST_PASS;
}

static int sc_cli_errors(struct st_env *env)
{
	char home[512];
	struct st_proc_out out;

	ST_REQUIRE(env, st_mkdir(env, "empty", home) == 0);
	const char *id[] = { "--home", home, "id", NULL };
	ST_REQUIRE(env, st_run_tandem(env, &out, id) == 0);
	ST_CHECK(env, out.status == 1);
	ST_CHECK(env, strstr(out.err, "no identity") && strstr(out.err, "init"));

	const char *unknown[] = { "frobnicate", NULL };
	ST_REQUIRE(env, st_run_tandem(env, &out, unknown) == 0);
	ST_CHECK(env, out.status == 2);
	ST_CHECK(env, strstr(out.err, "unknown command 'frobnicate'") != NULL);

	const char *badopt[] = { "--home", home, "init", "--force", NULL };
	ST_REQUIRE(env, st_run_tandem(env, &out, badopt) == 0);
	ST_CHECK(env, out.status == 2);
	ST_CHECK(env, strstr(out.err, "--force") && strstr(out.err, "tandem init --help"));

	const char *emptyhome[] = { "--home", "", "id", NULL };
	ST_REQUIRE(env, st_run_tandem(env, &out, emptyhome) == 0);
	ST_CHECK(env, out.status == 2);
	ST_CHECK(env, strstr(out.err, "--home needs a directory name") != NULL);

	const char *badlevel[] = { "--log-level", "loud", "id", NULL };
	ST_REQUIRE(env, st_run_tandem(env, &out, badlevel) == 0);
	ST_CHECK(env, out.status == 2);
	ST_CHECK(env, strstr(out.err, "loud") != NULL);

	static const char *const helps[][3] = {
		{ "--help", NULL, NULL },
		{ "init", "--help", NULL },
		{ "id", "--help", NULL },
		{ "selftest", "--help", NULL },
	};
	for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
		ST_REQUIRE(env, st_run_tandem(env, &out, helps[i]) == 0);
		ST_CHECK(env, out.status == 0 && strstr(out.out, "Usage: tandem") != NULL);
	}
	return ST_PASS;
}

/* Two peers with identities made by `tandem init`, loaded here. */
struct pair {
	char home[2][512];
	char fptext[2][FP_TEXT_LEN + 1];
	struct identity *id[2];
};

static int pair_make(struct st_env *env, struct pair *p)
{
	static const char *names[2] = { "ana", "ben" };

	memset(p, 0, sizeof(*p));
	for (int i = 0; i < 2; i++) {
		if (make_peer(env, names[i], p->home[i], p->fptext[i]) < 0)
			return -1;
		if (identity_load(p->home[i], &p->id[i], NULL) < 0)
			return -1;
	}
	return 0;
}

static void pair_free(struct pair *p)
{
	identity_free(p->id[0]);
	identity_free(p->id[1]);
}

static void loopback_record(struct peer_record *rec, uint16_t port)
{
	memset(rec, 0, sizeof(*rec));
	rec->flags = RECORD_FLAG_INBOUND;
	rec->naddrs = 2;
	rec->addrs[0].family = 6;
	inet_pton(AF_INET6, "::1", rec->addrs[0].ip);
	rec->addrs[0].port = port;
	rec->addrs[1].family = 4;
	inet_pton(AF_INET, "127.0.0.1", rec->addrs[1].ip);
	rec->addrs[1].port = port;
}

static struct relay_client *client(struct st_env *env)
{
	struct relay_client *c = NULL;
	struct relay_client_opts o;
	struct err err;

	relay_client_opts_init(&o);
	o.timeout_ms = 5000;
	if (relay_client_new(env->relay_url, &o, &c, &err) < 0)
		st_note(env, "%s", err.msg);
	return c;
}

static int sc_rendezvous(struct st_env *env)
{
	struct pair p;
	struct relay_client *c;
	struct relay_result res;
	struct peer_record rec, got;
	int r = ST_FAIL;

	ST_REQUIRE(env, pair_make(env, &p) == 0);
	c = client(env);
	if (!c)
		goto out;
	for (int i = 0; i < 2; i++) {
		loopback_record(&rec, (uint16_t)(41000 + i));
		if (relay_client_publish(c, p.id[i], &rec, 60, time(NULL), &res) < 0) {
			st_note(env, "publish: %s", res.message);
			ST_CHECK(env, !"publish");
		}
	}
	/* each finds the other by the fingerprint text it was given */
	for (int i = 0; i < 2; i++) {
		struct fingerprint fp;
		struct err err;

		ST_CHECK(env, fp_parse(p.fptext[1 - i], &fp, &err) == 0);
		if (relay_client_lookup(c, &fp, time(NULL), &got, &res) < 0) {
			st_note(env, "lookup: %s", res.message);
			ST_CHECK(env, !"lookup");
			continue;
		}
		ST_CHECK(env, memcmp(got.pk, p.id[1 - i]->pk, 32) == 0);
		ST_CHECK(env, got.naddrs == 2 && got.addrs[0].port == 41000 + (1 - i));
	}
	for (int i = 0; i < 2; i++)
		ST_CHECK(env, relay_client_unpublish(c, p.id[i], time(NULL), &res) == 0);
	r = ST_PASS;
out:
	relay_client_free(c);
	pair_free(&p);
	return r;
}

struct privacy_scan {
	const struct pair *p;
	const struct peer_record *rec;
	int records;
	int leaks;
	char what[128];
};

static void scan_bytes(struct privacy_scan *s, const uint8_t *b, size_t len)
{
	for (int i = 0; i < 2; i++) {
		const struct identity *id = s->p->id[i];
		if (memmem(b, len, id->fp.b, 8) || memmem(b, len, id->pk, 8) ||
		    memmem(b, len, s->p->fptext[i], 9)) {
			s->leaks++;
			snprintf(s->what, sizeof(s->what), "a fingerprint or key of peer %d", i);
		}
	}
	if (memmem(b, len, s->rec->addrs[0].ip, 16) || memmem(b, len, "::1", 3) ||
	    memmem(b, len, "127.0.0.1", 9)) {
		s->leaks++;
		snprintf(s->what, sizeof(s->what), "a listen address");
	}
}

static void scan_record(const uint8_t *token, size_t token_len, const uint8_t *blob,
			size_t blob_len, void *userdata)
{
	struct privacy_scan *s = userdata;

	s->records++;
	scan_bytes(s, token, token_len);
	scan_bytes(s, blob, blob_len);
}

static int sc_privacy(struct st_env *env)
{
	struct pair p;
	struct relay_client *c;
	struct relay_result res;
	struct peer_record rec, got;
	struct privacy_scan scan = { 0 };
	int r = ST_FAIL;

	ST_REQUIRE(env, pair_make(env, &p) == 0);
	c = client(env);
	if (!c)
		goto out;
	loopback_record(&rec, 41010);
	for (int i = 0; i < 2; i++)
		ST_CHECK(env, relay_client_publish(c, p.id[i], &rec, 60, time(NULL), &res) == 0);
	ST_CHECK(env, relay_client_lookup(c, &p.id[0]->fp, time(NULL), &got, &res) == 0);

	/* The relay's whole stored state: no fingerprint, key or address. */
	scan.p = &p;
	scan.rec = &rec;
	relay_server_foreach_record(env->relay, scan_record, &scan);
	st_note(env, "relay holds %d records", scan.records);
	ST_CHECK(env, scan.records >= 2);
	if (scan.leaks)
		st_note(env, "the relay's state holds %s", scan.what);
	ST_CHECK(env, scan.leaks == 0);

	/* Its log: no fingerprint, token or blob either. */
	uint8_t token[32];
	char tok64[B64URL_LEN(32) + 1];
	derive_relay_token(&p.id[0]->fp, derive_bucket(time(NULL), 0), token);
	b64url_encode(token, sizeof(token), tok64, sizeof(tok64));
	ST_CHECK(env, !st_logs_contain(tok64, 20));
	ST_CHECK(env, !st_logs_contain(p.fptext[0], 9) && !st_logs_contain(p.fptext[1], 9));
	st_note(env, "relay log: %zu bytes, none of them secret", st_logs_size());

	for (int i = 0; i < 2; i++)
		ST_CHECK(env, relay_client_unpublish(c, p.id[i], time(NULL), &res) == 0);
	r = ST_PASS;
out:
	relay_client_free(c);
	pair_free(&p);
	return r;
}

static int sc_impostor_record(struct st_env *env)
{
	struct pair p;
	struct identity *mallory = NULL, fake;
	struct relay_client *c;
	struct relay_result res;
	struct peer_record rec, got;
	uint8_t token[32], secret[32], blob[RECORD_BLOB_MAX];
	uint64_t bucket = derive_bucket(time(NULL), 0);
	int n, r = ST_FAIL;

	ST_REQUIRE(env, pair_make(env, &p) == 0);
	c = client(env);
	if (!c || identity_new(NULL, &mallory) < 0)
		goto out;
	loopback_record(&rec, 41020);

	/* ben is not online; mallory, who knows ben's fingerprint, stores a record
	 * for him pointing at herself */
	fake = *mallory;
	fake.fp = p.id[1]->fp;
	n = record_seal(&fake, &rec, bucket, blob, sizeof(blob));
	ST_REQUIRE(env, n > 0);
	derive_relay_token(&p.id[1]->fp, bucket, token);
	derive_write_secret(mallory->seed, token, secret);
	ST_CHECK(env, relay_client_put(c, token, secret, blob, (size_t)n, 60, &res) == 0);
	ST_CHECK(env, relay_client_lookup(c, &p.id[1]->fp, time(NULL), &got, &res) ==
			      -EKEYREJECTED);
	st_note(env, "ana sees: %s", res.message);
	ST_CHECK(env, relay_client_delete(c, token, secret, &res) == 0);

	/* ana is online; mallory can add a record next to hers (several writers
	 * per token), but neither replace nor delete ana's, and a lookup keeps
	 * ana's */
	ST_CHECK(env, relay_client_publish(c, p.id[0], &rec, 60, time(NULL), &res) == 0);
	derive_relay_token(&p.id[0]->fp, bucket, token);
	derive_write_secret(mallory->seed, token, secret);
	fake.fp = p.id[0]->fp;
	n = record_seal(&fake, &rec, bucket, blob, sizeof(blob));
	ST_REQUIRE(env, n > 0);
	ST_CHECK(env, relay_client_put(c, token, secret, blob, (size_t)n, 60, &res) == 0);
	ST_CHECK(env, relay_client_lookup(c, &p.id[0]->fp, time(NULL), &got, &res) == 0);
	ST_CHECK(env, memcmp(got.pk, p.id[0]->pk, 32) == 0);
	ST_CHECK(env, relay_client_delete(c, token, secret, &res) == 0);
	ST_CHECK(env, relay_client_delete(c, token, secret, &res) == -EPERM);
	ST_CHECK(env, relay_client_lookup(c, &p.id[0]->fp, time(NULL), &got, &res) == 0);
	ST_CHECK(env, memcmp(got.pk, p.id[0]->pk, 32) == 0);
	ST_CHECK(env, relay_client_unpublish(c, p.id[0], time(NULL), &res) == 0);
	r = ST_PASS;
out:
	identity_free(mallory);
	relay_client_free(c);
	pair_free(&p);
	return r;
}

const struct st_scenario st_scenarios[] = {
	{ "identity", "identity", "init makes an identity, id prints it, init never overwrites",
	  20, sc_identity },
	{ "cli-errors", "identity", "usage errors exit 2 and name the problem; --help works",
	  20, sc_cli_errors },
	{ "relay-rendezvous", "relay", "two peers publish records and find each other", 20,
	  sc_rendezvous },
	{ "relay-privacy", "relay", "the relay's state and logs hold no fingerprint, key or address",
	  20, sc_privacy, ST_OWN_RELAY },
	{ "relay-impostor", "relay", "a third identity cannot pose as a peer or replace its record",
	  20, sc_impostor_record },
	{ "daemon-cli", "daemon", "up/status/down: --help, and every mistake exits 1 or 2 saying why",
	  20, st_daemon_cli },
	{ "daemon-pairing", "daemon", "two daemons connect; status names the peer, address and RTT",
	  20, st_daemon_pairing, ST_OWN_RELAY },
	{ "daemon-one-inbound", "daemon", "they connect when only one peer accepts connections",
	  20, st_daemon_one_inbound },
	{ "daemon-wrong-fingerprint", "daemon",
	  "a fingerprint nobody has: the daemon runs and status says no record yet", 20,
	  st_daemon_wrong_fp },
	{ "daemon-conf-running", "daemon",
	  "up reads tandem.conf (flags win); a second up for one home is refused", 20,
	  st_daemon_conf_running },
	{ "daemon-http-relay", "daemon", "a plain-http relay on another machine: up warns once "
	  "(log, status text and JSON); the loopback relay does not", 20, st_daemon_http_relay },
	{ "daemon-down", "daemon",
	  "down and SIGTERM: the daemon exits 0, socket and relay record are gone", 20,
	  st_daemon_down, ST_OWN_RELAY },
	{ "relay-squatter", "faults",
	  "a third identity holds both peers' relay tokens first; they still pair", 20,
	  st_daemon_relay_squatter, ST_OWN_RELAY },
	{ "daemon-impostor", "faults",
	  "a third identity holding the peer's fingerprint is refused, and logged on both sides",
	  20, st_daemon_impostor },
	{ "daemon-restart", "faults", "a daemon killed and started again: stale socket cleared, "
	  "both reconnect", 20, st_daemon_restart },
	{ "daemon-relay-loss", "faults", "without the relay: connected, a frozen peer is noticed, "
	  "and they reconnect", 20, st_daemon_relay_loss, ST_OWN_RELAY | ST_LONG },
	{ "daemon-relay-late", "faults", "the relay starts after the peers: up works, status says "
	  "why, then they connect", 20, st_daemon_relay_late, ST_OWN_RELAY },
	{ "relayed-always", "relayed", "--relay-data always: relayed, a tree syncs both ways, "
	  "status says relayed, the relay's /metrics counts the session", 90, st_relayed_always,
	  ST_OWN_RELAY | ST_LONG },
	{ "relayed-fallback", "relayed", "the direct path a black hole: they fall back to a "
	  "relayed connection and sync both ways", 90, st_relayed_fallback, ST_LONG },
	{ "relayed-climb-back", "relayed", "relayed, 16 MiB mid-transfer, the direct path opens: "
	  "they move to direct and the download resumes", 180, st_relayed_climb_back,
	  ST_HEAVY | ST_LONG },
	{ "hostile-hello", "faults", "a peer whose first message is not a good HELLO is closed on "
	  "with a protocol error and logged; the daemon lives on", 20, st_hostile_hello },
	{ "sync-hostile-paths", "sync", "a hostile peer's ../x, /etc/passwd, a/../../b, NUL, long "
	  "names and symlink escapes are refused and logged; nothing outside the share changes",
	  40, st_hostile_paths, ST_LONG },
	{ "sync-hostile-index-flood", "sync", "a peer sends 600 INDEX_UPDATEs of 8 KiB entries "
	  "(150 MB) and no INDEX_DONE: the daemon's peak RSS stays under 64 MiB and it syncs on",
	  90,
	  st_hostile_index_flood, ST_HEAVY },
	{ "hostile-huge-size", "faults", "a peer's files of 2^62, 2^52+1 and 1 TiB+1 bytes are "
	  "refused as protocol errors and logged by a lazy and a mount daemon; a normal file "
	  "after them still syncs", 60, st_hostile_huge_size },
	{ "hostile-names", "sync", "a peer's names with a newline and an ESC: one escaped log "
	  "line, and no ESC byte in tandem status", 30, st_hostile_names },
	{ "peer-modes", "sync", "the peer's 0777 file and directory arrive with this side's "
	  "umask applied, and the trees stay stable", 30, st_peer_modes, ST_LONG },
	{ "hostile-symlinks", "sync", "a peer's links to /etc/passwd and ../../outside are not "
	  "made (logged, refused in status, never sent back as deleted); --symlinks=all makes "
	  "them", 40, st_hostile_symlinks, ST_LONG },
	{ "fuse-cli", "fuse", "up --mount: status shows the mount; no FUSE device, --dir with "
	  "--mount and a missing mount point say what to do", 30, st_fuse_cli },
	{ "fuse-special", "fuse", "a FIFO, a socket and a device node made on the mount stay "
	  "there (status: not synced); the peer's file at the FIFO's name is refused", 60,
	  st_fuse_special },
	{ "fuse-hardlink", "fuse", "two names of one file on the mount reach the peer as two "
	  "files; unlink keeps the other; the peer's change replaces one name", 40,
	  st_fuse_hardlink },
	{ "fuse-ro", "fuse", "up --mount -o ro: every write on the mount is EROFS; the peer's "
	  "new file, change and deletion still show", 40, st_fuse_ro },
	{ "fuse-cache-max", "fuse", "up --cache-max 4M: of two 3 MiB files read on the mount, "
	  "the one read first is emptied in the store again and reads back whole", 40,
	  st_fuse_cache_max },
	{ "fuse-down-reading", "fuse", "down while a read on the mount waits for a stopped peer: "
	  "the read fails, the mount goes, the daemon exits 0 at once", 40, st_fuse_down_reading },
	{ "fuse-slow-writer", "fuse", "a file written on the mount in pieces 200 ms apart: the "
	  "peer never shows it part-written (published on close)", 40, st_fuse_slow_writer },
	{ "fuse-offline", "fuse", "the peer's files are listed before any content is here, a "
	  "read fetches only its part; with the peer gone cached data is served and the rest "
	  "fails with EIO within 10 s; all resumes when it is back", 60, st_fuse_offline },
	{ "fuse-replaced", "fuse", "the peer replaces a file a reader has open and half read: "
	  "the rest of the old version fails with EIO, never zeros", 40, st_fuse_replaced, ST_LONG },
	{ "fuse-cold-copy", "fuse", "cp, cp --sparse=always, tar -S and rsync -S copy files not "
	  "read yet off the mount: the real content, never the placeholder's zeros", 40,
	  st_fuse_cold_copy },
	{ "fuse-append-slow", "fuse", "an open for appending to a file that takes longer than "
	  "the ensure timeout to fetch waits while blocks come, and the append lands", 40,
	  st_fuse_append_slow, ST_LONG },
	{ "fuse-unread-meta", "fuse", "touch -h and chmod of files not read yet: the peer gets "
	  "the new mtime and mode, and keeps the content", 40, st_fuse_unread_meta },
	{ "fuse-reads", "fuse", "random-access and mmap reads of a file from the peer, and of "
	  "the peer's new versions without a remount", 40, st_fuse_reads },
	{ "fuse-writers", "fuse", "8 threads write files and append to one shared file on the "
	  "mount; all of it on the other side", 40, st_fuse_writers },
	{ "fuse-stale", "fuse", "a mount daemon killed (SIGKILL): started again, the dead mount "
	  "is cleared and it syncs", 40, st_fuse_stale },
	{ "fuse-signals", "fuse", "SIGTERM, SIGINT, down: exit 0 and the mount is gone; an "
	  "unmount from outside stops the daemon", 60, st_fuse_signals },
	{ "fuse-cp", "fuse", "cp -a onto the mount and back, checked on the other side", 40,
	  st_fuse_prog_cp },
	{ "fuse-tar", "fuse", "tar x onto the mount and tar c from it, checked on the other side",
	  40, st_fuse_prog_tar },
	{ "fuse-rsync", "fuse", "rsync -a (also --delete, --inplace) onto the mount, checked on "
	  "the other side", 40, st_fuse_prog_rsync },
	{ "fuse-git", "fuse", "git init/add/commit/branch/checkout/clone on the mount; fsck and "
	  "status clean on both sides", 60, st_fuse_prog_git },
	{ "fuse-sqlite", "fuse", "sqlite3 databases (journal and WAL) made on the mount, queried "
	  "on the other side", 60, st_fuse_prog_sqlite },
	{ "fuse-make", "fuse", "make and cc build a small C project on the mount; the other side "
	  "runs it and make -q agrees", 60, st_fuse_prog_make },
	{ "fuse-editor", "fuse", "editor saves (temp + rename over, backup + rewrite) both ways",
	  40, st_fuse_prog_editor },
	{ "sync-changes", "sync", "every kind of change reaches the other side within 2 s, "
	  "both ways at once", 60, st_sync_changes },
	{ "sync-first-contact", "sync", "files made before the peers ever met are merged; "
	  "differing ones kept both", 30, st_sync_first_contact },
	{ "sync-offline-changes", "sync", "a peer down while both sides change: it comes back, "
	  "nothing lost or resurrected", 40, st_sync_offline },
	{ "sync-inotify-overflow", "sync", "thousands of changes behind an overflowing inotify "
	  "queue: a full rescan finds them all", 60, st_sync_overflow },
	{ "sync-rename-dir", "sync", "a directory of 300 files renamed both ways, no content "
	  "sent again", 120, st_sync_rename_dir, ST_HEAVY },
	{ "sync-large-file", "sync", "64 MiB both ways, hash-verified; a reader only ever sees "
	  "whole versions", 60, st_sync_large_file, ST_HEAVY },
	{ "sync-resume", "sync", "the sender killed half-way through 48 MiB: the rest, not "
	  "everything again", 90, st_sync_resume, ST_HEAVY },
	{ "chan-rekey", "sync", "32 MiB a -> b while both send keys are replaced every 4 "
	  "frames and 1 s: several rekeys each way, one connection, hash-verified", 150,
	  st_chan_rekey, ST_HEAVY },
	{ "sync-conflict", "sync", "concurrent edits keep both, named alike; same edits and "
	  "edit-vs-delete do not", 60, st_sync_conflict, ST_LONG },
	{ "sync-root-gone", "sync", "a share root removed or emptied: syncing stops with an "
	  "error, nothing lost", 40, st_sync_root_gone, ST_LONG },
	{ "sync-status", "sync", "status shows transfers (JSON and terminal) and the counts "
	  "add up", 40, st_sync_status, ST_LONG },
	{ "sync-lazy", "sync", "lazy mode: placeholders at once, ranges on demand, bounded "
	  "failure offline, a cache limit, edits sync back", 90, st_lazy_ensure, ST_LONG },
	{ "chaos-latency", "chaos", "dir<->dir through the fault proxy with latency and jitter "
	  "both ways: a mixed workload converges", 90, st_chaos_latency, ST_LONG },
	{ "chaos-bandwidth", "chaos", "dir<->dir through the proxy capped at 4-8 MB/s both ways: "
	  "a mixed workload converges", 90, st_chaos_bandwidth },
	{ "chaos-partition", "chaos", "partitioned (sockets open, nothing forwarded) until the "
	  "heartbeat notices; they reconnect once healed and converge", 90, st_chaos_partition },
	{ "chaos-reset", "chaos", "RST after a random number of bytes, three connections in a "
	  "row, and once at a time: they reconnect and converge", 90, st_chaos_reset },
	{ "chaos-bitflip", "chaos", "one bit flipped in the a->b stream: the AEAD catches it, the "
	  "connection closes, no byte of it reaches a file, they converge", 90,
	  st_chaos_bitflip },
	{ "chaos-halfclose", "chaos", "a->b half-closed after some bytes, twice: they reconnect "
	  "and converge", 90, st_chaos_halfclose },
	{ "chaos-truncate", "chaos", "a->b cut after some bytes and closed, twice: they "
	  "reconnect and converge", 90, st_chaos_truncate },
	{ "chaos-stall", "chaos", "both ways stalled 1-2 s mid-transfer: the connection lives "
	  "through it and they converge", 90, st_chaos_stall, ST_LONG },
	{ "chaos-latency-mount", "chaos", "chaos-latency with a mount on one side", 90,
	  st_chaos_latency_mount, ST_LONG },
	{ "chaos-partition-mount", "chaos", "chaos-partition with a mount on one side", 90,
	  st_chaos_partition_mount },
	{ "chaos-bitflip-mount", "chaos", "chaos-bitflip with a mount on one side", 90,
	  st_chaos_bitflip_mount },
	{ "chaos-bandwidth-mount", "chaos", "chaos-bandwidth with a mount on one side", 90,
	  st_chaos_bandwidth_mount, ST_LONG },
	{ "chaos-reset-mount", "chaos", "chaos-reset with a mount on one side", 90,
	  st_chaos_reset_mount },
	{ "chaos-halfclose-mount", "chaos", "chaos-halfclose with a mount on one side", 90,
	  st_chaos_halfclose_mount },
	{ "chaos-truncate-mount", "chaos", "chaos-truncate with a mount on one side", 90,
	  st_chaos_truncate_mount },
	{ "chaos-stall-mount", "chaos", "chaos-stall with a mount on one side", 90,
	  st_chaos_stall_mount, ST_LONG },
	{ "chaos-kill", "chaos", "a daemon killed (SIGKILL) at a random point of a transfer and "
	  "started again: converges, nothing lost, no half-written file", 60, st_chaos_kill_dir },
	{ "chaos-kill-mount", "chaos", "chaos-kill with a mount and a directory", 60,
	  st_chaos_kill_mount },
	{ "chaos-relay-restart", "chaos", "the relay stopped and started again mid-session: "
	  "converges, both publish again", 60, st_chaos_relay_restart_dir, ST_OWN_RELAY | ST_LONG },
	{ "chaos-relay-restart-mount", "chaos", "chaos-relay-restart with a mount and a directory",
	  60, st_chaos_relay_restart_mount, ST_OWN_RELAY | ST_LONG },
	{ "chaos-disk-full", "chaos", "the receiver's share fills up: status says so, nothing "
	  "half-written, it resumes once space is freed", 60, st_chaos_disk_full_dir, ST_LONG },
	{ "chaos-disk-full-mount", "chaos", "chaos-disk-full with a mount sending to a directory",
	  60, st_chaos_disk_full_mount },
	{ "chaos-changing-file", "chaos", "the sender rewrites a file while it is sent: the "
	  "receiver ends with the final content", 60, st_chaos_changing_file_dir, ST_LONG },
	{ "chaos-changing-file-mount", "chaos", "chaos-changing-file with a mount and a directory",
	  60, st_chaos_changing_file_mount, ST_LONG },
	{ "chaos-clock-skew", "chaos", "one peer's clock an hour ahead: they pair through the "
	  "relay and sync, mtimes as sent", 60, st_chaos_clock_skew_dir },
	{ "chaos-clock-skew-mount", "chaos", "chaos-clock-skew with a mount and a directory", 60,
	  st_chaos_clock_skew_mount },
	/* chaos-big: the chaos suite again with a 64 MiB file in the workload (slow) */
	{ "chaos-big-latency", "chaos-big", "chaos-latency plus a 64 MiB file made on a", 300,
	  st_chaos_big_latency, ST_SLOW },
	{ "chaos-big-latency-mount", "chaos-big", "chaos-latency-mount plus a 64 MiB file made on a",
	  300, st_chaos_big_latency_mount, ST_SLOW },
	{ "chaos-big-bandwidth", "chaos-big", "chaos-bandwidth plus a 64 MiB file made on a", 300,
	  st_chaos_big_bandwidth, ST_SLOW },
	{ "chaos-big-bandwidth-mount", "chaos-big", "chaos-bandwidth-mount plus a 64 MiB file made on a",
	  300, st_chaos_big_bandwidth_mount, ST_SLOW },
	{ "chaos-big-partition", "chaos-big", "chaos-partition plus a 64 MiB file made on a", 300,
	  st_chaos_big_partition, ST_SLOW },
	{ "chaos-big-partition-mount", "chaos-big", "chaos-partition-mount plus a 64 MiB file made on a",
	  300, st_chaos_big_partition_mount, ST_SLOW },
	{ "chaos-big-reset", "chaos-big", "chaos-reset plus a 64 MiB file made on a", 300,
	  st_chaos_big_reset, ST_SLOW },
	{ "chaos-big-reset-mount", "chaos-big", "chaos-reset-mount plus a 64 MiB file made on a",
	  300, st_chaos_big_reset_mount, ST_SLOW },
	{ "chaos-big-bitflip", "chaos-big", "chaos-bitflip plus a 64 MiB file made on a", 300,
	  st_chaos_big_bitflip, ST_SLOW },
	{ "chaos-big-bitflip-mount", "chaos-big", "chaos-bitflip-mount plus a 64 MiB file made on a",
	  300, st_chaos_big_bitflip_mount, ST_SLOW },
	{ "chaos-big-halfclose", "chaos-big", "chaos-halfclose plus a 64 MiB file made on a", 300,
	  st_chaos_big_halfclose, ST_SLOW },
	{ "chaos-big-halfclose-mount", "chaos-big", "chaos-halfclose-mount plus a 64 MiB file made on a",
	  300, st_chaos_big_halfclose_mount, ST_SLOW },
	{ "chaos-big-truncate", "chaos-big", "chaos-truncate plus a 64 MiB file made on a", 300,
	  st_chaos_big_truncate, ST_SLOW },
	{ "chaos-big-truncate-mount", "chaos-big", "chaos-truncate-mount plus a 64 MiB file made on a",
	  300, st_chaos_big_truncate_mount, ST_SLOW },
	{ "chaos-big-stall", "chaos-big", "chaos-stall plus a 64 MiB file made on a", 300,
	  st_chaos_big_stall, ST_SLOW },
	{ "chaos-big-stall-mount", "chaos-big", "chaos-stall-mount plus a 64 MiB file made on a",
	  300, st_chaos_big_stall_mount, ST_SLOW },
	{ "chaos-big-kill", "chaos-big", "chaos-kill plus a 64 MiB file made on a", 300,
	  st_chaos_big_kill_dir, ST_SLOW },
	{ "chaos-big-kill-mount", "chaos-big", "chaos-kill-mount plus a 64 MiB file made on a", 300,
	  st_chaos_big_kill_mount, ST_SLOW },
	{ "chaos-big-relay-restart", "chaos-big", "chaos-relay-restart plus a 64 MiB file made on a",
	  300, st_chaos_big_relay_restart_dir, ST_SLOW | ST_OWN_RELAY },
	{ "chaos-big-relay-restart-mount", "chaos-big", "chaos-relay-restart-mount plus a 64 MiB file made on a",
	  300, st_chaos_big_relay_restart_mount, ST_SLOW | ST_OWN_RELAY },
	{ "chaos-big-disk-full", "chaos-big", "chaos-disk-full plus a 64 MiB file made on the sender",
	  300, st_chaos_big_disk_full_dir, ST_SLOW },
	{ "chaos-big-disk-full-mount", "chaos-big", "chaos-disk-full-mount plus a 64 MiB file made on the sender",
	  300, st_chaos_big_disk_full_mount, ST_SLOW },
	{ "chaos-big-changing-file", "chaos-big", "chaos-changing-file plus a 64 MiB file made on a",
	  300, st_chaos_big_changing_file_dir, ST_SLOW },
	{ "chaos-big-changing-file-mount", "chaos-big", "chaos-changing-file-mount plus a 64 MiB file made on a",
	  300, st_chaos_big_changing_file_mount, ST_SLOW },
	{ "chaos-big-clock-skew", "chaos-big", "chaos-clock-skew plus a 64 MiB file made on a", 300,
	  st_chaos_big_clock_skew_dir, ST_SLOW },
	{ "chaos-big-clock-skew-mount", "chaos-big", "chaos-clock-skew-mount plus a 64 MiB file made on a",
	  300, st_chaos_big_clock_skew_mount, ST_SLOW },
	{ "sync-1gib", "slow", "a 1 GiB random file a -> b, hash-verified", 300, st_sync_1gib,
	  ST_SLOW },
	{ "sync-resume-256m", "slow", "the sender killed half-way through 256 MiB: the rest, "
	  "not everything again", 120, st_sync_resume_big, ST_SLOW },
	{ "sync-rename-dir-1000", "slow", "a directory of 1000 files renamed both ways, no "
	  "content sent again", 120, st_sync_rename_dir_big, ST_SLOW },
	{ "sync-4gib", "slow", "a 4 GiB file a -> b; each daemon's peak RSS stays under 64 MiB",
	  900, st_sync_4gib, ST_SLOW },
	{ "selftest-rand", "selftest", "the scenario's seed, first draws and pairing (--verbose "
	  "shows them: --seed replays them); the generator's reference values", 10,
	  st_self_rand, ST_PAIRINGS },
	{ "selftest-flaky", "selftest", "fails for one seed in four, on purpose: for testing "
	  "--repeat and --soak; runs only when named", 10, st_self_flaky, ST_HIDDEN },
};
const size_t st_scenarios_count = sizeof(st_scenarios) / sizeof(st_scenarios[0]);
