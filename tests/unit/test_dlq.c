/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_dlq.c - cmocka tests for the dead-letter file (pool/ops/dlq.c).
 *
 * Each test works in a fresh temporary directory and opens and closes
 * its own dlq inside the test function: dlq.c is built with
 * AP_ALLOC_TEST, so anything it fails to free fails the test.  It is also
 * built with DLQ_TEST_HOOKS, which lets a test make the next write(2) or
 * fsync(2) fail (a full disk, an I/O error) and shrink the longest line
 * readers accept.  The log goes to a temporary file so warnings can be
 * checked.
 *
 * Checked: the exact record line; escaping of type, worker and reason
 * (control characters, quotes, invalid UTF-8), raw id and data bytes
 * kept (big integers, escapes), each line parsed back with cJSON; mode
 * 0600 whatever the umask, wider modes narrowed with a warning; symbolic
 * links and FIFOs refused; dlqId continuing after reopen, across PATH.1;
 * the roll to PATH.1 at the cap (exact sizes, oldest records in .1, the
 * drop logged); a record larger than the cap kept alone; list with
 * offset and limit across both files and an early stop; remove (only the
 * affected file rewritten, other lines byte-identical, no temporary file
 * left, 0600, a later append lands in the new file); purge; corrupt,
 * blank, truncated and over-long lines skipped, counted and logged; a
 * full disk (partial write, then ENOSPC), a failed fsync and a failed
 * rewrite leave the files as they were and the next call works; a file
 * removed or replaced behind the module's back is reopened.  Tests that
 * need permission checks (unwritable directory, read-only file) drop
 * CAP_DAC_OVERRIDE when run as root, and skip only if permissions still
 * are not enforced.
 */
#include "dlq.h"
#include "ap_safefile.h"
#include "ap_common.h"
#include "ap_log.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define T0 UINT64_C(1795507200123) /* 2026-11-24T08:00:00.123Z */

static char dir[256];      /* this test's directory */
static char path[512];     /* dir/dlq.jsonl */
static char path1[520];    /* dir/dlq.jsonl.1 */
static char log_path[256]; /* captured log */
static int log_fd = -1;
static char err[1024];

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

/* Raises (on) or drops the effective capabilities that bypass file
 * permissions.  A no-op for a process that has none. */
static void set_dac_override(int on)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &h, data) != 0)
        return;
    uint32_t mask = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH);
    if (on)
        data[0].effective |= data[0].permitted & mask;
    else
        data[0].effective &= ~mask;
    (void)syscall(SYS_capset, &h, data);
}

/* Drops the override and says whether a 0400 file is now really not
 * writable (the caller skips the test if not). */
static int permissions_enforced(void)
{
    char probe[600];
    snprintf(probe, sizeof(probe), "%s/probe", dir);
    int fd = open(probe, O_CREAT | O_WRONLY | O_TRUNC, 0400);
    assert_true(fd >= 0);
    close(fd);
    set_dac_override(0);
    fd = open(probe, O_WRONLY);
    int enforced = fd < 0 && errno == EACCES;
    if (fd >= 0)
        close(fd);
    unlink(probe);
    if (!enforced)
        set_dac_override(1);
    return enforced;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_dlq.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/dlq.jsonl", dir);
    snprintf(path1, sizeof(path1), "%s.1", path);
    snprintf(log_path, sizeof(log_path), "/tmp/test_dlq_log.XXXXXX");
    log_fd = mkstemp(log_path);
    if (log_fd < 0)
        return -1;
    ap_log_set_fd(log_fd);
    memset(err, 0, sizeof(err));
    dlq_test_write_errno = 0;
    dlq_test_write_short = 0;
    dlq_test_fsync_errno = 0;
    dlq_test_line_max = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    set_dac_override(1);
    chmod(dir, 0700);
    DIR *dp = opendir(dir);
    if (dp) {
        struct dirent *de;
        char p[1024];
        while ((de = readdir(dp)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            unlink(p);
        }
        closedir(dp);
    }
    rmdir(dir);
    ap_log_set_fd(2);
    close(log_fd);
    unlink(log_path);
    return 0;
}

/* The whole file (NUL-terminated, malloc'd), or NULL if it does not exist. */
static char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    if (f == NULL) {
        *len = 0;
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static char *slurp_log(void)
{
    size_t n;
    char *s = slurp(log_path, &n);
    assert_non_null(s);
    return s;
}

static void expect_log(const char *want)
{
    char *s = slurp_log();
    if (strstr(s, want) == NULL) {
        print_error("log lacks \"%s\":\n%s\n", want, s);
        free(s);
        fail();
    }
    free(s);
}

static void write_file(const char *p, const char *text, mode_t mode)
{
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, mode);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static off_t file_size(const char *p)
{
    struct stat st;
    if (stat(p, &st) != 0)
        return -1;
    return st.st_size;
}

static unsigned file_mode(const char *p)
{
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    return (unsigned)(st.st_mode & 07777);
}

static ino_t file_ino(const char *p)
{
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    return st.st_ino;
}

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

/* Names in dir starting with dlq.jsonl.tmp (left-over rewrites). */
static int count_temp_files(void)
{
    int n = 0;
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    struct dirent *de;
    while ((de = readdir(dp)) != NULL)
        if (strncmp(de->d_name, "dlq.jsonl.tmp", 13) == 0)
            n++;
    closedir(dp);
    return n;
}

static dlq *open_ok(uint64_t max_bytes)
{
    dlq *d = dlq_open(path, max_bytes, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err));
    if (d == NULL) {
        print_error("dlq_open(%s): %s\n", path, err);
        fail();
    }
    return d;
}

/* A small entry: id "a" (raw), type "t", no data, one attempt. */
static dlq_entry small_entry(void)
{
    dlq_entry e = {0};
    e.id = "\"a\"";
    e.id_len = 3;
    e.type = "t";
    e.type_len = 1;
    e.attempts = 1;
    e.wall_ms = T0;
    return e;
}

static uint64_t append_ok(dlq *d, const dlq_entry *e)
{
    uint64_t id = 0;
    if (dlq_append(d, e, &id, err, sizeof(err)) != AP_OK) {
        print_error("dlq_append: %s\n", err);
        fail();
    }
    return id;
}

static void expect_err_contains(const char *want)
{
    if (strstr(err, want) == NULL) {
        print_error("error \"%s\" lacks \"%s\"\n", err, want);
        fail();
    }
    assert_null(strchr(err, '\n'));
}

/* What dlq_list gave. */
typedef struct {
    uint64_t ids[64];
    char *lines[64];
    size_t n;
    size_t stop_after; /* 0: never stop */
} listed;

static int collect(void *arg, uint64_t id, const char *line, size_t len)
{
    listed *l = arg;
    assert_true(l->n < 64);
    assert_true(len > 0 && line[0] == '{' && line[len - 1] == '}');
    assert_null(memchr(line, '\n', len));
    l->ids[l->n] = id;
    /* line is not NUL-terminated: copy exactly len bytes (strndup would
     * look for a NUL, which ASan's strict string checks flag). */
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, line, len);
    copy[len] = '\0';
    l->lines[l->n] = copy;
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static void listed_free(listed *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->lines[i]);
    l->n = 0;
}

