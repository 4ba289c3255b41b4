/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * keytab.h - a chained hash table of byte-string keys, intrusive.
 *
 * The entries of a table (a pool's sessions, its idempotency keys) embed
 * a keytab_node and own their keys; the table only links them: FNV-1a
 * over the key (ap_hash_bytes), power-of-two buckets doubled whenever
 * there would be more entries than buckets.  It never frees an entry.
 */
#ifndef AP_KEYTAB_H
#define AP_KEYTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct keytab_node {
    struct keytab_node *next;   /* hash chain */
    uint32_t hash;
    uint32_t len;
    const char *key;            /* the entry's own copy */
} keytab_node;

typedef struct {
    keytab_node **buckets;
    uint32_t nbuckets;          /* a power of two */
    uint32_t count;
} keytab;

/* An empty table with min_buckets (a power of two) buckets. */
void keytab_init(keytab *t, uint32_t min_buckets);
/* Frees the buckets; the entries are the caller's (keytab_clear first). */
void keytab_free(keytab *t);
/* The node of key[0..len), or NULL. */
keytab_node *keytab_find(const keytab *t, const char *key, size_t len);
/* Links n, whose key (its entry's own copy) is key[0..len): absent. */
void keytab_add(keytab *t, keytab_node *n, const char *key, size_t len);
/* Unlinks n, which is in t. */
void keytab_remove(keytab *t, keytab_node *n);
/* Unlinks every node and calls fn on each (which may free its entry). */
void keytab_clear(keytab *t, void (*fn)(keytab_node *n, void *arg), void *arg);

#endif
