/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * msg.c - message allocation and the internal-id table (see msg.h).
 */
#include "msg.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <assert.h>
#include <string.h>

void msg_table_init(msg_table *t)
{
    memset(t, 0, sizeof(*t));
    t->seq = 1;
}

void msg_table_free(msg_table *t)
{
    ap_free(t->slots);
    ap_free(t->free_idx);
    memset(t, 0, sizeof(*t));
}

static void grow(msg_table *t)
{
    uint32_t ncap = t->cap ? t->cap * 2 : 1024;
    t->slots = ap_realloc(t->slots, ncap * sizeof(msg *));
    t->free_idx = ap_realloc(t->free_idx, ncap * sizeof(uint32_t));
    /* Push the new indexes so the lowest is handed out first. */
    for (uint32_t i = ncap; i > t->cap; i--) {
        t->slots[i - 1] = NULL;
        t->free_idx[t->nfree++] = i - 1;
    }
    t->cap = ncap;
}

msg *msg_new(msg_table *t, const char *line, size_t len, size_t type_cap)
{
    if (t->nfree == 0)
        grow(t);
    uint32_t idx = t->free_idx[--t->nfree];
    msg *m = ap_malloc(sizeof(msg) + len + 1 + type_cap + 1);
    memset(m, 0, sizeof(*m));
    memcpy(m->line, line, len);
    m->line[len] = '\0';
    m->line_len = (uint32_t)len;
    m->type = m->line + len + 1;
    m->type[0] = '\0';
    m->retry = -1;
    m->timeout_ms = -1;
    /* High half never 0: ids below 2^32 are the master's own asks
     * (agentstat.c), never a message. */
    if ((uint32_t)t->seq == 0)
        t->seq++;
    m->id = (t->seq++ << 32) | idx;
    m->state = MSG_NEW;
    t->slots[idx] = m;
    t->live++;
    t->by_state[MSG_NEW]++;
    return m;
}

void msg_free(msg_table *t, msg *m)
{
    uint32_t idx = (uint32_t)(m->id & 0xffffffffu);
    assert(idx < t->cap && t->slots[idx] == m);
    t->slots[idx] = NULL;
    t->free_idx[t->nfree++] = idx;
    t->live--;
    t->by_state[m->state]--;
    ap_free(m->fail);
    ap_free(m->held);
    ap_free(m->ckpt);
    ap_free(m);
}

void msg_keep_checkpoint(msg *m, const char *json, size_t len)
{
    ap_free(m->ckpt);
    m->ckpt = ap_malloc(len);
    memcpy(m->ckpt, json, len);
    m->ckpt_len = (uint32_t)len;
}

msg *msg_lookup(const msg_table *t, uint64_t id)
{
    uint32_t idx = (uint32_t)(id & 0xffffffffu);
    if (idx >= t->cap)
        return NULL;
    msg *m = t->slots[idx];
    return m && m->id == id ? m : NULL;
}

void msg_set_state(msg_table *t, msg *m, msg_state to)
{
    assert(to < MSG_STATE_COUNT);
    t->by_state[m->state]--;
    t->by_state[to]++;
    m->state = to;
}

const char *msg_state_name(msg_state s)
{
    static const char *const names[] = {"new", "held", "queued", "running", "retry_wait", "session_wait", "store_wait", "committing"};
    return s < MSG_STATE_COUNT ? names[s] : "?";
}
