# cigl: `make` builds build/cigl and build/libcigl.a; `make test`, `make demo`, `make bench`.
# Dependencies are found with pkg-config; `make deps` installs what is missing when run as root
# and prints the exact apt-get line otherwise (every public target runs it first).

CC      ?= gcc
BUILD   ?= build
OPT     ?= -O2
PKGS    := openblas hdf5 zlib libpng libjpeg
DEBS    := build-essential pkg-config libopenblas-openmp-dev libhdf5-dev hdf5-tools zlib1g-dev \
           libpng-dev libjpeg62-turbo-dev openmpi-bin libopenmpi-dev dataset-fashion-mnist \
           python3-numpy python3-h5py libdnnl-dev
# OpenBLAS's OpenMP build, so BLAS and our own OpenMP loops share one thread pool: with the
# pthread build the idle OpenMP threads spin while OpenBLAS's threads wait for the cores
# (measured: 12x slower mlp training on 2 cores). The rpath makes the loader pick this
# variant whatever Debian's alternatives point to.
MULTIARCH  := $(shell gcc -print-multiarch 2>/dev/null)
BLAS_DIR   := /usr/lib/$(MULTIARCH)/openblas-openmp
PKG_CONFIG := PKG_CONFIG_PATH=$(BLAS_DIR)/pkgconfig pkg-config
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -Wl,-rpath,$(BLAS_DIR)
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -fopenmp -Iinclude $(PKG_CFLAGS)
# SANITIZE: extra compile and link flags for a checking build (make check sets it, in its own
# BUILD directory), e.g. SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer".
# Appended after the warning flags, so a checking build may relax them (-Wno-...).
SANITIZE ?=
CFLAGS  += $(SANITIZE)
LDLIBS  += $(PKG_LIBS) -fopenmp -lm
# ONEDNN=1 (default): dense convolutions may run on oneDNN (--conv-backend, src/nn/conv_onednn.c;
# Debian's libdnnl-dev has no pkg-config file). ONEDNN=0 builds without it: the own kernels only
# (make static does, since Debian ships no static libdnnl).
ONEDNN  ?= 1
ifeq ($(ONEDNN),1)
CFLAGS  += -DCIGL_ONEDNN
LDLIBS  += -ldnnl
endif
CFLAGS  += -DCIGL_GIT_COMMIT='"$(GIT_COMMIT)"' -DCIGL_BUILD_FLAGS='"$(CC) $(OPT) -fopenmp"'

