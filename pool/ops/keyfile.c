/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * keyfile.c - the API keys file, parsed into plain data (see keyfile.h).
 *
 * A line is parsed with cJSON (bounded: at most KEYFILE_LINE_MAX bytes),
 * each member checked by name; the whole file is read with one bounded
 * read loop into memory, then split into lines, so a file that changes
 * while it is read is either whole or refused.  Duplicates (id or hash)
 * are found with a sort at the end.  Owns only what it returns.  Never
 * logs, never touches the server: it runs on apikey.c's reader thread.
 */
#include "keyfile.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_safefile.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static keyfile_line bad(char *err, const char *fmt, ...) AP_PRINTF(2, 3);

static keyfile_line bad(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, KEYFILE_ERR_MAX, fmt, ap);
    va_end(ap);
    return KEYFILE_LINE_BAD;
}

static int id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A limit: an integer in [0, max]. */
static keyfile_line take_limit(const cJSON *v, uint64_t max, uint64_t *out, char *err)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble > (double)max)
        return bad(err, "%s must be an integer from 0 (no limit) to %llu", v->string, (unsigned long long)max);
    *out = (uint64_t)v->valuedouble;
    return KEYFILE_LINE_KEY;
}

static keyfile_line take_id(const cJSON *v, keyfile_entry *e, char *err)
{
    if (!cJSON_IsString(v))
        return bad(err, "id must be a string");
    size_t n = strlen(v->valuestring);
    if (n == 0 || n > KEYFILE_ID_MAX)
        return bad(err, "id must be 1 to %d bytes long", KEYFILE_ID_MAX);
    for (size_t i = 0; i < n; i++)
        if (!id_char((unsigned char)v->valuestring[i]))
            return bad(err, "id may hold only A-Z a-z 0-9 . _ -");
    if (strcmp(v->valuestring, "none") == 0 || strcmp(v->valuestring, "other") == 0)
        return bad(err, "id \"%s\" is reserved (usage rows use it)", v->valuestring);
    memcpy(e->id, v->valuestring, n + 1);
    return KEYFILE_LINE_KEY;
}

