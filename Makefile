# mergeforge build. `make demo` and `make test` build whatever is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := build

# The JDK lookup runs only for goals that need Java (not for clean, native, ptx, bindings).
NO_JDK_GOALS := clean native ptx bindings
ifneq ($(filter-out $(NO_JDK_GOALS),$(or $(MAKECMDGOALS),$(.DEFAULT_GOAL))),)
JDK := $(shell scripts/find-jdk)
ifeq ($(JDK),)
$(error no JDK >= 22 found: see the message above; set JAVA_HOME to a JDK 22+)
endif
export JAVA_HOME := $(JDK)
endif
MVN := mvn -B -q
JAR := target/mergeforge.jar
SOURCES := $(shell find src -name '*.java' -o -name '*.yml' -o -name '*.json' 2>/dev/null) pom.xml

# ---- native CPU kernels (gcc); the build works without them, the native backend is then unavailable
NATIVE_LIB := target/native/libmergeops.so
NATIVE_SRC := $(wildcard native/src/*.c) $(wildcard native/include/*.h)
CC ?= gcc
NATIVE_CFLAGS := -O3 -std=c11 -fPIC -shared -pthread -ffp-contract=off -fno-fast-math -Wall -Wextra -Inative/include

# ---- CUDA kernels -> PTX (nvcc); the jar carries the PTX, a GPU is needed only at run time.
# The PTX goes to a generated-resources folder that Maven packages (pom.xml <resources>), so the
# jar is built after the PTX and never updated in place: a second `make build` runs nothing.
NVCC := $(shell command -v nvcc 2>/dev/null)
PTXAS := $(or $(shell command -v ptxas 2>/dev/null),$(dir $(NVCC))ptxas)
PTX_DIR := target/generated-resources/kernels/ptx
CU_SRC := $(wildcard kernels/*.cu)
PTX := $(if $(NVCC),$(patsubst kernels/%.cu,$(PTX_DIR)/%.ptx,$(CU_SRC)))
NVCC_FLAGS := -ptx -O3 -arch=compute_80 -fmad=false -prec-div=true -prec-sqrt=true -ftz=false
# The GPUs the PTX claims (docs/cuda.md): every shipped PTX must assemble with ptxas for each
# (CudaPtxTest checks the shipped files again).
PTX_SMS := 80 86 89 90 100 120
# The newest PTX ISA we ship: 7.0, the minimum for sm_80, loadable by CUDA 11.0+ drivers. nvcc 12.x
# and 13.x stamp their own ISA (8.x, 9.0), which only drivers as new load; the kernels need nothing
# past 7.0, so PTX stamped newer is restamped 7.0 (and ptxas then proves it assembles). Drop the
# restamp once the oldest driver we support loads what our nvcc stamps.
PTX_ISA := 7.0

.PHONY: build native ptx jar test demo bench bindings clean settled gpu-bundle
build: $(JAR) native ptx bin/mergeforge bin/mergekit-yaml

$(JAR): $(SOURCES) $(PTX)
	$(MVN) -DskipTests package
	@touch $(JAR)

native: $(NATIVE_LIB)
$(NATIVE_LIB): $(NATIVE_SRC) $(wildcard native/src/*.h)
	@mkdir -p $(dir $@)
	@if [ -z "$(wildcard native/src/*.c)" ]; then echo "no native sources yet"; touch $@; \
	elif command -v $(CC) >/dev/null; then $(CC) $(NATIVE_CFLAGS) -o $@ $(wildcard native/src/*.c) -lm; \
	else echo "warning: $(CC) not found: the native backend will be unavailable"; fi

ifneq ($(NVCC),)
ptx: $(PTX)
$(PTX_DIR)/%.ptx: kernels/%.cu $(wildcard kernels/*.cuh)
	@mkdir -p $(PTX_DIR)
	$(NVCC) $(NVCC_FLAGS) -o $@.tmp $<
	@isa=$$(sed -n 's/^\.version //p' $@.tmp); \
	if [ "$$(printf '%s\n' "$$isa" $(PTX_ISA) | sort -V | tail -1)" != $(PTX_ISA) ]; then \
	  sed 's/^\.version .*/.version $(PTX_ISA)/' $@.tmp > $@.stamped && mv $@.stamped $@.tmp; fi
	@for sm in $(PTX_SMS); do $(PTXAS) -arch=sm_$$sm -o /dev/null $@.tmp \
	  || { echo "$@: ptxas rejects it for sm_$$sm"; rm -f $@.tmp; exit 1; }; done
	@mv $@.tmp $@
else
ptx:
	@echo "nvcc not found: CUDA kernels not built; the cuda backend will be unavailable"
endif

bin/mergeforge: scripts/launcher.sh Makefile
	@mkdir -p bin
	@sed -e 's#@JAVA_HOME@#$(JDK)#' scripts/launcher.sh > $@ && chmod +x $@

# mergekit-yaml drop-in: the same launcher with the subcommand put before the arguments
bin/mergekit-yaml: scripts/launcher.sh Makefile
	@mkdir -p bin
	@sed -e 's#@JAVA_HOME@#$(JDK)#' -e 's#mergeforge.jar" "\$$@"#mergeforge.jar" mergekit-yaml "$$@"#' scripts/launcher.sh > $@ && chmod +x $@

# Proves the build settles: once built, no file target would be remade (no nvcc, gcc, mvn, jar).
SETTLE_TARGETS := $(JAR) $(PTX) bin/mergeforge bin/mergekit-yaml $(if $(shell command -v $(CC) 2>/dev/null),$(NATIVE_LIB))
settled: build
	@$(MAKE) --no-print-directory -q $(SETTLE_TARGETS) || { echo "make build does not settle; a second run would do:"; \
	  $(MAKE) --no-print-directory -n build; exit 1; }
	@echo "make build settled: a second run would remake nothing"

# What scripts/gpu-check needs on a GPU machine without Maven, network or JDK: one file of at most
# 64 MiB to carry with the repository (docs/cuda.md, "One command for a GPU machine").
gpu-bundle: target/gpu-bundle.tar.gz
target/gpu-bundle.tar.gz: $(JAR) $(NATIVE_LIB) scripts/gpu-bundle
	scripts/gpu-bundle

# Surefire's per-class lines and its closing "Tests run: N, Failures: ..." summary are kept.
test: settled
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
