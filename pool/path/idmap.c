/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * idmap.c - open-addressing map from id bytes to messages (see idmap.h).
 */
#include "idmap.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <string.h>

static uint32_t hash_bytes(const char *s, uint32_t len)
{
    return ap_hash_bytes(s, len);
}

void idmap_init(idmap *m)
{
    m->tab = NULL;
    m->cap = 0;
    m->count = 0;
}

void idmap_free(idmap *m)
{
    ap_free(m->tab);
    idmap_init(m);
}

static int same(const idmap_entry *e, uint32_t h, const char *key, uint32_t len)
{
    return e->hash == h && e->len == len && memcmp(e->key, key, len) == 0;
}

/* Index of key's entry, or -1 when absent. */
static int64_t find_slot(const idmap *m, const char *key, uint32_t len)
{
    if (m->count == 0)
        return -1;
    uint32_t h = hash_bytes(key, len), mask = m->cap - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        const idmap_entry *e = &m->tab[i];
        if (e->key == NULL)
            return -1;
        if (same(e, h, key, len))
            return i;
    }
}

void *idmap_get(const idmap *m, const char *key, uint32_t len)
{
    int64_t i = find_slot(m, key, len);
    return i < 0 ? NULL : m->tab[i].val;
}

static void insert_raw(idmap *m, const idmap_entry *src)
{
    uint32_t mask = m->cap - 1;
    uint32_t i = src->hash & mask;
    while (m->tab[i].key != NULL)
        i = (i + 1) & mask;
    m->tab[i] = *src;
    m->count++;
}

static void grow(idmap *m)
{
    idmap_entry *old = m->tab;
    uint32_t oldcap = m->cap;
    m->cap = oldcap ? oldcap * 2 : 16;
    m->tab = ap_calloc(m->cap, sizeof(idmap_entry));
    m->count = 0;
    for (uint32_t i = 0; i < oldcap; i++)
        if (old[i].key)
            insert_raw(m, &old[i]);
    ap_free(old);
}

int idmap_put(idmap *m, const char *key, uint32_t len, void *val)
{
    if (find_slot(m, key, len) >= 0)
        return AP_ERR;
    if ((m->count + 1) * 2 > m->cap)
        grow(m);
    idmap_entry e = {key, len, hash_bytes(key, len), val};
    insert_raw(m, &e);
    return AP_OK;
}

void *idmap_del(idmap *m, const char *key, uint32_t len)
{
    int64_t found = find_slot(m, key, len);
    if (found < 0)
        return NULL;
    uint32_t mask = m->cap - 1, i = (uint32_t)found;
    void *val = m->tab[i].val;
    /* Backward-shift: pull later members of the probe run into the hole. */
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & mask; m->tab[j].key != NULL; j = (j + 1) & mask) {
        uint32_t home = m->tab[j].hash & mask;
        /* j may move to hole if its home is not in (hole, j] cyclically. */
        int in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            m->tab[hole] = m->tab[j];
            hole = j;
        }
    }
    m->tab[hole].key = NULL;
    m->count--;
    return val;
}
