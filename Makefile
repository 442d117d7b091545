# The two commands a newcomer needs (README): `make demo` and `make test`.
# Both bootstrap the machine (Debian packages) and build what they need first.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all bootstrap configure build test test-unit test-lab demo bench bench-mtls bench-authz bench-waypoint asan format tidy clean

all: build

bootstrap:
	@bash scripts/bootstrap.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

configure: bootstrap $(BUILD_DIR)/build.ninja

build: configure
	ninja -C $(BUILD_DIR) -j $(JOBS)

# Every tier: unit, in-process integration, and the netns lab (root; skipped with a message
# otherwise). ctest prints the closing summary line.
test: build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 300

test-unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -LE lab

test-lab: build
	cd $(BUILD_DIR) && ctest --output-on-failure -L lab

demo: build
	ZMESH_BIN=$(abspath $(BUILD_DIR))/bin bash scripts/demo.sh

bench: build
	ZMESH_BIN=$(abspath $(BUILD_DIR))/bin bash scripts/bench.sh

# zmesh against stunnel and haproxy mutual-TLS proxy pairs on a two-node lab (issue 3).
bench-mtls: build
	ZMESH_BIN=$(abspath $(BUILD_DIR))/bin bash scripts/bench-mtls.sh $(BENCH_ARGS)

# Policy evaluation cost and connection rate with 1 000 policies (issue 4).
bench-authz: build
	ZMESH_BIN=$(abspath $(BUILD_DIR))/bin bash scripts/bench-authz.sh $(BENCH_ARGS)

# The waypoint (JWT + 10 L7 rules) against haproxy doing the same job, and no proxy (issue 5).
bench-waypoint: build
	ZMESH_BIN=$(abspath $(BUILD_DIR))/bin bash scripts/bench-waypoint.sh $(BENCH_ARGS)

# AddressSanitizer + UndefinedBehaviorSanitizer build and unit tests, in its own tree.
asan: bootstrap
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DZMESH_SANITIZE=ON
	ninja -C build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -LE lab

format:
	git ls-files '*.cc' '*.h' | grep -v '^bpf/include/uapi/' | xargs clang-format -i

tidy: configure
	git ls-files '*.cc' | grep -v '^tests/' | xargs clang-tidy -p $(BUILD_DIR) --quiet

clean:
	rm -rf $(BUILD_DIR) build-asan
