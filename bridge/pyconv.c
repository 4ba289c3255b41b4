/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pyconv.c - JSON text <-> Python objects (see pyconv.h).
 *
 * Decoding is a recursive-descent parser over the raw bytes, strict RFC
 * 8259: strings without escapes become str objects in one copy (ASCII is
 * checked while scanning for the closing quote), escapes are unfolded
 * into a scratch buffer first, \uXXXX surrogate pairs are joined and a
 * lone surrogate is kept as one (like the json module does); integers of
 * up to 18 digits are built directly, longer ones by PyLong_FromString;
 * numbers with a fraction or exponent become floats.
 *
 * Encoding walks the object and appends to the caller's buffer.  It never
 * runs Python code for exact built-in types, so the containers it walks
 * cannot change under it; for dict subclasses it asks items() like the
 * json module does.  A path stack (key or index per level) is kept so an
 * error can say where the offending value sits.  bool is tested before
 * int, int subclasses (IntEnum) are written by value, floats use repr's
 * shortest round-trip form and NaN/inf are refused.
 *
 * Module state: the string cache and the unescape scratch buffer below,
 * both bounded; only the worker's one thread (holding the GIL) uses them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pyconv.h"

#include "ap_common.h"
#include "ap_defaults.h"

#include <math.h>
#include <stdio.h>

#define PYCONV_MAX_DEPTH AP_MAX_JSON_DEPTH
#define STR_(x) #x
#define XSTR(x) STR_(x)
/* Strings cached by pyconv_str / object keys: short ASCII only. */
#define STRCACHE_SLOTS 1024
#define STRCACHE_MAXLEN 64
/* The unescape scratch buffer is given back above this size. */
#define SCRATCH_KEEP (64 * 1024)

static struct {
    PyObject *strcache[STRCACHE_SLOTS];
    buf_t scratch;
} pyconv;

/* ---------------------------------------------------------------- cache */

static inline size_t strcache_slot(const unsigned char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    return (h ^ (h >> 15)) & (STRCACHE_SLOTS - 1);
}

/* A new str for n ASCII bytes, through the cache when short. */
static PyObject *ascii_str(const unsigned char *s, size_t n, int cache)
{
    size_t slot = 0;
    if (cache && n <= STRCACHE_MAXLEN) {
        slot = strcache_slot(s, n);
        PyObject *k = pyconv.strcache[slot];
        if (k && (size_t)PyUnicode_GET_LENGTH(k) == n && memcmp(PyUnicode_1BYTE_DATA(k), s, n) == 0) {
            Py_INCREF(k);
            return k;
        }
    }
    PyObject *str = PyUnicode_New((Py_ssize_t)n, 127);
    if (str == NULL)
        return NULL;
    memcpy(PyUnicode_1BYTE_DATA(str), s, n);
    if (cache && n <= STRCACHE_MAXLEN) {
        Py_INCREF(str);
        Py_XSETREF(pyconv.strcache[slot], str);
    }
    return str;
}

PyObject *pyconv_str(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char hi = 0;
    for (size_t i = 0; i < n; i++)
        hi |= u[i];
    if (hi < 0x80)
        return ascii_str(u, n, 1);
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, NULL);
}

void pyconv_fini(void)
{
    for (size_t i = 0; i < STRCACHE_SLOTS; i++)
        Py_CLEAR(pyconv.strcache[i]);
    if (pyconv.scratch.data)
        buf_free(&pyconv.scratch);
}

/* --------------------------------------------------------------- decode */

typedef struct {
    const unsigned char *p, *start, *end;
    int depth;
} dec_t;

/* Sets ValueError naming the byte offset, unless an error is already set
 * (a MemoryError from deeper down must win).  Returns NULL. */
static PyObject *dec_fail(dec_t *d, const char *what)
{
    if (!PyErr_Occurred())
        PyErr_Format(PyExc_ValueError, "invalid JSON at byte %zd: %s", (Py_ssize_t)(d->p - d->start), what);
    return NULL;
}

static inline void dec_ws(dec_t *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
        d->p++;
}

static PyObject *dec_value(dec_t *d);

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u" at d->p; -1 when malformed. */
static long dec_hex4(dec_t *d)
{
    if (d->end - d->p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(d->p[i]);
        if (h < 0)
            return -1;
        v = (v << 4) | h;
    }
    d->p += 4;
    return v;
}

