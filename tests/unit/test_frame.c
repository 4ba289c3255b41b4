/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_frame.c - cmocka tests for the master <-> worker frame codec
 * (common/frame.c, include/ap_frame.h).
 *
 * Pins the wire layout byte for byte (little endian, 16 bytes), checks
 * that every kind survives a round trip with extreme field values, and
 * that decoding refuses an unknown kind or an oversize length while still
 * filling the header for the log line.
 */
#include "ap_common.h"
#include "ap_frame.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

static void test_layout_little_endian(void **state)
{
    const ap_frame_hdr h = {
        .len = 0x04030201u, .kind = AP_FRAME_REQUEST, .flags = 0xAB, .aux = 0x0605,
        .id = 0x0F0E0D0C0B0A0908ull,
    };
    static const unsigned char want[AP_FRAME_HDR_SIZE] = {
        0x01, 0x02, 0x03, 0x04, /* len */
        0x03,                   /* kind */
        0xAB,                   /* flags */
        0x05, 0x06,             /* aux */
        0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, /* id */
    };
    unsigned char out[AP_FRAME_HDR_SIZE];
    AP_UNUSED(state);

    assert_int_equal(AP_FRAME_HDR_SIZE, 16);
    memset(out, 0xEE, sizeof out);
    ap_frame_encode(out, &h);
    assert_memory_equal(out, want, sizeof want);
}

static void test_round_trip_every_kind(void **state)
{
    static const struct {
        uint32_t len;
        uint8_t flags;
        uint16_t aux;
        uint64_t id;
    } vals[] = {
        {0, 0, 0, 0},
        {1, 1, 1, 1},
        {AP_FRAME_MAX_PAYLOAD, 0xFF, 0xFFFF, UINT64_MAX},
        {AP_FRAME_MAX_PAYLOAD - 1, 0x80, 0x8000, 0x8000000000000000ull},
        {12345, 0x5A, 256, 0x0123456789ABCDEFull},
    };
    AP_UNUSED(state);

    for (unsigned kind = 1; kind <= AP_FRAME_KIND_MAX; kind++) {
        for (size_t i = 0; i < AP_ARRAY_LEN(vals); i++) {
            ap_frame_hdr in = {vals[i].len, (uint8_t)kind, vals[i].flags, vals[i].aux, vals[i].id};
            ap_frame_hdr out;
            unsigned char buf[AP_FRAME_HDR_SIZE];

            memset(&out, 0x55, sizeof out);
            ap_frame_encode(buf, &in);
            assert_int_equal(ap_frame_decode(buf, &out), AP_OK);
            assert_int_equal(out.len, in.len);
            assert_int_equal(out.kind, in.kind);
            assert_int_equal(out.flags, in.flags);
            assert_int_equal(out.aux, in.aux);
            assert_true(out.id == in.id);
        }
    }
}

static void test_decode_known_bytes(void **state)
{
    static const unsigned char in[AP_FRAME_HDR_SIZE] = {
        0x10, 0x00, 0x00, 0x00, AP_FRAME_RESULT, 0x00, 0x00, 0x00,
        0x2A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    };
    ap_frame_hdr h;
    AP_UNUSED(state);

    assert_int_equal(ap_frame_decode(in, &h), AP_OK);
    assert_int_equal(h.len, 16);
    assert_int_equal(h.kind, AP_FRAME_RESULT);
    assert_int_equal(h.flags, 0);
    assert_int_equal(h.aux, 0);
    assert_true(h.id == 0x010000000000002Aull);
}

static void test_unknown_kind_refused(void **state)
{
    static const unsigned bad_kinds[] = {0, AP_FRAME_KIND_MAX + 1, 0x7F, 0xFF};
    AP_UNUSED(state);

    for (size_t i = 0; i < AP_ARRAY_LEN(bad_kinds); i++) {
        unsigned char buf[AP_FRAME_HDR_SIZE] = {0};
        ap_frame_hdr h;

        buf[0] = 7;
        buf[4] = (unsigned char)bad_kinds[i];
        buf[8] = 9;
        assert_int_equal(ap_frame_decode(buf, &h), AP_ERR);
        /* filled anyway, so the caller can log what it saw */
        assert_int_equal(h.kind, bad_kinds[i]);
        assert_int_equal(h.len, 7);
        assert_true(h.id == 9);
    }
}

