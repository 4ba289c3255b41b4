/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan.c - validate a JSON request line in one pass and find the members
 * the master routes on.
 *
 * One forward pass, no tree, no allocation.  Containers are tracked on a
 * bit stack (1 = object, 0 = array) of SCAN_DEPTH_CAP bits on the C
 * stack; nothing recurses.  Strings, the hot path for large payloads,
 * are skipped 16 bytes at a time with SSE2 (8 with the portable fallback
 * that -DSCAN_NO_SIMD forces, for tests) until a quote, backslash,
 * control or non-ASCII byte turns up; only those bytes are looked at one
 * by one (escape rules, UTF-8 per Unicode table 3-7: no overlongs, no
 * surrogates, nothing above U+10FFFF).
 *
 * Owns nothing but the caller's scan_result.  Used by the master for
 * every request line (scan_request, from client.c) and every dead-letter
 * line read back (scan_json_value, from dlq.c); worker results are not
 * scanned (see scan.h).  Must never read outside [line, line + len), never
 * allocate, and never give an error message containing '"' or '\'.
 * Error paths are cold functions that format the message once.
 */
#include "scan.h"
#include "ap_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__) && !defined(SCAN_NO_SIMD)
#include <emmintrin.h>
#endif

#define STACK_WORDS (SCAN_DEPTH_CAP / 64)

/* Whitespace classes: WS_LINE marks a line break. */
#define WS_BLANK 1u
#define WS_LINE 2u

static const unsigned char ws_class[256] = {
    [' '] = WS_BLANK, ['\t'] = WS_BLANK, ['\n'] = WS_LINE, ['\r'] = WS_LINE,
};

typedef struct {
    const unsigned char *base; /* offsets in messages are from here */
    const unsigned char *end;
    char *err;                 /* SCAN_ERROR_MAX bytes */
    size_t *err_pos;
    unsigned max_depth;        /* the limit in force, for the message */
    unsigned ws;               /* OR of the whitespace classes skipped */
} scanner;

/* ---- errors (cold) ---------------------------------------------------- */

#if defined(__GNUC__)
#define SCAN_COLD __attribute__((cold, noinline))
#else
#define SCAN_COLD
#endif

static SCAN_COLD AP_PRINTF(3, 4) const unsigned char *
fail(scanner *s, const unsigned char *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, SCAN_ERROR_MAX, fmt, ap);
    va_end(ap);
    *s->err_pos = (size_t)(at - s->base);
    return NULL;
}

static size_t pos(const scanner *s, const unsigned char *p)
{
    return (size_t)(p - s->base);
}

/* "unexpected <what> at byte N (expected <expected>)", where <what>
 * names the byte without ever printing '"', '\' or a control byte. */
static SCAN_COLD const unsigned char *
unexpected(scanner *s, const unsigned char *p, const char *expected)
{
    if (p >= s->end)
        return fail(s, p, "invalid JSON: unexpected end of input at byte %zu (expected %s)",
                    pos(s, p), expected);
    unsigned c = *p;
    if (c == '"')
        return fail(s, p, "invalid JSON: unexpected string at byte %zu (expected %s)",
                    pos(s, p), expected);
    if (c > 0x20 && c < 0x7f && c != '\\' && c != '\'')
        return fail(s, p, "invalid JSON: unexpected character '%c' at byte %zu (expected %s)",
                    (char)c, pos(s, p), expected);
    return fail(s, p, "invalid JSON: unexpected byte 0x%02X at byte %zu (expected %s)", c,
                pos(s, p), expected);
}

static SCAN_COLD const unsigned char *too_deep(scanner *s, const unsigned char *p)
{
    return fail(s, p, "nesting deeper than %u at byte %zu", s->max_depth, pos(s, p));
}

static SCAN_COLD const unsigned char *bad_utf8(scanner *s, const unsigned char *p,
                                               const char *why)
{
    return fail(s, p, "invalid UTF-8 at byte %zu (%s)", pos(s, p), why);
}

static SCAN_COLD const unsigned char *bad_hex(scanner *s, const unsigned char *bs)
{
    return fail(s, bs, "invalid JSON: invalid unicode escape at byte %zu (expected 4 hex digits)",
                pos(s, bs));
}

static SCAN_COLD const unsigned char *unpaired(scanner *s, const unsigned char *bs,
                                               const char *why)
{
    return fail(s, bs, "invalid JSON: unpaired UTF-16 surrogate escape at byte %zu (%s)",
                pos(s, bs), why);
}

static SCAN_COLD const unsigned char *unterminated(scanner *s, const unsigned char *open)
{
    return fail(s, open, "invalid JSON: unterminated string starting at byte %zu", pos(s, open));
}

