/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sessstate.c - session state in the master (see sessstate.h).
 * Placeholder until the state flow lands.
 */
#include "sessstate.h"
#include "msg.h"

int sessstate_text(const struct msg *m, const char **text, uint32_t *len)
{
    (void)m;
    *text = NULL;
    *len = 0;
    return 0;
}

void sessstate_frame(struct worker *w, const ap_frame_hdr *h, const char *payload)
{
    (void)w;
    (void)h;
    (void)payload;
}
