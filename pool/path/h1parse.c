/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * h1parse.c - one HTTP/1.x request at a time over llhttp (see h1parse.h).
 *
 * llhttp calls back with spans of the bytes fed (a name or value may come
 * in pieces when a read ends inside it); they are appended to hbuf, which
 * holds the URL and then each name and value NUL-terminated, and whose
 * size is the header bound, so nothing here can grow past it.  The head's
 * bytes are counted here (llhttp has no bound of its own): every byte fed
 * while the head is not whole, and, for the feed that ends it, up to where
 * it ends (on_headers_complete pauses the parser there, so its position is
 * known; it resumes at once).  llhttp refuses Content-Length with chunked,
 * a repeated Content-Length and a space before a header's colon; the same
 * checks are made here again on the names seen, so a library built
 * lenient could not let a smuggled request by.  A whole request pauses
 * the parser (HPE_PAUSED from on_message_complete): the bytes after it
 * stay the caller's until it asks for the next request.  State: the
 * parser settings (constant).
 */
#include "h1parse.h"
#include "ap_alloc.h"

#include <string.h>
#include <strings.h>

/* A body buffer up to this size is kept for the connection's next request. */
#define H1PARSE_BODY_KEEP 16384
/* The header buffer's first size. */
#define H1PARSE_HEAD_START 1024

static void set_error(h1parse *h, int status, const char *why)
{
    if (h->state == H1P_ERROR)
        return;
    h->state = H1P_ERROR;
    h->status = status;
    h->why = why;
}

/* hbuf grows from H1PARSE_HEAD_START bytes up to the head's bound (and
 * its NULs), so an idle connection does not hold httpMaxHeaderBytes.
 * Room for need bytes in all: 0, or -1 (ERROR) past the bound. */
static int room(h1parse *h, size_t need)
{
    size_t max = h->lim.max_head + 2;
    if (need > max) {
        set_error(h, 431, "request line and headers longer than httpMaxHeaderBytes");
        return -1;
    }
    size_t cap = h->hcap ? h->hcap : H1PARSE_HEAD_START;
    while (cap < need)
        cap *= 2;
    h->hcap = cap < max ? cap : max;
    h->hbuf = ap_realloc(h->hbuf, h->hcap);
    return 0;
}

/* n bytes appended to hbuf, with room kept for a NUL after them. */
static int append(h1parse *h, const char *at, size_t n)
{
    size_t need = h->hlen + n + 1; /* +1: its NUL */
    if (need > h->hcap && room(h, need) != 0)
        return -1;
    memcpy(h->hbuf + h->hlen, at, n);
    h->hlen += n;
    return 0;
}

/* The NUL after what was appended last (append kept room for it). */
static int terminate(h1parse *h)
{
    if (h->hlen + 1 > h->hcap && room(h, h->hlen + 1) != 0)
        return -1;
    h->hbuf[h->hlen++] = '\0';
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    h1parse *h = p->data;
    h->url_len += n;
    return append(h, at, n);
}

/* The bytes that may be in a header name (RFC 9110's tchar).  A parser
 * built lenient takes a space there, which would let
 * "Transfer-Encoding : chunked" by as another header. */
#define TCHARS_DIGITS ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, \
                      ['8'] = 1, ['9'] = 1
#define TCHARS_LOWER ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, \
                     ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, \
                     ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, \
                     ['y'] = 1, ['z'] = 1
#define TCHARS_UPPER ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, \
                     ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, \
                     ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, \
                     ['Y'] = 1, ['Z'] = 1
static const unsigned char tchars[256] = {
    TCHARS_DIGITS, TCHARS_LOWER, TCHARS_UPPER,
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
};

/* The name just ended (its value begins): checked, and the fields that
 * decide where the body ends are counted.  -1 (ERROR) for a bad name. */
static int name_done(h1parse *h)
{
    uint32_t at = h->names[h->nheaders - 1];
    const char *name = h->hbuf + at;
    size_t n = h->hlen - 1 - at;
    unsigned ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= tchars[(unsigned char)name[i]];
    if (!ok) {
        set_error(h, 400, "a header name with a character not allowed there");
        return -1;
    }
    if (n == 0) {
        set_error(h, 400, "an empty header name");
        return -1;
    }
    h->initials |= 1u << ((name[0] | 0x20) & 31);
    if (n == 14 && strcasecmp(name, "content-length") == 0)
        h->cl_seen++;
    else if (n == 17 && strcasecmp(name, "transfer-encoding") == 0)
        h->te_seen = 1;
    else if (n == 6 && h->expect == 0 && strcasecmp(name, "expect") == 0)
        h->expect = h->nheaders;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    h1parse *h = p->data;
    if (h->state != H1P_HEAD)
        return 0; /* a chunked body's trailer: ignored */
    if (h->nheaders == 0 || h->in_value) {
        if (terminate(h)) /* the URL's or the last value's end */
            return -1;
        if (h->nheaders == H1PARSE_MAX_HEADERS) {
            set_error(h, 431, "more header fields than the server takes");
            return -1;
        }
        h->names[h->nheaders++] = (uint32_t)h->hlen;
        h->in_value = 0;
    }
    return append(h, at, n);
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    h1parse *h = p->data;
    if (h->state != H1P_HEAD)
        return 0;
    if (!h->in_value) {
        if (terminate(h) || name_done(h))
            return -1;
        h->values[h->nheaders - 1] = (uint32_t)h->hlen;
        h->in_value = 1;
    }
    return append(h, at, n);
}

