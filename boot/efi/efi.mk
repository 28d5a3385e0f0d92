# boot/efi/efi.mk: builds the UEFI loader $(BUILD)/efi/BOOTX64.EFI with
# Debian's gnu-efi. Included from the top-level Makefile; on its own:
#     make -f boot/efi/efi.mk [BUILD=build] [V=1]
#
# How a GNU-EFI application is made: compile position-independent code with
# the 2-byte wchar_t that UEFI strings use and no red zone (firmware
# interrupt handlers run on our stack), link it as an ELF shared object with
# gnu-efi's start-up code (crt0: self-relocation, then efi_main) and link
# script, then let objcopy rewrite the ELF as a PE32+ "EFI application".

BUILD ?= build
ifeq ($(V),1)
Q ?=
else
Q ?= @
endif

EFI_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
EFI_OUT := $(BUILD)/efi

EFI_CC ?= gcc
EFI_LD ?= ld
EFI_OBJCOPY ?= objcopy
EFI_INC ?= /usr/include/efi
EFI_LIBDIR ?= /usr/lib

# GNU_EFI_USE_MS_ABI: firmware calls are direct calls to ms_abi function
# pointers (type-checked), instead of going through gnu-efi's efi_callN thunks.
EFI_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror \
	-ffreestanding -fpic -fshort-wchar -mno-red-zone -fno-stack-protector \
	-fno-strict-aliasing -fno-builtin -maccumulate-outgoing-args \
	-DGNU_EFI_USE_MS_ABI -I$(EFI_INC) -I$(EFI_INC)/x86_64 -MMD -MP
EFI_LDFLAGS := -nostdlib -znocombreloc -shared -Bsymbolic --no-undefined \
	-T $(EFI_LIBDIR)/elf_x86_64_efi.lds -L$(EFI_LIBDIR)
EFI_SECTIONS := -j .text -j .sdata -j .data -j .dynamic -j .dynsym \
	-j .rel -j .rela -j .rel.* -j .rela.* -j .reloc

.PHONY: efi
efi: $(EFI_OUT)/BOOTX64.EFI

$(EFI_OUT)/loader.o: $(EFI_DIR)/loader.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(EFI_CC) $(EFI_CFLAGS) -c $< -o $@

$(EFI_OUT)/loader.so: $(EFI_OUT)/loader.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(EFI_LD) $(EFI_LDFLAGS) $(EFI_LIBDIR)/crt0-efi-x86_64.o $< -o $@ -lefi -lgnuefi

$(EFI_OUT)/BOOTX64.EFI: $(EFI_OUT)/loader.so
	@$(if $(Q),echo "  EFI     $@")
	$(Q)$(EFI_OBJCOPY) $(EFI_SECTIONS) --target efi-app-x86_64 $< $@

-include $(EFI_OUT)/loader.d
