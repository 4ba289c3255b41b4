/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * report.h - what agentpool-bench prints: the one-line progress display
 * (stderr, once a second, only when stderr is a terminal), and at the
 * end either a summary for people or one JSON object (--json), both on
 * stdout.  Reads `bench`; never changes it.
 */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include <stdio.h>

/* Redraws the progress line (when enabled). */
void report_progress(void);
/* Ends the progress line so later output starts on a fresh line. */
void report_progress_end(void);
/* The summary of a finished run, for people. */
void report_human(FILE *out);
/* The summary of a finished run as one JSON object and a newline.
 * Returns AP_OK, or AP_ERR when it could not be built or written. */
int report_json(FILE *out);
/* Total protocol errors (must be 0 against a correct server). */
unsigned long long report_protocol_errors(void);

#endif
