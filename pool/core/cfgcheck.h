/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cfgcheck.h - what --check-config checks besides the settings
 * themselves: that the socket's directory exists and is writable by the
 * user the server will bind as, and that the agent starts in a throwaway
 * agentpool-worker (the real binary, pythonPath, virtualenv, workerModel,
 * env allow-list), so a broken deploy is caught before a restart.
 *
 * Called by main.c only, before any event loop exists: it forks, waits
 * and blocks (bounded), which the serving master never does.
 */
#ifndef AP_CFGCHECK_H
#define AP_CFGCHECK_H

#include "config.h"

/* Runs every check, printing one line per failure on stderr
 * ("agentpoold: check: ...").  With "pools", the agent of every pool is
 * checked, each pool reported in one line naming it (on stdout when its
 * agent starts, its failure line on stderr when not).  AP_OK when
 * all passed, AP_ERR if any failed. */
int cfgcheck_run(const config *cfg, const char *prog);

#endif
