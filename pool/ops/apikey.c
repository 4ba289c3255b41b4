/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * apikey.c - API keys: lookup, pool rights, per-key limits, and the
 * keys file read at start and reread off the loop (see apikey.h).
 *
 * Reading the file: at start-up keyfile_load() runs here, synchronously:
 * nothing is served yet and a bad file must stop the start.  At a reload
 * it runs on a reader thread (one at a time): the file may sit on a slow
 * disk or NFS and may hold 100,000 keys, and the master never blocks.
 * The thread touches nothing but its own job struct and sets `done`
 * (atomic); the tick joins it and swaps the keys in on the loop, so the
 * live keys are only ever touched by the loop's thread.
 *
 * Lookup: the secret's SHA-256 (nettle) is searched in the keys sorted by
 * hash, then compared again with nettle's memeql_sec (constant time).
 * The search compares digests, not secrets: how long it takes depends on
 * the digest of what the client sent, which tells it nothing about any
 * real secret.  Secrets are never stored, logged or echoed.
 *
 * Lifetimes: an apikey is referenced by the current set (while its id
 * is in the file) and by each message admitted with it; it is freed at
 * the last unref.  State: the `ak` struct below, the loop's alone.
 */
#include "apikey.h"
#include "keyfile.h"
#include "tbucket.h"
#include "ap_alloc.h"
#include "ap_bgjob.h"
#include "ap_common.h"
#include "ap_log.h"

#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The retryAfterMs hint for a key at maxInFlight: its messages' ends are
 * not known in advance. */
#define APIKEY_INFLIGHT_RETRY_MS 1000

struct apikey {
    char id[KEYFILE_ID_MAX + 1];
    unsigned refs;
    uint32_t max_inflight;      /* 0: no limit */
    uint32_t inflight;
    tbucket rate;               /* ratePerMinute */
    tbucket tokens;             /* tokensPerMinute */
};

/* One key of the current set. */
typedef struct {
    unsigned char sha256[32];
    int all_pools;
    unsigned npools;
    char (*pools)[KEYFILE_POOL_MAX + 1];
    apikey *key;
} entry;

/* A reread on the reader thread. */
typedef struct {
    ap_bgjob *thread;
    char *path;
    keyfile_set set;
    int rc;
    char err[KEYFILE_ERR_MAX];
} job;

static struct {
    char *path;                 /* NULL: no keys file */
    entry *keys;                /* sorted by sha256 */
    unsigned n;
    job *running;               /* a reread in progress, or NULL */
    int again;                  /* a reread was asked while one ran */
    char again_why[32];
    uint64_t reloads, failures;
} ak;

static void key_unref(apikey *k)
{
    if (--k->refs == 0)
        ap_free(k);
}

static int by_hash(const void *a, const void *b)
{
    return memcmp(((const entry *)a)->sha256, ((const entry *)b)->sha256, 32);
}

static void set_free(entry *keys, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        ap_free(keys[i].pools);
        key_unref(keys[i].key);
    }
    ap_free(keys);
}

/* The key with id in the current set, or NULL (a linear pass per new
 * key would be quadratic: old keys are indexed by id first). */
static int by_id_ptr(const void *a, const void *b)
{
    return strcmp((*(apikey *const *)a)->id, (*(apikey *const *)b)->id);
}

/* Makes the live set from s (whose pools arrays move over), keeping the
 * apikey of every id the old set had: its in-flight count and buckets
 * carry over, its limits are the new ones. */
