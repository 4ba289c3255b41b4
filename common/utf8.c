/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * utf8.c - the UTF-8 well-formedness check (contract in ap_utf8.h).
 *
 * Checks the lead byte's range, then each continuation byte against the
 * bounds of table 3-7: the second byte's bounds depend on the lead (E0
 * and F0 exclude overlong forms, ED excludes surrogates, F4 stops at
 * U+10FFFF), the others are 80..BF.  No byte past the sequence is read.
 */
#include "ap_utf8.h"

size_t ap_utf8_len(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xBF;
    size_t need;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return need;
}
