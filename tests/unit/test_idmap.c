/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_idmap.c - cmocka tests for the per-connection id map (pool/path/idmap.c).
 *
 * idmap.c is #included (cmocka's way to reach statics) so the tests use
 * its own hash_bytes() to find keys whose full 32-bit hashes collide, and
 * keys whose home slots wrap around the end of the table.  The file is
 * built with AP_ALLOC_TEST, so the table's memory goes through cmocka's
 * test_calloc/test_free and a leak or a write outside it fails the test.
 *
 * After every change the tests check the linear-probing invariant
 * directly in the table: each key sits in its home slot or after it with
 * no empty slot in between, count matches the occupied slots, load stays
 * at most one half.  The randomized test runs 200,000 put/get/del
 * operations against a plain array model.
 *
 * The regression tests at the end pin bugs the first version had.
 */
#include "idmap.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The structural invariants of the table (see the file comment). */
static void check_table(const idmap *m)
{
    if (m->cap == 0) {
        assert_null(m->tab);
        assert_int_equal(m->count, 0);
        return;
    }
    assert_non_null(m->tab);
    assert_int_equal(m->cap & (m->cap - 1), 0);
    assert_true(m->count * 2 <= m->cap);
    uint32_t mask = m->cap - 1, used = 0;
    for (uint32_t i = 0; i < m->cap; i++) {
        const idmap_entry *e = &m->tab[i];
        if (e->key == NULL)
            continue;
        used++;
        assert_int_equal(e->hash, hash_bytes(e->key, e->len));
        for (uint32_t j = e->hash & mask; j != i; j = (j + 1) & mask)
            assert_non_null(m->tab[j].key); /* no hole between home and slot */
    }
    assert_int_equal(used, m->count);
}

static void test_empty_map(void **state)
{
    (void)state;
    idmap m;
    idmap_init(&m);
    assert_null(m.tab);
    assert_int_equal(m.cap, 0);
    assert_null(idmap_get(&m, "1", 1));
    assert_null(idmap_del(&m, "1", 1));
    assert_null(m.tab); /* lookups never allocate */
    idmap_free(&m);
    idmap_free(&m); /* twice is harmless: free re-initialises */
    check_table(&m);
}

static void test_put_get_del(void **state)
{
    (void)state;
    int v[6];
    static const char keys[] = "1" "12" "123" "\"1\"" "\"a\\\"b\"" "-0.5e3";
    const char *k1 = keys, *k12 = keys + 1, *k123 = keys + 3, *ks = keys + 6, *kesc = keys + 9,
               *knum = keys + 15;
    idmap m;
    idmap_init(&m);
    assert_int_equal(idmap_put(&m, k1, 1, &v[0]), AP_OK);
    assert_int_equal(idmap_put(&m, k12, 2, &v[1]), AP_OK);
    assert_int_equal(idmap_put(&m, k123, 3, &v[2]), AP_OK);
    assert_int_equal(idmap_put(&m, ks, 3, &v[3]), AP_OK);
    assert_int_equal(idmap_put(&m, kesc, 6, &v[4]), AP_OK);
    assert_int_equal(idmap_put(&m, knum, 6, &v[5]), AP_OK);
    assert_int_equal(m.count, 6);
    check_table(&m);

    /* Found by bytes, not by pointer: each query is a separate copy. */
    char q[16];
    memcpy(q, "123", 3);
    assert_ptr_equal(idmap_get(&m, q, 3), &v[2]);
    assert_ptr_equal(idmap_get(&m, q, 2), &v[1]);
    assert_ptr_equal(idmap_get(&m, q, 1), &v[0]);
    memcpy(q, "\"a\\\"b\"", 6);
    assert_ptr_equal(idmap_get(&m, q, 6), &v[4]);
    memcpy(q, "\"1\"", 3);
    assert_ptr_equal(idmap_get(&m, q, 3), &v[3]); /* the string "1" is not the number 1 */
    memcpy(q, "-0.5e3", 6);
    assert_ptr_equal(idmap_get(&m, q, 6), &v[5]);
    assert_null(idmap_get(&m, "1234", 4));
    assert_null(idmap_get(&m, "2", 1));
    assert_null(idmap_get(&m, "", 0));

    assert_ptr_equal(idmap_del(&m, "12", 2), &v[1]);
    assert_null(idmap_del(&m, "12", 2));
    assert_null(idmap_get(&m, "12", 2));
    assert_ptr_equal(idmap_get(&m, "1", 1), &v[0]);
    assert_ptr_equal(idmap_get(&m, "123", 3), &v[2]);
    assert_int_equal(m.count, 5);
    check_table(&m);

    /* A deleted key can be put again, with another value. */
    assert_int_equal(idmap_put(&m, k12, 2, &v[5]), AP_OK);
    assert_ptr_equal(idmap_get(&m, "12", 2), &v[5]);
    idmap_free(&m);
    assert_null(m.tab);
    assert_int_equal(m.count, 0);
    assert_null(idmap_get(&m, "1", 1));
}

