/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TANDEM_ST_SELF_H
#define TANDEM_ST_SELF_H

#include "selftest.h"

/* The scenarios of suite "selftest", about the runner (st_scenarios.c registers them). */
int st_self_rand(struct st_env *env);
int st_self_flaky(struct st_env *env);

#endif
