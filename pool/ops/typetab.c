/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * typetab.c - bounded type -> index table (see typetab.h).
 *
 * Layout: ent[0..max_types] holds the names in index order (ent[0] is
 * "other"); slot[] is the hash table proper, a power-of-two array of
 * (index + 1), 0 meaning empty.  Both are allocated by typetab_new() and
 * never resized.  Invariants: count <= max_types + 1; slot[] has at
 * least 2 * (max_types + 1) entries, so it is never more than half full
 * and every probe run ends at an empty slot; every index below count sits
 * in exactly one slot, at its home (hash & mask) or after it with no
 * empty slot in between.  Entries are never removed.
 */
#include "typetab.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_defaults.h"

#include <string.h>

typedef struct {
    char *name;     /* NUL-terminated copy; ent[0]'s is other_name */
    uint32_t len;
    uint32_t hash;
} typetab_entry;

struct typetab {
    typetab_entry *ent;     /* max_types + 1 entries, count in use */
    uint32_t *slot;         /* mask + 1 slots: index + 1, or 0 when empty */
    uint32_t mask;
    unsigned count;
    unsigned max_types;
    uint64_t untracked;
    char other_name[sizeof(TYPETAB_OTHER_NAME)];
};

/* FNV-1a, as idmap.c.  Type names are short and the table is bounded, so
 * even a client choosing colliding names only lengthens one probe run to
 * at most max_types slots, compared by hash before any memcmp. */
static uint32_t hash_bytes(const char *s, size_t len)
{
    return ap_hash_bytes(s, len);
}

/* The slot holding type, or the empty slot ending its probe run. */
static uint32_t probe(const typetab *t, const char *type, uint32_t len, uint32_t h)
{
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        uint32_t s = t->slot[i];
        if (s == 0)
            return i;
        const typetab_entry *e = &t->ent[s - 1];
        if (e->hash == h && e->len == len && memcmp(e->name, type, len) == 0)
            return i;
    }
}

static void add_entry(typetab *t, uint32_t at, char *name, uint32_t len, uint32_t h)
{
    t->ent[t->count] = (typetab_entry){name, len, h};
    t->slot[at] = ++t->count; /* index + 1 */
}

typetab *typetab_new(unsigned max_types)
{
    if (max_types > TYPETAB_MAX_TYPES)
        return NULL;
    typetab *t = ap_calloc(1, sizeof(*t));
    uint32_t cap = 4;
    while (cap < 2 * (max_types + 1))
        cap *= 2;
    t->ent = ap_calloc(max_types + 1, sizeof(typetab_entry));
    t->slot = ap_calloc(cap, sizeof(uint32_t));
    t->mask = cap - 1;
    t->max_types = max_types;
    memcpy(t->other_name, TYPETAB_OTHER_NAME, sizeof(t->other_name));
    uint32_t olen = sizeof(t->other_name) - 1, h = hash_bytes(t->other_name, olen);
    add_entry(t, probe(t, t->other_name, olen, h), t->other_name, olen, h);
    return t;
}

void typetab_free(typetab *t)
{
    if (t == NULL)
        return;
    for (unsigned i = 1; i < t->count; i++)
        ap_free(t->ent[i].name);
    ap_free(t->ent);
    ap_free(t->slot);
    ap_free(t);
}

unsigned typetab_find(const typetab *t, const char *type, size_t len)
{
    if (len > AP_MAX_TYPE_LEN)
        return TYPETAB_OTHER;
    uint32_t s = t->slot[probe(t, type, (uint32_t)len, hash_bytes(type, len))];
    return s ? s - 1 : TYPETAB_OTHER;
}

unsigned typetab_index(typetab *t, const char *type, size_t len)
{
    if (AP_UNLIKELY(len > AP_MAX_TYPE_LEN)) {
        t->untracked++;
        return TYPETAB_OTHER;
    }
    uint32_t h = hash_bytes(type, len);
    uint32_t at = probe(t, type, (uint32_t)len, h);
    if (AP_LIKELY(t->slot[at] != 0))
        return t->slot[at] - 1;
    if (t->count > t->max_types) {
        t->untracked++;
        return TYPETAB_OTHER;
    }
    add_entry(t, at, ap_strndup(type, len), (uint32_t)len, h);
    return t->count - 1;
}

const char *typetab_name(const typetab *t, unsigned idx)
{
    return idx < t->count ? t->ent[idx].name : NULL;
}

size_t typetab_name_len(const typetab *t, unsigned idx)
{
    return idx < t->count ? t->ent[idx].len : 0;
}

unsigned typetab_count(const typetab *t)
{
    return t->count;
}

unsigned typetab_capacity(const typetab *t)
{
    return t->max_types + 1;
}

uint64_t typetab_untracked(const typetab *t)
{
    return t->untracked;
}