static keyfile_line take_hash(const cJSON *v, keyfile_entry *e, char *err)
{
    if (!cJSON_IsString(v) || strlen(v->valuestring) != 64)
        return bad(err, "sha256 must be the secret's SHA-256 as 64 hex digits");
    for (int i = 0; i < 32; i++) {
        int hi = hex_val((unsigned char)v->valuestring[2 * i]), lo = hex_val((unsigned char)v->valuestring[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return bad(err, "sha256 must be the secret's SHA-256 as 64 hex digits");
        e->sha256[i] = (unsigned char)(hi << 4 | lo);
    }
    return KEYFILE_LINE_KEY;
}

static keyfile_line take_pools(const cJSON *v, keyfile_entry *e, char *err)
{
    if (cJSON_IsString(v) && strcmp(v->valuestring, "*") == 0) {
        e->all_pools = 1;
        return KEYFILE_LINE_KEY;
    }
    if (!cJSON_IsArray(v))
        return bad(err, "pools must be a list of pool names, or \"*\" for every pool");
    int n = cJSON_GetArraySize(v);
    if (n > KEYFILE_POOLS_MAX)
        return bad(err, "pools names more than %d pools", KEYFILE_POOLS_MAX);
    if (n > 0)
        e->pools = ap_calloc((size_t)n, sizeof(*e->pools));
    const cJSON *p;
    cJSON_ArrayForEach(p, v)
    {
        if (!cJSON_IsString(p) || p->valuestring[0] == '\0' || strlen(p->valuestring) > KEYFILE_POOL_MAX)
            return bad(err, "pools must hold pool names (strings of 1 to %d bytes)", KEYFILE_POOL_MAX);
        memcpy(e->pools[e->npools++], p->valuestring, strlen(p->valuestring) + 1);
    }
    return KEYFILE_LINE_KEY;
}

/* The members of a parsed line, each checked. */
static keyfile_line take_members(const cJSON *o, keyfile_entry *e, char *err)
{
    int seen_id = 0, seen_hash = 0, seen_pools = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, o)
    {
        keyfile_line r;
        uint64_t x = 0;
        const char *k = v->string;
        if (strcmp(k, "id") == 0) {
            r = seen_id++ ? bad(err, "id given twice") : take_id(v, e, err);
        } else if (strcmp(k, "sha256") == 0) {
            r = seen_hash++ ? bad(err, "sha256 given twice") : take_hash(v, e, err);
        } else if (strcmp(k, "pools") == 0) {
            r = seen_pools++ ? bad(err, "pools given twice") : take_pools(v, e, err);
        } else if (strcmp(k, "maxInFlight") == 0) {
            r = take_limit(v, KEYFILE_MAX_INFLIGHT, &x, err);
            e->max_inflight = (uint32_t)x;
        } else if (strcmp(k, "ratePerMinute") == 0) {
            r = take_limit(v, 1000000000u, &e->rate_per_minute, err);
        } else if (strcmp(k, "tokensPerMinute") == 0) {
            r = take_limit(v, 1000000000u, &e->tokens_per_minute, err);
        } else {
            char name[48];
            size_t n = strlen(k);
            for (size_t i = 0; i < n && i < sizeof(name) - 1; i++)
                name[i] = id_char((unsigned char)k[i]) ? k[i] : '?';
            name[n < sizeof(name) - 1 ? n : sizeof(name) - 1] = '\0';
            r = bad(err, "unknown member \"%s\" (the members are id, sha256, pools, maxInFlight, ratePerMinute, "
                         "tokensPerMinute)", name);
        }
        if (r != KEYFILE_LINE_KEY)
            return r;
    }
    if (!seen_id)
        return bad(err, "id is missing");
    if (!seen_hash)
        return bad(err, "sha256 is missing");
    if (!seen_pools)
        return bad(err, "pools is missing (a list of pool names, or \"*\")");
    return KEYFILE_LINE_KEY;
}

keyfile_line keyfile_parse_line(const char *line, size_t len, keyfile_entry *e, char *err)
{
    memset(e, 0, sizeof(*e));
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == len || line[i] == '#')
        return KEYFILE_LINE_SKIP;
    if (len > KEYFILE_LINE_MAX)
        return bad(err, "line longer than %d bytes", KEYFILE_LINE_MAX);
    if (memchr(line, '\0', len))
        return bad(err, "a NUL byte in the line");
    cJSON *o = cJSON_ParseWithLength(line, len);
    if (o == NULL)
        return bad(err, "not JSON");
    keyfile_line r = cJSON_IsObject(o) ? take_members(o, e, err) : bad(err, "not a JSON object");
    cJSON_Delete(o);
    if (r != KEYFILE_LINE_KEY)
        keyfile_entry_free(e);
    return r;
}

void keyfile_entry_free(keyfile_entry *e)
{
    ap_free(e->pools);
    e->pools = NULL;
    e->npools = 0;
}

void keyfile_set_free(keyfile_set *s)
{
    for (unsigned i = 0; i < s->n; i++)
        keyfile_entry_free(&s->keys[i]);
    ap_free(s->keys);
    s->keys = NULL;
    s->n = 0;
}

/* ---- the file ----------------------------------------------------------- */

/* Reads fd whole (at most KEYFILE_MAX_BYTES) into *buf, NUL-terminated. */
static int read_all(int fd, const char *path, char **buf, size_t *len, char *err)
{
    size_t cap = 4096, n = 0;
    char *b = ap_malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= KEYFILE_MAX_BYTES) {
                ap_free(b);
                snprintf(err, KEYFILE_ERR_MAX, "%s: larger than %u bytes", path, KEYFILE_MAX_BYTES);
                return AP_ERR;
            }
            cap *= 2;
            b = ap_realloc(b, cap + 1);
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, KEYFILE_ERR_MAX, "read(%s): %s", path, strerror(errno));
            ap_free(b);
            return AP_ERR;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return AP_OK;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const keyfile_entry *)a)->id, ((const keyfile_entry *)b)->id);
}

