/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cmd_usage.c - `agentpoolctl usage [--by key|pool|type] [--pool NAME]
 * [--json]`: the usage agentpoold accounted (pool.stats' "usage" rows,
 * one per pool, type and API key), summed by the chosen column and
 * printed as a table, largest token count first; --json prints the
 * summed rows as one JSON array.  Sums only: the rows' meaning is
 * agentpoold's (pool/ops/usage.h).
 */
#include "ctl.h"
#include "render.h"
#include "table.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Numeric members summed per group (errors and other are objects, summed
 * member by member). */
static const char *const usage_sums[] = {"requests", "ok", "tokensIn", "tokensOut", "cost", "cpuSeconds",
                                         "cpuMessages", "queueWaitSeconds", "runSeconds", "runMessages"};

/* Adds src's numbers into dst's members of the same name. */
static void usage_add_object(cJSON *dst, const cJSON *src)
{
    for (const cJSON *v = src ? src->child : NULL; v; v = v->next) {
        if (!cJSON_IsNumber(v))
            continue;
        cJSON *d = cJSON_GetObjectItemCaseSensitive(dst, v->string);
        if (d)
            cJSON_SetNumberValue(d, d->valuedouble + v->valuedouble);
        else
            cJSON_AddNumberToObject(dst, v->string, v->valuedouble);
    }
}

/* The rows summed by column `by`, as a new array. */
static cJSON *usage_group(const cJSON *rows, const char *by)
{
    cJSON *out = cJSON_CreateArray();
    for (const cJSON *r = rows ? rows->child : NULL; r; r = r->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(r, by);
        if (!cJSON_IsString(name))
            continue;
        cJSON *g = NULL;
        for (cJSON *e = out->child; e && !g; e = e->next)
            if (strcmp(cJSON_GetObjectItemCaseSensitive(e, by)->valuestring, name->valuestring) == 0)
                g = e;
        if (g == NULL) {
            g = cJSON_CreateObject();
            cJSON_AddStringToObject(g, by, name->valuestring);
            for (size_t i = 0; i < AP_ARRAY_LEN(usage_sums); i++)
                cJSON_AddNumberToObject(g, usage_sums[i], 0);
            cJSON_AddObjectToObject(g, "errors");
            cJSON_AddObjectToObject(g, "other");
            cJSON_AddItemToArray(out, g);
        }
        for (size_t i = 0; i < AP_ARRAY_LEN(usage_sums); i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, usage_sums[i]);
            cJSON *d = cJSON_GetObjectItemCaseSensitive(g, usage_sums[i]);
            if (cJSON_IsNumber(v))
                cJSON_SetNumberValue(d, d->valuedouble + v->valuedouble);
        }
        usage_add_object(cJSON_GetObjectItemCaseSensitive(g, "errors"), cJSON_GetObjectItemCaseSensitive(r, "errors"));
        usage_add_object(cJSON_GetObjectItemCaseSensitive(g, "other"), cJSON_GetObjectItemCaseSensitive(r, "other"));
    }
    return out;
}

static double usage_num(const cJSON *g, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(g, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int usage_by_tokens(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    double tx = usage_num(x, "tokensIn") + usage_num(x, "tokensOut"),
           ty = usage_num(y, "tokensIn") + usage_num(y, "tokensOut");
    return tx < ty ? 1 : tx > ty ? -1 : 0;
}

/* "agent_error 2, rate_limited 1", or "-". */
static char *usage_errors_text(const cJSON *errs)
{
    char buf[512];
    size_t n = 0;
    buf[0] = '\0';
    for (const cJSON *e = errs ? errs->child : NULL; e && n < sizeof(buf); e = e->next)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s %.0f", n ? ", " : "", e->string, e->valuedouble);
    return ap_strdup(n ? buf : "-");
}

static void usage_print(const cJSON *groups, const char *by)
{
    static const char *const header[] = {"requests", "ok", "errors", "tokens-in", "tokens-out", "cost", "cpu-s"};
    int n = cJSON_GetArraySize(groups);
    const cJSON **sorted = ap_calloc((size_t)n + 1, sizeof(*sorted));
    int k = 0;
    for (const cJSON *g = groups->child; g; g = g->next)
        sorted[k++] = g;
    qsort(sorted, (size_t)n, sizeof(*sorted), usage_by_tokens);
    table t;
    char *cell[1 + AP_ARRAY_LEN(header)];
    table_init(&t, AP_ARRAY_LEN(cell));
    cell[0] = ap_strdup(by);
    for (size_t i = 0; i < AP_ARRAY_LEN(header); i++)
        cell[i + 1] = ap_strdup(header[i]);
    table_add_row(&t, cell);
    for (int i = 0; i < n; i++) {
        const cJSON *g = sorted[i];
        cell[0] = ap_strdup(cJSON_GetObjectItemCaseSensitive(g, by)->valuestring);
        cell[1] = render_fmt("%.0f", usage_num(g, "requests"));
        cell[2] = render_fmt("%.0f", usage_num(g, "ok"));
        cell[3] = usage_errors_text(cJSON_GetObjectItemCaseSensitive(g, "errors"));
        cell[4] = render_fmt("%.0f", usage_num(g, "tokensIn"));
        cell[5] = render_fmt("%.0f", usage_num(g, "tokensOut"));
        cell[6] = render_fmt("%g", usage_num(g, "cost"));
        cell[7] = render_fmt("%.3f", usage_num(g, "cpuSeconds"));
        table_add_row(&t, cell);
    }
    table_print(&t, stdout, "");
    table_free(&t);
    ap_free(sorted);
}

int cmd_usage(const ctl_opts *o, int argc, char **argv)
{
    AP_UNUSED(argc);
    AP_UNUSED(argv);
    const char *by = o->by ? o->by : "key";
    if (strcmp(by, "key") != 0 && strcmp(by, "pool") != 0 && strcmp(by, "type") != 0)
        return ctl_usage_error("usage --by wants key, pool or type, not '%s'", by);
    char *data = ctl_data_with_pool(NULL, o->pool);
    cJSON *res;
    int status = ctl_call(o, "pool.stats", data, &res);
    ap_free(data);
    if (res == NULL)
        return status;
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(res, "usage");
    cJSON *groups = usage_group(cJSON_GetObjectItemCaseSensitive(usage, "rows"), by);
    if (o->json)
        ctl_print_json(groups);
    else if (cJSON_GetArraySize(groups) == 0)
        printf("no usage accounted yet\n");
    else
        usage_print(groups, by);
    cJSON_Delete(groups);
    cJSON_Delete(res);
    return CTL_EXIT_OK;
}