/* Lists [offset, offset+limit) and checks the ids are exactly want[0..n). */
static void expect_list(dlq *d, uint64_t offset, uint64_t limit, const uint64_t *want, size_t n)
{
    listed l = {.n = 0};
    if (dlq_list(d, offset, limit, collect, &l, err, sizeof(err)) != AP_OK) {
        print_error("dlq_list: %s\n", err);
        fail();
    }
    int ok = l.n == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = l.ids[i] == want[i];
    for (size_t i = 0; i < l.n; i++) {
        /* Each line is a record whose dlqId is the one given. */
        cJSON *j = cJSON_Parse(l.lines[i]);
        assert_non_null(j);
        cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "dlqId");
        assert_true(cJSON_IsNumber(id));
        assert_int_equal((uint64_t)id->valuedouble, l.ids[i]);
        cJSON_Delete(j);
    }
    if (!ok) {
        print_error("list(%llu, %llu): want %zu records, have %zu:", (unsigned long long)offset,
                    (unsigned long long)limit, n, l.n);
        for (size_t i = 0; i < l.n; i++)
            print_error(" %llu", (unsigned long long)l.ids[i]);
        print_error("\n");
    }
    listed_free(&l);
    assert_true(ok);
}

static size_t count_lines(const char *p)
{
    size_t len, n = 0;
    char *s = slurp(p, &len);
    for (size_t i = 0; s && i < len; i++)
        n += s[i] == '\n';
    free(s);
    return n;
}

/* ------------------------------------------------------------------ */
/* Format                                                              */

static void test_record_exact(void **state)
{
    (void)state;
    dlq *d = open_ok(1 << 20);
    dlq_failure f[2] = {
        {"worker-1", 123, "killed by signal 9", T0},
        {"worker-2", 456, "exited with status 1", T0 + 1000},
    };
    dlq_entry e = {0};
    e.id = "\"req-1\"";
    e.id_len = strlen(e.id);
    e.type = "echo";
    e.type_len = 4;
    e.data = "{\"x\":1}";
    e.data_len = strlen(e.data);
    e.attempts = 2;
    e.failures = f;
    e.nfailures = 2;
    e.wall_ms = T0;
    assert_int_equal(append_ok(d, &e), 1);
    assert_int_equal(dlq_count(d), 1);
    dlq_close(d);

    size_t len;
    char *s = slurp(path, &len);
    const char *want =
        "{\"dlqId\":1,\"time\":\"2026-11-24T08:00:00.123Z\",\"id\":\"req-1\",\"type\":\"echo\","
        "\"data\":{\"x\":1},\"attempts\":2,\"failures\":["
        "{\"time\":\"2026-11-24T08:00:00.123Z\",\"worker\":\"worker-1\",\"pid\":123,"
        "\"reason\":\"killed by signal 9\"},"
        "{\"time\":\"2026-11-24T08:00:01.123Z\",\"worker\":\"worker-2\",\"pid\":456,"
        "\"reason\":\"exited with status 1\"}]}\n";
    assert_string_equal(s, want);
    free(s);
}

/* A message's last checkpoint is written raw as "checkpoint" after
 * "attempts" (dlq replay sends it back as "resume"). */
