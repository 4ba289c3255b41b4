/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * keytab.c - a chained hash table of byte-string keys (see keytab.h).
 */
#include "keytab.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <string.h>

void keytab_init(keytab *t, uint32_t min_buckets)
{
    t->nbuckets = min_buckets ? min_buckets : 16;
    t->buckets = ap_calloc(t->nbuckets, sizeof(*t->buckets));
    t->count = 0;
}

void keytab_free(keytab *t)
{
    ap_free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = 0;
    t->count = 0;
}

keytab_node *keytab_find(const keytab *t, const char *key, size_t len)
{
    uint32_t h = ap_hash_bytes(key, len);
    for (keytab_node *n = t->buckets[h & (t->nbuckets - 1)]; n; n = n->next)
        if (n->hash == h && n->len == len && memcmp(n->key, key, len) == 0)
            return n;
    return NULL;
}

static void grow(keytab *t)
{
    uint32_t nb = t->nbuckets * 2;
    keytab_node **b = ap_calloc(nb, sizeof(*b));
    for (uint32_t i = 0; i < t->nbuckets; i++) {
        keytab_node *n = t->buckets[i];
        while (n) {
            keytab_node *next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    ap_free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
}

void keytab_add(keytab *t, keytab_node *n, const char *key, size_t len)
{
    if (t->count >= t->nbuckets && t->nbuckets < (1u << 30))
        grow(t);
    n->hash = ap_hash_bytes(key, len);
    n->len = (uint32_t)len;
    n->key = key;
    n->next = t->buckets[n->hash & (t->nbuckets - 1)];
    t->buckets[n->hash & (t->nbuckets - 1)] = n;
    t->count++;
}

void keytab_remove(keytab *t, keytab_node *n)
{
    keytab_node **pp = &t->buckets[n->hash & (t->nbuckets - 1)];
    while (*pp != n)
        pp = &(*pp)->next;
    *pp = n->next;
    n->next = NULL;
    t->count--;
}

void keytab_clear(keytab *t, void (*fn)(keytab_node *n, void *arg), void *arg)
{
    for (uint32_t i = 0; i < t->nbuckets; i++) {
        keytab_node *n = t->buckets[i];
        t->buckets[i] = NULL;
        while (n) {
            keytab_node *next = n->next;
            n->next = NULL;
            fn(n, arg); /* may free n's entry */
            n = next;
        }
    }
    t->count = 0;
}
