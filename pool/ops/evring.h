/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * evring.h - the pure parts of the event stream (events.c): the ring of
 * the last events and topic patterns.  No I/O, no server state: unit
 * tested alone (tests/unit/test_evring.c).
 *
 * The ring keeps the last `cap` events, and no more than max_bytes of
 * their text: pushing one evicts the oldest until both hold.  Events get
 * consecutive sequence numbers from 1, never reused, so the ring always
 * holds seq oldest .. next_seq - 1 and an event is found by its seq in
 * O(1).  Each entry owns its text, serialized once by the caller: one
 * JSON line, '\n' included, whose topic and pool are slices of it.
 *
 * Topic patterns are dot-separated segments: a segment "*" matches
 * exactly one segment of the topic, a last segment "#" matches the rest
 * of the topic (one segment or more: "worker.#" matches "worker.exited",
 * not "worker"); "#" alone matches every topic.  Other segments match
 * themselves.  Segments are non-empty, of [A-Za-z0-9_-] (or "*", "#").
 */
#ifndef AP_EVRING_H
#define AP_EVRING_H

#include <stddef.h>
#include <stdint.h>

#define EVRING_PATTERN_MAX 128 /* bytes in a topic pattern */

typedef struct {
    uint64_t seq;
    uint64_t time_ms;           /* wall clock, ms since the epoch */
    char *text;                 /* the whole line, '\n' included (owned) */
    uint32_t len;
    uint16_t topic_off, topic_len; /* the topic inside text */
    uint16_t pool_off, pool_len;   /* the pool's name inside text (len 0: none) */
    uint8_t critical;
} evring_entry;

typedef struct {
    evring_entry *e;            /* cap entries */
    size_t cap;
    size_t head;                /* index of the oldest */
    size_t n;
    uint64_t bytes;             /* text bytes held */
    uint64_t next_seq;          /* the seq the next pushed event gets (the first is 1) */
} evring;

/* An empty ring of cap entries (cap >= 1).  Never fails (allocation
 * failure is the allocator's policy). */
void evring_init(evring *r, size_t cap);
/* Frees every entry's text and the table. */
void evring_free(evring *r);
/* The seq of the oldest event held (next_seq when empty). */
uint64_t evring_oldest_seq(const evring *r);
/* The event with that seq, or NULL when it is not (or no longer) held. */
const evring_entry *evring_at(const evring *r, uint64_t seq);
/* Whether pushing an event of len bytes must first evict the oldest
 * (the ring is full, or its bytes would pass max_bytes; never when empty). */
int evring_must_evict(const evring *r, size_t len, uint64_t max_bytes);
/* Removes the oldest event and frees its text.  Nothing when empty. */
void evring_evict(evring *r);
/* Appends e (its seq is set to next_seq, its text owned by the ring from
 * now on).  The caller evicted first (evring_must_evict); returns its seq. */
uint64_t evring_push(evring *r, evring_entry *e);
/* The seq of the first event held whose time is at or after since_ms:
 * the replay of a subscription with "since".  next_seq when none is.
 * Events are in emit order; a wall clock stepped back may put an older
 * time after a newer one: the first event at or after since_ms starts
 * the replay and everything after it follows. */
uint64_t evring_first_since(const evring *r, uint64_t since_ms);

/* Whether pat[0..plen) is a valid pattern (see above). */
int evring_pattern_valid(const char *pat, size_t plen);
/* Whether topic[0..tlen) matches the (valid) pattern pat[0..plen). */
int evring_topic_match(const char *pat, size_t plen, const char *topic, size_t tlen);

#endif
