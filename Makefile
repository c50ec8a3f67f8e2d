# The two commands a newcomer needs: `make run` and `make test`. Everything else is a detail.

BUILD_DIR ?= build
TEST_BUILD_DIR ?= build-test
JOBS ?= $(shell nproc)

.PHONY: run test deps test-deps build build-test bench clean

run: deps build
	./$(BUILD_DIR)/parley --config=config.ini

test: test-deps build-test
	cd $(TEST_BUILD_DIR) && ctest --output-on-failure --timeout 180

deps:
	./scripts/install-deps.sh

test-deps: deps
	./scripts/install-web-test-deps.sh

build:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release -DPARLEY_TESTS=OFF
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Tests run on a debug build with AddressSanitizer and UBSan.
build-test:
	cmake -S . -B $(TEST_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DPARLEY_SANITIZE=ON
	cmake --build $(TEST_BUILD_DIR) -j $(JOBS)

# Benchmarks (bench/README.md): builds Release into build-bench/ and runs them all against a
# fresh local server each (~6-9 minutes after the build). PARLEY_BIN= and PARLEY_CONFIG= measure
# another server build; ONLY= picks groups.
bench: deps
	bench/run.sh

clean:
	rm -rf $(BUILD_DIR) $(TEST_BUILD_DIR)