static void test_duplicate_refused(void **state)
{
    (void)state;
    int a, b;
    char k2[] = "\"req-1\"";
    idmap m;
    idmap_init(&m);
    assert_int_equal(idmap_put(&m, "\"req-1\"", 7, &a), AP_OK);
    /* the same bytes at another address are the same key */
    assert_int_equal(idmap_put(&m, k2, 7, &b), AP_ERR);
    assert_int_equal(idmap_put(&m, "\"req-1\"", 7, &a), AP_ERR);
    assert_int_equal(m.count, 1);
    assert_ptr_equal(idmap_get(&m, k2, 7), &a);
    check_table(&m);
    /* but a prefix is not */
    assert_int_equal(idmap_put(&m, k2, 6, &b), AP_OK);
    assert_int_equal(m.count, 2);
    idmap_free(&m);
}

/* Keys "0".."N-1" in one buffer, fixed-width slots; or, when quoted,
 * JSON strings of scrambled hex ("\"9e3779b1\"", all distinct), which
 * collide under FNV-1a about as often as random keys do. */
#define KW 16
static char *make_keys(int quoted, uint32_t n, uint32_t *lens)
{
    char *buf = malloc((size_t)n * KW);
    assert_non_null(buf);
    for (uint32_t i = 0; i < n; i++) {
        int len = snprintf(buf + (size_t)i * KW, KW, quoted ? "\"%x\"" : "%u", quoted ? i * 2654435761u : i);
        assert_true(len > 0 && len < KW);
        lens[i] = (uint32_t)len;
    }
    return buf;
}

static void test_growth_many_keys(void **state)
{
    (void)state;
    enum { N = 10000 };
    uint32_t *lens = malloc(N * sizeof(uint32_t));
    assert_non_null(lens);
    char *keys = make_keys(0, N, lens);
    idmap m;
    idmap_init(&m);
    uint32_t last_cap = 0;
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(idmap_put(&m, keys + (size_t)i * KW, lens[i], (void *)(uintptr_t)(i + 1)), AP_OK);
        if (m.cap != last_cap) {
            /* just grew: everything put so far must still be there */
            if (last_cap != 0)
                assert_int_equal(m.cap, last_cap * 2);
            last_cap = m.cap;
            check_table(&m);
            for (uint32_t j = 0; j <= i; j++)
                assert_int_equal((uintptr_t)idmap_get(&m, keys + (size_t)j * KW, lens[j]), j + 1);
        }
    }
    assert_int_equal(m.count, N);
    assert_int_equal(m.cap, 32768); /* doubles at half load, from 16 */
    check_table(&m);
    /* Delete every other key; the rest stay findable, the deleted are gone. */
    for (uint32_t i = 0; i < N; i += 2)
        assert_int_equal((uintptr_t)idmap_del(&m, keys + (size_t)i * KW, lens[i]), i + 1);
    check_table(&m);
    assert_int_equal(m.count, N / 2);
    for (uint32_t i = 0; i < N; i++) {
        uintptr_t got = (uintptr_t)idmap_get(&m, keys + (size_t)i * KW, lens[i]);
        assert_int_equal(got, i % 2 ? i + 1 : 0);
    }
    idmap_free(&m);
    free(keys);
    free(lens);
}

/* --- keys whose full 32-bit hashes collide ------------------------------ */

typedef struct {
    uint32_t hash, idx;
} hpair;

