/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * echo_ceiling.c: the IPC ceiling for bench/compare. A C echo server that
 * speaks agentpool's NDJSON framing with no Python and no master: what
 * the kernel, the Unix socket and agentpool-bench can do on this machine
 * when the server itself costs next to nothing.
 *
 * It listens on a Unix socket, forks --workers processes that share the
 * listening socket (each with its own epoll, EPOLLEXCLUSIVE on accept), and
 * answers every request line {"id":N,...,"data":D} with
 * {"id":N,"ok":true,"result":D}, the layout agentpoold writes. The id is
 * copied as written; D is the bytes after the first "data": up to the
 * line's last '}', never parsed (agentpool-bench's requests end with
 * data; another client's might not). Lines are bounded (CEIL_MAX_LINE),
 * buffers grow by doubling up to it, and a connection whose line is too
 * long, or whose peer does not read, is closed.
 *
 * Not part of agentpool: built by bench/compare with cc, run for a
 * minute, stopped with SIGTERM (the parent kills its process group).
 * Usage: echo_ceiling --socket PATH [--workers N]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define CEIL_MAX_LINE (64u << 20) /* longest request line, bytes */
#define CEIL_MAX_OUT (128u << 20) /* answers waiting for a slow reader */
#define CEIL_MAX_WORKERS 64
#define CEIL_EVENTS 256
#define CEIL_READ_CHUNK (64u << 10)

typedef struct ceil_buf {
    char *data;
    size_t len, cap, off; /* off: bytes already consumed (in) or written (out) */
} ceil_buf;

typedef struct ceil_conn {
    int fd;
    ceil_buf in, out;
} ceil_conn;

/* Make room for n more bytes in b (compacting, then doubling up to max).
 * Returns 0, or -1 when that would pass max or malloc fails (b unchanged). */
