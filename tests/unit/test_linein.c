/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_linein.c - cmocka tests for a connection's line input
 * (pool/path/linein.c) over a real socketpair.
 *
 * Built with AP_ALLOC_TEST: the connection's own buffer goes through
 * cmocka's test_malloc/test_free, so a leak, or a buffer kept after the
 * input emptied, fails the test.  Checked: lines are handed out where
 * they were read and split lines are joined across reads (the partial one
 * kept by linein_keep); a read never takes more than the room given; a
 * second read in the same callback keeps what the first left; the own
 * buffer is freed once everything was consumed.
 */
#include "linein.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int sv[2];

static int setup(void **state)
{
    (void)state;
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
}

static int teardown(void **state)
{
    (void)state;
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static void send_text(const char *s)
{
    assert_int_equal(write(sv[1], s, strlen(s)), (ssize_t)strlen(s));
}

/* The next line as a string (in buf), or NULL. */
static const char *next_line(linein *in, char *buf, size_t cap)
{
    const char *p;
    size_t n;
    if (!linein_line(in, &p, &n))
        return NULL;
    assert_true(n < cap);
    memcpy(buf, p, n);
    buf[n] = '\0';
    linein_consume(in, n + 1);
    return buf;
}

static void test_lines_split_across_reads_are_joined(void **state)
{
    (void)state;
    linein in;
    char buf[64];
    linein_init(&in);
    send_text("one\ntw");
    assert_int_equal(linein_read(&in, sv[0], 1024), 6);
    assert_string_equal(next_line(&in, buf, sizeof(buf)), "one");
    assert_null(next_line(&in, buf, sizeof(buf)));
    linein_keep(&in); /* "tw" moves to the connection's own buffer */
    assert_non_null(in.own);
    assert_int_equal(linein_pending(&in), 2);
    send_text("o\nthree\n");
    assert_int_equal(linein_read(&in, sv[0], 1024), 8);
    assert_string_equal(next_line(&in, buf, sizeof(buf)), "two");
    assert_string_equal(next_line(&in, buf, sizeof(buf)), "three");
    assert_int_equal(linein_pending(&in), 0);
    linein_keep(&in); /* empty: the own buffer goes */
    assert_null(in.own);
    linein_free(&in);
}

static void test_a_read_takes_no_more_than_the_room(void **state)
{
    (void)state;
    linein in;
    char buf[64];
    linein_init(&in);
    send_text("abcdefgh\n");
    assert_int_equal(linein_read(&in, sv[0], 3), 3);
    assert_null(next_line(&in, buf, sizeof(buf)));
    /* a second read in the same callback: "abc" is kept first */
    assert_int_equal(linein_read(&in, sv[0], 4), 4);
    assert_int_equal(linein_pending(&in), 7);
    assert_null(next_line(&in, buf, sizeof(buf)));
    linein_keep(&in);
    assert_int_equal(linein_read(&in, sv[0], 100), 2);
    assert_string_equal(next_line(&in, buf, sizeof(buf)), "abcdefgh");
    linein_keep(&in);
    assert_null(in.own);
    assert_int_equal(linein_read(&in, sv[0], 100), -1); /* nothing there: EAGAIN */
    linein_free(&in);
}

static void test_end_of_file_reads_zero_and_keeps_the_partial_line(void **state)
{
    (void)state;
    linein in;
    char buf[64];
    linein_init(&in);
    send_text("half");
    assert_int_equal(linein_read(&in, sv[0], 100), 4);
    assert_null(next_line(&in, buf, sizeof(buf)));
    linein_keep(&in);
    shutdown(sv[1], SHUT_WR);
    assert_int_equal(linein_read(&in, sv[0], 100), 0);
    assert_int_equal(linein_pending(&in), 4);
    linein_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lines_split_across_reads_are_joined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_read_takes_no_more_than_the_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_of_file_reads_zero_and_keeps_the_partial_line, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
