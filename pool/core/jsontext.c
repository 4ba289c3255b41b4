/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * jsontext.c - comments out of a config text (cJSON_Minify, plus '#'
 * lines), and minified positions mapped back to the file's line and
 * column (see jsontext.h).
 *
 * cJSON_Minify (1.7.15) drops a '/' that starts no comment without a
 * word, so "30/2" would become 302: jsontext_open minifies a second copy
 * in which such slashes are replaced by a byte cJSON_Minify keeps (0x01);
 * the two results differ in length exactly when a lone slash was dropped
 * outside a string, and that text is refused at the slash's position.
 * It also drops everything after a "/ *" that is never closed, settings
 * and all, without a word: jsontext_open refuses that too, at the "/ *".
 * Called by config.c only.
 */
#include "jsontext.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

/* A line whose first non-blank character is '#' is blanked in place. */
static void jsontext_blank_hash_lines(char *text, size_t len)
{
    int line_start = 1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') {
            line_start = 1;
        } else if (line_start && text[i] == '#') {
            for (; i < len && text[i] != '\n'; i++)
                text[i] = ' ';
            i--;
        } else if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r') {
            line_start = 0;
        }
    }
}

/* Length of cJSON_Minify(text[0..n)), through scratch (n + 1 bytes). */
static size_t jsontext_minlen(const char *text, size_t n, char *scratch)
{
    memcpy(scratch, text, n);
    scratch[n] = '\0';
    cJSON_Minify(scratch);
    return strlen(scratch);
}

/* The smallest n such that src[0..n) minifies to at least `want` bytes. */
static size_t jsontext_prefix_for(const char *src, size_t len, size_t want)
{
    if (want == 0)
        return 0;
    char *scratch = ap_malloc(len + 1);
    size_t lo = 0, hi = len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (jsontext_minlen(src, mid, scratch) >= want)
            hi = mid;
        else
            lo = mid + 1;
    }
    ap_free(scratch);
    return lo;
}

size_t jsontext_orig_offset(const jsontext *jt, size_t off)
{
    if (off < jt->minlen)
        return jsontext_prefix_for(jt->orig, jt->len, off + 1) - 1;
    return jsontext_prefix_for(jt->orig, jt->len, jt->minlen);
}

size_t jsontext_stop_offset(const jsontext *jt, size_t off)
{
    size_t at = jsontext_orig_offset(jt, off);
    if (off == 0 || off > jt->minlen)
        return at;
    size_t after_prev = jsontext_orig_offset(jt, off - 1) + 1;
    if (after_prev < at && memchr(jt->orig + after_prev, '\n', at - after_prev) != NULL)
        return after_prev;
    return at;
}

void jsontext_line_col(const char *text, size_t off, unsigned *line, unsigned *col)
{
    unsigned l = 1, c = 1;
    for (size_t i = 0; i < off; i++) {
        unsigned char b = (unsigned char)text[i];
        if (b == '\n') {
            l++;
            c = 1;
        } else if ((b & 0xC0) != 0x80) { /* not a UTF-8 continuation byte */
            c++;
        }
    }
    *line = l;
    *col = c;
}

static void jsontext_error_at(const jsontext *jt, size_t orig_off, const char *why, char *err, size_t errlen)
{
    unsigned line, col;
    jsontext_line_col(jt->orig, orig_off, &line, &col);
    snprintf(err, errlen, "line %u, column %u: %s", line, col, why);
}

/* A '/' that is neither part of "//", "/ *" nor "* /". */
static int jsontext_lone_slash(const char *t, size_t i, size_t len)
{
    if (t[i] != '/')
        return 0;
    char next = i + 1 < len ? t[i + 1] : '\0', prev = i > 0 ? t[i - 1] : '\0';
    return next != '/' && next != '*' && prev != '/' && prev != '*';
}

/* Where a block comment that is never closed starts (outside strings,
 * as cJSON_Minify reads them), or len when every one is closed. */
static size_t jsontext_open_comment(const char *t, size_t len)
{
    enum { CODE, STRING, LINE, BLOCK } st = CODE;
    size_t start = len;
    for (size_t i = 0; i < len; i++) {
        char c = t[i], next = i + 1 < len ? t[i + 1] : '\0';
        switch (st) {
        case CODE:
            if (c == '"')
                st = STRING;
            else if (c == '/' && next == '/')
                st = LINE, i++;
            else if (c == '/' && next == '*')
                st = BLOCK, start = i, i++;
            break;
        case STRING:
            if (c == '\\')
                i++;
            else if (c == '"')
                st = CODE;
            break;
        case LINE:
            if (c == '\n')
                st = CODE;
            break;
        case BLOCK:
            if (c == '*' && next == '/')
                st = CODE, i++;
            break;
        }
    }
    return st == BLOCK ? start : len;
}

int jsontext_open(jsontext *jt, const char *text, size_t len, char *err, size_t errlen)
{
    memset(jt, 0, sizeof(*jt));
    jt->orig = ap_malloc(len + 1);
    memcpy(jt->orig, text, len);
    jt->orig[len] = '\0';
    jt->len = len;
    jsontext_blank_hash_lines(jt->orig, len);
    const char *nul = memchr(jt->orig, '\0', len);
    if (nul) {
        jsontext_error_at(jt, (size_t)(nul - jt->orig), "a NUL byte", err, errlen);
        goto fail;
    }
    size_t open = jsontext_open_comment(jt->orig, len);
    if (open < len) {
        jsontext_error_at(jt, open, "a comment \"/*\" that is never closed with \"*/\"", err, errlen);
        goto fail;
    }
    jt->min = ap_malloc(len + 1);
    memcpy(jt->min, jt->orig, len + 1);
    cJSON_Minify(jt->min);
    jt->minlen = strlen(jt->min);

    /* The marked copy: lone slashes become 0x01, which minifying keeps. */
    char *marked = ap_malloc(len + 1), *mmin = ap_malloc(len + 1);
    memcpy(marked, jt->orig, len + 1);
    for (size_t i = 0; i < len; i++)
        if (jsontext_lone_slash(jt->orig, i, len))
            marked[i] = '\x01';
    memcpy(mmin, marked, len + 1);
    cJSON_Minify(mmin);
    size_t mlen = strlen(mmin);
    if (mlen == jt->minlen) {
        ap_free(marked);
        ap_free(mmin);
        return AP_OK;
    }
    /* The first 0x01 the plain minified text has no '/' for was dropped
     * there: map it back through the marked copy's prefixes. */
    size_t i = 0, j = 0;
    while (j < mlen && !(mmin[j] == '\x01' && (i >= jt->minlen || jt->min[i] != '/')))
        i++, j++;
    size_t at = jsontext_prefix_for(marked, len, j + 1) - 1;
    ap_free(marked);
    ap_free(mmin);
    jsontext_error_at(jt, at, "'/' outside a string that starts no comment (// or /* */)", err, errlen);
fail:
    jsontext_close(jt);
    return AP_ERR;
}

void jsontext_close(jsontext *jt)
{
    ap_free(jt->orig);
    ap_free(jt->min);
    memset(jt, 0, sizeof(*jt));
}