static SCAN_COLD const unsigned char *bad_number(scanner *s, const unsigned char *p,
                                                 const char *after)
{
    return fail(s, p, "invalid JSON: invalid number at byte %zu (expected a digit after %s)",
                pos(s, p), after);
}

static SCAN_COLD const unsigned char *number_too_large(scanner *s, const unsigned char *start)
{
    return fail(s, start, "number out of range at byte %zu (beyond a double's largest, about 1.8e308)",
                pos(s, start));
}

/* ---- lexical pieces --------------------------------------------------- */

static inline const unsigned char *skip_ws(scanner *s, const unsigned char *p)
{
    const unsigned char *end = s->end;
    unsigned seen = 0;
    while (p < end && ws_class[*p]) {
        seen |= ws_class[*p];
        p++;
    }
    s->ws |= seen;
    return p;
}

static inline int is_digit(unsigned c)
{
    return c - '0' < 10u;
}

/* Returns the first byte in [p, end) that is '"', '\', below 0x20 or
 * above 0x7f, or end. */
static inline const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end)
{
#if defined(__SSE2__) && !defined(SCAN_NO_SIMD)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* signed compare: 0x80..0xff are negative, so below 0x20 too */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmplt_epi8(v, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask)
            return p + __builtin_ctz(mask);
        p += 16;
    }
#else
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t x, q, b;
        memcpy(&x, p, 8);
        q = x ^ (ones * '"');
        b = x ^ (ones * '\\');
        if (((x - ones * 0x20) & ~x & highs) | ((q - ones) & ~q & highs) |
            ((b - ones) & ~b & highs) | (x & highs))
            break;
        p += 8;
    }
#endif
    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80)
        p++;
    return p;
}

static inline int hex_val(unsigned c)
{
    if (is_digit(c))
        return (int)(c - '0');
    c |= 0x20;
    if (c - 'a' < 6u)
        return (int)(c - 'a' + 10);
    return -1;
}

/* Reads 4 hex digits at p into *u.  Returns 1, 0 if a byte is not hex,
 * -1 if the input ends first. */
static int hex4(const unsigned char *p, const unsigned char *end, unsigned *u)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        if (p + i >= end)
            return -1;
        int h = hex_val(p[i]);
        if (h < 0)
            return 0;
        v = (v << 4) | (unsigned)h;
    }
    *u = v;
    return 1;
}

/* p is at a backslash inside the string opened at `open`.  Returns the
 * byte after the escape (after both halves of a surrogate pair). */
static const unsigned char *scan_escape(scanner *s, const unsigned char *p,
                                        const unsigned char *open)
{
    const unsigned char *end = s->end, *q;
    unsigned u, lo;
    int r;

    if (end - p < 2)
        return unterminated(s, open);
    switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        return p + 2;
    case 'u':
        break;
    default: /* '"' and '\\' are valid escapes, so never printed here */
        if (p[1] > 0x20 && p[1] < 0x7f && p[1] != '\'')
            return fail(s, p, "invalid JSON: invalid escape sequence at byte %zu "
                        "(backslash followed by '%c')", pos(s, p), p[1]);
        return fail(s, p, "invalid JSON: invalid escape sequence at byte %zu "
                    "(backslash followed by byte 0x%02X)", pos(s, p), p[1]);
    }
    r = hex4(p + 2, end, &u);
    if (r < 0)
        return unterminated(s, open);
    if (r == 0)
        return bad_hex(s, p);
    if (u - 0xD800u >= 0x800u) /* not a surrogate */
        return p + 6;
    if (u >= 0xDC00u)
        return unpaired(s, p, "low surrogate first");
    /* a high surrogate: an escaped low one (DC00..DFFF) must follow at once */
    q = p + 6;
    if ((q < end && q[0] != '\\') || (q + 1 < end && q[1] != 'u'))
        return unpaired(s, p, "high surrogate alone");
    if (end - q < 2)
        return unterminated(s, open);
    r = hex4(q + 2, end, &lo);
    if (r < 0)
        return unterminated(s, open);
    if (r == 0)
        return bad_hex(s, q);
    if (lo - 0xDC00u >= 0x400u)
        return unpaired(s, p, "high surrogate alone");
    return p + 12;
}

static inline int is_cont(unsigned c)
{
    return (c & 0xC0u) == 0x80u;
}

/* p is at a byte >= 0x80 inside a string.  Returns the byte after the
 * UTF-8 sequence (Unicode table 3-7). */
