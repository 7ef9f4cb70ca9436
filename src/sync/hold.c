/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Write holds: files the mount has open for writing (the note is in hold.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/map.h"
#include "sync/hold.h"

struct hold_entry {
	unsigned writers; /* write handles open */
	bool publish;	  /* a publish point came since it last went out */
	uint64_t since;	  /* loop ms it was first left unpublished; 0: it was not */
};

struct hold {
	pthread_mutex_t mu; /* a leaf */
	struct map tab;	    /* (dev, ino) -> struct hold_entry *; protected by mu */
	int efd;
};

struct hold_key {
	uint64_t dev, ino;
};

static struct hold_entry *find(struct hold *h, uint64_t dev, uint64_t ino)
{
	struct hold_key k = {dev, ino};
	void *v;

	return map_get(&h->tab, &k, sizeof(k), &v) ? v : NULL;
}

static void poke(struct hold *h)
{
	uint64_t one = 1;

	(void)!write(h->efd, &one, sizeof(one));
}

int hold_new(struct hold **ret)
{
	struct hold *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->efd < 0) {
		int r = -errno;

		free(h);
		return r;
	}
	pthread_mutex_init(&h->mu, NULL);
	map_init(&h->tab, 0);
	*ret = h;
	return 0;
}

void hold_free(struct hold *h)
{
	size_t pos = 0;
	void *v;

	if (!h)
		return;
	while (map_next(&h->tab, &pos, NULL, NULL, &v))
		free(v);
	map_done(&h->tab);
	pthread_mutex_destroy(&h->mu);
	close(h->efd);
	free(h);
}

int hold_open(struct hold *h, uint64_t dev, uint64_t ino)
{
	struct hold_key k = {dev, ino};
	struct hold_entry *e;
	int r = 0;

	pthread_mutex_lock(&h->mu);
	e = find(h, dev, ino);
	if (e) {
		e->writers++;
	} else if (!(e = calloc(1, sizeof(*e)))) {
		r = -ENOMEM;
	} else {
		e->writers = 1;
		r = map_put(&h->tab, &k, sizeof(k), e, NULL);
		if (r < 0)
			free(e);
		r = r < 0 ? r : 0;
	}
	pthread_mutex_unlock(&h->mu);
	return r;
}

void hold_close(struct hold *h, uint64_t dev, uint64_t ino)
{
	struct hold_key k = {dev, ino};
	struct hold_entry *e;
	bool deferred = false;

	pthread_mutex_lock(&h->mu);
	e = find(h, dev, ino);
	if (e && --e->writers == 0) {
		deferred = e->since != 0;
		(void)map_del(&h->tab, &k, sizeof(k), NULL);
		free(e);
	}
	if (deferred)
		poke(h);
	pthread_mutex_unlock(&h->mu);
}

void hold_publish(struct hold *h, uint64_t dev, uint64_t ino)
{
	struct hold_entry *e;
	bool deferred = false;

	pthread_mutex_lock(&h->mu);
	e = find(h, dev, ino);
	if (e) {
		e->publish = true;
		deferred = e->since != 0;
	}
	if (deferred)
		poke(h);
	pthread_mutex_unlock(&h->mu);
}

int hold_fd(const struct hold *h)
{
	return h->efd;
}

bool hold_on_event(struct hold *h)
{
	uint64_t v = 0;

	return read(h->efd, &v, sizeof(v)) == (ssize_t)sizeof(v) && v > 0;
}

bool hold_defer(struct hold *h, uint64_t dev, uint64_t ino, uint64_t now_ms)
{
	struct hold_entry *e;
	bool defer = false;

	pthread_mutex_lock(&h->mu);
	e = find(h, dev, ino);
	if (!e) {
		/* not open for writing through the mount */
	} else if (e->publish || (e->since && now_ms - e->since >= HOLD_MAX_MS)) {
		e->publish = false;
		e->since = 0;
	} else {
		if (!e->since)
			e->since = now_ms ? now_ms : 1;
		defer = true;
	}
	pthread_mutex_unlock(&h->mu);
	return defer;
}

uint64_t hold_deadline(struct hold *h)
{
	uint64_t t = UINT64_MAX;
	size_t pos = 0;
	void *v;

	pthread_mutex_lock(&h->mu);
	while (map_next(&h->tab, &pos, NULL, NULL, &v)) {
		const struct hold_entry *e = v;

		if (e->since && e->since + HOLD_MAX_MS < t)
			t = e->since + HOLD_MAX_MS;
	}
	pthread_mutex_unlock(&h->mu);
	return t;
}

bool hold_expire(struct hold *h, uint64_t now_ms)
{
	bool any = false;
	size_t pos = 0;
	void *v;

	pthread_mutex_lock(&h->mu);
	while (map_next(&h->tab, &pos, NULL, NULL, &v)) {
		struct hold_entry *e = v;

		if (e->since && now_ms - e->since >= HOLD_MAX_MS) {
			e->publish = true;
			e->since = 0;
			any = true;
		}
	}
	pthread_mutex_unlock(&h->mu);
	return any;
}

unsigned hold_count(struct hold *h)
{
	unsigned n;

	pthread_mutex_lock(&h->mu);
	n = (unsigned)map_count(&h->tab);
	pthread_mutex_unlock(&h->mu);
	return n;
}
