/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_scan.c - libFuzzer target for the request scanner (pool/path/scan.c).
 *
 * Each input is one request line.  It is scanned at two depth limits and
 * checked three ways: the invariants the master relies on (spans inside
 * the line, messages printable and without '"' or '\', error_pos in
 * range); self-consistency (the id and data spans re-validate with
 * scan_json_value, which agrees with scan_request on the whole line);
 * and a differential check against ref_*, a deliberately naive recursive
 * parser written from RFC 8259 and the request rules, that must reach
 * the same status, the same request-level message, id, type, data,
 * retry, stream and timeout.  Any disagreement aborts.  Also, with
 * scan_request_given, that members given beside the line are not read.
 */
#include "scan.h"
#include "ap_common.h"
#include "ap_defaults.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_scan: check failed at line %d: %s\n", __LINE__,   \
                    #cond);                                                         \
            abort();                                                                \
        }                                                                           \
    } while (0)

/* ---- the reference: naive, recursive, obviously RFC 8259 --------------- */

typedef struct {
    const uint8_t *s;
    size_t n, i;
    unsigned max_depth;
} ref;

static int ref_at(const ref *r, uint8_t c)
{
    return r->i < r->n && r->s[r->i] == c;
}

static void ref_ws(ref *r)
{
    while (r->i < r->n && (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' ||
                           r->s[r->i] == '\r'))
        r->i++;
}

/* Decodes one UTF-8 character by computing its code point. */
static int ref_utf8(ref *r, uint32_t *cp)
{
    uint8_t c = r->s[r->i];
    int len;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        r->i++;
        return 1;
    }
    if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (int k = 1; k < len; k++) {
        if (r->i + (size_t)k >= r->n || (r->s[r->i + (size_t)k] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (r->s[r->i + (size_t)k] & 0x3F);
    }
    if (v < min || (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF)
        return 0;
    r->i += (size_t)len;
    *cp = v;
    return 1;
}

static int ref_hex4(ref *r, uint32_t *u)
{
    uint32_t v = 0;
    if (r->n - r->i < 4)
        return 0;
    for (int k = 0; k < 4; k++) {
        uint8_t c = r->s[r->i++];
        int h = c >= '0' && c <= '9' ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (h < 0)
            return 0;
        v = v * 16 + (uint32_t)h;
    }
    *u = v;
    return 1;
}

/* Appends cp as UTF-8 to out (cap bytes), counting what did not fit. */
static void ref_put(uint8_t *out, size_t cap, size_t *len, uint32_t cp)
{
    uint8_t b[4];
    size_t k;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp, k = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | cp >> 6), b[1] = (uint8_t)(0x80 | (cp & 0x3F)), k = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | cp >> 12), b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F)), k = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | cp >> 18), b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (uint8_t)(0x80 | (cp & 0x3F)), k = 4;
    }
    for (size_t j = 0; j < k; j++, (*len)++)
        if (out && *len < cap)
            out[*len] = b[j];
}

/* A string at r->i; its unescaped text goes to out (first cap bytes),
 * *len counts all of it. */