static const unsigned char *scan_utf8(scanner *s, const unsigned char *p)
{
    const unsigned char *end = s->end;
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    int n;

    if (c < 0xC0)
        return bad_utf8(s, p, "unexpected continuation byte");
    if (c < 0xC2)
        return bad_utf8(s, p, "overlong encoding");
    if (c < 0xE0) {
        n = 1;
    } else if (c < 0xF0) {
        n = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c < 0xF5) {
        n = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else if (c < 0xF8) {
        return bad_utf8(s, p, "code point above U+10FFFF");
    } else {
        return bad_utf8(s, p, "invalid lead byte");
    }
    if (p + 1 >= end || !is_cont(p[1]))
        return bad_utf8(s, p, "truncated sequence");
    if (p[1] < lo)
        return bad_utf8(s, p, "overlong encoding");
    if (p[1] > hi)
        return bad_utf8(s, p, c == 0xED ? "encoded UTF-16 surrogate" : "code point above U+10FFFF");
    for (int i = 2; i <= n; i++)
        if (p + i >= end || !is_cont(p[i]))
            return bad_utf8(s, p, "truncated sequence");
    return p + n + 1;
}

/* p is at an opening quote.  Returns the byte after the closing quote;
 * *escaped is set to 1 if the string holds a backslash. */
static inline const unsigned char *scan_string(scanner *s, const unsigned char *p, int *escaped)
{
    const unsigned char *open = p, *end = s->end;
    int esc = 0;

    p++;
    for (;;) {
        p = skip_plain(p, end);
        if (AP_UNLIKELY(p >= end))
            return unterminated(s, open);
        unsigned c = *p;
        if (c == '"') {
            *escaped = esc;
            return p + 1;
        }
        if (c == '\\') {
            esc = 1;
            p = scan_escape(s, p, open);
        } else if (c < 0x20) {
            return fail(s, p, "invalid JSON: raw control character 0x%02X in string at byte %zu "
                        "(must be escaped)", c, pos(s, p));
        } else {
            p = scan_utf8(s, p);
        }
        if (!p)
            return NULL;
    }
}

/* A number's decimal exponent above which it is infinite as a double
 * (every value >= 1e309 is), and the one where it depends on the digits. */
#define NUM_EXP_INF 308
/* |exponent| is kept at most this: far beyond any decision, and
 * E below stays far from overflowing (a line is under 2^40 bytes). */
#define NUM_EXP_CAP 1000000000LL
/* Significant digits that decide a number at 10^308 exactly: the
 * rounding boundary (DBL_MAX + half an ulp) is an integer of 309 digits. */
#define NUM_EDGE_DIGITS 320

/* At 10^308 <= |value| < 10^309: 1 when it rounds to infinity.  The
 * significant digits are copied (at most NUM_EDGE_DIGITS: enough, see
 * above) onto the stack for strtod, which rounds as Python does. */
static SCAN_COLD int number_edge_is_inf(const unsigned char *from, const unsigned char *to)
{
    char buf[NUM_EDGE_DIGITS + 16];
    size_t n = 0;
    for (const unsigned char *q = from; q < to && n < NUM_EDGE_DIGITS; q++) {
        if (is_digit(*q) && (n > 0 || *q != '0'))
            buf[n++] = (char)*q;
        else if ((*q | 0x20) == 'e')
            break;
    }
    /* n digits d1 d2 ... mean d1.d2... x 10^308. */
    snprintf(buf + n, sizeof(buf) - n, "e%d", NUM_EXP_INF - (int)n + 1);
    double v = strtod(buf, NULL);
    return v > 1.7976931348623157e308;
}

/* p is at '-' or a digit.  *is_int is 1 when there is no fraction and no
 * exponent.  A number with a fraction or an exponent whose magnitude is
 * beyond a double's (1e400; not 1e-400, which is 0) is refused: the
 * worker would read it as infinity, which no agent can answer with. */
static const unsigned char *scan_number(scanner *s, const unsigned char *p, int *is_int)
{
    const unsigned char *start = p, *end = s->end;
    int integer = 1;
    /* E, the decimal exponent of the first significant digit: digits
     * before the point minus one, or minus the zeros after "0." minus one. */
    int64_t lead = 0, exp = 0;
    int nonzero = 0;

    if (*p == '-')
        p++;
    if (p < end && *p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return fail(s, start, "invalid JSON: number with a leading zero at byte %zu",
                        pos(s, start));
    } else if (p < end && is_digit(*p)) {
        const unsigned char *d = p;
        while (p < end && is_digit(*p))
            p++;
        nonzero = 1;
        lead = (int64_t)(p - d) - 1;
    } else {
        return bad_number(s, p, "'-'");
    }
    if (p < end && *p == '.') {
        integer = 0;
        p++;
        if (!(p < end && is_digit(*p)))
            return bad_number(s, p, "'.'");
        const unsigned char *f = p;
        while (p < end && is_digit(*p)) {
            if (!nonzero && *p != '0') {
                nonzero = 1;
                lead = -(int64_t)(p - f) - 1;
            }
            p++;
        }
    }
    if (p < end && (*p | 0x20) == 'e') {
        integer = 0;
        p++;
        int neg = 0;
        if (p < end && (*p == '+' || *p == '-'))
            neg = *p++ == '-';
        if (!(p < end && is_digit(*p)))
            return bad_number(s, p, "the exponent");
        while (p < end && is_digit(*p)) {
            if (exp < NUM_EXP_CAP)
                exp = exp * 10 + (*p - '0');
            p++;
        }
        if (neg)
            exp = -exp;
    }
    /* Integers stay exact (Python ints); zero is zero whatever follows. */
    if (!integer && nonzero && lead + exp >= NUM_EXP_INF &&
        (lead + exp > NUM_EXP_INF || number_edge_is_inf(start, p)))
        return number_too_large(s, start);
    *is_int = integer;
    return p;
}

/* p is at the first letter of true/false/null (word). */
static const unsigned char *scan_literal(scanner *s, const unsigned char *p, const char *word,
                                         size_t n)
{
    if ((size_t)(s->end - p) >= n && memcmp(p, word, n) == 0)
        return p + n;
    for (size_t i = 1; i < n; i++)
        if (p + i >= s->end || p[i] != (unsigned char)word[i])
            return unexpected(s, p + i, word);
    return NULL; /* not reached */
}

/* ---- values ----------------------------------------------------------- */

static inline void stack_set(uint64_t *st, unsigned depth, int is_obj)
{
    uint64_t bit = 1ull << (depth & 63);
    if (is_obj)
        st[depth >> 6] |= bit;
    else
        st[depth >> 6] &= ~bit;
}

static inline int stack_is_obj(const uint64_t *st, unsigned depth)
{
    return (int)((st[depth >> 6] >> (depth & 63)) & 1);
}

/*
 * Scans one value starting exactly at p (whitespace already skipped),
 * with at most `budget` levels of containers.  Returns the byte after
 * it, or NULL with the error set.
 */
static const unsigned char *scan_value(scanner *s, const unsigned char *p, unsigned budget)
{
    uint64_t stack[STACK_WORDS];
    const unsigned char *end = s->end;
    unsigned depth = 0; /* open containers; the innermost is depth - 1 */
    int flag;

value:
    if (AP_UNLIKELY(p >= end))
        return unexpected(s, p, "a value");
    switch (*p) {
    case '"':
        p = scan_string(s, p, &flag);
        break;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        p = scan_number(s, p, &flag);
        break;
    case 't':
        p = scan_literal(s, p, "true", 4);
        break;
    case 'f':
        p = scan_literal(s, p, "false", 5);
        break;
    case 'n':
        p = scan_literal(s, p, "null", 4);
        break;
    case '{':
        if (AP_UNLIKELY(depth >= budget))
            return too_deep(s, p);
        stack_set(stack, depth++, 1);
        p = skip_ws(s, p + 1);
        if (p < end && *p == '}') {
            p++;
            depth--;
            break;
        }
        goto key;
    case '[':
        if (AP_UNLIKELY(depth >= budget))
            return too_deep(s, p);
        stack_set(stack, depth++, 0);
        p = skip_ws(s, p + 1);
        if (p < end && *p == ']') {
            p++;
            depth--;
            break;
        }
        goto value;
    default:
        return unexpected(s, p, "a value");
    }
    if (AP_UNLIKELY(!p))
        return NULL;

    /* a value ended: close containers, or go on to the next element */
    while (depth > 0) {
        p = skip_ws(s, p);
        if (stack_is_obj(stack, depth - 1)) {
            if (p < end && *p == ',') {
                p = skip_ws(s, p + 1);
                goto key;
            }
            if (p < end && *p == '}') {
                p++;
                depth--;
                continue;
            }
            return unexpected(s, p, "',' or '}'");
        }
        if (p < end && *p == ',') {
            p = skip_ws(s, p + 1);
            goto value;
        }
        if (p < end && *p == ']') {
            p++;
            depth--;
            continue;
        }
        return unexpected(s, p, "',' or ']'");
    }
    return p;

key:
    if (p >= end || *p != '"')
        return unexpected(s, p, "an object key");
    p = scan_string(s, p, &flag);
    if (!p)
        return NULL;
    p = skip_ws(s, p);
    if (p >= end || *p != ':')
        return unexpected(s, p, "':'");
    p = skip_ws(s, p + 1);
    goto value;
}

static const unsigned char *check_bom(scanner *s, const unsigned char *p)
{
    if (s->end - p >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        return fail(s, p, "invalid JSON: byte order mark (U+FEFF) at byte %zu is not allowed",
                    pos(s, p));
    return p;
}

/* ---- the request ------------------------------------------------------ */

size_t scan_unescape(const char *src, size_t len, char *dst, size_t cap)
{
    const unsigned char *p = (const unsigned char *)src, *end;
    unsigned char *o = (unsigned char *)dst;
    size_t n = 0;

    if (len == 0)
        return 0;
    end = p + len;
    while (p < end) {
        const unsigned char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = (size_t)((bs ? bs : end) - p);
        if (run > cap - n)
            return SCAN_UNESCAPE_FAIL;
        if (run)
            memcpy(o + n, p, run);
        n += run;
        if (!bs)
            break;
        p = bs;
        if (end - p < 2)
            return SCAN_UNESCAPE_FAIL;
        unsigned char c;
        switch (p[1]) {
        case '"': c = '"'; break;
        case '\\': c = '\\'; break;
        case '/': c = '/'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
            unsigned u, lo;
            unsigned char buf[4];
            size_t k;
            if (hex4(p + 2, end, &u) != 1)
                return SCAN_UNESCAPE_FAIL;
            p += 6;
            if (u - 0xD800u < 0x800u) {
                if (u >= 0xDC00u || end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
                    hex4(p + 2, end, &lo) != 1 || lo - 0xDC00u >= 0x400u)
                    return SCAN_UNESCAPE_FAIL;
                p += 6;
                u = 0x10000u + ((u - 0xD800u) << 10) + (lo - 0xDC00u);
            }
            if (u < 0x80) {
                buf[0] = (unsigned char)u;
                k = 1;
            } else if (u < 0x800) {
                buf[0] = (unsigned char)(0xC0 | (u >> 6));
                buf[1] = (unsigned char)(0x80 | (u & 0x3F));
                k = 2;
            } else if (u < 0x10000) {
                buf[0] = (unsigned char)(0xE0 | (u >> 12));
                buf[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3F));
                buf[2] = (unsigned char)(0x80 | (u & 0x3F));
                k = 3;
            } else {
                buf[0] = (unsigned char)(0xF0 | (u >> 18));
                buf[1] = (unsigned char)(0x80 | ((u >> 12) & 0x3F));
                buf[2] = (unsigned char)(0x80 | ((u >> 6) & 0x3F));
                buf[3] = (unsigned char)(0x80 | (u & 0x3F));
                k = 4;
            }
            if (k > cap - n)
                return SCAN_UNESCAPE_FAIL;
            memcpy(o + n, buf, k);
            n += k;
            continue;
        }
        default:
            return SCAN_UNESCAPE_FAIL;
        }
        if (n >= cap)
            return SCAN_UNESCAPE_FAIL;
        o[n++] = c;
        p += 2;
    }
    return n;
}

