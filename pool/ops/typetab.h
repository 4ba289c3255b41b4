/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * typetab.h - bounded table from message type to a small dense index.
 *
 * Per-type counters and circuit breakers are plain arrays indexed by what
 * this table returns.  Index 0 (TYPETAB_OTHER, named "other") always
 * exists; tracked types get 1..max_types in order of first sight.  Once
 * max_types types are tracked, every further type maps to index 0, so a
 * client that invents types cannot grow the master's memory: the whole
 * table is sized by max_types at creation and never grows.  A type spelt
 * exactly "other" maps to index 0 too, so a name shown in stats stands
 * for one index only.
 *
 * Keys are the type's bytes (as unescaped by the caller, at most
 * AP_MAX_TYPE_LEN; longer ones map to "other" and are never tracked).
 * Lookup is on the per-message hot path: open addressing with linear
 * probing over a slot array kept at most half full, no deletion, and no
 * allocation once a type is known (a new type costs one copy of its
 * name).  Pure data structure: no libevent, no logging, no clock.
 */
#ifndef AP_TYPETAB_H
#define AP_TYPETAB_H

#include <stddef.h>
#include <stdint.h>

#define TYPETAB_OTHER 0u
#define TYPETAB_OTHER_NAME "other"
/* Most types one table may track (a sane upper bound for maxTrackedTypes). */
#define TYPETAB_MAX_TYPES 4096u

typedef struct typetab typetab;

/* A table tracking up to max_types types (0 is allowed: everything is
 * "other").  NULL when max_types > TYPETAB_MAX_TYPES. */
typetab *typetab_new(unsigned max_types);
/* Frees t and its names; NULL is harmless. */
void typetab_free(typetab *t);

/* The index of type[0..len): its tracked index, adding it when there is
 * room, else TYPETAB_OTHER (counted in typetab_untracked()).  Never
 * fails; allocates only when it adds a type. */
unsigned typetab_index(typetab *t, const char *type, size_t len);
/* Like typetab_index() but never adds and counts nothing: the index of a
 * known type, TYPETAB_OTHER otherwise. */
unsigned typetab_find(const typetab *t, const char *type, size_t len);

/* The NUL-terminated name of idx ("other" for 0), NULL when idx >=
 * typetab_count().  Valid until typetab_free().  A type containing a NUL
 * byte shows only up to it here; typetab_name_len() gives its length. */
const char *typetab_name(const typetab *t, unsigned idx);
size_t typetab_name_len(const typetab *t, unsigned idx);
/* Indexes in use, "other" included: 1 + tracked types. */
unsigned typetab_count(const typetab *t);
/* Largest possible typetab_count() (max_types + 1): the length to give
 * arrays indexed by this table. */
unsigned typetab_capacity(const typetab *t);
/* Lookups answered TYPETAB_OTHER because the table was full or the type
 * too long (a type spelt "other" is not counted). */
uint64_t typetab_untracked(const typetab *t);

#endif
