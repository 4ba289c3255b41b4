/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * a2acard.c - the A2A Agent Card of a pool (see a2acard.h).
 *
 * The agent's fields are checked when its worker says READY (a card of
 * at most A2ACARD_MAX_SKILLS skills, strings of at most
 * A2ACARD_MAX_STR bytes) and kept as text; the card itself is made per
 * request (the URL depends on the Host the client used).  The card
 * carries both the 0.3 fields (url, preferredTransport, protocolVersion)
 * and the 1.0 ones (supportedInterfaces), since the endpoint serves both
 * versions.  State: p->a2a_card only.
 */
#include "a2acard.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "httpx.h"
#include "pools.h"

#include <cJSON.h>
#include <event2/buffer.h>
#include "http1.h"
#include <stdio.h>
#include <string.h>

#define A2ACARD_MAX_SKILLS 64
#define A2ACARD_MAX_STR 4096
#define A2ACARD_MAX_LIST 32
/* How long a client may cache the card, seconds. */
#define A2ACARD_MAX_AGE 300

static int short_string(const cJSON *v)
{
    return cJSON_IsString(v) && strlen(v->valuestring) <= A2ACARD_MAX_STR;
}

/* A copy of list if it is an array of at most A2ACARD_MAX_LIST short strings, else NULL. */
static cJSON *string_list(const cJSON *list)
{
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) > A2ACARD_MAX_LIST)
        return NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        if (!short_string(it))
            return NULL;
    }
    return cJSON_Duplicate(list, 1);
}

/* A checked copy of one skill (id and name required), or NULL. */
static cJSON *skill_copy(const cJSON *s)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(s, "id"), *name = cJSON_GetObjectItemCaseSensitive(s, "name");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(s, "description");
    if (!short_string(id) || !short_string(name) || (desc && !short_string(desc)))
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id->valuestring);
    cJSON_AddStringToObject(o, "name", name->valuestring);
    cJSON_AddStringToObject(o, "description", desc ? desc->valuestring : name->valuestring);
    cJSON *tags = string_list(cJSON_GetObjectItemCaseSensitive(s, "tags"));
    cJSON_AddItemToObject(o, "tags", tags ? tags : cJSON_CreateArray());
    return o;
}

