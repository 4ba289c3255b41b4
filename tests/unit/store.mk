# SPDX-License-Identifier: BSD-2-Clause
# cmocka tests of the session store (pool/store/).
# test_sstore drives the public sstore.h API against real stores, one
# group per backend in its store_cases table (a real redis-server on a
# free port: Debian's redis-server, which ./bootstrap installs; the test
# fails when it is missing; and an SQLite database in a temp directory).  The store's own allocations go through
# cmocka's allocator (AP_ALLOC_TEST) so leaks fail it.
# test_rspec is the redis:// spec parser (rspec.c), with the
# exact error texts; test_rev is hiredis's event hooks (rev.c) against a
# fake Redis on a Unix socket.  test_walbuf is the SQLite VFS that gathers
# a commit's WAL writes into one (walbuf.c), on real files, with a counting
# VFS under it.
check_PROGRAMS += tests/unit/test_sstore tests/unit/test_rspec tests/unit/test_rev tests/unit/test_walbuf
TESTS += tests/unit/test_sstore tests/unit/test_rspec tests/unit/test_rev tests/unit/test_walbuf

tests_unit_test_sstore_SOURCES = tests/unit/test_sstore.c pool/store/sstore.c pool/store/sstore.h pool/store/sstore_be.h \
	pool/store/sstore_redis.c pool/redis/rspec.c pool/redis/rspec.h pool/redis/rlink.c pool/redis/rlink.h pool/redis/rev.c pool/redis/rev.h pool/store/sstore_sqlite.c \
	pool/store/walbuf.c pool/store/walbuf.h common/alloc.c
tests_unit_test_sstore_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC) -DAP_ALLOC_TEST
tests_unit_test_sstore_CFLAGS = $(AM_CFLAGS) -pthread $(CMOCKA_CFLAGS) $(LIBEVENT_CFLAGS) $(SQLITE_CFLAGS) $(HIREDIS_CFLAGS)
tests_unit_test_sstore_LDADD = common/libapcommon.a $(LIBEVENT_LIBS) $(SQLITE_LIBS) $(HIREDIS_LIBS) -lpthread $(CMOCKA_LIBS)

tests_unit_test_rspec_SOURCES = tests/unit/test_rspec.c pool/redis/rspec.c pool/redis/rspec.h
tests_unit_test_rspec_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC)
tests_unit_test_rspec_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_rspec_LDADD = $(CMOCKA_LIBS)

tests_unit_test_rev_SOURCES = tests/unit/test_rev.c pool/redis/rev.h common/alloc.c
tests_unit_test_rev_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC) -DAP_ALLOC_TEST
tests_unit_test_rev_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(LIBEVENT_CFLAGS) $(HIREDIS_CFLAGS)
tests_unit_test_rev_LDADD = $(LIBEVENT_LIBS) $(HIREDIS_LIBS) $(CMOCKA_LIBS)
tests_unit_test_walbuf_SOURCES = tests/unit/test_walbuf.c pool/store/walbuf.c pool/store/walbuf.h common/alloc.c
tests_unit_test_walbuf_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC) -DAP_ALLOC_TEST
tests_unit_test_walbuf_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_walbuf_LDADD = common/libapcommon.a $(SQLITE_LIBS) $(CMOCKA_LIBS)
