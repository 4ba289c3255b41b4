/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_typetab.c - cmocka tests for the bounded type -> index table
 * (pool/ops/typetab.c).
 *
 * typetab.c is #included (cmocka's way to reach statics) so the tests can
 * use its hash_bytes() to build types whose full 32-bit hashes collide and
 * types that all share one home slot (including the last slot, so probe
 * runs wrap), and can check the table's invariants directly after every
 * change: slot array at most half full, every index in exactly one slot,
 * no empty slot between a type's home and its slot.  Built with
 * AP_ALLOC_TEST, so a leaked name or table fails the test.
 *
 * Covers: "other" always at 0 (and the type spelt "other" mapping to it),
 * indexes stable in order of first sight, the bound (max_types 0 and the
 * overflow to "other", counted), types of exactly AP_MAX_TYPE_LEN bytes
 * and one more, UTF-8 and embedded NUL bytes, find() never adding, and a
 * randomized run against an array model that never exceeds the bound.
 */
#include "typetab.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned idx_of(typetab *t, const char *s)
{
    return typetab_index(t, s, strlen(s));
}

/* The structural invariants of the table (see typetab.c). */
static void check_table(const typetab *t)
{
    uint32_t cap = t->mask + 1;
    assert_int_equal(cap & t->mask, 0);
    assert_true(cap >= 2 * (t->max_types + 1));
    assert_true(t->count >= 1);
    assert_true(t->count <= t->max_types + 1);
    assert_string_equal(t->ent[0].name, TYPETAB_OTHER_NAME);
    unsigned *seen = calloc(t->count, sizeof(unsigned));
    assert_non_null(seen);
    unsigned used = 0;
    for (uint32_t i = 0; i < cap; i++) {
        uint32_t s = t->slot[i];
        if (s == 0)
            continue;
        used++;
        assert_true(s - 1 < t->count);
        seen[s - 1]++;
        const typetab_entry *e = &t->ent[s - 1];
        assert_int_equal(e->hash, hash_bytes(e->name, e->len));
        assert_int_equal(e->name[e->len], '\0');
        for (uint32_t j = e->hash & t->mask; j != i; j = (j + 1) & t->mask)
            assert_int_not_equal(t->slot[j], 0); /* no hole between home and slot */
    }
    assert_int_equal(used, t->count);
    for (unsigned i = 0; i < t->count; i++)
        assert_int_equal(seen[i], 1);
    free(seen);
}

static void test_new_empty(void **state)
{
    (void)state;
    typetab *t = typetab_new(64);
    assert_non_null(t);
    assert_int_equal(typetab_count(t), 1);
    assert_int_equal(typetab_capacity(t), 65);
    assert_string_equal(typetab_name(t, TYPETAB_OTHER), "other");
    assert_int_equal(typetab_name_len(t, TYPETAB_OTHER), 5);
    assert_null(typetab_name(t, 1));
    assert_int_equal(typetab_name_len(t, 1), 0);
    assert_null(typetab_name(t, 64));
    assert_int_equal(typetab_untracked(t), 0);
    assert_int_equal(typetab_find(t, "x", 1), TYPETAB_OTHER);
    assert_int_equal(typetab_count(t), 1); /* find never adds */
    check_table(t);
    typetab_free(t);
    typetab_free(NULL);

    assert_null(typetab_new(TYPETAB_MAX_TYPES + 1));
    t = typetab_new(TYPETAB_MAX_TYPES);
    assert_non_null(t);
    assert_int_equal(typetab_capacity(t), TYPETAB_MAX_TYPES + 1);
    check_table(t);
    typetab_free(t);
}