static void test_record_checkpoint(void **state)
{
    (void)state;
    dlq *d = open_ok(1 << 20);
    dlq_failure f = {"worker-1", 123, "killed by signal 9", T0};
    dlq_entry e = {0};
    e.type = "steps";
    e.type_len = 5;
    e.attempts = 1;
    e.failures = &f;
    e.nfailures = 1;
    e.wall_ms = T0;
    e.checkpoint = "{\"step\": 3,\"big\":12345678901234567890}";
    e.checkpoint_len = strlen(e.checkpoint);
    assert_int_equal(append_ok(d, &e), 1);
    dlq_close(d);

    size_t len;
    char *s = slurp(path, &len);
    const char *want =
        "{\"dlqId\":1,\"time\":\"2026-11-24T08:00:00.123Z\",\"id\":null,\"type\":\"steps\","
        "\"data\":null,\"attempts\":1,\"checkpoint\":{\"step\": 3,\"big\":12345678901234567890},\"failures\":["
        "{\"time\":\"2026-11-24T08:00:00.123Z\",\"worker\":\"worker-1\",\"pid\":123,"
        "\"reason\":\"killed by signal 9\"}]}\n";
    assert_string_equal(s, want);
    free(s);
}

static void test_record_escaping_and_raw_bytes(void **state)
{
    (void)state;
    dlq *d = open_ok(1 << 20);
    /* type: quote, backslash, newline, tab, U+0001, DEL, é, an emoji, a
     * stray continuation byte and a truncated sequence. */
    static const char type[] = "a\"b\\c\nd\te\001f\037\177 \xc3\xa9 \xf0\x9f\x98\x80 \x80 \xe2\x82";
    const char *id = "123456789012345678901234567890";
    const char *data = "{\"n\":123456789012345678901234567890123,\"f\":1.5e308,"
                       "\"s\":\"\\u00e9\\ud83d\\ude00\\\"\",\"a\":[[],{}],\"z\":-0.0}";
    dlq_failure f = {"worker-7", 42, "said \"bye\\\" and\nleft", T0};
    dlq_entry e = {0};
    e.id = id;
    e.id_len = strlen(id);
    e.type = type;
    e.type_len = sizeof(type) - 1;
    e.data = data;
    e.data_len = strlen(data);
    e.attempts = 4;
    e.failures = &f;
    e.nfailures = 1;
    e.wall_ms = T0;
    append_ok(d, &e);
    dlq_close(d);

    size_t len;
    char *s = slurp(path, &len);
    assert_int_equal(count_lines(path), 1);
    /* Raw bytes verbatim. */
    assert_non_null(strstr(s, ",\"id\":123456789012345678901234567890,"));
    char want_data[512];
    snprintf(want_data, sizeof(want_data), ",\"data\":%s,", data);
    assert_non_null(strstr(s, want_data));
    /* Escapes exactly. */
    assert_non_null(strstr(s, "\"type\":\"a\\\"b\\\\c\\nd\\te\\u0001f\\u001f\\u007f \xc3\xa9 "
                              "\xf0\x9f\x98\x80 \\ufffd \\ufffd\\ufffd\","));
    assert_non_null(strstr(s, "\"reason\":\"said \\\"bye\\\\\\\" and\\nleft\""));

    /* And it parses back. */
    cJSON *j = cJSON_ParseWithLength(s, len);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "dlqId")->valuedouble, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "time")->valuestring,
                        "2026-11-24T08:00:00.123Z");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "type")->valuestring,
                        "a\"b\\c\nd\te\001f\037\177 \xc3\xa9 \xf0\x9f\x98\x80 "
                        "\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "attempts")->valuedouble, 4);
    cJSON *fs = cJSON_GetObjectItemCaseSensitive(j, "failures");
    assert_int_equal(cJSON_GetArraySize(fs), 1);
    cJSON *f0 = cJSON_GetArrayItem(fs, 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(f0, "worker")->valuestring, "worker-7");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(f0, "pid")->valuedouble, 42);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(f0, "reason")->valuestring,
                        "said \"bye\\\" and\nleft");
    cJSON *dd = cJSON_GetObjectItemCaseSensitive(j, "data");
    assert_true(cJSON_IsObject(dd));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(dd, "s")->valuestring,
                        "\xc3\xa9\xf0\x9f\x98\x80\"");
    cJSON_Delete(j);
    free(s);
}

