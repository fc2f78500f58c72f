# assay - see README.md. `make` builds build/assay, build/libassay.a and build/libassay.so;
# `make test` installs missing Debian packages (as root) and runs the whole suite.

PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= cc
PKG_CONFIG ?= pkg-config
PKGS := lua5.4 libuv libcjson libcurl sqlite3
# libcurl is compiled against but not linked: host/curl_api.c opens it at the first HTTP
# request, so that a start of the program does not map its 32 libraries (10 ms)
LINK_PKGS := $(filter-out libcurl,$(PKGS))
# libzip (inspect_ai's .eval zips) is compiled against but not linked either: `assay import`
# opens it (importer.c)
CLI_PKGS := libzip

VERSION := $(shell sed -n 's/^\#define ASSAY_VERSION_STRING "\(.*\)"/\1/p' host/assay.h)
SOVERSION := $(firstword $(subst ., ,$(VERSION)))

PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(LINK_PKGS))
# the command-line program alone reads inspect_ai's .eval zips
CLI_PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(CLI_PKGS))
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wpointer-arith -Wformat=2 -Wvla
OPT ?= -O2 -g
SANITIZE ?=
# -fno-semantic-interposition: libassay's exported functions are not replaced at run time,
# so calls inside the library may be inlined like static ones
CFLAGS += -std=c11 $(WARNINGS) $(OPT) $(SANITIZE) -D_XOPEN_SOURCE=700 -fPIC -fno-semantic-interposition $(PKG_CFLAGS) \
          -DASSAY_DATADIR='"$(PREFIX)/share/assay"'
LDLIBS += $(PKG_LIBS) -lm -lpthread
LDFLAGS += $(SANITIZE)
# Link-time optimisation of the library: calls between its files are inlined like static
# ones (-2% instructions and -4.6% wall time a trace, docs/performance.md). The objects are
# fat (machine code as well), and libassay.a is stripped of the LTO sections, so a program
# that links it needs neither LTO nor this compiler's version. The sanitizer and fuzzing
# builds go without.
LTO ?= -flto=auto -ffat-lto-objects

LIB_SRC := host/base/buf.c host/base/dlapi.c host/base/hash.c host/base/jscan.c host/base/jparse.c host/looper.c host/options.c host/host.c host/worker.c host/http.c host/curl_api.c \
           sandbox/record.c sandbox/sandbox.c sandbox/watch.c sandbox/env.c sandbox/load.c sandbox/task.c sandbox/bounded.c sandbox/pattern.c sandbox/sort.c sandbox/regex.c sandbox/pool.c sandbox/convert.c sandbox/lazy.c sandbox/text.c sandbox/trace.c sandbox/tset.c sandbox/net.c
CLI_SRC := $(addprefix host/cli/,cli.c cli_run.c cli_summary.c cli_test.c cli_journal.c cli_store.c cli_digest.c \
                                  cli_export.c cli_compare.c cli_report.c reader.c cli_import.c importer.c cli_lint.c cli_calibrate.c cli_gate.c cli_suite.c cli_pairwise.c \
                                  cli_merge.c) host/base/buf.c host/base/dlapi.c
TEST_UNITS := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/cli/%.o) $(BUILD)/cli/report_page.o
DEPS := $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

.PHONY: all test check-asan check-tsan demo deps bench bench-check clean install uninstall unit-tests fuzz fuzz-build fuzz-targets
all: $(BUILD)/assay $(BUILD)/libassay.a $(BUILD)/libassay.so $(BUILD)/assay.pc unit-tests

$(BUILD)/obj/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LTO) -MMD -MP -c $< -o $@

# The CLI is compiled apart from the library and links only to libassay's exported API;
# buf.c is a leaf helper it compiles for itself.
$(BUILD)/cli/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CLI_PKG_CFLAGS) -MMD -MP -c $< -o $@

# The HTML report's page, compiled in so that assay writes it without any file beside it.
$(BUILD)/cli/report_page.c: host/cli/report.html scripts/embed.awk
	@mkdir -p $(dir $@)
	awk -f scripts/embed.awk $< > $@

$(BUILD)/libassay.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
	$(if $(LTO),objcopy -R '.gnu.lto_*' -R '.gnu.debuglto_*' $@ && ranlib $@)

$(BUILD)/libassay.so.$(VERSION): $(LIB_OBJ) host/libassay.map
	$(CC) -shared -Wl,-soname,libassay.so.$(SOVERSION) -Wl,--version-script=host/libassay.map \
	    $(LDFLAGS) $(LTO) $(OPT) -o $@ $(LIB_OBJ) $(LDLIBS)

$(BUILD)/libassay.so: $(BUILD)/libassay.so.$(VERSION)
	ln -sf libassay.so.$(VERSION) $(BUILD)/libassay.so.$(SOVERSION)
	ln -sf libassay.so.$(VERSION) $@

$(BUILD)/assay: $(CLI_OBJ) $(BUILD)/libassay.so
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) -L$(BUILD) -lassay -Wl,-rpath,'$$ORIGIN' -Wl,-rpath,'$$ORIGIN/../lib' $(LDLIBS)

