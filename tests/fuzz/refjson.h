/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * refjson.h - the fuzz targets' reference walker over text already known
 * to be valid JSON (cJSON said so): deliberately naive, so that the fast
 * scanners under test are checked against something obviously right.
 * refjson_ws skips white space, refjson_skip one whole value.  Header-only
 * (static inline): each target is one clang command line.
 */
#ifndef AP_FUZZ_REFJSON_H
#define AP_FUZZ_REFJSON_H

#include <stddef.h>
#include <string.h>

static inline size_t refjson_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* The end of the valid value at s[i]. */
static inline size_t refjson_skip(const char *s, size_t n, size_t i)
{
    if (s[i] == '"') {
        for (i++; s[i] != '"'; i++)
            if (s[i] == '\\')
                i++;
        return i + 1;
    }
    if (s[i] == '{' || s[i] == '[') {
        char close = s[i] == '{' ? '}' : ']';
        i = refjson_ws(s, n, i + 1);
        while (s[i] != close) {
            if (close == '}') {
                i = refjson_ws(s, n, refjson_skip(s, n, i)); /* the name */
                i = refjson_ws(s, n, i + 1);                 /* the ':' */
            }
            i = refjson_ws(s, n, refjson_skip(s, n, i));
            if (s[i] == ',')
                i = refjson_ws(s, n, i + 1);
        }
        return i + 1;
    }
    while (i < n && s[i] != '\0' && strchr("0123456789+-.eEtrufalsn", s[i]))
        i++;
    return i;
}

#endif
