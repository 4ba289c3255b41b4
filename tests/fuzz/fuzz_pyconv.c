/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_pyconv.c - libFuzzer target for the worker's JSON <-> Python
 * converter (bridge/pyconv.c), run inside an embedded CPython started
 * once in LLVMFuzzerInitialize.  Python allocates with plain malloc here
 * (PYTHONMALLOC=malloc, unless the environment says otherwise), so ASan
 * sees a use of a freed object or a read past one, and hashes with a
 * fixed seed (PYTHONHASHSEED=0), so runs repeat.
 *
 * Each input is JSON text (or anything).  pyconv_decode must:
 *   - on strict JSON (pool/path/scan.c's scan_json_value) succeed;
 *   - agree with the json module (json.loads over the strictly decoded
 *     UTF-8, NaN/Infinity refused): the same value, type for type, key
 *     order included, or both fail; the only allowed differences are
 *     blank text (None for pyconv) and nesting above AP_MAX_JSON_DEPTH
 *     (json goes deeper); accepting what scan_json_value refuses is only
 *     allowed for lone surrogate escapes, which both decoders keep, and
 *     for numbers infinite as doubles (1e400), which the master refuses
 *     at its edge (scan.c) but pyconv and json both read as inf (encoding
 *     then fails, below): a tree pyconv accepts from refused text holds
 *     a lone surrogate or a non-finite float, or the text has a number
 *     infinite as a double or a lone surrogate that a later duplicate
 *     key replaced ({"k":1e400,"k":3} decodes to {"k": 3});
 *   - on failure leave a ValueError "invalid JSON at byte N: ..." with N
 *     inside the text, and no reference behind: Py_REFCNT of None, True
 *     and False back where they were;
 *   - on success hand back a tree whose lists, dicts, floats and large
 *     ints are referenced once (by their parent), and which holds exactly
 *     the references to None/True/False that it contains.
 * Then pyconv_encode of what was decoded must fail exactly when the value
 * holds an infinite float or a lone surrogate (ValueError, the buffer
 * length put back), and otherwise write one line of strict JSON that is
 * byte for byte json.dumps(separators=(',', ':'), ensure_ascii=False),
 * that decodes to an equal value and encodes to the same bytes again; the
 * limit is exact (the output's length passes, one byte less fails); a
 * tuple around the value encodes as [value].  pyconv_str,
 * pyconv_append_cstr and pyconv_append_str_lossy are checked on the raw
 * input and on the strings decoded.
 *
 * Leaks: libFuzzer's leak check after each input (run whenever an input
 * ends with more blocks allocated than before, which CPython's caches
 * and free lists make common, and slow: ~2.5 ms each) is off,
 * -detect_leaks=0 in options/fuzz_pyconv.flags.  LeakSanitizer's check
 * at exit stays on: without Py_FinalizeEx, what CPython keeps is still
 * reachable from its globals, and with PYTHONMALLOC=malloc a str, int or
 * float whose last reference was lost is a plain unreachable block.
 * Reference counts are checked by counting as well.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pyconv.h"
#include "buf.h"
#include "scan.h"
#include "ap_common.h"
#include "ap_defaults.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
/* Whether the text has a lone surrogate escape in a string or, outside
 * strings, a number that is infinite as a double: the reasons
 * scan_json_value refuses text pyconv may accept, even when the tree
 * keeps no trace of them (a duplicate key replaced the value). */
static unsigned hex4(const char *s, size_t n, size_t at)
{
    unsigned v = 0;
    if (at + 4 > n)
        return 0x10000u; /* not an escape */
    for (size_t k = at; k < at + 4; k++) {
        char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0x10000u;
    }
    return v;
}

static int text_has_refused_hidden(const char *s, size_t n)
{
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\' && i + 1 < n && s[i + 1] == 'u') {
                unsigned u = hex4(s, n, i + 2);
                if (u >= 0xDC00u && u <= 0xDFFFu)
                    return 1; /* a low half first */
                if (u >= 0xD800u && u <= 0xDBFFu) {
                    unsigned lo = (i + 7 < n && s[i + 6] == '\\' && s[i + 7] == 'u')
                                      ? hex4(s, n, i + 8) : 0x10000u;
                    if (lo < 0xDC00u || lo > 0xDFFFu)
                        return 1; /* a lone high half */
                    i += 6;
                }
                i += 5;
            } else if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            char tok[512];
            while (j < n && j - i < sizeof(tok) - 1 && strchr("+-.eE0123456789", s[j]) != NULL)
                j++;
            if (j - i < sizeof(tok) - 1) {
                memcpy(tok, s + i, j - i);
                tok[j - i] = '\0';
                if (isinf(strtod(tok, NULL)))
                    return 1;
            } else {
                return 1; /* too long to judge here: give the decoder the benefit */
            }
            i = j - 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "fuzz_pyconv: check failed at line %d: %s\n", __LINE__,   \
                    #cond);                                                           \
            if (PyErr_Occurred())                                                     \
                PyErr_Print();                                                        \
            abort();                                                                  \
        }                                                                             \
    } while (0)

