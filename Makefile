# The two commands a newcomer needs: `make run` and `make test`. Everything else is a detail.

BUILD_DIR ?= build
TEST_BUILD_DIR ?= build-test
FUZZ_BUILD_DIR ?= build-fuzz
# Seconds each fuzz target runs: `make fuzz` for a real search, `make test` to keep them working.
FUZZ_SECONDS ?= 60
TEST_FUZZ_SECONDS ?= 12
JOBS ?= $(shell nproc)

.PHONY: run test deps test-deps fuzz-deps build build-test build-fuzz fuzz bench clean

run: deps build
	./$(BUILD_DIR)/parley --config=config.ini

test: test-deps build-test build-fuzz
	cd $(TEST_BUILD_DIR) && ctest --output-on-failure --timeout 180
	FUZZ_BUILD_DIR=$(FUZZ_BUILD_DIR) tests/fuzz/run.sh $(TEST_FUZZ_SECONDS)

deps:
	./scripts/install-deps.sh

test-deps: deps
	./scripts/install-web-test-deps.sh
	./scripts/install-deploy-test-deps.sh
	./scripts/install-ops-deps.sh
	./scripts/install-cluster-test-deps.sh

# clang and libFuzzer; build-fuzz needs them, so `make test` and `make fuzz` both install them.
fuzz-deps: deps
	./scripts/install-fuzz-deps.sh

build:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release -DPARLEY_TESTS=OFF
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Tests run on a debug build with AddressSanitizer and UBSan.
build-test:
	cmake -S . -B $(TEST_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DPARLEY_SANITIZE=ON
	cmake --build $(TEST_BUILD_DIR) -j $(JOBS)

# libFuzzer targets (tests/fuzz/README.md), built with Debian's clang and only the sources they fuzz.
build-fuzz: fuzz-deps
	cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DPARLEY_FUZZ=ON
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS)

# Runs each fuzz target for FUZZ_SECONDS (TARGETS= picks some); fails on any crash it finds.
fuzz: build-fuzz
	FUZZ_BUILD_DIR=$(FUZZ_BUILD_DIR) tests/fuzz/run.sh $(FUZZ_SECONDS) $(TARGETS)

# Benchmarks (bench/README.md): builds Release into build-bench/ and runs them all against a
# fresh local server each (~6-9 minutes after the build). PARLEY_BIN= and PARLEY_CONFIG= measure
# another server build; ONLY= picks groups.
bench: deps
	bench/run.sh

clean:
	rm -rf $(BUILD_DIR) $(TEST_BUILD_DIR) $(FUZZ_BUILD_DIR)