static int cmp_hpair(const void *a, const void *b)
{
    const hpair *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

#define CKEYS (1u << 19)
#define CMAX 64
/* Fills out[] with indexes (into keys) of keys that share their full hash
 * with at least one other, grouped; returns how many. */
static uint32_t find_collisions(const char *keys, const uint32_t *lens, uint32_t *out, uint32_t *groups)
{
    hpair *h = malloc(CKEYS * sizeof(hpair));
    assert_non_null(h);
    for (uint32_t i = 0; i < CKEYS; i++) {
        h[i].hash = hash_bytes(keys + (size_t)i * KW, lens[i]);
        h[i].idx = i;
    }
    qsort(h, CKEYS, sizeof(hpair), cmp_hpair);
    uint32_t n = 0;
    *groups = 0;
    for (uint32_t i = 0; i + 1 < CKEYS && n + 2 <= CMAX;) {
        uint32_t j = i + 1;
        while (j < CKEYS && h[j].hash == h[i].hash)
            j++;
        if (j - i > 1) {
            (*groups)++;
            for (uint32_t k = i; k < j && n < CMAX; k++)
                out[n++] = h[k].idx;
        }
        i = j;
    }
    free(h);
    return n;
}

static char *ckeys;
static uint32_t *clens;
static uint32_t coll[CMAX], ncoll, ngroups;

static int setup_collisions(void **state)
{
    (void)state;
    clens = malloc(CKEYS * sizeof(uint32_t));
    if (clens == NULL)
        return -1;
    ckeys = make_keys(1, CKEYS, clens);
    ncoll = find_collisions(ckeys, clens, coll, &ngroups);
    return 0;
}

static int teardown_collisions(void **state)
{
    (void)state;
    free(ckeys);
    free(clens);
    return 0;
}

#define CKEY(i) (ckeys + (size_t)(i) * KW)

static void test_full_hash_collisions(void **state)
{
    (void)state;
    /* 2^19 keys give ~32 colliding pairs for a 32-bit hash (17 for FNV-1a
     * on these keys); demand a few. */
    assert_true(ngroups >= 2);
    assert_true(ncoll >= 4);
    assert_int_equal(hash_bytes(CKEY(coll[0]), clens[coll[0]]), hash_bytes(CKEY(coll[1]), clens[coll[1]]));
    assert_true(clens[coll[0]] != clens[coll[1]] || memcmp(CKEY(coll[0]), CKEY(coll[1]), clens[coll[0]]) != 0);

    idmap m;
    idmap_init(&m);
    for (uint32_t i = 0; i < ncoll; i++)
        assert_int_equal(idmap_put(&m, CKEY(coll[i]), clens[coll[i]], (void *)(uintptr_t)(i + 1)), AP_OK);
    check_table(&m);
    for (uint32_t i = 0; i < ncoll; i++)
        assert_int_equal((uintptr_t)idmap_get(&m, CKEY(coll[i]), clens[coll[i]]), i + 1);
    /* equal hash, different key: still a duplicate only when the bytes match */
    for (uint32_t i = 0; i < ncoll; i++)
        assert_int_equal(idmap_put(&m, CKEY(coll[i]), clens[coll[i]], &m), AP_ERR);
    /* delete the first of each colliding group; its partners stay */
    for (uint32_t i = 0; i < ncoll; i += 2) {
        assert_int_equal((uintptr_t)idmap_del(&m, CKEY(coll[i]), clens[coll[i]]), i + 1);
        check_table(&m);
        for (uint32_t j = 0; j < ncoll; j++) {
            uintptr_t want = (j % 2 == 1 || j > i) ? j + 1 : 0;
            assert_int_equal((uintptr_t)idmap_get(&m, CKEY(coll[j]), clens[coll[j]]), want);
        }
    }
    idmap_free(&m);
}

/* Keys whose home slot in a 16-slot table is `home`. */
static uint32_t keys_with_home(uint32_t home, uint32_t want, uint32_t *out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < CKEYS && n < want; i++)
        if ((hash_bytes(CKEY(i), clens[i]) & 15) == home)
            out[n++] = i;
    return n;
}

static void test_wraparound_deletion(void **state)
{
    (void)state;
    uint32_t at15[4], at0[2], at14[1];
    assert_int_equal(keys_with_home(15, 4, at15), 4);
    assert_int_equal(keys_with_home(0, 2, at0), 2);
    assert_int_equal(keys_with_home(14, 1, at14), 1);
    /* Order of puts: 14, 15, 15, 0, 15, 0, 15 -> the run from slot 14
     * wraps through 0..4.  Seven keys: the table stays at 16 slots. */
    const uint32_t order[7] = {at14[0], at15[0], at15[1], at0[0], at15[2], at0[1], at15[3]};
    for (int victim = 0; victim < 7; victim++) {
        idmap m;
        idmap_init(&m);
        for (int i = 0; i < 7; i++)
            assert_int_equal(idmap_put(&m, CKEY(order[i]), clens[order[i]], (void *)(uintptr_t)(i + 1)), AP_OK);
        assert_int_equal(m.cap, 16);
        check_table(&m);
        assert_ptr_equal(m.tab[14].key, CKEY(at14[0]));
        assert_ptr_equal(m.tab[15].key, CKEY(at15[0]));
        assert_ptr_equal(m.tab[0].key, CKEY(at15[1]));
        /* delete one, then the others one by one, checking each time */
        for (int d = 0; d < 7; d++) {
            int k = (victim + d) % 7;
            assert_int_equal((uintptr_t)idmap_del(&m, CKEY(order[k]), clens[order[k]]), k + 1);
            check_table(&m);
            for (int e = 0; e < 7; e++) {
                int deleted = 0;
                for (int x = 0; x <= d; x++)
                    deleted |= (victim + x) % 7 == e;
                assert_int_equal((uintptr_t)idmap_get(&m, CKEY(order[e]), clens[order[e]]),
                                 deleted ? 0 : (uintptr_t)(e + 1));
            }
        }
        assert_int_equal(m.count, 0);
        idmap_free(&m);
    }
}