static void test_record_nulls(void **state)
{
    (void)state;
    dlq *d = open_ok(1 << 20);
    dlq_failure f = {NULL, 0, NULL, 0};
    dlq_entry e = {0};
    e.type = "";
    e.failures = &f;
    e.nfailures = 1;
    e.wall_ms = T0;
    append_ok(d, &e);
    e.nfailures = 0;
    e.wall_ms = 0; /* now */
    append_ok(d, &e);
    dlq_close(d);

    size_t len;
    char *s = slurp(path, &len);
    char *nl = strchr(s, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_string_equal(s, "{\"dlqId\":1,\"time\":\"2026-11-24T08:00:00.123Z\",\"id\":null,"
                           "\"type\":\"\",\"data\":null,\"attempts\":0,\"failures\":["
                           "{\"time\":null,\"worker\":null,\"pid\":0,\"reason\":null}]}");
    /* Second record: "now", in the same shape. */
    unsigned y, mo, da, h, mi, se, ms;
    char tail[128];
    assert_int_equal(sscanf(nl + 1, "{\"dlqId\":2,\"time\":\"%4u-%2u-%2uT%2u:%2u:%2u.%3uZ\"%127s", &y,
                            &mo, &da, &h, &mi, &se, &ms, tail),
                     8);
    assert_true(y >= 2024);
    assert_string_equal(tail, ",\"id\":null,\"type\":\"\",\"data\":null,\"attempts\":0,\"failures\":[]}");
    free(s);
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */

static void test_created_0600_whatever_the_umask(void **state)
{
    (void)state;
    mode_t old = umask(0);
    dlq *d = open_ok(1 << 20);
    umask(old);
    assert_int_equal(file_mode(path), 0600);
    assert_int_equal(file_size(path), 0);
    dlq_entry e = small_entry();
    append_ok(d, &e);
    assert_int_equal(file_mode(path), 0600);
    dlq_close(d);
}

static void test_wider_mode_narrowed_with_warning(void **state)
{
    (void)state;
    write_file(path, "{\"dlqId\":5,\"x\":1}\n", 0644);
    dlq *d = open_ok(1 << 20);
    assert_int_equal(file_mode(path), 0600);
    expect_log("mode 0644 is wider than 0600: changing it to 0600");
    assert_int_equal(dlq_count(d), 1);
    dlq_entry e = small_entry();
    assert_int_equal(append_ok(d, &e), 6);
    dlq_close(d);
}

static void test_symlink_refused(void **state)
{
    (void)state;
    char target[600];
    snprintf(target, sizeof(target), "%s/target", dir);
    write_file(target, "", 0600);
    assert_int_equal(symlink(target, path), 0);
    dlq *d = dlq_open(path, 1 << 20, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err));
    assert_null(d);
    char want[700];
    snprintf(want, sizeof(want), "dead-letter file %s: is a symbolic link: refused", path);
    assert_string_equal(err, want);
    assert_int_equal(file_size(target), 0);

    /* A dangling link too (O_CREAT must not create its target). */
    unlink(path);
    unlink(target);
    assert_int_equal(symlink(target, path), 0);
    assert_null(dlq_open(path, 1 << 20, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err)));
    assert_string_equal(err, want);
    assert_false(exists(target));

    /* A link put in place while open: the append refuses it and the
     * record is not written through it; once it is gone, appends work. */
    unlink(path);
    d = open_ok(1 << 20);
    dlq_entry e = small_entry();
    append_ok(d, &e);
    write_file(target, "", 0600);
    unlink(path);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(dlq_append(d, &e, NULL, err, sizeof(err)), AP_ERR);
    assert_string_equal(err, want);
    assert_int_equal(file_size(target), 0);
    unlink(path);
    append_ok(d, &e);
    assert_int_equal(count_lines(path), 1);
    dlq_close(d);
}

static void test_hardlink_refused(void **state)
{
    (void)state;
    char target[600];
    snprintf(target, sizeof(target), "%s/target", dir);
    write_file(target, "", 0600);
    assert_int_equal(link(target, path), 0);
    assert_null(dlq_open(path, 1 << 20, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err)));
    char want[700];
    snprintf(want, sizeof(want), "dead-letter file %s: has 2 links (a hard link to another file?): refused", path);
    assert_string_equal(err, want);
    assert_int_equal(file_size(target), 0);
    unlink(path);
    unlink(target);
}

static void test_fifo_and_directory_refused(void **state)
{
    (void)state;
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_null(dlq_open(path, 1 << 20, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err)));
    char want[700];
    snprintf(want, sizeof(want), "dead-letter file %s: not a regular file: refused", path);
    assert_string_equal(err, want);
    unlink(path);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_null(dlq_open(path, 1 << 20, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err)));
    expect_err_contains(path);
    expect_err_contains("open() failed: Is a directory");
    rmdir(path);
}

static void test_open_errors(void **state)
{
    (void)state;
    char p[600];
    snprintf(p, sizeof(p), "%s/no/such/dir/dlq.jsonl", dir);
    assert_null(dlq_open(p, 1 << 20, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err)));
    char want[800];
    snprintf(want, sizeof(want), "dead-letter file %s: open() failed: No such file or directory", p);
    assert_string_equal(err, want);
    assert_null(dlq_open(path, 0, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err)));
    expect_err_contains("cap must be at least 1 byte");
    assert_null(dlq_open("", 1, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err)));
    /* A relative path with no directory part works (directory "."). */
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    dlq *d = dlq_open("dlq.jsonl", 100, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err));
    assert_non_null(d);
    dlq_entry e = small_entry();
    append_ok(d, &e);
    dlq_close(d);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(count_lines(path), 1);
}

static void test_id_continues_after_reopen(void **state)
{
    (void)state;
    dlq_entry e = small_entry();
    dlq *d = open_ok(1 << 20);
    for (uint64_t i = 1; i <= 3; i++)
        assert_int_equal(append_ok(d, &e), i);
    dlq_close(d);
    d = open_ok(1 << 20);
    assert_int_equal(dlq_count(d), 3);
    assert_int_equal(append_ok(d, &e), 4);
    dlq_close(d);

    /* Across PATH.1: the highest id is there, PATH is gone. */
    assert_int_equal(rename(path, path1), 0);
    d = open_ok(1 << 20);
    assert_int_equal(dlq_count(d), 4);
    assert_int_equal(append_ok(d, &e), 5);
    const uint64_t want[] = {1, 2, 3, 4, 5};
    expect_list(d, 0, 0, want, 5);
    dlq_close(d);

    /* One record with dlqId 1: the next is 2. */
    unlink(path1);
    write_file(path, "{\"dlqId\":1,\"a\":1}\n", 0600);
    d = open_ok(1 << 20);
    assert_int_equal(append_ok(d, &e), 2);
    dlq_close(d);

    /* Highest id in .1 above PATH's (hand-made), and gaps. */
    write_file(path1, "{\"dlqId\":90,\"a\":1}\n{\"dlqId\":17,\"a\":1}\n", 0600);
    write_file(path, "{\"dlqId\":40,\"a\":1}\n", 0600);
    d = open_ok(1 << 20);
    assert_int_equal(dlq_count(d), 3);
    assert_int_equal(append_ok(d, &e), 91);
    dlq_stats st;
    dlq_get_stats(d, &st);
    assert_int_equal(st.records, 4);
    assert_int_equal(st.next_id, 92);
    dlq_close(d);
}

