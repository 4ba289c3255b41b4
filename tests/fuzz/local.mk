# SPDX-License-Identifier: BSD-2-Clause
# libFuzzer targets, built with clang (CC is gcc, so these are plain make
# rules, not automake programs) and run briefly by `make check`.
#
# To add a target fuzz_foo:
#   1. write tests/fuzz/fuzz_foo.c (LLVMFuzzerTestOneInput) and a few seed
#      inputs under tests/fuzz/corpus/fuzz_foo/; optionally
#      tests/fuzz/options/fuzz_foo.dict (a libFuzzer dictionary) and
#      tests/fuzz/options/fuzz_foo.flags (extra libFuzzer flags for run.sh,
#      e.g. -runs=N to fit the time budget: all targets together should
#      take 10-20 s);
#   2. add fuzz_foo to FUZZ_TARGETS below, name the code under test in
#      fuzz_foo_FUZZ_SRC (paths from the top of the source tree; they are
#      compiled into the target with coverage) and add the new files to
#      EXTRA_DIST.
# make check builds every target (check_DATA) and tests/fuzz/run.sh runs
# each one with a fixed seed for a fixed number of runs.  New corpus
# entries and crash artefacts go to tests/fuzz/{work,artifacts}/ in the
# BUILD tree; the seed corpus in the source tree is only read.
FUZZ_TARGETS = fuzz_scan fuzz_frame fuzz_config fuzz_bench_resp fuzz_bench_http \
	fuzz_ctl_jspan fuzz_pyconv fuzz_json_escape fuzz_rspec fuzz_keyfile fuzz_h1parse fuzz_brokercfg fuzz_jview
fuzz_scan_FUZZ_SRC = pool/path/scan.c
fuzz_frame_FUZZ_SRC = common/frame.c
fuzz_config_FUZZ_SRC = pool/core/config.c pool/core/brokercfg.c pool/redis/rspec.c pool/core/duration.c pool/core/jsontext.c common/alloc.c
fuzz_bench_resp_FUZZ_SRC = bench/resp.c pool/path/scan.c
fuzz_bench_http_FUZZ_SRC = bench/http.c
fuzz_ctl_jspan_FUZZ_SRC = ctl/jspan.c ctl/sline.c pool/path/scan.c
fuzz_pyconv_FUZZ_SRC = bridge/pyconv.c bridge/buf.c common/alloc.c pool/path/scan.c
fuzz_json_escape_FUZZ_SRC = common/json.c common/utf8.c pool/path/scan.c
fuzz_rspec_FUZZ_SRC = pool/redis/rspec.c
fuzz_brokercfg_FUZZ_SRC = pool/core/brokercfg.c pool/redis/rspec.c pool/broker/bentry.c common/alloc.c common/json.c common/utf8.c
fuzz_keyfile_FUZZ_SRC = pool/ops/keyfile.c common/alloc.c common/safefile.c
fuzz_h1parse_FUZZ_SRC = pool/path/h1parse.c common/alloc.c pool/llhttp/llhttp_api.c pool/llhttp/llhttp_http.c \
	pool/llhttp/llhttp_core.c
fuzz_jview_FUZZ_SRC = pool/path/jview.c pool/path/scan.c
# Extra flags and libraries for one target (fuzz_foo_FUZZ_LIBS).
fuzz_config_FUZZ_LIBS = $(CJSON_CFLAGS) $(CJSON_LIBS)
fuzz_keyfile_FUZZ_LIBS = $(CJSON_CFLAGS) $(CJSON_LIBS) -lm
# llhttp's sources (pool/llhttp/) are compiled in as they are: warnings off
# for this target (the gcc build checks h1parse.c's).
fuzz_h1parse_FUZZ_LIBS = $(LLHTTP_CFLAGS) -I$(LLHTTP_DIR) -w
fuzz_jview_FUZZ_LIBS = $(CJSON_CFLAGS) $(CJSON_LIBS)
fuzz_bench_resp_FUZZ_LIBS = -I$(top_srcdir)/bench
fuzz_bench_http_FUZZ_LIBS = -I$(top_srcdir)/bench
fuzz_ctl_jspan_FUZZ_LIBS = -I$(top_srcdir)/ctl $(CJSON_CFLAGS) $(CJSON_LIBS)
# libpython: the target starts an interpreter once (LLVMFuzzerInitialize).
# pool/path/sched.h would hide <sched.h> from Python.h: naming that room
# again with -idirafter makes clang drop the -I and search it after the
# system headers.
fuzz_pyconv_FUZZ_LIBS = -I$(top_srcdir)/bridge -idirafter $(top_srcdir)/pool/path \
	$(PYTHON_CFLAGS) $(PYTHON_LIBS) -lm

FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	$(AP_CFLAGS) -D_GNU_SOURCE -I$(top_srcdir)/include $(POOL_INC) \
	-I$(top_srcdir)/common
FUZZ_BINS = $(FUZZ_TARGETS:%=tests/fuzz/%)
# Every target is rebuilt when any code under test or header changes.
FUZZ_DEPS = $(foreach t,$(FUZZ_TARGETS),$($(t)_FUZZ_SRC:%=$(srcdir)/%)) \
	$(wildcard $(srcdir)/include/*.h $(srcdir)/pool/*/*.h) $(srcdir)/tests/fuzz/refjson.h

if HAVE_CLANG
check_DATA = $(FUZZ_BINS)
endif
CLEANFILES += $(FUZZ_BINS)

$(FUZZ_BINS): tests/fuzz/%: $(srcdir)/tests/fuzz/%.c $(FUZZ_DEPS)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $($*_FUZZ_SRC:%=$(srcdir)/%) $($*_FUZZ_LIBS)

TESTS += tests/fuzz/run.sh
EXTRA_DIST += tests/fuzz/run.sh tests/fuzz/corpus tests/fuzz/options tests/fuzz/refjson.h \
	tests/fuzz/fuzz_scan.c tests/fuzz/fuzz_frame.c tests/fuzz/fuzz_config.c \
	tests/fuzz/fuzz_bench_resp.c tests/fuzz/fuzz_bench_http.c \
	tests/fuzz/fuzz_ctl_jspan.c tests/fuzz/fuzz_pyconv.c \
	tests/fuzz/fuzz_json_escape.c tests/fuzz/fuzz_rspec.c tests/fuzz/fuzz_keyfile.c tests/fuzz/fuzz_h1parse.c \
	tests/fuzz/fuzz_brokercfg.c tests/fuzz/fuzz_jview.c
