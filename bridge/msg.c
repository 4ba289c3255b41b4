/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * msg.c - one request in, one answer frame out (see msg.h).
 *
 * The hot path is unpack + msg_reply: a cached str for the type, the
 * C JSON decoder for the data, and the result encoded straight into the
 * output buffer behind a reserved frame header.  Errors are rarer and
 * may take the slow road (str(exc), the exception's qualified name, and
 * the traceback logged at error level through pyerr.c's limit).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "msg.h"
#include "agent.h"
#include "ainput.h"
#include "bridge.h"
#include "pyconv.h"
#include "pyerr.h"
#include "sstate.h"
#include "stream.h"
#include "usage.h"
#include "wire.h"

#include "ap_common.h"
#include "ap_log.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define METRICS_TYPE "agent.metrics"

/* Whether a REQUEST's meta is followed by an ap_frame_ext. */
static int has_ext(const ap_frame_hdr *h)
{
    return (h->flags & (AP_FRAME_REQ_SESSION | AP_FRAME_REQ_RESUME)) != 0;
}

/* Where the type starts in a REQUEST payload (after the meta and the
 * ext, if any). */
static size_t type_offset(const ap_frame_hdr *h)
{
    if (!(h->flags & AP_FRAME_REQ_META))
        return 0;
    return AP_FRAME_META_SIZE + (has_ext(h) ? AP_FRAME_EXT_SIZE : 0);
}

/* True when the request's type is "agent.metrics" (answered by the
 * bridge). */
static int is_metrics(const ap_frame_hdr *h, const unsigned char *payload)
{
    size_t off = type_offset(h);
    return h->aux == sizeof(METRICS_TYPE) - 1 && off + h->aux <= h->len &&
           memcmp(payload + off, METRICS_TYPE, sizeof(METRICS_TYPE) - 1) == 0;
}

void msg_reply_error(uint64_t id, const char *code, const char *message, const char *exception)
{
    uint16_t cpu = usage_end(id);
    buf_t *out = &bridge.out;
    size_t at = wire_begin(out);
    buf_append(out, "{\"code\":", 8);
    pyconv_append_cstr(out, code, strlen(code));
    buf_append(out, ",\"message\":", 11);
    pyconv_append_cstr(out, message, strlen(message));
    if (exception) {
        buf_append(out, ",\"exception\":", 13);
        pyconv_append_cstr(out, exception, strlen(exception));
    }
    buf_putc(out, '}');
    wire_end(out, at, AP_FRAME_ERROR, cpu, id);
    bridge.sent++;
    bridge.errors++;
    stream_end(id);
    sstate_forget(id);
    ainput_forget(id);
}

/* The exception class's __qualname__ (new reference, never NULL). */
static PyObject *exception_name(PyObject *type)
{
    PyObject *name = NULL;
    if (type && PyType_Check(type)) {
#if PY_VERSION_HEX >= 0x030B0000
        name = PyType_GetQualName((PyTypeObject *)type);
#else
        name = PyObject_GetAttrString(type, "__qualname__");
#endif
        if (name == NULL || !PyUnicode_Check(name)) {
            PyErr_Clear();
            Py_XDECREF(name);
            name = PyUnicode_FromString(((PyTypeObject *)type)->tp_name);
        }
    }
    if (name == NULL) {
        PyErr_Clear();
        name = PyUnicode_FromString("Exception");
    }
    return name;
}

/* str(exc), bounded to BRIDGE_MAX_ERROR_TEXT characters, prefixed;
 * new reference or NULL (no error set) when even that fails. */
static PyObject *exception_text(PyObject *value, const char *prefix)
{
    PyObject *text = value ? PyObject_Str(value) : NULL;
    if (text == NULL) {
        PyErr_Clear();
        text = PyUnicode_FromString(value ? "(str() of the exception failed)" : "");
        if (text == NULL)
            goto fail;
    }
    if (PyUnicode_GET_LENGTH(text) > BRIDGE_MAX_ERROR_TEXT) {
        PyObject *cut = PyUnicode_Substring(text, 0, BRIDGE_MAX_ERROR_TEXT);
        if (cut == NULL)
            goto fail;
        Py_SETREF(text, PyUnicode_FromFormat("%U... (%zd more characters)", cut,
                                             PyUnicode_GET_LENGTH(text) - BRIDGE_MAX_ERROR_TEXT));
        Py_DECREF(cut);
        if (text == NULL)
            goto fail;
    }
    if (prefix && *prefix) {
        Py_SETREF(text, PyUnicode_FromFormat("%s%U", prefix, text));
        if (text == NULL)
            goto fail;
    }
    return text;
fail:
    PyErr_Clear();
    Py_XDECREF(text);
    return NULL;
}

/* The ERROR frame for the current exception, its text prefixed; the
 * exception is logged (pyerr_log_agent) under msg_type (borrowed; NULL
 * when unknown). */
static void reply_exception(uint64_t id, const char *prefix, PyObject *msg_type)
{
    PyObject *type, *value, *tb;
    if (stream_cancel_pending()) { /* a sync stream the master cancelled at a chunk */
        PyErr_Clear();
        msg_reply_error(id, BRIDGE_CODE_CANCELLED, "cancelled by the master", NULL);
        return;
    }
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        msg_reply_error(id, BRIDGE_CODE_AGENT_ERROR, "the agent failed without an exception", "SystemError");
        return;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (value && tb)
        PyException_SetTraceback(value, tb);
    PyObject *name = exception_name(type);
    PyObject *text = exception_text(value, prefix);

    uint16_t cpu = usage_end(id);
    buf_t *out = &bridge.out;
    size_t at = wire_begin(out);
    static const char head[] = "{\"code\":\"" BRIDGE_CODE_AGENT_ERROR "\",\"message\":";
    buf_append(out, head, sizeof(head) - 1);
    if (text)
        pyconv_append_str_lossy(out, text);
    else
        pyconv_append_cstr(out, "(no message)", 12);
    buf_append(out, ",\"exception\":", 13);
    pyconv_append_str_lossy(out, name);
    buf_putc(out, '}');
    wire_end(out, at, AP_FRAME_ERROR, cpu, id);
    bridge.sent++;
    bridge.errors++;
    stream_end(id);
    sstate_forget(id);

    pyerr_log_agent(id, msg_type, name, type, value, tb);
    Py_XDECREF(text);
    Py_DECREF(name);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

void msg_reply_exception(uint64_t id, PyObject *type)
{
    reply_exception(id, NULL, type);
}

/* Builds the handler's arguments from a REQUEST frame.  Returns AP_OK with
 * c->type and c->data (new references), c->meta filled (its session and
 * resume new references or NULL), or AP_ERR after appending an ERROR
 * frame (malformed frame, type not UTF-8, data, state or resume not
 * JSON). */
static int unpack(const ap_frame_hdr *h, const unsigned char *payload, msg_call *c)
{
    char why[192];
    size_t off = type_offset(h), cid_len = 0;
    ap_frame_ext ext = {0, 0};
    memset(&c->meta, 0, sizeof(c->meta));
    c->meta.id = h->id;
    c->meta.attempt = 1;
    if (AP_UNLIKELY(has_ext(h) && !(h->flags & AP_FRAME_REQ_META))) {
        msg_reply_error(h->id, BRIDGE_CODE_AGENT_ERROR, "malformed request frame: session or resume flag without meta",
                        "ValueError");
        return AP_ERR;
    }
    if (off) {
        ap_frame_meta fm;
        if (h->len < off)
            goto short_frame;
        ap_frame_meta_decode(payload, &fm);
        cid_len = fm.id_len;
        c->meta.deadline_ms = fm.deadline_ms;
        c->meta.attempt = fm.attempt;
        if (AP_UNLIKELY(has_ext(h)))
            ap_frame_ext_decode(payload + AP_FRAME_META_SIZE, &ext);
    }
    if ((uint64_t)off + h->aux + cid_len + ext.state_len + ext.resume_len > h->len)
        goto short_frame;
    c->meta.cid_len = (uint32_t)cid_len;
    c->meta.cid = cid_len ? payload + off + h->aux : NULL;
    c->type = pyconv_str((const char *)payload + off, h->aux);
    if (c->type == NULL) {
        reply_exception(h->id, "request type is not valid UTF-8: ", NULL);
        return AP_ERR;
    }
    off += h->aux + cid_len;
    const char *state = (const char *)payload + off, *resume = state + ext.state_len;
    off += (size_t)ext.state_len + ext.resume_len;
    c->data = pyconv_decode((const char *)payload + off, h->len - off);
    if (c->data == NULL) {
        reply_exception(h->id, "request data: ", c->type);
        goto fail;
    }
    if (AP_UNLIKELY(h->flags & AP_FRAME_REQ_RESUME)) {
        c->meta.resume = pyconv_decode(resume, ext.resume_len);
        if (c->meta.resume == NULL) {
            reply_exception(h->id, "the message's checkpoint (resume): ", c->type);
            goto fail;
        }
    }
    if (AP_UNLIKELY(h->flags & AP_FRAME_REQ_SESSION)) {
        c->meta.session = sstate_open(h->id, state, ext.state_len);
        if (c->meta.session == NULL) {
            reply_exception(h->id, "the message's session state: ", c->type);
            goto fail;
        }
    }
    return AP_OK;
fail:
    Py_CLEAR(c->meta.resume);
    Py_CLEAR(c->data);
    Py_CLEAR(c->type);
    return AP_ERR;
short_frame:
    if (off == 0)
        snprintf(why, sizeof(why), "malformed request frame: type length %u exceeds payload length %u",
                 (unsigned)h->aux, (unsigned)h->len);
    else if (!has_ext(h))
        snprintf(why, sizeof(why), "malformed request frame: meta (%d bytes), type length %u and id length %zu "
                 "exceed payload length %u", AP_FRAME_META_SIZE, (unsigned)h->aux, cid_len, (unsigned)h->len);
    else
        snprintf(why, sizeof(why), "malformed request frame: meta and ext (%zu bytes), type length %u, id length "
                 "%zu, state %u and resume %u bytes exceed payload length %u", off, (unsigned)h->aux, cid_len,
                 (unsigned)ext.state_len, (unsigned)ext.resume_len, (unsigned)h->len);
    msg_reply_error(h->id, BRIDGE_CODE_AGENT_ERROR, why, "ValueError");
    return AP_ERR;
}

int msg_prepare(const ap_frame_hdr *h, const unsigned char *payload, size_t (*queue_size)(void), msg_call *c)
{
    bridge.received++;
    if (AP_UNLIKELY(bridge.stopping)) {
        msg_reply_error(h->id, BRIDGE_CODE_STOPPING, "the worker is stopping and takes no new messages", NULL);
        return AP_ERR;
    }
    if (AP_UNLIKELY(is_metrics(h, payload))) {
        msg_reply_metrics(h->id, queue_size());
        return AP_ERR;
    }
    return unpack(h, payload, c);
}

/* For an agent with handle_a2a_message: an "a2a.message" goes to it as
 * (message, ctx), anything else to handle_message (type, data[, ctx]), or
 * is a TypeError when the agent has no handle_message.  arg: the
 * Context when handle_message takes one, else NULL. */
static PyObject *invoke_a2a(msg_call *c, PyObject *arg)
{
    if (PyUnicode_Check(c->type) && PyUnicode_CompareWithASCIIString(c->type, "a2a.message") == 0) {
        PyObject *ctx = arg ? Py_NewRef(arg) : hctx_context();
        if (ctx == NULL)
            return NULL;
        PyObject *res = PyObject_CallFunctionObjArgs(bridge.a2a_handler, c->data, ctx, NULL);
        Py_DECREF(ctx);
        return res;
    }
    if (bridge.a2a_only)
        return PyErr_Format(PyExc_TypeError, "this agent has handle_a2a_message only: it does not handle type %R",
                            c->type);
    PyObject *args[4] = {NULL, c->type, c->data, arg};
    return PyObject_Vectorcall(bridge.handler, args + 1, (arg ? 3 : 2) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

PyObject *msg_invoke(msg_call *c, PyObject **token)
{
    PyObject *arg = NULL, *res;
    *token = hctx_enter(&c->meta, c->type, &arg);
    Py_CLEAR(c->meta.session); /* the context holds them now */
    Py_CLEAR(c->meta.resume);
    if (*token == NULL) {
        Py_CLEAR(c->data);
        return NULL;
    }
    usage_begin(c->meta.id);
    if (AP_UNLIKELY(bridge.a2a_handler != NULL)) {
        res = invoke_a2a(c, arg);
    } else {
        PyObject *args[4] = {NULL, c->type, c->data, arg};
        res = PyObject_Vectorcall(bridge.handler, args + 1, (arg ? 3 : 2) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    Py_XDECREF(arg);
    Py_CLEAR(c->data);
    return res ? stream_wrap(c->meta.id, res) : NULL;
}

PyObject *msg_call_handler(const ap_frame_hdr *h, const unsigned char *payload, size_t (*queue_size)(void),
                           PyObject **type_out, PyObject **token)
{
    msg_call c;
    PyObject *res;
    *type_out = NULL;
    *token = NULL;
    if (msg_prepare(h, payload, queue_size, &c) < 0)
        return NULL;
    res = msg_invoke(&c, token);
    if (res == NULL) {
        hctx_leave(*token);
        *token = NULL;
        msg_reply_exception(h->id, c.type);
        Py_DECREF(c.type);
        return NULL;
    }
    *type_out = c.type;
    return res;
}

/* The agent_error for a result over --max-result-bytes: "result too large
 * (N bytes, limit M)", N its JSON's length, or "more than" the frame
 * limit when it did not even fit in a frame.  No exception member: the
 * agent raised nothing.  The master answers a RESULT frame over the limit
 * with the same text (pool/workers/wresult.c). */
static void reply_too_large(uint64_t id, size_t n, int over_frame)
{
    char why[128];
    snprintf(why, sizeof(why), "result too large (%s%zu bytes, limit %zu)", over_frame ? "more than " : "", n,
             bridge.max_result_bytes);
    ap_warn("message %llu: %s; answered agent_error", (unsigned long long)id, why);
    msg_reply_error(id, BRIDGE_CODE_AGENT_ERROR, why, NULL);
}

void msg_reply(uint64_t id, PyObject *result, PyObject *type)
{
    char why[160];
    uint16_t cpu = usage_end(id); /* what it reported goes first: the master forgets the message at its answer */
    buf_t *out = &bridge.out;
    /* The session's STATE goes first, and is taken back with the RESULT
     * when that cannot be sent: a failed message commits nothing. */
    size_t state_at = out->len;
    int src = sstate_end(id, why, sizeof(why));
    if (AP_UNLIKELY(src != AP_OK)) {
        if (src == SSTATE_TOO_LARGE) {
            ap_warn("message %llu: %s; answered agent_error", (unsigned long long)id, why);
            msg_reply_error(id, BRIDGE_CODE_AGENT_ERROR, why, NULL);
        } else {
            reply_exception(id, NULL, type);
        }
        return;
    }
    size_t at = wire_begin(out);
    PyObject *prompt = ainput_take(id); /* ctx.require_input: the prompt is the result */
    /* Encoded whole (up to the frame limit) so the refusal can say how
     * large the result was; nothing over the limit is ever sent. */
    int rc = pyconv_encode(prompt ? prompt : result, out, AP_FRAME_MAX_PAYLOAD);
    uint8_t flags = prompt ? AP_FRAME_RESULT_INPUT : 0;
    Py_XDECREF(prompt);
    if (AP_LIKELY(rc == AP_OK)) {
        size_t n = out->len - at - AP_FRAME_HDR_SIZE;
        if (AP_LIKELY(n <= bridge.max_result_bytes)) {
            wire_end(out, at, AP_FRAME_RESULT, cpu, id);
            if (stream_end(id))
                flags |= AP_FRAME_RESULT_STREAMED;
            if (flags)
                wire_set_flags(out, at, flags);
            bridge.sent++;
            return;
        }
        wire_abort(out, state_at);
        reply_too_large(id, n, 0);
        return;
    }
    wire_abort(out, state_at);
    if (rc == PYCONV_TOO_LARGE) {
        PyErr_Clear();
        reply_too_large(id, AP_FRAME_MAX_PAYLOAD, 1);
        return;
    }
    reply_exception(id, NULL, type);
}

void msg_reply_plain(uint64_t id, PyObject *result, PyObject *type)
{
    if (AP_LIKELY(!PyCoro_CheckExact(result))) {
        msg_reply(id, result, type);
        return;
    }
    PyObject *r = PyObject_CallMethod(result, "close", NULL);
    Py_XDECREF(r);
    PyErr_Clear();
    msg_reply_error(id, BRIDGE_CODE_AGENT_ERROR,
                    "handle_message returned a coroutine but is not an async def, so the agent is served "
                    "as sync: declare handle_message with async def",
                    "TypeError");
}

/* d[key] = value, stealing value; returns AP_ERR (error set) on failure. */
static int put(PyObject *d, const char *key, PyObject *value)
{
    if (value == NULL)
        return AP_ERR;
    int rc = PyDict_SetItemString(d, key, value);
    Py_DECREF(value);
    return rc < 0 ? AP_ERR : AP_OK;
}

/* The dict the agent's metrics() contributes (new reference); its
 * failures are reported inside it as "metrics_error". */
static PyObject *agent_metrics(void)
{
    PyObject *extra = NULL, *d = NULL;
    if (bridge.metrics == NULL)
        return PyDict_New();
    extra = PyObject_CallNoArgs(bridge.metrics);
    if (extra != NULL && PyDict_Check(extra)) {
        d = PyDict_Copy(extra);
        Py_DECREF(extra);
        return d;
    }
    d = PyDict_New();
    if (d == NULL)
        goto done;
    PyObject *why;
    if (extra == NULL) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        PyObject *name = exception_name(type);
        PyObject *text = exception_text(value, NULL);
        why = PyUnicode_FromFormat("metrics() raised %U: %U", name, text ? text : Py_None);
        Py_XDECREF(text);
        Py_DECREF(name);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    } else {
        if (PyCoro_CheckExact(extra)) {
            PyObject *r = PyObject_CallMethod(extra, "close", NULL);
            Py_XDECREF(r);
            PyErr_Clear();
        }
        why = PyUnicode_FromFormat("metrics() returned %s, not a dict (it must be a plain def)", Py_TYPE(extra)->tp_name);
    }
    if (put(d, "metrics_error", why) < 0)
        Py_CLEAR(d);
done:
    Py_XDECREF(extra);
    return d;
}

void msg_reply_metrics(uint64_t id, size_t queue_size)
{
    PyObject *d = NULL, *blocks = NULL;
    PyObject *type = PyUnicode_InternFromString(METRICS_TYPE); /* for the log; NULL: unknown */
    PyErr_Clear();
    /* measured before anything below allocates */
    PyObject *fn = PySys_GetObject("getallocatedblocks"); /* borrowed */
    blocks = fn ? PyObject_CallNoArgs(fn) : PyLong_FromLong(0);
    if (blocks == NULL)
        goto fail;
    d = agent_metrics();
    if (d == NULL)
        goto fail;
    double uptime = (double)(ap_now_ns() - bridge.started_ns) / 1e9;
    if (put(d, "messages_received", PyLong_FromUnsignedLongLong(bridge.received)) < 0 ||
        put(d, "messages_sent", PyLong_FromUnsignedLongLong(bridge.sent)) < 0 ||
        put(d, "errors", PyLong_FromUnsignedLongLong(bridge.errors)) < 0 ||
        put(d, "uptime", PyFloat_FromDouble(uptime)) < 0 ||
        put(d, "queue_size", PyLong_FromSize_t(queue_size)) < 0 ||
        put(d, "pid", PyLong_FromLong((long)getpid())) < 0 ||
        put(d, "worker", PyUnicode_FromString(bridge.id)) < 0 ||
        put(d, "async", PyBool_FromLong(bridge.is_async)) < 0 ||
        put(d, "concurrency", PyLong_FromLong(bridge.max_inflight)) < 0 ||
        put(d, "model", PyUnicode_FromString(bridge_model_name(bridge.model))) < 0 ||
        put(d, "in_flight", PyLong_FromSize_t(bridge.inflight)) < 0 ||
        put(d, "hub_blocked", PyLong_FromUnsignedLongLong(bridge.hub_blocked)) < 0 ||
        put(d, "stream_credits", PyLong_FromUnsignedLongLong(bridge.credits)) < 0 ||
        put(d, "allocated_blocks", Py_NewRef(blocks)) < 0 ||
        put(d, "rss_bytes", PyLong_FromUnsignedLongLong(ap_rss_bytes(0))) < 0)
        goto fail;
    msg_reply(id, d, type);
    Py_DECREF(d);
    Py_DECREF(blocks);
    Py_XDECREF(type);
    return;
fail:
    Py_XDECREF(d);
    Py_XDECREF(blocks);
    reply_exception(id, "agent.metrics: ", type);
    Py_XDECREF(type);
}

void msg_pong(uint64_t id)
{
    buf_t *out = &bridge.out;
    size_t at = wire_begin(out);
    if (bridge.health) {
        PyObject *h = PyObject_CallNoArgs(bridge.health);
        if (h == NULL) {
            pyerr_log(AP_LOG_WARN, "health() raised; answering false");
            buf_append(out, "false", 5);
        } else {
            if (PyCoro_CheckExact(h)) {
                PyObject *r = PyObject_CallMethod(h, "close", NULL);
                Py_XDECREF(r);
                PyErr_Clear();
                ap_warn("health() returned a coroutine; it must be a plain def: answering false");
                buf_append(out, "false", 5);
            } else if (pyconv_encode(h, out, 64 * 1024) < 0) {
                pyerr_log(AP_LOG_WARN, "health() answer not sendable; answering false");
                buf_append(out, "false", 5);
            }
            Py_DECREF(h);
        }
    }
    wire_end(out, at, AP_FRAME_PONG, 0, id);
}
