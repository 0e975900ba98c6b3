# minivmm build. Everything goes to build/.
#   make          build/minivmm, build/minivmm-ctl, build/guest.img
#   make run      install missing Debian packages, build, boot the demo guest
#   make test     install missing packages, build (also under ASan/UBSan), run every test
#   make bench    install missing packages, build, print benchmark figures
#   make check-deps  check that no #include crosses the layering (also run by make test)

CC       ?= gcc
B        := build
PKGS     := libzstd libxxhash jansson zlib liblzma liblz4 lzo2
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CFLAGS   ?= -O2 -g
# Includes are spelled from the repository root ("vmm/lib/log.h", "mm/mm.h"),
# so scripts/check-deps.sh can check the layering with grep.
HOSTFLAGS = $(CFLAGS) $(WARN) -std=gnu11 -D_GNU_SOURCE -pthread -MMD -MP -I. \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lbz2 -pthread
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Every .c in vmm/ (and its subsystem folders), mm/ and balloon/ is VMM
# code; main.c and ctl/minivmm-ctl.c are programs.
PROGS    := vmm/main.c vmm/ctl/minivmm-ctl.c
LIBSRC   := $(filter-out $(PROGS),$(wildcard vmm/*.c vmm/*/*.c mm/*.c balloon/*.c balloon/memd/*.c))
LIBOBJ   := $(LIBSRC:%.c=$(B)/obj/%.o)
ASANOBJ  := $(LIBSRC:%.c=$(B)/asan/obj/%.o)

# The guest: a freestanding x86-64 kernel (host gcc, no libc).
GUESTSRC := $(wildcard guest-driver/*.c guest-driver/*.S)
GUESTOBJ := $(patsubst %,$(B)/guest/%.o,$(GUESTSRC))
GUESTFLAGS := -O2 -g -std=gnu11 $(WARN) -ffreestanding -fno-builtin -nostdlib -fno-pic -fno-pie \
              -mno-red-zone -mgeneral-regs-only -fno-stack-protector -fcf-protection=none \
              -fno-asynchronous-unwind-tables -mcmodel=small -MMD -MP -I.

UNITSRC  := $(wildcard tests/unit/test_*.c)
UNITBIN  := $(UNITSRC:tests/unit/%.c=$(B)/tests/%)
TOOLSRC  := $(wildcard tests/tools/*.c)
TOOLBIN  := $(TOOLSRC:tests/tools/%.c=$(B)/tests/%)

.PHONY: all deps run test bench asan clean install check-deps
all: $(B)/minivmm $(B)/minivmm-ctl $(B)/guest.img

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

# whole-archive: QMP commands register themselves from constructors
WHOLE = -Wl,--whole-archive $(1) -Wl,--no-whole-archive
$(B)/minivmm: $(B)/obj/vmm/main.o $(B)/libminivmm.a
	$(CC) $(HOSTFLAGS) -o $@ $< $(call WHOLE,$(B)/libminivmm.a) $(LDLIBS)
$(B)/minivmm-ctl: $(B)/obj/vmm/ctl/minivmm-ctl.o $(B)/libminivmm.a
	$(CC) $(HOSTFLAGS) -o $@ $^ $(LDLIBS)
$(B)/asan/minivmm: $(B)/asan/obj/vmm/main.o $(B)/asan/libminivmm.a
	$(CC) $(HOSTFLAGS) $(SANFLAGS) -o $@ $< $(call WHOLE,$(B)/asan/libminivmm.a) $(LDLIBS)

$(B)/guest/%.c.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(GUESTFLAGS) -c $< -o $@
$(B)/guest/%.S.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(GUESTFLAGS) -c $< -o $@
$(B)/guest.img: $(GUESTOBJ) guest-driver/guest.ld
	@scripts/check-guest-user.sh $(filter $(B)/guest/guest-driver/user_%,$(GUESTOBJ))
	$(CC) $(GUESTFLAGS) -static -Wl,--build-id=none -Wl,-z,noexecstack -Wl,-T,guest-driver/guest.ld -o $@ $(GUESTOBJ) -lgcc

# Unit tests (cmocka) link the sanitized library.
$(B)/tests/test_%: tests/unit/test_%.c $(B)/asan/libminivmm.a
	@mkdir -p $(dir $@)
	$(CC) $(HOSTFLAGS) $(SANFLAGS) -o $@ $< $(call WHOLE,$(B)/asan/libminivmm.a) $(LDLIBS) $$(pkg-config --libs cmocka)
# Host-side helper programs used by the integration tests and benchmarks.
$(B)/tests/%: tests/tools/%.c $(B)/libminivmm.a
	@mkdir -p $(dir $@)
	$(CC) $(HOSTFLAGS) -o $@ $< $(B)/libminivmm.a $(LDLIBS)

asan: $(B)/asan/minivmm $(UNITBIN)

run: deps
	@$(MAKE) --no-print-directory all
	./$(B)/minivmm --mem 256M --stats $(B)/guest.img

test: deps
	@$(MAKE) --no-print-directory all asan $(TOOLBIN)
	python3 tests/run.py

bench: deps
	@$(MAKE) --no-print-directory all $(TOOLBIN)
	python3 bench/bench.py

PREFIX ?= /usr/local
install: all
	install -D -m 0755 $(B)/minivmm $(DESTDIR)$(PREFIX)/bin/minivmm
	install -D -m 0755 $(B)/minivmm-ctl $(DESTDIR)$(PREFIX)/bin/minivmm-ctl
	install -D -m 0644 $(B)/guest.img $(DESTDIR)$(PREFIX)/share/minivmm/guest.img

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
