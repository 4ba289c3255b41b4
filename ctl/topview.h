/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * topview.h - one frame of `agentpoolctl top`, as lines of text.
 *
 * Pure: it turns a detailed pool.stats answer (and what top measured
 * itself: the error rate) into the lines of one screen, each cut to the
 * width (never wrapped) and no more lines than the height, with no
 * terminal escapes, so the same frame serves the live screen, --once and
 * the unit tests.  It never does I/O; top.c owns the terminal.
 *
 * The frame: two header lines (pool state, uptime, workers ready/total,
 * queue depth/capacity; throughput over 1 s and 10 s, p99 latency,
 * errors per minute), a third naming the alerts agentpoold raised when
 * there are any ("ALERTS: name (level), ..."), a blank line, a column
 * header, and one row per worker: id, pid, state, in-flight/slots,
 * messages, RSS, age, errors.
 * When the rows do not fit the height the last one says how many more
 * there are.  A server of named pools (its "pools" names more than the
 * implicit "default", render_named_pools) gets, below the same header,
 * one block per pool: a blank line, the pool's line (name, lifecycle
 * when not running, state, workers ready, queue, throughput, p99,
 * errors), the column header and the rows of its workers (those whose
 * "pool" names it, or whose id is "NAME/...").  One pool's stats (top
 * --pool) name the pool in the first line and have no uptime.
 */
#ifndef CTL_TOPVIEW_H
#define CTL_TOPVIEW_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* The lines of one frame (each allocated with ap_malloc). */
typedef struct {
    char **lines;
    size_t n, cap;
} topview_frame;

typedef struct {
    size_t width;          /* cut every line to this many characters; 0: no limit */
    size_t height;         /* at most this many lines; 0: no limit */
    double errors_per_min; /* error answers per minute, NAN when not known yet */
} topview_opts;

/* Renders the frame for stats (a pool.stats result with "workers") into
 * f, which must be empty (zeroed).  Never fails (allocation aborts);
 * fields missing from stats show as "-". */
void topview_render(const cJSON *stats, const topview_opts *o, topview_frame *f);

/* Renders a frame that says why there are no stats: a title naming the
 * socket and the reason, each cut to o->width. */
void topview_render_problem(const char *socket_path, const char *why, const topview_opts *o,
                            topview_frame *f);

/* Frees the lines; f is empty again. */
void topview_frame_free(topview_frame *f);

/* Every error answer so far: the sum of the members of stats.errors. */
double topview_error_total(const cJSON *stats);

/* Samples of a growing counter over the last minute, for a per-minute
 * rate.  Samples are kept at least TOPVIEW_RATE_STEP_MS apart (a newer
 * one replaces the newest until then), so a fixed array covers the
 * minute at any refresh interval. */
#define TOPVIEW_RATE_SLOTS 64
#define TOPVIEW_RATE_STEP_MS 1000
#define TOPVIEW_RATE_WINDOW_MS 60000

typedef struct {
    uint64_t t[TOPVIEW_RATE_SLOTS]; /* ms, monotonic, oldest first */
    double v[TOPVIEW_RATE_SLOTS];
    size_t n;
} topview_rate;

/* Adds the counter's value at now_ms.  A value below the last one (the
 * server restarted) starts the samples over. */
void topview_rate_add(topview_rate *r, uint64_t now_ms, double value);

/* The counter's growth per minute over the samples (about the last
 * minute, or since the first sample when that is shorter), or NAN with
 * fewer than two samples. */
double topview_rate_per_min(const topview_rate *r);

#endif