static h1_method method_of(unsigned m)
{
    switch (m) {
    case HTTP_GET: return H1_GET;
    case HTTP_HEAD: return H1_HEAD;
    case HTTP_POST: return H1_POST;
    case HTTP_PUT: return H1_PUT;
    case HTTP_DELETE: return H1_DELETE;
    case HTTP_PATCH: return H1_PATCH;
    case HTTP_OPTIONS: return H1_OPTIONS;
    default: return H1_OTHER;
    }
}

const char *h1parse_method_name(h1_method m)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "?"};
    return m <= H1_OTHER ? names[m] : "?";
}

/* Splits the URL (origin-form "/p?q", absolute-form "http://h/p?q", or
 * "*") into path and query; AP_ERR for anything else. */
static int split_url(h1parse *h)
{
    char *u = h->hbuf, *end = h->hbuf + h->url_len;
    if (h->url_len > 7 && *u != '/' && (strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0)) {
        char *s = memchr(u + 7, '/', (size_t)(end - u - 7));
        if (s == NULL) { /* "http://host": the root */
            u = end - 1;
            *u = '/';
        } else {
            u = s;
        }
    }
    if (u == end || (*u != '/' && !(*u == '*' && end - u == 1)))
        return -1;
    char *f = memchr(u, '#', (size_t)(end - u));
    if (f)
        *f = '\0', end = f;
    char *q = memchr(u, '?', (size_t)(end - u));
    if (q)
        *q = '\0';
    h->path = u;
    h->query = q ? q + 1 : NULL;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    h1parse *h = p->data;
    if (h->nheaders == 0 || h->in_value) {
        if (terminate(h) != 0) /* the URL's or the last value's end */
            return -1;
    } else { /* a name whose value never came: an empty value */
        if (terminate(h) != 0 || name_done(h) != 0)
            return -1;
        h->values[h->nheaders - 1] = (uint32_t)h->hlen;
        if (terminate(h) != 0)
            return -1;
    }
    h->method = method_of(p->method);
    if (p->http_major != 1) {
        set_error(h, 505, "only HTTP/1.0 and HTTP/1.1 are served");
        return -1;
    }
    h->minor = p->http_minor;
    if (h->method == H1_OTHER || p->upgrade) {
        set_error(h, 501, p->upgrade ? "no protocol upgrade here" : "method not implemented");
        return -1;
    }
    if (h->cl_seen > 1 || (h->cl_seen && h->te_seen)) {
        set_error(h, 400, h->te_seen ? "Content-Length and Transfer-Encoding together" : "Content-Length given twice");
        return -1;
    }
    if (h->te_seen && !(p->flags & F_CHUNKED)) {
        set_error(h, 400, "a Transfer-Encoding other than chunked");
        return -1;
    }
    if (split_url(h) != 0) {
        set_error(h, 400, "a request target that is not a path");
        return -1;
    }
    int has_body = (p->flags & F_CHUNKED) || (h->cl_seen && p->content_length > 0);
    if (h->cl_seen && p->content_length > h->lim.max_body) {
        set_error(h, 413, "request body longer than maxMessageBytes");
        return -1;
    }
    const char *ex = h->expect ? h->hbuf + h->values[h->expect - 1] : NULL; /* the first one, as h1parse_header */
    if (ex) {
        if (strcasecmp(ex, "100-continue") != 0) {
            set_error(h, 417, "an expectation the server does not know");
            return -1;
        }
        h->expect_continue = has_body && h->minor >= 1;
    }
    h->state = H1P_BODY;
    return HPE_PAUSED; /* where the head ends is where the parser stops: its bytes are counted (h1parse_feed) */
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    h1parse *h = p->data;
    if (n > h->lim.max_body - h->blen) {
        set_error(h, 413, "request body longer than maxMessageBytes");
        return -1;
    }
    if (h->blen + n > h->bcap) {
        size_t cap = h->bcap ? h->bcap : 1024;
        while (cap < h->blen + n)
            cap *= 2;
        if (cap > h->lim.max_body)
            cap = h->lim.max_body;
        h->body = ap_realloc(h->body, cap);
        h->bcap = cap;
    }
    memcpy(h->body + h->blen, at, n);
    h->blen += n;
    return 0;
}

