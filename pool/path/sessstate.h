/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sessstate.h - session state in the master (docs/sessions.md): what a
 * session's message carries to its worker and what the worker's STATE
 * frames change.  Placeholder until the state flow lands: no message
 * carries state and STATE frames are not expected.
 */
#ifndef AP_SESSSTATE_H
#define AP_SESSSTATE_H

#include "ap_frame.h"

#include <stdint.h>

struct msg;
struct worker;

/* The state m's REQUEST carries (AP_FRAME_REQ_SESSION): 1 with *text and
 * *len, or 0 when m carries none. */
int sessstate_text(const struct msg *m, const char **text, uint32_t *len);

/* A STATE frame h (payload, h->len bytes) from w. */
void sessstate_frame(struct worker *w, const ap_frame_hdr *h, const char *payload);

#endif