static void test_oversize_refused(void **state)
{
    ap_frame_hdr in = {AP_FRAME_MAX_PAYLOAD, AP_FRAME_RESULT, 0, 0, 1}, out;
    unsigned char buf[AP_FRAME_HDR_SIZE];
    AP_UNUSED(state);

    ap_frame_encode(buf, &in);
    assert_int_equal(ap_frame_decode(buf, &out), AP_OK);

    in.len = AP_FRAME_MAX_PAYLOAD + 1;
    ap_frame_encode(buf, &in);
    assert_int_equal(ap_frame_decode(buf, &out), AP_ERR);
    assert_int_equal(out.len, AP_FRAME_MAX_PAYLOAD + 1);

    in.len = UINT32_MAX;
    ap_frame_encode(buf, &in);
    assert_int_equal(ap_frame_decode(buf, &out), AP_ERR);
    assert_int_equal(out.len, UINT32_MAX);
}

/* The request meta (deadline, attempt, client id length) keeps its
 * documented little-endian layout and survives a round trip. */
static void test_meta_layout_and_round_trip(void **state)
{
    (void)state;
    unsigned char b[AP_FRAME_META_SIZE];
    ap_frame_meta m = {0x0102030405060708ull, 3, 0x11223344u}, back;
    ap_frame_meta_encode(b, &m);
    static const unsigned char want[AP_FRAME_META_SIZE] = {8, 7, 6, 5, 4, 3, 2, 1, 3, 0, 0, 0, 0x44, 0x33, 0x22, 0x11};
    assert_memory_equal(b, want, sizeof(want));
    ap_frame_meta_decode(b, &back);
    assert_int_equal(back.deadline_ms, m.deadline_ms);
    assert_int_equal(back.attempt, 3);
    assert_int_equal(back.id_len, 0x11223344u);
}

/* The REQUEST ext (session state and resume lengths) keeps its
 * documented little-endian layout and survives a round trip; the flags
 * and kinds of the session wire keep their numbers. */
static void test_ext_layout_and_round_trip(void **state)
{
    unsigned char b[AP_FRAME_EXT_SIZE];
    ap_frame_ext e = {0x01020304u, 0xA0B0C0D0u}, back;
    static const unsigned char want[AP_FRAME_EXT_SIZE] = {4, 3, 2, 1, 0xD0, 0xC0, 0xB0, 0xA0};
    AP_UNUSED(state);
    assert_int_equal(AP_FRAME_EXT_SIZE, 8);
    ap_frame_ext_encode(b, &e);
    assert_memory_equal(b, want, sizeof(want));
    ap_frame_ext_decode(b, &back);
    assert_int_equal(back.state_len, 0x01020304u);
    assert_int_equal(back.resume_len, 0xA0B0C0D0u);
    e = (ap_frame_ext){0, UINT32_MAX};
    ap_frame_ext_encode(b, &e);
    ap_frame_ext_decode(b, &back);
    assert_int_equal(back.state_len, 0);
    assert_int_equal(back.resume_len, UINT32_MAX);
    assert_int_equal(AP_FRAME_REQ_META, 0x01);
    assert_int_equal(AP_FRAME_REQ_SESSION, 0x02);
    assert_int_equal(AP_FRAME_REQ_RESUME, 0x04);
    assert_int_equal(AP_FRAME_STATE, 13);
    assert_int_equal(AP_FRAME_CHECKPOINT, 14);
    assert_int_equal(AP_FRAME_STATE_SAVE, 0x01);
}

static void test_kind_names(void **state)
{
    AP_UNUSED(state);
    assert_string_equal(ap_frame_kind_name(AP_FRAME_READY), "READY");
    assert_string_equal(ap_frame_kind_name(AP_FRAME_START_FAILED), "START_FAILED");
    assert_string_equal(ap_frame_kind_name(AP_FRAME_REQUEST), "REQUEST");
    assert_string_equal(ap_frame_kind_name(AP_FRAME_RESULT), "RESULT");
    assert_string_equal(ap_frame_kind_name(AP_FRAME_ERROR), "ERROR");
    assert_string_equal(ap_frame_kind_name(AP_FRAME_STOP), "STOP");
    assert_string_equal(ap_frame_kind_name(AP_FRAME_CANCEL), "CANCEL");
    assert_string_equal(ap_frame_kind_name(AP_FRAME_PING), "PING");
    assert_string_equal(ap_frame_kind_name(AP_FRAME_PONG), "PONG");
    assert_string_equal(ap_frame_kind_name(AP_FRAME_CHUNK), "CHUNK");
    assert_string_equal(ap_frame_kind_name(AP_FRAME_CREDIT), "CREDIT");
    assert_string_equal(ap_frame_kind_name(AP_FRAME_EVENT), "EVENT");
    assert_string_equal(ap_frame_kind_name(AP_FRAME_STATE), "STATE");
    assert_string_equal(ap_frame_kind_name(AP_FRAME_CHECKPOINT), "CHECKPOINT");
    assert_string_equal(ap_frame_kind_name(0), "?");
    assert_string_equal(ap_frame_kind_name(AP_FRAME_KIND_MAX + 1), "?");
    assert_string_equal(ap_frame_kind_name(1000000), "?");
}

