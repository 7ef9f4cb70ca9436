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
#include "backoff.h"
#include "log.h"
#include "relay_publisher.h"

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

static void *publisher_main(void *arg)
{
	struct relay_publisher *p = arg;
	struct backoff b = { 1000, 60000 };
	unsigned failures = 0;
	struct relay_result res;
	struct peer_record rec;

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
	p->rec = *rec;
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