static int ceil_buf_reserve(ceil_buf *b, size_t n, size_t max)
{
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len >= n)
        return 0;
    if (b->len + n > max)
        return -1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int ceil_buf_append(ceil_buf *b, const char *p, size_t n, size_t max)
{
    if (b->cap - b->len < n && ceil_buf_reserve(b, n, max) != 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Append the answer to one request line [line, line+n) to out.
 * Returns 0, or -1 when out is full. A line without an id or data gets
 * an answer with id null and result null, as a server would say. */
static int ceil_answer(ceil_buf *out, const char *line, size_t n)
{
    static const char k_id[] = "\"id\":", k_data[] = "\"data\":";
    const char *end = line + n, *id = NULL, *id_end = NULL, *data = NULL, *data_end = NULL;
    const char *p = memmem(line, n, k_id, sizeof k_id - 1);
    if (p != NULL) {
        id = p + sizeof k_id - 1;
        id_end = id;
        while (id_end < end && *id_end != ',' && *id_end != '}' && *id_end != ' ')
            id_end++;
    }
    p = memmem(line, n, k_data, sizeof k_data - 1);
    if (p != NULL) {
        data = p + sizeof k_data - 1;
        data_end = end;
        while (data_end > data && data_end[-1] != '}')
            data_end--;
        if (data_end > data)
            data_end--; /* the request's own closing brace */
    }
    if (ceil_buf_append(out, "{\"id\":", 6, CEIL_MAX_OUT) != 0)
        return -1;
    if (id != NULL && id_end > id ? ceil_buf_append(out, id, (size_t)(id_end - id), CEIL_MAX_OUT)
                                  : ceil_buf_append(out, "null", 4, CEIL_MAX_OUT))
        return -1;
    if (ceil_buf_append(out, ",\"ok\":true,\"result\":", 20, CEIL_MAX_OUT) != 0)
        return -1;
    if (data != NULL && data_end > data ? ceil_buf_append(out, data, (size_t)(data_end - data), CEIL_MAX_OUT)
                                        : ceil_buf_append(out, "null", 4, CEIL_MAX_OUT))
        return -1;
    return ceil_buf_append(out, "}\n", 2, CEIL_MAX_OUT);
}

static void ceil_conn_close(int ep, ceil_conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in.data);
    free(c->out.data);
    free(c);
}

/* Write what out holds. Returns 0 (all written or EAGAIN) or -1 (error). */
static int ceil_flush(ceil_conn *c)
{
    while (c->out.off < c->out.len) {
        ssize_t w = send(c->fd, c->out.data + c->out.off, c->out.len - c->out.off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        }
        c->out.off += (size_t)w;
    }
    c->out.off = c->out.len = 0;
    return 0;
}

/* Read what the socket has, answer every complete line, write the answers.
 * Returns 0 to keep the connection, -1 to close it. */
static int ceil_on_readable(ceil_conn *c)
{
    for (;;) {
        if (ceil_buf_reserve(&c->in, CEIL_READ_CHUNK, CEIL_MAX_LINE + CEIL_READ_CHUNK) != 0)
            return -1;
        ssize_t r = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
        if (r == 0)
            return -1;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        size_t scan = c->in.len;
        c->in.len += (size_t)r;
        char *nl;
        while ((nl = memchr(c->in.data + scan, '\n', c->in.len - scan)) != NULL) {
            char *line = c->in.data + c->in.off;
            size_t n = (size_t)(nl - line);
            if (n > 0 && ceil_answer(&c->out, line, n) != 0)
                return -1;
            c->in.off += n + 1;
            scan = c->in.off;
        }
        if (c->in.len - c->in.off > CEIL_MAX_LINE)
            return -1;
        if ((size_t)r < CEIL_READ_CHUNK)
            break;
    }
    return ceil_flush(c);
}

static int ceil_set_out_interest(int ep, ceil_conn *c)
{
    struct epoll_event ev = {.events = EPOLLIN | (c->out.len > c->out.off ? EPOLLOUT : 0), .data.ptr = c};
    return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* One worker: accept and serve until killed. Never returns on success. */
static void ceil_worker_run(int lfd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        fprintf(stderr, "echo_ceiling: epoll_create1: %s\n", strerror(errno));
        _exit(1);
    }
    struct epoll_event lev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0) {
        fprintf(stderr, "echo_ceiling: epoll_ctl(listen): %s\n", strerror(errno));
        _exit(1);
    }
    struct epoll_event evs[CEIL_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, evs, CEIL_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "echo_ceiling: epoll_wait: %s\n", strerror(errno));
            _exit(1);
        }
        for (int i = 0; i < n; i++) {
            ceil_conn *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    ceil_conn *nc = calloc(1, sizeof *nc);
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
                    if (nc == NULL || (nc->fd = fd, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)) {
                        close(fd);
                        free(nc);
                    }
                }
                continue;
            }
            int rc = 0;
            if (evs[i].events & EPOLLOUT)
                rc = ceil_flush(c);
            if (rc == 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                rc = ceil_on_readable(c);
            if (rc == 0)
                rc = ceil_set_out_interest(ep, c);
            if (rc != 0)
                ceil_conn_close(ep, c);
        }
    }
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int workers = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
            workers = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: echo_ceiling --socket PATH [--workers N]\n");
            return 2;
        }
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (path == NULL || strlen(path) >= sizeof sa.sun_path || workers < 1 || workers > CEIL_MAX_WORKERS) {
        fprintf(stderr, "echo_ceiling: need --socket PATH (shorter than %zu) and 1..%d workers\n",
                sizeof sa.sun_path, CEIL_MAX_WORKERS);
        return 2;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) {
        fprintf(stderr, "echo_ceiling: socket: %s\n", strerror(errno));
        return 1;
    }
    unlink(path);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 4096) != 0) {
        fprintf(stderr, "echo_ceiling: bind/listen(%s): %s\n", path, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < workers; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "echo_ceiling: fork: %s\n", strerror(errno));
            return 1;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the parent */
            ceil_worker_run(lfd);
        }
    }
    fprintf(stderr, "echo_ceiling: %d workers on %s\n", workers, path);
    int status;
    while (wait(&status) > 0 || errno == EINTR)
        ;
    unlink(path);
    return 0;
}
