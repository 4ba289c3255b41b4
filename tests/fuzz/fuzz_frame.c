/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_frame.c - libFuzzer target for the frame codec (common/frame.c).
 *
 * The first 16 bytes are decoded as a header: decoding must accept
 * exactly the headers with a known kind and a length within
 * AP_FRAME_MAX_PAYLOAD, and re-encoding what it decoded must give back
 * the same 16 bytes.  The same bytes are also read as field values that
 * are encoded and decoded again, which must round-trip field by field.
 */
#include "ap_frame.h"
#include "ap_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_frame: check failed at line %d: %s\n", __LINE__,  \
                    #cond);                                                         \
            abort();                                                                \
        }                                                                           \
    } while (0)

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char in[AP_FRAME_HDR_SIZE] = {0}, out[AP_FRAME_HDR_SIZE];
    ap_frame_hdr h, h2;
    int rc;

    memcpy(in, data, size < sizeof in ? size : sizeof in);

    /* bytes -> header -> bytes */
    rc = ap_frame_decode(in, &h);
    CHECK(h.len == le(in, 4) && h.kind == in[4] && h.flags == in[5] && h.aux == le(in + 6, 2) &&
          h.id == le(in + 8, 8));
    CHECK((rc == AP_OK) == (h.kind >= 1 && h.kind <= AP_FRAME_KIND_MAX &&
                            h.len <= AP_FRAME_MAX_PAYLOAD));
    CHECK(rc == AP_OK || rc == AP_ERR);
    ap_frame_encode(out, &h);
    CHECK(memcmp(in, out, sizeof in) == 0);
    CHECK(ap_frame_kind_name(h.kind) != NULL);
    CHECK((strcmp(ap_frame_kind_name(h.kind), "?") != 0) == (h.kind >= 1 && h.kind <= AP_FRAME_KIND_MAX));

    /* header -> bytes -> header, with fields taken from further input */
    if (size >= 2 * AP_FRAME_HDR_SIZE) {
        const uint8_t *f = data + AP_FRAME_HDR_SIZE;
        h.len = (uint32_t)le(f, 4);
        h.kind = f[4];
        h.flags = f[5];
        h.aux = (uint16_t)le(f + 6, 2);
        h.id = le(f + 8, 8);
        ap_frame_encode(out, &h);
        rc = ap_frame_decode(out, &h2);
        CHECK(h2.len == h.len && h2.kind == h.kind && h2.flags == h.flags && h2.aux == h.aux &&
              h2.id == h.id);
        CHECK((rc == AP_OK) == (h.kind >= 1 && h.kind <= AP_FRAME_KIND_MAX &&
                                h.len <= AP_FRAME_MAX_PAYLOAD));
    }

    /* a CREDIT payload: bytes -> count -> bytes, and count -> bytes -> count */
    {
        unsigned char c[AP_FRAME_CREDIT_SIZE], c2[AP_FRAME_CREDIT_SIZE];
        memcpy(c, in, sizeof c);
        uint32_t n = ap_frame_credit_decode(c);
        CHECK(n == le(c, 4));
        ap_frame_credit_encode(c2, n);
        CHECK(memcmp(c, c2, sizeof c) == 0);
        ap_frame_credit_encode(c2, (uint32_t)h.id);
        CHECK(ap_frame_credit_decode(c2) == (uint32_t)h.id);
    }
    return 0;
}
