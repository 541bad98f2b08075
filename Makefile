# pixserve: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD := build
BUILD_ASAN := build-asan
DEMO_DIR ?= demo
PORT ?= 8080

.PHONY: all deps build build-servers build-asan bench demo test unit-test asan-test protocol-test protocol-postgresql-test protocol-asan-test browser-test bench-http clean fuzz fuzz-build fuzz-adql fuzz-dali fuzz-http

all: build

deps:
	@bash scripts/install-deps.sh

# Ninja compiles a library's files as soon as their headers exist, without
# waiting for the libraries it links to be archived (Make's generator does
# wait), so both cores stay busy to the end; with each library compiled in
# unity batches (CMakeLists.txt) a tree builds in about half the time. A tree
# already configured keeps its generator.
generator = $(if $(wildcard $(1)/CMakeCache.txt),,-G Ninja)

# The plain tree is optimised with line tables only (-g1: backtraces, perf
# and gdb show functions, files and lines; -g would add types and locals for
# a third more compile time). The ASan tree keeps full -g; DEBUG_INFO=-g
# gives the plain tree full debug info too.
DEBUG_INFO ?= -g1
build: deps
	cmake $(call generator,$(BUILD)) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 $(DEBUG_INFO) -DNDEBUG" >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The servers the protocol and browser tests run (the plain tree without
# its unit tests, which `make test` runs in the ASan tree).
build-servers: deps
	cmake $(call generator,$(BUILD)) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 $(DEBUG_INFO) -DNDEBUG" >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target pixserve pixserve-toy-service

# Line tables (-g1) are what ASan and UBSan reports need (function, file,
# line of each frame); full -g (types, locals) costs a third more compile
# time: ASAN_DEBUG_INFO=-g gives it.
#
# The ASan tree is compiled by clang++ and linked by lld, the plain tree by
# g++: at -O0 with -fsanitize=address,undefined clang needs about 40% less
# CPU time per translation unit than g++ 12 (the whole tree: about 680 CPU
# seconds instead of 1100), and lld links a test executable in about 2.5 CPU
# seconds where ld.bfd takes 10 (some 20 executables). Both compilers still
# build the whole code with -Wall -Wextra -Werror, so each one's warnings
# are kept out. A tree configured with another compiler (an older checkout's
# g++ tree) is configured afresh here: CMake would drop its cache itself on
# the change, and with it the options below (the sanitizers among them).
ASAN_DEBUG_INFO ?= -g1
ASAN_CC ?= clang
ASAN_CXX ?= clang++
ASAN_LINKER ?= lld
build-asan: deps
	@cache=$(BUILD_ASAN)/CMakeCache.txt; want=$$(command -v $(ASAN_CXX)); \
	if [ -f $$cache ] && ! grep -qx "CMAKE_CXX_COMPILER:[A-Z]*=$$want" $$cache; then \
	  echo "build-asan: $(BUILD_ASAN) was configured with another compiler; configuring it afresh for $$want"; \
	  rm -rf $$cache $(BUILD_ASAN)/CMakeFiles; \
	fi
	cmake $$([ -f $(BUILD_ASAN)/CMakeCache.txt ] || echo -G Ninja) -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_C_COMPILER=$(ASAN_CC) -DCMAKE_CXX_COMPILER=$(ASAN_CXX) -DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=$(ASAN_LINKER) \
	  -DCMAKE_CXX_FLAGS_DEBUG="$(ASAN_DEBUG_INFO)" -DPIXSERVE_SANITIZE=ON -DPIXSERVE_BENCH=OFF >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)

# The benchmarks (build/bench/bench_*), not built by `make build`.
bench: build
	cmake --build $(BUILD) -j $(JOBS) --target bench

demo: build
	bash scripts/demo.sh $(BUILD)/pixserve $(DEMO_DIR) $(PORT)

# Each test case writes under <build>/test-tmp/<Suite>.<Test>.<pid>; cleared per run.
unit-test: build
	rm -rf $(BUILD)/test-tmp
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan-test: build-asan
	rm -rf $(BUILD_ASAN)/test-tmp
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

