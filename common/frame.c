/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * frame.c - encode and decode the master <-> worker frame header.
 *
 * Pure functions over byte arrays, used by both processes (see
 * include/ap_frame.h for the layout).  Explicit little-endian byte order
 * keeps the codec independent of struct padding and easy to fuzz.
 */
#include "ap_frame.h"
#include "ap_common.h"

static void put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void ap_frame_encode(unsigned char out[AP_FRAME_HDR_SIZE], const ap_frame_hdr *h)
{
    put_u32(out, h->len);
    out[4] = h->kind;
    out[5] = h->flags;
    put_u16(out + 6, h->aux);
    put_u64(out + 8, h->id);
}

void ap_frame_meta_encode(unsigned char out[AP_FRAME_META_SIZE], const ap_frame_meta *m)
{
    put_u64(out, m->deadline_ms);
    put_u32(out + 8, m->attempt);
    put_u32(out + 12, m->id_len);
}

void ap_frame_meta_decode(const unsigned char in[AP_FRAME_META_SIZE], ap_frame_meta *m)
{
    m->deadline_ms = get_le(in, 8);
    m->attempt = (uint32_t)get_le(in + 8, 4);
    m->id_len = (uint32_t)get_le(in + 12, 4);
}

void ap_frame_ext_encode(unsigned char out[AP_FRAME_EXT_SIZE], const ap_frame_ext *e)
{
    put_u32(out, e->state_len);
    put_u32(out + 4, e->resume_len);
}

void ap_frame_ext_decode(const unsigned char in[AP_FRAME_EXT_SIZE], ap_frame_ext *e)
{
    e->state_len = (uint32_t)get_le(in, 4);
    e->resume_len = (uint32_t)get_le(in + 4, 4);
}

void ap_frame_credit_encode(unsigned char out[AP_FRAME_CREDIT_SIZE], uint32_t n)
{
    put_u32(out, n);
}

uint32_t ap_frame_credit_decode(const unsigned char in[AP_FRAME_CREDIT_SIZE])
{
    return (uint32_t)get_le(in, 4);
}

int ap_frame_decode(const unsigned char in[AP_FRAME_HDR_SIZE], ap_frame_hdr *h)
{
    h->len = (uint32_t)get_le(in, 4);
    h->kind = in[4];
    h->flags = in[5];
    h->aux = (uint16_t)get_le(in + 6, 2);
    h->id = get_le(in + 8, 8);
    if (h->kind < 1 || h->kind > AP_FRAME_KIND_MAX)
        return AP_ERR;
    if (h->len > AP_FRAME_MAX_PAYLOAD)
        return AP_ERR;
    return AP_OK;
}

const char *ap_frame_kind_name(unsigned kind)
{
    static const char *const names[] = {
        "?", "READY", "START_FAILED", "REQUEST", "RESULT", "ERROR",
        "STOP", "CANCEL", "PING", "PONG", "CHUNK", "CREDIT", "EVENT", "STATE", "CHECKPOINT", "USAGE",
    };
    return kind < AP_ARRAY_LEN(names) ? names[kind] : "?";
}

int ap_frame_event_topic_valid(const char *t, size_t n)
{
    if (n == 0 || n > AP_EVENT_TOPIC_MAX)
        return 0;
    size_t seg = 0; /* bytes of the segment so far */
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == '.') {
            if (seg == 0)
                return 0;
            seg = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-') {
            seg++;
        } else {
            return 0;
        }
    }
    return seg > 0;
}

uint16_t ap_frame_cpu_encode(uint64_t ns)
{
    uint64_t x = ns / 1000u + 1; /* microseconds + 1: never 0 */
    if (x < 2048)
        return (uint16_t)x;
    unsigned e = 1;
    while ((x >> (e - 1)) > 4095 && e < 31)
        e++;
    uint64_t m = x >> (e - 1);
    if (m > 4095)
        return 0xFFFF; /* beyond the largest: cut */
    return (uint16_t)(e << 11 | (unsigned)(m - 2048));
}

uint64_t ap_frame_cpu_decode(uint16_t aux)
{
    if (aux == 0)
        return AP_FRAME_CPU_NONE;
    unsigned e = aux >> 11, m = aux & 2047u;
    uint64_t x = e == 0 ? m : (uint64_t)(2048u + m) << (e - 1);
    return (x - 1) * 1000u;
}