static void test_indexes_stable(void **state)
{
    (void)state;
    typetab *t = typetab_new(8);
    assert_int_equal(idx_of(t, "summarize"), 1);
    assert_int_equal(idx_of(t, "translate"), 2);
    assert_int_equal(idx_of(t, "echo"), 3);
    check_table(t);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(idx_of(t, "echo"), 3);
        assert_int_equal(idx_of(t, "summarize"), 1);
        assert_int_equal(idx_of(t, "translate"), 2);
    }
    assert_int_equal(typetab_count(t), 4);
    assert_int_equal(typetab_find(t, "translate", 9), 2);
    assert_int_equal(typetab_find(t, "translat", 8), TYPETAB_OTHER);
    assert_int_equal(typetab_find(t, "translatex", 10), TYPETAB_OTHER);
    assert_int_equal(typetab_count(t), 4);
    assert_string_equal(typetab_name(t, 1), "summarize");
    assert_string_equal(typetab_name(t, 2), "translate");
    assert_string_equal(typetab_name(t, 3), "echo");
    assert_int_equal(typetab_name_len(t, 3), 4);
    /* Prefixes and extensions of known types are types of their own. */
    assert_int_equal(idx_of(t, "ech"), 4);
    assert_int_equal(idx_of(t, "echo2"), 5);
    assert_int_equal(idx_of(t, ""), 6); /* the empty type is a type */
    assert_int_equal(idx_of(t, ""), 6);
    assert_string_equal(typetab_name(t, 6), "");
    assert_int_equal(idx_of(t, "echo"), 3);
    assert_int_equal(typetab_untracked(t), 0);
    check_table(t);
    typetab_free(t);
}

static void test_other_after_max(void **state)
{
    (void)state;
    typetab *t = typetab_new(3);
    assert_int_equal(idx_of(t, "a"), 1);
    assert_int_equal(idx_of(t, "b"), 2);
    assert_int_equal(idx_of(t, "c"), 3);
    assert_int_equal(typetab_count(t), 4);
    assert_int_equal(idx_of(t, "d"), TYPETAB_OTHER);
    assert_int_equal(idx_of(t, "e"), TYPETAB_OTHER);
    assert_int_equal(idx_of(t, "d"), TYPETAB_OTHER);
    assert_int_equal(typetab_untracked(t), 3);
    assert_int_equal(typetab_count(t), 4);
    assert_null(typetab_name(t, 4));
    /* Known types keep their index once the table is full. */
    assert_int_equal(idx_of(t, "c"), 3);
    assert_int_equal(idx_of(t, "a"), 1);
    assert_int_equal(typetab_untracked(t), 3);
    check_table(t);
    typetab_free(t);
}

static void test_max_zero(void **state)
{
    (void)state;
    typetab *t = typetab_new(0);
    assert_non_null(t);
    assert_int_equal(typetab_capacity(t), 1);
    assert_int_equal(idx_of(t, "a"), TYPETAB_OTHER);
    assert_int_equal(idx_of(t, "b"), TYPETAB_OTHER);
    assert_int_equal(idx_of(t, "other"), TYPETAB_OTHER);
    assert_int_equal(typetab_count(t), 1);
    assert_int_equal(typetab_untracked(t), 2);
    check_table(t);
    typetab_free(t);
}

/* A type spelt "other" is the "other" bucket, so one name means one
 * index in stats; it takes no slot and is not counted as untracked. */
static void test_type_named_other(void **state)
{
    (void)state;
    typetab *t = typetab_new(2);
    assert_int_equal(idx_of(t, "other"), TYPETAB_OTHER);
    assert_int_equal(typetab_find(t, "other", 5), TYPETAB_OTHER);
    assert_int_equal(typetab_count(t), 1);
    assert_int_equal(typetab_untracked(t), 0);
    assert_int_equal(idx_of(t, "Other"), 1);
    assert_int_equal(idx_of(t, "other "), 2);
    assert_int_equal(idx_of(t, "others"), TYPETAB_OTHER);
    assert_int_equal(typetab_untracked(t), 1);
    check_table(t);
    typetab_free(t);
}

