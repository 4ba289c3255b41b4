/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * idmap.h - a hash map from message id (u64) to a non-NULL pointer.
 *
 * The async driver keeps its in-flight messages here so a CANCEL frame
 * finds the task to cancel.  Open addressing with linear probing and
 * backward-shift deletion (no tombstones), kept at most half full; memory
 * from ap_alloc, so no operation fails.  The map does not own the values.
 */
#ifndef BRIDGE_IDMAP_H
#define BRIDGE_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *keys;
    void **vals; /* NULL = empty slot */
    size_t cap;  /* a power of two */
    size_t count;
} idmap_t;

void idmap_init(idmap_t *m);
void idmap_free(idmap_t *m);
/* The value stored for key, or NULL. */
void *idmap_get(const idmap_t *m, uint64_t key);
/* Stores val (non-NULL) for key; returns the value it replaced, or NULL. */
void *idmap_put(idmap_t *m, uint64_t key, void *val);
/* Removes key; returns its value, or NULL when absent. */
void *idmap_del(idmap_t *m, uint64_t key);

#endif