typedef enum {
    K_OTHER = 0, K_ID, K_TYPE, K_DATA, K_RETRY, K_TIMEOUT, K_STREAM, K_POOL, K_SESSION, K_IDEM, K_RESUME, K_KEY
} member_key;

/* Names a member from its (unescaped) name. */
static member_key key_lookup(const char *k, size_t n)
{
    switch (n) {
    case 2:
        return memcmp(k, "id", 2) == 0 ? K_ID : K_OTHER;
    case 3:
        return memcmp(k, "key", 3) == 0 ? K_KEY : K_OTHER;
    case 4:
        if (memcmp(k, "type", 4) == 0)
            return K_TYPE;
        if (memcmp(k, "data", 4) == 0)
            return K_DATA;
        return memcmp(k, "pool", 4) == 0 ? K_POOL : K_OTHER;
    case 5:
        return memcmp(k, "retry", 5) == 0 ? K_RETRY : K_OTHER;
    case 6:
        if (memcmp(k, "stream", 6) == 0)
            return K_STREAM;
        return memcmp(k, "resume", 6) == 0 ? K_RESUME : K_OTHER;
    case 7:
        return memcmp(k, "session", 7) == 0 ? K_SESSION : K_OTHER;
    case 9:
        return memcmp(k, "timeoutMs", 9) == 0 ? K_TIMEOUT : K_OTHER;
    case 14:
        return memcmp(k, "idempotencyKey", 14) == 0 ? K_IDEM : K_OTHER;
    default:
        return K_OTHER;
    }
}