static int ref_string(ref *r, uint8_t *out, size_t cap, size_t *len)
{
    *len = 0;
    if (!ref_at(r, '"'))
        return 0;
    r->i++;
    for (;;) {
        uint32_t cp;
        if (r->i >= r->n)
            return 0;
        uint8_t c = r->s[r->i];
        if (c == '"') {
            r->i++;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c != '\\') {
            if (!ref_utf8(r, &cp))
                return 0;
            ref_put(out, cap, len, cp);
            continue;
        }
        if (r->i + 1 >= r->n)
            return 0;
        c = r->s[r->i + 1];
        r->i += 2;
        switch (c) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = 8; break;
        case 'f': cp = 12; break;
        case 'n': cp = 10; break;
        case 'r': cp = 13; break;
        case 't': cp = 9; break;
        case 'u':
            if (!ref_hex4(r, &cp))
                return 0;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return 0;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (!(r->n - r->i >= 2 && r->s[r->i] == '\\' && r->s[r->i + 1] == 'u'))
                    return 0;
                r->i += 2;
                if (!ref_hex4(r, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return 0;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            break;
        default:
            return 0;
        }
        ref_put(out, cap, len, cp);
    }
}

static int ref_digits(ref *r)
{
    size_t start = r->i;
    while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9')
        r->i++;
    return r->i > start;
}

static int ref_number_grammar(ref *r, int *is_int)
{
    *is_int = 1;
    if (ref_at(r, '-'))
        r->i++;
    if (ref_at(r, '0')) {
        r->i++;
        /* "01" is one bad number, not "0" then "1" (matters for the id echo) */
        if (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9')
            return 0;
    } else if (!(r->i < r->n && r->s[r->i] >= '1' && r->s[r->i] <= '9') || !ref_digits(r))
        return 0;
    if (ref_at(r, '.')) {
        *is_int = 0;
        r->i++;
        if (!ref_digits(r))
            return 0;
    }
    if (ref_at(r, 'e') || ref_at(r, 'E')) {
        *is_int = 0;
        r->i++;
        if (ref_at(r, '+') || ref_at(r, '-'))
            r->i++;
        if (!ref_digits(r))
            return 0;
    }
    return 1;
}

/* A number with a fraction or an exponent must be finite as a double
 * (strtod on a copy: what the worker's Python would make of it). */
static int ref_number(ref *r, int *is_int)
{
    size_t start = r->i;
    if (!ref_number_grammar(r, is_int))
        return 0;
    if (*is_int)
        return 1;
    char *copy = malloc(r->i - start + 1);
    CHECK(copy != NULL);
    memcpy(copy, r->s + start, r->i - start);
    copy[r->i - start] = '\0';
    double v = strtod(copy, NULL);
    free(copy);
    return v <= 1.7976931348623157e308 && v >= -1.7976931348623157e308;
}

static int ref_word(ref *r, const char *w)
{
    size_t k = strlen(w);
    if (r->n - r->i < k || memcmp(r->s + r->i, w, k) != 0)
        return 0;
    r->i += k;
    return 1;
}

/* One value at r->i (no leading whitespace); `open` containers enclose it. */
static int ref_value(ref *r, unsigned open, int *is_int)
{
    size_t len;
    *is_int = 0;
    if (r->i >= r->n)
        return 0;
    switch (r->s[r->i]) {
    case '{':
    case '[': {
        uint8_t close = r->s[r->i] == '{' ? '}' : ']';
        int dummy;
        if (open + 1 > r->max_depth)
            return 0;
        r->i++;
        ref_ws(r);
        if (ref_at(r, close)) {
            r->i++;
            return 1;
        }
        for (;;) {
            if (close == '}') {
                if (!ref_string(r, NULL, 0, &len))
                    return 0;
                ref_ws(r);
                if (!ref_at(r, ':'))
                    return 0;
                r->i++;
                ref_ws(r);
            }
            if (!ref_value(r, open + 1, &dummy))
                return 0;
            ref_ws(r);
            if (ref_at(r, close)) {
                r->i++;
                return 1;
            }
            if (!ref_at(r, ','))
                return 0;
            r->i++;
            ref_ws(r);
        }
    }
    case '"':
        return ref_string(r, NULL, 0, &len);
    case 't':
        return ref_word(r, "true");
    case 'f':
        return ref_word(r, "false");
    case 'n':
        return ref_word(r, "null");
    default:
        return ref_number(r, is_int);
    }
}

/* Whole buffer is one value (whitespace around allowed). */
static int ref_json(const uint8_t *s, size_t n, unsigned max_depth)
{
    ref r = {s, n, 0, max_depth};
    int is_int;
    ref_ws(&r);
    if (!ref_value(&r, 0, &is_int))
        return 0;
    ref_ws(&r);
    return r.i == n;
}

typedef struct {
    scan_status st;
    const char *msg; /* request-level message, or NULL */
    scan_id_kind id_kind;
    size_t id_off, id_len;
    uint8_t type[AP_MAX_TYPE_LEN + 1];
    size_t type_len;
    size_t data_off, data_len;
    int retry;
    int stream;
    int64_t timeout;
    uint8_t pool[SCAN_POOL_MAX + 1];
    size_t pool_len;
    int pool_given;
    uint8_t session[SCAN_SESSION_MAX + 1];
    size_t session_len;
    uint8_t idem[SCAN_IDEM_KEY_MAX + 1];
    size_t idem_len;
    uint8_t key[SCAN_KEY_MAX + 1];
    size_t key_len;
} ref_result;

/* The request rules, applied the obvious way: collect the last value of
 * each member, judge at the end. */
static void ref_request(const uint8_t *s, size_t n, unsigned max_depth, ref_result *o)
{
    ref r = {s, n, 0, max_depth};
    int seen_type = 0, type_bad = 0, type_long = 0, retry_bad = 0, stream_bad = 0, t_bad = 0, t_big = 0,
        id_bad = 0, pool_bad = 0, pool_long = 0, sess_bad = 0, sess_long = 0, sess_empty = 0, idem_bad = 0, idem_long = 0, key_bad = 0, key_long = 0, is_int;
    size_t v, klen;
    uint8_t key[16];

    memset(o, 0, sizeof *o);
    o->retry = -1;
    o->timeout = -1;
    ref_ws(&r);
    if (r.i == n) {
        o->st = SCAN_BLANK;
        return;
    }
    if (!ref_at(&r, '{')) {
        o->st = ref_value(&r, 0, &is_int) && (ref_ws(&r), r.i == n) ? SCAN_NOT_OBJECT
                                                                       : SCAN_BAD_JSON;
        return;
    }
    o->st = SCAN_BAD_JSON;
    if (max_depth < 1)
        return;
    r.i++;
    ref_ws(&r);
    if (ref_at(&r, '}')) {
        r.i++;
    } else {
        for (;;) {
            if (!ref_string(&r, key, sizeof key, &klen))
                return;
            ref_ws(&r);
            if (!ref_at(&r, ':'))
                return;
            r.i++;
            ref_ws(&r);
            v = r.i;
            if (!ref_value(&r, 1, &is_int))
                return;
            uint8_t c = s[v];
            int is_str = c == '"', is_num = c == '-' || (c >= '0' && c <= '9');
            if (klen == 2 && memcmp(key, "id", 2) == 0) {
                id_bad = !(is_str || (is_num && is_int));
                o->id_kind = id_bad ? SCAN_ID_NONE : is_str ? SCAN_ID_STRING : SCAN_ID_INT;
                o->id_off = id_bad ? 0 : v;
                o->id_len = id_bad ? 0 : r.i - v;
            } else if (klen == 4 && memcmp(key, "type", 4) == 0) {
                seen_type = 1;
                type_bad = !is_str;
                type_long = 0;
                if (is_str) {
                    ref t = {s, n, v, max_depth};
                    size_t tl;
                    ref_string(&t, o->type, AP_MAX_TYPE_LEN, &tl);
                    type_long = tl > AP_MAX_TYPE_LEN;
                    o->type_len = type_long ? 0 : tl;
                }
            } else if (klen == 4 && memcmp(key, "pool", 4) == 0) {
                o->pool_given = 1;
                pool_bad = !is_str;
                pool_long = 0;
                o->pool_len = 0;
                if (is_str) {
                    ref t = {s, n, v, max_depth};
                    size_t pl;
                    ref_string(&t, o->pool, SCAN_POOL_MAX, &pl);
                    pool_long = pl > SCAN_POOL_MAX;
                    o->pool_len = pool_long ? 0 : pl;
                }
            } else if (klen == 7 && memcmp(key, "session", 7) == 0) {
                sess_bad = !is_str;
                sess_long = sess_empty = 0;
                o->session_len = 0;
                if (is_str) {
                    ref t = {s, n, v, max_depth};
                    size_t sl;
                    ref_string(&t, o->session, SCAN_SESSION_MAX, &sl);
                    sess_long = sl > SCAN_SESSION_MAX;
                    sess_empty = sl == 0;
                    o->session_len = sess_long ? 0 : sl;
                }
            } else if (klen == 14 && memcmp(key, "idempotencyKey", 14) == 0) {
                idem_bad = !is_str;
                idem_long = 0;
                o->idem_len = 0;
                if (is_str) {
                    ref t = {s, n, v, max_depth};
                    size_t il;
                    ref_string(&t, o->idem, SCAN_IDEM_KEY_MAX, &il);
                    idem_long = il > SCAN_IDEM_KEY_MAX;
                    idem_bad = il == 0;
                    o->idem_len = idem_long ? 0 : il;
                }
            } else if (klen == 3 && memcmp(key, "key", 3) == 0) {
                key_bad = !is_str;
                key_long = 0;
                o->key_len = 0;
                if (is_str) {
                    ref t = {s, n, v, max_depth};
                    size_t kl;
                    ref_string(&t, o->key, SCAN_KEY_MAX, &kl);
                    key_long = kl > SCAN_KEY_MAX;
                    key_bad = kl == 0;
                    o->key_len = key_long ? 0 : kl;
                }
            } else if (klen == 4 && memcmp(key, "data", 4) == 0) {
                o->data_off = v;
                o->data_len = r.i - v;
            } else if (klen == 5 && memcmp(key, "retry", 5) == 0) {
                retry_bad = !(c == 't' || c == 'f');
                o->retry = c == 't';
            } else if (klen == 6 && memcmp(key, "stream", 6) == 0) {
                stream_bad = !(c == 't' || c == 'f');
                o->stream = c == 't';
            } else if (klen == 9 && memcmp(key, "timeoutMs", 9) == 0) {
                size_t len = r.i - v;
                /* a positive integer: no sign, not 0 */
                t_bad = !(is_num && is_int) || c == '-' || (len == 1 && s[v] == '0');
                t_big = 0;
                if (!t_bad) {
                    if (len > 19 || (len == 19 && memcmp(s + v, "9223372036854775807", 19) > 0))
                        t_big = 1;
                    else
                        for (size_t k = 0; k < len; k++)
                            o->timeout = (k ? o->timeout * 10 : 0) + (s[v + k] - '0');
                }
            }
            ref_ws(&r);
            if (ref_at(&r, ',')) {
                r.i++;
                ref_ws(&r);
                continue;
            }
            if (!ref_at(&r, '}'))
                return;
            r.i++;
            break;
        }
    }
    ref_ws(&r);
    if (r.i != n)
        return;
    o->st = SCAN_BAD_REQUEST;
    if (id_bad)
        o->msg = "id must be a string or an integer";
    else if (!seen_type)
        o->msg = "type is missing";
    else if (type_bad)
        o->msg = "type must be a string";
    else if (type_long)
        o->msg = "type longer than 256 bytes";
    else if (memchr(o->type, 0, o->type_len))
        o->msg = "type must not contain U+0000";
    else if (retry_bad)
        o->msg = "retry must be true or false";
    else if (stream_bad)
        o->msg = "stream must be true or false";
    else if (t_bad)
        o->msg = "timeoutMs must be a positive integer (milliseconds)";
    else if (t_big)
        o->msg = "timeoutMs is too large";
    else if (pool_bad)
        o->msg = "pool must be a string: the name of a pool";
    else if (memchr(o->pool, 0, o->pool_len))
        o->msg = "pool must not contain U+0000";
    else if (pool_long)
        o->msg = "pool longer than 64 bytes: no pool has such a name";
    else if (sess_bad)
        o->msg = "session must be a string: the key of a conversation";
    else if (sess_empty)
        o->msg = "session must not be empty";
    else if (memchr(o->session, 0, o->session_len))
        o->msg = "session must not contain U+0000";
    else if (sess_long)
        o->msg = "session longer than 256 bytes";
    else if (idem_bad)
        o->msg = "idempotencyKey must be a non-empty string";
    else if (memchr(o->idem, 0, o->idem_len))
        o->msg = "idempotencyKey must not contain U+0000";
    else if (idem_long)
        o->msg = "idempotencyKey longer than 256 bytes";
    else if (key_bad)
        o->msg = "key must be a non-empty string: an API key";
    else if (memchr(o->key, 0, o->key_len))
        o->msg = "key must not contain U+0000";
    else if (key_long)
        o->msg = "key longer than 256 bytes";
    else
        o->st = SCAN_OK;
}

/* ---- the checks -------------------------------------------------------- */

static void check_message(const char *msg, size_t pos, size_t size)
{
    size_t len = strnlen(msg, SCAN_ERROR_MAX);
    const char *at;
    CHECK(len > 0 && len < SCAN_ERROR_MAX);
    for (size_t i = 0; i < len; i++)
        CHECK(msg[i] >= 0x20 && msg[i] < 0x7f && msg[i] != '"' && msg[i] != '\\');
    CHECK(pos <= size);
    at = strstr(msg, "at byte ");
    if (at)
        CHECK(strtoull(at + 8, NULL, 10) == pos);
}

static void check_one(const uint8_t *data, size_t size, unsigned depth)
{
    const char *line = (const char *)data;
    scan_result res;
    ref_result want;
    char err[SCAN_ERROR_MAX];
    size_t err_pos = 0;
    scan_status st = scan_request(line, size, depth, &res);
    int whole = scan_json_value(line, size, depth, 0, err, &err_pos);

    /* invariants */
    CHECK(res.id.off <= size && res.id.len <= size - res.id.off);
    CHECK(res.data.off <= size && res.data.len <= size - res.data.off);
    if (st == SCAN_OK || st == SCAN_BLANK)
        CHECK(res.error[0] == '\0');
    else
        check_message(res.error, res.error_pos, size);
    if (whole != AP_OK)
        check_message(err, err_pos, size);

    /* scan_json_value agrees with scan_request about the whole line */
    if (st == SCAN_OK || st == SCAN_NOT_OBJECT || st == SCAN_BAD_REQUEST)
        CHECK(whole == AP_OK);
    else
        CHECK(whole == AP_ERR);
    if (whole == AP_OK) {
        int one = scan_json_value(line, size, depth, SCAN_ONE_LINE, NULL, NULL);
        CHECK((one == AP_OK) == (memchr(line, '\n', size) == NULL && memchr(line, '\r', size) == NULL));
    }

    /* the id span is a string or an integer, whatever the status */
    if (res.id_kind == SCAN_ID_STRING) {
        CHECK(res.id.len >= 2 && line[res.id.off] == '"');
        CHECK(scan_json_value(line + res.id.off, res.id.len, 0, 0, NULL, NULL) == AP_OK);
    } else if (res.id_kind == SCAN_ID_INT) {
        const char *p = line + res.id.off, *e = p + res.id.len;
        if (*p == '-')
            p++;
        CHECK(p < e && (*p != '0' || e - p == 1));
        for (; p < e; p++)
            CHECK(*p >= '0' && *p <= '9');
    } else {
        CHECK(res.id.len == 0);
    }
    if (st == SCAN_OK) {
        CHECK(res.type_len <= AP_MAX_TYPE_LEN && res.type[res.type_len] == '\0');
        CHECK(strlen(res.type) == res.type_len);
        if (res.data.len)
            CHECK(scan_json_value(line + res.data.off, res.data.len, depth ? depth - 1 : 0, 0, NULL,
                                  NULL) == AP_OK);
        CHECK(res.retry >= -1 && res.retry <= 1);
        CHECK(res.stream == 0 || res.stream == 1);
        CHECK(res.timeout_ms == -1 || res.timeout_ms >= 1);
    }

    /* the reference */
    CHECK(ref_json(data, size, depth) == (whole == AP_OK));
    ref_request(data, size, depth, &want);
    if (want.st != st) {
        fprintf(stderr, "fuzz_scan: status %s, reference %s (%s)\n", scan_status_name(st),
                scan_status_name(want.st), res.error);
        abort();
    }
    if (st == SCAN_BAD_REQUEST)
        CHECK(strcmp(res.error, want.msg) == 0);
    if (st != SCAN_BLANK) { /* the id to echo, even after a syntax error */
        CHECK(res.id_kind == want.id_kind);
        CHECK(res.id.off == want.id_off && res.id.len == want.id_len);
    }
    if (st == SCAN_OK) {
        CHECK(res.type_len == want.type_len && memcmp(res.type, want.type, want.type_len) == 0);
        CHECK(res.data.off == want.data_off && res.data.len == want.data_len);
        CHECK(res.retry == want.retry);
        CHECK(res.stream == want.stream);
        CHECK(res.timeout_ms == want.timeout);
        CHECK(res.pool_given == want.pool_given);
        CHECK(res.pool_len == want.pool_len && memcmp(res.pool, want.pool, want.pool_len) == 0);
        CHECK(res.pool[res.pool_len] == '\0');
        CHECK(res.session_len == want.session_len && memcmp(res.session, want.session, want.session_len) == 0);
        CHECK(res.session[res.session_len] == '\0');
        CHECK(res.idem_key_len == want.idem_len && memcmp(res.idem_key, want.idem, want.idem_len) == 0);
        CHECK(res.idem_key[res.idem_key_len] == '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scan_result a, b;

    check_one(data, size, AP_MAX_JSON_DEPTH);
    check_one(data, size, 3);

    /* a tighter limit never makes a line better */
    scan_status sa = scan_request((const char *)data, size, 3, &a);
    scan_status sb = scan_request((const char *)data, size, AP_MAX_JSON_DEPTH, &b);
    if (sa != SCAN_BAD_JSON)
        CHECK(sa == sb);

    /* members given beside the line are not read: the JSON's verdict is
     * the same, a line the plain scan takes is taken with the same type
     * and data, and the given members are absent */
    scan_result g;
    scan_status sg = scan_request_given((const char *)data, size, AP_MAX_JSON_DEPTH,
                                        SCAN_GIVEN_ID | SCAN_GIVEN_POOL | SCAN_GIVEN_STREAM, &g);
    CHECK((sg == SCAN_BAD_JSON) == (sb == SCAN_BAD_JSON));
    if (sb == SCAN_OK) {
        CHECK(sg == SCAN_OK);
        CHECK(strcmp(g.type, b.type) == 0 && g.data.off == b.data.off && g.data.len == b.data.len);
    }
    if (sg == SCAN_OK)
        CHECK(g.id_kind == SCAN_ID_NONE && g.pool_given == 0 && g.stream == 0);
    return 0;
}
