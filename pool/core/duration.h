/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * duration.h - durations written for people: "250ms", "30s", "2m", "1h",
 * "1d", or a bare number of milliseconds.
 *
 * Used by config.c for every setting that is a duration in milliseconds,
 * whether it comes from the config file (a JSON number or string), the
 * environment or a flag.  Pure: no state, no allocation, no log.
 */
#ifndef AP_DURATION_H
#define AP_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Parses text into milliseconds: digits, then nothing (milliseconds) or
 * one unit of ms, s, m, h, d.  *bare is set to 1 when no unit was written.
 * AP_ERR with a reason in why (no key: the caller names the setting) on
 * an empty text, a sign, a fraction, an unknown unit, or a value above
 * INT64_MAX milliseconds; *ms is unchanged then. */
int duration_parse(const char *text, int64_t *ms, int *bare, char *why, size_t whylen);

/* Writes ms in the largest unit that divides it exactly ("90s", "2h",
 * "250ms", "0"), for --print-config. */
void duration_format(int64_t ms, char *buf, size_t cap);

#endif