static void install(keyfile_set *s, uint64_t now_ms)
{
    apikey **old = ak.n ? ap_malloc((size_t)ak.n * sizeof(*old)) : NULL;
    for (unsigned i = 0; i < ak.n; i++)
        old[i] = ak.keys[i].key;
    if (ak.n > 1)
        qsort(old, ak.n, sizeof(*old), by_id_ptr);
    entry *keys = s->n ? ap_calloc(s->n, sizeof(*keys)) : NULL;
    for (unsigned i = 0; i < s->n; i++) {
        keyfile_entry *e = &s->keys[i];
        apikey probe, *pp = &probe, **found;
        memcpy(probe.id, e->id, sizeof(probe.id));
        found = ak.n ? bsearch(&pp, old, ak.n, sizeof(*old), by_id_ptr) : NULL;
        apikey *k;
        if (found) {
            k = *found;
            k->refs++;
            tbucket_set_rate(&k->rate, e->rate_per_minute, now_ms);
            tbucket_set_rate(&k->tokens, e->tokens_per_minute, now_ms);
        } else {
            k = ap_calloc(1, sizeof(*k));
            memcpy(k->id, e->id, sizeof(k->id));
            k->refs = 1;
            tbucket_init(&k->rate, e->rate_per_minute, now_ms);
            tbucket_init(&k->tokens, e->tokens_per_minute, now_ms);
        }
        k->max_inflight = e->max_inflight;
        memcpy(keys[i].sha256, e->sha256, 32);
        keys[i].all_pools = e->all_pools;
        keys[i].npools = e->npools;
        keys[i].pools = e->pools;
        e->pools = NULL;
        e->npools = 0;
        keys[i].key = k;
    }
    if (s->n > 1)
        qsort(keys, s->n, sizeof(*keys), by_hash);
    ap_free(old);
    set_free(ak.keys, ak.n);
    ak.keys = keys;
    ak.n = s->n;
    keyfile_set_free(s);
}

int apikey_init(const char *path, char *err, size_t errlen)
{
    char why[KEYFILE_ERR_MAX];
    keyfile_set s;
    memset(&ak, 0, sizeof(ak));
    if (path == NULL || path[0] == '\0')
        return AP_OK;
    ak.path = ap_strdup(path);
    if (keyfile_load(path, &s, why) != AP_OK) {
        snprintf(err, errlen, "apiKeysFile %s", why);
        return AP_ERR;
    }
    install(&s, ap_now_ms());
    ap_info("api keys: %u read from %s", ak.n, path);
    return AP_OK;
}

static void job_free(job *j)
{
    keyfile_set_free(&j->set);
    ap_free(j->path);
    ap_free(j);
}

void apikey_free(void)
{
    if (ak.running) {
        ap_bgjob_join(ak.running->thread);
        job_free(ak.running);
    }
    set_free(ak.keys, ak.n);
    ap_free(ak.path);
    memset(&ak, 0, sizeof(ak));
}

/* On the reader thread: touches only j. */
static void reader_main(void *arg)
{
    job *j = arg;
    j->rc = keyfile_load(j->path, &j->set, j->err);
}

void apikey_reload(const char *why)
{
    if (ak.path == NULL)
        return;
    if (ak.running) {
        ak.again = 1;
        snprintf(ak.again_why, sizeof(ak.again_why), "%s", why);
        return;
    }
    job *j = ap_calloc(1, sizeof(*j));
    j->path = ap_strdup(ak.path);
    char err[128];
    j->thread = ap_bgjob_start(reader_main, j, err, sizeof(err));
    if (j->thread == NULL) {
        ap_error("api keys: rereading %s (%s) failed: %s; keeping the %u keys in use", ak.path, why, err, ak.n);
        ak.failures++;
        job_free(j);
        return;
    }
    ap_info("api keys: rereading %s (%s)", ak.path, why);
    ak.running = j;
}

void apikey_tick(uint64_t now_ms)
{
    job *j = ak.running;
    if (j == NULL || !ap_bgjob_done(j->thread))
        return;
    ap_bgjob_join(j->thread);
    ak.running = NULL;
    ak.reloads++;
    if (j->rc != AP_OK) {
        ak.failures++;
        ap_error("api keys: the reread was refused: apiKeysFile %s; keeping the %u keys in use", j->err, ak.n);
    } else {
        install(&j->set, now_ms);
        ap_info("api keys: %u read from %s", ak.n, ak.path);
    }
    job_free(j);
    if (ak.again) {
        ak.again = 0;
        apikey_reload(ak.again_why);
    }
}