static void put_utf8(buf_t *b, long cp)
{
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xF0 | (cp >> 18));
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_append(b, u, n);
}

/* The slow path of dec_string: the string has escapes.  d->p is at the
 * first backslash, `s` at the string's first byte. */
/* A surrogate written as raw UTF-8 (ED A0..BF ..): invalid UTF-8 that
 * "surrogatepass" (needed for lone \uD8xx escapes) would let through. */
static int raw_surrogate(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == 0xED && p[i + 1] >= 0xA0)
            return 1;
    return 0;
}

static PyObject *dec_string_escaped(dec_t *d, const unsigned char *s)
{
    buf_t *b = &pyconv.scratch;
    if (b->data == NULL)
        buf_init(b, 256);
    b->len = 0;
    if (raw_surrogate(s, (size_t)(d->p - s)))
        return dec_fail(d, "invalid UTF-8 in a string");
    buf_append(b, s, (size_t)(d->p - s));
    int lone = 0;
    for (;;) {
        const unsigned char *run = d->p;
        while (d->p < d->end && *d->p != '"' && *d->p != '\\' && *d->p >= 0x20)
            d->p++;
        if (raw_surrogate(run, (size_t)(d->p - run)))
            return dec_fail(d, "invalid UTF-8 in a string");
        buf_append(b, run, (size_t)(d->p - run));
        if (d->p >= d->end)
            return dec_fail(d, "unterminated string");
        unsigned char c = *d->p;
        if (c == '"') {
            d->p++;
            break;
        }
        if (c < 0x20)
            return dec_fail(d, "unescaped control character in a string");
        d->p++; /* the backslash */
        if (d->p >= d->end)
            return dec_fail(d, "unterminated string");
        c = *d->p++;
        switch (c) {
        case '"': buf_putc(b, '"'); break;
        case '\\': buf_putc(b, '\\'); break;
        case '/': buf_putc(b, '/'); break;
        case 'b': buf_putc(b, '\b'); break;
        case 'f': buf_putc(b, '\f'); break;
        case 'n': buf_putc(b, '\n'); break;
        case 'r': buf_putc(b, '\r'); break;
        case 't': buf_putc(b, '\t'); break;
        case 'u': {
            long cp = dec_hex4(d);
            if (cp < 0) {
                d->p -= 2;
                return dec_fail(d, "invalid \\u escape");
            }
            if (cp >= 0xD800 && cp < 0xDC00 && d->end - d->p >= 6 && d->p[0] == '\\' && d->p[1] == 'u') {
                const unsigned char *save = d->p;
                d->p += 2;
                long lo = dec_hex4(d);
                if (lo >= 0xDC00 && lo < 0xE000)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else
                    d->p = save; /* not a low half: keep cp lone, reparse */
            }
            if (cp >= 0xD800 && cp < 0xE000)
                lone = 1;
            put_utf8(b, cp);
            break;
        }
        default:
            d->p -= 2;
            return dec_fail(d, "invalid escape in a string");
        }
    }
    PyObject *str = PyUnicode_DecodeUTF8((const char *)b->data, (Py_ssize_t)b->len, lone ? "surrogatepass" : NULL);
    if (str == NULL) {
        PyErr_Clear();
        return dec_fail(d, "invalid UTF-8 in a string");
    }
    if (b->cap > SCRATCH_KEEP) {
        b->len = b->off = 0;
        buf_shrink(b, SCRATCH_KEEP);
    }
    return str;
}

/* d->p is just after the opening quote. */
static PyObject *dec_string(dec_t *d, int is_key)
{
    const unsigned char *s = d->p, *q = s, *end = d->end;
    unsigned char hi = 0;
    while (q < end && *q != '"' && *q != '\\' && *q >= 0x20) {
        hi |= *q;
        q++;
    }
    if (q >= end) {
        d->p = q;
        return dec_fail(d, "unterminated string");
    }
    if (*q == '"') {
        size_t n = (size_t)(q - s);
        d->p = q + 1;
        if (hi < 0x80)
            return ascii_str(s, n, is_key);
        PyObject *str = PyUnicode_DecodeUTF8((const char *)s, (Py_ssize_t)n, NULL);
        if (str == NULL) {
            PyErr_Clear();
            d->p = s;
            return dec_fail(d, "invalid UTF-8 in a string");
        }
        return str;
    }
    d->p = q;
    if (*q < 0x20)
        return dec_fail(d, "unescaped control character in a string");
    return dec_string_escaped(d, s);
}

