# Ringlet: one application + the kernel + newlib, linked into one PVH ELF.
#
#   make [APP=hello]      build build/APP/ringlet.elf (+ .asm disassembly, .sym symbol map)
#   make run              httpd serving the guide (docs/ as HTML on a tar disk) at
#                         http://127.0.0.1:8080/ (or the next free port)
#   make run APP=.. [ARGS="..."] [RUNFLAGS="--machine microvm ..."]
#                         build and boot it in QEMU (scripts/run --help)
#   make test             host unit tests, fuzz targets (a bounded run) and QEMU integration tests
#   make fuzz [FUZZ=name] [FUZZ_SECONDS=60]
#                         run the libFuzzer targets (tests/fuzz/) for as long as asked
#   make image [APP=..] [ARGS="..."]
#                         build/APP/ringlet.img (GPT: UEFI + BIOS), .qcow2 and a libvirt .xml;
#                         ARGS become the command line kept in the image (ringlet/cmdline.txt)
#   make debug            boot halted under gdb
#   make bench            benchmarks (bench/boot, bench/idle, bench/scsi, bench/screen, bench/console; bench/blk and bench/rng compare with Linux)
#   make V=1              show full commands
#
# Dependencies (Debian packages, newlib built once into build/) are checked
# and installed by scripts/deps, which every target below calls first.

APP ?= httpd
BUILD := build
ARGS ?=
RUNFLAGS ?=

ifeq ($(V),1)
Q :=
else
Q := @
endif
MAKEFLAGS += --no-print-directory

NEWLIB := $(BUILD)/newlib/install/x86_64-elf
GCC_INCLUDE := $(shell gcc -print-file-name=include)
LIBGCC := $(shell gcc -print-libgcc-file-name)
PYTHON := $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)

# ---- flags ----------------------------------------------------------------
# Freestanding, non-PIC code linked at 1 MiB; frame pointers for backtraces;
# no red zone (an exception may push onto the stack of any function); the
# stack protector with a global canary (the kernel has no TLS).
# newlib only declares clock_gettime and friends when told POSIX timers exist.
COMMON_FLAGS := -std=gnu11 -O2 -g -ffreestanding -fno-pie -fno-pic -mno-red-zone -mcmodel=small \
	-fno-omit-frame-pointer -fno-asynchronous-unwind-tables \
	-fstack-protector-strong -mstack-protector-guard=global \
	-nostdinc -isystem $(NEWLIB)/include -isystem $(GCC_INCLUDE) -Iinclude \
	-D_POSIX_TIMERS=1 -D_POSIX_MONOTONIC_CLOCK=200112L -D__ringlet__=1 \
	-Wall -Wextra -Werror -MMD -MP
# The kernel never touches SSE/x87 registers, so it need not save them.
# lwIP's headers and Ringlet's port of it (kernel/net: lwipopts.h, arch/cc.h).
LWIP := $(BUILD)/lwip
LWIP_SRC := $(LWIP)/src/src
LWIP_INCLUDES := -I$(LWIP_SRC)/include -Ikernel/net
KERNEL_CFLAGS := $(COMMON_FLAGS) -mgeneral-regs-only $(LWIP_INCLUDES)
APP_CFLAGS := $(COMMON_FLAGS)
LDFLAGS := -nostdlib -static -no-pie -T linker.ld -z max-page-size=4096 -z noexecstack

# ---- sources (explicit lists) ----------------------------------------------
BOOT_SRCS := boot/entry.S boot/boot.c boot/bootparse.c
KERNEL_SRCS := kernel/acpi.c kernel/cmdline.c kernel/console.c kernel/cpu.c kernel/exit.c \
	kernel/blk.c kernel/heap.c kernel/irq.c kernel/ksyms.c kernel/main.c kernel/paging.c kernel/pci.c kernel/pmem.c \
	kernel/wait.c kernel/chacha20.c kernel/random.c kernel/poll.c kernel/fbcon.c kernel/tarfs.c kernel/fs.c \
	kernel/syscalls.c kernel/time.c kernel/trap.c kernel/vectors.S