uint64_t apikey_reloads(void)
{
    return ak.reloads;
}

uint64_t apikey_reload_failures(void)
{
    return ak.failures;
}

/* ---- requests ----------------------------------------------------------- */

static int pool_allowed(const entry *e, const char *pool)
{
    if (e->all_pools)
        return 1;
    for (unsigned i = 0; i < e->npools; i++)
        if (strcmp(e->pools[i], pool) == 0)
            return 1;
    return 0;
}

apikey_verdict apikey_check(const char *secret, size_t len, const char *pool, apikey **out)
{
    entry probe;
    struct sha256_ctx h;
    *out = NULL;
    if (ak.n == 0 || len == 0)
        return APIKEY_UNAUTHORIZED;
    sha256_init(&h);
    sha256_update(&h, len, (const uint8_t *)secret);
    sha256_digest(&h, SHA256_DIGEST_SIZE, probe.sha256);
    const entry *e = bsearch(&probe, ak.keys, ak.n, sizeof(*ak.keys), by_hash);
    if (e == NULL || !memeql_sec(e->sha256, probe.sha256, SHA256_DIGEST_SIZE))
        return APIKEY_UNAUTHORIZED;
    *out = e->key;
    return pool_allowed(e, pool) ? APIKEY_OK : APIKEY_FORBIDDEN;
}

int apikey_gate(const char *secret, size_t len, const char *pool, uint64_t now_ms, apikey_result *r)
{
    apikey *k;
    r->key = NULL;
    r->retry_after_ms = 0;
    r->why[0] = '\0';
    apikey_verdict v = apikey_check(secret, len, pool, &k);
    r->found = k;
    switch (v) {
    case APIKEY_UNAUTHORIZED:
        r->code = ERR_UNAUTHORIZED;
        snprintf(r->why, sizeof(r->why), "unknown API key");
        return AP_ERR;
    case APIKEY_FORBIDDEN:
        r->code = ERR_FORBIDDEN;
        snprintf(r->why, sizeof(r->why), "API key %s may not use pool %s", k->id, pool);
        return AP_ERR;
    case APIKEY_OK:
        break;
    }
    r->code = ERR_RATE_LIMITED;
    if (k->max_inflight && k->inflight >= k->max_inflight) {
        r->retry_after_ms = APIKEY_INFLIGHT_RETRY_MS;
        snprintf(r->why, sizeof(r->why), "API key %s has %u messages in flight (maxInFlight %u)", k->id, k->inflight,
                 k->max_inflight);
        return AP_ERR;
    }
    if (!tbucket_ready(&k->tokens, now_ms, &r->retry_after_ms)) {
        snprintf(r->why, sizeof(r->why), "API key %s used its tokensPerMinute (%llu)", k->id,
                 (unsigned long long)k->tokens.per_minute);
        return AP_ERR;
    }
    if (tbucket_take(&k->rate, now_ms, &r->retry_after_ms)) {
        snprintf(r->why, sizeof(r->why), "API key %s is over its ratePerMinute (%llu)", k->id,
                 (unsigned long long)k->rate.per_minute);
        return AP_ERR;
    }
    k->inflight++;
    k->refs++;
    r->key = k;
    return AP_OK;
}

void apikey_release(apikey *k)
{
    if (k == NULL)
        return;
    k->inflight--;
    key_unref(k);
}

void apikey_charge(apikey *k, uint64_t n, uint64_t now_ms)
{
    if (k)
        tbucket_charge(&k->tokens, n, now_ms);
}

const char *apikey_id(const apikey *k)
{
    return k->id;
}

uint32_t apikey_inflight(const apikey *k)
{
    return k->inflight;
}

unsigned apikey_count(void)
{
    return ak.n;
}
