/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * a2astore.c - A2A task records in the session store (see a2astore.h).
 *
 * A record: {"v":1,"id","contextId","owner","pool","serial","created",
 * "updated","state" (the 0.3 name),"turns","history","result","error",
 * "prompt","chunks","chunksTruncated"}, the JSON members as the task
 * keeps them.
 *
 * The loader, one per pool (p->a2a_loader while it lives): LISTING (a
 * listing and gets in flight) -> done, freed, when the last listing is
 * read and no get is left; or -> WAITING when the store failed any of
 * them (unavailable: down, not yet connected, timed out): after a backoff
 * (A2ASTORE_RETRY_MIN_MS doubling to _MAX_MS, started by the front
 * door's tick: a2astore_tick) the whole listing starts again from the
 * first key, tasks read back already being skipped.  Until
 * it is done the pool says it is loading (a2astore_loading), so a lookup
 * that finds no task cannot say TaskNotFound yet.  When the pool goes
 * (a reload removes it, agentpoold stops) a2astore_pool_free cuts it
 * loose: a WAITING loader is freed there, one with operations in flight
 * by its last callback (the store's close completes every one).
 * State: the loaders only, each owned by its pool, then by its callbacks.
 */
#include "a2astore.h"
#include "a2atask.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "pools.h"
#include "scan.h"
#include "server.h"
#include "sstore.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#define PREFIX_LEN (sizeof(A2ASTORE_PREFIX) - 1)
#define LIST_BATCH 200

typedef enum { LOADER_LISTING = 0, LOADER_WAITING } loader_state;

struct a2astore_loader {
    pool_t *p;                                   /* NULL once the pool is gone */
    loader_state state;
    char after[SCAN_SESSION_MAX + 1];            /* the listing's cursor: any key of the store (1 to 256 bytes) */
    size_t after_len;
    int listing;                                 /* a list is in flight */
    int gets;                                    /* gets in flight */
    int failed;                                  /* this pass: the store failed an operation */
    int restored, known, dropped;
    unsigned attempts;                           /* passes that failed in a row */
    uint64_t retry_ms;                           /* WAITING: when the next pass starts (a2astore_tick) */
};

/* p's store when it can take operations now, else NULL. */
static sstore *store_of(const pool_t *p)
{
    return p && p->store && !p->store_none && !p->store_closing ? p->store : NULL;
}

static void add_text(cJSON *o, const char *name, const char *json)
{
    cJSON *v = json ? cJSON_Parse(json) : NULL;
    if (v)
        cJSON_AddItemToObject(o, name, v);
}

void a2astore_save(const a2a_task *t)
{
    pool_t *p = pools_find(t->pool, strlen(t->pool));
    sstore *st = store_of(p);
    if (st == NULL || server.state >= SERVER_STOPPING)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "v", 1);
    cJSON_AddStringToObject(o, "id", t->id);
    cJSON_AddStringToObject(o, "contextId", t->context);
    cJSON_AddStringToObject(o, "owner", t->owner);
    cJSON_AddStringToObject(o, "pool", t->pool);
    cJSON_AddNumberToObject(o, "serial", (double)t->serial);
    cJSON_AddNumberToObject(o, "created", (double)t->created_ms);
    cJSON_AddNumberToObject(o, "updated", (double)t->updated_ms);
    cJSON_AddStringToObject(o, "state", a2atask_state_name(t->state, 0));
    cJSON_AddNumberToObject(o, "turns", t->turns);
    if (t->history)
        cJSON_AddItemToObject(o, "history", cJSON_CreateArrayReference(t->history->child)); /* printed, not copied */
    add_text(o, "result", t->result);
    add_text(o, "error", t->error);
    add_text(o, "prompt", t->prompt);
    cJSON *chunks = a2atask_chunks(t);
    if (chunks)
        cJSON_AddItemToObject(o, "chunks", chunks);
    if (t->chunks_truncated)
        cJSON_AddBoolToObject(o, "chunksTruncated", 1);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL) {
        ap_error("a2a task %s: its record could not be made (out of memory): not written to the store", t->id);
        return;
    }
    char key[PREFIX_LEN + A2ATASK_ID_MAX];
    int klen = snprintf(key, sizeof(key), A2ASTORE_PREFIX "%s", t->id);
    sstore_put(st, key, (size_t)klen, text, strlen(text), NULL, NULL);
    cJSON_free(text);
}