DRIVER_SRCS := drivers/drivers.c drivers/virtio/virtio.c drivers/virtio/virtio_mmio.c drivers/virtio/virtio_pci.c \
	drivers/virtio/virtio_pci_caps.c drivers/virtio/virtq.c drivers/virtio_balloon.c drivers/virtio_blk.c \
	drivers/virtio_rng.c drivers/virtio_net.c drivers/virtio_scsi.c drivers/virtio_gpu.c drivers/virtio_input.c \
	drivers/virtio_console.c
APP_SRCS := $(sort $(wildcard apps/$(APP)/*.c))
# The network stack's kernel side: an archive like lwIP, so an application that never calls
# the network (no socket, no <ringlet/net.h>) links none of it; main.c starts it through a
# weak reference to net_start().
NET_SRCS := kernel/net/net.c kernel/net/netif.c kernel/net/sys_arch.c kernel/net/socket.c kernel/net/resolv.c kernel/net/inet.c
# lwIP 2.1.3 (scripts/deps fetches it into build/lwip/): the core, IPv4, IPv6 and Ethernet,
# compiled with the kernel's flags into an archive, so that only what is used is linked.
LWIP_FILES := core/def.c core/dns.c core/inet_chksum.c core/init.c core/ip.c core/mem.c core/memp.c \
	core/netif.c core/pbuf.c core/raw.c core/stats.c core/sys.c core/tcp.c core/tcp_in.c core/tcp_out.c \
	core/timeouts.c core/udp.c \
	core/ipv4/dhcp.c core/ipv4/etharp.c core/ipv4/icmp.c core/ipv4/igmp.c core/ipv4/ip4.c \
	core/ipv4/ip4_addr.c core/ipv4/ip4_frag.c \
	core/ipv6/ethip6.c core/ipv6/icmp6.c core/ipv6/inet6.c core/ipv6/ip6.c core/ipv6/ip6_addr.c \
	core/ipv6/ip6_frag.c core/ipv6/mld6.c core/ipv6/nd6.c \
	netif/ethernet.c
LWIP_SRCS := $(addprefix $(LWIP_SRC)/,$(LWIP_FILES))
LWIP_OBJS := $(patsubst %.c,$(LWIP)/obj/%.o,$(LWIP_FILES))
LWIP_LIB := $(LWIP)/liblwip.a

KOBJ := $(BUILD)/kernel
AOBJ := $(BUILD)/$(APP)/obj
KERNEL_OBJS := $(patsubst %,$(KOBJ)/%.o,$(basename $(BOOT_SRCS) $(KERNEL_SRCS) $(DRIVER_SRCS))) $(KOBJ)/gen/font.o
# The console's bitmap font: a Linux console font from Debian's console-setup-linux
# (scripts/deps), converted into C at build time (scripts/psf2c), never committed.
FONT ?= /usr/share/consolefonts/Lat15-Terminus16.psf.gz
NET_SRCS += kernel/net/offload.c
NET_OBJS := $(patsubst %,$(KOBJ)/%.o,$(basename $(NET_SRCS)))
NET_LIB := $(KOBJ)/libnet.a
APP_OBJS := $(patsubst %,$(AOBJ)/%.o,$(basename $(APP_SRCS))) $(AOBJ)/appname.o
LIBS := --start-group $(NET_LIB) $(LWIP_LIB) $(NEWLIB)/lib/libc.a $(NEWLIB)/lib/libm.a $(LIBGCC) --end-group

OUT := $(BUILD)/$(APP)
ELF := $(OUT)/ringlet.elf

.PHONY: all deps run site debug image test unit-test fuzz fuzz-test integration-test bench clean distclean format format-check help
all: $(ELF)

help:
	@sed -n '2,14p' Makefile | sed 's/^# \{0,1\}//'

ifeq ($(APP_SRCS),)
$(ELF):
	@echo "error: no application '$(APP)': apps/$(APP)/ has no .c files (see apps/)" >&2; exit 2
endif

# newlib and the packages: scripts/deps is fast when all is present.
$(NEWLIB)/lib/libc.a: scripts/deps
	$(Q)scripts/deps --quiet build

# lwIP's sources: scripts/deps fetches them (apt-get source, see there).
$(LWIP)/stamp: scripts/deps
	$(Q)scripts/deps --quiet net
$(LWIP_SRCS): | $(LWIP)/stamp ;

$(LWIP)/obj/%.o: $(LWIP_SRC)/%.c | $(NEWLIB)/lib/libc.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      lwip/$*.c")
	$(Q)gcc $(KERNEL_CFLAGS) -c $< -o $@

$(LWIP_LIB): $(LWIP_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(NET_LIB): $(NET_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# Every kernel source may include lwIP's headers: fetch them first.
$(KOBJ)/%.o: %.c | $(NEWLIB)/lib/libc.a $(LWIP)/stamp
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)gcc $(KERNEL_CFLAGS) -c $< -o $@

$(KOBJ)/%.o: %.S | $(NEWLIB)/lib/libc.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AS      $<")
	$(Q)gcc $(KERNEL_CFLAGS) -c $< -o $@

$(BUILD)/gen/font.c: scripts/psf2c | $(NEWLIB)/lib/libc.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  PSF2C   $(FONT)")
	$(Q)test -r $(FONT) || { echo "error: no font $(FONT): scripts/deps build installs console-setup-linux" >&2; exit 1; }
	$(Q)$(PYTHON) scripts/psf2c $(FONT) > $@.tmp && mv $@.tmp $@

$(KOBJ)/gen/font.o: $(BUILD)/gen/font.c
	@mkdir -p $(dir $@)
	$(Q)gcc $(KERNEL_CFLAGS) -c $< -o $@

# argv[0] and the log name the application: a one-line file per app.
$(AOBJ)/appname.c:
	@mkdir -p $(dir $@)
	$(Q)echo 'const char ringlet_app_name[] = "$(APP)";' > $@

$(AOBJ)/appname.o: $(AOBJ)/appname.c
	$(Q)gcc $(APP_CFLAGS) -c $< -o $@

$(AOBJ)/%.o: %.c | $(NEWLIB)/lib/libc.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)gcc $(APP_CFLAGS) -c $< -o $@

# Two links: the first with an empty symbol table, from which scripts/ksyms
# makes the real one for the second. The table sits after all code, so the
# functions must not move between the two; the cmp checks it.
$(ELF): $(KERNEL_OBJS) $(APP_OBJS) $(NET_LIB) $(LWIP_LIB) linker.ld scripts/ksyms
	@mkdir -p $(OUT)
	@$(if $(Q),echo "  LD      $@")
	$(Q)scripts/ksyms > $(OUT)/ksyms0.S
	$(Q)gcc -c $(OUT)/ksyms0.S -o $(OUT)/ksyms0.o
	$(Q)ld $(LDFLAGS) -o $(OUT)/pass1.elf $(KERNEL_OBJS) $(APP_OBJS) $(OUT)/ksyms0.o $(LIBS)
	$(Q)scripts/ksyms $(OUT)/pass1.elf > $(OUT)/ksyms.S
	$(Q)gcc -c $(OUT)/ksyms.S -o $(OUT)/ksyms.o
	$(Q)ld $(LDFLAGS) -o $@.tmp $(KERNEL_OBJS) $(APP_OBJS) $(OUT)/ksyms.o $(LIBS)
	$(Q)scripts/ksyms $@.tmp | cmp -s - $(OUT)/ksyms.S || \
		{ echo "error: functions moved between the two links (see scripts/ksyms)" >&2; exit 1; }
	$(Q)mv $@.tmp $@
	@$(if $(Q),echo "  OBJDUMP $(OUT)/ringlet.asm")
	$(Q)objdump -d -S --no-show-raw-insn $@ > $(OUT)/ringlet.asm
	$(Q)nm -n $@ > $(OUT)/ringlet.sym

# ---- disk images (issue: UEFI through GNU-EFI, BIOS through GRUB) ------------------
include boot/efi/efi.mk
$(EFI_OUT)/loader.o: | $(BUILD)/.deps-image
$(BUILD)/.deps-image: scripts/deps
	$(Q)scripts/deps --quiet image
	@mkdir -p $(BUILD) && touch $@

# The command line is handed over through the environment, so quotes in
# ARGS reach scripts/mkimage as they were typed.
image: export RINGLET_CMDLINE := $(if $(ARGS),-- $(ARGS),)
image: $(ELF) $(BUILD)/efi/BOOTX64.EFI
	$(Q)scripts/mkimage --kernel $(ELF) --efi $(BUILD)/efi/BOOTX64.EFI --cmdline "$$RINGLET_CMDLINE" \
		--out $(OUT)/ringlet.img --qcow2 $(OUT)/ringlet.qcow2 --xml $(OUT)/ringlet.xml

# ---- running ------------------------------------------------------------------
deps:
	$(Q)scripts/deps

# The guide as a web site: docs/*.md through cmark-gfm, packed with tar (scripts/mksite).
SITE_TAR := $(BUILD)/site/site.tar
site: $(SITE_TAR)
$(SITE_TAR): scripts/mksite $(wildcard docs/*)
	$(Q)scripts/deps --quiet test
	@$(if $(Q),echo "  MKSITE  $@")
	$(Q)scripts/mksite docs $(BUILD)/site >/dev/null

# httpd runs with the guide on a tar disk and the devices it shows (scripts/serve);
# any other application as scripts/run boots it.
ifeq ($(APP),httpd)
run: $(ELF) $(SITE_TAR)
	$(Q)scripts/deps --quiet run
	$(Q)scripts/serve $(RUNFLAGS) -- $(ARGS)
else
run: $(ELF)
	$(Q)scripts/deps --quiet run
	$(Q)scripts/run $(RUNFLAGS) $(APP) -- $(ARGS)
endif

debug: $(ELF)
	$(Q)scripts/deps --quiet run
	$(Q)scripts/debug $(APP) $(RUNFLAGS) -- $(ARGS)

# ---- tests ----------------------------------------------------------------------
UNIT_TESTS := test_virtq test_cmdline test_sha256 test_pci test_virtio_pci test_virtio_blk test_chacha20 \
	test_virtio_rng test_bootinfo test_virtio_net test_net_offload test_virtio_scsi test_virtio_gpu test_virtio_input \
	test_virtio_balloon test_virtio_console
UNIT_CFLAGS := -std=gnu11 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer -Wall -Wextra -Werror -Idrivers/virtio -Ikernel -Iboot -Itests/unit -Iinclude

$(BUILD)/tests/test_virtq: tests/unit/test_virtq.c drivers/virtio/virtq.c drivers/virtio/virtq.h \
		drivers/virtio/virtio.h tests/unit/check.h
$(BUILD)/tests/test_cmdline: tests/unit/test_cmdline.c kernel/cmdline.c tests/unit/check.h
$(BUILD)/tests/test_pci: tests/unit/test_pci.c kernel/pci.c kernel/pci.h kernel/kernel.h tests/unit/check.h \
		tests/unit/pci_stubs.h
$(BUILD)/tests/test_sha256: tests/unit/test_sha256.c apps/blktool/sha256.c apps/blktool/sha256.h tests/unit/check.h
# Driver code on the host: kernel/io.h is replaced by a fake (port I/O to the
# test's simulated device), kernel services by tests/unit/kstubs.c.
DRIVER_TEST_DEPS := tests/unit/kstubs.c tests/unit/kstubs.h tests/unit/fake_io.h tests/unit/check.h \
	drivers/virtio/virtio.c drivers/virtio/virtq.c drivers/virtio/virtq.h drivers/virtio/virtio.h \
	drivers/virtio/virtio_dev.h kernel/kernel.h kernel/irq.c kernel/irq.h kernel/wait.h
$(BUILD)/tests/test_virtio_pci: tests/unit/test_virtio_pci.c drivers/virtio/virtio_pci.c drivers/virtio/virtio_pci_caps.c \
		drivers/virtio/virtio_mmio.c \
		drivers/virtio/virtio_pci_caps.h kernel/pci.h $(DRIVER_TEST_DEPS)
$(BUILD)/tests/test_virtio_pci: UNIT_EXTRA := -include tests/unit/fake_io.h
$(BUILD)/tests/test_virtio_blk: tests/unit/test_virtio_blk.c drivers/virtio_blk.c drivers/virtio_blk.h \
		include/ringlet/blk.h kernel/blkdev.h $(DRIVER_TEST_DEPS)
$(BUILD)/tests/test_virtio_blk: UNIT_EXTRA := -include tests/unit/fake_io.h -Idrivers
$(BUILD)/tests/test_chacha20: tests/unit/test_chacha20.c kernel/chacha20.c kernel/chacha20.h tests/unit/check.h
# The driver is #included by its test (its state is static); the virtqueue is linked.
UNIT_INCLUDED := drivers/virtio_rng.c drivers/virtio_gpu.c drivers/virtio_input.c drivers/virtio_balloon.c \
	drivers/virtio_console.c
$(BUILD)/tests/test_virtio_gpu: tests/unit/test_virtio_gpu.c drivers/virtio_gpu.c drivers/virtio_gpu.h \
		drivers/virtio/virtio_gpu.h drivers/virtio/virtq.c drivers/virtio/virtq.h tests/unit/check.h
$(BUILD)/tests/test_virtio_input: tests/unit/test_virtio_input.c drivers/virtio_input.c drivers/virtio_input.h \
		drivers/virtio/virtio_input.h include/ringlet/input.h drivers/virtio/virtq.c drivers/virtio/virtq.h \
		tests/unit/check.h
# Their kernel log and panic stand-ins.
$(BUILD)/tests/test_virtio_rng $(BUILD)/tests/test_virtio_gpu $(BUILD)/tests/test_virtio_input \
		$(BUILD)/tests/test_virtio_balloon $(BUILD)/tests/test_virtio_net \
		$(BUILD)/tests/test_virtio_scsi: tests/unit/klog_stub.h
$(BUILD)/tests/test_virtio_rng: tests/unit/test_virtio_rng.c drivers/virtio_rng.c drivers/virtio_rng.h \
		drivers/virtio/virtq.c drivers/virtio/virtq.h tests/unit/check.h
$(BUILD)/tests/test_virtio_balloon: tests/unit/test_virtio_balloon.c drivers/virtio_balloon.c \
		drivers/virtio_balloon.h include/ringlet/balloon.h drivers/virtio/virtq.c drivers/virtio/virtq.h \
		kernel/kernel.h tests/unit/check.h tests/unit/fake_io.h
$(BUILD)/tests/test_virtio_balloon: UNIT_EXTRA := -include tests/unit/fake_io.h
$(BUILD)/tests/test_virtio_console: tests/unit/test_virtio_console.c drivers/virtio_console.c \
		drivers/virtio_console.h kernel/fd.h drivers/virtio/virtq.c drivers/virtio/virtq.h tests/unit/check.h
$(BUILD)/tests/test_net_offload: tests/unit/test_net_offload.c kernel/net/offload.c kernel/net/offload.h tests/unit/check.h
# The driver is #included by its test (a fresh start per test case), so not compiled again here.
$(BUILD)/tests/test_virtio_net: tests/unit/test_virtio_net.c drivers/virtio_net.c drivers/virtio_net.h \
		drivers/virtio/virtio.c drivers/virtio/virtq.c drivers/virtio/virtq.h drivers/virtio/virtio.h \
		drivers/virtio/virtio_dev.h tests/unit/check.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  HOSTCC  $@")
	$(Q)gcc $(UNIT_CFLAGS) tests/unit/test_virtio_net.c drivers/virtio/virtio.c drivers/virtio/virtq.c -o $@
$(BUILD)/tests/test_bootinfo: tests/unit/test_bootinfo.c boot/bootparse.c boot/bootparse.h boot/bootinfo.h \
		tests/unit/check.h
$(BUILD)/tests/test_virtio_scsi: tests/unit/test_virtio_scsi.c drivers/virtio_scsi.c drivers/virtio_scsi.h \
		drivers/virtio/virtq.c drivers/virtio/virtq.h drivers/virtio/virtio.h drivers/virtio/virtio_dev.h \
		kernel/blkdev.h kernel/kernel.h include/ringlet/blk.h tests/unit/check.h
$(BUILD)/tests/test_virtio_scsi: UNIT_EXTRA := -Idrivers
$(BUILD)/tests/%:
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  HOSTCC  $@")
	$(Q)gcc $(UNIT_CFLAGS) $(UNIT_EXTRA) $(filter-out $(UNIT_INCLUDED),$(filter %.c,$^)) -o $@

unit-test: $(addprefix $(BUILD)/tests/,$(UNIT_TESTS))
	$(Q)for t in $^; do echo "== $$t"; $$t || exit 1; done

# ---- fuzzing (libFuzzer, from Debian's clang) -------------------------------------
# Each target is tests/fuzz/fuzz_NAME.c with LLVMFuzzerTestOneInput(), linked
# with the kernel code it feeds, and a seed corpus in tests/fuzz/corpus/NAME/.
# `make test` runs each over its seeds plus FUZZ_RUNS fresh inputs (a fixed
# seed, so a run is repeatable); `make fuzz` runs them for FUZZ_SECONDS each,
# and keeps what it finds in build/fuzz/corpus-NAME/ (crashes: build/fuzz/). An input
# that takes over 10 s (a walk that never ends) counts as a crash. Inputs are up to 4 KiB;
# fuzz_tar's 128 KiB, so that its seeds with a 64 KiB pax header stay whole.
FUZZ_TARGETS := cmdline pci virtio_caps pvh mb2 virtio_net inet tar http
FUZZ ?= $(FUZZ_TARGETS)
FUZZ_RUNS ?= 20000
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer -Wall -Wextra -Werror -Idrivers/virtio -Ikernel -Iboot -Itests/unit

$(BUILD)/fuzz/fuzz_cmdline: tests/fuzz/fuzz_cmdline.c kernel/cmdline.c
$(BUILD)/fuzz/fuzz_pci: tests/fuzz/fuzz_pci.c kernel/pci.c kernel/pci.h kernel/kernel.h tests/unit/pci_stubs.h
$(BUILD)/fuzz/fuzz_virtio_caps: tests/fuzz/fuzz_virtio_caps.c drivers/virtio/virtio_pci_caps.c \
	drivers/virtio/virtio_pci_caps.h drivers/virtio/virtio.h
$(BUILD)/fuzz/fuzz_pvh: tests/fuzz/fuzz_pvh.c boot/bootparse.c boot/bootparse.h boot/bootinfo.h
$(BUILD)/fuzz/fuzz_mb2: tests/fuzz/fuzz_mb2.c boot/bootparse.c boot/bootparse.h boot/bootinfo.h
# The driver and the unit test's fake device come in by #include; the virtio core is linked.
$(BUILD)/fuzz/fuzz_virtio_net: tests/fuzz/fuzz_virtio_net.c drivers/virtio/virtio.c drivers/virtio/virtq.c \
		tests/unit/test_virtio_net.c drivers/virtio_net.c drivers/virtio_net.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $@")
	$(Q)clang $(FUZZ_CFLAGS) tests/fuzz/fuzz_virtio_net.c drivers/virtio/virtio.c drivers/virtio/virtq.c -o $@
# inet.c against glibc in one program: Ringlet's names renamed.
$(BUILD)/fuzz/fuzz_inet: FUZZ_CFLAGS += -Dinet_pton=ringlet_inet_pton -Dinet_ntop=ringlet_inet_ntop \
	-Dinet_aton=ringlet_inet_aton -Dinet_addr=ringlet_inet_addr -Dinet_ntoa=ringlet_inet_ntoa
$(BUILD)/fuzz/fuzz_inet: tests/fuzz/fuzz_inet.c kernel/net/inet.c
$(BUILD)/fuzz/fuzz_tar: tests/fuzz/fuzz_tar.c kernel/tarfs.c kernel/tarfs.h
$(BUILD)/fuzz/fuzz_http: tests/fuzz/fuzz_http.c apps/httpd/http.c apps/httpd/http.h
$(BUILD)/fuzz/%:
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $@")
	$(Q)clang $(FUZZ_CFLAGS) $(filter %.c,$^) -o $@

fuzz-test: $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_TARGETS))
	$(Q)for t in $(FUZZ_TARGETS); do \
		echo "== fuzz_$$t: seeds + $(FUZZ_RUNS) fresh inputs"; \
		mkdir -p $(BUILD)/fuzz/corpus-$$t; \
		ml=4096; [ $$t = tar ] && ml=131072; \
		$(BUILD)/fuzz/fuzz_$$t -runs=$(FUZZ_RUNS) -seed=1 -max_len=$$ml -timeout=10 -artifact_prefix=$(BUILD)/fuzz/$$t- \
			$(BUILD)/fuzz/corpus-$$t tests/fuzz/corpus/$$t > $(BUILD)/fuzz/$$t.log 2>&1 || \
			{ tail -40 $(BUILD)/fuzz/$$t.log; echo "error: fuzz_$$t failed (log: $(BUILD)/fuzz/$$t.log)" >&2; exit 1; }; \
		tail -1 $(BUILD)/fuzz/$$t.log; \
	done

fuzz: $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ))
	$(Q)scripts/deps --quiet test
	$(Q)for t in $(FUZZ); do \
		echo "== fuzz_$$t for $(FUZZ_SECONDS) s (corpus build/fuzz/corpus-$$t)"; \
		mkdir -p $(BUILD)/fuzz/corpus-$$t; \
		$(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -artifact_prefix=$(BUILD)/fuzz/$$t- \
			$(BUILD)/fuzz/corpus-$$t tests/fuzz/corpus/$$t || exit 1; \
	done

integration-test:
	$(Q)for app in hello selftest blktool entropy kbd fbdemo memhog; do $(MAKE) APP=$$app || exit 1; done
	$(Q)$(MAKE) efi
	$(Q)$(PYTHON) -m pytest -q -ra tests/integration

test:
	$(Q)scripts/deps --quiet
	$(Q)$(MAKE) format-check
	$(Q)$(MAKE) unit-test
	$(Q)$(MAKE) fuzz-test
	$(Q)$(MAKE) integration-test

bench:
	$(Q)scripts/deps --quiet
	$(Q)bench/boot
	$(Q)bench/idle
	$(Q)bench/scsi
	$(Q)bench/screen
	$(Q)bench/console

format:
	$(Q)clang-format -i $$(git ls-files '*.c' '*.h')

# Part of make test: the tree stays formatted (clang-format from Debian).
format-check:
	$(Q)clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h') || \
		{ echo "error: run 'make format' (clang-format) and commit" >&2; exit 1; }

clean:
	rm -rf $(BUILD)/kernel $(BUILD)/tests $(LWIP)/obj $(LWIP_LIB) \
		$(filter-out $(BUILD)/newlib $(BUILD)/lwip $(BUILD)/apt $(BUILD)/kvmprobe,$(wildcard $(BUILD)/*))

distclean:
	rm -rf $(BUILD)

-include $(KERNEL_OBJS:.o=.d) $(NET_OBJS:.o=.d) $(APP_OBJS:.o=.d) $(LWIP_OBJS:.o=.d)
