/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_log.c - cmocka tests for common/log.c: the per-call-site rate
 * limit and the log file.
 *
 * log.c is compiled into this test (#include) so the table can be
 * inspected, and ap_now_ms() is defined here, so time is made up.  Lines
 * go to a temporary file that each test reads back.  Checked: the burst
 * per window, the "(N similar lines suppressed ...)" report at the next
 * line after the window and at a tick, that no suppressed count is lost
 * or reported twice when more call sites than the table holds are used
 * (eviction), CRIT never limited, lines under the minimum level never
 * counted, limiting off by default, and the log file: appended, created
 * 0640, reopened by name after a rename, and an old file kept (with an
 * error logged) when the reopen fails.  Limits are per call site and
 * message: two texts through one "%s" site are cut apart, digits alone
 * do not make a new message, and a site whose texts always differ is
 * still cut at 4 x burst.  Non-blocking output: a pipe nobody reads
 * never makes ap_log wait; what does not fit is dropped and counted, and
 * once the pipe is read everything kept arrives whole and in order,
 * followed by the count of lines lost.
 */
#include "../../common/log.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <sys/stat.h>

static uint64_t fake_now;

uint64_t ap_now_ms(void)
{
    return fake_now;
}

static char tmpdir[64];
static char logpath[128];

/* Everything written to the log so far. */
static char *slurp(const char *path)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    size_t n = 0;
    if (f) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/aplogtest-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(logpath, sizeof(logpath), "%s/test.log", tmpdir);
    /* Our own descriptor for the log, so the test's stderr stays. */
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    assert_true(fd > 2);
    ap_log_set_fd(fd);
    ap_log_init("test", AP_LOG_INFO);
    ap_log_set_json(0);
    char err[256];
    assert_int_equal(ap_log_open_file(logpath, AP_SAFEFILE_NOBODY_ELSE, err, sizeof(err)), AP_OK);
    fake_now = 1000000;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[160];
    ap_log_set_ratelimit(0, 0);
    close(logcfg.fd);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    assert_int_equal(system(cmd), 0);
    logcfg.path[0] = '\0';
    return 0;
}

static void flood(int n)
{
    for (int i = 0; i < n; i++)
        ap_info("bad request number %d", i);
}

static void test_off_by_default(void **state)
{
    (void)state;
    flood(500);
    assert_int_equal(count(slurp(logpath), "bad request number"), 500);
    assert_int_equal(count(slurp(logpath), "suppressed"), 0);
}

static void test_burst_then_report_at_next_window(void **state)
{
    (void)state;
    ap_log_set_ratelimit(10, 10000);
    flood(25);
    const char *t = slurp(logpath);
    assert_int_equal(count(t, "bad request number"), 10);
    assert_non_null(strstr(t, "bad request number 9\n"));
    assert_null(strstr(t, "bad request number 10\n"));
    fake_now += 9999; /* same window */
    flood(1);
    assert_int_equal(count(slurp(logpath), "suppressed"), 0);
    fake_now += 1;    /* the next window: the report, then the line */
    ap_info("bad request number %d", 99);
    t = slurp(logpath);
    assert_int_equal(count(t, "suppressed"), 1);
    assert_non_null(strstr(t, "(16 similar lines suppressed in the last 10 s: \"bad request number 0\")\n"));
    assert_true(strstr(t, "suppressed") < strstr(t, "bad request number 99"));
    assert_int_equal(count(t, "bad request number"), 12); /* 10 + the format in the report + 99 */
}

static void test_tick_reports_ended_windows_only(void **state)
{
    (void)state;
    ap_log_set_ratelimit(5, 1000);
    flood(8);
    ap_log_ratelimit_tick(0);
    assert_int_equal(count(slurp(logpath), "suppressed"), 0);
    fake_now += 1000;
    ap_log_ratelimit_tick(0);
    assert_non_null(strstr(slurp(logpath), "(3 similar lines suppressed"));
    ap_log_ratelimit_tick(0);
    ap_log_ratelimit_tick(1);
    assert_int_equal(count(slurp(logpath), "suppressed"), 1);
    /* A new window starts from the tick: 5 more get through. */
    flood(6);
    assert_int_equal(count(slurp(logpath), "bad request number"), 5 + 1 + 5);
    ap_log_ratelimit_tick(1); /* at exit: whatever the window */
    assert_non_null(strstr(slurp(logpath), "(1 similar line suppressed"));
    assert_int_equal(count(slurp(logpath), "suppressed"), 2);
}

