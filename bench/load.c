/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * load.c - the schedule, the phases and the accounting of a run (see
 * load.h for the closed and open loop rules).
 *
 * Owns the one mutable global, `bench`.  Issuing a request is: take a
 * slot in the connection's match table (its id), append the template to
 * the output buffer and write the id into it; nothing is allocated.  A
 * request is "measured" when it was issued (closed loop) or due (open
 * loop) at or after t_measure: only measured requests count in sent, ok,
 * errors and the latency histogram.  Protocol errors and connection
 * events are counted over the whole run, warm-up included, since a
 * correct server never causes them.
 *
 * Timers: the cron (100 ms, persistent) for the end conditions and the
 * progress line; the pace timer (open loop) at the next due time; the
 * measure timer at the end of the warm-up; SIGINT/SIGTERM as events.
 */
#include "load.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "conn.h"
#include "report.h"

#include <event2/event.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define LOAD_CRON_MS 100
#define LOAD_TICKS_PER_LINE 10 /* progress line once a second */

bench_state bench;

static int load_open_loop(void)
{
    return bench.cfg->rate > 0;
}

/* Intended send time of request g of the open-loop schedule. */
static uint64_t load_due_time(uint64_t g)
{
    return bench.t_start + (uint64_t)((double)g * bench.ns_per_req);
}

uint64_t load_unsent(void)
{
    return load_open_loop() ? bench.g_next - bench.n.issued_all : 0;
}

/* Has the schedule handed out its last request? */
static int load_issuing_over(void)
{
    const bench_cfg *cfg = bench.cfg;
    if (load_open_loop())
        return bench.g_next >= bench.g_end;
    if (cfg->seconds > 0 && bench.now >= bench.t_stop)
        return 1;
    return cfg->requests > 0 && bench.n.sent >= cfg->requests;
}

static void load_finish(bench_end end)
{
    if (bench.phase == PHASE_DONE)
        return;
    bench.phase = PHASE_DONE;
    bench.end = end;
    bench.t_done = bench.now;
    getrusage(RUSAGE_SELF, &bench.ru_done);
    if (!bench.measuring)
        bench.ru_measure = bench.ru_done;
    hist_merge(&bench.h_total, &bench.h_tick);
    hist_reset(&bench.h_tick);
    report_progress_end();
    event_base_loopbreak(bench.base);
}

void load_check_done(void)
{
    if (bench.phase == PHASE_DONE)
        return;
    if (bench.phase == PHASE_RUN && load_issuing_over())
        bench.phase = PHASE_DRAIN;
    if (bench.phase == PHASE_DRAIN && bench.n.in_flight == 0 && load_unsent() == 0)
        load_finish(END_COMPLETE);
}

int load_conn_needed(const bench_conn *c)
{
    if (bench.phase == PHASE_DONE)
        return 0;
    if (bench.phase == PHASE_RUN || c->mt.in_use > 0)
        return 1;
    return load_open_loop() && c->next_k < c->due_k;
}

/* Issues one new request on c counted from start.  Returns 0 when the
 * output buffer has no room (nothing changed). */
static int load_issue(bench_conn *c, uint64_t start)
{
    uint64_t id;
    char *dst = conn_out_append(c, bench.req.len);
    if (!dst)
        return 0;
    (void)match_acquire(&c->mt, start, &id); /* callers checked in_use < depth */
    tmpl_write(&bench.req, dst, id);
    if (bench.cfg->proto == BENCH_HTTP)
        c->written++;
    bench.n.in_flight++;
    bench.n.issued_all++;
    if (start >= bench.t_measure)
        bench.n.sent++;
    else
        bench.n.warmup_sent++;
    return 1;
}

/* HTTP after a reconnect: writes again what the last socket left
 * unanswered, oldest first.  Returns 1 when all of it is written. */
static int load_resend(bench_conn *c)
{
    while (c->written < c->mt.in_use) {
        uint32_t slot = match_ring_at(&c->mt, c->written);
        char *dst = conn_out_append(c, bench.req.len);
        if (!dst)
            return 0;
        tmpl_write(&bench.req, dst, match_id_of(&c->mt, slot));
        c->written++;
        bench.n.resent++;
    }
    return 1;
}

