/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fake_worker.c - worker.c's functions for unit tests (see fake_server.h).
 *
 * They change the table entry the way worker.h promises (a sent message
 * is RUNNING on the worker's list and takes a slot, a released one gives
 * it back, states move only along legal transitions, asserted) and record
 * every call; no process, socket, signal or timer is involved.
 */
#include "fake_server.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>

void fake_worker_state(worker *w, worker_state to)
{
    if (w->state == to)
        return;
    assert_true(worker_transition_ok(w->state, to));
    w->state = to;
    w->load.accepting = worker_is_accepting(w);
}

void worker_set_state(worker *w, worker_state to)
{
    fake_record("worker_set_state", w, NULL, to, NULL);
    fake_worker_state(w, to);
}

int worker_is_accepting(const worker *w)
{
    return w->state == WORKER_READY || w->state == WORKER_BUSY;
}

/* The fake table keeps no per-state counts: its entries are counted. */
int worker_live_count(const pool_t *p)
{
    int n = 0;
    for (int i = 0; i < p->nworkers; i++)
        n += p->workers[i].state != WORKER_DEAD;
    return n;
}

worker *worker_free_entry(pool_t *p)
{
    for (int i = 0; i < p->nworkers; i++)
        if (p->workers[i].slot < 0 && p->workers[i].state == WORKER_DEAD)
            return &p->workers[i];
    return NULL;
}

void worker_assign(worker *w, int slot)
{
    fake_record("worker_assign", w, NULL, slot, NULL);
    w->slot = slot;
    if (slot >= 0)
        snprintf(w->name, sizeof(w->name), "worker-%d", slot);
}

void worker_send(worker *w, msg *m)
{
    fake_record("worker_send", w, m, 0, NULL);
    assert_true(m->control || (w->load.accepting && w->load.in_flight < w->load.slots + w->load.ahead));
    msg_set_state(&server.msgs, m, MSG_RUNNING);
    m->worker = w;
    m->worker_gen = w->proc.generation;
    m->sent_ns = ap_now_ns();
    if (m->deliveries < UINT8_MAX)
        m->deliveries++;
    m->attempts++;
    link_add_tail(&w->running, &m->qlink);
    w->proc.running_count++;
    if (!m->control && ++w->load.in_flight >= w->load.slots && w->state == WORKER_READY)
        fake_worker_state(w, WORKER_BUSY);
}

void worker_release(worker *w, msg *m)
{
    fake_record("worker_release", w, m, 0, NULL);
    assert_true(msg_on_worker(m));
    link_del(&m->qlink);
    w->proc.running_count--;
    if (!m->control) {
        w->load.in_flight--;
        if (w->state == WORKER_BUSY)
            fake_worker_state(w, WORKER_READY);
    }
}

void worker_cancel(worker *w, msg *m)
{
    fake_record("worker_cancel", w, m, 0, NULL);
}

void worker_kill_stuck(worker *w, const char *why)
{
    fake_record("worker_kill_stuck", w, NULL, 0, why);
    if (w->proc.kill == WORKER_KILL_NONE) {
        w->proc.kill = WORKER_KILL_STACKS;
        fake_worker_state(w, WORKER_STOPPING);
    }
}

void worker_kill_for_memory(worker *w, const char *why)
{
    fake_record("worker_kill_for_memory", w, NULL, 0, why);
    if (w->proc.kill == WORKER_KILL_NONE)
        w->proc.kill = WORKER_KILL_MEMORY;
}

int worker_spawn(pool_t *p, int index)
{
    worker *w = &p->workers[index];
    fake_record("worker_spawn", w, NULL, index, NULL);
    if (fake_spawn_result != AP_OK)
        return AP_ERR;
    fake_worker_state(w, WORKER_STARTING);
    w->proc.pid = 1000 + index;
    w->proc.generation++;
    w->proc.started_ms = ap_now_ms();
    w->proc.ready_ms = 0;
    return AP_OK;
}

void worker_drain(worker *w)
{
    fake_record("worker_drain", w, NULL, 0, NULL);
    w->proc.stop_sent_ms = ap_now_ms();
    fake_worker_state(w, WORKER_DRAINING);
}