#define ENC_LIMIT (1u << 20)

/* The reference: json.loads / json.dumps, looked up once. */
static PyObject *ref_loads, *ref_dumps;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("PYTHONMALLOC", "malloc", 0);
    /* libFuzzer learns from every memcmp in the process, CPython's dict
     * probing included: a fixed hash seed keeps run.sh's runs repeatable. */
    setenv("PYTHONHASHSEED", "0", 1);
    Py_InitializeEx(0);
    PyObject *g = PyDict_New();
    CHECK(g != NULL);
    CHECK(PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) == 0);
    PyObject *r = PyRun_String("import json\n"
                               "def _refuse(name):\n"
                               "    raise ValueError('not JSON: ' + name)\n"
                               "def loads(s):\n"
                               "    return json.loads(s, parse_constant=_refuse)\n"
                               "def dumps(o):\n"
                               "    return json.dumps(o, ensure_ascii=False, separators=(',', ':'),\n"
                               "                      allow_nan=False)\n",
                               Py_file_input, g, g);
    CHECK(r != NULL);
    Py_DECREF(r);
    ref_loads = PyDict_GetItemString(g, "loads");
    ref_dumps = PyDict_GetItemString(g, "dumps");
    CHECK(ref_loads != NULL && ref_dumps != NULL);
    Py_INCREF(ref_loads);
    Py_INCREF(ref_dumps);
    Py_DECREF(g);
    return 0;
}

/* ---- facts about a decoded tree ----------------------------------------- */

typedef struct {
    Py_ssize_t none, t, f; /* references to the singletons held */
    int depth;             /* containers nested, the outermost is 1 */
    int nonfinite;         /* an infinite float */
    int surrogate;         /* a str (value or key) with a lone surrogate */
} tree_facts;

static int str_has_surrogate(PyObject *s)
{
    if (PyUnicode_IS_ASCII(s))
        return 0;
    int kind = PyUnicode_KIND(s);
    const void *d = PyUnicode_DATA(s);
    for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(s); i++) {
        Py_UCS4 c = PyUnicode_READ(kind, d, i);
        if (c >= 0xD800 && c <= 0xDFFF)
            return 1;
    }
    return 0;
}

/* Walks a decoded tree: only exact JSON types, every container and every
 * float and large int referenced once. */
static void tree_walk(PyObject *o, int depth, tree_facts *f)
{
    PyTypeObject *t = Py_TYPE(o);
    if (o == Py_None) {
        f->none++;
    } else if (o == Py_True) {
        f->t++;
    } else if (o == Py_False) {
        f->f++;
    } else if (t == &PyUnicode_Type) {
        f->surrogate |= str_has_surrogate(o);
    } else if (t == &PyFloat_Type) {
        CHECK(Py_REFCNT(o) == 1);
        f->nonfinite |= !isfinite(PyFloat_AS_DOUBLE(o));
    } else if (t == &PyLong_Type) {
        int over = 0;
        long long v = PyLong_AsLongLongAndOverflow(o, &over);
        CHECK(!PyErr_Occurred());
        if (over || v < -5 || v > 256) /* beyond CPython's shared small ints */
            CHECK(Py_REFCNT(o) == 1);
    } else if (t == &PyList_Type) {
        CHECK(Py_REFCNT(o) == 1);
        if (depth + 1 > f->depth)
            f->depth = depth + 1;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(o); i++)
            tree_walk(PyList_GET_ITEM(o, i), depth + 1, f);
    } else if (t == &PyDict_Type) {
        CHECK(Py_REFCNT(o) == 1);
        if (depth + 1 > f->depth)
            f->depth = depth + 1;
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(o, &pos, &k, &v)) {
            CHECK(Py_TYPE(k) == &PyUnicode_Type);
            f->surrogate |= str_has_surrogate(k);
            tree_walk(v, depth + 1, f);
        }
    } else {
        fprintf(stderr, "fuzz_pyconv: decoded a %s\n", t->tp_name);
        abort();
    }
}