/* A chunk's size is known before its bytes: one past the bound is refused at once. */
static int on_chunk_header(llhttp_t *p)
{
    h1parse *h = p->data;
    if (p->content_length > h->lim.max_body - h->blen) {
        set_error(h, 413, "request body longer than maxMessageBytes");
        return -1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    h1parse *h = p->data;
    if (h->state != H1P_BODY) /* a request the head refused: never whole */
        return -1;
    h->state = H1P_DONE;
    h->keep_alive = llhttp_should_keep_alive(p);
    return HPE_PAUSED; /* the bytes after it are the next request's */
}

static const llhttp_settings_t settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

void h1parse_init(h1parse *h, const h1parse_limits *lim)
{
    memset(h, 0, sizeof(*h));
    h->lim = *lim;
    h->minor = 1; /* until a request line says: an answer to an unparsable one is HTTP/1.1 */
    llhttp_init(&h->p, HTTP_REQUEST, &settings);
    h->p.data = h;
}

void h1parse_free(h1parse *h)
{
    ap_free(h->hbuf);
    ap_free(h->body);
    h->hbuf = h->body = NULL;
    h->hcap = h->bcap = h->hlen = h->blen = 0;
}

void h1parse_next(h1parse *h)
{
    if (h->bcap > H1PARSE_BODY_KEEP) {
        ap_free(h->body);
        h->body = NULL;
        h->bcap = 0;
    }
    h->state = H1P_HEAD;
    h->status = 0;
    h->why = NULL;
    h->hlen = h->blen = h->url_len = h->head_bytes = 0;
    h->nheaders = h->in_value = h->cl_seen = h->te_seen = h->expect = 0;
    h->initials = 0;
    h->expect_continue = 0;
    h->path = h->query = NULL;
    h->minor = 1;
    if (h->keep_alive)
        llhttp_resume(&h->p);
    else
        llhttp_reset(&h->p); /* llhttp takes nothing after a request that closes its connection; a caller may go on */
    h->keep_alive = 0;
}

/* The head took n more bytes: 0, or -1 (ERROR, 431) past its bound. */
static int head_took(h1parse *h, size_t n)
{
    h->head_bytes += n;
    if (h->head_bytes <= h->lim.max_head)
        return 0;
    set_error(h, 431, "request line and headers longer than httpMaxHeaderBytes");
    return -1;
}

size_t h1parse_feed(h1parse *h, const char *data, size_t n)
{
    if (h->state == H1P_DONE || h->state == H1P_ERROR || n == 0)
        return 0;
    const char *at = data, *end = data + n;
    for (;;) {
        int in_head = h->state == H1P_HEAD;
        llhttp_errno_t e = llhttp_execute(&h->p, at, (size_t)(end - at));
        const char *stop = e == HPE_OK ? end : llhttp_get_error_pos(&h->p);
        if (stop == NULL || stop < at || stop > end) /* cannot happen: llhttp stops inside what it was given */
            stop = e == HPE_OK ? end : at;
        if (in_head && h->state != H1P_ERROR && head_took(h, (size_t)(stop - at)) != 0)
            return (size_t)(stop - data);
        if (h->state == H1P_DONE || h->state == H1P_ERROR)
            return (size_t)(stop - data);
        if (e == HPE_PAUSED && h->state == H1P_BODY && in_head) {
            /* the head's end (on_headers_complete): on, even with no byte
             * left (a request without a body is whole there) */
            llhttp_resume(&h->p);
            at = stop;
            continue;
        }
        if (e == HPE_INVALID_METHOD)
            set_error(h, 501, "method not implemented");
        else if (e == HPE_UNEXPECTED_CONTENT_LENGTH)
            set_error(h, 400, "Content-Length given twice, or with Transfer-Encoding");
        else if (e == HPE_PAUSED_UPGRADE)
            set_error(h, 501, "no protocol upgrade here");
        else if (e != HPE_OK)
            set_error(h, 400, llhttp_get_error_reason(&h->p) ? llhttp_get_error_reason(&h->p) : llhttp_errno_name(e));
        return (size_t)(stop - data);
    }
}

const char *h1parse_header(const h1parse *h, const char *name)
{
    if (!(h->initials & (1u << ((name[0] | 0x20) & 31))))
        return NULL; /* no field's name begins with that letter (most look-ups: headers not sent) */
    size_t n = strlen(name);
    for (int i = 0; i < h->nheaders; i++) /* a name's length: the gap to its value, less its NUL */
        if (h->values[i] - h->names[i] - 1 == n && strcasecmp(h->hbuf + h->names[i], name) == 0)
            return h->hbuf + h->values[i];
    return NULL;
}
