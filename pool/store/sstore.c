/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sstore.c - the session store's front (see sstore.h): parses the
 * sessionStore spec, picks the backend, allocates operations, calls
 * back exactly once unless cancelled, and counts.  The "none" store
 * lives here: every get is MISSING, every write is refused
 * UNAVAILABLE ("sessionStore is none").
 */
#include "sstore_be.h"
#include "rspec.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define SQLITE_SCHEME "sqlite:"
#define REDIS_SCHEME "redis://"

/* ---- "none" ------------------------------------------------------------- */

static int none_start(sstore *s, const char *rest, int wait_ready, char *err, size_t errlen)
{
    (void)rest;
    (void)wait_ready;
    (void)err;
    (void)errlen;
    s->st.up = 1;
    return AP_OK;
}

static void none_submit(sstore *s, sstore_op *op)
{
    (void)s;
    if (op->kind == SSTORE_GET || op->kind == SSTORE_DEL) {
        op->res.status = SSTORE_MISSING;
        sstore_complete_soon(op);
    } else if (op->kind == SSTORE_LIST) {
        op->res.status = SSTORE_OK;
        sstore_complete_soon(op);
    } else {
        sstore_fail_soon(op, "sessionStore is none: session state is not kept");
    }
}

static void none_stop(sstore *s)
{
    (void)s;
}

static void none_set_ttl(sstore *s)
{
    (void)s;
}

static const sstore_backend none_backend = {"none", none_start, none_submit, none_stop, none_set_ttl, NULL};

/* ---- spec ------------------------------------------------------------- */

/* The backend spec names and where its rest starts, or NULL. */
static const sstore_backend *backend_of(const char *spec, const char **rest)
{
    if (strcmp(spec, "none") == 0) {
        *rest = spec + 4;
        return &none_backend;
    }
    if (strncmp(spec, SQLITE_SCHEME, sizeof(SQLITE_SCHEME) - 1) == 0) {
        *rest = spec + sizeof(SQLITE_SCHEME) - 1;
        return &sstore_sqlite_backend;
    }
    if (strncmp(spec, REDIS_SCHEME, sizeof(REDIS_SCHEME) - 1) == 0) {
        *rest = spec + sizeof(REDIS_SCHEME) - 1;
        return &sstore_redis_backend;
    }
    return NULL;
}

int sstore_spec_check(const char *spec, char *err, size_t errlen)
{
    const char *rest;
    const sstore_backend *be = backend_of(spec, &rest);
    if (be == NULL) {
        snprintf(err, errlen, "unknown sessionStore '%s' (sqlite:PATH, redis://HOST:PORT/DB or none)", spec);
        return AP_ERR;
    }
    if (be == &sstore_sqlite_backend && rest[0] == '\0') {
        snprintf(err, errlen, "sessionStore '%s' names no database file (sqlite:PATH)", spec);
        return AP_ERR;
    }
    if (be == &sstore_redis_backend) {
        rspec addr;
        return rspec_parse("sessionStore", rest, &addr, err, errlen);
    }
    return AP_OK;
}

/* ---- the front -------------------------------------------------------- */

static void soon_cb(evutil_socket_t fd, short what, void *arg)
{
    sstore *s = arg;
    (void)fd;
    (void)what;
    queue_link list;
    link_init(&list);
    while (!link_empty(&s->soon)) { /* callbacks may start operations that complete soon too: next turn */
        queue_link *l = s->soon.next;
        link_del(l);
        link_add_tail(&list, l);
    }
    while (!link_empty(&list)) {
        sstore_op *op = queue_entry(list.next, sstore_op, link);
        link_del(&op->link);
        sstore_complete(op, &op->res);
    }
}

sstore *sstore_open(struct event_base *base, const char *spec, const char *pool, uint64_t ttl_ms, int wait_ready,
                    char *err, size_t errlen)
{
    const char *rest;
    const sstore_backend *be = backend_of(spec, &rest);
    if (be == NULL) {
        sstore_spec_check(spec, err, errlen);
        return NULL;
    }
    size_t n = strlen(pool);
    sstore *s = ap_calloc(1, sizeof(*s) + n + 1);
    memcpy(s->pool, pool, n + 1);
    s->be = be;
    s->base = base;
    s->ttl_ms = ttl_ms;
    s->st.backend = be->name;
    link_init(&s->soon);
    s->soon_ev = event_new(base, -1, 0, soon_cb, s);
    if (s->soon_ev == NULL) {
        snprintf(err, errlen, "session store of pool %s: cannot make an event", pool);
        ap_free(s);
        return NULL;
    }
    if (be->start(s, rest, wait_ready, err, errlen) != AP_OK) {
        event_free(s->soon_ev);
        ap_free(s);
        return NULL;
    }
    return s;
}

void sstore_set_ttl(sstore *s, uint64_t ttl_ms)
{
    if (s->ttl_ms == ttl_ms)
        return;
    s->ttl_ms = ttl_ms;
    s->be->set_ttl(s);
}

