/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wresult.h - the master's check of a worker's RESULT frame against
 * maxResultBytes.
 *
 * The worker refuses an oversize result itself (bridge/msg.c: it knows the
 * encoded size before sending and answers agent_error "result too large
 * (N bytes, limit M)"), but a worker runs agent code and is not trusted
 * (STYLE.md, habit 17): a RESULT frame over the limit that reaches the
 * master anyway is not delivered.  Its message is answered with the same
 * agent_error instead, as if the worker had sent it; the worker keeps
 * serving and nobody else is touched.
 */
#ifndef AP_WRESULT_H
#define AP_WRESULT_H

#include "ap_frame.h"

#include <stddef.h>

struct worker;

/* Room for the ERROR payload wresult_refuse writes. */
#define WRESULT_REFUSAL_MAX 128

/* Looks at the header h of a complete frame from w, before its payload is
 * read (the caller leaves out the master's own agent.metrics asks).
 * Returns 0 when it is to be handled as it is (not a RESULT, or within
 * maxResultBytes).  Returns 1
 * when it is a RESULT over maxResultBytes: *eh is then an ERROR header for
 * the same message and err (cap at least WRESULT_REFUSAL_MAX) its
 * NUL-terminated payload, {"code":"agent_error","message":"result too
 * large (N bytes, limit M)"}, to handle instead; the caller drops the
 * frame's payload unread.  The refusal is logged (worker, pid, sizes). */
int wresult_refuse(const struct worker *w, const ap_frame_hdr *h, ap_frame_hdr *eh, char *err, size_t cap);

#endif
