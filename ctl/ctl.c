/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ctl.c - the plumbing agentpoolctl's commands share (see ctl.h).
 *
 * Owns the one place where a connection failure becomes exit status 3
 * and a failed exchange (lost, timed out, malformed or oversized answer)
 * becomes 4, so every command maps failures the same way.  The quiet
 * functions (ctl_exchange_quiet, ctl_request) write their reason into a
 * caller's buffer instead of stderr: `top` shows it on its screen, where
 * a stray line on stderr would scroll the frame.  Each request goes over
 * a connection of its own, opened and closed here; nothing is kept
 * between calls.
 */
#include "ctl.h"
#include "ap_alloc.h"
#include "conn.h"
#include "reqline.h"
#include "render.h"

#include <cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void vwarn(const char *fmt, va_list ap, const char *tail)
{
    fputs(CTL_NAME ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(tail, stderr);
}

void ctl_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwarn(fmt, ap, "\n");
    va_end(ap);
}

int ctl_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwarn(fmt, ap, "\nTry 'agentpoolctl --help' for more information.\n");
    va_end(ap);
    return CTL_EXIT_USAGE;
}

int ctl_parse_u64(const char *s, uint64_t *out)
{
    return jspan_u64(s, strlen(s), out);
}

int ctl_connect(const ctl_opts *o, int timeout_ms, char *err, size_t errlen)
{
    return conn_open(o->socket_path, timeout_ms, err, errlen);
}

int ctl_exchange_quiet(const ctl_opts *o, int timeout_ms, exchange_opts *x, exchange_result *r,
                       char *err, size_t errlen)
{
    int fd = ctl_connect(o, timeout_ms, err, errlen);
    if (fd < 0) {
        memset(r, 0, sizeof(*r));
        return CTL_EXIT_CONNECT;
    }
    int status = ctl_exchange_on(fd, timeout_ms, x, r, err, errlen);
    close(fd);
    return status;
}

int ctl_exchange_on(int fd, int timeout_ms, exchange_opts *x, exchange_result *r, char *err,
                    size_t errlen)
{
    x->sock = fd;
    x->timeout_ms = timeout_ms;
    int rc = exchange_run(x, r);
    if (rc == AP_OK)
        return CTL_EXIT_OK;
    if (r->status == EXCHANGE_IOERR && r->answered >= r->sent)
        snprintf(err, errlen, "%s", r->err);
    else
        snprintf(err, errlen, "%s (%zu of %zu answer%s missing)", r->err, r->sent - r->answered,
                 r->sent, r->sent == 1 ? "" : "s");
    return CTL_EXIT_EXCHANGE;
}

int ctl_exchange(const ctl_opts *o, exchange_opts *x, exchange_result *r)
{
    char err[512];
    int status = ctl_exchange_quiet(o, o->timeout_ms, x, r, err, sizeof(err));
    if (status != CTL_EXIT_OK)
        ctl_warn("%s", err);
    return status;
}

char *ctl_error_text(jspan error)
{
    cJSON *e = error.p ? cJSON_ParseWithLength(error.p, error.len) : NULL;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    const char *c = cJSON_IsString(code) ? code->valuestring : "?";
    const char *m = cJSON_IsString(msg) ? msg->valuestring : "(no message)";
    /* forbidden: say what would let this user in, not only that it was not. */
    const char *hint = strcmp(c, "forbidden") == 0
                           ? " (this needs an administrator of agentpoold: root, the user it runs as, or a user "
                             "in its adminUids/adminGids; ask its operator)"
                           : "";
    size_t n = strlen(c) + strlen(m) + strlen(hint) + 3;
    char *txt = ap_malloc(n);
    snprintf(txt, n, "%s: %s%s", c, m, hint);
    cJSON_Delete(e);
    return txt;
}

void ctl_answer_free(ctl_answer *a)
{
    ap_free(a->cap.data);
    a->cap.data = NULL;
}