# The test files are shared out over $(JOBS) pytest workers (python3-pytest-xdist),
# a whole file to each, so a file's module fixtures (servers, surveys) are
# made once. Their surveys and repositories (about 15 GB) go to one folder in
# the build tree that each run empties first, instead of pytest's default,
# which keeps the last three runs under /tmp. The slowest dozen tests are
# listed at the end (--durations), where the suite's time goes.
#
# `make test` sets PROTOCOL_LEFT_TO_ASAN: the files protocol-asan-test runs
# against the sanitized server (PROTOCOL_ASAN) are left out here, since that
# run makes the same requests and checks the same answers, and catches
# memory errors besides; their run on the plain server was a fifth of this
# stage's time. `make protocol-test` alone runs every file.
PROTOCOL_ASAN := test_matrix.py test_virtual_diffims.py
protocol-test: build-servers
	PIXSERVE_BIN=$(abspath $(BUILD)/pixserve) /usr/bin/python3 -m pytest -q -n $(JOBS) --dist loadfile --durations=12 --basetemp=$(abspath $(BUILD)/pytest-tmp) \
	  $(if $(PROTOCOL_LEFT_TO_ASAN),$(addprefix --ignore=tests/protocol/,$(PROTOCOL_ASAN))) tests/protocol

# The protocol files that read and write the registry through every
# service, again on PostgreSQL registries: each repository a test creates
# gets a database of its own on a private server (tests/protocol/conftest.py).
PROTOCOL_POSTGRESQL := test_sia_datalink.py test_tap.py test_soda.py test_matrix.py test_mosaics.py test_job_service.py test_efd.py test_photometry.py test_caom2.py
protocol-postgresql-test: build-servers
	PIXSERVE_TEST_REGISTRY=postgresql PIXSERVE_BIN=$(abspath $(BUILD)/pixserve) /usr/bin/python3 -m pytest -q -n $(JOBS) --dist loadfile --durations=12 --basetemp=$(abspath $(BUILD)/pytest-tmp) $(addprefix tests/protocol/,$(PROTOCOL_POSTGRESQL))

# The endpoint x dataset x identity matrix again against the ASan/UBSan
# server: a memory error in any cell fails it (the test reads the server log);
# and the virtual products' re-creation, parts and faults (an ASan error
# stops the server, which fails them).
protocol-asan-test: build-asan
	PIXSERVE_BIN=$(abspath $(BUILD_ASAN)/pixserve) ASAN_OPTIONS=detect_leaks=0 /usr/bin/python3 -m pytest -q -n $(JOBS) --dist loadfile --durations=12 --basetemp=$(abspath $(BUILD_ASAN)/pytest-tmp) $(addprefix tests/protocol/,$(PROTOCOL_ASAN))

# Headless Chromium (Debian's) through playwright-core: Swagger UI at /docs/
# and the landing page; the OpenAPI document through the npm validator.
browser-test: build-servers
	PIXSERVE_BIN=$(abspath $(BUILD)/pixserve) node --test tests/browser/

# HTTP load test with wrk on loopback (not part of `make test`).
bench-http: build
	bash bench/http.sh $(BUILD)/pixserve

# Requests/s of 1, 2 and 3 replicas behind HAProxy on one PostgreSQL
# registry (not part of `make test`).
bench-replicas: build
	bash bench/replicas.sh $(BUILD)/pixserve

# The stages in order, with each one's time printed at the end. The unit
# tests run once, under ASan and UBSan (`make unit-test` runs them in the
# plain tree); the fuzzers run FUZZ_TIME_TEST seconds each. STAGE+STAGE
# runs stages at the same time (scripts/test-stages.sh): the PostgreSQL
# protocol tests keep about 1.3 of the 2 cores busy (they wait on the
# database servers), beside the fuzzers' build and runs (the third fuzzer
# runs alone on one core). Each fuzzer still runs its FUZZ_TIME_TEST
# seconds. The browser tests run alone: Aladin Lite's software WebGL beside
# the unit tests doubled both stages' time and timed out a screenshot.
FUZZ_TIME_TEST ?= 30
TEST_STAGES := deps build-servers build-asan asan-test browser-test protocol-test protocol-postgresql-test+fuzz protocol-asan-test
test:
	@FUZZ_TIME=$(FUZZ_TIME_TEST) PROTOCOL_LEFT_TO_ASAN=1 bash scripts/test-stages.sh $(TEST_STAGES)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)

