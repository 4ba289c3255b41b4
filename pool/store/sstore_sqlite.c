/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sstore_sqlite.c - the SQLite session store backend (sstore_be.h):
 * a database on a store thread with group commit.  Not written yet:
 * a pool configured with a sqlite: sessionStore fails to start, saying
 * so.
 */
#include "sstore_be.h"
#include "ap_common.h"

#include <stdio.h>

static int sqlite_start(sstore *s, const char *rest, int wait_ready, char *err, size_t errlen)
{
    (void)wait_ready;
    snprintf(err, errlen, "pool %s: sessionStore sqlite:%s: the SQLite store is not implemented yet", s->pool, rest);
    return AP_ERR;
}

static void sqlite_submit(sstore *s, sstore_op *op)
{
    (void)s;
    sstore_fail_soon(op, "the SQLite store is not implemented yet");
}

static void sqlite_stop(sstore *s)
{
    (void)s;
}

static void sqlite_set_ttl(sstore *s)
{
    (void)s;
}

const sstore_backend sstore_sqlite_backend = {"sqlite", sqlite_start, sqlite_submit, sqlite_stop, sqlite_set_ttl};
