/*
 * okscan.c - streaming detector of a response's top-level "ok" (see
 * okscan.h).  It is deliberately a lexer, not a validator: it assumes the
 * server writes JSON and only needs to be right about where strings and
 * containers begin and end.  A member name is compared against "ok"
 * byte by byte as it streams past; a name written with escapes never
 * matches (the server writes a plain "ok").
 */
#include "okscan.h"

#include <string.h>

void okscan_reset(okscan *s)
{
    memset(s, 0, sizeof(*s));
    s->verdict = -1;
}

/* Ends the literal after "ok": and records whether it was true. */
static void okscan_end_value(okscan *s)
{
    s->in_value = 0;
    s->verdict = (s->litlen == 4 && memcmp(s->lit, "true", 4) == 0) ? 1 : 0;
}

static void okscan_byte(okscan *s, char c)
{
    if (s->in_str) {
        if (s->esc) {
            s->esc = 0;
            s->key_is_ok = 0;
        } else if (c == '\\') {
            s->esc = 1;
            s->key_is_ok = 0;
        } else if (c == '"') {
            s->in_str = 0;
            if (s->in_key) {
                s->in_key = 0;
                s->key_done = 1;
                if (s->keylen != 2)
                    s->key_is_ok = 0;
            }
        } else if (s->in_key) {
            if (s->keylen >= 2 || c != "ok"[s->keylen])
                s->key_is_ok = 0;
            if (s->keylen < 255)
                s->keylen++;
        }
        return;
    }
    if (s->in_value) {
        if (c >= 'a' && c <= 'z') {
            if (s->litlen < sizeof(s->lit))
                s->lit[s->litlen++] = c;
            return;
        }
        if (s->litlen == 0 && (c == ' ' || c == '\t' || c == '\r'))
            return;
        okscan_end_value(s); /* then c is handled as usual below */
    }
    switch (c) {
    case '"':
        s->in_str = 1;
        if (s->depth == 1 && s->top_obj && s->expect_key) {
            s->expect_key = 0;
            s->in_key = 1;
            s->keylen = 0;
            s->key_is_ok = 1;
        }
        break;
    case '{':
    case '[':
        if (s->depth == 0) {
            s->top_obj = (c == '{');
            s->expect_key = s->top_obj;
        }
        if (s->depth < 1000000)
            s->depth++;
        break;
    case '}':
    case ']':
        if (s->depth > 0)
            s->depth--;
        break;
    case ',':
        if (s->depth == 1 && s->top_obj)
            s->expect_key = 1;
        break;
    case ':':
        if (s->depth == 1 && s->key_done) {
            s->key_done = 0;
            if (s->key_is_ok) {
                s->in_value = 1;
                s->litlen = 0;
            }
        }
        break;
    default:
        break;
    }
}

void okscan_feed(okscan *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        okscan_byte(s, p[i]);
}

int okscan_ok(const okscan *s)
{
    if (s->in_value) {
        /* The line ended right after the literal: judge what we have. */
        okscan tmp = *s;
        okscan_end_value(&tmp);
        return tmp.verdict == 1;
    }
    return s->verdict == 1;
}
