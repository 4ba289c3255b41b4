/*
 * reqline.h - build one request line of agentpoold's protocol.
 *
 * {"id":ID,"type":TYPE,"data":DATA}\n, where TYPE is JSON-escaped and
 * DATA is the caller's JSON text: checked with cJSON, then copied with the
 * whitespace between tokens removed (so a pretty-printed argument still
 * makes one line) and every token kept byte for byte (so 64-bit integers
 * and number spellings survive; re-printing through cJSON would turn
 * 12345678901234567890 into 1.2345678901234567e+19).
 */
#ifndef CTL_REQLINE_H
#define CTL_REQLINE_H

#include <stddef.h>

/* Builds the request line for id, type and data_json (NULL means null).
 * Returns a NUL-terminated line ending in "\n" (free with ap_free) and its
 * length in *len, or NULL with a reason in err when data_json is not one
 * valid JSON value ("invalid DATA JSON at byte 7 ..."). */
char *reqline_build(long long id, const char *type, const char *data_json, size_t *len,
                    char *err, size_t errlen);

/* Copies the JSON text src (already known to be valid JSON) into dst
 * without insignificant whitespace.  dst must hold strlen(src) + 1 bytes.
 * Returns the length written, or (size_t)-1 with a reason in err when a
 * string contains a raw control character (which cJSON tolerates but
 * JSON forbids, and a raw newline would split the line). */
size_t reqline_compact(const char *src, char *dst, char *err, size_t errlen);

#endif
