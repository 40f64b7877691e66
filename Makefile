# sluice - the two set-up commands and friends.
#   make demo   install what is missing, build, run the main job on loopback
#   make test   install what is missing, build normal + ASan/UBSan, run ctest,
#               and compile the Release (-O3) build: every build type a
#               user may pick must compile warning-free
#   make bench  install what is missing, build, run the side-by-side suite
#               (sluice vs Postfix vs the raw ceiling; BENCH_ARGS="--quick")
#   make bench-engine  the spool/engine/campaign benchmarks of bench/run.sh
#   make fuzz   build, then run every libFuzzer target for FUZZ_SECONDS
#               (600) each, one after the other, in $(BUILD)/fuzz/NAME/
#               (FUZZ_TARGETS="fuzz_csv fuzz_addr" picks some); prints
#               executions, exec/s, corpus files and failing inputs
JOBS ?= 2
# tests at once: an integration test spends most of its time waiting for
# its peers and timers (about a quarter of a core), so four run side by
# side; a valgrind test keeps a core busy and takes two of the four slots
# (PROCESSORS 2 in tests/*/CMakeLists.txt); RUN_SERIAL tests run alone
TEST_JOBS ?= 4
CTEST = ctest --output-on-failure -j $(TEST_JOBS)
BUILD ?= build
ASAN ?= build-asan
RELEASE ?= build-release

BENCH_ARGS ?=
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?=

.PHONY: all deps build build-asan build-release demo test test-normal \
	test-asan bench bench-engine fuzz clean

all: build

deps:
	sh tools/deps.sh test

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan:
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
	cmake --build $(ASAN) -j $(JOBS)

build-release:
	cmake -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(RELEASE) -j $(JOBS)

demo: deps build
	sh bench/demo.sh $(BUILD)

test-normal: build
	cd $(BUILD) && $(CTEST)

test-asan: build-asan
	cd $(ASAN) && export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 && \
	  $(CTEST)

test: deps
	$(MAKE) build-release
	$(MAKE) test-normal
	$(MAKE) test-asan

bench:
	sh tools/deps.sh bench
	$(MAKE) build
	/usr/bin/python3 bench/suite.py --build $(BUILD) $(BENCH_ARGS)

bench-engine:
	sh tools/deps.sh bench
	$(MAKE) build
	sh bench/run.sh $(BUILD)

fuzz: deps
	$(MAKE) build
	sh tests/fuzz/fuzz.sh campaign $(BUILD)/fuzz-targets.txt $(BUILD)/fuzz \
	  $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) $(ASAN) $(RELEASE)
