/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * brokercfg.h - the "broker" setting of a pool (docs/scale-out.md): the
 * Redis stream it also takes work from.  Pure (no socket, no allocation):
 * config.c checks the setting with it, broker.c reads it.
 *
 * Its text form, what --broker, AGENTPOOL_BROKER and --print-config use,
 * is NAME=VALUE pairs separated by commas:
 *   url=redis://HOST:PORT/DB (required), stream=, group=, consumer=,
 *   controlStream=, maxLength=, claimIntervalMs=, claimIdleMs=,
 *   replyTtl=, answerTtl=, downAlertMs=
 * In the JSON file it is an object with the same members ({"url": ...,
 * "maxLength": 100000}); config.c turns it into the text form.  Names
 * (stream, group, consumer, controlStream) are 1 to BROKERCFG_NAME_MAX
 * bytes of printable ASCII without ',', '=' or spaces.  Unset members
 * are 0 or "" here: broker.c derives their defaults (the stream
 * agentpool:POOL:requests, group agentpool, consumer HOSTNAME-PID,
 * claimIdleMs twice the pool's timeout, answerTtl its idempotencyTtl).
 */
#ifndef AP_BROKERCFG_H
#define AP_BROKERCFG_H

#include "rspec.h"

#include <stddef.h>
#include <stdint.h>

#define BROKERCFG_NAME_MAX 200
/* The longest text form accepted. */
#define BROKERCFG_TEXT_MAX 2048

typedef struct {
    rspec addr;                              /* url */
    char stream[BROKERCFG_NAME_MAX + 1];     /* "": agentpool:POOL:requests */
    char control[BROKERCFG_NAME_MAX + 1];    /* controlStream; "": agentpool:POOL:control */
    char group[BROKERCFG_NAME_MAX + 1];      /* "": agentpool */
    char consumer[BROKERCFG_NAME_MAX + 1];   /* "": HOSTNAME-PID */
    int64_t max_length;                      /* entries the stream may hold (clients refuse past it): default 100000 */
    int64_t claim_interval_ms;               /* XAUTOCLAIM and heartbeat period: default 1000 */
    int64_t claim_idle_ms;                   /* 0: twice the pool's timeout (30 s when it has none) */
    int64_t reply_ttl_ms;                    /* PEXPIRE of a reply stream at each write: default 600000 */
    int64_t answer_ttl_ms;                   /* 0: the pool's idempotencyTtl */
    int64_t down_alert_ms;                   /* an alert once Redis is out this long: default 10000 */
} brokercfg;

/* Parses the text form into *out (defaults applied as above).  AP_OK,
 * or AP_ERR with err naming the member and what is wrong ("broker:
 * maxLength: ..."); *out is then undefined. */
int brokercfg_parse(const char *text, brokercfg *out, char *err, size_t errlen);

#endif
