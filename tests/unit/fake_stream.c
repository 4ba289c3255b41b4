/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fake_stream.c - stream.c's functions for unit tests (see
 * fake_server.h): the messages of these tests never stream (no worker
 * sends chunks), so none has a client with part of its answer, and a
 * retry has no chunks to forget.  The streaming paths are proven through
 * the real server (tests/integration/test_streams.py).
 */
#include "fake_server.h"
#include "stream.h"

int stream_partial(const msg *m)
{
    return m->stream != NULL && m->want_stream && m->stream->chunks > 0;
}

void stream_restart(msg *m)
{
    (void)m;
}
