/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cmd_session.c - `agentpoolctl session show|delete|list`: the session
 * states a pool keeps (docs/sessions.md), through pool.session.get,
 * pool.session.delete and pool.session.list.  show prints the state as
 * JSON (what the store holds, not the master's cache); list pages
 * through the keys in key order, at most --limit of them (default 100).
 */
#include "args.h"
#include "ctl.h"
#include "ap_alloc.h"
#include "render.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CTL_SESSION_LIST_DEFAULT 100
#define CTL_SESSION_PAGE 1000

static int session_show(const ctl_opts *o, int argc, char **argv);
static int session_delete(const ctl_opts *o, int argc, char **argv);
static int session_list(const ctl_opts *o, int argc, char **argv);

static const ctl_command session_commands[] = {
    {"show", "KEY [--json] [--pool NAME]", CTL_TAKES_JSON | CTL_TAKES_POOL, 1, 1, 0, session_show},
    {"delete", "KEY [--pool NAME]", CTL_TAKES_POOL, 1, 1, 0, session_delete},
    {"list", "[--json] [--limit N] [--pool NAME]", CTL_TAKES_JSON | CTL_TAKES_LIMIT | CTL_TAKES_POOL, 0, 0, 0,
     session_list},
};

int cmd_session(const ctl_opts *o, int argc, char **argv)
{
    ctl_opts sub = *o;
    return args_dispatch(session_commands, AP_ARRAY_LEN(session_commands), "session", &sub, argc, argv);
}

/* Sends type with {"session": KEY}: ctl_call_human's (human) or
 * ctl_call's status and result. */
static int key_call(const ctl_opts *o, const char *type, const char *key, int human, cJSON **res)
{
    char *k = ctl_json_string(key);
    size_t n = strlen(k) + 16;
    char *d = ap_malloc(n);
    snprintf(d, n, "{\"session\":%s}", k);
    ap_free(k);
    int status = human ? ctl_call_human(o, type, d, res) : ctl_call(o, type, d, res);
    ap_free(d);
    return status;
}

/* ms since the epoch as local "YYYY-MM-DD HH:MM:SS". */
static void when(double ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || localtime_r(&t, &tm) == NULL || strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(out, cap, "-");
}

static int session_show(const ctl_opts *o, int argc, char **argv)
{
    cJSON *res;
    AP_UNUSED(argc);
    int status = key_call(o, "pool.session.get", argv[0], 1, &res);
    if (res == NULL)
        return status;
    char at[32];
    when(ctl_num(res, "updatedMs", 0), at, sizeof(at));
    printf("session %s: %d bytes, last written %s\n", argv[0], ctl_int(res, "bytes", 0), at);
    ctl_print_json(cJSON_GetObjectItemCaseSensitive(res, "state"));
    cJSON_Delete(res);
    return CTL_EXIT_OK;
}

static int session_delete(const ctl_opts *o, int argc, char **argv)
{
    cJSON *res;
    AP_UNUSED(argc);
    int status = key_call(o, "pool.session.delete", argv[0], 0, &res);
    if (res == NULL)
        return status;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "deleted")))
        printf("session %s: state deleted\n", argv[0]);
    else
        printf("session %s: no state was kept\n", argv[0]);
    cJSON_Delete(res);
    return CTL_EXIT_OK;
}

static int session_list(const ctl_opts *o, int argc, char **argv)
{
    AP_UNUSED(argc);
    AP_UNUSED(argv);
    uint64_t want = (o->given & CTL_TAKES_LIMIT) ? o->limit : CTL_SESSION_LIST_DEFAULT, shown = 0;
    char *after = NULL;
    cJSON *all = o->json ? cJSON_CreateArray() : NULL;
    int status = CTL_EXIT_OK, more = 1;
    while (more && shown < want) {
        uint64_t page = want - shown < CTL_SESSION_PAGE ? want - shown : CTL_SESSION_PAGE;
        char *k = after ? ctl_json_string(after) : NULL;
        size_t n = (k ? strlen(k) : 0) + 64;
        char *data = ap_malloc(n);
        if (k)
            snprintf(data, n, "{\"after\":%s,\"limit\":%" PRIu64 "}", k, page);
        else
            snprintf(data, n, "{\"limit\":%" PRIu64 "}", page);
        ap_free(k);
        cJSON *res;
        status = ctl_call(o, "pool.session.list", data, &res);
        ap_free(data);
        if (res == NULL)
            break;
        const cJSON *s, *list = cJSON_GetObjectItemCaseSensitive(res, "sessions");
        cJSON_ArrayForEach(s, list)
        {
            const cJSON *key = cJSON_GetObjectItemCaseSensitive(s, "session");
            if (!cJSON_IsString(key))
                continue;
            ap_free(after);
            after = ap_strdup(key->valuestring);
            shown++;
            if (all) {
                cJSON_AddItemToArray(all, cJSON_Duplicate(s, 1));
            } else {
                char at[32];
                when(ctl_num(s, "updatedMs", 0), at, sizeof(at));
                printf("%-40s %10d  %s\n", key->valuestring, ctl_int(s, "bytes", 0), at);
            }
        }
        more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "more")) && cJSON_GetArraySize(list) > 0;
        cJSON_Delete(res);
    }
    if (all) {
        if (status == CTL_EXIT_OK)
            ctl_print_json(all);
        cJSON_Delete(all);
    } else if (status == CTL_EXIT_OK && more) {
        printf("(more: agentpoolctl session list --limit %" PRIu64 ")\n", want * 2);
    }
    ap_free(after);
    return status;
}
