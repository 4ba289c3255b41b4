/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cmd_events.c - `agentpoolctl events`: follow agentpoold's lifecycle
 * event stream (pool.subscribe, docs/events.md).
 *
 * Sends one pool.subscribe ({"topics": the TOPIC arguments, or every
 * topic; "since": now minus --since; "priority": "critical" with
 * --critical; "pool": --pool's}), waits at most --timeout for its answer,
 * then prints each event line as it comes until agentpoold closes the
 * connection (or the user interrupts): one line per event, "local time
 * topic pool data" (pool "-" when the event names none), or with --json
 * the line as received.  stdout is flushed after every event, so a pipe
 * sees each at once.  Reads are bounded: a line over CTL_MAX_CAPTURE
 * ends the command (exit 4).
 */
#include "ctl.h"
#include "ap_alloc.h"
#include "render.h"

#include <cJSON.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Parses a duration for --since: a whole number followed by ms, s, m, h
 * or d (no unit: ms).  Returns AP_OK, or AP_ERR. */
int ctl_parse_duration_ms(const char *s, uint64_t *out)
{
    char *end;
    if (s[0] < '0' || s[0] > '9')
        return AP_ERR;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return AP_ERR;
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    for (size_t i = 0; i < AP_ARRAY_LEN(units); i++)
        if (strcmp(end, units[i].unit) == 0) {
            if (v > UINT64_MAX / units[i].ms)
                return AP_ERR;
            *out = (uint64_t)v * units[i].ms;
            return AP_OK;
        }
    return AP_ERR;
}

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

/* pool.subscribe's data for o and the TOPIC arguments (free with ap_free). */
static char *events_request(const ctl_opts *o, int argc, char **argv)
{
    cJSON *d = cJSON_CreateObject();
    if (argc > 0) {
        cJSON *t = cJSON_AddArrayToObject(d, "topics");
        for (int i = 0; i < argc; i++)
            cJSON_AddItemToArray(t, cJSON_CreateString(argv[i]));
    }
    if (o->given & CTL_TAKES_SINCE) {
        uint64_t now = wall_ms();
        cJSON_AddNumberToObject(d, "since", (double)(o->since_ms < now ? now - o->since_ms : 0));
    }
    if (o->critical)
        cJSON_AddStringToObject(d, "priority", "critical");
    if (o->pool)
        cJSON_AddStringToObject(d, "pool", o->pool);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "id", "events");
    cJSON_AddStringToObject(req, "type", "pool.subscribe");
    cJSON_AddItemToObject(req, "data", d);
    char *text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    size_t n = strlen(text);
    char *line = ap_malloc(n + 2);
    memcpy(line, text, n);
    line[n] = '\n';
    line[n + 1] = '\0';
    cJSON_free(text);
    return line;
}

/* Writes all of p to the non-blocking fd.  AP_OK, or AP_ERR with errno. */
static int write_all(int fd, const char *p, size_t n, int timeout_ms)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return AP_ERR;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (poll(&pfd, 1, timeout_ms ? timeout_ms : -1) == 0) {
            errno = ETIMEDOUT;
            return AP_ERR;
        }
    }
    return AP_OK;
}

