/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sline.h - what a line from agentpoold is: an answer, a stream's chunk
 * or a stream's heartbeat.
 *
 * A request sent with "stream": true gets chunk lines
 * {"id":ID,"chunk":VALUE,"seq":N} and heartbeat lines
 * {"id":ID,"heartbeat":true} before its one final answer (the usual
 * response, with a top-level "ok").  exchange.c asks here how to count
 * each line it receives: answers are counted and judged by their "ok",
 * chunks and heartbeats are not answers.  The members are read with
 * jspan (cJSON reads every value), so nested or quoted lookalikes never
 * count; a line that is none of the three (not JSON, no "ok") is a failed
 * answer, as it always was.  Pure: no I/O, nothing kept.
 */
#ifndef CTL_SLINE_H
#define CTL_SLINE_H

#include "jspan.h"

#include <stddef.h>

typedef enum {
    SLINE_ANSWER_OK = 0, /* a top-level "ok": true */
    SLINE_ANSWER_FAILED, /* "ok" not true, or no "ok" and neither of the below */
    SLINE_CHUNK,         /* no "ok"; an "id" and a "chunk" */
    SLINE_HEARTBEAT      /* no "ok"; an "id" and "heartbeat": true */
} sline_kind;

/* Classifies the complete line p[0..n) (without its newline).  Returns
 * its kind; for SLINE_CHUNK, *chunk spans the chunk's value byte for
 * byte (else it is cleared).  chunk may be NULL. */
sline_kind sline_classify(const char *p, size_t n, jspan *chunk);

/* Classifies a line of which only the start p[0..n) is known (a line too
 * long to hold whole): an answer by its "ok" as in sline_classify, else
 * a chunk when its members begin with "id" and then "chunk" (the order
 * agentpoold writes), else a failed answer. */
sline_kind sline_classify_start(const char *p, size_t n);

#endif