static void test_crit_and_filtered_levels(void **state)
{
    (void)state;
    ap_log_set_ratelimit(2, 1000);
    for (int i = 0; i < 10; i++)
        ap_log(AP_LOG_CRIT, "no healthy worker %d", i);
    for (int i = 0; i < 10; i++)
        ap_debug("debug %d", i); /* under the level: neither shown nor counted */
    ap_log_ratelimit_tick(1);
    const char *t = slurp(logpath);
    assert_int_equal(count(t, "no healthy worker"), 10);
    assert_int_equal(count(t, "debug"), 0);
    assert_int_equal(count(t, "suppressed"), 0);
}

/* More call sites than the table holds: every suppressed line is
 * reported exactly once, by eviction or by the final tick. */
static void test_eviction_never_loses_or_repeats_a_count(void **state)
{
    (void)state;
    static char fmts[300][32];
    ap_log_set_ratelimit(1, 1000000);
    unsigned long expected = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 300; i++) {
            snprintf(fmts[i], sizeof(fmts[i]), "site %03d %%d", i);
            int n = 1 + (i * 7 + round) % 4;
            for (int k = 0; k < n; k++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                ap_log(AP_LOG_WARN, fmts[i], k); /* distinct call sites need distinct formats */
#pragma GCC diagnostic pop
            }
            fake_now++;
        }
    }
    ap_log_ratelimit_tick(1);
    const char *t = slurp(logpath);
    /* Sum every "(N similar line(s) suppressed" and every shown line. */
    unsigned long reported = 0, shown = 0, total = 0;
    for (const char *p = t; (p = strstr(p, "(")) != NULL; p++) {
        unsigned long n;
        if (sscanf(p, "(%lu similar line", &n) == 1)
            reported += n;
    }
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 300; i++)
            total += 1 + (unsigned long)((i * 7 + round) % 4);
    shown = (unsigned long)count(t, "WARN  [test ") - (unsigned long)count(t, "similar line");
    expected = total;
    assert_int_equal(shown + reported, expected);
    /* Each report names one site and no site is reported twice in a row
     * for the same lines: the table is empty of counts now. */
    for (size_t i = 0; i < AP_LOG_RL_SITES; i++)
        assert_int_equal(logcfg.sites[i].suppressed, 0);
}

static void test_json_report_is_valid_json_text(void **state)
{
    (void)state;
    ap_log_set_json(1);
    ap_log_set_ratelimit(1, 1000);
    ap_info("quote \"%s\"", "x");
    ap_info("quote \"%s\"", "x");
    ap_log_ratelimit_tick(1);
    ap_log_set_json(0);
    const char *t = slurp(logpath);
    assert_non_null(strstr(t, "\"msg\":\"(1 similar line suppressed in the last 1 s: \\\"quote \\\"x\\\"\\\")\"}\n"));
}

/* One "%s" call site, two messages: each has its own burst; a repeated
 * message is still cut; digits alone do not make a new message. */
static void test_one_site_two_messages_are_limited_apart(void **state)
{
    (void)state;
    ap_log_set_ratelimit(3, 1000);
    for (int i = 0; i < 10; i++) {
        ap_error("%s", "the dead-letter file is full");
        ap_error("%s", "worker binary is missing");
    }
    for (int i = 0; i < 10; i++) {
        char text[64];
        snprintf(text, sizeof(text), "client-%d: line too long", i * 37);
        ap_error("%s", text);
    }
    ap_log_ratelimit_tick(1);
    const char *t = slurp(logpath);
    assert_int_equal(count(t, "] the dead-letter file is full\n"), 3);
    assert_int_equal(count(t, "] worker binary is missing\n"), 3);
    assert_int_equal(count(t, ": line too long\n"), 3);
    assert_non_null(strstr(t, "(7 similar lines suppressed in the last 1 s: \"the dead-letter file is full\")"));
    assert_non_null(strstr(t, "(7 similar lines suppressed in the last 1 s: \"worker binary is missing\")"));
    assert_non_null(strstr(t, "(7 similar lines suppressed in the last 1 s: \"client-0: line too long\")"));
}