/* One event for people: local time, topic, pool, data (without "pool"). */
static void print_event(const char *line, size_t n)
{
    cJSON *ev = cJSON_ParseWithLength(line, n);
    const cJSON *topic = cJSON_GetObjectItemCaseSensitive(ev, "event");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev, "time");
    cJSON *data = cJSON_GetObjectItemCaseSensitive(ev, "data");
    if (!cJSON_IsString(topic) || !cJSON_IsNumber(t)) {
        printf("%.*s\n", (int)n, line); /* not an event: as received */
        cJSON_Delete(ev);
        return;
    }
    time_t secs = (time_t)(t->valuedouble / 1000);
    struct tm tm;
    char when[32];
    localtime_r(&secs, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    cJSON *pool = cJSON_DetachItemFromObjectCaseSensitive(data, "pool");
    char *dtext = data ? cJSON_PrintUnformatted(data) : NULL;
    char *tname = render_fit(topic->valuestring, 0);
    char *pname = render_fit(cJSON_IsString(pool) ? pool->valuestring : "-", 0);
    const cJSON *prio = cJSON_GetObjectItemCaseSensitive(ev, "priority");
    int critical = cJSON_IsString(prio) && strcmp(prio->valuestring, "critical") == 0;
    printf("%s.%03d  %-22s %-12s %s%s\n", when, (int)((uint64_t)t->valuedouble % 1000), tname, pname,
           critical ? "CRITICAL " : "", dtext ? dtext : "{}");
    ap_free(tname);
    ap_free(pname);
    if (dtext)
        cJSON_free(dtext);
    cJSON_Delete(pool);
    cJSON_Delete(ev);
}

/* The subscription's answer: AP_OK when it is ok, else says why. */
static int check_answer(const char *line, size_t n)
{
    cJSON *a = cJSON_ParseWithLength(line, n);
    int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "ok"));
    if (!ok) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(a, "error");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        ctl_warn("pool.subscribe failed: %s: %s", cJSON_IsString(code) ? code->valuestring : "?",
                 cJSON_IsString(msg) ? msg->valuestring : "(no message)");
    }
    cJSON_Delete(a);
    return ok ? AP_OK : AP_ERR;
}

int cmd_events(const ctl_opts *o, int argc, char **argv)
{
    char err[512];
    int fd = ctl_connect(o, o->timeout_ms, err, sizeof(err));
    if (fd < 0) {
        ctl_warn("%s", err);
        return CTL_EXIT_CONNECT;
    }
    char *req = events_request(o, argc, argv);
    if (write_all(fd, req, strlen(req), o->timeout_ms) != AP_OK) {
        ctl_warn("sending pool.subscribe: %s", strerror(errno));
        ap_free(req);
        close(fd);
        return CTL_EXIT_EXCHANGE;
    }
    ap_free(req);
    size_t cap = 64 * 1024, len = 0;
    char *buf = ap_malloc(cap);
    int answered = 0, rc = CTL_EXIT_EXCHANGE;
    for (;;) {
        char *nl;
        while ((nl = memchr(buf, '\n', len)) != NULL) {
            size_t n = (size_t)(nl - buf);
            if (!answered) {
                answered = 1;
                if (check_answer(buf, n) != AP_OK) {
                    rc = CTL_EXIT_ANSWER_ERROR;
                    goto out;
                }
            } else if (o->json) {
                fwrite(buf, 1, n + 1, stdout);
            } else {
                print_event(buf, n);
            }
            if (fflush(stdout) != 0) {
                ctl_warn("writing to stdout: %s", strerror(errno));
                goto out;
            }
            memmove(buf, nl + 1, len - n - 1);
            len -= n + 1;
        }
        if (len == cap) {
            if (cap >= CTL_MAX_CAPTURE) {
                ctl_warn("a line from agentpoold is longer than %u bytes", CTL_MAX_CAPTURE);
                goto out;
            }
            cap *= 2;
            buf = ap_realloc(buf, cap);
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int wait = answered || o->timeout_ms == 0 ? -1 : o->timeout_ms;
        int pn = poll(&pfd, 1, wait);
        if (pn < 0 && errno == EINTR)
            continue;
        if (pn == 0) {
            ctl_warn("no answer to pool.subscribe within %d ms", o->timeout_ms);
            goto out;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0) {
            if (r < 0)
                ctl_warn("reading from agentpoold: %s", strerror(errno));
            else
                ctl_warn("agentpoold closed the connection");
            goto out;
        }
        len += (size_t)r;
    }
out:
    ap_free(buf);
    close(fd);
    return rc;
}