static PyObject *dec_number(dec_t *d)
{
    const unsigned char *s = d->p, *p = s, *end = d->end;
    int is_float = 0;
    if (*p == '-')
        p++;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return dec_fail(d, "invalid number");
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') {
            d->p = p;
            return dec_fail(d, "invalid number: digit expected after '.'");
        }
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        is_float = 1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9') {
            d->p = p;
            return dec_fail(d, "invalid number: digit expected in the exponent");
        }
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        is_float = 1;
    }
    size_t n = (size_t)(p - s);
    d->p = p;
    if (!is_float && n <= 18) {
        const unsigned char *q = s;
        int neg = *q == '-';
        q += neg;
        long long v = 0;
        while (q < p)
            v = v * 10 + (*q++ - '0');
        return PyLong_FromLongLong(neg ? -v : v);
    }
    /* Long integers and all floats: the C library wants a terminated copy
     * (the payload is followed by the next frame, not by a NUL). */
    char small[64];
    char *tmp = n < sizeof(small) ? small : PyMem_Malloc(n + 1);
    if (tmp == NULL)
        return PyErr_NoMemory();
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    PyObject *num;
    if (is_float) {
        double v = PyOS_string_to_double(tmp, NULL, NULL);
        num = (v == -1.0 && PyErr_Occurred()) ? NULL : PyFloat_FromDouble(v);
    } else {
        num = PyLong_FromString(tmp, NULL, 10);
    }
    if (tmp != small)
        PyMem_Free(tmp);
    if (num == NULL) {
        /* e.g. int above sys.get_int_max_str_digits(): say where */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *msg = value ? PyObject_Str(value) : NULL;
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "invalid JSON at byte %zd: number not convertible: %S",
                     (Py_ssize_t)(s - d->start), msg ? msg : Py_None);
        Py_XDECREF(msg);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    }
    return num;
}

static PyObject *dec_literal(dec_t *d, const char *word, size_t n, PyObject *value)
{
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
        return dec_fail(d, "unexpected character");
    d->p += n;
    Py_INCREF(value);
    return value;
}

static PyObject *dec_array(dec_t *d)
{
    PyObject *list = NULL, *item = NULL;
    if (++d->depth > PYCONV_MAX_DEPTH)
        return dec_fail(d, "nesting deeper than " XSTR(AP_MAX_JSON_DEPTH) " levels");
    d->p++; /* '[' */
    list = PyList_New(0);
    if (list == NULL)
        goto fail;
    dec_ws(d);
    if (d->p < d->end && *d->p == ']') {
        d->p++;
        d->depth--;
        return list;
    }
    for (;;) {
        item = dec_value(d);
        if (item == NULL)
            goto fail;
        if (PyList_Append(list, item) < 0)
            goto fail;
        Py_CLEAR(item);
        dec_ws(d);
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            continue;
        }
        if (d->p < d->end && *d->p == ']') {
            d->p++;
            break;
        }
        dec_fail(d, d->p < d->end ? "expected ',' or ']' in an array" : "unterminated array");
        goto fail;
    }
    d->depth--;
    return list;
fail:
    Py_XDECREF(item);
    Py_XDECREF(list);
    return NULL;
}

static PyObject *dec_object(dec_t *d)
{
    PyObject *dict = NULL, *key = NULL, *value = NULL;
    if (++d->depth > PYCONV_MAX_DEPTH)
        return dec_fail(d, "nesting deeper than " XSTR(AP_MAX_JSON_DEPTH) " levels");
    d->p++; /* '{' */
    dict = PyDict_New();
    if (dict == NULL)
        goto fail;
    dec_ws(d);
    if (d->p < d->end && *d->p == '}') {
        d->p++;
        d->depth--;
        return dict;
    }
    for (;;) {
        dec_ws(d);
        if (d->p >= d->end || *d->p != '"') {
            dec_fail(d, d->p < d->end ? "expected a string key in an object" : "unterminated object");
            goto fail;
        }
        d->p++;
        key = dec_string(d, 1);
        if (key == NULL)
            goto fail;
        dec_ws(d);
        if (d->p >= d->end || *d->p != ':') {
            dec_fail(d, "expected ':' after an object key");
            goto fail;
        }
        d->p++;
        value = dec_value(d);
        if (value == NULL)
            goto fail;
        if (PyDict_SetItem(dict, key, value) < 0)
            goto fail;
        Py_CLEAR(key);
        Py_CLEAR(value);
        dec_ws(d);
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            continue;
        }
        if (d->p < d->end && *d->p == '}') {
            d->p++;
            break;
        }
        dec_fail(d, d->p < d->end ? "expected ',' or '}' in an object" : "unterminated object");
        goto fail;
    }
    d->depth--;
    return dict;
