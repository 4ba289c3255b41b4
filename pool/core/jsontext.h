/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * jsontext.h - a config file's text made ready for cJSON, and positions
 * in it told as line and column of the file as written.
 *
 * A config may carry comments: whole lines starting with '#', and // and
 * slash-star comments, which cJSON_Minify removes (it copies strings
 * untouched, so "//" or "/ *" inside a string survive).  Minifying moves
 * every byte, so a position cJSON reports in the minified text is mapped
 * back to the file by minifying prefixes of the original (the length of
 * the minified prefix grows with the prefix): no second parser.
 *
 * Used by config.c; pure apart from allocation, never logs.
 */
#ifndef AP_JSONTEXT_H
#define AP_JSONTEXT_H

#include <stddef.h>

typedef struct {
    char *orig;      /* the text with '#' lines blanked (same offsets as the file), NUL-terminated */
    size_t len;
    char *min;       /* orig minified: what cJSON parses */
    size_t minlen;
} jsontext;

/* Copies text[0..len), blanks '#' comment lines, minifies.  AP_ERR with
 * "line L, column C: why" in err (and jt empty) for a NUL byte or a '/'
 * outside a string that starts no comment (which cJSON_Minify would drop
 * silently, making "30/2" read as 302). */
int jsontext_open(jsontext *jt, const char *text, size_t len, char *err, size_t errlen);
/* Frees what jsontext_open made.  Safe on an opened-and-failed jt. */
void jsontext_close(jsontext *jt);
/* The offset in orig of the byte at min[off]; off == minlen gives the
 * offset just past the last byte that minifying kept. */
size_t jsontext_orig_offset(const jsontext *jt, size_t off);
/* Where to tell a parse error cJSON reported at min[off]: its offset in
 * orig, except when blank lines or comments separate it from the byte
 * before it: cJSON often stops one token past the fault (",," is told at
 * the token after the second comma), so the error is then put just after
 * the previous byte, on the line where the fault is, not lines below. */
size_t jsontext_stop_offset(const jsontext *jt, size_t off);
/* Line and column (both from 1; columns count UTF-8 characters) of byte
 * off in text. */
void jsontext_line_col(const char *text, size_t off, unsigned *line, unsigned *col);

#endif
