/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ap_utf8.h - the one UTF-8 well-formedness check, shared by the master
 * (dead-letter records, worker output in the log) and the JSON string
 * escaper (ap_json.h).
 *
 * Well-formed means Unicode's table 3-7, the definition RFC 3629 and
 * RFC 8259 use: no overlong forms, no surrogates (U+D800..U+DFFF),
 * nothing above U+10FFFF.  Pure: no allocation, no state, no I/O.
 */
#ifndef AP_UTF8_H
#define AP_UTF8_H

#include <stddef.h>

/* Length in bytes (1 to 4) of the well-formed UTF-8 sequence that starts
 * at s, of which n bytes may be read.  Every byte below 0x80 (NUL and
 * control bytes included) is a sequence of 1: whether it is printable
 * is the caller's business.  Returns 0 when n is 0 or s does not start a
 * well-formed sequence: a continuation byte, C0, C1 or F5..FF, an
 * overlong form, a surrogate, a value above U+10FFFF, or a sequence that
 * n cuts short.  Reads at most min(n, 4) bytes. */
size_t ap_utf8_len(const unsigned char *s, size_t n);

#endif