/* Texts that differ in every line (not only in digits) cannot flood: the
 * site as a whole gets 4 x burst, and every line is shown or counted. */
static void test_a_site_with_ever_new_texts_is_still_cut(void **state)
{
    (void)state;
    ap_log_set_ratelimit(2, 1000);
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz";
    for (int i = 0; i < 100; i++)
        ap_warn("unknown type %c%c", letters[i % 26], letters[i / 26]);
    ap_log_ratelimit_tick(1);
    const char *t = slurp(logpath);
    unsigned long reported = 0;
    for (const char *p = t; (p = strstr(p, "(")) != NULL; p++) {
        unsigned long n;
        if (sscanf(p, "(%lu similar line", &n) == 1)
            reported += n;
    }
    int shown = count(t, "] unknown type ");
    assert_int_equal(shown, 8);
    assert_int_equal((unsigned long)shown + reported, 100);
    assert_non_null(strstr(t, "(92 similar lines suppressed in the last 1 s: \"unknown type %c%c\")"));
}

static int arm_calls, arm_watch_calls, armed_fd = -2;

static void fake_arm(void *arg, int fd)
{
    (void)arg;
    arm_calls++;
    arm_watch_calls += fd >= 0;
    armed_fd = fd;
}

/* Non-blocking output: a pipe nobody reads fills, ap_log never waits,
 * lines past the buffer are dropped and counted, the hook is armed with
 * the fd to watch; once the pipe is read, ap_log_flush() writes what
 * waited, whole lines in order, then one line saying how many were lost. */
