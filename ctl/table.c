/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * table.c - aligned plain-text tables (see table.h).
 *
 * Widths are computed at print time from the cells, so rows can be added
 * in any order; the grid grows by doubling.
 */
#include "table.h"
#include "ap_alloc.h"

#include <string.h>

void table_init(table *t, size_t ncols)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols ? ncols : 1;
}

void table_add_row(table *t, char **row)
{
    if (t->nrows == t->arows) {
        t->arows = t->arows ? t->arows * 2 : 16;
        t->cells = ap_realloc(t->cells, t->arows * t->ncols * sizeof(char *));
    }
    memcpy(t->cells + t->nrows * t->ncols, row, t->ncols * sizeof(char *));
    t->nrows++;
}

void table_add_pair(table *t, const char *a, const char *b)
{
    char *row[2] = {ap_strdup(a), ap_strdup(b)};
    table_add_row(t, row);
}

size_t table_width(const char *s)
{
    size_t w = 0;
    for (; s && *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

void table_print(const table *t, FILE *out, const char *indent)
{
    size_t *width = ap_calloc(t->ncols, sizeof(size_t));
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t w = table_width(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        char *const *row = t->cells + r * t->ncols;
        size_t last = t->ncols; /* the last non-empty cell ends the line */
        while (last > 0 && (row[last - 1] == NULL || row[last - 1][0] == '\0'))
            last--;
        fputs(indent ? indent : "", out);
        for (size_t c = 0; c < last; c++) {
            const char *cell = row[c] ? row[c] : "";
            fputs(cell, out);
            if (c + 1 < last)
                fprintf(out, "%*s", (int)(width[c] - table_width(cell) + 2), "");
        }
        fputc('\n', out);
    }
    ap_free(width);
}

void table_free(table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        ap_free(t->cells[i]);
    ap_free(t->cells);
    table_init(t, t->ncols);
}