void load_fill(bench_conn *c)
{
    const bench_cfg *cfg = bench.cfg;
    if (c->state != CONN_OPEN)
        return;
    if (cfg->proto == BENCH_HTTP && !load_resend(c)) {
        conn_flush(c);
        return;
    }
    if (!load_open_loop()) {
        while (c->mt.in_use < cfg->depth && bench.phase == PHASE_RUN && !load_issuing_over())
            if (!load_issue(c, bench.now))
                break;
    } else {
        while (c->next_k < c->due_k && c->mt.in_use < cfg->depth) {
            uint64_t g = c->next_k * cfg->conns + c->index;
            if (!load_issue(c, load_due_time(g)))
                break;
            c->next_k++;
        }
    }
    conn_flush(c);
}

/* Counts an answer or a failure that arrived inside the measured window. */
static void load_count_window(int ok)
{
    if (bench.now < bench.t_measure || bench.now >= bench.t_stop)
        return;
    if (ok)
        bench.n.win_ok++;
    else
        bench.n.win_errors++;
}

void load_answer(uint64_t start_ns, int ok, const char *code, size_t code_len)
{
    uint64_t lat_us = (bench.now > start_ns ? bench.now - start_ns : 0) / 1000u;
    load_count_window(ok);
    bench.n.in_flight--;
    bench.n.answered_all++;
    bench.t_last_answer = bench.now;
    if (start_ns >= bench.t_measure) {
        if (ok) {
            bench.n.ok++;
        } else {
            bench.n.errors++;
            errtab_add(&bench.errors, code, code_len);
        }
        hist_record(&bench.h_tick, lat_us);
        bench.t_last_measured = bench.now;
    } else {
        bench.n.warmup_done++;
        hist_record(&bench.h_warm, lat_us);
    }
}

void load_chunk(uint64_t start_ns, uint64_t before)
{
    bench.t_last_answer = bench.now; /* the server is not silent */
    if (bench.now >= bench.t_measure && bench.now < bench.t_stop)
        bench.n.win_chunks++;
    if (start_ns < bench.t_measure)
        return;
    bench.n.chunks++;
    if (before == 0)
        hist_record(&bench.h_first, (bench.now > start_ns ? bench.now - start_ns : 0) / 1000u);
}

void load_heartbeat(void)
{
    bench.t_last_answer = bench.now;
    bench.n.heartbeats++;
}

void load_failed(uint64_t start_ns)
{
    load_count_window(0);
    bench.n.in_flight--;
    if (start_ns >= bench.t_measure) {
        bench.n.errors++;
        errtab_add(&bench.errors, "connection_closed", 17);
    } else {
        bench.n.warmup_done++;
    }
}

uint64_t load_oldest_age(void)
{
    uint64_t oldest = UINT64_MAX, t;
    for (uint32_t i = 0; i < bench.cfg->conns; i++) {
        bench_conn *c = &bench.conns[i];
        if (match_oldest(&c->mt, &t) == AP_OK && t < oldest)
            oldest = t;
        if (load_open_loop() && c->next_k < c->due_k) {
            t = load_due_time(c->next_k * bench.cfg->conns + c->index);
            if (t < oldest)
                oldest = t;
        }
    }
    if (oldest == UINT64_MAX || oldest > bench.t_done)
        return 0;
    return bench.t_done - oldest;
}

/* Open loop: makes every request due by now due on its connection, lets
 * those connections send, and sets the timer for the next one. */
