/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * refuse.c - one error line, then a bounded linger (see refuse.h).
 *
 * State: REFUSE_MAX slots, each an fd, its read event and the time its
 * linger ends.  A slot ends at the peer's EOF, a read error, or REFUSE_MS
 * after the refusal, however much the peer sends meanwhile: a client that
 * pipelined megabytes before reading still gets its input drained, so it
 * reads its line and a clean EOF rather than a reset.  Each wake-up reads
 * at most REFUSE_WAKE_BYTES, so one fast sender cannot hold the loop.
 * With every slot taken the fd is drained (at most REFUSE_WAKE_BYTES,
 * without waiting) and closed at once.
 */
#include "refuse.h"
#include "server.h"
#include "ap_common.h"

#include <errno.h>
#include <event2/event.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REFUSE_MAX 64
#define REFUSE_MS 1000
#define REFUSE_WAKE_BYTES (64 * 1024)

typedef struct {
    int fd;
    struct event *ev;           /* NULL: the slot is free */
    uint64_t until_ms;          /* the linger ends then, whatever comes */
} linger_slot;

static linger_slot slots[REFUSE_MAX];

static void linger_end(linger_slot *ls)
{
    if (ls->ev)
        event_free(ls->ev);
    close(ls->fd);
    ls->ev = NULL;
    ls->fd = -1;
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    linger_slot *ls = arg;
    char buf[4096];
    /* The persistent event's timeout restarts at each wake-up: the end
     * is kept here, so a peer that never stops sending still ends. */
    if ((what & EV_TIMEOUT) || ap_now_ms() >= ls->until_ms) {
        linger_end(ls);
        return;
    }
    for (size_t drained = 0; drained < REFUSE_WAKE_BYTES;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            drained += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        linger_end(ls); /* EOF or error */
        return;
    }
    /* More may wait: the level-triggered event calls again next turn. */
}

void refuse_conn(int fd, const char *line)
{
    /* A fresh socket's send buffer is empty: the line goes out whole. */
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t w = write(fd, line + off, len - off);
        if (w > 0)
            off += (size_t)w;
        else if (!(w < 0 && errno == EINTR))
            break;
    }
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < REFUSE_MAX; i++) {
        linger_slot *ls = &slots[i];
        if (ls->ev)
            continue;
        ls->fd = fd;
        ls->until_ms = ap_now_ms() + REFUSE_MS;
        ls->ev = event_new(server.base, fd, EV_READ | EV_PERSIST, linger_cb, ls);
        struct timeval tv = {REFUSE_MS / 1000, (REFUSE_MS % 1000) * 1000};
        if (ls->ev && event_add(ls->ev, &tv) == 0)
            linger_cb(fd, EV_READ, ls); /* what is there already */
        else
            linger_end(ls);
        return;
    }
    /* Every slot taken: drop what is there and close now. */
    char buf[4096];
    size_t drained = 0;
    ssize_t n;
    while (drained < REFUSE_WAKE_BYTES && (n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        drained += (size_t)n;
    close(fd);
}

void refuse_free(void)
{
    for (int i = 0; i < REFUSE_MAX; i++)
        if (slots[i].ev)
            linger_end(&slots[i]);
}