/* The depth of any JSON-typed tree (for what the json module returns). */
static int tree_depth(PyObject *o)
{
    int d = 0;
    if (PyList_CheckExact(o)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(o); i++) {
            int c = tree_depth(PyList_GET_ITEM(o, i));
            d = c > d ? c : d;
        }
        return d + 1;
    }
    if (PyDict_CheckExact(o)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(o, &pos, &k, &v)) {
            int c = tree_depth(v);
            d = c > d ? c : d;
        }
        return d + 1;
    }
    return 0;
}

/* Equal value, type for type, dict order included, -0.0 apart from 0.0. */
static int tree_equal(PyObject *a, PyObject *b)
{
    if (Py_TYPE(a) != Py_TYPE(b))
        return 0;
    if (a == Py_None || a == Py_True || a == Py_False || b == Py_None || b == Py_True ||
        b == Py_False)
        return a == b;
    if (PyFloat_CheckExact(a)) {
        double x = PyFloat_AS_DOUBLE(a), y = PyFloat_AS_DOUBLE(b);
        return x == y && signbit(x) == signbit(y);
    }
    if (PyLong_CheckExact(a) || PyUnicode_CheckExact(a)) {
        int r = PyObject_RichCompareBool(a, b, Py_EQ);
        CHECK(r >= 0);
        return r;
    }
    if (PyList_CheckExact(a)) {
        if (PyList_GET_SIZE(a) != PyList_GET_SIZE(b))
            return 0;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(a); i++)
            if (!tree_equal(PyList_GET_ITEM(a, i), PyList_GET_ITEM(b, i)))
                return 0;
        return 1;
    }
    if (PyDict_CheckExact(a)) {
        if (PyDict_GET_SIZE(a) != PyDict_GET_SIZE(b))
            return 0;
        Py_ssize_t pa = 0, pb = 0;
        PyObject *ka, *va, *kb, *vb;
        while (PyDict_Next(a, &pa, &ka, &va)) {
            CHECK(PyDict_Next(b, &pb, &kb, &vb));
            if (!tree_equal(ka, kb) || !tree_equal(va, vb))
                return 0;
        }
        return 1;
    }
    return 0;
}

/* ---- checks ------------------------------------------------------------- */

typedef struct {
    Py_ssize_t none, t, f;
} singleton_refs;

static singleton_refs refs_now(void)
{
    return (singleton_refs){Py_REFCNT(Py_None), Py_REFCNT(Py_True), Py_REFCNT(Py_False)};
}

/* The exception pyconv_decode must leave on invalid text; cleared. */
static void check_decode_error(size_t len)
{
    CHECK(PyErr_Occurred());
    if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
        PyErr_Clear();
        return;
    }
    CHECK(PyErr_ExceptionMatches(PyExc_ValueError));
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *msg = PyObject_Str(value);
    CHECK(msg != NULL);
    const char *m = PyUnicode_AsUTF8(msg);
    CHECK(m != NULL);
    unsigned long long pos;
    int used = 0;
    CHECK(sscanf(m, "invalid JSON at byte %llu: %n", &pos, &used) == 1 && used > 0);
    CHECK(pos <= len && m[used] != '\0');
    Py_DECREF(msg);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* s with every lone surrogate replaced by U+FFFD (new reference). */
static PyObject *str_replaced(PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    Py_UCS4 *u = PyUnicode_AsUCS4Copy(s);
    CHECK(u != NULL);
    for (Py_ssize_t i = 0; i < n; i++)
        if (u[i] >= 0xD800 && u[i] <= 0xDFFF)
            u[i] = 0xFFFD;
    PyObject *r = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, u, n);
    CHECK(r != NULL);
    PyMem_Free(u);
    return r;
}

