# The two commands a newcomer types (README):
#   make demo   builds everything and runs `ustcp demo`
#   make test   installs test dependencies (as root), builds, runs every test
#               (under ASan+UBSan, then plain); ends with both CTest summaries
SHELL := /bin/bash
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 600

.PHONY: all build demo test test-asan test-plain deps bench-deps fuzz fuzz-run clean bench install

all: build

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	./$(BUILD)/ustcp demo

deps:
	@bash scripts/install-test-deps.sh

$(ASAN_BUILD)/Makefile:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DUSTCP_SANITIZE=ON >/dev/null

test-asan: $(ASAN_BUILD)/Makefile
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	@echo "== test suite under ASan+UBSan =="
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  USTCP_SANITIZED=1 ctest --output-on-failure -j $(JOBS) 2>&1 | tee ctest.log; exit $${PIPESTATUS[0]}

test-plain: build
	@echo "== test suite =="
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) 2>&1 | tee ctest.log; exit $${PIPESTATUS[0]}

# The sanitizer run goes first so the closing line is the plain run's CTest summary;
# both must pass.
test: deps
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory test-plain
	@echo "ASan+UBSan: $$(grep -h 'tests passed' $(ASAN_BUILD)/ctest.log)"
	@echo "plain:      $$(grep -h 'tests passed' $(BUILD)/ctest.log)"

# libFuzzer targets (clang). `make fuzz-run FUZZ_SECONDS=600 FUZZ_TARGET=fuzz_wire`
$(FUZZ_BUILD)/Makefile:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUSTCP_LIBFUZZER=ON >/dev/null

fuzz: $(FUZZ_BUILD)/Makefile
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

FUZZ_TARGET ?= fuzz_wire
# fuzz_engine: libFuzzer's classic scheduler (-entropic=0) and programs of at
# most 512 bytes. With clang 14's entropic scheduler more than half the CPU went
# to its feature-frequency bookkeeping (perf: InputCorpus::UpdateFeatureFrequency),
# since one engine input touches ~37k features; a program starts from the
# prologue's connections in every state, so short programs reach every state.
# Override with FUZZ_FLAGS=... (the measured rates: README.md, "Fuzzing").
FUZZ_FLAGS_fuzz_engine = -entropic=0 -max_len=512
FUZZ_FLAGS ?= $(FUZZ_FLAGS_$(FUZZ_TARGET))
fuzz-run: fuzz
	mkdir -p $(FUZZ_BUILD)/corpus-$(FUZZ_TARGET)
	./$(FUZZ_BUILD)/fuzz/$(FUZZ_TARGET) $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  $(FUZZ_BUILD)/corpus-$(FUZZ_TARGET) fuzz/corpus/$(FUZZ_TARGET)

# Benchmarks against the Linux kernel in one run (as root: network namespaces);
# writes $(BUILD)/bench/last-run.md. See bench/RESULTS.md. As root it first
# installs what the benchmark needs (nginx, redis, ab, wrk, nftables, lwIP).
bench-deps:
	@bash scripts/install-test-deps.sh --bench

bench: bench-deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS) --target ustcp_bench kernel_bench kernel_scale ustcp-cli ustcp_preload
	BUILD=$(BUILD) bash bench/run.sh

# make install PREFIX=/usr/local: libustcp.a, libustcp.so (SONAME libustcp.so.1,
# only the public API exported), the headers, ustcp.pc, the ustcp command and
# its man pages. Then: cc prog.c $$(pkg-config --cflags --libs ustcp)
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