void sstore_set_sync(sstore *s, sstore_sync sync)
{
    if (s->sync == sync)
        return;
    s->sync = sync;
    if (s->be->set_sync)
        s->be->set_sync(s);
}

/* A new op with a copy of key; with a copy of val too unless borrow (the
 * caller keeps val alive, sstore_put_ref).  Only the fields before why[]
 * are zeroed: a put's value is not written twice. */
static sstore_op *op_new(sstore *s, sstore_kind kind, const char *key, size_t key_len, const char *val, size_t len,
                         int borrow, sstore_done_fn fn, void *arg)
{
    size_t copy = borrow ? 0 : len;
    sstore_op *op = ap_malloc(sizeof(*op) + key_len + 1 + copy + 1);
    memset(op, 0, offsetof(sstore_op, why));
    op->why[0] = '\0';
    op->s = s;
    op->kind = kind;
    op->fn = fn;
    op->arg = arg;
    op->key_len = key_len;
    if (key_len)
        memcpy(op->key, key, key_len);
    op->key[key_len] = '\0';
    char *own = op->key + key_len + 1;
    if (copy)
        memcpy(own, val, copy);
    own[copy] = '\0';
    op->val = borrow ? val : own;
    op->val_len = len;
    link_init(&op->link);
    s->st.pending++;
    switch (kind) {
    case SSTORE_GET:
        s->st.gets++;
        break;
    case SSTORE_PUT:
        s->st.puts++;
        break;
    case SSTORE_TOUCH:
        s->st.touches++;
        break;
    case SSTORE_DEL:
        s->st.deletes++;
        break;
    default:
        s->st.lists++;
        break;
    }
    return op;
}

static sstore_op *start(sstore *s, sstore_op *op)
{
    s->be->submit(s, op);
    return op;
}

sstore_op *sstore_get(sstore *s, const char *key, size_t key_len, sstore_done_fn fn, void *arg)
{
    return start(s, op_new(s, SSTORE_GET, key, key_len, NULL, 0, 0, fn, arg));
}

sstore_op *sstore_put(sstore *s, const char *key, size_t key_len, const char *val, size_t len, sstore_done_fn fn,
                      void *arg)
{
    return start(s, op_new(s, SSTORE_PUT, key, key_len, val, len, 0, fn, arg));
}

sstore_op *sstore_put_ref(sstore *s, const char *key, size_t key_len, const char *val, size_t len, uint64_t hint,
                          sstore_done_fn fn, void *arg)
{
    sstore_op *op = op_new(s, SSTORE_PUT, key, key_len, val, len, 1, fn, arg);
    op->hint = hint;
    return start(s, op);
}

sstore_op *sstore_touch(sstore *s, const char *key, size_t key_len, sstore_done_fn fn, void *arg)
{
    return start(s, op_new(s, SSTORE_TOUCH, key, key_len, NULL, 0, 0, fn, arg));
}

sstore_op *sstore_del(sstore *s, const char *key, size_t key_len, sstore_done_fn fn, void *arg)
{
    return start(s, op_new(s, SSTORE_DEL, key, key_len, NULL, 0, 0, fn, arg));
}

sstore_op *sstore_list(sstore *s, const char *after, size_t after_len, unsigned limit, sstore_done_fn fn, void *arg)
{
    sstore_op *op = op_new(s, SSTORE_LIST, after, after_len, NULL, 0, 0, fn, arg);
    op->limit = limit < 1 ? 1 : limit > 1000 ? 1000 : limit;
    return start(s, op);
}

void sstore_cancel(sstore_op *op)
{
    if (op)
        op->cancelled = 1;
}

void sstore_complete(sstore_op *op, const sstore_result *r)
{
    sstore *s = op->s;
    s->st.pending--;
    if (r->status == SSTORE_UNAVAILABLE)
        s->st.failures++;
    if (!op->cancelled && op->fn)
        op->fn(op->arg, r);
    ap_free(op);
}

void sstore_complete_soon(sstore_op *op)
{
    sstore *s = op->s;
    link_add_tail(&s->soon, &op->link);
    event_active(s->soon_ev, EV_TIMEOUT, 0);
}

void sstore_fail_soon(sstore_op *op, const char *why)
{
    snprintf(op->why, sizeof(op->why), "%s", why);
    op->res.status = SSTORE_UNAVAILABLE;
    op->res.why = op->why;
    sstore_complete_soon(op);
}

void sstore_get_stats(const sstore *s, sstore_stats *out)
{
    *out = s->st;
}

void sstore_close(sstore *s)
{
    if (s == NULL)
        return;
    s->be->stop(s);
    while (!link_empty(&s->soon)) { /* completed, not yet called back */
        sstore_op *op = queue_entry(s->soon.next, sstore_op, link);
        link_del(&op->link);
        sstore_complete(op, &op->res);
    }
    event_free(s->soon_ev);
    ap_free(s);
}
