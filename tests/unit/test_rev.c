/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_rev.c - hiredis's event hooks (pool/redis/rev.c) against a fake
 * Redis on a Unix socket: the commands queued in one loop turn are
 * written together at the end of that turn, with no write event added
 * for them; a write the socket cannot take whole waits for "writable"
 * and the write event goes once everything is written; the read event
 * is added once and stays for every reply after; freeing the context
 * frees the hooks' record (cmocka's allocator checks).  rev.c is
 * included to see its per-connection state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rev.c"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PING "*1\r\n$4\r\nPING\r\n"

typedef struct {
    char dir[40], path[80];
    int lfd, srv;
    struct event_base *base;
    redisAsyncContext *ac;
    int connected, replies;
} fake;

static fake F;

static void on_connect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    F.connected = status == REDIS_OK ? 1 : -1;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    (void)priv;
    if (r)
        F.replies++;
}

/* Runs the loop until *flag is set (bounded: a fake that never answers fails the test). */
static void spin_until(const int *flag)
{
    for (int i = 0; i < 1000 && !*flag; i++)
        event_base_loop(F.base, EVLOOP_ONCE);
    assert_true(*flag);
}

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    snprintf(F.dir, sizeof(F.dir), "/tmp/test_rev.XXXXXX");
    assert_non_null(mkdtemp(F.dir));
    snprintf(F.path, sizeof(F.path), "%s/redis.sock", F.dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", F.path);
    F.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(F.lfd >= 0);
    assert_int_equal(bind(F.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(F.lfd, 4), 0);
    F.base = event_base_new();
    assert_non_null(F.base);
    F.ac = redisAsyncConnectUnix(F.path);
    assert_non_null(F.ac);
    assert_int_equal(F.ac->err, 0);
    assert_int_equal(rev_attach(F.ac, F.base), AP_OK);
    assert_int_equal(rev_attach(F.ac, F.base), AP_ERR); /* one adapter per context */
    redisAsyncSetConnectCallback(F.ac, on_connect);
    F.srv = accept(F.lfd, NULL, NULL);
    assert_true(F.srv >= 0);
    spin_until(&F.connected);
    assert_int_equal(F.connected, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (F.ac)
        redisAsyncFree(F.ac); /* rev_cleanup frees the record: cmocka checks */
    event_base_free(F.base);
    close(F.srv);
    close(F.lfd);
    unlink(F.path);
    rmdir(F.dir);
    return 0;
}

/* Reads exactly len bytes the client wrote (the loop turning meanwhile). */
static void read_exactly(char *buf, size_t len)
{
    size_t got = 0;
    for (int i = 0; i < 100000 && got < len; i++) {
        ssize_t n = recv(F.srv, buf + got, len - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        else
            event_base_loop(F.base, EVLOOP_NONBLOCK);
    }
    assert_int_equal(got, len);
}

static void test_a_turns_commands_are_written_at_its_end_without_a_write_event(void **state)
{
    (void)state;
    rev_conn *e = F.ac->ev.data;
    assert_int_equal(e->writing, 0); /* the connect's write event went with it */
    assert_int_equal(e->reading, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(redisAsyncCommand(F.ac, on_reply, NULL, "PING"), REDIS_OK);
    assert_int_equal(e->flush_due, 1);
    assert_int_equal(e->writing, 0);
    assert_int_equal(event_pending(e->wev, EV_WRITE, NULL), 0);
    char buf[64];
    assert_int_equal(recv(F.srv, buf, sizeof(buf), MSG_DONTWAIT), -1); /* nothing written during the turn */
    assert_int_equal(errno, EAGAIN);
    event_base_loop(F.base, EVLOOP_NONBLOCK); /* the turn ends */
    assert_int_equal(e->flush_due, 0);
    assert_int_equal(e->writing, 0);
    assert_int_equal(recv(F.srv, buf, sizeof(buf), MSG_DONTWAIT), 3 * strlen(PING)); /* all three, at once */
    assert_memory_equal(buf, PING PING PING, 3 * strlen(PING));
}

static void test_the_read_event_is_added_once_and_serves_every_reply(void **state)
{
    (void)state;
    rev_conn *e = F.ac->ev.data;
    char buf[64];
    for (int round = 1; round <= 3; round++) {
        assert_int_equal(redisAsyncCommand(F.ac, on_reply, NULL, "PING"), REDIS_OK);
        read_exactly(buf, strlen(PING));
        assert_int_equal(write(F.srv, "+PONG\r\n", 7), 7);
        for (int i = 0; i < 1000 && F.replies < round; i++)
            event_base_loop(F.base, EVLOOP_ONCE);
        assert_int_equal(F.replies, round);
        assert_int_equal(e->reading, 1);
        assert_true(event_pending(e->rev, EV_READ, NULL)); /* still there: never removed and added again */
    }
    assert_int_equal(F.replies, 3);
}

static void test_a_write_the_socket_cannot_take_waits_for_writable(void **state)
{
    (void)state;
    rev_conn *e = F.ac->ev.data;
    size_t vlen = (size_t)8 << 20; /* more than a Unix socket's buffer */
    char *v = malloc(vlen);
    assert_non_null(v);
    memset(v, 'v', vlen);
    assert_int_equal(redisAsyncCommand(F.ac, on_reply, NULL, "SET k %b", v, vlen), REDIS_OK);
    free(v);
    event_base_loop(F.base, EVLOOP_NONBLOCK); /* the end-of-turn write takes what fits */
    assert_int_equal(e->writing, 1);
    assert_true(event_pending(e->wev, EV_WRITE, NULL));
    char head[64];
    int hl = snprintf(head, sizeof(head), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%zu\r\n", vlen);
    size_t total = (size_t)hl + vlen + 2;
    char *got = malloc(total);
    assert_non_null(got);
    read_exactly(got, total);
    assert_memory_equal(got, head, (size_t)hl);
    free(got);
    for (int i = 0; i < 100 && e->writing; i++)
        event_base_loop(F.base, EVLOOP_NONBLOCK);
    assert_int_equal(e->writing, 0); /* everything written: the write event is gone */
    assert_int_equal(event_pending(e->wev, EV_WRITE, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_turns_commands_are_written_at_its_end_without_a_write_event, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_read_event_is_added_once_and_serves_every_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_write_the_socket_cannot_take_waits_for_writable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