fail:
    Py_XDECREF(key);
    Py_XDECREF(value);
    Py_XDECREF(dict);
    return NULL;
}

static PyObject *dec_value(dec_t *d)
{
    dec_ws(d);
    if (d->p >= d->end)
        return dec_fail(d, "unexpected end of data");
    switch (*d->p) {
    case '{':
        return dec_object(d);
    case '[':
        return dec_array(d);
    case '"':
        d->p++;
        return dec_string(d, 0);
    case 't':
        return dec_literal(d, "true", 4, Py_True);
    case 'f':
        return dec_literal(d, "false", 5, Py_False);
    case 'n':
        return dec_literal(d, "null", 4, Py_None);
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return dec_number(d);
    default:
        return dec_fail(d, "unexpected character");
    }
}

PyObject *pyconv_decode(const char *text, size_t len)
{
    dec_t d = {(const unsigned char *)text, (const unsigned char *)text, (const unsigned char *)text + len, 0};
    dec_ws(&d);
    if (d.p == d.end)
        Py_RETURN_NONE;
    PyObject *v = dec_value(&d);
    if (v == NULL)
        return NULL;
    dec_ws(&d);
    if (d.p != d.end) {
        Py_DECREF(v);
        return dec_fail(&d, "extra data after the value");
    }
    return v;
}

/* --------------------------------------------------------------- encode */

/* Which ASCII bytes need an escape inside a JSON string. */
static const unsigned char esc_needed[128] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Writes the escape for ASCII byte c (one that esc_needed); room for 6
 * bytes must be reserved.  Returns the bytes written. */
static inline size_t put_escape(unsigned char *o, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    o[0] = '\\';
    switch (c) {
    case '"': o[1] = '"'; return 2;
    case '\\': o[1] = '\\'; return 2;
    case '\n': o[1] = 'n'; return 2;
    case '\r': o[1] = 'r'; return 2;
    case '\t': o[1] = 't'; return 2;
    case '\b': o[1] = 'b'; return 2;
    case '\f': o[1] = 'f'; return 2;
    default:
        o[1] = 'u';
        o[2] = '0';
        o[3] = '0';
        o[4] = (unsigned char)hex[c >> 4];
        o[5] = (unsigned char)hex[c & 15];
        return 6;
    }
}

void pyconv_append_cstr(buf_t *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    buf_reserve(out, n + 2);
    out->data[out->len++] = '"';
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && (u[i] >= 0x80 || !esc_needed[u[i]]))
            i++;
        buf_append(out, u + start, i - start);
        if (i < n) {
            buf_reserve(out, 6);
            out->len += put_escape(out->data + out->len, u[i]);
            i++;
        }
    }
    buf_putc(out, '"');
}

/* Appends str s, quoted.  A lone surrogate is replaced by U+FFFD when
 * `lossy`, otherwise its index is stored in *bad and -1 returned (out->len
 * is then left mid-string; the caller rewinds). */
