# pixserve: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD := build
BUILD_ASAN := build-asan
DEMO_DIR ?= demo
PORT ?= 8080

.PHONY: all deps build build-asan demo test unit-test asan-test protocol-test browser-test bench-http clean fuzz fuzz-adql

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DPIXSERVE_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)/pixserve $(DEMO_DIR) $(PORT)

unit-test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan-test: build-asan
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

protocol-test: build
	PIXSERVE_BIN=$(abspath $(BUILD)/pixserve) /usr/bin/python3 -m pytest -q tests/protocol

# Headless Chromium (Debian's) through playwright-core: Swagger UI at /docs/
# and the landing page; the OpenAPI document through the npm validator.
browser-test: build
	PIXSERVE_BIN=$(abspath $(BUILD)/pixserve) node --test tests/browser/

# HTTP load test with wrk on loopback (not part of `make test`).
bench-http: build
	bash bench/http.sh $(BUILD)/pixserve

test: unit-test asan-test protocol-test browser-test

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)

# libFuzzer targets (clang): `make fuzz` builds each in build-fuzz and runs it
# for FUZZ_TIME seconds; new inputs go to build-fuzz/corpus-*, the seeds are
# in fuzz/corpus-*.
FUZZ_DIR := build-fuzz
FUZZ_TIME ?= 60
FUZZ_FLAGS := -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Isrc

fuzz: fuzz-adql

fuzz-adql:
	mkdir -p $(FUZZ_DIR)/corpus-adql
	clang++ $(FUZZ_FLAGS) $$(pkg-config --cflags healpix_cxx fmt sqlite3) fuzz/adql_fuzz.cpp src/adql/*.cpp \
	  src/sky/*.cpp $$(pkg-config --libs healpix_cxx fmt sqlite3) -o $(FUZZ_DIR)/adql_fuzz
	cd $(FUZZ_DIR) && ./adql_fuzz -max_total_time=$(FUZZ_TIME) -max_len=4096 -timeout=10 \
	  corpus-adql ../fuzz/corpus-adql