static int by_hash(const void *a, const void *b)
{
    return memcmp(((const keyfile_entry *)a)->sha256, ((const keyfile_entry *)b)->sha256, 32);
}

/* Two keys with one id or one hash: AP_ERR with err set. */
static int find_duplicates(keyfile_set *s, const char *path, char *err)
{
    if (s->n < 2)
        return AP_OK;
    qsort(s->keys, s->n, sizeof(*s->keys), by_hash);
    for (unsigned i = 1; i < s->n; i++)
        if (by_hash(&s->keys[i - 1], &s->keys[i]) == 0) {
            snprintf(err, KEYFILE_ERR_MAX, "%s: keys %s and %s have the same secret hash", path, s->keys[i - 1].id,
                     s->keys[i].id);
            return AP_ERR;
        }
    qsort(s->keys, s->n, sizeof(*s->keys), by_id);
    for (unsigned i = 1; i < s->n; i++)
        if (by_id(&s->keys[i - 1], &s->keys[i]) == 0) {
            snprintf(err, KEYFILE_ERR_MAX, "%s: key id %s is given twice", path, s->keys[i].id);
            return AP_ERR;
        }
    return AP_OK;
}

static int parse_all(const char *path, const char *b, size_t len, keyfile_set *s, char *err)
{
    unsigned lineno = 0, cap = 0;
    size_t at = 0;
    while (at < len) {
        const char *nl = memchr(b + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (b + at)) : len - at;
        keyfile_entry e;
        char why[KEYFILE_ERR_MAX];
        lineno++;
        keyfile_line r = keyfile_parse_line(b + at, n, &e, why);
        at += n + 1;
        if (r == KEYFILE_LINE_SKIP)
            continue;
        if (r == KEYFILE_LINE_BAD) {
            snprintf(err, KEYFILE_ERR_MAX, "%.96s:%u: %.140s", path, lineno, why);
            return AP_ERR;
        }
        if (s->n == KEYFILE_MAX_KEYS) {
            keyfile_entry_free(&e);
            snprintf(err, KEYFILE_ERR_MAX, "%s:%u: more than %d keys", path, lineno, KEYFILE_MAX_KEYS);
            return AP_ERR;
        }
        if (s->n == cap) {
            cap = cap ? cap * 2 : 16;
            s->keys = ap_realloc(s->keys, (size_t)cap * sizeof(*s->keys));
        }
        s->keys[s->n++] = e;
    }
    return find_duplicates(s, path, err);
}

int keyfile_load(const char *path, keyfile_set *out, char *err)
{
    char why[KEYFILE_ERR_MAX];
    struct stat st;
    out->keys = NULL;
    out->n = 0;
    int fd = ap_safefile_open(path, O_RDONLY, 0, AP_SAFEFILE_NOBODY_ELSE, why, sizeof(why));
    if (fd < 0) {
        snprintf(err, KEYFILE_ERR_MAX, "%s", why);
        return AP_ERR;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, KEYFILE_ERR_MAX, "fstat(%s): %s", path, strerror(errno));
        close(fd);
        return AP_ERR;
    }
    if (st.st_mode & S_IROTH) {
        snprintf(err, KEYFILE_ERR_MAX, "%s: readable by others (mode %03o): refused; chmod o-r it",
                 path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return AP_ERR;
    }
    char *b;
    size_t len;
    int rc = read_all(fd, path, &b, &len, err);
    close(fd);
    if (rc != AP_OK)
        return AP_ERR;
    rc = parse_all(path, b, len, out, err);
    ap_free(b);
    if (rc != AP_OK)
        keyfile_set_free(out);
    return rc;
}
