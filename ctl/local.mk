# SPDX-License-Identifier: BSD-2-Clause
# agentpoolctl: the command-line client of agentpoold (blocking poll(2)
# I/O, no libevent), and its tests.
bin_PROGRAMS += agentpoolctl
agentpoolctl_SOURCES = ctl/agentpoolctl.c \
	ctl/args.c ctl/args.h \
	ctl/ctl.c ctl/ctl.h \
	ctl/cmd_send.c ctl/bsend.c ctl/bsend.h pool/redis/rspec.c pool/redis/rspec.h ctl/cmd_stats.c ctl/cmd_pool.c ctl/cmd_dlq.c ctl/cmd_events.c ctl/cmd_session.c ctl/cmd_usage.c \
	ctl/top.c ctl/topview.c ctl/topview.h \
	ctl/conn.c ctl/conn.h \
	ctl/exchange.c ctl/exchange.h \
	ctl/jspan.c ctl/jspan.h \
	ctl/replay.c ctl/replay.h \
	ctl/reqline.c ctl/reqline.h \
	ctl/sline.c ctl/sline.h \
	ctl/render.c ctl/render.h \
	ctl/table.c ctl/table.h
agentpoolctl_CFLAGS = $(AM_CFLAGS) $(CJSON_CFLAGS) $(HIREDIS_CFLAGS) -iquote $(top_srcdir)/pool/redis
agentpoolctl_LDADD = common/libapcommon.a $(CJSON_LIBS) $(HIREDIS_LIBS) -lm

# test_ctl.py: against a fake server; test_ctl_real.py: against the real
# agentpoold (stats, health, history, reload, scale, dlq, every exit
# status), via harness.py; test_ctl_top.py: `top` under tmux, read back
# from the screen, and `top --once`; test_ctl_stream.py: send --stream and
# its Ctrl-C against a fake server that streams (it imports test_ctl.py);
# test_ctl_stream_real.py: that Ctrl-C against the real agentpoold, each model.
TESTS += tests/integration/test_ctl.py tests/integration/test_ctl_real.py \
	tests/integration/test_ctl_top.py tests/integration/test_ctl_stream.py \
	tests/integration/test_ctl_stream_real.py
EXTRA_DIST += tests/integration/test_ctl.py tests/integration/test_ctl_real.py \
	tests/integration/test_ctl_top.py tests/integration/test_ctl_stream.py \
	tests/integration/test_ctl_stream_real.py

# cmocka tests of the pure modules, with cmocka's allocator to catch leaks.
check_PROGRAMS += ctl/test_ctl_units
TESTS += ctl/test_ctl_units
ctl_test_ctl_units_SOURCES = ctl/test_ctl_units.c ctl/jspan.c ctl/reqline.c ctl/sline.c \
	ctl/render.c ctl/table.c ctl/topview.c common/alloc.c
ctl_test_ctl_units_CPPFLAGS = $(AM_CPPFLAGS) -DAP_ALLOC_TEST
ctl_test_ctl_units_CFLAGS = $(AM_CFLAGS) $(CJSON_CFLAGS) $(CMOCKA_CFLAGS)
ctl_test_ctl_units_LDADD = $(CJSON_LIBS) $(CMOCKA_LIBS) -lm