static void load_pace_cb(evutil_socket_t fd, short what, void *arg)
{
    const bench_cfg *cfg = bench.cfg;
    AP_UNUSED(fd);
    AP_UNUSED(what);
    AP_UNUSED(arg);
    bench.now = ap_now_ns();
    if (bench.phase != PHASE_RUN)
        return;
    uint64_t due = (uint64_t)((double)(bench.now - bench.t_start) / bench.ns_per_req) + 1;
    if (due > bench.g_end)
        due = bench.g_end;
    if (due > bench.g_next) {
        uint64_t first = bench.g_next;
        bench.g_next = due;
        for (uint64_t g = first; g < due; g++)
            bench.conns[g % cfg->conns].due_k = g / cfg->conns + 1;
        if (due - first >= cfg->conns) {
            for (uint32_t i = 0; i < cfg->conns && bench.phase != PHASE_DONE; i++)
                load_fill(&bench.conns[i]);
        } else {
            for (uint64_t g = first; g < due && bench.phase != PHASE_DONE; g++)
                load_fill(&bench.conns[g % cfg->conns]);
        }
    }
    if (bench.g_next >= bench.g_end) {
        load_check_done();
        return;
    }
    uint64_t at = load_due_time(bench.g_next);
    uint64_t wait = at > bench.now ? at - bench.now : 0;
    struct timeval tv = {.tv_sec = (time_t)(wait / 1000000000u), .tv_usec = (suseconds_t)(wait % 1000000000u / 1000u)};
    event_add(bench.pace, &tv);
}

/* The warm-up is over: from here on requests are measured. */
static void load_measure_cb(evutil_socket_t fd, short what, void *arg)
{
    AP_UNUSED(fd);
    AP_UNUSED(what);
    AP_UNUSED(arg);
    bench.now = ap_now_ns();
    getrusage(RUSAGE_SELF, &bench.ru_measure);
    bench.measuring = 1;
}

/* Did the server stop answering?  Only while something waits for it:
 * requests outstanding, or a connection that should be up. */
static int load_stalled(void)
{
    uint64_t limit = (uint64_t)(bench.cfg->timeout * 1e9);
    if (bench.now - bench.t_last_answer < limit)
        return 0;
    if (bench.n.in_flight > 0 || load_unsent() > 0)
        return 1;
    return bench.phase == PHASE_RUN && bench.conns_in[CONN_OPEN] < bench.cfg->conns;
}

static void load_cron_cb(evutil_socket_t fd, short what, void *arg)
{
    AP_UNUSED(fd);
    AP_UNUSED(what);
    AP_UNUSED(arg);
    bench.now = ap_now_ns();
    load_check_done();
    if (bench.phase != PHASE_DONE && load_stalled())
        load_finish(END_STALLED);
    if (bench.phase == PHASE_DONE)
        return;
    if (++bench.ticks % LOAD_TICKS_PER_LINE == 0) {
        report_progress();
        bench.tick_answered = bench.n.answered_all;
        bench.t_tick = bench.now;
        hist_merge(&bench.h_total, &bench.h_tick);
        hist_reset(&bench.h_tick);
        hist_reset(&bench.h_warm);
    }
}

static void load_signal_cb(evutil_socket_t fd, short what, void *arg)
{
    AP_UNUSED(fd);
    AP_UNUSED(what);
    AP_UNUSED(arg);
    bench.now = ap_now_ns();
    load_finish(END_INTERRUPTED);
}

int load_init(const bench_cfg *cfg, char *err, size_t errlen)
{
    memset(&bench, 0, sizeof(bench));
    bench.cfg = cfg;
    hist_reset(&bench.h_total);
    hist_reset(&bench.h_tick);
    hist_reset(&bench.h_warm);
    hist_reset(&bench.h_first);

    tmpl_spec spec = cfg->req;
    spec.http = cfg->proto == BENCH_HTTP;
    spec.host = cfg->target.host;
    if (tmpl_build(&bench.req, &spec, err, errlen) != AP_OK)
        return AP_ERR;

    /* The open loop's pace timer wants timerfd precision (microseconds);
     * the closed loop does not, and saves a timerfd_settime() per turn. */
    struct event_config *ec = event_config_new();
    if (ec && cfg->rate > 0)
        event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
    bench.base = ec ? event_base_new_with_config(ec) : NULL;
    if (ec)
        event_config_free(ec);
    if (!bench.base) {
        snprintf(err, errlen, "event_base_new() failed");
        tmpl_free(&bench.req);
        return AP_ERR;
    }
    bench.cron = event_new(bench.base, -1, EV_PERSIST, load_cron_cb, NULL);
    bench.pace = evtimer_new(bench.base, load_pace_cb, NULL);
    bench.measure = evtimer_new(bench.base, load_measure_cb, NULL);
    bench.sigint = evsignal_new(bench.base, SIGINT, load_signal_cb, NULL);
    bench.sigterm = evsignal_new(bench.base, SIGTERM, load_signal_cb, NULL);
    if (!bench.cron || !bench.pace || !bench.measure || !bench.sigint || !bench.sigterm) {
        fprintf(stderr, BENCH_NAME ": out of memory creating events\n");
        abort();
    }
    bench.conns = ap_calloc(cfg->conns, sizeof(*bench.conns));
    for (uint32_t i = 0; i < cfg->conns; i++)
        conn_setup(&bench.conns[i], i);
    return AP_OK;
}

