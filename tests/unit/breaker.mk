# cmocka unit tests for the type table (pool/typetab.c) and the per-type
# circuit breakers (pool/breaker.c).  Both modules allocate, so both tests
# build with AP_ALLOC_TEST (cmocka's allocator catches leaks and overruns);
# typetab uses ap_strndup, so common/alloc.c is compiled in the same way.
# test_typetab #includes pool/typetab.c to reach its hash function and
# check the table's invariants.
check_PROGRAMS += tests/unit/test_typetab tests/unit/test_breaker
TESTS += tests/unit/test_typetab tests/unit/test_breaker

tests_unit_test_typetab_SOURCES = tests/unit/test_typetab.c pool/typetab.h common/alloc.c
EXTRA_tests_unit_test_typetab_SOURCES = pool/typetab.c
tests_unit_test_typetab_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/pool -DAP_ALLOC_TEST
tests_unit_test_typetab_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_typetab_LDADD = $(CMOCKA_LIBS)

tests_unit_test_breaker_SOURCES = tests/unit/test_breaker.c pool/breaker.c pool/breaker.h
tests_unit_test_breaker_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/pool -DAP_ALLOC_TEST
tests_unit_test_breaker_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_breaker_LDADD = $(CMOCKA_LIBS)
