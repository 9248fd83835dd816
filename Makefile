# Bevan's front door. `make demo` and `make test` are the README's quick start:
# both install what is missing, build, then run. Safe to run twice.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
BEVAN_SHARED ?= $(abspath ../shared)
export BEVAN_SHARED

CMAKE_FLAGS = -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps build test unit-test asan-test fuzz fuzz-smoke check-generated format format-check demo bench clean

all: build

deps:
	./scripts/install-deps
	./scripts/npm-deps

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

unit-test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBEVAN_SANITIZE=ON -DBEVAN_BENCH=OFF

# Unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer.
asan-test: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

# libFuzzer targets (fuzz/, clang build in $(FUZZ_BUILD)): fuzz-smoke is the
# short run `make test` does; fuzz runs each target FUZZ_SECONDS.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 300

fuzz: deps
	FUZZ_BUILD=$(FUZZ_BUILD) JOBS=$(JOBS) ./scripts/fuzz --seconds $(FUZZ_SECONDS)

fuzz-smoke: deps
	FUZZ_BUILD=$(FUZZ_BUILD) JOBS=$(JOBS) ./scripts/fuzz --seconds 15

check-generated: deps
	./tests/check-generated-model.sh

format:
	./scripts/format

format-check: deps
	./scripts/format --check

test: build format-check check-generated unit-test asan-test fuzz-smoke
	@echo "make test: all checks passed"

# `bevan demo`: a 1,000-patient synthetic trust generated, imported and
# served at http://127.0.0.1:8080/fhir (scripts/demo; PORT, PATIENTS).
demo: build
	./scripts/demo

# Every benchmark (Release build in build-release), figures into
# bench/RESULTS.md; QUICK=1 for a few-minute run (bench/run-all).
bench: deps
	./bench/run-all

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