static void test_long_and_unicode(void **state)
{
    (void)state;
    char longest[AP_MAX_TYPE_LEN + 2];
    memset(longest, 'x', sizeof(longest));
    longest[AP_MAX_TYPE_LEN + 1] = '\0';
    typetab *t = typetab_new(16);

    /* Exactly AP_MAX_TYPE_LEN bytes is tracked; one more is not. */
    assert_int_equal(typetab_index(t, longest, AP_MAX_TYPE_LEN), 1);
    assert_int_equal(typetab_name_len(t, 1), AP_MAX_TYPE_LEN);
    assert_int_equal(strlen(typetab_name(t, 1)), AP_MAX_TYPE_LEN);
    assert_memory_equal(typetab_name(t, 1), longest, AP_MAX_TYPE_LEN);
    assert_int_equal(typetab_index(t, longest, AP_MAX_TYPE_LEN + 1), TYPETAB_OTHER);
    assert_int_equal(typetab_find(t, longest, AP_MAX_TYPE_LEN + 1), TYPETAB_OTHER);
    assert_int_equal(typetab_untracked(t), 1);
    assert_int_equal(typetab_count(t), 2);
    assert_int_equal(typetab_index(t, longest, AP_MAX_TYPE_LEN - 1), 2);
    assert_int_equal(typetab_index(t, longest, AP_MAX_TYPE_LEN), 1);

    /* UTF-8: bytes are bytes, compared exactly. */
    static const char *const utf8[] = {
        "r\xc3\xa9sum\xc3\xa9",              /* résumé, precomposed */
        "re\xcc\x81sume\xcc\x81",            /* résumé, combining accents */
        "\xe7\x94\x9f\xe6\x88\x90",          /* 生成 */
        "\xf0\x9f\xa4\x96.run",              /* robot emoji */
        "\xd0\xbf\xd0\xb5\xd1\x80\xd0\xb5",  /* пере */
    };
    for (unsigned i = 0; i < AP_ARRAY_LEN(utf8); i++)
        assert_int_equal(idx_of(t, utf8[i]), 3 + i);
    for (unsigned i = 0; i < AP_ARRAY_LEN(utf8); i++) {
        assert_int_equal(idx_of(t, utf8[i]), 3 + i);
        assert_string_equal(typetab_name(t, 3 + i), utf8[i]);
    }

    /* An embedded NUL: "a\0b" is neither "a" nor "a\0c". */
    unsigned nul = typetab_index(t, "a\0b", 3);
    assert_int_equal(nul, 8);
    assert_int_equal(typetab_name_len(t, nul), 3);
    assert_memory_equal(typetab_name(t, nul), "a\0b", 4);
    assert_int_equal(typetab_index(t, "a", 1), 9);
    assert_int_equal(typetab_index(t, "a\0c", 3), 10);
    assert_int_equal(typetab_index(t, "a\0b", 3), nul);
    check_table(t);
    typetab_free(t);
}

/* Finds distinct names whose full 32-bit hashes are equal, by the
 * birthday bound: "x" + 8 hex digits of i * 2654435761 (a bijection, so
 * the names are distinct) for 400,000 i give 21 colliding pairs.  Plain
 * "c<i>" gives none: FNV-1a spreads sequential decimals too evenly. */
static void coll_name(char *buf, size_t size, uint32_t i)
{
    snprintf(buf, size, "x%08x", i * 2654435761u);
}

typedef struct {
    uint32_t h, n;
} hn;

static int cmp_hn(const void *a, const void *b)
{
    const hn *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->n < y->n ? -1 : x->n > y->n;
}

