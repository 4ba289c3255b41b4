/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sline.c - answer, chunk or heartbeat (see sline.h).
 *
 * "ok" is looked for first: every answer has it (agentpoold writes it
 * right after "id"), so an answer costs one lookup, as before streams.
 * Only a line without it is asked for "chunk" and "heartbeat".  The
 * start of an over-long line cannot be parsed to its end (its chunk
 * value is cut), so there the members' order is read instead: "id"
 * parsed whole, then the name "chunk" parsed as a string.  (Heartbeat
 * lines are a few bytes: never that long.)
 */
#include "sline.h"
#include "ap_common.h"

#include <cJSON.h>
#include <string.h>

/* -1: no top-level "ok"; else 1 when it is true, 0 when not. */
static int sline_ok(jspan line)
{
    jspan v;
    cJSON *ok;
    if (jspan_member(line, "ok", &v, &ok) != AP_OK)
        return -1;
    int verdict = cJSON_IsTrue(ok);
    cJSON_Delete(ok);
    return verdict;
}

sline_kind sline_classify(const char *p, size_t n, jspan *chunk)
{
    jspan line = {p, n}, id, v;
    cJSON *hb;
    if (chunk) {
        chunk->p = NULL;
        chunk->len = 0;
    }
    int ok = sline_ok(line);
    if (ok >= 0)
        return ok ? SLINE_ANSWER_OK : SLINE_ANSWER_FAILED;
    if (jspan_member(line, "id", &id, NULL) != AP_OK)
        return SLINE_ANSWER_FAILED;
    if (jspan_member(line, "chunk", &v, NULL) == AP_OK) {
        if (chunk)
            *chunk = v;
        return SLINE_CHUNK;
    }
    if (jspan_member(line, "heartbeat", &v, &hb) == AP_OK) {
        int is_hb = cJSON_IsTrue(hb);
        cJSON_Delete(hb);
        if (is_hb)
            return SLINE_HEARTBEAT;
    }
    return SLINE_ANSWER_FAILED;
}

/* Index of the first byte at or after i in s that is not white space. */
static size_t sline_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

sline_kind sline_classify_start(const char *p, size_t n)
{
    jspan line = {p, n}, id, name;
    cJSON *key;
    int ok = sline_ok(line);
    if (ok >= 0)
        return ok ? SLINE_ANSWER_OK : SLINE_ANSWER_FAILED;
    /* "id" must be the first member, and "chunk" the second. */
    size_t i = sline_ws(p, n, 0);
    if (i >= n || p[i] != '{')
        return SLINE_ANSWER_FAILED;
    if (jspan_member(line, "id", &id, NULL) != AP_OK)
        return SLINE_ANSWER_FAILED;
    jspan first = {p + i + 1, n - i - 1}, k;
    if (jspan_value(first, &k, &key) != AP_OK)
        return SLINE_ANSWER_FAILED;
    int id_first = cJSON_IsString(key) && strcmp(key->valuestring, "id") == 0;
    cJSON_Delete(key);
    if (!id_first)
        return SLINE_ANSWER_FAILED;
    i = sline_ws(p, n, (size_t)(id.p + id.len - p));
    if (i >= n || p[i] != ',')
        return SLINE_ANSWER_FAILED;
    jspan rest = {p + i + 1, n - i - 1};
    if (jspan_value(rest, &name, &key) != AP_OK)
        return SLINE_ANSWER_FAILED;
    int is_chunk = cJSON_IsString(key) && strcmp(key->valuestring, "chunk") == 0;
    cJSON_Delete(key);
    i = sline_ws(p, n, (size_t)(name.p + name.len - p));
    return is_chunk && i < n && p[i] == ':' ? SLINE_CHUNK : SLINE_ANSWER_FAILED;
}
