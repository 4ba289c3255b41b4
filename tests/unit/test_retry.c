/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_retry.c - cmocka tests for crash attribution, retries, dead
 * letters and deadlines (pool/workers/retry.c, #included to reach its delay
 * function and its timer callback, which the tests call in place of the
 * clock), with a fake worker table (tests/unit/fake_server.h).  Linked
 * with -Wl,--wrap=random (the retry delay's jitter) and
 * -Wl,--wrap=event_add, which records the delay each timer is armed with
 * and then arms it for real on a real event base that never runs: no
 * test waits for a timer.
 */
#include "../../pool/workers/retry.c"
#include "fake_server.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

/* ---- event_add, seen ---------------------------------------------- */

int __real_event_add(struct event *ev, const struct timeval *tv);
int __wrap_event_add(struct event *ev, const struct timeval *tv);

static struct {
    const struct event *ev;
    long long ms;
} armed[256];
static int narmed;

int __wrap_event_add(struct event *ev, const struct timeval *tv)
{
    if (narmed < 256) {
        armed[narmed].ev = ev;
        armed[narmed].ms = tv ? (long long)tv->tv_sec * 1000 + tv->tv_usec / 1000 : -1;
        narmed++;
    }
    return __real_event_add(ev, tv);
}

/* The delay m's timer was last armed with; -2 when it never was. */
static long long armed_ms(const msg *m)
{
    for (int i = narmed - 1; i >= 0; i--)
        if (armed[i].ev == &m->timer)
            return armed[i].ms;
    return -2;
}

static int times_armed(const msg *m)
{
    int n = 0;
    for (int i = 0; i < narmed; i++)
        n += armed[i].ev == &m->timer;
    return n;
}

/* ---- the fake master ------------------------------------------------ */

#define SIGNALLED(sig) (sig)          /* a waitpid status: killed by sig */
#define EXITED(code) ((code) << 8)    /* a waitpid status: exit(code) */

static void setup(int n, int slots, int async)
{
    fake_server_setup(n, slots, 0, 16);
    server.base = event_base_new();
    assert_non_null(server.base);
    fake_cfg.dead_letter_file = "/nonexistent/dead.jsonl";
    fake_cfg.max_retries = 3;
    fake_cfg.retry_delay = 100;
    fake_cfg.max_retry_delay = 10000;
    for (int i = 0; i < n; i++) {
        fake_pool.workers[i].proc.async = async;
        fake_pool.workers[i].load.ahead = async ? 0 : 8; /* a sync worker may prefetch */
    }
    narmed = 0;
    assert_int_equal(retry_start(&fake_pool), AP_OK); /* no timeout: no shared timer */
}

/* The pool's timeout, as retry.c reads it (its fifo's length), without
 * the shared deadline timer retry_start makes for it: each message arms
 * a timer of its own, which these tests watch.  The shared timer is
 * test_server_timeout_deadlines_share_one_timer_in_arming_order's. */
static void set_timeout(int64_t ms)
{
    fake_cfg.timeout = ms;
    fake_pool.fifo->for_ms = (uint64_t)ms;
}

static void teardown(void)
{
    retry_close_dead_letters(&fake_pool); /* frees the path dead_letter opened */
    retry_stop(&fake_pool);
    fake_server_teardown();
    event_base_free(server.base);
    server.base = NULL;
}

/* A message sent to worker i, accepted as sched would (its bytes counted). */
static msg *running_on(int i, int id)
{
    msg *m = fake_msg(id, "t");
    server.pending_bytes += m->line_len;
    worker_send(&fake_pool.workers[i], m);
    return m;
}

/* The request ids in the queue, oldest first, as a string "1 3 4". */
static const char *queue_ids(void)
{
    static char buf[256];
    size_t n = 0;
    buf[0] = '\0';
    for (queue_link *l = fake_pool.queue.head.next; l != &fake_pool.queue.head; l = l->next) {
        msg *m = msg_from_qlink(l);
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%.*s", n ? " " : "", (int)m->id_len, m->line + m->id_off);
    }
    return buf;
}

static int retrying_count(void)
{
    int n = 0;
    for (queue_link *l = fake_pool.retrying.next; l != &fake_pool.retrying; l = l->next)
        n++;
    return n;
}

/* ---- crash attribution ---------------------------------------------- */

static void test_sync_crash_charges_the_message_its_progress_page_names(void **state)
{
    (void)state;
    setup(1, 1, 0);
    worker *w = &fake_pool.workers[0];
    msg *m[5];
    for (int k = 1; k <= 4; k++)
        m[k] = running_on(0, k); /* 1 runs, 2-4 were prefetched */
    msg *q = fake_msg(9, "t");
    server.pending_bytes += q->line_len;
    msg_set_state(&server.msgs, q, MSG_QUEUED);
    queue_push(&fake_pool.queue, &q->qlink, 1);
    uint64_t bytes = server.pending_bytes;
    fake_wprog_result = 1;
    fake_wprog_running = m[2]->id; /* 1 finished (its answer unread), 2 ran */

    retry_worker_died(w, SIGNALLED(SIGSEGV), "killed by signal 11");

    assert_true(link_empty(&w->running));
    assert_int_equal(w->load.in_flight, 0);
    /* only 2 is charged: it waits out its retry delay */
    assert_int_equal(m[2]->state, MSG_RETRY_WAIT);
    assert_null(m[2]->worker);
    assert_int_equal(m[2]->attempts, 1);
    assert_int_equal(m[2]->nfail, 1);
    assert_non_null(strstr(m[2]->fail[0].reason, "worker-0 (pid 1000) killed by signal 11 while running"));
    assert_int_equal(m[2]->fail[0].status, SIGSEGV);
    assert_int_equal(retrying_count(), 1);
    assert_int_equal(fake_pool.stats.retries, 1);
    assert_int_equal(armed_ms(m[2]), 50); /* retryDelay 100, jitter 0 of [50, 100] */
    /* the others go back ahead of the queue, in their order: 1 ran (its
     * answer was lost), its attempt stays spent; 3 and 4 never started */
    assert_string_equal(queue_ids(), "1 3 4 9");
    for (int k = 1; k <= 4; k++)
        if (k != 2) {
            assert_int_equal(m[k]->state, MSG_QUEUED);
            assert_int_equal(m[k]->attempts, k == 1 ? 1 : 0);
            assert_null(m[k]->worker);
            assert_int_equal(m[k]->nfail, 0);
        }
    assert_int_equal(fake_nanswers(), 0);
    assert_int_equal(server.pending_bytes, bytes); /* nobody left the pool */
    teardown();
}

static void test_sync_crash_between_messages_charges_nobody(void **state)
{
    (void)state;
    setup(1, 1, 0);
    for (int k = 1; k <= 3; k++)
        running_on(0, k);
    fake_wprog_result = 0;
    retry_worker_died(&fake_pool.workers[0], EXITED(1), "exited with status 1");
    assert_string_equal(queue_ids(), "1 2 3");
    assert_int_equal(retrying_count(), 0);
    assert_int_equal(fake_pool.stats.retries, 0);
    assert_int_equal(fake_nanswers(), 0);
    teardown();
}

/* A page that says "between messages, after 1": 1 ran (attempt kept),
 * 2 never started (given back).  A message that ran at every death is
 * failed for good once its attempts are spent, though never charged. */
static void test_sync_crash_after_a_message_finished_keeps_its_attempt(void **state)
{
    (void)state;
    setup(1, 1, 0);
    fake_cfg.max_retries = 1;
    msg *a = running_on(0, 1);
    msg *b = running_on(0, 2);
    fake_wprog_result = 1;
    fake_wprog_running = 0;
    fake_wprog_last = a->id;
    retry_worker_died(&fake_pool.workers[0], EXITED(7), "exited with status 7");
    assert_string_equal(queue_ids(), "1 2");
    assert_int_equal(a->attempts, 1);
    assert_int_equal(b->attempts, 0);
    assert_int_equal(fake_nanswers(), 0);
    /* again, the same way: a has now run maxRetries + 1 times */
    queue_pop(&fake_pool.queue);
    queue_pop(&fake_pool.queue);
    worker_send(&fake_pool.workers[0], a);
    worker_send(&fake_pool.workers[0], b);
    retry_worker_died(&fake_pool.workers[0], EXITED(7), "exited with status 7");
    assert_int_equal(fake_nanswers(), 1);
    assert_int_equal(fake_pool.stats.failed_uncharged, 1);
    assert_int_equal(fake_pool.stats.dead_lettered, 1);
    assert_string_equal(queue_ids(), "2");
    teardown();
}

/* A page reset to zero at each death gives every attempt back; the
 * deliveries, never given back, still end the message after
 * RETRY_DELIVERY_FACTOR x (maxRetries + 1) sends. */
static void test_sync_crash_with_a_zeroed_page_is_bounded_by_deliveries(void **state)
{
    (void)state;
    setup(1, 1, 0);
    fake_cfg.max_retries = 1;
    msg *a = running_on(0, 1);
    fake_wprog_result = 1;
    fake_wprog_running = 0;
    fake_wprog_last = 0;
    for (int k = 1; k < 4; k++) {
        retry_worker_died(&fake_pool.workers[0], EXITED(7), "exited with status 7");
        assert_int_equal(fake_nanswers(), 0);
        assert_int_equal(a->attempts, 0);
        assert_string_equal(queue_ids(), "1");
        queue_pop(&fake_pool.queue);
        worker_send(&fake_pool.workers[0], a);
    }
    retry_worker_died(&fake_pool.workers[0], EXITED(7), "exited with status 7");
    assert_int_equal(fake_nanswers(), 1);
    assert_int_equal(fake_pool.stats.failed_uncharged, 1);
    assert_string_equal(queue_ids(), "");
    teardown();
}

/* A page naming as running a message this process never held is ignored
 * (logged, counted): the first message held is charged. */
static void test_sync_crash_with_a_page_naming_a_stranger_charges_the_first_held(void **state)
{
    (void)state;
    setup(1, 1, 0);
    msg *a = running_on(0, 1);
    running_on(0, 2);
    fake_wprog_result = 1;
    fake_wprog_running = 0x7fff0000deadbeefULL;
    retry_worker_died(&fake_pool.workers[0], EXITED(7), "exited with status 7");
    assert_int_equal(a->state, MSG_RETRY_WAIT);
    assert_int_equal(a->attempts, 1);
    assert_string_equal(queue_ids(), "2");
    assert_int_equal(fake_pool.stats.bad_progress_pages, 1);
    teardown();
}

static void test_sync_crash_without_progress_page_charges_the_first_held(void **state)
{
    (void)state;
    setup(1, 1, 0);
    msg *a = running_on(0, 1);
    running_on(0, 2);
    fake_wprog_result = -1;
    retry_worker_died(&fake_pool.workers[0], SIGNALLED(SIGKILL), "killed by signal 9");
    assert_int_equal(a->state, MSG_RETRY_WAIT);
    assert_string_equal(queue_ids(), "2");
    teardown();
}

static void test_async_crash_charges_every_message_it_held(void **state)
{
    (void)state;
    setup(1, 4, 1);
    msg *m[4];
    for (int k = 1; k <= 3; k++)
        m[k] = running_on(0, k);
    fake_wprog_result = 0; /* never asked: an async worker runs them all */
    retry_worker_died(&fake_pool.workers[0], SIGNALLED(SIGKILL), "killed by signal 9");
    assert_int_equal(fake_calls("wprog_running"), 0);
    for (int k = 1; k <= 3; k++) {
        assert_int_equal(m[k]->state, MSG_RETRY_WAIT);
        assert_int_equal(m[k]->nfail, 1);
    }
    assert_int_equal(retrying_count(), 3);
    assert_int_equal(fake_pool.queue.depth, 0);
    assert_int_equal(fake_pool.stats.retries, 3);
    teardown();
}

static void test_stuck_kill_is_named_in_the_failure(void **state)
{
    (void)state;
    setup(1, 1, 1);
    msg *a = running_on(0, 1);
    fake_pool.workers[0].proc.kill = WORKER_KILL_TERM;
    retry_worker_died(&fake_pool.workers[0], SIGNALLED(SIGTERM), "killed by signal 15");
    assert_non_null(strstr(a->fail[0].reason, "killed by signal 15 after it was found stuck while running"));
    teardown();
}

/* Was a bug (found by this test): a control message (agent.metrics asked of one named worker)
 * that a sync worker held when it died is not its culprit, so it goes
 * through retry_not_started into the pool's queue, and the next pump sends
 * it to whichever worker has room: the client gets another worker's
 * metrics under the name it asked for.  An async worker's death gives
 * the same message up (worker_crashed), as retry_worker_lost does for
 * every control message. */
static void test_sync_crash_gives_up_a_control_message_it_held(void **state)
{
    (void)state;
    setup(2, 1, 0);
    running_on(0, 1); /* the culprit */
    msg *ctl = fake_msg(2, "agent.metrics");
    ctl->control = 1;
    server.pending_bytes += ctl->line_len;
    worker_send(&fake_pool.workers[0], ctl);
    fake_wprog_result = -1; /* the first held is the culprit */
    retry_worker_died(&fake_pool.workers[0], SIGNALLED(SIGSEGV), "killed by signal 11");
    assert_string_equal(queue_ids(), ""); /* it must not wait for another worker */
    const fake_answer *a = fake_answer_for(2);
    assert_non_null(a);
    assert_int_equal(a->code, ERR_WORKER_CRASHED);
    teardown();
}

/* Was a bug (found by this test): a
 * message's list of failures is allocated for the maxRetries in force at
 * its first failure (record_failure: maxRetries + 1 entries), but each
 * later failure is bounded by the maxRetries in force then.  maxRetries
 * is reloadable: a message waiting out a retry when a reload raises it
 * and crashing again wrote past the end of its list (a heap overflow).
 * The list now grows with maxRetries and never shrinks. */
static void test_failures_recorded_across_a_reload_raising_max_retries_stay_in_bounds(void **state)
{
    (void)state;
    setup(1, 4, 1);
    fake_cfg.max_retries = 1;
    msg *m = running_on(0, 1);
    retry_worker_died(&fake_pool.workers[0], SIGNALLED(SIGKILL), "killed by signal 9");
    assert_int_equal(m->nfail, 1); /* room for maxRetries + 1 = 2 failures */
    fake_cfg.max_retries = 5;      /* a reload */
    for (int k = 0; k < 2; k++) {
        timer_cb(-1, EV_TIMEOUT, m); /* the retry delay is over: queued */
        assert_int_equal(m->state, MSG_QUEUED);
        queue_remove(&fake_pool.queue, &m->qlink);
        worker_send(&fake_pool.workers[0], m);
        retry_worker_died(&fake_pool.workers[0], SIGNALLED(SIGKILL), "killed by signal 9");
        assert_int_equal(m->state, MSG_RETRY_WAIT);
    }
    assert_int_equal(m->attempts, 3);
    teardown(); /* frees m and its list: cmocka checks the block's guards */
}

/* ---- retry or give up ----------------------------------------------- */

static void test_gives_up_after_max_retries_with_worker_crashed_and_a_dead_letter(void **state)
{
    (void)state;
    setup(1, 4, 1);
    msg *again = fake_msg(1, "t");
    again->attempts = 2; /* this send is attempt 3 of maxRetries 3 + 1 */
    worker_send(&fake_pool.workers[0], again);
    msg *last = fake_msg(2, "t");
    last->attempts = 3; /* this send is the 4th and last */
    worker_send(&fake_pool.workers[0], last);
    server.pending_bytes = again->line_len + last->line_len;
    retry_worker_died(&fake_pool.workers[0], SIGNALLED(SIGKILL), "killed by signal 9");

    assert_int_equal(again->state, MSG_RETRY_WAIT);
    const fake_answer *a = fake_answer_for(2);
    assert_non_null(a);
    assert_int_equal(a->kind, ANSWER_ERROR);
    assert_int_equal(a->code, ERR_WORKER_CRASHED);
    assert_string_equal(a->extra, ",\"attempts\":4,\"signal\":9");
    assert_non_null(strstr(a->message, "it was running this message at each of its crashes"));
    assert_null(fake_msg_by_id(2));
    assert_int_equal(fake_calls("dlq_append"), 1);
    assert_int_equal(fake_call_nth("dlq_append", 0)->arg, 4);
    assert_int_equal(fake_pool.stats.dead_lettered, 1);
    assert_int_equal(fake_pool.stats.retries, 1);
    assert_int_equal(server.pending_bytes, again->line_len);
    teardown();
}

static void test_gives_up_at_once_on_retry_false_and_control_messages(void **state)
{
    (void)state;
    setup(1, 4, 1);
    msg *noretry = running_on(0, 1);
    noretry->retry = 0;
    msg *ctl = fake_msg(2, "agent.metrics");
    ctl->control = 1;
    server.pending_bytes += ctl->line_len;
    worker_send(&fake_pool.workers[0], ctl);
    msg *plain = running_on(0, 3);
    plain->retry = 1;
    retry_worker_died(&fake_pool.workers[0], EXITED(7), "exited with status 7");
    for (int id = 1; id <= 2; id++) {
        const fake_answer *a = fake_answer_for(id);
        assert_non_null(a);
        assert_int_equal(a->code, ERR_WORKER_CRASHED);
        assert_string_equal(a->extra, ",\"attempts\":1,\"exitStatus\":7");
        assert_null(strstr(a->message, "at each of its crashes")); /* one attempt */
    }
    assert_int_equal(plain->state, MSG_RETRY_WAIT);
    assert_int_equal(fake_calls("dlq_append"), 2);
    teardown();
}

static void test_lost_message_whose_client_left_or_was_answered_is_dropped(void **state)
{
    (void)state;
    setup(1, 4, 1);
    msg *gone = running_on(0, 1);
    gone->client = NULL;
    msg *answered = running_on(0, 2);
    answered->detached = 1;
    answered->client = NULL;
    retry_worker_died(&fake_pool.workers[0], SIGNALLED(SIGKILL), "killed by signal 9");
    assert_int_equal(fake_nanswers(), 2);
    assert_int_equal(fake_answer_nth(0)->kind, ANSWER_NONE);
    assert_int_equal(fake_answer_nth(1)->kind, ANSWER_NONE);
    assert_int_equal(fake_calls("dlq_append"), 0);
    assert_int_equal(fake_pool.stats.retries, 0);
    assert_int_equal(server.msgs.live, 0);
    teardown();
}

static void test_retry_delay_doubles_is_capped_and_jittered_within_half(void **state)
{
    (void)state;
    setup(0, 1, 0);
    fake_cfg.retry_delay = 100;
    fake_cfg.max_retry_delay = 1000;
    static const uint64_t full[] = {100, 100, 200, 400, 800, 1000, 1000};
    for (unsigned attempt = 0; attempt < 7; attempt++) {
        uint64_t d = full[attempt];
        fake_random_value = 0;
        assert_int_equal(retry_delay_ms(&fake_pool, attempt), d / 2);
        fake_random_value = (long)(d / 2);
        assert_int_equal(retry_delay_ms(&fake_pool, attempt), d);
        for (long r = 1; r < 5000; r += 37) {
            fake_random_value = r;
            uint64_t got = retry_delay_ms(&fake_pool, attempt);
            assert_true(got >= d / 2 && got <= d);
        }
    }
    fake_random_value = 2147483647;
    assert_true(retry_delay_ms(&fake_pool, 200) <= 1000);
    teardown();
}

static void test_retry_delay_never_passes_the_deadline(void **state)
{
    (void)state;
    setup(1, 4, 1);
    fake_cfg.retry_delay = 1000;
    msg *m = running_on(0, 1);
    m->deadline_ms = fake_now + 300;
    retry_worker_died(&fake_pool.workers[0], SIGNALLED(SIGKILL), "killed by signal 9");
    assert_int_equal(m->state, MSG_RETRY_WAIT);
    assert_int_equal(armed_ms(m), 300);
    teardown();
}

static void test_retry_delay_over_goes_to_the_head_of_the_queue_with_its_deadline(void **state)
{
    (void)state;
    setup(1, 4, 1);
    msg *m = running_on(0, 1);
    m->deadline_ms = fake_now + 5000;
    msg *q = fake_msg(2, "t");
    msg_set_state(&server.msgs, q, MSG_QUEUED);
    queue_push(&fake_pool.queue, &q->qlink, 1);
    retry_worker_died(&fake_pool.workers[0], SIGNALLED(SIGKILL), "killed by signal 9");
    fake_now += 100;
    timer_cb(-1, EV_TIMEOUT, m);
    assert_int_equal(m->state, MSG_QUEUED);
    assert_string_equal(queue_ids(), "1 2");
    assert_int_equal(retrying_count(), 0);
    assert_int_equal(armed_ms(m), 4900); /* what is left of its deadline */
    assert_int_equal(fake_calls("sched_pump"), 1);
    teardown();
}

static void test_retry_not_started_requeues_without_spending_an_attempt(void **state)
{
    (void)state;
    setup(1, 1, 0);
    msg *m = running_on(0, 1);
    worker_release(&fake_pool.workers[0], m);
    retry_not_started(m);
    assert_int_equal(m->attempts, 0);
    assert_int_equal(m->state, MSG_QUEUED);
    /* a message that was never counted as an attempt stays at 0 */
    msg_set_state(&server.msgs, m, MSG_RUNNING);
    queue_remove(&fake_pool.queue, &m->qlink);
    retry_not_started(m);
    assert_int_equal(m->attempts, 0);
    teardown();
}

static void test_fail_waiting_answers_every_message_in_retry_wait(void **state)
{
    (void)state;
    setup(1, 4, 1);
    for (int k = 1; k <= 3; k++)
        running_on(0, k);
    retry_worker_died(&fake_pool.workers[0], SIGNALLED(SIGKILL), "killed by signal 9");
    assert_int_equal(retry_fail_waiting(&fake_pool, ERR_SHUTTING_DOWN, "shutting down"), 3);
    assert_int_equal(fake_nanswers(), 3);
    for (int k = 0; k < 3; k++)
        assert_int_equal(fake_answer_nth(k)->code, ERR_SHUTTING_DOWN);
    assert_true(link_empty(&fake_pool.retrying));
    assert_int_equal(server.pending_bytes, 0);
    teardown();
}

/* ---- deadlines ------------------------------------------------------ */

static void test_arm_uses_the_smaller_of_server_and_request_timeout(void **state)
{
    (void)state;
    setup(0, 1, 0);
    set_timeout(0);
    msg *none = fake_msg(1, "t");
    retry_arm(none);
    assert_int_equal(times_armed(none), 0);
    assert_int_equal(none->deadline_ms, 0);
    msg *own = fake_msg(2, "t");
    own->timeout_ms = 700;
    retry_arm(own);
    assert_int_equal(armed_ms(own), 700);
    assert_int_equal(own->deadline_ms, fake_now + 700);
    set_timeout(500);
    msg *server_wins = fake_msg(3, "t");
    server_wins->timeout_ms = 900;
    retry_arm(server_wins);
    assert_int_equal(armed_ms(server_wins), 500);
    msg *request_wins = fake_msg(4, "t");
    request_wins->timeout_ms = 200;
    retry_arm(request_wins);
    assert_int_equal(armed_ms(request_wins), 200);
    teardown();
}

static void test_queued_message_times_out_with_timeout_and_runs_nowhere(void **state)
{
    (void)state;
    setup(1, 1, 0);
    set_timeout(500);
    msg *m = fake_msg(1, "t");
    retry_arm(m);
    server.pending_bytes += m->line_len;
    msg_set_state(&server.msgs, m, MSG_QUEUED);
    queue_push(&fake_pool.queue, &m->qlink, 1);
    fake_now += 500;
    timer_cb(-1, EV_TIMEOUT, m);
    const fake_answer *a = fake_answer_for(1);
    assert_non_null(a);
    assert_int_equal(a->code, ERR_TIMEOUT);
    assert_string_equal(a->message, "no answer within 500 ms (waiting in the queue after 0 attempts)");
    assert_int_equal(fake_pool.queue.depth, 0);
    assert_int_equal(server.pending_bytes, 0);
    assert_int_equal(fake_calls("worker_kill_stuck"), 0);
    teardown();
}

/* Messages armed for the server's timeout share one timer: each still
 * times out at its own deadline, oldest first; one answered before its
 * deadline leaves the list; the timer is set for the next one due. */
static void test_server_timeout_deadlines_share_one_timer_in_arming_order(void **state)
{
    (void)state;
    setup(1, 1, 0);
    fake_cfg.timeout = 500;
    retry_stop(&fake_pool); /* setup's, started without a timeout */
    assert_int_equal(retry_start(&fake_pool), AP_OK);
    msg *m[3];
    for (int i = 0; i < 3; i++) {
        m[i] = fake_msg(i + 1, "t");
        retry_arm(m[i]);
        server.pending_bytes += m[i]->line_len;
        msg_set_state(&server.msgs, m[i], MSG_QUEUED);
        queue_push(&fake_pool.queue, &m[i]->qlink, 1);
        assert_int_equal(times_armed(m[i]), 0); /* no timer of its own */
        fake_now += 100;
    }
    retry_disarm(m[1]); /* as answering it does */
    fake_now = fake_now - 300 + 500; /* m[0]'s deadline */
    fifo_cb(-1, EV_TIMEOUT, fake_pool.fifo);
    assert_int_equal(fake_nanswers(), 1);
    assert_int_equal(fake_answer_for(1)->code, ERR_TIMEOUT);
    assert_int_equal(armed[narmed - 1].ms, 200); /* for m[2]'s deadline: m[1] left */
    fake_now += 199;
    fifo_cb(-1, EV_TIMEOUT, fake_pool.fifo); /* early: nothing due, set again */
    assert_int_equal(fake_nanswers(), 1);
    assert_int_equal(armed[narmed - 1].ms, 1);
    fake_now += 1;
    fifo_cb(-1, EV_TIMEOUT, fake_pool.fifo);
    assert_int_equal(fake_nanswers(), 2);
    assert_int_equal(fake_answer_for(3)->code, ERR_TIMEOUT);
    assert_string_equal(fake_answer_for(3)->message, "no answer within 500 ms (waiting in the queue after 0 attempts)");
    assert_true(link_empty(&fake_pool.fifo->due));
    /* a request's own shorter timeout keeps a timer of its own */
    msg *own = fake_msg(9, "t");
    own->timeout_ms = 200;
    retry_arm(own);
    assert_int_equal(armed_ms(own), 200);
    assert_false(own->in_fifo);
    retry_disarm(own);
    retry_disarm(m[1]);
    retry_stop(&fake_pool);
    teardown();
}

static void test_running_message_past_deadline_gets_its_sync_worker_killed(void **state)
{
    (void)state;
    setup(1, 1, 0);
    set_timeout(500);
    msg *m = running_on(0, 1);
    fake_now += 500;
    timer_cb(-1, EV_TIMEOUT, m);
    const fake_answer *a = fake_answer_for(1);
    assert_non_null(a);
    assert_true(a->detached);
    assert_int_equal(a->code, ERR_TIMEOUT);
    assert_true(m->detached);
    assert_true(msg_on_worker(m)); /* it stays with the worker until it lets go */
    assert_int_equal(fake_calls("worker_kill_stuck"), 1);
    assert_ptr_equal(fake_call_nth("worker_kill_stuck", 0)->w, &fake_pool.workers[0]);
    assert_string_equal(fake_call_nth("worker_kill_stuck", 0)->text, "message 1 (type t) ran past its deadline");
    assert_int_equal(fake_calls("worker_cancel"), 0);
    teardown();
}

static void test_prefetched_message_past_deadline_is_cancelled_not_killed(void **state)
{
    (void)state;
    setup(1, 1, 0);
    set_timeout(500);
    msg *first = running_on(0, 1);
    msg *behind = running_on(0, 2);
    fake_now += 500;
    timer_cb(-1, EV_TIMEOUT, behind);
    assert_int_equal(fake_answer_for(2)->code, ERR_TIMEOUT);
    assert_int_equal(fake_calls("worker_cancel"), 1);
    assert_int_equal(fake_call_nth("worker_cancel", 0)->msg_id, behind->id);
    assert_int_equal(fake_calls("worker_kill_stuck"), 0);
    assert_int_equal(armed_ms(behind), RETRY_CANCEL_GRACE_MS);
    /* its grace counts only once it is first in line */
    fake_now += RETRY_CANCEL_GRACE_MS;
    timer_cb(-1, EV_TIMEOUT, behind);
    assert_int_equal(fake_calls("worker_kill_stuck"), 0);
    assert_int_equal(times_armed(behind), 2);
    worker_release(&fake_pool.workers[0], first);
    timer_cb(-1, EV_TIMEOUT, behind);
    assert_int_equal(fake_calls("worker_kill_stuck"), 1);
    assert_non_null(strstr(fake_call_nth("worker_kill_stuck", 0)->text, "did not let go of cancelled message 2"));
    teardown();
}

static void test_async_message_past_deadline_is_cancelled_then_its_loop_judged_stuck(void **state)
{
    (void)state;
    setup(1, 4, 1);
    set_timeout(500);
    running_on(0, 1);
    msg *m = running_on(0, 2);
    fake_now += 500;
    timer_cb(-1, EV_TIMEOUT, m);
    assert_int_equal(fake_calls("worker_cancel"), 1);
    assert_int_equal(fake_calls("worker_kill_stuck"), 0);
    assert_int_equal(armed_ms(m), RETRY_CANCEL_GRACE_MS);
    fake_now += RETRY_CANCEL_GRACE_MS;
    timer_cb(-1, EV_TIMEOUT, m); /* still held after the grace */
    assert_int_equal(fake_calls("worker_kill_stuck"), 1);
    teardown();
}

/* retry_let_go with RETRY_SYNC_FINISH (pool.cancel, cancelSync finish):
 * a sync worker running the message is neither killed nor told anything
 * (its handler runs to its end; the deadline timer stays what it was),
 * one that prefetched it is told to skip it, with no grace to kill it
 * by, and an async worker's task is cancelled with the usual grace. */
static void test_let_go_finish_leaves_a_running_sync_handler_alone(void **state)
{
    (void)state;
    setup(1, 1, 0);
    msg *first = running_on(0, 1);
    msg *behind = running_on(0, 2);
    int armed_first = times_armed(first), armed_behind = times_armed(behind);
    retry_let_go(first, RETRY_SYNC_FINISH, "why");
    assert_int_equal(fake_calls("worker_kill_stuck"), 0);
    assert_int_equal(fake_calls("worker_cancel"), 0);
    assert_int_equal(times_armed(first), armed_first);
    assert_true(msg_on_worker(first));
    retry_let_go(behind, RETRY_SYNC_FINISH, "why");
    assert_int_equal(fake_calls("worker_cancel"), 1);
    assert_int_equal(fake_call_nth("worker_cancel", 0)->msg_id, behind->id);
    assert_int_equal(times_armed(behind), armed_behind);
    assert_int_equal(fake_calls("worker_kill_stuck"), 0);
    teardown();
}

/* A sync handler left to finish is still bounded by its deadline: past
 * it, its worker is replaced as for any message past its deadline. */
static void test_let_go_finish_keeps_the_deadline(void **state)
{
    (void)state;
    setup(1, 1, 0);
    set_timeout(500);
    msg *m = running_on(0, 1);
    retry_arm(m);
    m->detached = 1; /* answered cancelled (answer_detach) */
    retry_let_go(m, RETRY_SYNC_FINISH, "why");
    assert_int_equal(fake_calls("worker_kill_stuck"), 0);
    assert_int_equal(armed_ms(m), 500); /* still its deadline, not a grace */
    assert_int_equal(times_armed(m), 1);
    fake_now += 500;
    timer_cb(-1, EV_TIMEOUT, m);
    assert_int_equal(fake_calls("worker_kill_stuck"), 1);
    assert_int_equal(fake_nanswers(), 0); /* nothing more for the client */
    retry_disarm(m);
    retry_stop(&fake_pool);
    teardown();
}

static void test_let_go_kill_replaces_a_sync_worker_running_the_message(void **state)
{
    (void)state;
    setup(1, 1, 0);
    msg *first = running_on(0, 1);
    msg *behind = running_on(0, 2);
    retry_let_go(behind, RETRY_SYNC_KILL, "why");
    assert_int_equal(fake_calls("worker_cancel"), 1);
    assert_int_equal(armed_ms(behind), RETRY_CANCEL_GRACE_MS);
    assert_int_equal(fake_calls("worker_kill_stuck"), 0);
    retry_let_go(first, RETRY_SYNC_KILL, "message 1 was cancelled");
    assert_int_equal(fake_calls("worker_kill_stuck"), 1);
    assert_string_equal(fake_call_nth("worker_kill_stuck", 0)->text, "message 1 was cancelled");
    assert_int_equal(fake_calls("worker_cancel"), 1);
    teardown();
}

static void test_let_go_cancels_an_async_task_whatever_the_sync_policy(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        setup(1, 4, 1);
        msg *m = running_on(0, 1);
        retry_let_go(m, k ? RETRY_SYNC_KILL : RETRY_SYNC_FINISH, "why");
        assert_int_equal(fake_calls("worker_cancel"), 1);
        assert_int_equal(armed_ms(m), RETRY_CANCEL_GRACE_MS);
        assert_int_equal(fake_calls("worker_kill_stuck"), 0);
        teardown();
    }
}

