/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * drift.c - code identity per reload epoch and drift detection (see
 * drift.h).  State, per pool: the last two epochs' identities and the
 * drift count.
 */
#include "drift.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "server.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>

#define DRIFT_EPOCHS 2

/* A pool's (p->drift): pools run different code. */
struct drift_state {
    struct {
        int set;
        uint32_t epoch;
        char id[AP_CODE_ID_MAX];
    } epochs[DRIFT_EPOCHS];
    uint64_t total;
};

void drift_init(pool_t *p)
{
    p->drift = ap_calloc(1, sizeof(struct drift_state));
}

void drift_free(pool_t *p)
{
    ap_free(p->drift);
    p->drift = NULL;
}

/* The entry of epoch e, or a reused one (the older) when it has none. */
static int drift_entry(struct drift_state *drift, uint32_t e, int *found)
{
    for (int i = 0; i < DRIFT_EPOCHS; i++)
        if (drift->epochs[i].set && drift->epochs[i].epoch == e) {
            *found = 1;
            return i;
        }
    *found = 0;
    int pick = 0;
    for (int i = 1; i < DRIFT_EPOCHS; i++)
        if (!drift->epochs[i].set || (drift->epochs[pick].set && drift->epochs[i].epoch < drift->epochs[pick].epoch))
            pick = i;
    return pick;
}

int drift_worker_ready(worker *w, const char *code)
{
    snprintf(w->proc.code, sizeof(w->proc.code), "%s", code ? code : "");
    if (w->proc.code[0] == '\0')
        return 0;
    struct drift_state *drift = w->pool->drift;
    int found;
    int i = drift_entry(drift, w->proc.epoch, &found);
    if (!found) {
        drift->epochs[i].set = 1;
        drift->epochs[i].epoch = w->proc.epoch;
        snprintf(drift->epochs[i].id, sizeof(drift->epochs[i].id), "%s", w->proc.code);
        ap_info("agent code identity %s (from %s, pid %d)", w->proc.code, w->name, (int)w->proc.pid);
        return 0;
    }
    if (strcmp(drift->epochs[i].id, w->proc.code) == 0)
        return 0;
    w->proc.code_drift = 1;
    drift->total++;
    ap_error("CODE DRIFT: %s (pid %d) started with agent code %s, but its generation runs %s: files changed on disk "
             "without a reload; %s",
             w->name, (int)w->proc.pid, w->proc.code, drift->epochs[i].id,
             w->pool->cfg->pin_code ? "pinCode: refused, the slot keeps its old process until a reload"
                                  : "it serves anyway (pinCode refuses it); reload to make the new code everyone's");
    return w->pool->cfg->pin_code ? -1 : 0;
}

const char *drift_identity(const pool_t *p)
{
    int found;
    int i = drift_entry(p->drift, p->epoch, &found);
    return found ? p->drift->epochs[i].id : "";
}

uint64_t drift_total(const pool_t *p)
{
    return p->drift->total;
}

int drift_live_workers(const pool_t *p)
{
    int n = 0;
    for (int i = 0; i < p->nworkers; i++)
        n += p->workers[i].state != WORKER_DEAD && p->workers[i].proc.code_drift;
    return n;
}