LIB_SRC   := $(filter-out src/cli/main.c,$(wildcard src/*/*.c) $(wildcard datasets/*.c))
LIB_OBJ   := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC))
TEST_SRC  := $(wildcard tests/test_*.c)
TEST_BIN  := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_BIN := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
# Fuzz targets: tests/fuzz/fuzz_<name>.c each. REPLAY_BIN runs one on given files with any
# compiler (make test replays the corpus and past crashes); FUZZ_BIN is the libFuzzer build.
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
REPLAY_BIN := $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/fuzz/replay_%,$(FUZZ_SRC))
FUZZ_BIN  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

# MPI: with mpicc the cigl binary is linked against Open MPI (mpi/comm_mpi.c); without it the
# same binary runs single-process (mpi/comm_none.c). The library and unit tests never need MPI.
MPICC     := $(shell command -v mpicc 2>/dev/null)
ifneq ($(MPICC),)
COMM_OBJ  := $(BUILD)/obj/mpi/comm_mpi.o
LINK_CC   := $(MPICC)
else
COMM_OBJ  := $(BUILD)/obj/mpi/comm_none.o
LINK_CC   := $(CC)
endif

.PHONY: all deps test-deps bench-deps build test test-quick _test_quick demo bench reproduce clean _test _demo _bench \
        check check-deps _check \
        _check_bins _fuzz_bins

# Public targets check the dependencies first, then re-enter make so that pkg-config's answers
# are read after any installation.
all: deps
	@$(MAKE) --no-print-directory build
test: deps test-deps
	@$(MAKE) --no-print-directory _test
# The unit test binaries only (tests/test_*.c), under a minute; T=pattern filters both.
test-quick: deps
	@$(MAKE) --no-print-directory _test_quick
demo: deps
	@$(MAKE) --no-print-directory _demo
bench: deps bench-deps
	@$(MAKE) --no-print-directory _bench
# The evidence grid (jobs/results/PLAN.md): resumable, finished runs skipped. Other parts and
# parallelism: make reproduce REPRODUCE="--part breadth -P 2 -c 1".
REPRODUCE ?= --part reference
reproduce: deps
	@$(MAKE) --no-print-directory build
	@CIGL=$(abspath $(BUILD))/cigl jobs/reproduce.sh $(REPRODUCE)
check: deps check-deps
	@$(MAKE) --no-print-directory _check

deps:
	@missing=""; \
	for p in $(PKGS); do $(PKG_CONFIG) --exists $$p 2>/dev/null || missing="$$missing $$p"; done; \
	[ -f $(BLAS_DIR)/libopenblas.so ] || missing="$$missing openblas-openmp"; \
	command -v h5diff >/dev/null || missing="$$missing h5diff"; \
	command -v mpicc >/dev/null || missing="$$missing mpicc"; \
	[ -d /usr/share/datasets/fashion-mnist ] || missing="$$missing fashion-mnist"; \
	/usr/bin/python3 -c 'import numpy, h5py' 2>/dev/null || missing="$$missing python3-numpy/h5py"; \
	[ "$(ONEDNN)" != 1 ] || [ -f /usr/include/dnnl.h ] || missing="$$missing onednn"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "cigl: installing missing dependencies:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q $(DEBS) >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && apt-get install -y -q $(DEBS) >/dev/null; } || \
	    { echo "cigl: apt-get failed; run: apt-get install -y $(DEBS)"; exit 1; }; \
	  else \
	    echo "cigl: missing$$missing; run as root: apt-get install -y $(DEBS)"; exit 1; \
	  fi; \
	fi

build: $(BUILD)/cigl $(BUILD)/libcigl.a

# Every compile writes the headers it read to a .d file beside its output (-MMD; -MP adds an
# empty rule per header, so a deleted header does not stop the build), included below: editing
# any header, public or private, rebuilds exactly the objects and programs that include it.
# A program built from one source in one step names its .d file itself (DEPFLAGS).
DEPFLAGS = -MMD -MP -MF $@.d -MT $@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

# Objects that embed the git commit are rebuilt when HEAD moves.
COMMIT_STAMP := $(BUILD)/commit-$(GIT_COMMIT).stamp
$(COMMIT_STAMP):
	@mkdir -p $(BUILD) && rm -f $(BUILD)/commit-*.stamp && touch $@
$(BUILD)/obj/src/cli/main.o $(BUILD)/obj/src/run/provenance.o $(BUILD)/obj/src/run/train.o: $(COMMIT_STAMP)
# Likewise the oneDNN backend when ONEDNN changes.
ONEDNN_STAMP := $(BUILD)/onednn-$(ONEDNN).stamp
$(ONEDNN_STAMP):
	@mkdir -p $(BUILD) && rm -f $(BUILD)/onednn-*.stamp && touch $@
$(BUILD)/obj/src/nn/conv_onednn.o: $(ONEDNN_STAMP)

$(BUILD)/libcigl.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/obj/mpi/comm_mpi.o: mpi/comm_mpi.c
	@mkdir -p $(dir $@)
	$(MPICC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/cigl: $(BUILD)/obj/src/cli/main.o $(COMM_OBJ) $(BUILD)/libcigl.a
	$(LINK_CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libcigl.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -Itests $< $(BUILD)/libcigl.a -o $@ $(LDLIBS)

$(BUILD)/bench/%: tests/bench/%.c $(BUILD)/libcigl.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -Itests $< $(BUILD)/libcigl.a -o $@ $(LDLIBS)

# The replay driver is its own object: with two sources in one gcc call, -MF would keep only
# the second one's headers. (Not $^: it also holds the headers and sources the .d file adds.)
REPLAY_MAIN := $(BUILD)/obj/tests/fuzz/replay_main.o
$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c $(REPLAY_MAIN) $(BUILD)/libcigl.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) $< $(REPLAY_MAIN) $(BUILD)/libcigl.a -o $@ $(LDLIBS)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/libcigl.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -fsanitize=fuzzer $< $(BUILD)/libcigl.a -o $@ $(LDLIBS)

# `make static`: $(BUILD)/cigl-static for machines without OpenBLAS, HDF5 or the image libraries
# (jobs/bundle.sh ships it). Static: every library of PKGS (OpenBLAS's OpenMP build, HDF5 with
# szip/libaec, zlib, libpng, libjpeg) and libgfortran, libquadmath, libgomp, libgcc. Dynamic:
# Open MPI (Debian ships no libmpi.a, and its launcher and plugins are shared objects: the
# bundle carries them) and glibc (libc, libm: on every Linux, and a static libc cannot be mixed
# with a dynamic libmpi); it needs glibc >= 2.34. No -fopenmp at the link (it adds a dynamic
# libgomp). Built without oneDNN (ONEDNN=0; Debian has no libdnnl.a): --conv-backend auto runs
# the own kernels there.
STATIC_LIBS := $(filter-out -lm -lpthread -ldl,$(shell $(PKG_CONFIG) --static --libs $(PKGS) 2>/dev/null)) \
               -lsz -laec -lz -lgfortran -lquadmath -lgomp
.PHONY: static
static: deps
	@$(MAKE) --no-print-directory ONEDNN=0 $(BUILD)/cigl-static
$(BUILD)/cigl-static: $(BUILD)/obj/src/cli/main.o $(COMM_OBJ) $(BUILD)/libcigl.a
	$(LINK_CC) -static-libgcc -pthread $^ -o $@ -Wl,-Bstatic $(STATIC_LIBS) -Wl,-Bdynamic -lm -ldl
	@if readelf -d $@ | grep NEEDED | grep -E 'dnnl|openblas|hdf5|gfortran|gomp|libz|quadmath|sz|aec|png|jpeg'; then \
	  echo "cigl: $@ still needs the libraries above dynamically"; rm -f $@; exit 1; fi
	@echo "$@: needs only $$(readelf -d $@ | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')"

# A test that does not compile is reported as a failure by run.sh, not a stop of everything.
# The benchmark programs are built too: tests/t_bench_imagenet.sh runs them at tiny settings.
_test: build
	@$(MAKE) --no-print-directory -k $(TEST_BIN) $(REPLAY_BIN) $(BENCH_BIN) || true
	@BUILD=$(BUILD) T="$(T)" tests/run.sh

_test_quick: $(BUILD)/libcigl.a
	@$(MAKE) --no-print-directory -k $(TEST_BIN) || true
	@BUILD=$(BUILD) T="$(T)" QUICK=1 tests/run.sh

_demo: build
	@BUILD=$(BUILD) tests/demo.sh

_bench: build $(BENCH_BIN)
	@BUILD=$(BUILD) tests/bench/run.sh

# make check (README.md, "Reliability"): every test under AddressSanitizer + UBSan in
# $(ASAN_BUILD), a 10-step training run under valgrind, clang-tidy and cppcheck, and each fuzz
# target for FUZZ_SECONDS from its corpus. The sanitizer builds relax only warnings that their
# instrumentation makes spurious (format-truncation: GCC loses value ranges under UBSan;
# clang's optimisation remarks in the libFuzzer build).
CHECK_DEBS   := valgrind clang clang-tidy cppcheck libclang-rt-14-dev libomp-dev
ASAN_BUILD   ?= build-asan
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 30
ASAN_FLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -Wno-format-truncation
FUZZ_FLAGS   := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -Wno-error
# The multi-node tests' tools (SLURM, munge, ip): installed as root; otherwise those tests
# are counted as skipped with the reason (docs/testing.md).
TEST_DEBS := slurm-wlm munge iproute2
# $(call install_optional,WHAT,DEBS,SHELL-CHECKS,WITHOUT): SHELL-CHECKS append to $$missing;
# as root the DEBS are installed, otherwise (or when apt-get fails) WITHOUT is said and the
# target goes on.
define install_optional
	@missing=""; $(3) \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ]; then \
	  echo "cigl: installing $(1):$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(2) >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(2) >/dev/null; } || \
	  echo "cigl: apt-get install $(2) failed; $(strip $(4))"; \
	elif [ -n "$$missing" ]; then \
	  echo "cigl: no$$missing; $(strip $(4)) (as root: apt-get install -y $(2))"; \
	fi
endef
test-deps:
	$(call install_optional,the multi-node tests' tools,$(TEST_DEBS),\
	  for t in sbatch slurmctld slurmd munged ip; do command -v $$t >/dev/null || missing="$$missing $$t"; done;,\
	  the multi-node tests will be skipped)

# The PyTorch side of make bench (README.md): installed as root; without it the PyTorch
# columns read n/a and the cigl ones still run.
BENCH_DEBS := python3-torch python3-torchvision
bench-deps:
	$(call install_optional,the PyTorch reference of make bench,$(BENCH_DEBS),\
	  /usr/bin/python3 -c 'import torch' 2>/dev/null || missing="$$missing python3-torch";\
	  /usr/bin/python3 -c 'import torchvision' 2>/dev/null || missing="$$missing python3-torchvision";,\
	  the PyTorch columns will read n/a)

check-deps:
	@missing=""; \
	for t in valgrind clang clang-tidy cppcheck; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; return (int)n * 0; }' | \
	  clang -x c -fsanitize=fuzzer -fopenmp - -o /dev/null 2>/dev/null || missing="$$missing libFuzzer/libomp"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "cigl: installing the tools of make check:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(CHECK_DEBS) >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(CHECK_DEBS) >/dev/null; } || \
	    { echo "cigl: apt-get failed; run: apt-get install -y $(CHECK_DEBS)"; exit 1; }; \
	  else \
	    echo "cigl: make check needs$$missing; run as root: apt-get install -y $(CHECK_DEBS)"; exit 1; \
	  fi; \
	fi
_check_bins: build $(TEST_BIN) $(REPLAY_BIN)
_fuzz_bins: $(FUZZ_BIN)
_check: build
	@$(MAKE) --no-print-directory -k BUILD=$(ASAN_BUILD) OPT=-O1 SANITIZE="$(ASAN_FLAGS)" \
	  _check_bins >$(BUILD)/check-asan-build.log 2>&1 || true
	@$(MAKE) --no-print-directory -k BUILD=$(FUZZ_BUILD) CC=clang OPT=-O1 SANITIZE="$(FUZZ_FLAGS)" \
	  _fuzz_bins >$(BUILD)/check-fuzz-build.log 2>&1 || true
	@BUILD=$(BUILD) ASAN_BUILD=$(ASAN_BUILD) FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  tests/check/run.sh

clean:
	rm -rf $(BUILD)

# The header lists written by -MMD (none before the first build).
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
# An output built before dependency tracking (no .d beside it) cannot say which headers it read:
# rebuild it once rather than link a stale object whose structs no longer match.
UNTRACKED := $(foreach o,$(LIB_OBJ) $(COMM_OBJ) $(BUILD)/obj/src/cli/main.o $(TEST_BIN) \
               $(BENCH_BIN) $(REPLAY_BIN),$(if $(wildcard $(o)),$(if $(wildcard $(o).d),,$(o))))
$(UNTRACKED): FORCE
.PHONY: FORCE
FORCE:
