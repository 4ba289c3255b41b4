/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * errtab.c - error counts by code (see errtab.h).  Only runs for error
 * answers, so a linear search over at most ERRTAB_MAX rows is enough.
 */
#include "errtab.h"

#include <string.h>

void errtab_add(errtab *t, const char *name, size_t len)
{
    if (len >= ERRTAB_NAME_MAX)
        len = ERRTAB_NAME_MAX - 1;
    for (unsigned i = 0; i < t->n; i++) {
        if (strlen(t->rows[i].name) == len && memcmp(t->rows[i].name, name, len) == 0) {
            t->rows[i].count++;
            return;
        }
    }
    if (t->n == ERRTAB_MAX) {
        t->other++;
        return;
    }
    errtab_row *r = &t->rows[t->n++];
    memcpy(r->name, name, len);
    r->name[len] = '\0';
    r->count = 1;
}

uint64_t errtab_get(const errtab *t, const char *name)
{
    for (unsigned i = 0; i < t->n; i++)
        if (strcmp(t->rows[i].name, name) == 0)
            return t->rows[i].count;
    return 0;
}