static void test_full_hash_collisions(void **state)
{
    (void)state;
    enum { N = 400000 };
    hn *v = malloc(N * sizeof(hn));
    assert_non_null(v);
    char buf[32];
    for (uint32_t i = 0; i < N; i++) {
        coll_name(buf, sizeof(buf), i);
        v[i] = (hn){hash_bytes(buf, strlen(buf)), i};
    }
    qsort(v, N, sizeof(hn), cmp_hn);
    typetab *t = typetab_new(64);
    unsigned pairs = 0;
    for (uint32_t i = 1; i < N && pairs < 10; i++) {
        if (v[i].h != v[i - 1].h)
            continue;
        char a[32], b[32];
        coll_name(a, sizeof(a), v[i - 1].n);
        coll_name(b, sizeof(b), v[i].n);
        assert_string_not_equal(a, b);
        assert_int_equal(hash_bytes(a, strlen(a)), hash_bytes(b, strlen(b)));
        unsigned ia = idx_of(t, a), ib = idx_of(t, b);
        assert_int_not_equal(ia, TYPETAB_OTHER);
        assert_int_not_equal(ib, TYPETAB_OTHER);
        assert_int_not_equal(ia, ib);
        assert_int_equal(idx_of(t, a), ia);
        assert_int_equal(idx_of(t, b), ib);
        assert_int_equal(typetab_find(t, b, strlen(b)), ib);
        assert_string_equal(typetab_name(t, ia), a);
        assert_string_equal(typetab_name(t, ib), b);
        pairs++;
    }
    free(v);
    assert_int_equal(pairs, 10); /* the test means nothing without collisions */
    check_table(t);
    typetab_free(t);
}

/* max_types types all with one home slot: one probe run holds them all.
 * With home == mask the run wraps around the end of the slot array. */
static void one_home(uint32_t home)
{
    typetab *t = typetab_new(64);
    char names[64][32];
    unsigned found = 0;
    for (uint32_t i = 0; found < 64; i++) {
        int len = snprintf(names[found], sizeof(names[found]), "h%u", i);
        if ((hash_bytes(names[found], (size_t)len) & t->mask) == (home & t->mask))
            found++;
    }
    for (unsigned i = 0; i < 64; i++) {
        assert_int_equal(idx_of(t, names[i]), i + 1);
        check_table(t);
    }
    for (unsigned i = 0; i < 64; i++)
        assert_int_equal(idx_of(t, names[i]), i + 1);
    assert_int_equal(idx_of(t, "not-there"), TYPETAB_OTHER);
    assert_int_equal(typetab_untracked(t), 1);
    check_table(t);
    typetab_free(t);
}

static void test_shared_home_slot(void **state)
{
    (void)state;
    one_home(0);
    one_home(77);
    one_home(UINT32_MAX); /* the last slot: the run wraps to slot 0 */
}

/* 200,000 lookups of types drawn from 1,000 names against a model: the
 * first max_types distinct names get 1.. in order, the rest 0. */
static void test_random_bounded(void **state)
{
    (void)state;
    enum { NAMES = 1000, MAX = 64, OPS = 200000 };
    unsigned model[NAMES] = {0};
    unsigned next = 1;
    uint64_t untracked = 0;
    typetab *t = typetab_new(MAX);
    srand(12345);
    char buf[AP_MAX_TYPE_LEN + 1];
    for (int op = 0; op < OPS; op++) {
        unsigned n = (unsigned)rand() % NAMES;
        /* Names of varied length, up to the limit: "t<n>" padded with '-'. */
        int len = snprintf(buf, sizeof(buf), "t%u", n);
        size_t full = (size_t)len + (n * 37u) % (AP_MAX_TYPE_LEN - (size_t)len + 1);
        memset(buf + len, '-', full - (size_t)len);
        if (model[n] == 0 && next <= MAX)
            model[n] = next++;
        if (model[n] == 0)
            untracked++;
        assert_int_equal(typetab_index(t, buf, full), model[n]);
        assert_true(typetab_count(t) <= MAX + 1);
        if (op % 10000 == 0)
            check_table(t);
    }
    assert_int_equal(typetab_count(t), MAX + 1);
    assert_int_equal(typetab_untracked(t), untracked);
    check_table(t);
    typetab_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_empty),
        cmocka_unit_test(test_indexes_stable),
        cmocka_unit_test(test_other_after_max),
        cmocka_unit_test(test_max_zero),
        cmocka_unit_test(test_type_named_other),
        cmocka_unit_test(test_long_and_unicode),
        cmocka_unit_test(test_full_hash_collisions),
        cmocka_unit_test(test_shared_home_slot),
        cmocka_unit_test(test_random_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