$(BUILD)/assay.pc: scripts/assay.pc.in host/assay.h $(BUILD)/prefix
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

# PREFIX is compiled into the binaries (where the shipped plugins are) and written into
# assay.pc: $(BUILD)/prefix holds the one they were made with, and changes, so that they are
# made again, only when PREFIX does (`make` then `make install PREFIX=/usr`).
$(BUILD)/prefix: FORCE
	@mkdir -p $(BUILD)
	@echo '$(PREFIX)' | cmp -s - $@ || echo '$(PREFIX)' > $@
$(BUILD)/obj/host/host.o $(BUILD)/cli/host/cli/cli.o: $(BUILD)/prefix
.PHONY: FORCE
FORCE:

# Unit tests link the static library and see its internals through the private headers.
unit-tests: $(TEST_UNITS:%=$(BUILD)/tests/%)
$(BUILD)/tests/%: tests/unit/%.c tests/fuzz/pattern_diff.h tests/fuzz/regex_diff.h tests/fuzz/jparse_diff.h $(BUILD)/libassay.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libassay.a $(LDLIBS) $(shell $(PKG_CONFIG) --libs cmocka)

# libFuzzer targets (tests/fuzz/): built with clang into build-fuzz by `make fuzz-build`.
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_MAKE := BUILD=build-fuzz CC=clang LTO= OPT='-O1 -g -fno-omit-frame-pointer' \
             SANITIZE='-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all'
FUZZ_SECONDS ?= 60
fuzz-targets: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)
$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/pattern_diff.h tests/fuzz/regex_diff.h tests/fuzz/jparse_diff.h $(BUILD)/libassay.a $(BUILD)/cli/host/cli/reader.o $(BUILD)/cli/host/cli/cli_digest.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/cli/host/cli/reader.o $(BUILD)/cli/host/cli/cli_digest.o $(BUILD)/libassay.a $(LDLIBS)

# ---------------------------------------------------------------- the README's commands
deps:
	@scripts/install-deps.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

# The three builds use every core (JOBS); the suite itself runs one test at a time.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
test:
	@scripts/install-deps.sh test
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build-asan LTO= OPT='-O1 -g -fno-omit-frame-pointer' \
	    SANITIZE='-fsanitize=address,undefined -fno-sanitize-recover=all' all
	@$(MAKE) --no-print-directory -j$(JOBS) $(FUZZ_MAKE) fuzz-targets
	@tests/run.sh

fuzz-build: deps
	@$(MAKE) --no-print-directory $(FUZZ_MAKE) fuzz-targets

# Each target for FUZZ_SECONDS, seeded from tests/fuzz/corpus/TARGET; new inputs go to
# build-fuzz/corpus/TARGET, crashes to build-fuzz/crashes/.
fuzz: fuzz-build
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The suite on the sanitized build only; the fuzz corpora it replays need their targets too.
check-asan: deps
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build-asan LTO= OPT='-O1 -g -fno-omit-frame-pointer' \
	    SANITIZE='-fsanitize=address,undefined -fno-sanitize-recover=all' all
	@$(MAKE) --no-print-directory -j$(JOBS) $(FUZZ_MAKE) fuzz-targets
	@ASSAY_BUILDS=build-asan tests/run.sh

# ThreadSanitizer needs clang and a build of its own; scripts/check_tsan.sh says what it runs.
check-tsan: deps
	@$(MAKE) --no-print-directory BUILD=build-tsan CC=clang LTO= OPT='-O1 -g' SANITIZE='-fsanitize=thread' \
	    build-tsan/assay build-tsan/tests/test_host
	@scripts/check_tsan.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@scripts/bench.sh
	@scripts/bench_llm.sh
	@scripts/bench_store.sh
	@scripts/bench_shard.sh

# Fails when one trace costs more than 10% more instructions than tests/bench/instructions
# records (callgrind counts, stable on noisy machines); part of `make test`.
bench-check: deps
	@$(MAKE) --no-print-directory all
	@scripts/bench_check.sh

install: $(BUILD)/assay $(BUILD)/libassay.a $(BUILD)/libassay.so $(BUILD)/assay.pc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/share/assay/plugins/lib \
	    $(DESTDIR)$(PREFIX)/share/assay/plugins/llm
	install -m 755 $(BUILD)/assay $(DESTDIR)$(PREFIX)/bin/assay
	install -m 644 $(BUILD)/libassay.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libassay.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libassay.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libassay.so.$(SOVERSION)
	ln -sf libassay.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libassay.so
	install -m 644 host/assay.h $(DESTDIR)$(PREFIX)/include/assay.h
	install -m 644 $(BUILD)/assay.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/assay.pc
	install -m 644 plugins/*.lua $(DESTDIR)$(PREFIX)/share/assay/plugins/
	install -m 644 plugins/lib/*.lua $(DESTDIR)$(PREFIX)/share/assay/plugins/lib/
	install -m 644 plugins/llm/*.lua $(DESTDIR)$(PREFIX)/share/assay/plugins/llm/

clean:
	rm -rf build build-asan build-fuzz build-tsan

-include $(DEPS)