/* body/len: the key between its quotes. */
static member_key key_classify(const unsigned char *body, size_t len, int escaped)
{
    char buf[14]; /* the longest key we know: "idempotencyKey" */
    size_t n;

    if (!escaped)
        return key_lookup((const char *)body, len);
    n = scan_unescape((const char *)body, len, buf, sizeof buf);
    return n == SCAN_UNESCAPE_FAIL ? K_OTHER : key_lookup(buf, n);
}

typedef enum { F_ABSENT = 0, F_OK, F_BAD, F_TOO_LONG, F_HAS_NUL, F_RANGE } field_state;

/* [p, e) is an integer "-?digits": its value if in [1, INT64_MAX]. */
static field_state parse_timeout(const unsigned char *p, const unsigned char *e, int64_t *v)
{
    uint64_t x = 0;
    if (*p == '-') /* "-0" too: zero is no deadline to keep */
        return F_BAD;
    for (; p < e; p++) {
        unsigned d = *p - '0';
        if (x > ((uint64_t)INT64_MAX - d) / 10)
            return F_RANGE;
        x = x * 10 + d;
    }
    *v = (int64_t)x;
    return x == 0 ? F_BAD : F_OK;
}

static scan_status request_error(scan_result *out, const char *msg)
{
    snprintf(out->error, SCAN_ERROR_MAX, "%s", msg);
    out->error_pos = 0;
    return SCAN_BAD_REQUEST;
}

