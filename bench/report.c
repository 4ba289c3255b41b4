/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * report.c - progress line, human summary and JSON report (see report.h;
 * the JSON members are documented in bench/README.md).
 *
 * Definitions used by both summaries:
 *   measured period  closed loop by time (--seconds, no --requests): the
 *                    window [t_measure, t_stop), cut short if the run
 *                    ended early; otherwise from t_measure to the last
 *                    answer to a measured request (so waiting for a lost
 *                    answer at the end does not dilute the throughput);
 *   throughput       closed loop by time: answers (ok + errors) received
 *                    inside the window, per second of it, whenever their
 *                    request was sent (counting the requests sent in the
 *                    window instead would add the last round's drain to
 *                    the period: one latency, 1% of 5 s at 50 ms);
 *                    otherwise measured requests completed (ok + errors)
 *                    per second of the measured period;
 *   latency          of every measured answer, ok or error (requests
 *                    failed by a lost connection have none);
 *   outstanding      at the end: requests in flight with no answer, plus
 *                    (open loop) requests due but never written; with the
 *                    age of the oldest of them;
 *   chunks per s     (--stream) like throughput: closed loop by time,
 *                    chunks received inside the window; otherwise chunks
 *                    of measured requests, per second of the period;
 *   first chunk      (--stream) time from a measured request's start (as
 *                    for its latency) to its first chunk, one sample per
 *                    stream that sent one, in the latency's histogram.
 */
#include "report.h"
#include "ap_common.h"
#include "bench.h"
#include "load.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

typedef unsigned long long ull;

static const char *const report_end_names[] = {"complete", "stalled", "interrupted"};
static const char *const report_phase_names[] = {"run", "drain", "done"};

static double report_seconds(uint64_t ns)
{
    return (double)ns / 1e9;
}

/* Whether throughput is answers inside a fixed window (see the top). */
static int report_by_window(void)
{
    return bench.cfg->rate <= 0 && bench.cfg->requests == 0 && bench.t_stop != UINT64_MAX;
}

static double report_measured_s(void)
{
    if (report_by_window()) {
        uint64_t end = bench.t_done < bench.t_stop ? bench.t_done : bench.t_stop;
        return end > bench.t_measure ? report_seconds(end - bench.t_measure) : 0.0;
    }
    return bench.t_last_measured > bench.t_measure ? report_seconds(bench.t_last_measured - bench.t_measure) : 0.0;
}

/* Throughput (all answers, or ok ones only) per second of the period. */
static double report_rps(int ok_only)
{
    double secs = report_measured_s();
    double n;
    if (secs <= 0)
        return 0.0;
    if (report_by_window())
        n = (double)bench.n.win_ok + (ok_only ? 0.0 : (double)bench.n.win_errors);
    else
        n = (double)bench.n.ok + (ok_only ? 0.0 : (double)bench.n.errors);
    return n / secs;
}

/* Chunks per second of the period (see the top). */
static double report_chunks_ps(void)
{
    double secs = report_measured_s();
    if (secs <= 0)
        return 0.0;
    return (double)(report_by_window() ? bench.n.win_chunks : bench.n.chunks) / secs;
}

