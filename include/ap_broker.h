/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ap_broker.h - the callers' side of the broker wire (docs/scale-out.md,
 * Clients), for the C programs that add requests to a pool's stream:
 * agentpool-bench --redis (bench/bq.c) and agentpoolctl send to a
 * redis:// target (ctl/bsend.c).
 *
 * A request is one entry {req: LINE, replyTo: REPLY} added to
 * AP_BROKER_REQUESTS by AP_BROKER_ADD_SCRIPT (KEYS: the stream and
 * AP_BROKER_MAXLEN; ARGV: the line without its newline, the reply
 * stream, then any further lines of the same reply stream), which
 * refuses a line with an error starting "queue_full" when the stream
 * holds the pool's maxLength entries.  With one line it answers the
 * entry id or that error; with more, an array of one of those per line,
 * in order (one call adds many: agentpool-bench adds what it writes in
 * one turn so).  Answers come back as entries {line: ANSWER-LINE} of
 * the caller's reply stream; a cancel is {cancel: ENTRY-ID, replyTo:
 * REPLY} on AP_BROKER_CONTROL.  The script
 * is the same text as pyagents/client/broker.py's ADD_SCRIPT
 * (tests/python/test_client_wire.py checks it).
 */
#ifndef AP_BROKER_H
#define AP_BROKER_H

#define AP_BROKER_ADD_SCRIPT \
    "local max = tonumber(redis.call('GET', KEYS[2]))\n" \
    "local n = max and redis.call('XLEN', KEYS[1])\n" \
    "local out = {}\n" \
    "for i = 1, #ARGV do\n" \
    "  if i ~= 2 then\n" \
    "    if max ~= nil and n >= max then\n" \
    "      out[#out + 1] = redis.error_reply('queue_full the pool stream ' .. KEYS[1] .. ' holds ' .. max .. ' entries')\n" \
    "    else\n" \
    "      out[#out + 1] = redis.call('XADD', KEYS[1], '*', 'req', ARGV[i], 'replyTo', ARGV[2])\n" \
    "      if max then n = n + 1 end\n" \
    "    end\n" \
    "  end\n" \
    "end\n" \
    "if #ARGV == 2 then return out[1] end\n" \
    "return out\n"

/* printf formats of a pool's keys (%s: the pool's name). */
#define AP_BROKER_REQUESTS "agentpool:%s:requests"
#define AP_BROKER_MAXLEN "agentpool:%s:maxlen"
#define AP_BROKER_CONTROL "agentpool:%s:control"
/* A reply stream: this, then 128 random bits in hex. */
#define AP_BROKER_REPLY_PREFIX "agentpool:reply:"
/* The pool of a request that names none. */
#define AP_BROKER_DEFAULT_POOL "default"

#endif
