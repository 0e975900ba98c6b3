# minivmm build. Everything goes to build/.
#   make          build/minivmm, build/minivmm-ctl, build/minivmm-memd, build/guest.img
#   make run      install missing Debian packages, build, boot the demo guest
#   make test     install missing packages, build (also under ASan/UBSan), run every test
#   make bench    install missing packages, build, print benchmark figures
#   make overcommit  minivmm-memd policies side by side under a memory cgroup (tables, plots)
#   make check-deps  check that no #include crosses the layering (also run by make test)
#   make tsan     ThreadSanitizer build in build/tsan/: the library, the threaded
#                 unit tests and minivmm (make test builds and runs it too)
#   make fuzz     libFuzzer targets (clang, ASan + UBSan) in build/fuzz/, each run
#                 for FUZZ_SECONDS (default 60) on its corpus; a summary line each;
#                 FUZZ_TARGETS="fuzz_virtio fuzz_qmp" runs only those

CC       ?= gcc
B        := build
PKGS     := libzstd libxxhash jansson libxml-2.0 zlib liblzma liblz4 lzo2 libseccomp
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CFLAGS   ?= -O2 -g
# Includes are spelled from the repository root ("vmm/lib/log.h", "mm/mm.h"),
# so scripts/check-deps.sh can check the layering with grep.
HOSTFLAGS = $(CFLAGS) $(WARN) -std=gnu11 -D_GNU_SOURCE -pthread -MMD -MP -I. \
            $(shell pkg-config --cflags $(PKGS) libvirt 2>/dev/null)
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lbz2 -pthread
# libvirt only where minivmm-memd's code is linked (its libvirt backend)
MEMDLIBS := $(shell pkg-config --libs libvirt 2>/dev/null)
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
            -DMINIVMM_TEST_HOOKS
# ThreadSanitizer cannot share a binary with ASan, hence its own tree. Its
# runtime wants the classic 47-bit layout with at most 28 bits of mmap
# randomness: this kernel has vm.mmap_rnd_bits = 28 and gcc 12's TSan runs
# as is (measured 2026-12; with 32 bits it aborts with "unexpected memory
# mapping" and needs `setarch -R` or sysctl vm.mmap_rnd_bits=28).
# -Wno-tsan: TSan does not model atomic_thread_fence; the one fence
# (virtqueue.c) orders the used index against the guest's flags, an
# ordering with another CPU running the guest that TSan cannot see anyway.
TSANFLAGS := -O1 -g -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan
# Coverage-guided fuzzing: Debian's clang-14 and its libFuzzer runtime
# (libclang-rt-14-dev). The library is built with fuzzer-no-link (coverage
# only); the targets in tests/fuzz/fuzz_*.c link libFuzzer's main.
FUZZCC    ?= clang-14
FUZZFLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined
FUZZ_SECONDS ?= 60