# libFuzzer targets (clang): ADQL, DALI parameters, HTTP request parsing.
# `make fuzz` builds all three in build-fuzz (objects in build-fuzz/obj, each
# source compiled once and shared, e.g. src/sky by adql and dali; -j $(JOBS))
# and runs each for FUZZ_TIME seconds, printing "fuzz-NAME: N runs, C
# crashes"; `make fuzz-dali` etc. build and run one. New inputs go to
# build-fuzz/corpus-*, the seeds are in fuzz/corpus-*, crashing inputs to
# build-fuzz/artifacts-*.
FUZZ_DIR := build-fuzz
FUZZ_TIME ?= 60
FUZZ_OBJ := $(FUZZ_DIR)/obj
FUZZ_CXX ?= clang++
FUZZ_CXXFLAGS = -std=c++20 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
  -Wall -Wextra -Werror -Isrc $(shell pkg-config --cflags healpix_cxx fmt sqlite3)
FUZZ_LDFLAGS := -fsanitize=fuzzer,address,undefined
FUZZ_LIBS = $(shell pkg-config --libs healpix_cxx fmt sqlite3)
FUZZERS := adql dali http
fuzz_objs = $(patsubst %.cpp,$(FUZZ_OBJ)/%.o,$(1))

ADQL_FUZZ_SRC := fuzz/adql_fuzz.cpp $(wildcard src/adql/*.cpp) $(wildcard src/sky/*.cpp)
DALI_FUZZ_SRC := fuzz/dali_fuzz.cpp src/dali/params.cpp src/repo/astro_units.cpp $(wildcard src/sky/*.cpp)
HTTP_FUZZ_SRC := fuzz/http_fuzz.cpp $(addprefix src/http/,params.cpp headers.cpp request.cpp router.cpp response.cpp)

$(FUZZ_OBJ)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -MMD -MP -c $< -o $@
-include $(wildcard $(FUZZ_OBJ)/*/*.d $(FUZZ_OBJ)/*/*/*.d)

$(FUZZ_DIR)/adql_fuzz: $(call fuzz_objs,$(ADQL_FUZZ_SRC))
	$(FUZZ_CXX) $(FUZZ_LDFLAGS) $^ $(FUZZ_LIBS) -o $@
$(FUZZ_DIR)/dali_fuzz: $(call fuzz_objs,$(DALI_FUZZ_SRC))
	$(FUZZ_CXX) $(FUZZ_LDFLAGS) $^ $(FUZZ_LIBS) -o $@
$(FUZZ_DIR)/http_fuzz: $(call fuzz_objs,$(HTTP_FUZZ_SRC))
	$(FUZZ_CXX) $(FUZZ_LDFLAGS) $^ -o $@

fuzz-build: $(foreach f,$(FUZZERS),$(FUZZ_DIR)/$(f)_fuzz)

fuzz_run = bash scripts/run-fuzz.sh $(1) $(FUZZ_DIR)/$(1)_fuzz $(FUZZ_TIME) $(FUZZ_DIR)/corpus-$(1) fuzz/corpus-$(1)

# Builds in parallel, then runs the fuzzers $(JOBS) at a time, each for its
# full FUZZ_TIME on a core of its own; every fuzzer runs even when another
# crashed, and the status says whether any did.
fuzz:
	$(MAKE) --no-print-directory -j $(JOBS) fuzz-build
	@printf '%s\n' $(FUZZERS) | xargs -P $(JOBS) -I{} $(call fuzz_run,{})

fuzz-adql: $(FUZZ_DIR)/adql_fuzz
	@$(call fuzz_run,adql)
fuzz-dali: $(FUZZ_DIR)/dali_fuzz
	@$(call fuzz_run,dali)
fuzz-http: $(FUZZ_DIR)/http_fuzz
	@$(call fuzz_run,http)
