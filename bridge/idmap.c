/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * idmap.c - u64 -> pointer hash map (see idmap.h).
 *
 * Fibonacci hashing spreads the master's sequential ids over the table;
 * deleting shifts the following entries of the probe run back, so lookups
 * never walk over dead slots.
 */
#include "idmap.h"

#include "ap_alloc.h"

#define IDMAP_MIN_CAP 64

static inline size_t home_slot(const idmap_t *m, uint64_t key)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (m->cap - 1);
}

void idmap_init(idmap_t *m)
{
    m->cap = IDMAP_MIN_CAP;
    m->count = 0;
    m->keys = ap_calloc(m->cap, sizeof(*m->keys));
    m->vals = ap_calloc(m->cap, sizeof(*m->vals));
}

void idmap_free(idmap_t *m)
{
    ap_free(m->keys);
    ap_free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->count = 0;
}

void *idmap_get(const idmap_t *m, uint64_t key)
{
    size_t mask = m->cap - 1;
    for (size_t i = home_slot(m, key);; i = (i + 1) & mask) {
        if (m->vals[i] == NULL)
            return NULL;
        if (m->keys[i] == key)
            return m->vals[i];
    }
}

static void grow(idmap_t *m)
{
    idmap_t old = *m;
    m->cap = old.cap * 2;
    m->count = 0;
    m->keys = ap_calloc(m->cap, sizeof(*m->keys));
    m->vals = ap_calloc(m->cap, sizeof(*m->vals));
    for (size_t i = 0; i < old.cap; i++)
        if (old.vals[i])
            idmap_put(m, old.keys[i], old.vals[i]);
    ap_free(old.keys);
    ap_free(old.vals);
}

void *idmap_put(idmap_t *m, uint64_t key, void *val)
{
    if ((m->count + 1) * 2 > m->cap)
        grow(m);
    size_t mask = m->cap - 1;
    for (size_t i = home_slot(m, key);; i = (i + 1) & mask) {
        if (m->vals[i] == NULL) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->count++;
            return NULL;
        }
        if (m->keys[i] == key) {
            void *prev = m->vals[i];
            m->vals[i] = val;
            return prev;
        }
    }
}

void *idmap_del(idmap_t *m, uint64_t key)
{
    size_t mask = m->cap - 1, i = home_slot(m, key);
    while (m->vals[i] != NULL && m->keys[i] != key)
        i = (i + 1) & mask;
    void *val = m->vals[i];
    if (val == NULL)
        return NULL;
    m->vals[i] = NULL;
    m->count--;
    /* shift back every later entry of the run that may live in slot i */
    for (size_t j = (i + 1) & mask; m->vals[j] != NULL; j = (j + 1) & mask) {
        size_t h = home_slot(m, m->keys[j]);
        int movable = (j > i) ? (h <= i || h > j) : (h <= i && h > j);
        if (movable) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->vals[j] = NULL;
            i = j;
        }
    }
    return val;
}
