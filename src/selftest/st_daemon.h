/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ST_DAEMON_H
#define TANDEM_ST_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "identity/fingerprint.h"
#include "selftest.h"

/*
 * Scenarios with real `tandem up` daemons (suites "daemon" and "faults"),
 * and the helpers that start and stop them.
 *
 * A daemon is started the way a user starts it: `tandem --home H up ...`
 * in the background, and `up` must exit 0. The selftest process makes
 * itself a child subreaper (prctl), so a daemon becomes its child once `up`
 * has exited: it is registered with st_children_add (the watchdog kills it
 * on a hang), and reaped with its exit status, which must be 0 when it was
 * asked to stop. Every helper waits at most until the scenario's deadline.
 * The daemons run with short heartbeat and backoff times (the hidden
 * TANDEM_TEST_* variables of docs/DAEMON.md).
 */

struct st_peer {
	char name[16];
	char home[512];
	char dir[512]; /* the shared folder, or with mount its mount point */
	bool mount;    /* up --mount dir (its files live in home/state/store) */
	char fp[FP_TEXT_LEN + 1];
	pid_t pid; /* the running daemon, 0 when none */
};

/* A fresh home under the scenario's dir with a new identity, as `tandem
 * --home H init` makes it, and a fresh shared folder. Returns 0 or -1
 * (noted). */
int st_peer_make(struct st_env *env, struct st_peer *p, const char *name);

/*
 * `tandem --home H up --peer FP --relay URL --dir D --listen L` (listen NULL:
 * "[::1]:0"); extra (NULL-terminated, may be NULL) is appended. Returns 0
 * when up exited 0 and p->pid is the daemon, else -1 (noted).
 */
int st_peer_up(struct st_env *env, struct st_peer *p, const char *peer_fp, const char *listen);
/* The same with one more argument for up (NULL: none). */
int st_peer_up_extra(struct st_env *env, struct st_peer *p, const char *peer_fp,
		     const char *listen, const char *extra);

/* Asks for a clean stop as `tandem down` does (in this process) and reaps
 * the daemon. Returns 0 when the daemon accepted and exited 0, else -1
 * (noted; the daemon is killed if it still runs). */
int st_peer_down(struct st_env *env, struct st_peer *p);
/* The same with the real `tandem down` (its exit status counts too). */
int st_peer_down_cli(struct st_env *env, struct st_peer *p);

/* Sends sig (0: none, only wait) and reaps the daemon within ms. Returns
 * its st_proc_out-style status, or -1 (noted; then it is killed). */
int st_peer_signal(struct st_env *env, struct st_peer *p, int sig, unsigned ms);

/* Sets the short test timers (TANDEM_TEST_*) once and makes the selftest a
 * child subreaper, so daemons become its children. */
void st_knobs_set(void);
/* TANDEM_TEST_LAZY_EVICT_AGE_MS as set by st_knobs_set (the product: 3000) */
#define ST_EVICT_AGE_MS 1000
#define ST_EVICT_AGE_MS_STR "1000"

/* The heartbeat of the daemons started from now on (TANDEM_TEST_HEARTBEAT_MS,
 * ms as text); NULL: back to st_knobs_set's. */
void st_heartbeat_set(const char *ms);
/* Reaps pid within ms. Returns its st_proc_out-style status, or -1. */
int st_peer_reap(pid_t pid, unsigned ms);
/* Polls p's log for needle until found or ms passed (noted when not). */
bool st_peer_log_wait(struct st_env *env, const struct st_peer *p, const char *needle,
		      unsigned ms);

/* SIGKILL and reap. */
void st_peer_kill(struct st_env *env, struct st_peer *p);

/* Stops what still runs (down, then SIGKILL), and fails the scenario when a
 * daemon's log holds a sanitizer report or an error line. For the end of
 * every scenario, also after a failure. */
void st_peers_cleanup(struct st_env *env, struct st_peer *peers, size_t n);

/* The status of p's daemon over its control socket (json_decref it), or
 * NULL when it does not answer within the deadline (at most 2 s). */
json_t *st_peer_status(struct st_env *env, const struct st_peer *p);

/* The whole log of p (state/tandem.log, at most 4 MiB), NUL-terminated
 * (free it), or NULL. */
char *st_peer_log_read(const struct st_peer *p);

/* Lines of p's log that contain a, and b too when b is not NULL. */
unsigned st_peer_log_count(const struct st_peer *p, const char *a, const char *b);

/* The listen address of p's daemon (`status --json` "listen") into out;
 * 0, or -1 when the daemon does not say. */
int st_peer_listen_addr(struct st_env *env, const struct st_peer *p, char out[static 64]);

/* True when p's log (state/tandem.log) contains needle. */
bool st_peer_log_has(const struct st_peer *p, const char *needle);

/* The scenarios, registered in st_scenarios.c. */
int st_daemon_pairing(struct st_env *env);
int st_daemon_one_inbound(struct st_env *env);
int st_daemon_cli(struct st_env *env);
int st_daemon_wrong_fp(struct st_env *env);
int st_daemon_conf_running(struct st_env *env);
int st_daemon_down(struct st_env *env);
int st_daemon_impostor(struct st_env *env);
int st_daemon_restart(struct st_env *env);
int st_daemon_relay_loss(struct st_env *env);
int st_daemon_relay_late(struct st_env *env);
int st_daemon_http_relay(struct st_env *env);
int st_daemon_relay_squatter(struct st_env *env);
/* st_relayed.c: relayed connections (suite "relayed") */
int st_relayed_always(struct st_env *env);
int st_relayed_fallback(struct st_env *env);
int st_relayed_climb_back(struct st_env *env);

#endif