/* A JSON text member of o, printed (allocated), or NULL. */
static char *text_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    char *t = v ? cJSON_PrintUnformatted(v) : NULL;
    char *copy = t ? ap_strdup(t) : NULL;
    if (t)
        cJSON_free(t);
    return copy;
}

static int str_into(const cJSON *o, const char *name, char *dst, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) >= cap)
        return AP_ERR;
    memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
    return AP_OK;
}

/* A task made from record (len bytes), or NULL when it is not one. */
static a2a_task *task_of_record(const char *val, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(val, len);
    a2a_task *t = ap_calloc(1, sizeof(*t));
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(o, "state");
    const cJSON *serial = cJSON_GetObjectItemCaseSensitive(o, "serial");
    if (!cJSON_IsObject(o) || str_into(o, "id", t->id, sizeof(t->id)) != AP_OK ||
        str_into(o, "contextId", t->context, sizeof(t->context)) != AP_OK ||
        str_into(o, "owner", t->owner, sizeof(t->owner)) != AP_OK ||
        str_into(o, "pool", t->pool, sizeof(t->pool)) != AP_OK || !cJSON_IsString(state) ||
        (t->state = a2atask_state_of(state->valuestring)) == A2A_STATE_COUNT || !cJSON_IsNumber(serial)) {
        cJSON_Delete(o);
        a2atask_free_record(t);
        return NULL;
    }
    t->serial = (uint64_t)serial->valuedouble;
    t->created_ms = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "created"));
    t->updated_ms = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "updated"));
    t->turns = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "turns"));
    t->history = cJSON_DetachItemFromObjectCaseSensitive(o, "history");
    a2atask_set_chunks(t, cJSON_GetObjectItemCaseSensitive(o, "chunks"));
    t->chunks_truncated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "chunksTruncated"));
    t->result = text_of(o, "result");
    t->error = text_of(o, "error");
    t->prompt = text_of(o, "prompt");
    cJSON_Delete(o);
    if (!a2atask_settled(t->state)) { /* it ran when agentpoold stopped: it has no outcome and never will */
        t->state = A2A_FAILED;
        ap_free(t->error);
        t->error = ap_strdup("{\"code\":\"shutting_down\",\"message\":\"agentpoold stopped before it was "
                             "answered\"}");
    }
    return t;
}

typedef struct a2astore_loader a2astore_loader;

static void list_next(a2astore_loader *ld);
static void loader_check(a2astore_loader *ld);

/* ld's pool's store when it can take operations now (and agentpoold is
 * not draining), else NULL. */
static sstore *loader_store(const a2astore_loader *ld)
{
    return ld->p && server.state < SERVER_DRAINING ? store_of(ld->p) : NULL;
}

static void loader_free(a2astore_loader *ld)
{
    if (ld->p)
        ld->p->a2a_loader = NULL;
    ap_free(ld);
}

/* A pass from the first "a2a:task:" key. */
static void pass_start(a2astore_loader *ld)
{
    ld->state = LOADER_LISTING;
    ld->failed = 0;
    memcpy(ld->after, A2ASTORE_PREFIX, PREFIX_LEN);
    ld->after_len = PREFIX_LEN;
    list_next(ld);
}

/* A pass that ended: the loader is done, or waits for the next pass. */
static void loader_check(a2astore_loader *ld)
{
    if (ld->listing || ld->gets)
        return;
    if (ld->p == NULL || server.state >= SERVER_DRAINING) {
        loader_free(ld); /* nothing more to read back into */
        return;
    }
    if (!ld->failed) {
        ap_info("pool %s: %d A2A tasks read back from the session store%s", ld->p->name, ld->restored,
                ld->dropped ? " (some could not be: see above)" : "");
        loader_free(ld);
        return;
    }
    unsigned shift = ld->attempts < 8 ? ld->attempts : 8;
    uint64_t ms = (uint64_t)A2ASTORE_RETRY_MIN_MS << shift;
    if (ms > A2ASTORE_RETRY_MAX_MS)
        ms = A2ASTORE_RETRY_MAX_MS;
    if (ld->attempts++ == 0)
        ap_warn("pool %s: its A2A tasks could not all be read back from the session store yet: tried again "
                "every %llu ms at most, lookups of unknown tasks answer 503 until then",
                ld->p->name, (unsigned long long)A2ASTORE_RETRY_MAX_MS);
    ld->state = LOADER_WAITING;
    ld->retry_ms = ap_now_ms() + ms;
}

