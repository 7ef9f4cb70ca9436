/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "base/err.h"
#include "base/backoff.h"
#include "base/log.h"
#include "relay_client/relay_publisher.h"

struct relay_publisher {
	/* Lock order: lock only; never held across a request or a wait. */
	pthread_mutex_t lock;
	struct peer_record rec;			/* protected by lock */
	bool stopping;				/* protected by lock */
	struct relay_publisher_status status;	/* protected by lock */

	struct relay_client *client;		/* publisher thread only */
	const struct identity *id;
	unsigned ttl;
	unsigned bucket_seconds;
	bool punch;				/* requests go out from the punch port */
	int wake_fd;				/* eventfd: update or stop */
	pthread_t thread;
};

static void wake(struct relay_publisher *p)
{
	uint64_t one = 1;
	ssize_t n = write(p->wake_fd, &one, sizeof(one));
	(void)n;
}

static void drain(struct relay_publisher *p)
{
	uint64_t v;
	ssize_t n = read(p->wake_fd, &v, sizeof(v));
	(void)n;
}

static bool addr_is_loopback(const struct record_addr *a)
{
	static const uint8_t lo6[16] = {[15] = 1};

	return a->family == 4 ? a->ip[0] == 127 : memcmp(a->ip, lo6, 16) == 0;
}

/*
 * The relay told us where our request came from: our punch port as the
 * internet sees it. Goes into the record (the next publish carries it).
 * Returns true when the record should go out again soon: we had none, or
 * the address changed (a new network).
 */
static bool observed_take(struct relay_publisher *p, const struct relay_result *res,
			  bool *warned_bad, bool *warned_moving)
{
	int what = 0; /* 1 first, 2 a new address, 3 a new port */
	char a[RECORD_ADDR_TEXT_MAX] = "", b[RECORD_ADDR_TEXT_MAX];

	if (!p->punch)
		return false;
	if (res->observed_bad && !*warned_bad) {
		log_warn("the relay %s sent a malformed X-Tandem-Observed header; ignoring it "
			 "(no hole punching through this relay)",
			 relay_client_url(p->client));
		*warned_bad = true;
	}
	if (!res->has_observed)
		return false;
	/* a relay on this machine: nothing between us and a peer here to punch
	 * through (any peer on this machine can be dialed) */
	if (addr_is_loopback(&res->observed))
		return false;
	pthread_mutex_lock(&p->lock);
	if (!p->rec.has_observed) {
		what = 1;
	} else if (memcmp(&p->rec.observed, &res->observed, sizeof(res->observed)) != 0) {
		bool same_ip = p->rec.observed.family == res->observed.family &&
			       memcmp(p->rec.observed.ip, res->observed.ip, 16) == 0;
		record_addr_format(&p->rec.observed, a);
		/* another port on the same address: once, republish soon (a
		 * mapping that expired and came back on another port); again and
		 * again would mean a new port per connection, and publishing
		 * each is no use */
		what = !same_ip ? 2 : !*warned_moving ? 3 : 0;
	}
	p->rec.has_observed = true;
	p->rec.observed = res->observed;
	pthread_mutex_unlock(&p->lock);

	record_addr_format(&res->observed, b);
	if (what == 1)
		log_info("the relay sees our punch port as %s; publishing it for hole punching", b);
	else if (what == 2)
		log_info("the relay now sees our punch port as %s (was %s)", b, a);
	else if (what == 3)
		log_notice("the relay saw our punch port as %s, now as %s: if the NAT in front of "
			   "this machine gives it a new public port per connection (symmetric "
			   "NAT), hole punching cannot work through it and the relayed path "
			   "carries the data",
			   a, b);
	if (what == 3)
		*warned_moving = true;
	return what != 0;
}

