/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ST_FAKEPEER_H
#define TANDEM_ST_FAKEPEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity/fingerprint.h"
#include "selftest.h"
#include "sync/msg.h"

/*
 * A fake peer for the selftest: an in-process tandem peer that speaks the
 * wire protocol to a real daemon, with its own identity, so a scenario can
 * send what a hostile peer would (docs/CHANNEL.md, docs/DAEMON.md "HELLO",
 * docs/SYNC-PROTOCOL.md) and see what comes back.
 *
 * It dials the daemon (which must have been started with --peer
 * st_fake_fp()), runs the handshake as initiator, exchanges HELLO and
 * START, and then hands the scenario raw DATA payloads both ways, including
 * payloads msg_encode() would refuse (st_fake_send_index() writes entries
 * without any check). While it waits it answers PINGs, and it serves the
 * daemon's MANIFEST_REQUEST and BLOCK_REQUEST for the files it offers
 * (st_fake_offer()) with hashes from src/sync/blocks.h, so a write the
 * daemon refuses is refused for its path, never for a bad hash.
 *
 * Blocking socket work under poll() with deadlines: nothing waits past
 * the scenario's deadline. One connection at a time; after the daemon
 * closes it (CLOSE frame or EOF), st_fake_connect() makes a new one. Used
 * by one thread.
 */

struct st_fake;

/* A fresh random identity and device id. Returns 0 or -ENOMEM. */
int st_fake_new(struct st_fake **ret) __attribute__((warn_unused_result));

/* Closes the connection (no CLOSE frame) and frees. NULL is a no-op. */
void st_fake_free(struct st_fake *f);

/* The fake's fingerprint as text (for the daemon's --peer). */
const char *st_fake_fp(const struct st_fake *f);

/*
 * Dials addr ("[::1]:PORT" or "127.0.0.1:PORT"), runs the handshake as
 * initiator pinned to the fingerprint text peer_fp, sends our HELLO and
 * waits (up to ms) for the daemon's. Any previous connection is dropped.
 * Returns 0, or -errno with a note saying what failed.
 */
int st_fake_connect(struct st_env *env, struct st_fake *f, const char *addr, const char *peer_fp,
		    unsigned ms) __attribute__((warn_unused_result));

/*
 * Sends START (our device, since 0, expect zero) and waits up to ms for the
 * daemon's START, which is copied to *ret (may be NULL). Other messages
 * before it are handled as st_fake_recv() does. Returns 0, -ETIMEDOUT,
 * -EPIPE (closed) or -EBADMSG (something else came first: noted).
 */
int st_fake_start(struct st_env *env, struct st_fake *f, unsigned ms, struct sync_start *ret)
	__attribute__((warn_unused_result));

/* Sends one DATA frame with these exact bytes. Returns 0 or -errno. */
int st_fake_send(struct st_env *env, struct st_fake *f, const void *payload, size_t len)
	__attribute__((warn_unused_result));

/*
 * Waits up to ms for the next DATA message. Returns 1 with the message in
 * *ret (decoded; pointers are valid until the next call on f); 0 when ms
 * passed; -EPIPE when the daemon closed the connection (st_fake_close_code()
 * says how); -EBADMSG for a DATA payload msg_decode() refuses (noted).
 * Requests for offered files are answered before the message is returned.
 * Every DATA payload is scanned for the needle of st_fake_forbid().
 */
int st_fake_recv(struct st_env *env, struct st_fake *f, unsigned ms, struct sync_msg *ret)
	__attribute__((warn_unused_result));

/* Pumps (answering PINGs and requests) for ms, or until the connection
 * closes. Returns 0 while connected, -EPIPE once closed. */
int st_fake_idle(struct st_env *env, struct st_fake *f, unsigned ms);

/* Waits up to ms for the daemon to close the connection, pumping. Returns 0
 * once closed, -ETIMEDOUT. */
int st_fake_wait_closed(struct st_env *env, struct st_fake *f, unsigned ms)
	__attribute__((warn_unused_result));

/* Replaces the HELLO that st_fake_connect() sends with these bytes (copied,
 * at most 256; NULL restores the real one), to see what the daemon does
 * with a bad one. Returns 0 or -E2BIG. */
int st_fake_set_hello(struct st_fake *f, const void *p, size_t len)
	__attribute__((warn_unused_result));

/* Sends CLOSE (normal) and closes our side. */
void st_fake_disconnect(struct st_fake *f);

bool st_fake_connected(const struct st_fake *f);
/* How the last connection ended: the CLOSE code, or -1 for a plain EOF or
 * reset (or while connected). The text of the CLOSE ("" if none). */
int st_fake_close_code(const struct st_fake *f);
const char *st_fake_close_text(const struct st_fake *f);

/*
 * Offers a file: requests for path with the file hash of data are served.
 * data is copied. Returns 0, -ENOMEM, -E2BIG (more than 8 offers or 4 MiB).
 */
int st_fake_offer(struct st_fake *f, const char *path, const void *data, size_t len)
	__attribute__((warn_unused_result));

/*
 * From now on, valid BLOCK_REQUESTs for offered files are kept unanswered
 * (up to 16; more are answered at once) until st_fake_release() answers
 * them, so a scenario can change things while a transfer is in flight.
 * MANIFEST_REQUESTs are still answered at once.
 */
void st_fake_hold(struct st_fake *f);
size_t st_fake_held(const struct st_fake *f);
void st_fake_release(struct st_env *env, struct st_fake *f);

/* MANIFEST_REQUESTs and BLOCK_REQUESTs the daemon sent for path so far. */
unsigned st_fake_requests(const struct st_fake *f, const char *path);

/*
 * Fills *ret with an entry for path (path_len bytes, any bytes at all):
 * kind SYNC_KIND_*, a new seq, a version vector of our device at that seq,
 * mtime now. A file offered under that path gets its size and hash; a
 * symlink gets target. The strings are borrowed.
 */
void st_fake_entry(struct st_fake *f, uint8_t kind, const char *path, size_t path_len,
		   const char *target, struct sync_entry *ret);

/*
 * Sends one INDEX_UPDATE with the n entries written as they are, without
 * the encoder's checks (so invalid paths go out), then, if done, an
 * INDEX_DONE with our last seq (st_raw.h writes them). Returns 0 or -errno.
 */
int st_fake_send_index(struct st_env *env, struct st_fake *f, const struct sync_entry *e,
		       size_t n, bool done) __attribute__((warn_unused_result));

/*
 * Makes every received DATA payload be checked for these bytes (copied, at
 * most 64): st_fake_forbidden_seen() counts the payloads that held them.
 */
void st_fake_forbid(struct st_fake *f, const void *needle, size_t len);
unsigned st_fake_forbidden_seen(const struct st_fake *f);

#endif