/* The member values of the request, last occurrence winning. */
typedef struct {
    field_state id, type, retry, timeout, stream, pool, session, idem, key;
} members;

/* A string member's value [v, e) (with its quotes) unescaped into buf
 * (cap bytes, NUL-terminated): F_OK, or why not. */
static field_state take_string(const unsigned char *v, size_t len, int escaped, char *buf, size_t cap,
                               size_t *outlen)
{
    size_t n;
    if (!escaped) {
        if (len - 2 > cap - 1)
            return F_TOO_LONG;
        memcpy(buf, v + 1, len - 2);
        n = len - 2;
    } else {
        n = scan_unescape((const char *)v + 1, len - 2, buf, cap - 1);
        if (n == SCAN_UNESCAPE_FAIL)
            return F_TOO_LONG;
    }
    buf[n] = '\0';
    *outlen = n;
    /* only an escape can make U+0000: the scanner refused raw control bytes */
    return escaped && memchr(buf, '\0', n) ? F_HAS_NUL : F_OK;
}

/* Records the value [v, e) of a top-level member. */
static void take_member(scan_result *out, members *m, member_key key, const char *line,
                        const unsigned char *v, const unsigned char *e, int flag)
{
    size_t off = (size_t)(v - (const unsigned char *)line), len = (size_t)(e - v);
    unsigned c = *v;
    int is_str = c == '"', is_num = c == '-' || is_digit(c);

    switch (key) {
    case K_ID:
        if (is_str || (is_num && flag)) {
            out->id_kind = is_str ? SCAN_ID_STRING : SCAN_ID_INT;
            out->id.off = off;
            out->id.len = len;
            m->id = F_OK;
        } else {
            out->id_kind = SCAN_ID_NONE;
            out->id.off = out->id.len = 0;
            m->id = F_BAD;
        }
        break;
    case K_TYPE:
        m->type = is_str ? take_string(v, len, flag, out->type, sizeof(out->type), &out->type_len) : F_BAD;
        break;
    case K_POOL:
        m->pool = is_str ? take_string(v, len, flag, out->pool, sizeof(out->pool), &out->pool_len) : F_BAD;
        if (m->pool != F_OK)
            out->pool_len = 0;
        out->pool_given = 1;
        break;
    case K_SESSION:
        m->session = is_str ? take_string(v, len, flag, out->session, sizeof(out->session), &out->session_len) : F_BAD;
        if (m->session == F_OK && out->session_len == 0)
            m->session = F_RANGE;
        if (m->session != F_OK)
            out->session_len = 0;
        break;
    case K_IDEM:
        m->idem = is_str ? take_string(v, len, flag, out->idem_key, sizeof(out->idem_key), &out->idem_key_len)
                         : F_BAD;
        if (m->idem == F_OK && out->idem_key_len == 0)
            m->idem = F_BAD;
        if (m->idem != F_OK)
            out->idem_key_len = 0;
        break;
    case K_KEY:
        m->key = is_str ? take_string(v, len, flag, out->key, sizeof(out->key), &out->key_len) : F_BAD;
        if (m->key == F_OK && out->key_len == 0)
            m->key = F_BAD;
        if (m->key != F_OK)
            out->key_len = 0;
        break;
    case K_DATA:
        out->data.off = off;
        out->data.len = len;
        break;
    case K_RESUME:
        out->resume.off = off;
        out->resume.len = len;
        break;
    case K_RETRY:
        m->retry = c == 't' || c == 'f' ? F_OK : F_BAD;
        out->retry = c == 't';
        break;
    case K_TIMEOUT:
        m->timeout = is_num && flag ? parse_timeout(v, e, &out->timeout_ms) : F_BAD;
        break;
    case K_STREAM:
        m->stream = c == 't' || c == 'f' ? F_OK : F_BAD;
        out->stream = c == 't';
        break;
    case K_OTHER:
        break;
    }
}

