/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * a2astore.c - A2A task records in the session store (see a2astore.h).
 *
 * A record: {"v":1,"id","contextId","owner","pool","serial","created",
 * "updated","state" (the 0.3 name),"turns","history","result","error",
 * "prompt","chunks","chunksTruncated"}, the JSON members as the task
 * keeps them.  The loader is one object per pool: a listing in flight or
 * gets in flight; it ends (freed) when the listing is done and no get
 * is left, or the store closes (its callbacks then start nothing).
 * State: the loaders only, each owned by its own callbacks.
 */
#include "a2astore.h"
#include "a2atask.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "pools.h"
#include "server.h"
#include "sstore.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#define PREFIX_LEN (sizeof(A2ASTORE_PREFIX) - 1)
#define LIST_BATCH 200

typedef struct {
    char pool[CONFIG_POOL_NAME_MAX + 1];         /* looked up at each step: a reload may remove it */
    char after[PREFIX_LEN + A2ATASK_ID_MAX + 1]; /* the listing's cursor */
    size_t after_len;
    int listing;                                 /* a list is in flight */
    int gets;                                    /* gets in flight */
    int restored, dropped;
} a2astore_loader;

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

static void list_next(a2astore_loader *ld);

/* The loader ends when nothing is in flight. */
static void loader_check(a2astore_loader *ld)
{
    if (ld->listing || ld->gets)
        return;
    ap_info("pool %s: %d A2A tasks read back from the session store%s", ld->pool, ld->restored,
            ld->dropped ? " (some could not be: see above)" : "");
    ap_free(ld);
}

static void get_done(void *arg, const sstore_result *r)
{
    a2astore_loader *ld = arg;
    ld->gets--;
    if (r->status == SSTORE_OK && server.state < SERVER_DRAINING) {
        a2a_task *t = task_of_record(r->val, r->len);
        if (t == NULL) {
            ld->dropped++;
            ap_warn("pool %s: an A2A task record in the session store is not one (%zu bytes): skipped",
                    ld->pool, r->len);
        } else if (strcmp(t->pool, ld->pool) != 0 || a2atask_restore(t) != AP_OK) {
            ld->dropped++;
            ap_warn("pool %s: A2A task %s from the session store not taken (another pool's, known already, or "
                    "a2aMaxTasks reached)", ld->pool, t->id);
            a2atask_free_record(t);
        } else {
            ld->restored++;
        }
    } else if (r->status == SSTORE_UNAVAILABLE) {
        ld->dropped++;
        ap_warn("pool %s: an A2A task could not be read back from the session store: %s", ld->pool, r->why);
    }
    loader_check(ld);
}

static void list_done(void *arg, const sstore_result *r)
{
    a2astore_loader *ld = arg;
    ld->listing = 0;
    sstore *st = store_of(pools_find(ld->pool, strlen(ld->pool)));
    if (r->status != SSTORE_OK) {
        ap_warn("pool %s: the A2A tasks in the session store could not be listed: %s", ld->pool,
                r->why ? r->why : "no listing");
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
        if (st && server.state < SERVER_DRAINING) {
            ld->gets++;
            sstore_get(st, e->key, e->key_len, get_done, ld);
        }
    }
    if (r->more && !past && server.state < SERVER_DRAINING)
        list_next(ld);
    loader_check(ld);
}

static void list_next(a2astore_loader *ld)
{
    sstore *st = store_of(pools_find(ld->pool, strlen(ld->pool)));
    if (st == NULL)
        return;
    ld->listing = 1;
    sstore_list(st, ld->after, ld->after_len, LIST_BATCH, list_done, ld);
}

void a2astore_load(pool_t *p)
{
    if (!p->cfg->a2a || store_of(p) == NULL)
        return;
    a2astore_loader *ld = ap_calloc(1, sizeof(*ld));
    snprintf(ld->pool, sizeof(ld->pool), "%s", p->name);
    /* the first key after the prefix itself: every "a2a:task:..." key */
    memcpy(ld->after, A2ASTORE_PREFIX, PREFIX_LEN);
    ld->after_len = PREFIX_LEN;
    list_next(ld);
    loader_check(ld);
}
