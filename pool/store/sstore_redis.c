/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sstore_redis.c - the Redis session store backend (sstore_be.h):
 * hiredis through its libevent adapter, in the loop.  Not written yet:
 * a pool configured with a redis:// sessionStore fails to start, saying
 * so.
 */
#include "sstore_be.h"
#include "ap_common.h"

#include <stdio.h>

static int redis_start(sstore *s, const char *rest, int wait_ready, char *err, size_t errlen)
{
    (void)wait_ready;
    snprintf(err, errlen, "pool %s: sessionStore redis://%s: the Redis store is not implemented yet", s->pool, rest);
    return AP_ERR;
}

static void redis_submit(sstore *s, sstore_op *op)
{
    (void)s;
    sstore_fail_soon(op, "the Redis store is not implemented yet");
}

static void redis_stop(sstore *s)
{
    (void)s;
}

static void redis_set_ttl(sstore *s)
{
    (void)s;
}

const sstore_backend sstore_redis_backend = {"redis", redis_start, redis_submit, redis_stop, redis_set_ttl, NULL};