/* How a string member is judged: its name, its bound in bytes, and what
 * is said when it is not a string, or empty where that is refused (each
 * member's state is one of these at a time). */
typedef struct {
    const char *name;
    unsigned max;
    const char *bad;            /* F_BAD */
    const char *empty;          /* F_RANGE: given empty */
    const char *long_tail;      /* after "NAME longer than MAX bytes" */
} string_rule;

static const string_rule type_rule = {"type", AP_MAX_TYPE_LEN, "type must be a string", NULL, ""};
static const string_rule pool_rule = {"pool", SCAN_POOL_MAX, "pool must be a string: the name of a pool", NULL,
                                      ": no pool has such a name"};
static const string_rule session_rule = {"session", SCAN_SESSION_MAX,
                                         "session must be a string: the key of a conversation",
                                         "session must not be empty", ""};
static const string_rule idem_rule = {"idempotencyKey", SCAN_IDEM_KEY_MAX, "idempotencyKey must be a non-empty string",
                                      NULL, ""};
static const string_rule key_rule = {"key", SCAN_KEY_MAX, "key must be a non-empty string: an API key", NULL, ""};

/* 1 with out->error set when f is an error of the member r judges. */
static int string_refused(scan_result *out, field_state f, const string_rule *r)
{
    switch (f) {
    case F_BAD:
        request_error(out, r->bad);
        return 1;
    case F_RANGE:
        request_error(out, r->empty ? r->empty : r->bad);
        return 1;
    case F_HAS_NUL:
        snprintf(out->error, SCAN_ERROR_MAX, "%s must not contain U+0000", r->name);
        break;
    case F_TOO_LONG:
        snprintf(out->error, SCAN_ERROR_MAX, "%s longer than %u bytes%s", r->name, r->max, r->long_tail);
        break;
    default:
        return 0;
    }
    out->error_pos = 0;
    return 1;
}

static scan_status request_verdict(scan_result *out, const members *m)
{
    if (m->id == F_BAD)
        return request_error(out, "id must be a string or an integer");
    if (m->type == F_ABSENT)
        return request_error(out, "type is missing");
    if (string_refused(out, m->type, &type_rule))
        return SCAN_BAD_REQUEST;
    if (m->retry == F_BAD)
        return request_error(out, "retry must be true or false");
    if (m->stream == F_BAD)
        return request_error(out, "stream must be true or false");
    if (m->timeout == F_BAD)
        return request_error(out, "timeoutMs must be a positive integer (milliseconds)");
    if (m->timeout == F_RANGE)
        return request_error(out, "timeoutMs is too large");
    if (string_refused(out, m->pool, &pool_rule) || string_refused(out, m->session, &session_rule) ||
        string_refused(out, m->idem, &idem_rule) || string_refused(out, m->key, &key_rule))
        return SCAN_BAD_REQUEST;
    return SCAN_OK;
}

static const char *value_noun(unsigned c)
{
    switch (c) {
    case '[': return "an array";
    case '"': return "a string";
    case 't': case 'f': return "a boolean";
    case 'n': return "null";
    default: return "a number";
    }
}

/* The SCAN_GIVEN_* bit of a member (0: none). */
static unsigned given_bit(member_key key)
{
    switch (key) {
    case K_ID: return SCAN_GIVEN_ID;
    case K_POOL: return SCAN_GIVEN_POOL;
    case K_STREAM: return SCAN_GIVEN_STREAM;
    default: return 0;
    }
}

scan_status scan_request(const char *line, size_t len, unsigned max_depth, scan_result *out)
{
    return scan_request_given(line, len, max_depth, 0, out);
}

