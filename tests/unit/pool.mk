# SPDX-License-Identifier: BSD-2-Clause
# cmocka unit tests for the master's pure modules.  Each test compiles
# only the module under test (plus what it needs) so it never depends on
# agentpoold's objects.  Modules that allocate are built with
# AP_ALLOC_TEST: ap_malloc & co. become cmocka's test_malloc, which fails
# a test that leaks or writes outside a block; common/alloc.c is compiled
# the same way into those tests for ap_strdup/ap_strndup (automake names
# the per-target objects apart, so it is built once per test).
# test_session is a pool's session table (session.c), pure.
# test_idmap #includes pool/path/idmap.c to reach its hash function.
# test_config_listen is config.c's metricsListen syntax (config_parse_listen)
# and its metricsAllowRemote rule, apart from the rest of test_config.
# test_cfgtext is the config file's text helpers: durations (duration.c)
# and comments with line:column positions (jsontext.c).
check_PROGRAMS += tests/unit/test_queue tests/unit/test_dispatch tests/unit/test_idmap tests/unit/test_linein \
	tests/unit/test_msg tests/unit/test_reply tests/unit/test_config tests/unit/test_config_listen \
	tests/unit/test_cfgtext tests/unit/test_session tests/unit/test_h1parse
TESTS += tests/unit/test_queue tests/unit/test_dispatch tests/unit/test_idmap tests/unit/test_linein \
	tests/unit/test_msg tests/unit/test_reply tests/unit/test_config tests/unit/test_config_listen \
	tests/unit/test_cfgtext tests/unit/test_session tests/unit/test_h1parse

POOL_UNIT_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC)
POOL_UNIT_ALLOC_CPPFLAGS = $(POOL_UNIT_CPPFLAGS) -DAP_ALLOC_TEST

tests_unit_test_queue_SOURCES = tests/unit/test_queue.c pool/path/queue.c pool/path/queue.h
tests_unit_test_queue_CPPFLAGS = $(POOL_UNIT_CPPFLAGS)
tests_unit_test_queue_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_queue_LDADD = $(CMOCKA_LIBS)

tests_unit_test_session_SOURCES = tests/unit/test_session.c pool/path/session.c pool/path/session.h pool/path/keytab.c pool/path/queue.c \
	pool/path/queue.h common/alloc.c
tests_unit_test_session_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_session_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_session_LDADD = $(CMOCKA_LIBS)

tests_unit_test_dispatch_SOURCES = tests/unit/test_dispatch.c pool/path/dispatch.c pool/path/dispatch.h
tests_unit_test_dispatch_CPPFLAGS = $(POOL_UNIT_CPPFLAGS)
tests_unit_test_dispatch_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_dispatch_LDADD = $(CMOCKA_LIBS)

tests_unit_test_idmap_SOURCES = tests/unit/test_idmap.c pool/path/idmap.h
EXTRA_tests_unit_test_idmap_SOURCES = pool/path/idmap.c
tests_unit_test_idmap_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_idmap_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_idmap_LDADD = $(CMOCKA_LIBS)

# test_h1parse is the HTTP front door's request parser over llhttp.
tests_unit_test_h1parse_SOURCES = tests/unit/test_h1parse.c pool/path/h1parse.c pool/path/h1parse.h
tests_unit_test_h1parse_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS) $(LLHTTP_CFLAGS)
tests_unit_test_h1parse_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_h1parse_LDADD = pool/libllhttp.a $(CMOCKA_LIBS)

tests_unit_test_linein_SOURCES = tests/unit/test_linein.c pool/path/linein.c pool/path/linein.h
tests_unit_test_linein_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_linein_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_linein_LDADD = $(CMOCKA_LIBS)

tests_unit_test_msg_SOURCES = tests/unit/test_msg.c pool/path/msg.c pool/path/msg.h pool/path/queue.c pool/path/queue.h \
	common/alloc.c
tests_unit_test_msg_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_msg_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_msg_LDADD = $(CMOCKA_LIBS)

tests_unit_test_reply_SOURCES = tests/unit/test_reply.c pool/path/reply.c pool/path/reply.h
tests_unit_test_reply_CPPFLAGS = $(POOL_UNIT_CPPFLAGS)
tests_unit_test_reply_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(LIBEVENT_CFLAGS) $(CJSON_CFLAGS)
tests_unit_test_reply_LDADD = common/libapcommon.a $(LIBEVENT_LIBS) $(CJSON_LIBS) $(CMOCKA_LIBS)

tests_unit_test_config_SOURCES = tests/unit/test_config.c pool/core/config.c pool/core/config.h pool/core/brokercfg.c pool/redis/rspec.c pool/core/duration.c pool/core/jsontext.c common/alloc.c
tests_unit_test_config_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_config_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CJSON_CFLAGS)
tests_unit_test_config_LDADD = common/libapcommon.a $(CJSON_LIBS) $(CMOCKA_LIBS)

tests_unit_test_config_listen_SOURCES = tests/unit/test_config_listen.c pool/core/config.c pool/core/config.h pool/core/brokercfg.c pool/redis/rspec.c pool/core/duration.c pool/core/jsontext.c common/alloc.c
tests_unit_test_config_listen_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_config_listen_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CJSON_CFLAGS)
tests_unit_test_config_listen_LDADD = common/libapcommon.a $(CJSON_LIBS) $(CMOCKA_LIBS)

tests_unit_test_cfgtext_SOURCES = tests/unit/test_cfgtext.c pool/core/duration.c pool/core/duration.h \
	pool/core/jsontext.c pool/core/jsontext.h common/alloc.c
tests_unit_test_cfgtext_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_cfgtext_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CJSON_CFLAGS)
tests_unit_test_cfgtext_LDADD = common/libapcommon.a $(CJSON_LIBS) $(CMOCKA_LIBS)
