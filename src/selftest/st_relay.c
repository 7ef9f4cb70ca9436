/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The selftest's relay: the real relay code, in-process, on [::1]. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "relay.h"
#include "selftest.h"
#include "st_internal.h"

int st_relay_start(struct st_env *env)
{
	struct relay_config cfg;
	const char *url;
	int r;

	relay_config_init(&cfg);
	cfg.listen[0] = "[::1]:0";
	cfg.nlisten = 1;
	cfg.rate = 0;		/* every peer of the run shares [::1] */
	cfg.stop_grace_ms = 2000;
	r = relay_server_new(&cfg, &env->relay);
	if (r < 0)
		return r;
	r = relay_server_start(env->relay);
	if (r < 0) {
		relay_server_free(env->relay);
		env->relay = NULL;
		return r;
	}
	url = relay_server_url(env->relay, 0);
	if (!url || strlen(url) >= sizeof(env->relay_url)) {
		st_relay_stop(env);
		return -EINVAL;
	}
	snprintf(env->relay_url, sizeof(env->relay_url), "%s", url);
	return 0;
}

void st_relay_stop(struct st_env *env)
{
	relay_server_free(env->relay);
	env->relay = NULL;
}