static void test_a_stalled_pipe_never_blocks_and_counts_drops(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_true(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
    int saved_fd = logcfg.fd;
    ap_log_set_fd(p[1]);
    ap_log_async_start(fake_arm, NULL);
    assert_int_equal(lout.kind, OUT_NB); /* a private non-blocking description */
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    int lines = 2000; /* ~2 MB: far more than the pipe and the buffer hold */
    for (int i = 0; i < lines; i++)
        ap_info("line %05d %s", i, big);
    assert_true(arm_calls > 0);
    assert_int_equal(armed_fd, lout.wfd);
    uint64_t dropped = ap_log_dropped();
    assert_true(dropped > 0);
    assert_true(ap_log_waiting() > AP_LOG_BUF_MAX - 1100);
    /* Drain the pipe, flushing whenever it takes more, until nothing waits. */
    static char rd[1 << 16];
    size_t got = 0;
    int fl = fcntl(p[0], F_GETFL);
    fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
    static char all[4 << 20];
    for (int spins = 0; spins < 100000; spins++) {
        ssize_t r = read(p[0], rd, sizeof(rd));
        if (r > 0) {
            assert_true(got + (size_t)r < sizeof(all));
            memcpy(all + got, rd, (size_t)r);
            got += (size_t)r;
        }
        if (ap_log_flush() == 0 && r <= 0 && strstr(all, "dropped (the log could not take them)"))
            break;
    }
    all[got] = '\0';
    /* Shown + dropped = written; lines come whole and in order. */
    int shown = count(all, "] line ");
    assert_int_equal((uint64_t)shown + dropped, (uint64_t)lines);
    int last = -1;
    for (const char *q = all; (q = strstr(q, "] line ")) != NULL; q++) {
        int n = atoi(q + 7);
        assert_true(n > last);
        assert_int_equal(strlen(big), strspn(q + 13, "x"));
        last = n;
    }
    char want[96];
    snprintf(want, sizeof(want), "log output: %llu lines dropped (the log could not take them)\n",
             (unsigned long long)dropped);
    assert_non_null(strstr(all, want));
    /* Writing again: a new line goes straight through. */
    ap_info("after the stall");
    ssize_t r = read(p[0], rd, sizeof(rd) - 1);
    assert_true(r > 0);
    rd[r] = '\0';
    assert_non_null(strstr(rd, "after the stall\n"));
    ap_log_async_unhook();
    assert_int_equal(armed_fd, -1);
    lout.on = 0;
    close(lout.wfd);
    lout.own = 0;
    logcfg.fd = saved_fd;
    close(p[0]);
    close(p[1]);
}

/* Non-blocking mode on a regular file: written at once (nothing waits,
 * the hook is never asked to watch it), and a rename + reopen moves the
 * log to the new file, the hook told to forget the old descriptor. */
static void test_async_file_reopen(void **state)
{
    (void)state;
    arm_watch_calls = 0;
    armed_fd = -2;
    uint64_t dropped = ap_log_dropped();
    ap_log_async_start(fake_arm, NULL);
    assert_int_equal(lout.kind, OUT_FILE);
    ap_info("async before rotation");
    assert_int_equal(ap_log_waiting(), 0);
    assert_non_null(strstr(slurp(logpath), "async before rotation\n"));
    assert_int_equal(arm_watch_calls, 0);
    char old[160];
    snprintf(old, sizeof(old), "%s.1", logpath);
    assert_int_equal(rename(logpath, old), 0);
    assert_int_equal(ap_log_reopen(), AP_OK);
    assert_int_equal(armed_fd, -1); /* forget whatever it watched */
    ap_info("async after reopen");
    assert_null(strstr(slurp(old), "async after reopen"));
    assert_non_null(strstr(slurp(logpath), "async after reopen\n"));
    assert_int_equal(ap_log_dropped(), dropped);
    assert_int_equal(arm_watch_calls, 0);
    ap_log_async_unhook();
    lout.on = 0;
}

static void test_file_reopen_after_rename(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(logpath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640); /* umask 022 */
    ap_info("before rotation");
    char old[160];
    snprintf(old, sizeof(old), "%s.1", logpath);
    assert_int_equal(rename(logpath, old), 0);
    ap_info("after rename, before reopen");
    assert_int_equal(ap_log_reopen(), AP_OK);
    ap_info("after reopen");
    const char *t = slurp(old);
    assert_non_null(strstr(t, "before rotation"));
    assert_non_null(strstr(t, "after rename, before reopen"));
    assert_null(strstr(t, "after reopen"));
    t = slurp(logpath);
    assert_null(strstr(t, "before"));
    assert_non_null(strstr(t, "after reopen"));
    assert_string_equal(ap_log_file(), logpath);
}

static void test_failed_reopen_keeps_the_old_file(void **state)
{
    (void)state;
    char moved[160], cmd[600];
    snprintf(moved, sizeof(moved), "%s/gone", tmpdir);
    /* The directory disappears (renamed away): the path cannot be opened. */
    snprintf(cmd, sizeof(cmd), "mkdir %s/d && mv %s %s/d/test.log", tmpdir, logpath, tmpdir);
    assert_int_equal(system(cmd), 0);
    char path[200], err[256];
    snprintf(path, sizeof(path), "%s/d/test.log", tmpdir);
    assert_int_equal(ap_log_open_file(path, AP_SAFEFILE_NOBODY_ELSE, err, sizeof(err)), AP_OK);
    snprintf(cmd, sizeof(cmd), "mv %s/d %s", tmpdir, moved);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(ap_log_reopen(), AP_ERR);
    ap_info("still here");
    snprintf(path, sizeof(path), "%s/test.log", moved);
    const char *t = slurp(path);
    assert_non_null(strstr(t, "could not reopen the log file: open("));
    assert_non_null(strstr(t, "No such file or directory; still writing to the old one"));
    assert_non_null(strstr(t, "still here"));
}

static void test_open_failure_changes_nothing(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(ap_log_open_file("/nonexistent-dir/x.log", AP_SAFEFILE_NOBODY_ELSE, err, sizeof(err)), AP_ERR);
    assert_string_equal(err, "open(/nonexistent-dir/x.log): No such file or directory");
    assert_string_equal(ap_log_file(), logpath);
    ap_info("still in the first file");
    assert_non_null(strstr(slurp(logpath), "still in the first file"));
}

int main(void)
{
    umask(022);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_off_by_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_then_report_at_next_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tick_reports_ended_windows_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crit_and_filtered_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_never_loses_or_repeats_a_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_report_is_valid_json_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_site_two_messages_are_limited_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_site_with_ever_new_texts_is_still_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_stalled_pipe_never_blocks_and_counts_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_file_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_reopen_after_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_reopen_keeps_the_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_failure_changes_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
