# pixserve: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD := build
BUILD_ASAN := build-asan
DEMO_DIR ?= demo
PORT ?= 8080

.PHONY: all deps build build-asan demo test unit-test asan-test protocol-test clean

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

test: unit-test asan-test protocol-test

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
