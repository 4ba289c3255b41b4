/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * table.h - aligned plain-text tables for agentpoolctl's human output.
 *
 * A table owns a grid of strings, given row by row, and prints it with
 * every column starting at the same display column (UTF-8 aware: width
 * counts characters, not bytes), two spaces between columns and no
 * trailing blanks.  It knows nothing about JSON; render.c fills it.
 */
#ifndef CTL_TABLE_H
#define CTL_TABLE_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    size_t ncols;
    size_t nrows;
    size_t arows;  /* rows allocated */
    char **cells;  /* nrows * ncols, row-major, owned; NULL prints as "" */
} table;

/* Prepares an empty table of ncols columns (ncols >= 1). */
void table_init(table *t, size_t ncols);
/* Appends a row, taking ownership of the ncols strings in row (each
 * allocated with ap_malloc, or NULL). Never fails (allocation aborts). */
void table_add_row(table *t, char **row);
/* Appends a two-column row of copies of a and b. */
void table_add_pair(table *t, const char *a, const char *b);
/* Prints the table to out, each line starting with indent. */
void table_print(const table *t, FILE *out, const char *indent);
/* Frees every cell; t can be initialised again. */
void table_free(table *t);

/* Display width of a UTF-8 string: the number of characters in it. */
size_t table_width(const char *s);

#endif
