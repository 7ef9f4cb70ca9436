/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SD_NOTIFY_H
#define TANDEM_SD_NOTIFY_H

/*
 * Service-manager notification compatible with sd_notify(3), without
 * libsystemd. Each call sends one datagram of newline-separated
 * "VAR=value" assignments to the AF_UNIX socket named by $NOTIFY_SOCKET:
 * a filesystem path ("/run/user/1000/systemd/notify") or, when it starts
 * with '@', an abstract socket. When $NOTIFY_SOCKET is unset or empty
 * (not started by systemd as Type=notify), every call is a no-op that
 * returns 0, so the daemon can call these unconditionally.
 *
 * The kernel attaches the sender's credentials (systemd enables
 * SO_PASSCRED on its socket), so the manager knows which process spoke.
 * Under the default NotifyAccess=main only the main process of the unit
 * may send: call these from the daemon process itself (any thread), never
 * from the `tandem up` parent that waits for it.
 *
 * All functions are thread-safe (a fresh socket per call, no shared
 * state), not async-signal-safe (they format with snprintf), and never
 * block: the datagram is sent with MSG_DONTWAIT. Best effort: callers may
 * ignore the result. Return values:
 * 1 sent, 0 $NOTIFY_SOCKET unset (nothing done), -errno on failure
 * (-EINVAL for a malformed $NOTIFY_SOCKET, -EMSGSIZE for a state too long,
 * or the error of socket()/sendto()). A failure is worth one log line at
 * debug or warning level; it must never stop the daemon.
 */

/* Longest state accepted, in bytes (systemd reads up to a page and more). */
#define SDNOTIFY_STATE_MAX 4096

/* Sends state (e.g. "READY=1\nSTATUS=connected") to $NOTIFY_SOCKET. */
int sdnotify_send(const char *state);

/* Same, to an explicit socket address in $NOTIFY_SOCKET syntax ("/path" or
 * "@abstract"); NULL or "" returns 0. For tests and callers that saved
 * $NOTIFY_SOCKET before clearing it from the environment. */
int sdnotify_send_to(const char *socket_addr, const char *state);

/* "READY=1\nMAINPID=<getpid()>": start-up is complete (Type=notify units
 * leave "activating" only then). */
int sdnotify_ready(void);

/* "STOPPING=1": shutdown has begun. */
int sdnotify_stopping(void);

/* "STATUS=<formatted text>", shown by `systemctl status`. Newlines in the
 * text become spaces, so a quoted user string cannot inject assignments. */
int sdnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