static int append_str(buf_t *out, PyObject *s, int lossy, Py_ssize_t *bad)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (PyUnicode_IS_ASCII(s)) {
        const unsigned char *u = PyUnicode_1BYTE_DATA(s);
        buf_reserve(out, (size_t)n + 2);
        out->data[out->len++] = '"';
        Py_ssize_t i = 0;
        while (i < n) {
            Py_ssize_t start = i;
            while (i < n && !esc_needed[u[i]])
                i++;
            buf_append(out, u + start, (size_t)(i - start));
            if (i < n) {
                buf_reserve(out, 6);
                out->len += put_escape(out->data + out->len, u[i]);
                i++;
            }
        }
        buf_putc(out, '"');
        return 0;
    }
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    buf_putc(out, '"');
    Py_ssize_t i = 0;
    while (i < n) {
        /* a chunk at a time, with room for the worst case (6 bytes) */
        Py_ssize_t stop = n - i > 4096 ? i + 4096 : n;
        buf_reserve(out, (size_t)(stop - i) * 6);
        unsigned char *o = out->data + out->len;
        for (; i < stop; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (c < 0x80) {
                if (esc_needed[c])
                    o += put_escape(o, (unsigned char)c);
                else
                    *o++ = (unsigned char)c;
            } else if (c < 0x800) {
                *o++ = (unsigned char)(0xC0 | (c >> 6));
                *o++ = (unsigned char)(0x80 | (c & 0x3F));
            } else if (c < 0x10000) {
                if (c >= 0xD800 && c < 0xE000) {
                    if (!lossy) {
                        out->len = (size_t)(o - out->data);
                        *bad = i;
                        return -1;
                    }
                    c = 0xFFFD;
                }
                *o++ = (unsigned char)(0xE0 | (c >> 12));
                *o++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
                *o++ = (unsigned char)(0x80 | (c & 0x3F));
            } else {
                *o++ = (unsigned char)(0xF0 | (c >> 18));
                *o++ = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
                *o++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
                *o++ = (unsigned char)(0x80 | (c & 0x3F));
            }
        }
        out->len = (size_t)(o - out->data);
    }
    buf_putc(out, '"');
    return 0;
}

void pyconv_append_str_lossy(buf_t *out, PyObject *s)
{
    Py_ssize_t bad;
    if (PyUnicode_Check(s)) {
        append_str(out, s, 1, &bad);
        return;
    }
    PyObject *str = PyObject_Str(s);
    if (str == NULL) {
        PyErr_Clear();
        pyconv_append_cstr(out, "<unprintable>", 13);
        return;
    }
    append_str(out, str, 1, &bad);
    Py_DECREF(str);
}

typedef struct {
    PyObject *key;   /* the dict key being encoded at this level, or NULL */
    Py_ssize_t index; /* the list index when key is NULL */
} enc_step;

typedef struct {
    buf_t *out;
    size_t start, limit;
    int depth;
    int too_large;   /* the failure was the output passing `limit` */
    const char *what; /* what is encoded, for errors: "result", "session state"... */
    enc_step path[PYCONV_MAX_DEPTH + 1];
} enc_t;

/* Renders the first `n` path steps as "$.a[2]" into a C buffer (bounded,
 * with "..." when cut). */
static void enc_path(enc_t *e, int n, char *dst, size_t cap)
{
    buf_t tmp;
    buf_init(&tmp, 128);
    buf_putc(&tmp, '$');
    for (int i = 0; i < n && tmp.len < cap; i++) {
        PyObject *k = e->path[i].key;
        if (k == NULL) {
            char idx[32];
            int m = snprintf(idx, sizeof(idx), "[%zd]", e->path[i].index);
            buf_append(&tmp, idx, (size_t)m);
            continue;
        }
        int ident = PyUnicode_IS_ASCII(k) && PyUnicode_GET_LENGTH(k) > 0 && PyUnicode_GET_LENGTH(k) <= 64;
        const unsigned char *u = ident ? PyUnicode_1BYTE_DATA(k) : NULL;
        for (Py_ssize_t j = 0; ident && j < PyUnicode_GET_LENGTH(k); j++) {
            unsigned char c = u[j];
            if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (j > 0 && c >= '0' && c <= '9')))
                ident = 0;
        }
        if (ident) {
            buf_putc(&tmp, '.');
            buf_append(&tmp, u, (size_t)PyUnicode_GET_LENGTH(k));
        } else {
            buf_putc(&tmp, '[');
            PyObject *shown = PyUnicode_GET_LENGTH(k) > 64 ? PyUnicode_Substring(k, 0, 64) : (Py_INCREF(k), k);
            if (shown) {
                pyconv_append_str_lossy(&tmp, shown);
                Py_DECREF(shown);
            } else {
                PyErr_Clear();
            }
            buf_putc(&tmp, ']');
        }
    }
    if (tmp.len >= cap) {
        memcpy(dst, tmp.data, cap - 4);
        memcpy(dst + cap - 4, "...", 4);
    } else {
        memcpy(dst, tmp.data, tmp.len);
        dst[tmp.len] = '\0';
    }
    buf_free(&tmp);
}