/* ------------------------------------------------------------------ */
/* The cap                                                             */

static void test_roll_at_cap(void **state)
{
    (void)state;
    dlq_entry e = small_entry();
    dlq *d = open_ok(1 << 20);
    append_ok(d, &e);
    dlq_close(d);
    off_t L = file_size(path); /* every record below has this length */
    assert_true(L > 50);
    unlink(path);

    d = open_ok((uint64_t)(3 * L + 1));
    for (int i = 1; i <= 3; i++)
        append_ok(d, &e);
    assert_false(exists(path1));
    assert_int_equal(file_size(path), 3 * L);
    assert_int_equal(append_ok(d, &e), 4); /* 4L > cap: roll */
    assert_int_equal(file_size(path1), 3 * L);
    assert_int_equal(file_size(path), L);
    assert_int_equal(file_mode(path), 0600);
    assert_int_equal(file_mode(path1), 0600);
    assert_int_equal(dlq_count(d), 4);
    const uint64_t all4[] = {1, 2, 3, 4};
    expect_list(d, 0, 0, all4, 4);

    for (int i = 5; i <= 7; i++)
        append_ok(d, &e); /* 7 rolls again: 1-3 dropped */
    assert_int_equal(file_size(path1), 3 * L);
    assert_int_equal(file_size(path), L);
    assert_int_equal(dlq_count(d), 4);
    dlq_stats st;
    dlq_get_stats(d, &st);
    assert_int_equal(st.bytes, 4 * L);
    const uint64_t want[] = {4, 5, 6, 7};
    expect_list(d, 0, 0, want, 4);
    expect_log("3 older dead letters dropped");
    /* .1 holds exactly the oldest kept records. */
    size_t len;
    char *s = slurp(path1, &len);
    assert_int_equal(strncmp(s, "{\"dlqId\":4,", 11), 0);
    assert_non_null(strstr(s, "\n{\"dlqId\":6,"));
    free(s);
    dlq_close(d);

    /* The counts survive a reopen. */
    d = open_ok((uint64_t)(3 * L + 1));
    assert_int_equal(dlq_count(d), 4);
    assert_int_equal(append_ok(d, &e), 8);
    dlq_close(d);
}

static void test_oversize_record_kept(void **state)
{
    (void)state;
    dlq_entry e = small_entry();
    char big[2001];
    memset(big, 'x', sizeof(big) - 1);
    big[0] = '"';
    big[sizeof(big) - 2] = '"';
    big[sizeof(big) - 1] = '\0';
    dlq_entry b = small_entry();
    b.data = big;
    b.data_len = strlen(big);

    /* Into an empty file: written, though larger than the cap. */
    dlq *d = open_ok(1000);
    assert_int_equal(append_ok(d, &b), 1);
    assert_true(file_size(path) > 2000);
    assert_false(exists(path1));
    /* The next append rolls it into .1. */
    assert_int_equal(append_ok(d, &e), 2);
    assert_true(file_size(path1) > 2000);
    assert_true(file_size(path) < 1000);
    /* Into a non-empty file: roll first, then alone in the new file. */
    assert_int_equal(append_ok(d, &b), 3);
    assert_true(file_size(path) > 2000);
    assert_int_equal(count_lines(path), 1);
    assert_int_equal(count_lines(path1), 1);
    const uint64_t want[] = {2, 3};
    expect_list(d, 0, 0, want, 2);
    listed l = {.n = 0};
    assert_int_equal(dlq_list(d, 1, 1, collect, &l, err, sizeof(err)), AP_OK);
    assert_int_equal(l.n, 1);
    assert_non_null(strstr(l.lines[0], big));
    listed_free(&l);
    dlq_close(d);
}

/* ------------------------------------------------------------------ */
/* Reading, removing, purging                                          */

/* Six records: 1-3 in .1, 4-6 in PATH.  Returns the record length. */
static off_t six_records(dlq **dp)
{
    dlq_entry e = small_entry();
    dlq *d = open_ok(1 << 20);
    append_ok(d, &e);
    dlq_close(d);
    off_t L = file_size(path);
    unlink(path);
    d = open_ok((uint64_t)(3 * L + 1));
    for (int i = 1; i <= 6; i++)
        append_ok(d, &e);
    assert_int_equal(count_lines(path1), 3);
    assert_int_equal(count_lines(path), 3);
    *dp = d;
    return L;
}