# Every .c in vmm/ (and its subsystem folders), mm/ and balloon/ is VMM
# code; main.c and vmm/ctl/ are programs. balloon/memd/ is minivmm-memd:
# its own library (the unit tests link it too) and its main.c.
CTLSRC   := $(wildcard vmm/ctl/*.c)
MEMDSRC  := $(filter-out balloon/memd/main.c,$(wildcard balloon/memd/*.c))
LIBSRC   := $(filter-out vmm/main.c $(CTLSRC),$(wildcard vmm/*.c vmm/*/*.c mm/*.c balloon/*.c))
LIBOBJ   := $(LIBSRC:%.c=$(B)/obj/%.o)
ASANOBJ  := $(LIBSRC:%.c=$(B)/asan/obj/%.o)
MEMDOBJ  := $(MEMDSRC:%.c=$(B)/obj/%.o)
ASANMEMDOBJ := $(MEMDSRC:%.c=$(B)/asan/obj/%.o)
TSANOBJ  := $(LIBSRC:%.c=$(B)/tsan/obj/%.o)
FUZZOBJ  := $(LIBSRC:%.c=$(B)/fuzz/obj/%.o) $(MEMDSRC:%.c=$(B)/fuzz/obj/%.o)

# The guest: a freestanding x86-64 kernel (host gcc, no libc).
GUESTSRC := $(wildcard guest-driver/*.c guest-driver/*.S)
GUESTOBJ := $(patsubst %,$(B)/guest/%.o,$(GUESTSRC))
GUESTFLAGS := -O2 -g -std=gnu11 $(WARN) -ffreestanding -fno-builtin -nostdlib -fno-pic -fno-pie \
              -mno-red-zone -mgeneral-regs-only -fno-stack-protector -fcf-protection=none \
              -fno-asynchronous-unwind-tables -mcmodel=small -MMD -MP -I.

UNITSRC  := $(wildcard tests/unit/test_*.c)
UNITBIN  := $(UNITSRC:tests/unit/%.c=$(B)/tests/%)
# The unit tests that run threads (event loop, QMP server, the manager's
# fault and scanner threads, the store, the device worker) also run under TSan.
TSANUNIT := $(patsubst %,$(B)/tsan/tests/test_%,loop qmp pagestate store balloon)
TOOLSRC  := $(wildcard tests/tools/*.c)
TOOLBIN  := $(TOOLSRC:tests/tools/%.c=$(B)/tests/%)
# Fuzz targets: tests/fuzz/fuzz_*.c, each with LLVMFuzzerTestOneInput; the
# fixtures they share (a VM without KVM) are in tests/fuzz/common.c.
FUZZSRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZBIN  := $(FUZZSRC:tests/fuzz/%.c=$(B)/fuzz/%)

.PHONY: all deps run test bench overcommit soak asan tsan fuzz fuzz-build clean install check-deps
all: $(B)/minivmm $(B)/minivmm-ctl $(B)/minivmm-memd $(B)/guest.img

deps:
	@scripts/deps.sh

check-deps:
	@scripts/check-deps.sh

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(HOSTFLAGS) -c $< -o $@
$(B)/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(HOSTFLAGS) $(SANFLAGS) -c $< -o $@

$(B)/libminivmm.a: $(LIBOBJ)
	@rm -f $@; ar rcs $@ $^
$(B)/asan/libminivmm.a: $(ASANOBJ)
	@rm -f $@; ar rcs $@ $^
$(B)/libmemd.a: $(MEMDOBJ)
	@rm -f $@; ar rcs $@ $^
$(B)/asan/libmemd.a: $(ASANMEMDOBJ)
	@rm -f $@; ar rcs $@ $^
$(B)/tsan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(HOSTFLAGS) $(TSANFLAGS) -c $< -o $@
$(B)/tsan/libminivmm.a: $(TSANOBJ)
	@rm -f $@; ar rcs $@ $^
$(B)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZCC) $(HOSTFLAGS) $(FUZZFLAGS) -c $< -o $@
$(B)/fuzz/libminivmm.a: $(FUZZOBJ)
	@rm -f $@; ar rcs $@ $^

$(B)/minivmm: $(B)/obj/vmm/main.o $(B)/libminivmm.a
	$(CC) $(HOSTFLAGS) -o $@ $^ $(LDLIBS)
$(B)/minivmm-ctl: $(CTLSRC:%.c=$(B)/obj/%.o) $(B)/libminivmm.a
	$(CC) $(HOSTFLAGS) -o $@ $^ $(LDLIBS)
$(B)/minivmm-memd: $(B)/obj/balloon/memd/main.o $(B)/libmemd.a $(B)/libminivmm.a
	$(CC) $(HOSTFLAGS) -o $@ $^ $(LDLIBS) $(MEMDLIBS)
$(B)/asan/minivmm: $(B)/asan/obj/vmm/main.o $(B)/asan/libminivmm.a
	$(CC) $(HOSTFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS)
$(B)/asan/minivmm-memd: $(B)/asan/obj/balloon/memd/main.o $(B)/asan/libmemd.a $(B)/asan/libminivmm.a
	$(CC) $(HOSTFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS) $(MEMDLIBS)
$(B)/tsan/minivmm: $(B)/tsan/obj/vmm/main.o $(B)/tsan/libminivmm.a
	$(CC) $(HOSTFLAGS) $(TSANFLAGS) -o $@ $^ $(LDLIBS)

$(B)/guest/%.c.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(GUESTFLAGS) -c $< -o $@
$(B)/guest/%.S.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(GUESTFLAGS) -c $< -o $@
$(B)/guest.img: $(GUESTOBJ) guest-driver/guest.ld
	@scripts/check-guest-user.sh $(filter $(B)/guest/guest-driver/user_%,$(GUESTOBJ))
	$(CC) $(GUESTFLAGS) -static -Wl,--build-id=none -Wl,-z,noexecstack -Wl,-T,guest-driver/guest.ld -o $@ $(GUESTOBJ) -lgcc

# Unit tests (cmocka) link the sanitized libraries.
$(B)/tests/test_%: tests/unit/test_%.c $(B)/asan/libmemd.a $(B)/asan/libminivmm.a
	@mkdir -p $(dir $@)
	$(CC) $(HOSTFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS) $(MEMDLIBS) $$(pkg-config --libs cmocka)
$(B)/tsan/tests/test_%: tests/unit/test_%.c $(B)/tsan/libminivmm.a
	@mkdir -p $(dir $@)
	$(CC) $(HOSTFLAGS) $(TSANFLAGS) -o $@ $^ $(LDLIBS) $$(pkg-config --libs cmocka)
# Host-side helper programs used by the integration tests and benchmarks.
$(B)/tests/%: tests/tools/%.c $(B)/libminivmm.a
	@mkdir -p $(dir $@)
	$(CC) $(HOSTFLAGS) -o $@ $< $(B)/libminivmm.a $(LDLIBS)

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(B)/fuzz/obj/tests/fuzz/common.o $(B)/fuzz/libminivmm.a
	@mkdir -p $(dir $@)
	$(FUZZCC) $(HOSTFLAGS) $(FUZZFLAGS) -fsanitize=fuzzer -o $@ $(filter %.c %.o %.a,$^) $(LDLIBS) $(MEMDLIBS)

asan: $(B)/asan/minivmm $(B)/asan/minivmm-memd $(UNITBIN)
tsan: $(B)/tsan/minivmm $(TSANUNIT)
# the shared fixture object is kept (make would delete it as an intermediate)
.SECONDARY: $(B)/fuzz/obj/tests/fuzz/common.o
fuzz-build: $(FUZZBIN)

run: deps
	@$(MAKE) --no-print-directory all
	./$(B)/minivmm --mem 256M --stats $(B)/guest.img

test: deps
	@$(MAKE) --no-print-directory all asan tsan fuzz-build $(TOOLBIN)
	python3 tests/run.py

# Every target in turn for FUZZ_SECONDS on its corpus (new inputs go to
# build/fuzz/work/, the checked-in corpus is only read); one summary line each.
FUZZ_TARGETS ?= $(notdir $(FUZZBIN))
FUZZ_UNKNOWN := $(filter-out $(notdir $(FUZZBIN)),$(FUZZ_TARGETS))
fuzz: deps
	@if [ -n "$(strip $(FUZZ_UNKNOWN))" ]; then \
		echo "make fuzz: no fuzz target '$(strip $(FUZZ_UNKNOWN))' (FUZZ_TARGETS takes any of: $(notdir $(FUZZBIN)))" >&2; \
		exit 2; fi
	@$(MAKE) --no-print-directory $(addprefix $(B)/fuzz/,$(FUZZ_TARGETS))
	tests/fuzz/run.sh $(FUZZ_SECONDS) $(addprefix $(B)/fuzz/,$(FUZZ_TARGETS))

bench: deps
	@$(MAKE) --no-print-directory all $(TOOLBIN)
	python3 bench/bench.py

# Policies side by side under a real memory cgroup; OVERCOMMIT_ARGS="--quick" for a short run.
# Debian's python3, which python3-matplotlib (scripts/deps.sh) installs into.
overcommit: deps
	@$(MAKE) --no-print-directory all
	/usr/bin/python3 bench/overcommit.py $(OVERCOMMIT_ARGS)

# Everything that moves guest memory at once, every byte verified; SOAK_SECONDS=600 by default.
soak: deps
	@$(MAKE) --no-print-directory all
	python3 bench/soak.py

PREFIX ?= /usr/local
install: all
	install -D -m 0755 $(B)/minivmm $(DESTDIR)$(PREFIX)/bin/minivmm
	install -D -m 0755 $(B)/minivmm-ctl $(DESTDIR)$(PREFIX)/bin/minivmm-ctl
	install -D -m 0755 $(B)/minivmm-memd $(DESTDIR)$(PREFIX)/bin/minivmm-memd
	install -D -m 0644 $(B)/guest.img $(DESTDIR)$(PREFIX)/share/minivmm/guest.img
	install -D -m 0644 vmm/minivmm.1 $(DESTDIR)$(PREFIX)/share/man/man1/minivmm.1
	install -D -m 0644 vmm/ctl/minivmm-ctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/minivmm-ctl.1
	install -D -m 0644 balloon/memd/minivmm-memd.8 $(DESTDIR)$(PREFIX)/share/man/man8/minivmm-memd.8

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