scan_status scan_request_given(const char *line, size_t len, unsigned max_depth, unsigned given, scan_result *out)
{
    const unsigned char *p, *end;
    unsigned budget = max_depth > SCAN_DEPTH_CAP ? SCAN_DEPTH_CAP : max_depth;
    scanner s;
    members m = {F_ABSENT, F_ABSENT, F_ABSENT, F_ABSENT, F_ABSENT, F_ABSENT, F_ABSENT, F_ABSENT, F_ABSENT};

    if (len == 0)
        line = ""; /* never do arithmetic on a NULL line */
    p = (const unsigned char *)line;
    end = p + len;
    s = (scanner){p, end, out->error, &out->error_pos, budget, 0};
    out->id_kind = SCAN_ID_NONE;
    out->id.off = out->id.len = 0;
    out->type[0] = '\0';
    out->type_len = 0;
    out->data.off = out->data.len = 0;
    out->resume.off = out->resume.len = 0;
    out->retry = -1;
    out->timeout_ms = -1;
    out->stream = 0;
    out->pool[0] = '\0';
    out->pool_len = 0;
    out->pool_given = 0;
    out->session[0] = '\0';
    out->session_len = 0;
    out->idem_key[0] = '\0';
    out->idem_key_len = 0;
    out->key[0] = '\0';
    out->key_len = 0;
    out->error[0] = '\0';
    out->error_pos = 0;

    p = skip_ws(&s, p);
    if (p == end)
        return SCAN_BLANK;
    if (*p != '{') {
        const unsigned char *v = p;
        if (!check_bom(&s, p) || !(p = scan_value(&s, p, budget)))
            return SCAN_BAD_JSON;
        if (skip_ws(&s, p) != end)
            goto trailing;
        snprintf(out->error, SCAN_ERROR_MAX, "request must be a JSON object, not %s",
                 value_noun(*v));
        out->error_pos = (size_t)(v - (const unsigned char *)line);
        return SCAN_NOT_OBJECT;
    }
    if (budget == 0) {
        too_deep(&s, p);
        return SCAN_BAD_JSON;
    }
    p = skip_ws(&s, p + 1);
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            const unsigned char *k = p, *v;
            int flag = 0;
            member_key key;

            if (p >= end || *p != '"') {
                unexpected(&s, p, "an object key");
                return SCAN_BAD_JSON;
            }
            if (!(p = scan_string(&s, p, &flag)))
                return SCAN_BAD_JSON;
            key = key_classify(k + 1, (size_t)(p - k) - 2, flag);
            if (AP_UNLIKELY(given) && (given & given_bit(key)))
                key = K_OTHER;
            p = skip_ws(&s, p);
            if (p >= end || *p != ':') {
                unexpected(&s, p, "':'");
                return SCAN_BAD_JSON;
            }
            v = p = skip_ws(&s, p + 1);
            flag = 0;
            if (p < end && *p == '"')
                p = scan_string(&s, p, &flag);
            else if (p < end && (*p == '-' || is_digit(*p)))
                p = scan_number(&s, p, &flag);
            else
                p = scan_value(&s, p, budget - 1);
            if (!p)
                return SCAN_BAD_JSON;
            take_member(out, &m, key, line, v, p, flag);
            p = skip_ws(&s, p);
            if (p < end && *p == ',') {
                p = skip_ws(&s, p + 1);
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            unexpected(&s, p, "',' or '}'");
            return SCAN_BAD_JSON;
        }
    }
    if (skip_ws(&s, p) != end)
        goto trailing;
    return request_verdict(out, &m);

trailing:
    p = skip_ws(&s, p);
    fail(&s, p, "invalid JSON: trailing characters after the JSON value at byte %zu", pos(&s, p));
    return SCAN_BAD_JSON;
}

int scan_json_value(const char *str, size_t len, unsigned max_depth, unsigned flags, char *err,
                    size_t *err_pos)
{
    char msg[SCAN_ERROR_MAX];
    size_t at = 0;
    const unsigned char *p, *end;
    unsigned budget = max_depth > SCAN_DEPTH_CAP ? SCAN_DEPTH_CAP : max_depth;
    scanner s;

    if (len == 0)
        str = "";
    p = (const unsigned char *)str;
    end = p + len;
    s = (scanner){p, end, err ? err : msg, err_pos ? err_pos : &at, budget, 0};
    p = skip_ws(&s, p);
    if (!check_bom(&s, p))
        return AP_ERR;
    p = scan_value(&s, p, budget);
    if (!p)
        return AP_ERR;
    p = skip_ws(&s, p);
    if (p != end) {
        fail(&s, p, "invalid JSON: trailing characters after the JSON value at byte %zu",
             pos(&s, p));
        return AP_ERR;
    }
    if ((flags & SCAN_ONE_LINE) && (s.ws & WS_LINE)) {
        const unsigned char *q = s.base;
        while (*q != '\n' && *q != '\r')
            q++;
        fail(&s, q, "JSON value contains a line break at byte %zu", pos(&s, q));
        return AP_ERR;
    }
    return AP_OK;
}

const char *scan_status_name(scan_status st)
{
    static const char *const names[] = {"ok", "blank", "bad_json", "not_object", "bad_request"};
    return (unsigned)st < AP_ARRAY_LEN(names) ? names[st] : "?";
}