static void get_done(void *arg, const sstore_result *r)
{
    a2astore_loader *ld = arg;
    ld->gets--;
    const char *pool = ld->p ? ld->p->name : "(gone)";
    if (r->status == SSTORE_OK && loader_store(ld)) {
        a2a_task *t = task_of_record(r->val, r->len);
        if (t == NULL) {
            ld->dropped++;
            ap_warn("pool %s: an A2A task record in the session store is not one (%zu bytes): skipped", pool,
                    r->len);
        } else if (a2atask_find(t->id, t->owner) != NULL) {
            ld->known++; /* read back by an earlier pass */
            a2atask_free_record(t);
        } else if (strcmp(t->pool, pool) != 0 || a2atask_restore(t) != AP_OK) {
            ld->dropped++;
            ap_warn("pool %s: A2A task %s from the session store not taken (another pool's, its id taken, or "
                    "a2aMaxTasks reached)", pool, t->id);
            a2atask_free_record(t);
        } else {
            ld->restored++;
        }
    } else if (r->status == SSTORE_UNAVAILABLE) {
        ld->failed = 1;
        ap_debug("pool %s: an A2A task could not be read back from the session store: %s", pool, r->why);
    }
    loader_check(ld);
}

static void list_done(void *arg, const sstore_result *r)
{
    a2astore_loader *ld = arg;
    ld->listing = 0;
    sstore *st = loader_store(ld);
    if (r->status != SSTORE_OK) {
        ld->failed = 1;
        ap_debug("pool %s: the A2A tasks in the session store could not be listed: %s",
                 ld->p ? ld->p->name : "(gone)", r->why ? r->why : "no listing");
        loader_check(ld);
        return;
    }
    int past = 0;
    for (size_t i = 0; i < r->nentries; i++) {
        const sstore_entry *e = &r->entries[i];
        if (e->key_len < PREFIX_LEN || memcmp(e->key, A2ASTORE_PREFIX, PREFIX_LEN) != 0 ||
            e->key_len >= sizeof(ld->after)) {
            past = 1; /* keys are in order: the task records are behind us */
            break;
        }
        memcpy(ld->after, e->key, e->key_len);
        ld->after_len = e->key_len;
        if (e->key_len >= PREFIX_LEN + A2ATASK_ID_MAX) { /* not a record of ours: its id could not be a task's */
            ld->dropped++;
            ap_warn("pool %s: a session store key of %zu bytes starts with " A2ASTORE_PREFIX " but names no task: "
                    "skipped", ld->p ? ld->p->name : "(gone)", e->key_len);
            continue;
        }
        if (st) {
            ld->gets++;
            sstore_get(st, e->key, e->key_len, get_done, ld);
        }
    }
    if (r->more && !past && st)
        list_next(ld);
    loader_check(ld);
}

/* Lists the next batch, when the store can take it now (else ld->listing
 * stays 0: the caller's loader_check decides). */
static void list_next(a2astore_loader *ld)
{
    sstore *st = loader_store(ld);
    if (st == NULL) {
        ld->failed = ld->p != NULL; /* a pool still there waits for its store */
        return;
    }
    ld->listing = 1;
    sstore_list(st, ld->after, ld->after_len, LIST_BATCH, list_done, ld);
}

void a2astore_load(pool_t *p)
{
    if (!p->cfg->a2a || store_of(p) == NULL || p->a2a_loader)
        return;
    a2astore_loader *ld = ap_calloc(1, sizeof(*ld));
    ld->p = p;
    p->a2a_loader = ld;
    pass_start(ld);
    loader_check(ld);
}

void a2astore_tick(uint64_t now_ms)
{
    POOLS_FOREACH(p) {
        a2astore_loader *ld = p->a2a_loader;
        if (ld && ld->state == LOADER_WAITING && now_ms >= ld->retry_ms) {
            pass_start(ld);
            loader_check(ld); /* the store still not there: waits again */
        }
    }
}

int a2astore_loading(const pool_t *p)
{
    return p->a2a_loader != NULL;
}

void a2astore_pool_free(pool_t *p)
{
    a2astore_loader *ld = p->a2a_loader;
    if (ld == NULL)
        return;
    ld->p = NULL;
    p->a2a_loader = NULL;
    if (ld->state == LOADER_WAITING || (!ld->listing && !ld->gets))
        loader_free(ld); /* else its last callback frees it */
}