/* Fixes the measured period and the end of issuing, from now. */
static void load_plan(void)
{
    const bench_cfg *cfg = bench.cfg;
    bench.t_start = bench.now;
    bench.t_last_answer = bench.now;
    bench.t_tick = bench.now;
    bench.t_stop = UINT64_MAX;
    if (load_open_loop()) {
        bench.ns_per_req = 1e9 / cfg->rate;
        bench.g_measure = (uint64_t)ceil(cfg->warmup * cfg->rate);
        bench.g_end = UINT64_MAX;
        if (cfg->requests > 0)
            bench.g_end = bench.g_measure + cfg->requests;
        if (cfg->seconds > 0) {
            uint64_t n = (uint64_t)ceil(cfg->seconds * cfg->rate);
            if (bench.g_measure + n < bench.g_end)
                bench.g_end = bench.g_measure + n;
        }
        bench.t_measure = load_due_time(bench.g_measure);
    } else {
        bench.t_measure = bench.t_start + (uint64_t)(cfg->warmup * 1e9);
        if (cfg->seconds > 0)
            bench.t_stop = bench.t_measure + (uint64_t)(cfg->seconds * 1e9);
    }
    bench.t_last_measured = bench.t_measure;
}

int load_run(char *err, size_t errlen)
{
    const bench_cfg *cfg = bench.cfg;
    struct timeval cron = {.tv_sec = 0, .tv_usec = LOAD_CRON_MS * 1000};

    bench.now = ap_now_ns();
    load_plan();
    if (bench.t_measure <= bench.now) {
        getrusage(RUSAGE_SELF, &bench.ru_measure);
        bench.measuring = 1;
    } else {
        uint64_t w = bench.t_measure - bench.now;
        struct timeval tv = {.tv_sec = (time_t)(w / 1000000000u), .tv_usec = (suseconds_t)(w % 1000000000u / 1000u)};
        event_add(bench.measure, &tv);
    }
    for (uint32_t i = 0; i < cfg->conns; i++) {
        if (conn_start(&bench.conns[i], err, errlen) != AP_OK)
            return AP_ERR;
        if (bench.fatal[0])
            break;
    }
    if (!bench.fatal[0]) {
        event_add(bench.cron, &cron);
        event_add(bench.sigint, NULL);
        event_add(bench.sigterm, NULL);
        if (load_open_loop())
            event_active(bench.pace, EV_TIMEOUT, 0);
        load_check_done();
        if (bench.phase != PHASE_DONE)
            event_base_dispatch(bench.base);
    }
    if (bench.fatal[0]) {
        snprintf(err, errlen, "%s", bench.fatal);
        return AP_ERR;
    }
    bench.now = ap_now_ns();
    if (bench.phase != PHASE_DONE)
        load_finish(END_INTERRUPTED);
    for (uint32_t i = 0; i < cfg->conns; i++)
        conn_close(&bench.conns[i]);
    return AP_OK;
}

void load_free(void)
{
    if (bench.conns) {
        for (uint32_t i = 0; i < bench.cfg->conns; i++)
            conn_teardown(&bench.conns[i]);
        ap_free(bench.conns);
        bench.conns = NULL;
    }
    if (bench.cron)
        event_free(bench.cron);
    if (bench.pace)
        event_free(bench.pace);
    if (bench.measure)
        event_free(bench.measure);
    if (bench.sigint)
        event_free(bench.sigint);
    if (bench.sigterm)
        event_free(bench.sigterm);
    if (bench.base)
        event_base_free(bench.base);
    tmpl_free(&bench.req);
    bench.cron = bench.pace = bench.measure = bench.sigint = bench.sigterm = NULL;
    bench.base = NULL;
}