/* Sets exc ("<e->what> is not JSON serializable: <what> at <path>") using
 * the first `n` path steps.  Returns AP_ERR. */
static int enc_fail(enc_t *e, PyObject *exc, int n, const char *what)
{
    char path[512];
    enc_path(e, n, path, sizeof(path));
    PyErr_Format(exc, "%s is not JSON serializable: %s at %s", e->what, what, path);
    return AP_ERR;
}

static int enc_too_large(enc_t *e)
{
    e->too_large = 1;
    PyErr_Format(PyExc_ValueError, "%s is too large: its JSON exceeds %zu bytes", e->what, e->limit);
    return AP_ERR;
}

static void put_i64(buf_t *out, long long v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    buf_append(out, p, (size_t)(tmp + sizeof(tmp) - p));
}

static int enc_value(enc_t *e, PyObject *o);

static int enc_long(enc_t *e, PyObject *o)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (!overflow) {
        if (v == -1 && PyErr_Occurred())
            return AP_ERR;
        put_i64(e->out, v);
        return AP_OK;
    }
    /* Beyond 64 bits: int's own repr, so an IntEnum prints its value. */
    PyObject *r = PyLong_Type.tp_repr(o);
    if (r == NULL) {
        PyErr_Clear();
        return enc_fail(e, PyExc_ValueError, e->depth, "int too large to convert to decimal text");
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(r, &n);
    if (s)
        buf_append(e->out, s, (size_t)n);
    Py_DECREF(r);
    return s ? AP_OK : AP_ERR;
}

static int enc_float(enc_t *e, PyObject *o)
{
    double v = PyFloat_AS_DOUBLE(o);
    if (!isfinite(v))
        return enc_fail(e, PyExc_ValueError, e->depth, isnan(v) ? "float nan" : v > 0 ? "float inf" : "float -inf");
    char *s = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (s == NULL)
        return AP_ERR;
    buf_append(e->out, s, strlen(s));
    PyMem_Free(s);
    return AP_OK;
}

/* Appends str o; `key` says it is a dict key (then the error names the
 * dict, whose path has one step less). */
static int enc_str(enc_t *e, PyObject *o, int key)
{
    Py_ssize_t bad;
    if ((size_t)PyUnicode_GET_LENGTH(o) > e->limit)
        return enc_too_large(e);
    size_t mark = e->out->len;
    if (AP_LIKELY(append_str(e->out, o, 0, &bad) == 0))
        return AP_OK;
    e->out->len = mark;
    char what[96];
    snprintf(what, sizeof(what), "%s with a lone surrogate U+%04X at index %zd", key ? "dict key" : "str",
             (unsigned)PyUnicode_READ_CHAR(o, bad), bad);
    return enc_fail(e, PyExc_ValueError, key ? e->depth - 1 : e->depth, what);
}

/* Encodes one key/value pair of a dict; `first` says whether a comma is
 * needed. */
static int enc_pair(enc_t *e, PyObject *key, PyObject *value, int first)
{
    if (!PyUnicode_Check(key)) {
        char what[160];
        snprintf(what, sizeof(what), "dict key of type %.100s (keys must be str)", Py_TYPE(key)->tp_name);
        return enc_fail(e, PyExc_TypeError, e->depth - 1, what);
    }
    if (!first)
        buf_putc(e->out, ',');
    if (enc_str(e, key, 1) < 0)
        return AP_ERR;
    e->path[e->depth - 1].key = key;
    buf_putc(e->out, ':');
    return enc_value(e, value);
}

