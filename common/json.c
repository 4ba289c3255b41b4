/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * json.c - the JSON string escaper (rules in ap_json.h).
 *
 * One pass over the input, one unit (a character or an escape) at a
 * time: a unit is written only when it fits whole with room left for
 * the NUL, so the output is a prefix of the untruncated output that ends
 * on a unit boundary.  Printable ASCII, the common case, takes the first
 * branch; UTF-8 is checked by ap_utf8_len(), the one check both
 * processes use.
 */
#include "ap_json.h"
#include "ap_utf8.h"

#include <string.h>

size_t ap_json_escape(char *dst, size_t cap, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0, i = 0;
    if (cap == 0)
        return 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            if (o + 1 >= cap)
                break;
            dst[o++] = (char)c;
            i++;
            continue;
        }
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        const char *unit = esc;
        size_t k = 2, used = 1; /* output bytes, input bytes */
        if (c >= 0x80) {
            used = ap_utf8_len(s + i, len - i);
            if (used) {
                unit = src + i;
                k = used;
            } else {
                unit = "\\ufffd";
                k = 6;
                used = 1;
            }
        } else {
            switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            default: /* the other control bytes and DEL */
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                k = 6;
            }
        }
        if (o + k >= cap)
            break;
        memcpy(dst + o, unit, k);
        o += k;
        i += used;
    }
    dst[o] = '\0';
    return o;
}