/* --- randomized against a model ----------------------------------------- */

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
}

static void test_randomized_against_model(void **state)
{
    (void)state;
    /* The universe: the colliding keys, keys sharing home slots in small
     * tables, and plain short keys; small enough that puts hit present
     * keys and deletes hit absent ones often. */
    enum { U = 3000, OPS = 200000 };
    static uint32_t uni[U];
    static uintptr_t model[U];
    uint32_t nu = 0;
    for (uint32_t i = 0; i < ncoll; i++)
        uni[nu++] = coll[i];
    for (uint32_t i = 0; nu < U; i++) {
        uint32_t cand = i * 37 % CKEYS, dup = 0;
        for (uint32_t j = 0; j < ncoll; j++)
            dup |= coll[j] == cand;
        if (!dup)
            uni[nu++] = cand;
    }
    memset(model, 0, sizeof(model));

    idmap m;
    idmap_init(&m);
    uint32_t live = 0;
    char q[KW];
    for (uint32_t op = 0; op < OPS; op++) {
        /* bias the live set to grow then shrink, so the table grows several
         * times and runs long probe chains near the end */
        uint32_t k = (uint32_t)(rnd() % U);
        const char *key = CKEY(uni[k]);
        uint32_t len = clens[uni[k]];
        memcpy(q, key, len); /* query with a copy, never the stored pointer */
        unsigned r = (unsigned)(rnd() % 100);
        int grow_phase = (op / 25000) % 2 == 0;
        if (r < (grow_phase ? 55u : 25u)) {
            uintptr_t v = op + 1;
            int rc = idmap_put(&m, key, len, (void *)v);
            if (model[k]) {
                assert_int_equal(rc, AP_ERR);
            } else {
                assert_int_equal(rc, AP_OK);
                model[k] = v;
                live++;
            }
        } else if (r < 75) {
            uintptr_t got = (uintptr_t)idmap_del(&m, q, len);
            assert_int_equal(got, model[k]);
            if (model[k]) {
                model[k] = 0;
                live--;
            }
        } else {
            assert_int_equal((uintptr_t)idmap_get(&m, q, len), model[k]);
        }
        assert_int_equal(m.count, live);
        if (op % 5000 == 0) {
            check_table(&m);
            for (uint32_t i = 0; i < U; i++)
                assert_int_equal((uintptr_t)idmap_get(&m, CKEY(uni[i]), clens[uni[i]]), model[i]);
        }
    }
    check_table(&m);
    assert_true(m.cap >= 2048); /* the live set did grow past 1000 keys */
    for (uint32_t i = 0; i < U; i++)
        if (model[i])
            assert_int_equal((uintptr_t)idmap_del(&m, CKEY(uni[i]), clens[uni[i]]), model[i]);
    assert_int_equal(m.count, 0);
    check_table(&m);
    idmap_free(&m);
}

/* --- regressions ------------------------------------------------------------ */

/* idmap.h: put refuses a key that is already present.  idmap_put asks
 * idmap_get, which cannot tell "absent" from "present with value NULL",
 * so a second put of the same key is accepted and the key is stored twice. */
static void test_bug_duplicate_with_null_value(void **state)
{
    (void)state;
    idmap m;
    idmap_init(&m);
    assert_int_equal(idmap_put(&m, "7", 1, NULL), AP_OK);
    assert_int_equal(idmap_put(&m, "7", 1, NULL), AP_ERR);
    assert_int_equal(m.count, 1);
    idmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_map),
        cmocka_unit_test(test_put_get_del),
        cmocka_unit_test(test_duplicate_refused),
        cmocka_unit_test(test_growth_many_keys),
        cmocka_unit_test(test_full_hash_collisions),
        cmocka_unit_test(test_wraparound_deletion),
        cmocka_unit_test(test_randomized_against_model),
        cmocka_unit_test(test_bug_duplicate_with_null_value),
    };
    return cmocka_run_group_tests(tests, setup_collisions, teardown_collisions);
}