/* Decodes out[from..len) as one JSON string and compares it with want. */
static void check_string_text(const buf_t *out, size_t from, PyObject *want)
{
    const char *text = (const char *)out->data + from;
    size_t n = out->len - from;
    CHECK(n >= 2 && text[0] == '"' && text[n - 1] == '"');
    CHECK(scan_json_value(text, n, 1, SCAN_ONE_LINE, NULL, NULL) == AP_OK);
    PyObject *got = pyconv_decode(text, n);
    CHECK(got != NULL && PyUnicode_CheckExact(got));
    CHECK(tree_equal(got, want));
    Py_DECREF(got);
}

/* pyconv_append_str_lossy on every str of a tree (at most *budget). */
static void check_lossy(PyObject *o, buf_t *out, int *budget)
{
    if (*budget <= 0)
        return;
    if (PyUnicode_CheckExact(o)) {
        (*budget)--;
        out->len = 0;
        buf_append(out, "x", 1);
        pyconv_append_str_lossy(out, o);
        CHECK(out->data[0] == 'x');
        PyObject *want = str_replaced(o);
        check_string_text(out, 1, want);
        Py_DECREF(want);
    } else if (PyList_CheckExact(o)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(o); i++)
            check_lossy(PyList_GET_ITEM(o, i), out, budget);
    } else if (PyDict_CheckExact(o)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(o, &pos, &k, &v)) {
            check_lossy(k, out, budget);
            check_lossy(v, out, budget);
        }
    }
}

/* pyconv_encode of a decoded tree: fails exactly for what JSON cannot
 * hold, else the canonical text, checked every way it can be cheaply. */
static void check_encode(PyObject *obj, const tree_facts *f, buf_t *out, buf_t *again)
{
    static const char prefix[] = "PFX";
    singleton_refs before = refs_now();

    out->len = 0;
    buf_append(out, prefix, 3);
    int rc = pyconv_encode(obj, out, ENC_LIMIT);
    CHECK(rc == AP_OK || rc == AP_ERR);
    CHECK(memcmp(out->data, prefix, 3) == 0);
    if (f->nonfinite || f->surrogate) {
        CHECK(rc == AP_ERR && out->len == 3);
        CHECK(PyErr_ExceptionMatches(PyExc_ValueError));
        PyErr_Clear();
        singleton_refs after = refs_now();
        CHECK(memcmp(&before, &after, sizeof(before)) == 0);
        return;
    }
    if (rc != AP_OK) {
        PyErr_Print();
        CHECK(rc == AP_OK);
    }
    CHECK(!PyErr_Occurred());
    const char *text = (const char *)out->data + 3;
    size_t n = out->len - 3;
    CHECK(n > 0 && n <= ENC_LIMIT);

    /* one line of strict JSON, no deeper than what was decoded */
    CHECK(scan_json_value(text, n, AP_MAX_JSON_DEPTH, SCAN_ONE_LINE, NULL, NULL) == AP_OK);

    /* decodes to the same value, which encodes to the same bytes */
    PyObject *back = pyconv_decode(text, n);
    CHECK(back != NULL);
    CHECK(tree_equal(obj, back));
    again->len = 0;
    CHECK(pyconv_encode(back, again, ENC_LIMIT) == AP_OK);
    CHECK(again->len == n && memcmp(again->data, text, n) == 0);
    Py_DECREF(back);

    /* the limit is exact */
    again->len = 0;
    CHECK(pyconv_encode(obj, again, n) == AP_OK);
    CHECK(again->len == n && memcmp(again->data, text, n) == 0);
    again->len = 0;
    buf_append(again, prefix, 3);
    CHECK(pyconv_encode(obj, again, n - 1) == PYCONV_TOO_LARGE);
    CHECK(again->len == 3 && PyErr_ExceptionMatches(PyExc_ValueError));
    PyErr_Clear();

    /* a tuple is written as an array */
    if (f->depth < AP_MAX_JSON_DEPTH) {
        PyObject *tup = PyTuple_Pack(1, obj);
        CHECK(tup != NULL);
        again->len = 0;
        CHECK(pyconv_encode(tup, again, ENC_LIMIT) == AP_OK);
        CHECK(again->len == n + 2 && again->data[0] == '[' && again->data[n + 1] == ']' &&
              memcmp(again->data + 1, text, n) == 0);
        Py_DECREF(tup);
    }
    singleton_refs after = refs_now();
    CHECK(memcmp(&before, &after, sizeof(before)) == 0);

    /* byte for byte what json.dumps writes */
    PyObject *d = PyObject_CallOneArg(ref_dumps, obj);
    CHECK(d != NULL);
    Py_ssize_t dn;
    const char *ds = PyUnicode_AsUTF8AndSize(d, &dn);
    CHECK(ds != NULL);
    if ((size_t)dn != n || memcmp(ds, text, n) != 0) {
        fprintf(stderr, "fuzz_pyconv: pyconv_encode wrote %.*s\njson.dumps wrote %s\n", (int)n,
                text, ds);
        abort();
    }
    Py_DECREF(d);
}