/* The fields of card kept, or NULL with *why set. */
static cJSON *card_check(const cJSON *card, const char **why)
{
    if (!cJSON_IsObject(card)) {
        *why = "not a dict";
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    static const char *const strs[] = {"name", "description"};
    for (size_t i = 0; i < AP_ARRAY_LEN(strs); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(card, strs[i]);
        if (v == NULL)
            continue;
        if (!short_string(v)) {
            *why = "name and description must be strings of at most 4096 bytes";
            goto bad;
        }
        cJSON_AddStringToObject(o, strs[i], v->valuestring);
    }
    static const char *const lists[] = {"defaultInputModes", "defaultOutputModes"};
    for (size_t i = 0; i < AP_ARRAY_LEN(lists); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(card, lists[i]);
        if (v == NULL)
            continue;
        cJSON *l = string_list(v);
        if (l == NULL) {
            *why = "defaultInputModes and defaultOutputModes must be lists of up to 32 strings";
            goto bad;
        }
        cJSON_AddItemToObject(o, lists[i], l);
    }
    const cJSON *skills = cJSON_GetObjectItemCaseSensitive(card, "skills");
    if (skills) {
        if (!cJSON_IsArray(skills) || cJSON_GetArraySize(skills) > A2ACARD_MAX_SKILLS) {
            *why = "skills must be a list of up to 64 dicts";
            goto bad;
        }
        cJSON *a = cJSON_AddArrayToObject(o, "skills");
        const cJSON *it;
        cJSON_ArrayForEach(it, skills) {
            cJSON *s = skill_copy(it);
            if (s == NULL) {
                *why = "each skill needs string id and name (description and tags optional)";
                goto bad;
            }
            cJSON_AddItemToArray(a, s);
        }
    }
    return o;
bad:
    cJSON_Delete(o);
    return NULL;
}

void a2acard_worker_ready(pool_t *p, const char *wname, const cJSON *card)
{
    a2acard_pool_free(p);
    if (card == NULL || cJSON_IsNull(card))
        return;
    const char *why = NULL;
    cJSON *o = card_check(card, &why);
    if (o == NULL) {
        ap_error("%s (pool %s): its agent's card is refused (%s): the Agent Card has the pool's defaults", wname,
                 p->name, why);
        return;
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text) {
        p->a2a_card = ap_strdup(text);
        cJSON_free(text);
    }
}

void a2acard_pool_free(pool_t *p)
{
    ap_free(p->a2a_card);
    p->a2a_card = NULL;
}

static cJSON *string_array(const char *const *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

/* The card of p, its endpoint under host. */
static cJSON *card_build(const pool_t *p, const char *host)
{
    cJSON *agent = p->a2a_card ? cJSON_Parse(p->a2a_card) : NULL;
    cJSON *o = cJSON_CreateObject();
    char url[512], desc[256];
    snprintf(url, sizeof(url), "http://%s/a2a/%s", host, p->name);
    snprintf(desc, sizeof(desc), "the agent of agentpool pool %s", p->name);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(agent, "name");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(agent, "description");
    cJSON_AddStringToObject(o, "name", name ? name->valuestring : p->name);
    cJSON_AddStringToObject(o, "description", d ? d->valuestring : desc);
    cJSON_AddStringToObject(o, "version", PACKAGE_VERSION);
    cJSON_AddStringToObject(o, "url", url);
    cJSON_AddStringToObject(o, "preferredTransport", "JSONRPC");
    cJSON_AddStringToObject(o, "protocolVersion", "0.3.0");
    cJSON *ifs = cJSON_AddArrayToObject(o, "supportedInterfaces");
    cJSON *i1 = cJSON_CreateObject();
    cJSON_AddStringToObject(i1, "url", url);
    cJSON_AddStringToObject(i1, "protocolBinding", "JSONRPC");
    cJSON_AddStringToObject(i1, "protocolVersion", "1.0");
    cJSON_AddItemToArray(ifs, i1);
    cJSON *caps = cJSON_AddObjectToObject(o, "capabilities");
    cJSON_AddBoolToObject(caps, "streaming", 1);
    cJSON_AddBoolToObject(caps, "pushNotifications", 0);
    cJSON_AddBoolToObject(caps, "stateTransitionHistory", 0);
    static const char *const in_modes[] = {"application/json", "text/plain"}, *const out_modes[] = {"application/json"};
    static const char *const lists[] = {"defaultInputModes", "defaultOutputModes"};
    for (int i = 0; i < 2; i++) {
        cJSON *l = cJSON_DetachItemFromObjectCaseSensitive(agent, lists[i]);
        cJSON_AddItemToObject(o, lists[i], l ? l : i == 0 ? string_array(in_modes, 2) : string_array(out_modes, 1));
    }
    cJSON *skills = cJSON_DetachItemFromObjectCaseSensitive(agent, "skills");
    if (skills == NULL) {
        skills = cJSON_CreateArray();
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "id", p->name);
        cJSON_AddStringToObject(s, "name", p->name);
        cJSON_AddStringToObject(s, "description", desc);
        cJSON_AddItemToObject(s, "tags", cJSON_CreateArray());
        cJSON_AddItemToArray(skills, s);
    }
    cJSON_AddItemToObject(o, "skills", skills);
    cJSON_Delete(agent);
    return o;
}

void a2acard_answer(http1_req *req, pool_t *p)
{
    const char *host = http1_find_header(req, "Host");
    char hostbuf[256];
    snprintf(hostbuf, sizeof(hostbuf), "%s", host && host[0] && !strpbrk(host, "\"\\/ ") ? host : "localhost");
    cJSON *card = card_build(p, hostbuf);
    char *text = cJSON_PrintUnformatted(card);
    cJSON_Delete(card);
    struct evbuffer *b = evbuffer_new();
    if (text == NULL || b == NULL) {
        ap_error("a2a: the Agent Card of pool %s could not be made (out of memory)", p->name);
        if (text)
            cJSON_free(text);
        if (b)
            evbuffer_free(b);
        http1_send_error(req, 500, "out of memory");
        return;
    }
    uint64_t h = 1469598103934665603ULL; /* FNV-1a 64 */
    for (const char *c = text; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    char etag[24], cc[40];
    snprintf(etag, sizeof(etag), "\"%016llx\"", (unsigned long long)h);
    snprintf(cc, sizeof(cc), "public, max-age=%d", A2ACARD_MAX_AGE);
    http1_headers *out = http1_output_headers(req);
    http1_add_header(out, "Cache-Control", cc);
    http1_add_header(out, "ETag", etag);
    const char *inm = http1_find_header(req, "If-None-Match");
    if (inm && (strstr(inm, etag) || strcmp(inm, "*") == 0)) {
        http1_send_reply(req, 304, "Not Modified", NULL);
    } else {
        http1_add_header(out, "Content-Type", "application/json");
        evbuffer_add(b, text, strlen(text));
        evbuffer_add(b, "\n", 1);
        http1_send_reply(req, 200, "OK", b);
    }
    cJSON_free(text);
    evbuffer_free(b);
}
