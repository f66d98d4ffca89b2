# mergeforge build. `make demo` and `make test` build whatever is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := build

JDK := $(shell scripts/find-jdk)
ifeq ($(JDK),)
$(error no JDK >= 22 found: see the message above; set JAVA_HOME to a JDK 22+)
endif
export JAVA_HOME := $(JDK)
MVN := mvn -B -q
JAR := target/mergeforge.jar
SOURCES := $(shell find src -name '*.java' -o -name '*.yml' -o -name '*.json' 2>/dev/null) pom.xml

# ---- native CPU kernels (gcc); the build works without them, the native backend is then unavailable
NATIVE_LIB := target/native/libmergeops.so
NATIVE_SRC := $(wildcard native/src/*.c) $(wildcard native/include/*.h)
CC ?= gcc
NATIVE_CFLAGS := -O3 -std=c11 -fPIC -shared -pthread -ffp-contract=off -fno-fast-math -Wall -Wextra -Inative/include

# ---- CUDA kernels -> PTX (nvcc); the jar carries the PTX, a GPU is needed only at run time
NVCC := $(shell command -v nvcc 2>/dev/null)
PTX_DIR := target/classes/ptx
CU_SRC := $(wildcard kernels/*.cu)
PTX := $(patsubst kernels/%.cu,$(PTX_DIR)/%.ptx,$(CU_SRC))
NVCC_FLAGS := -ptx -O3 -arch=compute_80 -fmad=false -prec-div=true -prec-sqrt=true -ftz=false
# nvcc stamps its own PTX ISA (9.0 for nvcc 13), which only drivers as new load. The kernels need
# nothing past ISA 7.0 (the minimum for sm_80, CUDA 11.0+ drivers): the PTX is stamped 7.0 and
# ptxas must then assemble it for sm_80 and sm_90, or the build fails.
PTX_ISA := 7.0

.PHONY: build native ptx jar test demo bench bindings clean
build: $(JAR) native ptx bin/mergeforge bin/mergekit-yaml

$(JAR): $(SOURCES)
	$(MVN) -DskipTests package
	@touch $(JAR)

native: $(NATIVE_LIB)
$(NATIVE_LIB): $(NATIVE_SRC) $(wildcard native/src/*.h)
	@mkdir -p $(dir $@)
	@if [ -z "$(wildcard native/src/*.c)" ]; then echo "no native sources yet"; touch $@; \
	elif command -v $(CC) >/dev/null; then $(CC) $(NATIVE_CFLAGS) -o $@ $(wildcard native/src/*.c) -lm; \
	else echo "warning: $(CC) not found: the native backend will be unavailable"; fi

ptx: $(JAR)
ifneq ($(NVCC),)
ptx: $(PTX)
$(PTX_DIR)/%.ptx: kernels/%.cu $(wildcard kernels/*.cuh) $(JAR)
	@mkdir -p $(PTX_DIR)
	$(NVCC) $(NVCC_FLAGS) -o $@.tmp $<
	@sed 's/^\.version .*/.version $(PTX_ISA)/' $@.tmp > $@ && rm $@.tmp
	@for sm in 80 90; do $(NVCC) -cubin -arch=sm_$$sm -o $@.sm_$$sm.cubin $@ && rm $@.sm_$$sm.cubin || { rm -f $@; exit 1; }; done
	@cd target/classes && $(JDK)/bin/jar uf ../mergeforge.jar ptx/$(notdir $@)
else
	@echo "nvcc not found: CUDA kernels not built; the cuda backend will be unavailable"
endif

bin/mergeforge: scripts/launcher.sh Makefile
	@mkdir -p bin
	@sed -e 's#@JAVA_HOME@#$(JDK)#' scripts/launcher.sh > $@ && chmod +x $@

# mergekit-yaml drop-in: the same launcher with the subcommand put before the arguments
bin/mergekit-yaml: scripts/launcher.sh Makefile
	@mkdir -p bin
	@sed -e 's#@JAVA_HOME@#$(JDK)#' -e 's#mergeforge.jar" "\$$@"#mergeforge.jar" mergekit-yaml "$$@"#' scripts/launcher.sh > $@ && chmod +x $@

# Surefire's per-class lines and its closing "Tests run: N, Failures: ..." summary are kept.
test: build
	mvn -B --no-transfer-progress test 2>&1 | grep -v -E '^WARNING: .*(Unsafe|terminally deprecated|sun.misc)|^\[INFO\] (Download|---|Building|$$)' ; exit $${PIPESTATUS[0]}
	@# the Python package's tests (python/tests) against the launcher just built; skipped without a python3 >= 3.9
	@if python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then cd python && python3 -m unittest discover -s tests -t .; \
	else echo "python3 >= 3.9 not found: skipping the Python package's tests (python/tests)"; fi

demo: build
	bin/mergeforge demo

bench: build
	$(MVN) -f bench/pom.xml package -DskipTests && $(JDK)/bin/java --enable-native-access=ALL-UNNAMED -Dmergeforge.native.lib=$(CURDIR)/$(NATIVE_LIB) -jar bench/target/benchmarks.jar $(BENCH_ARGS)

# Regenerates the FFM bindings from native/include/mergeops.h where jextract is installed.
bindings:
	@if command -v jextract >/dev/null; then \
	  jextract --output src/generated/java --target-package dev.mergeforge.bindings --header-class-name MergeOps native/include/mergeops.h; \
	else echo "jextract not installed: the checked-in bindings in src/generated/java stay as they are"; fi

clean:
	rm -rf target bin bench/target