static void test_retry_on_timeout_retries_a_copy_with_a_fresh_deadline(void **state)
{
    (void)state;
    setup(1, 1, 0);
    set_timeout(500);
    fake_cfg.retry_on_timeout = 1;
    fake_cfg.retry_delay = 10;
    msg *m = running_on(0, 1);
    fake_now += 500;
    timer_cb(-1, EV_TIMEOUT, m);
    msg *n = NULL; /* the copy: the other message with request id 1 */
    for (uint32_t i = 0; i < server.msgs.cap && n == NULL; i++)
        if (server.msgs.slots[i] && server.msgs.slots[i] != m)
            n = server.msgs.slots[i];
    assert_non_null(n);
    assert_int_equal(fake_nanswers(), 0); /* the client is not answered */
    assert_int_equal(n->state, MSG_RETRY_WAIT);
    assert_int_equal(n->deadline_ms, fake_now + 500);
    assert_int_equal(n->nfail, 1);
    assert_string_equal(n->fail[0].reason, "timed out on worker-0 (pid 1000)");
    assert_int_equal(armed_ms(n), 5); /* retryDelay 10, jitter 0 */
    assert_int_equal(server.pending_bytes, 2 * (uint64_t)m->line_len); /* both hold their bytes */
    assert_true(m->detached);
    assert_true(msg_on_worker(m));
    assert_int_equal(fake_calls("worker_kill_stuck"), 1); /* the sync worker is still stuck */
    teardown();
}