/* The raw input as a C string: pyconv_str and pyconv_append_cstr. */
static void check_raw_string(const char *s, size_t n, buf_t *out)
{
    PyObject *want = PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, NULL);
    if (want == NULL) {
        CHECK(PyErr_ExceptionMatches(PyExc_UnicodeDecodeError));
        PyErr_Clear();
    }
    PyObject *got = pyconv_str(s, n);
    if (want == NULL) {
        CHECK(got == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError));
        PyErr_Clear();
        return;
    }
    CHECK(got != NULL && tree_equal(got, want));
    Py_DECREF(got);
    got = pyconv_str(s, n); /* again: through the cache when short ASCII */
    CHECK(got != NULL && tree_equal(got, want));
    Py_DECREF(got);

    out->len = 0;
    buf_append(out, "x", 1);
    pyconv_append_cstr(out, s, n);
    CHECK(out->data[0] == 'x');
    check_string_text(out, 1, want);
    Py_DECREF(want);
}

static int is_blank(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    buf_t out, again;
    tree_facts f;

    CHECK(!PyErr_Occurred());
    buf_init(&out, 64);
    buf_init(&again, 64);
    PyGC_Disable(); /* nothing else may touch the counts below */

    int valid = scan_json_value(text, size, AP_MAX_JSON_DEPTH, 0, NULL, NULL) == AP_OK;
    int blank = is_blank(data, size);
    singleton_refs before = refs_now();
    PyObject *obj = pyconv_decode(text, size);
    if (obj == NULL) {
        check_decode_error(size);
        singleton_refs after = refs_now();
        CHECK(memcmp(&before, &after, sizeof(before)) == 0);
        CHECK(!valid && !blank);
    } else {
        CHECK(!PyErr_Occurred());
        CHECK(Py_REFCNT(obj) == 1 || obj == Py_None || obj == Py_True || obj == Py_False ||
              PyUnicode_CheckExact(obj) || PyLong_CheckExact(obj));
        memset(&f, 0, sizeof(f));
        tree_walk(obj, 0, &f);
        CHECK(f.depth <= AP_MAX_JSON_DEPTH);
        singleton_refs after = refs_now();
        CHECK(after.none == before.none + f.none && after.t == before.t + f.t &&
              after.f == before.f + f.f);
        if (blank)
            CHECK(obj == Py_None);
        /* text scan_json_value refuses is only accepted with a lone
         * surrogate escape or a number infinite as a double in it
         * (checked against json below) */
        if (!valid && !blank)
            CHECK(f.surrogate || f.nonfinite || text_has_refused_hidden(text, size));
        check_encode(obj, &f, &out, &again);
        int budget = 32;
        check_lossy(obj, &out, &budget);
    }
    check_raw_string(text, size, &out);
    PyGC_Enable();

    /* the json module, on the same text */
    PyObject *ref = NULL;
    PyObject *u = PyUnicode_DecodeUTF8(text, (Py_ssize_t)size, NULL);
    if (u != NULL) {
        ref = PyObject_CallOneArg(ref_loads, u);
        Py_DECREF(u);
    }
    PyErr_Clear();
    if (obj != NULL && !blank) {
        if (ref == NULL) {
            fprintf(stderr, "fuzz_pyconv: pyconv_decode accepted text json.loads refuses\n");
            abort();
        }
        CHECK(tree_equal(obj, ref));
    } else if (obj == NULL && ref != NULL) {
        /* json nests deeper; nothing else may differ */
        CHECK(tree_depth(ref) > AP_MAX_JSON_DEPTH);
    }
    Py_XDECREF(ref);
    Py_XDECREF(obj);
    buf_free(&out);
    buf_free(&again);
    CHECK(!PyErr_Occurred());
    return 0;
}
