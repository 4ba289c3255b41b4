/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * reqline.h - build one request line of agentpoold's protocol.
 *
 * {"id":ID,"type":TYPE,"data":DATA}\n (with ,"pool":NAME and
 * ,"stream":true before the closing brace when asked for), printed by cJSON: TYPE escaped by
 * it, DATA the caller's JSON text, parsed by cJSON to prove it is one
 * JSON value, then minified by cJSON (white space between tokens
 * removed, so a pretty-printed argument still makes one line) and put in
 * as a raw member, every token kept byte for byte.  DATA is never
 * re-printed from a tree: cJSON would turn 12345678901234567890 into
 * 1.2345678901234567e+19 and 1.50 into 1.5.
 */
#ifndef CTL_REQLINE_H
#define CTL_REQLINE_H

#include <stddef.h>

/* Builds the request line for id (below 2^53), type and data_json (NULL
 * means null).  Returns a NUL-terminated line ending in "\n" (free with
 * ap_free) and its length in *len, or NULL with a reason in err when
 * data_json is not one valid JSON value ("invalid DATA JSON at byte 7
 * ...") or holds a raw control character. */
char *reqline_build(long long id, const char *type, const char *data_json, size_t *len,
                    char *err, size_t errlen);

/* reqline_build, with "pool": pool after "data" when pool is not NULL
 * (the named pool serves it), and "stream": true added as the last
 * member when stream is set (a streamed request, protocol.md). */
char *reqline_build_opts(long long id, const char *type, const char *data_json, const char *pool,
                         int stream, size_t *len, char *err, size_t errlen);

#endif
