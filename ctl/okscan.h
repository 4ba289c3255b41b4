/*
 * okscan.h - find a response line's top-level "ok" without buffering it.
 *
 * agentpoolctl passes response lines through unchanged and may see lines
 * far larger than it is willing to hold, yet its exit status depends on
 * whether each one said "ok": true.  An okscan is a small lexical state
 * machine fed the bytes of one line in any number of pieces: it tracks
 * strings, escapes and nesting, and remembers the value of the member
 * "ok" of the outermost object only, so {"result":{"ok":false},"ok":true}
 * and strings containing "ok":false are read correctly.  Fixed size, no
 * allocation, never fails; garbage simply yields "not ok".
 */
#ifndef CTL_OKSCAN_H
#define CTL_OKSCAN_H

#include <stddef.h>

typedef struct {
    int depth;         /* nesting level; 1 = inside the outermost container */
    char top_obj;      /* the outermost container is an object */
    char in_str;       /* inside a string literal */
    char esc;          /* the previous byte was a backslash inside a string */
    char expect_key;   /* at depth 1, the next string is a member name */
    char in_key;       /* collecting a member name at depth 1 */
    char key_done;     /* a member name at depth 1 ended; ':' comes next */
    char key_is_ok;    /* that member name was exactly "ok" so far */
    unsigned char keylen;
    char in_value;     /* reading the literal value of "ok" */
    unsigned char litlen;
    char lit[6];       /* "true" / "false" and one byte to spot longer words */
    signed char verdict; /* -1 no "ok" seen, 0 false/other, 1 true */
} okscan;

/* Prepares s for a new line. */
void okscan_reset(okscan *s);
/* Feeds n bytes of the current line (without its terminating newline). */
void okscan_feed(okscan *s, const char *p, size_t n);
/* 1 when the line fed so far has top-level "ok": true, else 0. */
int okscan_ok(const okscan *s);

#endif