static double report_tv(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

/* Formats microseconds for people: "850us", "2.31ms", "1.20s". */
static const char *report_fmt_us(char *buf, size_t len, uint64_t us)
{
    if (us < 1000)
        snprintf(buf, len, "%lluus", (ull)us);
    else if (us < 1000000)
        snprintf(buf, len, "%.2fms", (double)us / 1e3);
    else
        snprintf(buf, len, "%.2fs", (double)us / 1e6);
    return buf;
}

unsigned long long report_protocol_errors(void)
{
    return (ull)(bench.n.unknown_id + bench.n.duplicate_id + bench.n.malformed + bench.n.truncated +
                 bench.n.bad_seq);
}

void report_progress(void)
{
    char p99[32];
    if (!bench.cfg->progress)
        return;
    int warm = bench.now < bench.t_measure;
    const hist *h = warm ? &bench.h_warm : &bench.h_tick;
    double dt = bench.now > bench.t_tick ? report_seconds(bench.now - bench.t_tick) : 1.0;
    double rps = (double)(bench.n.answered_all - bench.tick_answered) / dt;
    fprintf(stderr, "\r%6.1fs %-6s sent %llu ok %llu err %llu | %.0f req/s | p99 %s | in flight %llu | reconnects %llu\033[K",
            report_seconds(bench.now - bench.t_start), warm ? "warmup" : report_phase_names[bench.phase],
            (ull)bench.n.sent, (ull)bench.n.ok, (ull)bench.n.errors, rps,
            h->total ? report_fmt_us(p99, sizeof(p99), hist_percentile(h, 99.0)) : "-",
            (ull)bench.n.in_flight, (ull)bench.n.reconnects);
    if (bench.cfg->stream)
        fprintf(stderr, " | chunks %llu\033[K", (ull)bench.n.chunks);
    fflush(stderr);
    bench.progress_shown = 1;
}

void report_progress_end(void)
{
    if (bench.progress_shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        bench.progress_shown = 0;
    }
}

/* One line of percentiles of h, "<label> p50 ... (mean ..., N <what>)",
 * or "<label> no <what>" when h is empty. */
static void report_hist_line(FILE *out, const char *label, const hist *h, const char *what)
{
    char a[32], b[32], c[32], d[32], e[32], f[32];
    if (!h->total) {
        fprintf(out, "  %-11s no %s\n", label, what);
        return;
    }
    fprintf(out, "  %-11s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s, %llu %s)\n", label,
            report_fmt_us(a, sizeof(a), hist_percentile(h, 50)), report_fmt_us(b, sizeof(b), hist_percentile(h, 90)),
            report_fmt_us(c, sizeof(c), hist_percentile(h, 99)), report_fmt_us(d, sizeof(d), hist_percentile(h, 99.9)),
            report_fmt_us(e, sizeof(e), h->max), report_fmt_us(f, sizeof(f), (uint64_t)hist_mean(h)), (ull)h->total,
            what);
}

void report_human(FILE *out)
{
    const bench_cfg *cfg = bench.cfg;
    const hist *h = &bench.h_total;
    double secs = report_measured_s();

    fprintf(out, "%s: %s, %s%s, %u connection%s x %u in flight, ", BENCH_NAME, cfg->target.desc,
            cfg->proto == BENCH_HTTP ? "http POST " : "ndjson", cfg->proto == BENCH_HTTP ? cfg->req.path : "",
            cfg->conns, cfg->conns == 1 ? "" : "s", cfg->depth);
    if (cfg->rate > 0)
        fprintf(out, "open loop at %.0f req/s\n", cfg->rate);
    else
        fprintf(out, "closed loop\n");
    fprintf(out, "  measured    %.2f s after %.1f s of warm-up; run %s\n", secs, cfg->warmup,
            report_end_names[bench.end]);
    fprintf(out, "  requests    sent %llu, ok %llu, errors %llu", (ull)bench.n.sent, (ull)bench.n.ok,
            (ull)bench.n.errors);
    if (bench.n.resent)
        fprintf(out, ", resent %llu", (ull)bench.n.resent);
    fprintf(out, "\n  throughput  %.0f req/s\n", report_rps(0));
    report_hist_line(out, "latency", h, h->total ? "answers" : "measured answers");
    if (cfg->stream) {
        fprintf(out, "  stream      %llu chunks, %.0f chunks/s, %.0f final answers/s, %llu heartbeats\n",
                (ull)bench.n.chunks, report_chunks_ps(), report_rps(0), (ull)bench.n.heartbeats);
        report_hist_line(out, "first chunk", &bench.h_first, "streams");
    }
    if (bench.errors.n || bench.errors.other) {
        fprintf(out, "  errors     ");
        for (unsigned i = 0; i < bench.errors.n; i++)
            fprintf(out, " %s %llu%s", bench.errors.rows[i].name, (ull)bench.errors.rows[i].count,
                    i + 1 < bench.errors.n || bench.errors.other ? "," : "");
        if (bench.errors.other)
            fprintf(out, " other %llu", (ull)bench.errors.other);
        fputc('\n', out);
    }
    fprintf(out, "  protocol    %llu errors (unknown ids %llu, duplicate answers %llu, malformed %llu, truncated %llu",
            report_protocol_errors(), (ull)bench.n.unknown_id, (ull)bench.n.duplicate_id, (ull)bench.n.malformed,
            (ull)bench.n.truncated);
    if (bench.n.bad_seq)
        fprintf(out, ", chunks out of sequence %llu", (ull)bench.n.bad_seq);
    fputs(")\n", out);
    fprintf(out, "  connections reconnects %llu, closed by server %llu, announced closes %llu, failed connects %llu\n",
            (ull)bench.n.reconnects, (ull)bench.n.closed_by_server, (ull)bench.n.close_announced,
            (ull)bench.n.connect_failures);
    uint64_t unsent = load_unsent();
    fprintf(out, "  outstanding %llu at the end (in flight %llu, unsent %llu)", (ull)(bench.n.in_flight + unsent),
            (ull)bench.n.in_flight, (ull)unsent);
    if (bench.n.in_flight + unsent)
        fprintf(out, ", oldest %.1f ms", (double)load_oldest_age() / 1e6);
    fputc('\n', out);
    double user = report_tv(&bench.ru_done.ru_utime) - report_tv(&bench.ru_measure.ru_utime);
    double sys = report_tv(&bench.ru_done.ru_stime) - report_tv(&bench.ru_measure.ru_stime);
    double wall = bench.t_done > bench.t_measure ? report_seconds(bench.t_done - bench.t_measure) : 0.0;
    fprintf(out, "  client cpu  %.2f s user + %.2f s sys", user, sys);
    if (wall > 0)
        fprintf(out, " = %.0f%% of one core", 100.0 * (user + sys) / wall);
    fputc('\n', out);
}

/* The cJSON_Add*ToObject() calls return NULL when out of memory; every
 * such failure clears *ok, and report_json() then prints nothing rather
 * than a report with members missing. */
static void report_num(cJSON *o, const char *k, double v, int *ok)
{
    if (!cJSON_AddNumberToObject(o, k, v))
        *ok = 0;
}

static cJSON *report_obj(cJSON *parent, const char *k, int *ok)
{
    cJSON *o = cJSON_AddObjectToObject(parent, k);
    if (!o)
        *ok = 0;
    return o;
}

/* parent[k]: the histogram h in microseconds (count, min, mean,
 * percentiles, max, values over 100 s). */
static void report_hist_obj(cJSON *parent, const char *k, const hist *h, int *ok)
{
    cJSON *l = report_obj(parent, k, ok);
    if (!l)
        return;
    report_num(l, "count", (double)h->total, ok);
    report_num(l, "min", h->total ? (double)h->min : 0.0, ok);
    report_num(l, "mean", hist_mean(h), ok);
    report_num(l, "p50", (double)hist_percentile(h, 50), ok);
    report_num(l, "p90", (double)hist_percentile(h, 90), ok);
    report_num(l, "p99", (double)hist_percentile(h, 99), ok);
    report_num(l, "p99_9", (double)hist_percentile(h, 99.9), ok);
    report_num(l, "max", (double)h->max, ok);
    report_num(l, "over_100s", (double)h->overflow, ok);
}

int report_json(FILE *out)
{
    const bench_cfg *cfg = bench.cfg;
    const hist *h = &bench.h_total;
    int ok = 1;
    double secs = report_measured_s();
    uint64_t unsent = load_unsent();
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return AP_ERR;

    if (!cJSON_AddStringToObject(root, "tool", BENCH_NAME) ||
        !cJSON_AddStringToObject(root, "version", PACKAGE_VERSION) ||
        !cJSON_AddStringToObject(root, "target", cfg->target.desc) ||
        !cJSON_AddStringToObject(root, "proto", cfg->proto == BENCH_HTTP ? "http" : "ndjson") ||
        !cJSON_AddStringToObject(root, "mode", cfg->rate > 0 ? "open" : "closed") ||
        !cJSON_AddStringToObject(root, "type", cfg->req.type) ||
        !cJSON_AddStringToObject(root, "end", report_end_names[bench.end]))
        ok = 0;
    if (cfg->proto == BENCH_HTTP && !cJSON_AddStringToObject(root, "path", cfg->req.path))
        ok = 0;
    report_num(root, "conns", cfg->conns, &ok);
    report_num(root, "depth", cfg->depth, &ok);
    if (cfg->rate > 0)
        report_num(root, "rate", cfg->rate, &ok);
    else if (!cJSON_AddNullToObject(root, "rate"))
        ok = 0;
    if (cfg->req.data) {
        if (!cJSON_AddNullToObject(root, "payload_bytes"))
            ok = 0;
    } else {
        report_num(root, "payload_bytes", (double)cfg->req.payload_bytes, &ok);
    }
    report_num(root, "request_bytes", (double)bench.req.len, &ok);
    report_num(root, "warmup_s", cfg->warmup, &ok);
    report_num(root, "duration_s", secs, &ok);

    cJSON *r = report_obj(root, "requests", &ok);
    if (r) {
        report_num(r, "sent", (double)bench.n.sent, &ok);
        report_num(r, "ok", (double)bench.n.ok, &ok);
        report_num(r, "errors", (double)bench.n.errors, &ok);
        report_num(r, "outstanding", (double)(bench.n.in_flight + unsent), &ok);
        report_num(r, "resent", (double)bench.n.resent, &ok);
        if (report_by_window())
            report_num(r, "in_window", (double)(bench.n.win_ok + bench.n.win_errors), &ok);
        else if (!cJSON_AddNullToObject(r, "in_window"))
            ok = 0;
    }
    report_num(root, "throughput_rps", report_rps(0), &ok);
    report_num(root, "ok_rps", report_rps(1), &ok);

    report_hist_obj(root, "latency_us", h, &ok);

    if (!cfg->stream) {
        if (!cJSON_AddNullToObject(root, "stream"))
            ok = 0;
    } else {
        cJSON *st = report_obj(root, "stream", &ok);
        if (st) {
            report_num(st, "chunks", (double)bench.n.chunks, &ok);
            if (report_by_window())
                report_num(st, "chunks_in_window", (double)bench.n.win_chunks, &ok);
            else if (!cJSON_AddNullToObject(st, "chunks_in_window"))
                ok = 0;
            report_num(st, "chunks_per_s", report_chunks_ps(), &ok);
            report_num(st, "final_per_s", report_rps(0), &ok);
            report_num(st, "heartbeats", (double)bench.n.heartbeats, &ok);
            report_hist_obj(st, "first_chunk_us", &bench.h_first, &ok);
        }
    }

    cJSON *e = report_obj(root, "errors", &ok);
    if (e) {
        for (unsigned i = 0; i < bench.errors.n; i++)
            report_num(e, bench.errors.rows[i].name, (double)bench.errors.rows[i].count, &ok);
        if (bench.errors.other)
            report_num(e, "other", (double)bench.errors.other, &ok);
    }

    cJSON *p = report_obj(root, "protocol_errors", &ok);
    if (p) {
        report_num(p, "total", (double)report_protocol_errors(), &ok);
        report_num(p, "unknown_id", (double)bench.n.unknown_id, &ok);
        report_num(p, "duplicate_id", (double)bench.n.duplicate_id, &ok);
        report_num(p, "malformed", (double)bench.n.malformed, &ok);
        report_num(p, "truncated", (double)bench.n.truncated, &ok);
        report_num(p, "bad_seq", (double)bench.n.bad_seq, &ok);
    }

    cJSON *c = report_obj(root, "connections", &ok);
    if (c) {
        report_num(c, "reconnects", (double)bench.n.reconnects, &ok);
        report_num(c, "closed_by_server", (double)bench.n.closed_by_server, &ok);
        report_num(c, "close_announced", (double)bench.n.close_announced, &ok);
        report_num(c, "connect_failures", (double)bench.n.connect_failures, &ok);
    }

    cJSON *o = report_obj(root, "outstanding", &ok);
    if (o) {
        report_num(o, "count", (double)(bench.n.in_flight + unsent), &ok);
        report_num(o, "in_flight", (double)bench.n.in_flight, &ok);
        report_num(o, "unsent", (double)unsent, &ok);
        report_num(o, "oldest_age_ms", (double)load_oldest_age() / 1e6, &ok);
    }

    cJSON *w = report_obj(root, "warmup", &ok);
    if (w) {
        report_num(w, "sent", (double)bench.n.warmup_sent, &ok);
        report_num(w, "done", (double)bench.n.warmup_done, &ok);
    }

    cJSON *cpu = report_obj(root, "cpu", &ok);
    if (cpu) {
        double user = report_tv(&bench.ru_done.ru_utime) - report_tv(&bench.ru_measure.ru_utime);
        double sys = report_tv(&bench.ru_done.ru_stime) - report_tv(&bench.ru_measure.ru_stime);
        double wall = bench.t_done > bench.t_measure ? report_seconds(bench.t_done - bench.t_measure) : 0.0;
        report_num(cpu, "user_s", user, &ok);
        report_num(cpu, "sys_s", sys, &ok);
        report_num(cpu, "wall_s", wall, &ok);
        report_num(cpu, "utilization", wall > 0 ? (user + sys) / wall : 0.0, &ok);
        report_num(cpu, "total_user_s", report_tv(&bench.ru_done.ru_utime), &ok);
        report_num(cpu, "total_sys_s", report_tv(&bench.ru_done.ru_stime), &ok);
    }

    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return AP_ERR;
    int rc = fprintf(out, "%s\n", text) < 0 || fflush(out) != 0 ? AP_ERR : AP_OK;
    cJSON_free(text);
    return rc;
}