static void *publisher_main(void *arg)
{
	struct relay_publisher *p = arg;
	struct backoff b = { 1000, 60000 };
	unsigned failures = 0;
	struct relay_result res;
	struct peer_record rec;
	bool warned_bad = false, warned_moving = false;

	for (;;) {
		uint32_t wait_ms;
		time_t now;
		int r;

		pthread_mutex_lock(&p->lock);
		if (p->stopping) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		rec = p->rec;
		pthread_mutex_unlock(&p->lock);

		now = relay_client_now(p->client);
		rec.timestamp = (uint64_t)now;
		r = relay_client_publish(p->client, p->id, &rec, p->ttl, now, &res);

		pthread_mutex_lock(&p->lock);
		p->status.last_error = r;
		memcpy(p->status.message, res.message, sizeof(res.message));
		if (r == 0)
			p->status.publishes++;
		pthread_mutex_unlock(&p->lock);

		if (r == 0) {
			if (failures)
				log_info("published our record on the relay %s again",
					 relay_client_url(p->client));
			failures = 0;
			/* Before 2/3 of the TTL, and just after the next bucket starts. */
			uint64_t refresh = (uint64_t)p->ttl * 2000 / 3;
			uint64_t bs = p->bucket_seconds;
			uint64_t to_bucket = (bs - (uint64_t)now % bs) * 1000 +
					     randombytes_uniform(1000);
			wait_ms = (uint32_t)(refresh < to_bucket ? refresh : to_bucket);
			if (wait_ms < 100)
				wait_ms = 100;
			if (observed_take(p, &res, &warned_bad, &warned_moving))
				wait_ms = 200; /* out again with the observed address */
		} else {
			if (failures == 0 || failures % 10 == 0)
				log_warn("cannot publish our record: %s; retrying", res.message);
			wait_ms = backoff_delay_ms(&b, failures, res.retry_after,
						   randombytes_random());
			failures++;
		}
		/* Wait; an update or stop wakes us early. */
		if (relay_client_wait(p->client, wait_ms) < 0)
			drain(p);
	}
	return NULL;
}

int relay_publisher_start(const char *url, const struct relay_client_opts *opts,
			  const struct identity *id, const struct peer_record *rec, unsigned ttl,
			  struct relay_publisher **ret, struct err *err)
{
	struct relay_client_opts o;
	struct relay_publisher *p;
	sigset_t all, old;
	int r;

	err_clear(err);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->rec = *rec;
	p->id = id;
	p->ttl = ttl ? ttl : 600;
	p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->wake_fd < 0) {
		r = -errno;
		goto fail;
	}
	if (opts)
		o = *opts;
	else
		relay_client_opts_init(&o);
	o.cancel_fd = p->wake_fd;
	p->punch = o.local_port != 0;
	p->bucket_seconds = o.bucket_seconds ? o.bucket_seconds : RELAY_BUCKET_SECONDS;
	r = relay_client_new(url, &o, &p->client, err);
	if (r < 0)
		goto fail;

	/* Signals are for the main thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&p->thread, NULL, publisher_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		goto fail;
	*ret = p;
	return 0;
fail:
	relay_client_free(p->client);
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	pthread_mutex_destroy(&p->lock);
	free(p);
	return r;
}

void relay_publisher_update(struct relay_publisher *p, const struct peer_record *rec)
{
	pthread_mutex_lock(&p->lock);
	bool has = p->rec.has_observed;
	struct record_addr obs = p->rec.observed;
	p->rec = *rec;
	if (!rec->has_observed) { /* what the relay told us stays */
		p->rec.has_observed = has;
		p->rec.observed = obs;
	}
	pthread_mutex_unlock(&p->lock);
	wake(p);
}

void relay_publisher_get_status(struct relay_publisher *p, struct relay_publisher_status *ret)
{
	pthread_mutex_lock(&p->lock);
	*ret = p->status;
	pthread_mutex_unlock(&p->lock);
}

void relay_publisher_stop(struct relay_publisher *p)
{
	struct relay_result res;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_mutex_unlock(&p->lock);
	wake(p);
	pthread_join(p->thread, NULL);
	drain(p);
	/* Remove our record so nobody finds a stale address. */
	if (relay_client_unpublish(p->client, p->id, relay_client_now(p->client), &res) < 0)
		log_debug("could not remove our record from the relay: %s", res.message);
	relay_client_free(p->client);
	close(p->wake_fd);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
