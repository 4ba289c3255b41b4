/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sessadmin.c - the session state requests of operators (see
 * sessadmin.h): pool.session.get, pool.session.delete and
 * pool.session.list, answered when the pool's session store answers
 * (answer_later, on the asking connection if it is still open).
 *
 * They read the store, not the master's cache: what they show is what
 * is durable.  A delete of a session that has a message in the master
 * is refused session_busy (that message would write the state back);
 * otherwise the master's cached copy is dropped at once, and the
 * store's per-key order puts any later message's read after the delete.
 * The get answer splices the stored state (a JSON object the master
 * checked before committing it) as it is; the rest is built with cJSON.
 */
#include "sessadmin.h"
#include "answer.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_json.h"
#include "client.h"
#include "server.h"
#include "session.h"
#include "sstore.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#define LIST_DEFAULT 100
#define LIST_MAX 1000

typedef enum { SA_GET = 0, SA_DELETE, SA_LIST } sa_kind;

/* One request waiting for the store. */
typedef struct {
    sa_kind kind;
    uint64_t serial;
    uint16_t id_len;
    char pool[64 + 1];
    char key[SCAN_SESSION_MAX + 1];
    size_t key_len;
    char id[];
} sa_req;

static void done(sa_req *q, const char *result, reply_code code, const char *message)
{
    answer_later(q->serial, q->id, q->id_len, result, code, message, NULL);
    ap_free(q);
}

/* `"pool":"P","session":"K"` for the answers (escaped). */
static int names(char *out, size_t cap, const sa_req *q)
{
    char pool[200], key[SCAN_SESSION_MAX * 6 + 1];
    ap_json_escape(pool, sizeof(pool), q->pool, strlen(q->pool));
    ap_json_escape(key, sizeof(key), q->key, q->key_len);
    return snprintf(out, cap, "\"pool\":\"%s\",\"session\":\"%s\"", pool, key);
}

static void store_done(void *arg, const sstore_result *r)
{
    sa_req *q = arg;
    char why[400], head[SCAN_SESSION_MAX * 6 + 300];
    if (r->status == SSTORE_UNAVAILABLE) {
        snprintf(why, sizeof(why), "the session store of pool %s: %s", q->pool, r->why ? r->why : "?");
        done(q, NULL, ERR_STORE_UNAVAILABLE, why);
        return;
    }
    if (q->kind == SA_LIST) {
        cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "sessions");
        cJSON_AddStringToObject(o, "pool", q->pool);
        for (size_t i = 0; i < r->nentries; i++) {
            const sstore_entry *e = &r->entries[i];
            cJSON *it = cJSON_CreateObject();
            cJSON_AddStringToObject(it, "session", e->key);
            cJSON_AddNumberToObject(it, "updatedMs", (double)e->updated_ms);
            cJSON_AddNumberToObject(it, "bytes", (double)e->bytes);
            cJSON_AddItemToArray(a, it);
        }
        cJSON_AddBoolToObject(o, "more", r->more);
        if (r->more && r->nentries)
            cJSON_AddStringToObject(o, "next", r->entries[r->nentries - 1].key);
        char *text = cJSON_PrintUnformatted(o);
        done(q, text, ERR_OTHER, NULL);
        cJSON_free(text);
        cJSON_Delete(o);
        return;
    }
    names(head, sizeof(head), q);
    if (q->kind == SA_DELETE) {
        char body[sizeof(head) + 40];
        snprintf(body, sizeof(body), "{%s,\"deleted\":%s}", head, r->status == SSTORE_OK ? "true" : "false");
        done(q, body, ERR_OTHER, NULL);
        return;
    }
    if (r->status == SSTORE_MISSING) {
        snprintf(why, sizeof(why), "pool %s keeps no state for that session (never written, deleted or expired)",
                 q->pool);
        done(q, NULL, ERR_BAD_REQUEST, why);
        return;
    }
    size_t cap = strlen(head) + r->len + 80;
    char *body = ap_malloc(cap);
    snprintf(body, cap, "{%s,\"updatedMs\":%llu,\"bytes\":%zu,\"state\":%.*s}", head,
             (unsigned long long)r->updated_ms, r->len, (int)r->len, r->val);
    done(q, body, ERR_OTHER, NULL);
    ap_free(body);
}

void sessadmin_request(client *c, const char *line, const scan_result *r, pool_t *p)
{
    const char *what = r->type + sizeof("pool.session.") - 1;
    sa_kind kind = strcmp(what, "get") == 0 ? SA_GET : strcmp(what, "delete") == 0 ? SA_DELETE : SA_LIST;
    char why[400];
    if (!p->cfg->sessions || p->store == NULL || p->store_none) {
        snprintf(why, sizeof(why), "pool %s keeps no session state (%s)", p->name,
                 !p->cfg->sessions ? "sessions are off" : p->store_none ? "sessionStore is none"
                                                                        : "its store could not be opened");
        answer_control_refuse(c, line, r, ERR_BAD_REQUEST, why);
        return;
    }
    cJSON *root = r->data.len ? cJSON_ParseWithLength(line + r->data.off, r->data.len) : NULL;
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(root, kind == SA_LIST ? "after" : "session");
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(root, "limit");
    const char *bad = NULL;
    if (kind != SA_LIST && !cJSON_IsString(key))
        bad = "needs {\"session\": KEY}";
    else if (key && (!cJSON_IsString(key) || strlen(key->valuestring) > SCAN_SESSION_MAX))
        bad = kind == SA_LIST ? "\"after\" must be a session key (a string of at most 256 bytes)"
                              : "\"session\" must be a session key (a string of 1 to 256 bytes)";
    else if (kind != SA_LIST && key->valuestring[0] == '\0')
        bad = "\"session\" must not be empty";
    else if (limit && (!cJSON_IsNumber(limit) || limit->valuedouble < 1 || limit->valuedouble > LIST_MAX))
        bad = "\"limit\" must be a number from 1 to 1000";
    if (bad) {
        snprintf(why, sizeof(why), "%s %s", r->type, bad);
        cJSON_Delete(root);
        answer_control_refuse(c, line, r, ERR_BAD_REQUEST, why);
        return;
    }
    size_t id_len = r->id_kind != SCAN_ID_NONE ? r->id.len : 0;
    sa_req *q = ap_calloc(1, sizeof(*q) + id_len + 1);
    q->kind = kind;
    q->serial = c->serial;
    q->id_len = (uint16_t)id_len;
    memcpy(q->id, line + r->id.off, id_len);
    snprintf(q->pool, sizeof(q->pool), "%s", p->name);
    if (cJSON_IsString(key)) {
        q->key_len = strlen(key->valuestring);
        memcpy(q->key, key->valuestring, q->key_len);
    }
    unsigned n = limit ? (unsigned)limit->valuedouble : LIST_DEFAULT;
    cJSON_Delete(root);
    if (kind == SA_DELETE) {
        session *s = session_find(p->sessions, q->key, q->key_len);
        if (s && s->refs > 0) {
            ap_free(q);
            answer_control_refuse(c, line, r, ERR_SESSION_BUSY,
                                  "the session has a message in the master, which would write its state back: "
                                  "delete it once the session is idle");
            return;
        }
        if (s)
            session_drop_state(p->sessions, s);
    }
    client_deferred(c, 1); /* answer_later gives it back */
    if (kind == SA_GET)
        sstore_get(p->store, q->key, q->key_len, store_done, q);
    else if (kind == SA_DELETE)
        sstore_del(p->store, q->key, q->key_len, store_done, q);
    else
        sstore_list(p->store, q->key, q->key_len, n, store_done, q);
}