/* CHUNK and CREDIT are numbered as the stream contract says, and a
 * CREDIT payload is a u32, little endian. */
static void test_stream_kinds_and_credit(void **state)
{
    unsigned char b[AP_FRAME_CREDIT_SIZE];
    static const unsigned char want[AP_FRAME_CREDIT_SIZE] = {0x04, 0x03, 0x02, 0x01};
    AP_UNUSED(state);
    assert_int_equal(AP_FRAME_CHUNK, 10);
    assert_int_equal(AP_FRAME_CREDIT, 11);
    assert_int_equal(AP_FRAME_KIND_MAX, 15);
    ap_frame_credit_encode(b, 0x01020304u);
    assert_memory_equal(b, want, sizeof want);
    assert_int_equal(ap_frame_credit_decode(b), 0x01020304u);
    ap_frame_credit_encode(b, UINT32_MAX);
    assert_int_equal(ap_frame_credit_decode(b), UINT32_MAX);
}

/* An agent's topic: dot-separated segments of a-z 0-9 _ -, 1 to
 * AP_EVENT_TOPIC_MAX bytes; no wildcard, no empty segment. */
static void test_event_topic_valid(void **state)
{
    static const char *const good[] = {"task", "task.done", "a-b_c.9", "x.y.z"};
    static const char *const bad[] = {"", ".", "task.", ".task", "a..b", "Task", "task.*", "agent.#", "a b", "t\xc3\xa9"};
    char big[AP_EVENT_TOPIC_MAX + 2];
    AP_UNUSED(state);
    assert_int_equal(AP_FRAME_EVENT, 12);
    for (size_t i = 0; i < AP_ARRAY_LEN(good); i++)
        assert_true(ap_frame_event_topic_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < AP_ARRAY_LEN(bad); i++)
        assert_false(ap_frame_event_topic_valid(bad[i], strlen(bad[i])));
    memset(big, 'a', sizeof(big));
    assert_true(ap_frame_event_topic_valid(big, AP_EVENT_TOPIC_MAX));
    assert_false(ap_frame_event_topic_valid(big, AP_EVENT_TOPIC_MAX + 1));
}

/* The handler's CPU time in an answer's aux: 0 is "not measured", every
 * measured value is exact below 2047 us and within 1/2048 below the true
 * microseconds above, the order of values is kept, and huge ones are cut
 * to the largest. */
static void test_cpu_aux(void **state)
{
    (void)state;
    assert_true(ap_frame_cpu_decode(0) == AP_FRAME_CPU_NONE);
    assert_int_equal(ap_frame_cpu_encode(0), 1);
    assert_int_equal(ap_frame_cpu_decode(ap_frame_cpu_encode(0)), 0);
    assert_int_equal(ap_frame_cpu_decode(ap_frame_cpu_encode(999)), 0); /* whole microseconds */
    for (uint64_t us = 0; us < 2046; us++)
        assert_int_equal(ap_frame_cpu_decode(ap_frame_cpu_encode(us * 1000)), us * 1000);
    uint16_t last = 0;
    for (uint64_t us = 1; us < (1ull << 42); us += us / 7 + 1) {
        uint16_t a = ap_frame_cpu_encode(us * 1000);
        uint64_t back = ap_frame_cpu_decode(a) / 1000;
        assert_true(a != 0);
        assert_true(a >= last);
        assert_true(back <= us);
        assert_true(us - back <= (us + 1) / 2048 + 1);
        last = a;
    }
    assert_int_equal(ap_frame_cpu_encode(UINT64_MAX), 0xFFFF);
    assert_true(ap_frame_cpu_decode(0xFFFF) > 4000000000000000ull); /* about 51 days, in ns */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_little_endian),
        cmocka_unit_test(test_meta_layout_and_round_trip),
        cmocka_unit_test(test_ext_layout_and_round_trip),
        cmocka_unit_test(test_round_trip_every_kind),
        cmocka_unit_test(test_decode_known_bytes),
        cmocka_unit_test(test_unknown_kind_refused),
        cmocka_unit_test(test_oversize_refused),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_stream_kinds_and_credit),
        cmocka_unit_test(test_event_topic_valid),
        cmocka_unit_test(test_cpu_aux),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