static int enc_dict(enc_t *e, PyObject *o)
{
    PyObject *items = NULL;
    int rc = AP_ERR;
    if (e->depth >= PYCONV_MAX_DEPTH)
        return enc_fail(e, PyExc_ValueError, e->depth, "nesting deeper than " XSTR(AP_MAX_JSON_DEPTH) " levels");
    e->depth++;
    e->path[e->depth - 1].key = NULL;
    e->path[e->depth - 1].index = 0;
    buf_putc(e->out, '{');
    if (PyDict_CheckExact(o)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        int first = 1;
        while (PyDict_Next(o, &pos, &key, &value)) {
            Py_INCREF(key);
            Py_INCREF(value);
            int r = enc_pair(e, key, value, first);
            Py_DECREF(key);
            Py_DECREF(value);
            if (r < 0)
                goto done;
            first = 0;
        }
    } else {
        /* A subclass (OrderedDict...) may define its own order: ask it. */
        items = PyMapping_Items(o);
        if (items == NULL)
            goto done;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
            PyObject *kv = PyList_GET_ITEM(items, i);
            if (!PyTuple_Check(kv) || PyTuple_GET_SIZE(kv) != 2) {
                PyErr_SetString(PyExc_ValueError, "items() must return (key, value) pairs");
                goto done;
            }
            if (enc_pair(e, PyTuple_GET_ITEM(kv, 0), PyTuple_GET_ITEM(kv, 1), i == 0) < 0)
                goto done;
        }
    }
    buf_putc(e->out, '}');
    rc = AP_OK;
done:
    Py_XDECREF(items);
    e->depth--;
    return rc;
}

static int enc_seq(enc_t *e, PyObject *o)
{
    if (e->depth >= PYCONV_MAX_DEPTH)
        return enc_fail(e, PyExc_ValueError, e->depth, "nesting deeper than " XSTR(AP_MAX_JSON_DEPTH) " levels");
    e->depth++;
    enc_step *step = &e->path[e->depth - 1];
    step->key = NULL;
    buf_putc(e->out, '[');
    int is_list = PyList_Check(o);
    /* A list is re-measured each round (a finalizer run by an allocation
     * could shrink it) and its item held while it is encoded. */
    for (Py_ssize_t i = 0; i < (is_list ? PyList_GET_SIZE(o) : PyTuple_GET_SIZE(o)); i++) {
        PyObject *item = is_list ? PyList_GET_ITEM(o, i) : PyTuple_GET_ITEM(o, i);
        if (i)
            buf_putc(e->out, ',');
        step->index = i;
        Py_INCREF(item);
        int r = enc_value(e, item);
        Py_DECREF(item);
        if (r < 0) {
            e->depth--;
            return AP_ERR;
        }
    }
    buf_putc(e->out, ']');
    e->depth--;
    return AP_OK;
}

static int enc_value(enc_t *e, PyObject *o)
{
    if (AP_UNLIKELY(e->out->len - e->start > e->limit))
        return enc_too_large(e);
    PyTypeObject *t = Py_TYPE(o);
    if (t == &PyUnicode_Type)
        return enc_str(e, o, 0);
    if (o == Py_None) {
        buf_append(e->out, "null", 4);
        return AP_OK;
    }
    /* bool before int: True is an int */
    if (o == Py_True) {
        buf_append(e->out, "true", 4);
        return AP_OK;
    }
    if (o == Py_False) {
        buf_append(e->out, "false", 5);
        return AP_OK;
    }
    if (t == &PyLong_Type)
        return enc_long(e, o);
    if (t == &PyFloat_Type)
        return enc_float(e, o);
    if (t == &PyDict_Type)
        return enc_dict(e, o);
    if (t == &PyList_Type || t == &PyTuple_Type)
        return enc_seq(e, o);
    /* subclasses, by value */
    if (PyUnicode_Check(o))
        return enc_str(e, o, 0);
    if (PyLong_Check(o))
        return enc_long(e, o);
    if (PyFloat_Check(o))
        return enc_float(e, o);
    if (PyDict_Check(o))
        return enc_dict(e, o);
    if (PyList_Check(o) || PyTuple_Check(o))
        return enc_seq(e, o);
    char what[128];
    snprintf(what, sizeof(what), "%.100s", t->tp_name);
    return enc_fail(e, PyExc_TypeError, e->depth, what);
}

int pyconv_encode(PyObject *obj, buf_t *out, size_t limit)
{
    return pyconv_encode_named(obj, out, limit, "result");
}

int pyconv_encode_named(PyObject *obj, buf_t *out, size_t limit, const char *what)
{
    enc_t e;
    e.what = what;
    e.out = out;
    e.start = out->len;
    e.limit = limit;
    e.depth = 0;
    e.too_large = 0;
    if (enc_value(&e, obj) < 0 || (out->len - e.start > limit && enc_too_large(&e) < 0)) {
        out->len = e.start;
        return e.too_large ? PYCONV_TOO_LARGE : AP_ERR;
    }
    return AP_OK;
}
