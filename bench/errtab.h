/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * errtab.h - error answers counted by code ("agent_error", "http_5xx",
 * "connection_closed"), in a fixed table: the first ERRTAB_MAX distinct
 * codes get their own row, later ones are counted under "other", so a
 * server answering with random codes cannot grow the benchmark's memory.
 * Codes longer than ERRTAB_NAME_MAX - 1 bytes are truncated.
 */
#ifndef BENCH_ERRTAB_H
#define BENCH_ERRTAB_H

#include <stddef.h>
#include <stdint.h>

#define ERRTAB_MAX 32
#define ERRTAB_NAME_MAX 64

typedef struct {
    char name[ERRTAB_NAME_MAX];
    uint64_t count;
} errtab_row;

typedef struct {
    errtab_row rows[ERRTAB_MAX];
    unsigned n;
    uint64_t other; /* codes that found no free row */
} errtab;

/* Counts one error with code name[0..len) (not terminated). */
void errtab_add(errtab *t, const char *name, size_t len);
/* The count for a code (0 when never seen). */
uint64_t errtab_get(const errtab *t, const char *name);

#endif
