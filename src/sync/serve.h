/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_SYNC_SERVE_H
#define TANDEM_SYNC_SERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "sync/index.h"
#include "sync/link.h"
#include "sync/msg.h"

/*
 * The server: the peer's MANIFEST_REQUEST and BLOCK_REQUEST, answered in
 * order as fast as the connection takes them (and the rate cap allows).
 * Only what the index holds as a live file with the asked-for hash is
 * served, opened beneath the root without following symlinks; the
 * requester verifies every block anyway. Loop thread only; the engine owns
 * it and hands it the requests.
 */

#define SERVE_MAX 512 /* requests from the peer waiting */

struct serve_req {
	enum sync_msg_type type; /* BLOCK_REQUEST or MANIFEST_REQUEST; 0: cancelled */
	uint32_t req_id;
	char *path;
	size_t path_len;
	uint8_t hash[SYNC_HASH_LEN];
	uint32_t block;
	uint64_t offset;
	uint32_t len;
	uint32_t manifest_next; /* MANIFEST chunks: the next first */
	uint8_t *manifest;	/* decoded blob, for chunking */
	size_t manifest_len;
};

/* Given at creation; the engine owns every pointer. */
struct serve_ctx {
	struct index *idx;
	int rootfd;
	struct sync_link link;
	uint8_t *buf; /* scratch of ENGINE_MSG_BUF bytes, lent during a call */
	size_t buf_len;
	uint64_t rate_bps; /* cap on block data served, bytes/s; 0 = none */
	/* Optional: whether path with content hash is a placeholder not yet
	 * complete here (lazy mode: never served). */
	bool (*partial)(void *ud, const char *path, const uint8_t *hash);
	/* Optional: such a placeholder was asked for (after the answer "not
	 * all of it is here"): the peer has not got it either. */
	void (*unservable)(void *ud, const char *path, const uint8_t *hash);
	void *ud;
};

struct server {
	struct serve_ctx c;
	struct serve_req q[SERVE_MAX];
	unsigned head, n;
	char *path; /* the file held open for serving */
	uint8_t hash[SYNC_HASH_LEN];
	int fd;
	uint64_t rate_tokens;
	uint64_t rate_ms;
	uint64_t rate_due_ms; /* serve_tick then; 0: none */
	uint64_t now_ms;
	uint64_t bytes_sent;
	uint64_t refused;
};

/* 0 and *ret, or -ENOMEM. */
int server_new(const struct serve_ctx *c, struct server **ret) __attribute__((warn_unused_result));
void server_free(struct server *s);

/* Queues a BLOCK_REQUEST or MANIFEST_REQUEST. 0, or -EBADMSG after it
 * failed the link (too many outstanding). */
int serve_on_request(struct server *s, const struct sync_msg *m);
void serve_on_cancel(struct server *s, uint32_t req_id);
/* Answers what the connection (and the rate cap) takes now. */
void serve_pump(struct server *s, uint64_t now_ms);
/* Forgets every request and closes the file (the peer is gone). */
void serve_on_down(struct server *s);
uint64_t serve_deadline(const struct server *s);
void serve_tick(struct server *s, uint64_t now_ms);

#endif
