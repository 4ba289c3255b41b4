# SPDX-License-Identifier: BSD-2-Clause
# cmocka unit tests for the type table (pool/ops/typetab.c) and the per-type
# circuit breakers (pool/ops/breaker.c).  Both modules allocate, so both tests
# build with AP_ALLOC_TEST (cmocka's allocator catches leaks and overruns);
# typetab uses ap_strndup, so common/alloc.c is compiled in the same way.
# test_typetab #includes pool/ops/typetab.c to reach its hash function and
# check the table's invariants.
check_PROGRAMS += tests/unit/test_typetab tests/unit/test_breaker
TESTS += tests/unit/test_typetab tests/unit/test_breaker

tests_unit_test_typetab_SOURCES = tests/unit/test_typetab.c pool/ops/typetab.h common/alloc.c
EXTRA_tests_unit_test_typetab_SOURCES = pool/ops/typetab.c
tests_unit_test_typetab_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC) -DAP_ALLOC_TEST
tests_unit_test_typetab_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_typetab_LDADD = $(CMOCKA_LIBS)

tests_unit_test_breaker_SOURCES = tests/unit/test_breaker.c pool/ops/breaker.c pool/ops/breaker.h
tests_unit_test_breaker_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC) -DAP_ALLOC_TEST
tests_unit_test_breaker_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_breaker_LDADD = $(CMOCKA_LIBS)
