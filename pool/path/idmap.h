/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * idmap.h - a connection's set of request ids in flight.
 *
 * Keys are the raw id bytes as the client wrote them (pointers into the
 * message's own copy of its line, valid for as long as the entry lives);
 * values are the messages.  Open addressing with linear probing and
 * backward-shift deletion, so there are no tombstones and lookups stay
 * short however many ids come and go.  The table starts empty (no
 * allocation for connections that never pipeline) and doubles at half
 * load; it is bounded by maxInFlightPerConnection through its caller.
 */
#ifndef AP_IDMAP_H
#define AP_IDMAP_H

#include <stdint.h>

typedef struct {
    const char *key;    /* NULL: empty slot */
    uint32_t len;
    uint32_t hash;
    void *val;
} idmap_entry;

typedef struct {
    idmap_entry *tab;
    uint32_t cap;       /* 0 or a power of two */
    uint32_t count;
} idmap;

void idmap_init(idmap *m);
void idmap_free(idmap *m);
/* The value stored under key, or NULL. */
void *idmap_get(const idmap *m, const char *key, uint32_t len);
/* Adds key -> val.  AP_ERR when key is already present (nothing changes). */
int idmap_put(idmap *m, const char *key, uint32_t len, void *val);
/* Removes key; returns its value, or NULL when it was not there. */
void *idmap_del(idmap *m, const char *key, uint32_t len);

#endif