static void test_list_offset_limit(void **state)
{
    (void)state;
    dlq *d;
    six_records(&d);
    const uint64_t all[] = {1, 2, 3, 4, 5, 6};
    expect_list(d, 0, 0, all, 6);
    expect_list(d, 0, 100, all, 6);
    expect_list(d, 0, 2, all, 2);
    expect_list(d, 2, 3, all + 2, 3); /* across both files */
    expect_list(d, 3, 0, all + 3, 3); /* .1 skipped whole */
    expect_list(d, 5, 10, all + 5, 1);
    expect_list(d, 6, 10, NULL, 0);
    expect_list(d, UINT64_MAX, 1, NULL, 0);
    /* The callback stops the walk. */
    listed l = {.n = 0, .stop_after = 2};
    assert_int_equal(dlq_list(d, 1, 0, collect, &l, err, sizeof(err)), AP_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.ids[0], 2);
    assert_int_equal(l.ids[1], 3);
    listed_free(&l);
    /* Missing files are empty. */
    unlink(path1);
    expect_list(d, 0, 0, all + 3, 3);
    dlq_close(d);
}

static void test_remove(void **state)
{
    (void)state;
    dlq *d;
    six_records(&d);
    size_t len0, len1;
    char *before0 = slurp(path, &len0);
    char *before1 = slurp(path1, &len1);
    size_t removed = 99;
    const uint64_t ids[] = {5, 2, 99, 5};
    assert_int_equal(dlq_remove(d, ids, 4, &removed, err, sizeof(err)), AP_OK);
    assert_int_equal(removed, 2);
    assert_int_equal(dlq_count(d), 4);
    const uint64_t want[] = {1, 3, 4, 6};
    expect_list(d, 0, 0, want, 4);
    assert_int_equal(count_temp_files(), 0);
    assert_int_equal(file_mode(path), 0600);
    assert_int_equal(file_mode(path1), 0600);
    /* The other lines are byte for byte what they were. */
    size_t n0, n1;
    char *after0 = slurp(path, &n0);
    char *after1 = slurp(path1, &n1);
    size_t L = len0 / 3;
    assert_int_equal(n0, 2 * L);
    assert_int_equal(n1, 2 * L);
    assert_memory_equal(after1, before1, L);         /* 1 */
    assert_memory_equal(after1 + L, before1 + 2 * L, L); /* 3 */
    assert_memory_equal(after0, before0, L);         /* 4 */
    assert_memory_equal(after0 + L, before0 + 2 * L, L); /* 6 */
    free(before0);
    free(before1);
    free(after0);
    free(after1);

    /* Only the file holding the id is rewritten. */
    ino_t ino1 = file_ino(path1), ino0 = file_ino(path);
    const uint64_t six = 6;
    assert_int_equal(dlq_remove(d, &six, 1, &removed, err, sizeof(err)), AP_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(file_ino(path1), ino1);
    assert_true(file_ino(path) != ino0);
    /* Nothing to remove: nothing rewritten. */
    ino0 = file_ino(path);
    assert_int_equal(dlq_remove(d, ids, 4, &removed, err, sizeof(err)), AP_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(dlq_remove(d, NULL, 0, &removed, err, sizeof(err)), AP_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(file_ino(path), ino0);
    assert_int_equal(file_ino(path1), ino1);

    /* Appends go to the new file. */
    dlq_entry e = small_entry();
    assert_int_equal(append_ok(d, &e), 7);
    const uint64_t want2[] = {1, 3, 4, 7};
    expect_list(d, 0, 0, want2, 4);
    assert_int_equal(count_lines(path), 2);
    dlq_close(d);
    d = open_ok(1 << 20);
    assert_int_equal(dlq_count(d), 4);
    dlq_close(d);
}

static void test_remove_keeps_corrupt_lines(void **state)
{
    (void)state;
    write_file(path, "{\"dlqId\":1,\"a\":1}\nnot json at all\n\n{\"dlqId\":2,\"a\":2}\n", 0600);
    dlq *d = open_ok(1 << 20);
    assert_int_equal(dlq_count(d), 2);
    const uint64_t one = 1;
    size_t removed;
    assert_int_equal(dlq_remove(d, &one, 1, &removed, err, sizeof(err)), AP_OK);
    assert_int_equal(removed, 1);
    size_t len;
    char *s = slurp(path, &len);
    assert_string_equal(s, "not json at all\n{\"dlqId\":2,\"a\":2}\n");
    free(s);
    assert_int_equal(dlq_count(d), 1);
    dlq_close(d);
}

static void test_remove_failure_leaves_files(void **state)
{
    (void)state;
    dlq *d;
    six_records(&d);
    size_t len0;
    char *before0 = slurp(path, &len0);
    const uint64_t five = 5;
    size_t removed = 99;
    dlq_test_write_errno = ENOSPC;
    assert_int_equal(dlq_remove(d, &five, 1, &removed, err, sizeof(err)), AP_ERR);
    assert_int_equal(removed, 0);
    expect_err_contains("dlq.jsonl.tmp.");
    expect_err_contains("write() failed: No space left on device");
    assert_int_equal(count_temp_files(), 0);
    size_t n0;
    char *after0 = slurp(path, &n0);
    assert_int_equal(n0, len0);
    assert_memory_equal(after0, before0, n0);
    free(before0);
    free(after0);
    assert_int_equal(dlq_count(d), 6);
    dlq_test_fsync_errno = EIO;
    assert_int_equal(dlq_remove(d, &five, 1, &removed, err, sizeof(err)), AP_ERR);
    expect_err_contains("fsync() failed: Input/output error");
    assert_int_equal(count_temp_files(), 0);
    assert_int_equal(count_lines(path), 3);
    /* Then it works. */
    assert_int_equal(dlq_remove(d, &five, 1, &removed, err, sizeof(err)), AP_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(dlq_count(d), 5);
    dlq_close(d);
}

static void test_purge(void **state)
{
    (void)state;
    dlq *d;
    six_records(&d);
    assert_int_equal(dlq_purge(d, err, sizeof(err)), AP_OK);
    assert_int_equal(dlq_count(d), 0);
    assert_false(exists(path1));
    assert_int_equal(file_size(path), 0);
    assert_int_equal(file_mode(path), 0600);
    expect_list(d, 0, 0, NULL, 0);
    dlq_stats st;
    dlq_get_stats(d, &st);
    assert_int_equal(st.bytes, 0);
    dlq_entry e = small_entry();
    assert_int_equal(append_ok(d, &e), 7); /* ids keep increasing */
    assert_int_equal(dlq_count(d), 1);
    const uint64_t seven = 7;
    expect_list(d, 0, 0, &seven, 1);
    /* Purging nothing is fine. */
    assert_int_equal(dlq_purge(d, err, sizeof(err)), AP_OK);
    assert_int_equal(dlq_purge(d, err, sizeof(err)), AP_OK);
    assert_int_equal(dlq_count(d), 0);
    dlq_close(d);
}

static void test_corrupt_lines_skipped(void **state)
{
    (void)state;
    dlq_test_line_max = 200;
    char longrec[400];
    memset(longrec, ' ', sizeof(longrec));
    memcpy(longrec, "{\"dlqId\":50,\"pad\":\"", 19);
    memcpy(longrec + 300, "\"}\n", 4);
    char text[2048];
    snprintf(text, sizeof(text),
             "{\"dlqId\":1,\"a\":1}\n"     /* 1 ok */
             "garbage\n"                   /* 2 */
             "\n"                          /* 3 blank: ignored */
             "{\"dlqId\":2,\"time\":\"20\n" /* 4 truncated */
             "{\"other\":1}\n"             /* 5 not a record */
             "{\"dlqId\":0,\"a\":1}\n"     /* 6 bad id */
             "{\"dlqId\":3,\"a\":[1,2]}\n" /* 7 ok */
             "%s"                          /* 8 too long */
             "{\"dlqId\":4,\"a\":\"\xff\"}\n" /* 9 bad UTF-8 */
             "{\"dlqId\":9,\"a\":{}}",     /* 10 ok, no '\n' */
             longrec);
    write_file(path, text, 0600);
    dlq *d = open_ok(1 << 20);
    assert_int_equal(dlq_count(d), 3);
    expect_log("its last line has no newline");
    expect_log("line 2: skipped, does not start with {\"dlqId\":");
    expect_log("line 4: skipped, not valid JSON");
    expect_log("line 6: skipped, dlqId is not an integer from 1 to 9007199254740991");
    expect_log("line 8: skipped, longer than 200 bytes");
    expect_log("6 lines skipped in all"); /* 5 of them described */
    dlq_stats st;
    dlq_get_stats(d, &st);
    assert_int_equal(st.skipped_lines, 6);
    const uint64_t want[] = {1, 3, 9};
    expect_list(d, 0, 0, want, 3);
    expect_list(d, 1, 1, want + 1, 1);
    dlq_get_stats(d, &st);
    assert_true(st.skipped_lines >= 12);
    /* The next record starts on a line of its own. */
    dlq_entry e = small_entry();
    assert_int_equal(append_ok(d, &e), 10);
    const uint64_t want2[] = {1, 3, 9, 10};
    expect_list(d, 0, 0, want2, 4);
    /* A rewrite drops the over-long line and keeps the rest. */
    const uint64_t three = 3;
    size_t removed;
    assert_int_equal(dlq_remove(d, &three, 1, &removed, err, sizeof(err)), AP_OK);
    assert_int_equal(removed, 1);
    expect_log("a line longer than 200 bytes is dropped by the rewrite");
    size_t len;
    char *s = slurp(path, &len);
    assert_null(strstr(s, "\"dlqId\":50"));
    assert_non_null(strstr(s, "garbage\n"));
    assert_non_null(strstr(s, "{\"dlqId\":9,\"a\":{}}\n{\"dlqId\":10,"));
    free(s);
    const uint64_t want3[] = {1, 9, 10};
    expect_list(d, 0, 0, want3, 3);
    dlq_close(d);
}

/* ------------------------------------------------------------------ */
/* Failures                                                            */

static void test_full_disk(void **state)
{
    (void)state;
    dlq *d = open_ok(1 << 20);
    dlq_entry e = small_entry();
    append_ok(d, &e);
    append_ok(d, &e);
    size_t len0;
    char *before = slurp(path, &len0);

    /* 10 bytes make it, then ENOSPC: the partial record is taken back. */
    dlq_test_write_errno = ENOSPC;
    dlq_test_write_short = 10;
    uint64_t id = 0;
    assert_int_equal(dlq_append(d, &e, &id, err, sizeof(err)), AP_ERR);
    char want[800];
    snprintf(want, sizeof(want), "dead-letter file %s: write() failed: No space left on device", path);
    assert_string_equal(err, want);
    assert_int_equal(id, 0);
    size_t n;
    char *after = slurp(path, &n);
    assert_int_equal(n, len0);
    assert_memory_equal(after, before, n);
    free(after);
    assert_int_equal(dlq_count(d), 2);

    /* fsync fails: the same. */
    dlq_test_fsync_errno = EIO;
    assert_int_equal(dlq_append(d, &e, &id, err, sizeof(err)), AP_ERR);
    snprintf(want, sizeof(want), "dead-letter file %s: fsync() failed: Input/output error", path);
    assert_string_equal(err, want);
    after = slurp(path, &n);
    assert_int_equal(n, len0);
    free(after);
    free(before);

    /* Then appends work again (the failed attempts used ids 3 and 4). */
    assert_int_equal(append_ok(d, &e), 5);
    const uint64_t want_ids[] = {1, 2, 5};
    expect_list(d, 0, 0, want_ids, 3);
    assert_int_equal(dlq_count(d), 3);
    assert_int_equal(count_lines(path), 3);
    dlq_close(d);
}

static void test_unwritable_directory(void **state)
{
    (void)state;
    dlq_entry e = small_entry();
    dlq *d = open_ok(1 << 20);
    append_ok(d, &e);
    dlq_close(d);
    off_t L = file_size(path);
    unlink(path);
    d = open_ok((uint64_t)L); /* one record per file: every append rolls */
    append_ok(d, &e);
    if (!permissions_enforced()) {
        dlq_close(d);
        skip();
    }
    /* The roll fails: the record is appended past the cap, never dropped,
     * and the failure counted. */
    assert_int_equal(chmod(dir, 0500), 0);
    assert_int_equal(append_ok(d, &e), 2);
    assert_int_equal(count_lines(path), 2);
    assert_false(exists(path1));
    dlq_stats st;
    dlq_get_stats(d, &st);
    assert_int_equal(st.roll_errors, 1);
    /* Fixed: the next append rolls both into PATH.1. */
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(append_ok(d, &e), 3);
    assert_int_equal(count_lines(path1), 2);
    assert_int_equal(count_lines(path), 1);
    const uint64_t want_ids[] = {1, 2, 3};
    expect_list(d, 0, 0, want_ids, 3);
    char want[1200];
    /* Once the file is gone, an unwritable directory fails the create. */
    unlink(path);
    assert_int_equal(chmod(dir, 0500), 0);
    assert_int_equal(dlq_append(d, &e, NULL, err, sizeof(err)), AP_ERR);
    snprintf(want, sizeof(want), "dead-letter file %s: open() failed: Permission denied", path);
    assert_string_equal(err, want);
    assert_int_equal(chmod(dir, 0700), 0);
    append_ok(d, &e);
    assert_int_equal(count_lines(path), 1);
    set_dac_override(1);
    dlq_close(d);
}

static void test_read_only_file(void **state)
{
    (void)state;
    if (!permissions_enforced())
        skip();
    /* Refused at open. */
    write_file(path, "", 0400);
    assert_null(dlq_open(path, 1 << 20, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err)));
    char want[800];
    snprintf(want, sizeof(want), "dead-letter file %s: open() failed: Permission denied", path);
    assert_string_equal(err, want);
    /* Replaced by a read-only file while open: the append fails, then
     * works once the mode is fixed. */
    assert_int_equal(chmod(path, 0600), 0);
    dlq *d = open_ok(1 << 20);
    dlq_entry e = small_entry();
    append_ok(d, &e);
    unlink(path);
    write_file(path, "", 0400);
    assert_int_equal(dlq_append(d, &e, NULL, err, sizeof(err)), AP_ERR);
    assert_string_equal(err, want);
    expect_log("was removed or replaced: reopening it");
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(append_ok(d, &e), 2); /* the failed open used no id */
    assert_int_equal(count_lines(path), 1);
    assert_int_equal(dlq_count(d), 1);
    set_dac_override(1);
    dlq_close(d);
}

static void test_removed_file_recreated(void **state)
{
    (void)state;
    dlq *d = open_ok(1 << 20);
    dlq_entry e = small_entry();
    append_ok(d, &e);
    unlink(path);
    assert_int_equal(append_ok(d, &e), 2);
    assert_int_equal(count_lines(path), 1); /* not into the unlinked file */
    assert_int_equal(file_mode(path), 0600);
    assert_int_equal(dlq_count(d), 1);
    expect_log("was removed or replaced: reopening it");
    /* Replaced by another file (say, restored from a backup): counted anew. */
    unlink(path);
    write_file(path, "{\"dlqId\":1,\"a\":1}\n{\"dlqId\":2,\"a\":1}\n{\"dlqId\":30,\"a\":1}\n", 0600);
    assert_int_equal(append_ok(d, &e), 31);
    assert_int_equal(dlq_count(d), 4);
    dlq_close(d);
}

int main(void)
{
    ap_log_init("test", AP_LOG_DEBUG);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_record_exact),
        T(test_record_checkpoint),
        T(test_record_escaping_and_raw_bytes),
        T(test_record_nulls),
        T(test_created_0600_whatever_the_umask),
        T(test_wider_mode_narrowed_with_warning),
        T(test_symlink_refused),
        T(test_hardlink_refused),
        T(test_fifo_and_directory_refused),
        T(test_open_errors),
        T(test_id_continues_after_reopen),
        T(test_roll_at_cap),
        T(test_oversize_record_kept),
        T(test_list_offset_limit),
        T(test_remove),
        T(test_remove_keeps_corrupt_lines),
        T(test_remove_failure_leaves_files),
        T(test_purge),
        T(test_corrupt_lines_skipped),
        T(test_full_disk),
        T(test_unwritable_directory),
        T(test_read_only_file),
        T(test_removed_file_recreated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
