/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * reqline.c - request lines for agentpoold (see reqline.h).
 *
 * Parse at the edge: DATA is parsed once with cJSON to prove it is one
 * JSON value and to locate the first error, and the parse tree is thrown
 * away; what goes on the wire is the user's own bytes, minified by
 * cJSON.  cJSON's parser tolerates raw control characters (it takes any
 * byte below 0x21 outside strings for white space, and copies those
 * inside strings), which JSON forbids and agentpoold refuses, and a raw
 * newline would split the line: after minifying, only they can be left
 * below 0x20, so one look finds them.
 */
#include "reqline.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

/* Copies up to 24 bytes of s[from, to) into buf, control bytes as '?'. */
static void reqline_excerpt(const char *s, size_t from, size_t to, char *buf, size_t cap)
{
    size_t o = 0;
    if (to > from + 24)
        from = to - 24;
    for (size_t i = from; i < to && s[i] && o + 1 < cap; i++)
        buf[o++] = ((unsigned char)s[i] < 0x20) ? '?' : s[i];
    buf[o] = '\0';
}

char *reqline_build(long long id, const char *type, const char *data_json, size_t *len,
                    char *err, size_t errlen)
{
    return reqline_build_opts(id, type, data_json, NULL, 0, len, err, errlen);
}

char *reqline_build_opts(long long id, const char *type, const char *data_json, const char *pool,
                         int stream, size_t *len, char *err, size_t errlen)
{
    char *data = NULL, *printed = NULL, *line = NULL;
    cJSON *tmp = NULL;

    if (data_json == NULL)
        data_json = "null";
    const char *end = NULL;
    tmp = cJSON_ParseWithOpts(data_json, &end, 1);
    if (tmp == NULL) {
        /* cJSON's error position is approximate: show what surrounds it. */
        size_t dl = strlen(data_json);
        size_t pos = end ? (size_t)(end - data_json) : 0;
        char before[32], after[32];
        if (pos > dl)
            pos = dl;
        reqline_excerpt(data_json, 0, pos, before, sizeof(before));
        reqline_excerpt(data_json, pos, pos + 24 < dl ? pos + 24 : dl, after, sizeof(after));
        if (data_json[strspn(data_json, " \t\r\n")] == '\0')
            snprintf(err, errlen, "invalid DATA JSON: it is empty (use null, {} or a value)");
        else if (after[0])
            snprintf(err, errlen, "invalid DATA JSON at byte %zu: after '%s', before '%s'", pos,
                     before, after);
        else
            snprintf(err, errlen, "invalid DATA JSON at byte %zu (the end): after '%s'", pos, before);
        goto err;
    }
    cJSON_Delete(tmp);
    tmp = NULL;

    data = ap_strdup(data_json);
    cJSON_Minify(data);
    for (const char *c = data; *c; c++) {
        if ((unsigned char)*c < 0x20) {
            snprintf(err, errlen,
                     "invalid DATA JSON: raw control character 0x%02x (inside a string write it "
                     "as \\u%04x)", (unsigned char)*c, (unsigned char)*c);
            goto err;
        }
    }
    tmp = cJSON_CreateObject();
    if (tmp == NULL || cJSON_AddNumberToObject(tmp, "id", (double)id) == NULL ||
        cJSON_AddStringToObject(tmp, "type", type) == NULL ||
        cJSON_AddRawToObject(tmp, "data", data) == NULL ||
        (pool && cJSON_AddStringToObject(tmp, "pool", pool) == NULL) ||
        (stream && cJSON_AddTrueToObject(tmp, "stream") == NULL) ||
        (printed = cJSON_PrintUnformatted(tmp)) == NULL) {
        snprintf(err, errlen, "out of memory building the request line");
        goto err;
    }
    size_t n = strlen(printed);
    line = ap_malloc(n + 2);
    memcpy(line, printed, n);
    line[n++] = '\n';
    line[n] = '\0';
    *len = n;
    ap_free(data);
    cJSON_free(printed);
    cJSON_Delete(tmp);
    return line;

err:
    ap_free(line);
    ap_free(data);
    if (printed)
        cJSON_free(printed);
    cJSON_Delete(tmp);
    return NULL;
}
