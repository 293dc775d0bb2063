# The two commands of the README. Both install what they need first.
JOBS ?= 2
BUILD ?= build

.PHONY: deps build demo test test-release test-sanitize test-clang bench clean

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The out-of-the-box example: search, decode, retrain, evaluate, plot into
# results/ (about 15 minutes on 2 cores after the build).
RESULTS ?= results
demo: build
	$(BUILD)/segnas demo --out $(RESULTS)
	@echo "make demo: the results are in $(RESULTS)/ (start with $(RESULTS)/README.md; $(RESULTS)/commands.txt has the commands)"

# Optimised (gcc), sanitised (gcc ASan+UBSan) and clang test runs, as CI does.
test: deps test-release test-sanitize test-clang

test-release:
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build -j $(JOBS)
	cd build && ctest --output-on-failure -j $(JOBS)

test-sanitize:
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEGNAS_SANITIZE=ON >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

test-clang:
	cmake -S . -B build-clang -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang >/dev/null
	cmake --build build-clang -j $(JOBS)
	cd build-clang && ctest --output-on-failure -j $(JOBS)

bench: build
	@scripts/install-deps.sh --bench
	bench/run_ops.sh

clean:
	rm -rf build build-asan build-clang
