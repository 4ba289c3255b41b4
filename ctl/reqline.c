/*
 * reqline.c - request lines for agentpoold (see reqline.h).
 *
 * Parse at the edge: DATA is parsed once with cJSON to prove it is one
 * JSON value and to locate the first error, and the parse tree is thrown
 * away; what goes on the wire is the user's own bytes, compacted.  TYPE
 * is escaped by cJSON, the only place we let cJSON print.
 */
#include "reqline.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

size_t reqline_compact(const char *src, char *dst, char *err, size_t errlen)
{
    size_t o = 0;
    int in_str = 0, esc = 0;

    for (size_t i = 0; src[i]; i++) {
        unsigned char c = (unsigned char)src[i];
        if (in_str) {
            if (c < 0x20) {
                snprintf(err, errlen,
                         "invalid DATA JSON at byte %zu: raw control character 0x%02x inside a string "
                         "(write it as \\u%04x)", i, c, c);
                return (size_t)-1;
            }
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
            dst[o++] = (char)c;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        } else {
            if (c == '"')
                in_str = 1;
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
    return o;
}

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
    char *data = NULL, *type_esc = NULL, *line = NULL;
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

    data = ap_malloc(strlen(data_json) + 1);
    size_t dlen = reqline_compact(data_json, data, err, errlen);
    if (dlen == (size_t)-1)
        goto err;

    tmp = cJSON_CreateString(type);
    type_esc = tmp ? cJSON_PrintUnformatted(tmp) : NULL;
    if (type_esc == NULL) {
        snprintf(err, errlen, "out of memory escaping TYPE");
        goto err;
    }
    size_t cap = dlen + strlen(type_esc) + 64;
    line = ap_malloc(cap);
    int n = snprintf(line, cap, "{\"id\":%lld,\"type\":%s,\"data\":%s}\n", id, type_esc, data);
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errlen, "internal error formatting the request line");
        goto err;
    }
    *len = (size_t)n;
    ap_free(data);
    cJSON_free(type_esc);
    cJSON_Delete(tmp);
    return line;

err:
    ap_free(line);
    ap_free(data);
    if (type_esc)
        cJSON_free(type_esc);
    cJSON_Delete(tmp);
    return NULL;
}