static void test_retry_on_timeout_respects_retry_false_and_max_retries(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        setup(1, 1, 0);
        set_timeout(500);
        fake_cfg.retry_on_timeout = 1;
        msg *m = fake_msg(1, "t");
        if (k == 0)
            m->retry = 0;
        else
            m->attempts = 3; /* this send is the 4th of maxRetries 3 + 1 */
        worker_send(&fake_pool.workers[0], m);
        fake_now += 500;
        timer_cb(-1, EV_TIMEOUT, m);
        assert_int_equal(fake_calls("client_take_over"), 0);
        assert_int_equal(fake_answer_for(1)->code, ERR_TIMEOUT);
        assert_true(fake_answer_for(1)->detached);
        teardown();
    }
}

/* Was a bug (found by this test): under
 * retryOnTimeout a control message that timed out is copied and retried
 * like a request, and the copy is not a control message any more
 * (client_take_over does not copy `control`): it goes through the queue
 * to any worker, as a request of type agent.metrics taking a slot,
 * instead of being answered timeout as every other way a control
 * message can fail gives it up (retry_worker_lost). */
static void test_retry_on_timeout_does_not_retry_a_control_message(void **state)
{
    (void)state;
    setup(2, 1, 1);
    set_timeout(500);
    fake_cfg.retry_on_timeout = 1;
    msg *ctl = fake_msg(1, "agent.metrics");
    ctl->control = 1;
    server.pending_bytes += ctl->line_len;
    worker_send(&fake_pool.workers[0], ctl);
    fake_now += 500;
    timer_cb(-1, EV_TIMEOUT, ctl);
    assert_int_equal(retrying_count(), 0);
    assert_non_null(fake_answer_for(1));
    assert_int_equal(fake_answer_for(1)->code, ERR_TIMEOUT);
    teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_crash_charges_the_message_its_progress_page_names),
        cmocka_unit_test(test_sync_crash_between_messages_charges_nobody),
        cmocka_unit_test(test_sync_crash_without_progress_page_charges_the_first_held),
        cmocka_unit_test(test_sync_crash_after_a_message_finished_keeps_its_attempt),
        cmocka_unit_test(test_sync_crash_with_a_zeroed_page_is_bounded_by_deliveries),
        cmocka_unit_test(test_sync_crash_with_a_page_naming_a_stranger_charges_the_first_held),
        cmocka_unit_test(test_async_crash_charges_every_message_it_held),
        cmocka_unit_test(test_stuck_kill_is_named_in_the_failure),
        cmocka_unit_test(test_sync_crash_gives_up_a_control_message_it_held),
        cmocka_unit_test(test_gives_up_after_max_retries_with_worker_crashed_and_a_dead_letter),
        cmocka_unit_test(test_gives_up_at_once_on_retry_false_and_control_messages),
        cmocka_unit_test(test_lost_message_whose_client_left_or_was_answered_is_dropped),
        cmocka_unit_test(test_retry_delay_doubles_is_capped_and_jittered_within_half),
        cmocka_unit_test(test_retry_delay_never_passes_the_deadline),
        cmocka_unit_test(test_retry_delay_over_goes_to_the_head_of_the_queue_with_its_deadline),
        cmocka_unit_test(test_retry_not_started_requeues_without_spending_an_attempt),
        cmocka_unit_test(test_fail_waiting_answers_every_message_in_retry_wait),
        cmocka_unit_test(test_arm_uses_the_smaller_of_server_and_request_timeout),
        cmocka_unit_test(test_queued_message_times_out_with_timeout_and_runs_nowhere),
        cmocka_unit_test(test_server_timeout_deadlines_share_one_timer_in_arming_order),
        cmocka_unit_test(test_running_message_past_deadline_gets_its_sync_worker_killed),
        cmocka_unit_test(test_prefetched_message_past_deadline_is_cancelled_not_killed),
        cmocka_unit_test(test_async_message_past_deadline_is_cancelled_then_its_loop_judged_stuck),
        cmocka_unit_test(test_let_go_finish_leaves_a_running_sync_handler_alone),
        cmocka_unit_test(test_let_go_finish_keeps_the_deadline),
        cmocka_unit_test(test_let_go_kill_replaces_a_sync_worker_running_the_message),
        cmocka_unit_test(test_let_go_cancels_an_async_task_whatever_the_sync_policy),
        cmocka_unit_test(test_retry_on_timeout_retries_a_copy_with_a_fresh_deadline),
        cmocka_unit_test(test_retry_on_timeout_respects_retry_false_and_max_retries),
        cmocka_unit_test(test_retry_on_timeout_does_not_retry_a_control_message),
        /* last: when the bug is there, the heap damage can abort the process */
        cmocka_unit_test(test_failures_recorded_across_a_reload_raising_max_retries_stay_in_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