int ctl_request(const ctl_opts *o, const char *type, const char *data_json, int timeout_ms,
                size_t limit, ctl_answer *a, char *err, size_t errlen)
{
    size_t len;
    exchange_result r;
    jspan line, okv;
    cJSON *ok = NULL;

    memset(a, 0, sizeof(*a));
    a->cap.limit = limit;
    a->result.p = "null";
    a->result.len = 4;
    char *data = ctl_data_with_pool(data_json, o->pool);
    char *req = reqline_build(1, type, data, &len, err, errlen);
    ap_free(data);
    if (req == NULL) /* our own requests are well-formed: a bug */
        return CTL_EXIT_USAGE;
    exchange_opts x = {.preload = req, .preload_len = len, .preload_lines = 1, .in_fd = -1,
                       .out_fd = -1, .capture = &a->cap};
    int status = ctl_exchange_quiet(o, timeout_ms, &x, &r, err, errlen);
    ap_free(req);
    if (status != CTL_EXIT_OK)
        return status;

    /* One request per connection, so the one answer is ours. */
    line.p = a->cap.data ? a->cap.data : "";
    line.len = a->cap.data ? a->cap.len : 0;
    while (line.len > 0 && (line.p[line.len - 1] == '\n' || line.p[line.len - 1] == '\r'))
        line.len--;
    if (jspan_member(line, "ok", &okv, &ok) != AP_OK || !cJSON_IsBool(ok)) {
        cJSON_Delete(ok);
        snprintf(err, errlen, "%s: malformed answer from agentpoold: %.200s", type, line.p);
        return CTL_EXIT_EXCHANGE;
    }
    int said_ok = cJSON_IsTrue(ok);
    cJSON_Delete(ok);
    if (!said_ok) {
        (void)jspan_member(line, "error", &a->error, NULL);
        char *why = ctl_error_text(a->error);
        snprintf(err, errlen, "%s failed: %s", type, why);
        ap_free(why);
        return CTL_EXIT_ANSWER_ERROR;
    }
    if (jspan_member(line, "result", &a->result, NULL) != AP_OK) {
        a->result.p = "null";
        a->result.len = 4;
    }
    return CTL_EXIT_OK;
}

int ctl_call(const ctl_opts *o, const char *type, const char *data_json, cJSON **result)
{
    char err[512];
    ctl_answer a;

    *result = NULL;
    int status = ctl_request(o, type, data_json, o->timeout_ms, CTL_MAX_CAPTURE, &a, err, sizeof(err));
    if (status == CTL_EXIT_OK) {
        *result = cJSON_ParseWithLength(a.result.p, a.result.len);
        if (*result == NULL) {
            snprintf(err, sizeof(err), "%s: malformed answer from agentpoold: %.200s", type,
                     a.cap.data);
            status = CTL_EXIT_EXCHANGE;
        }
    }
    if (status != CTL_EXIT_OK)
        ctl_warn("%s", err);
    ctl_answer_free(&a);
    return status;
}

int ctl_call_human(const ctl_opts *o, const char *type, const char *data_json, cJSON **result)
{
    int status = ctl_call(o, type, data_json, result);
    if (status == CTL_EXIT_OK && o->json) {
        ctl_print_json(*result);
        cJSON_Delete(*result);
        *result = NULL;
    }
    return status;
}

char *ctl_json_string(const char *name)
{
    size_t n = strlen(name), len = 0;
    char *out = ap_malloc(n * 6 + 3);
    out[len++] = '"';
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
        if (*c == '"' || *c == '\\') {
            out[len++] = '\\';
            out[len++] = (char)*c;
        } else if (*c < 0x20) {
            len += (size_t)snprintf(out + len, 7, "\\u%04x", *c);
        } else {
            out[len++] = (char)*c;
        }
    }
    out[len++] = '"';
    out[len] = '\0';
    return out;
}

char *ctl_data_with_pool(const char *data_json, const char *pool)
{
    if (pool == NULL)
        return data_json ? ap_strdup(data_json) : NULL;
    /* Spliced in as text: the caller's members keep their spelling. */
    const char *rest = data_json ? strchr(data_json, '{') : NULL;
    rest = rest ? rest + 1 : "}";
    const char *first = rest + strspn(rest, " \t\r\n");
    char *name = ctl_json_string(pool);
    char *out = render_fmt("{\"pool\":%s%s%s", name, *first == '}' ? "" : ",", rest);
    ap_free(name);
    return out;
}

void ctl_print_json(const cJSON *res)
{
    char *txt = isatty(STDOUT_FILENO) ? cJSON_Print(res) : cJSON_PrintUnformatted(res);
    if (txt) {
        puts(txt);
        cJSON_free(txt);
    }
}

size_t ctl_out_width(void)
{
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *c = getenv("COLUMNS");
    char *end;
    long v = c ? strtol(c, &end, 10) : 0;
    return c && *c && *end == '\0' && v > 0 && v < 100000 ? (size_t)v : 0;
}

int ctl_int(const cJSON *obj, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valueint : dflt;
}

double ctl_num(const cJSON *obj, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}
