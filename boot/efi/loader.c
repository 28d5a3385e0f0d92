/*
 * ringlet-efi: the UEFI loader (BOOTX64.EFI) for Ringlet disk images.
 * Implements: UEFI Specification 2.10, §7.2 Memory Allocation Services
 *             (AllocatePages, GetMemoryMap), §7.4 Image Services
 *             (ExitBootServices), §9.1 Loaded Image Protocol, §13.4 Simple
 *             File System Protocol, §4.6 EFI Configuration Table (ACPI RSDP).
 * Try it:     make image APP=hello, then boot build/hello/ringlet.img with
 *             OVMF (docs/images.md).
 *
 * What it does, in order:
 *   1. reads \ringlet\kernel.elf from the ESP it was itself loaded from;
 *   2. takes the command line from its load options if they hold text, else
 *      from \ringlet\cmdline.txt (a missing file means an empty cmdline);
 *   3. checks the ELF and copies each PT_LOAD segment to its p_paddr, after
 *      AllocatePages(AllocateAddress) has confirmed that the memory is free;
 *   4. finds the ACPI RSDP, builds its own GDT, identity page tables and
 *      stack in pages it allocated below 4 GiB;
 *   5. converts the final memory map into struct boot_info, calls
 *      ExitBootServices (retrying on a stale map key) and jumps to e_entry
 *      with %rdi = &boot_info (contract: boot/bootinfo.h).
 *
 * The kernel, boot_info, GDT, page tables and stack are reported as
 * BOOT_MEM_RESERVED, so the kernel's page allocator can never hand out the
 * memory it is still running on. Everything the firmware's boot services
 * used (including its page tables) becomes USABLE, which is why we switch to
 * our own page tables before the jump.
 *
 * Debian's gnu-efi: crt0 calls efi_main with the System V ABI, so efi_main
 * is not EFIAPI; firmware calls go through uefi_call_wrapper, which is a
 * plain call with ms_abi types since we build with GNU_EFI_USE_MS_ABI.
 */
#include <efi.h>
#include <efilib.h>

#include "../bootinfo.h"

#define KERNEL_PATH       L"\\ringlet\\kernel.elf"
#define CMDLINE_PATH      L"\\ringlet\\cmdline.txt"
#define STACK_SIZE        (64 * 1024)
#define PAGE_SIZE         4096ULL
#define GIB               (1ULL << 30)
#define FAIL_WAIT_SECONDS 10
#define EBS_TRIES         8
#define MAX_HELD          16 /* page ranges kept out of USABLE */

/* ELF64, only what we check (System V gABI; x86-64 psABI). */
#define EI_NIDENT   16
#define ELFCLASS64  2
#define ELFDATA2LSB 1
#define ET_EXEC     2
#define EM_X86_64   62
#define PT_LOAD     1

typedef struct {
	UINT8 e_ident[EI_NIDENT]; /* "\177ELF", class, data, version, ... */
	UINT16 e_type;            /* ET_EXEC: linked at fixed addresses */
	UINT16 e_machine;         /* EM_X86_64 */
	UINT32 e_version;
	UINT64 e_entry; /* _start64 */
	UINT64 e_phoff; /* program headers: file offset */
	UINT64 e_shoff;
	UINT32 e_flags;
	UINT16 e_ehsize;
	UINT16 e_phentsize; /* size of one program header */
	UINT16 e_phnum;     /* number of program headers */
	UINT16 e_shentsize;
	UINT16 e_shnum;
	UINT16 e_shstrndx;
} Elf64_Ehdr;

typedef struct {
	UINT32 p_type; /* PT_LOAD for the segments we copy */
	UINT32 p_flags;
	UINT64 p_offset; /* where the bytes are in the file */
	UINT64 p_vaddr;
	UINT64 p_paddr;  /* where they go in memory (= p_vaddr for us) */
	UINT64 p_filesz; /* bytes to copy */
	UINT64 p_memsz;  /* bytes to occupy; the rest after p_filesz is zeroed */
	UINT64 p_align;
} Elf64_Phdr;

_Static_assert(sizeof(Elf64_Ehdr) == 64, "Elf64_Ehdr layout");
_Static_assert(sizeof(Elf64_Phdr) == 56, "Elf64_Phdr layout");

/* A page range [start, end) that must not be reported USABLE. */
struct range {
	UINT64 start, end;
};

/* One converted memory-map entry before merging. */
struct mem_range {
	UINT64 start, end;
	UINT32 type;
};

static struct range held[MAX_HELD];
static UINTN held_count;
static UINT64 kernel_lo = ~0ULL, kernel_hi;

/* Filled in by the entry trampoline; see efi_enter_kernel below. */
struct gdtr {
	UINT16 limit;
	UINT64 base;
} __attribute__((packed));

/* The part of the hand-off pages that follows struct boot_info. */
struct handoff {
	struct boot_info info;
	UINT64 gdt[3] __attribute__((aligned(16)));
	struct gdtr gdtr;
};

static struct handoff *handoff;

void efi_enter_kernel(UINT64 cr3, const struct gdtr *gdtr, UINT64 stack_top, UINT64 boot_info, UINT64 entry)
    __attribute__((noreturn));

/*
 * Leave for the kernel: interrupts off, our GDT (0x08 code, 0x10 data), an
 * empty IDT (any fault before the kernel loads its own resets the machine
 * instead of jumping into firmware code that may be gone), our page tables,
 * our stack with a zero return address on it (as if _start64 were called).
 * Runs from the loader's own code, which the new identity map also covers.
 */
__asm__(".text\n"
        ".globl efi_enter_kernel\n"
        "efi_enter_kernel:\n"
        "	cli\n"
        "	lgdt (%rsi)\n"
        "	lidt efi_null_idtr(%rip)\n"
        "	mov %rdi, %cr3\n"
        "	mov %rdx, %rsp\n"
        "	pushq $0x08\n"
        "	lea 1f(%rip), %rax\n"
        "	pushq %rax\n"
        "	lretq\n"
        "1:	mov $0x10, %eax\n"
        "	mov %eax, %ds\n"
        "	mov %eax, %es\n"
        "	mov %eax, %ss\n"
        "	mov %eax, %fs\n"
        "	mov %eax, %gs\n"
        "	mov %rcx, %rdi\n"
        "	xor %ebp, %ebp\n"
        "	pushq $0\n"
        "	jmp *%r8\n"
        ".data\n"
        ".balign 16\n"
        "efi_null_idtr: .quad 0, 0\n"
        ".text\n");

static UINT64 page_down(UINT64 a) { return a & ~(PAGE_SIZE - 1); }
static UINT64 page_up(UINT64 a) { return (a + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1); }

/*
 * Say that we stop, then wait: a key returns to the firmware (its boot menu,
 * other boot options), no key powers off. Unattended, a guest that stops is
 * easier to notice than firmware trying network boot for minutes, and it
 * matches what the image's GRUB does on a failed BIOS boot.
 */
static EFI_STATUS fail(EFI_STATUS status)
{
	Print(L"ringlet-efi: boot failed (%r)\n", status);
	Print(L"ringlet-efi: press a key to return to the firmware; powering off in %d s\n", FAIL_WAIT_SECONDS);
	if (WaitForSingleEvent(ST->ConIn->WaitForKey, FAIL_WAIT_SECONDS * 10000000ULL) == EFI_TIMEOUT)
		uefi_call_wrapper(RT->ResetSystem, 4, EfiResetShutdown, status, 0, NULL);
	return status;
}

static void hold(UINT64 start, UINT64 end)
{
	/* MAX_HELD covers the fixed ranges plus a dozen ELF segments (checked). */
	held[held_count].start = page_down(start);
	held[held_count].end = page_up(end);
	held_count++;
}

static EFI_STATUS alloc_below_4g(UINTN pages, UINT64 *addr)
{
	EFI_PHYSICAL_ADDRESS a = 0xffffffffULL;
	EFI_STATUS st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiLoaderData, pages, &a);
	if (!EFI_ERROR(st)) {
		*addr = a;
		hold(a, a + pages * PAGE_SIZE);
	}
	return st;
}

/* Read a whole file; *buf is pool memory. EFI_NOT_FOUND if it is absent. */
static EFI_STATUS read_file(EFI_FILE_HANDLE root, CHAR16 *path, UINT8 **buf, UINTN *size)
{
	EFI_FILE_HANDLE f;
	EFI_STATUS st = uefi_call_wrapper(root->Open, 5, root, &f, path, EFI_FILE_MODE_READ, 0);
	if (EFI_ERROR(st))
		return st;
	EFI_FILE_INFO *info = LibFileInfo(f);
	if (!info) {
		uefi_call_wrapper(f->Close, 1, f);
		return EFI_DEVICE_ERROR;
	}
	UINTN want = info->FileSize;
	FreePool(info);
	*buf = AllocatePool(want + 1);
	if (!*buf) {
		uefi_call_wrapper(f->Close, 1, f);
		return EFI_OUT_OF_RESOURCES;
	}
	*size = want;
	st = uefi_call_wrapper(f->Read, 3, f, size, *buf);
	uefi_call_wrapper(f->Close, 1, f);
	if (!EFI_ERROR(st) && *size != want)
		st = EFI_VOLUME_CORRUPTED; /* the FAT says more than it gave us */
	if (EFI_ERROR(st))
		FreePool(*buf);
	return st;
}

static BOOLEAN is_space(UINT32 c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/*
 * Copy text into the boot_info cmdline: control characters become spaces,
 * leading and trailing white space goes. Returns FALSE if it does not fit.
 */
static BOOLEAN set_cmdline(char *dst, const UINT8 *src, UINTN len)
{
	while (len && is_space(src[0])) {
		src++;
		len--;
	}
	while (len && is_space(src[len - 1]))
		len--;
	if (len >= BOOT_CMDLINE_MAX)
		return FALSE;
	for (UINTN i = 0; i < len; i++)
		dst[i] = src[i] < 0x20 || src[i] == 0x7f ? ' ' : (char)src[i];
	dst[len] = 0;
	return TRUE;
}

/*
 * Our load options, as ASCII, if they are text. Firmware boot entries often
 * carry binary data here (OVMF puts a GUID in the entries it makes itself),
 * and the UEFI shell passes the whole command line, program name first.
 */
static UINTN options_text(EFI_LOADED_IMAGE *li, UINT8 *out, UINTN max)
{
	CHAR16 *s = li->LoadOptions;
	UINTN n = li->LoadOptionsSize / sizeof(CHAR16), len = 0;

	if (!s || li->LoadOptionsSize % sizeof(CHAR16))
		return 0;
	while (n && s[n - 1] == 0)
		n--;
	for (UINTN i = 0; i < n; i++)
		if (s[i] > 0x7e || (s[i] < 0x20 && !is_space(s[i])))
			return 0; /* not text: ignore */
	/* Skip a leading "...\\foo.efi" (the shell's argv[0]). */
	UINTN w = 0;
	while (w < n && is_space(s[w]))
		w++;
	UINTN e = w;
	while (e < n && !is_space(s[e]))
		e++;
	if (e - w >= 4 && s[e - 4] == '.' && (s[e - 3] | 0x20) == 'e' && (s[e - 2] | 0x20) == 'f' &&
	    (s[e - 1] | 0x20) == 'i')
		w = e;
	for (UINTN i = w; i < n && len < max; i++)
		out[len++] = (UINT8)s[i];
	return len;
}

/* Check the ELF header and program headers; print what is wrong. */
static BOOLEAN elf_check(const UINT8 *file, UINTN size)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;

	if (size < sizeof(*eh) || eh->e_ident[0] != 0x7f || eh->e_ident[1] != 'E' || eh->e_ident[2] != 'L' ||
	    eh->e_ident[3] != 'F') {
		Print(L"ringlet-efi: %s is not an ELF file (bad magic or too short: %d bytes)\n", KERNEL_PATH, size);
		return FALSE;
	}
	if (eh->e_ident[4] != ELFCLASS64 || eh->e_ident[5] != ELFDATA2LSB) {
		Print(L"ringlet-efi: %s is not a 64-bit little-endian ELF\n", KERNEL_PATH);
		return FALSE;
	}
	if (eh->e_machine != EM_X86_64 || eh->e_type != ET_EXEC) {
		Print(L"ringlet-efi: %s is not an x86-64 executable (machine %d, type %d)\n", KERNEL_PATH,
		      eh->e_machine, eh->e_type);
		return FALSE;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phoff > size ||
	    (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum) {
		Print(L"ringlet-efi: %s: program headers lie outside the file "
		      L"(offset %ld, %d of %d bytes, file %ld bytes; truncated?)\n",
		      KERNEL_PATH, eh->e_phoff, eh->e_phnum, eh->e_phentsize, size);
		return FALSE;
	}
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(file + eh->e_phoff);
	UINTN loads = 0;
	BOOLEAN entry_ok = FALSE;
	for (UINTN i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];
		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		if (p->p_filesz > p->p_memsz || p->p_offset > size || size - p->p_offset < p->p_filesz) {
			Print(L"ringlet-efi: %s: segment %d lies outside the file "
			      L"(offset %ld + %ld > %ld bytes; truncated?)\n",
			      KERNEL_PATH, i, p->p_offset, p->p_filesz, size);
			return FALSE;
		}
		if (p->p_paddr + p->p_memsz < p->p_paddr || p->p_paddr + p->p_memsz > 512 * GIB) {
			Print(L"ringlet-efi: %s: segment %d at 0x%lx is out of range\n", KERNEL_PATH, i, p->p_paddr);
			return FALSE;
		}
		if (eh->e_entry >= p->p_paddr && eh->e_entry < p->p_paddr + p->p_memsz)
			entry_ok = TRUE;
		loads++;
	}
	if (loads == 0 || loads > MAX_HELD - 4) {
		Print(L"ringlet-efi: %s has %d loadable segments (want 1 to %d)\n", KERNEL_PATH, loads, MAX_HELD - 4);
		return FALSE;
	}
	if (!entry_ok) {
		Print(L"ringlet-efi: %s: entry point 0x%lx is not in a loaded segment\n", KERNEL_PATH, eh->e_entry);
		return FALSE;
	}
	return TRUE;
}

static const CHAR16 *mem_type_name(UINT32 t)
{
	static const CHAR16 *names[] = {
	    L"reserved",           L"loader code",  L"loader data",  L"boot services code",
	    L"boot services data", L"runtime code", L"runtime data", L"free",
	    L"unusable",           L"ACPI reclaim", L"ACPI NVS",     L"MMIO",
	    L"MMIO port space",    L"PAL code",     L"persistent",   L"unaccepted",
	};
	return t < sizeof(names) / sizeof(names[0]) ? names[t] : L"OEM/OS-specific";
}

/* Say what holds the memory at addr, so "cannot place" says why. */
static void explain_address(UINT64 addr)
{
	UINTN n, key, dsize;
	UINT32 dver;
	EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&n, &key, &dsize, &dver);
	if (!map)
		return;
	const CHAR16 *what = L"not RAM the firmware knows about";
	for (UINTN i = 0; i < n; i++) {
		EFI_MEMORY_DESCRIPTOR *d = (void *)((UINT8 *)map + i * dsize);
		if (addr >= d->PhysicalStart && addr < d->PhysicalStart + d->NumberOfPages * PAGE_SIZE)
			what = mem_type_name(d->Type);
	}
	Print(L"ringlet-efi: the memory at 0x%lx is %s\n", addr, what);
	FreePool(map);
}

/*
 * Allocate the pages every PT_LOAD segment needs (their page ranges merged,
 * since two segments may share a page), then copy and zero.
 */
static EFI_STATUS load_kernel(const UINT8 *file)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(file + eh->e_phoff);
	struct range r[MAX_HELD];
	UINTN nr = 0;

	for (UINTN i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
			continue;
		struct range x = {page_down(ph[i].p_paddr), page_up(ph[i].p_paddr + ph[i].p_memsz)};
		/* Insert sorted, then merge overlapping or touching neighbours. */
		UINTN j = nr++;
		while (j > 0 && r[j - 1].start > x.start) {
			r[j] = r[j - 1];
			j--;
		}
		r[j] = x;
	}
	UINTN m = 0;
	for (UINTN i = 1; i < nr; i++) {
		if (r[i].start <= r[m].end) {
			if (r[i].end > r[m].end)
				r[m].end = r[i].end;
		} else {
			r[++m] = r[i];
		}
	}
	nr = nr ? m + 1 : 0;

	for (UINTN i = 0; i < nr; i++) {
		EFI_PHYSICAL_ADDRESS a = r[i].start;
		EFI_STATUS st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateAddress, EfiLoaderData,
		                                  (r[i].end - r[i].start) / PAGE_SIZE, &a);
		if (EFI_ERROR(st)) {
			Print(L"ringlet-efi: cannot place the kernel at 0x%lx-0x%lx: %r\n", r[i].start, r[i].end, st);
			explain_address(r[i].start);
			return st;
		}
		hold(r[i].start, r[i].end);
		if (r[i].start < kernel_lo)
			kernel_lo = r[i].start;
		if (r[i].end > kernel_hi)
			kernel_hi = r[i].end;
	}
	for (UINTN i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];
		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		CopyMem((void *)p->p_paddr, (void *)(file + p->p_offset), p->p_filesz);
		SetMem((UINT8 *)p->p_paddr + p->p_filesz, p->p_memsz - p->p_filesz, 0);
	}
	return EFI_SUCCESS;
}

static UINT64 find_rsdp(void)
{
	EFI_GUID acpi20 = ACPI_20_TABLE_GUID, acpi10 = ACPI_TABLE_GUID;
	EFI_GUID *want[] = {&acpi20, &acpi10};

	for (UINTN w = 0; w < 2; w++)
		for (UINTN i = 0; i < ST->NumberOfTableEntries; i++)
			if (CompareGuid(&ST->ConfigurationTable[i].VendorGuid, want[w]) == 0)
				return (UINT64)ST->ConfigurationTable[i].VendorTable;
	return 0;
}

/* UEFI memory type → boot_info type (E820 numbering). */
static UINT32 convert_type(UINT32 t)
{
	switch (t) {
	case EfiLoaderCode:
	case EfiLoaderData:
	case EfiBootServicesCode:
	case EfiBootServicesData:
	case EfiConventionalMemory:
		return BOOT_MEM_USABLE; /* ours once boot services have exited */
	case EfiACPIReclaimMemory:
		return BOOT_MEM_ACPI_RECLAIM;
	case EfiACPIMemoryNVS:
		return BOOT_MEM_ACPI_NVS;
	case EfiUnusableMemory:
		return BOOT_MEM_BAD;
	default:
		return BOOT_MEM_RESERVED; /* runtime services, MMIO, reserved, ... */
	}
}

/* Append to bi->mem, merging with the previous entry; FALSE when full. */
static BOOLEAN emit(struct boot_info *bi, UINT64 start, UINT64 end, UINT32 type)
{
	if (end <= start)
		return TRUE;
	if (bi->mem_count) {
		struct boot_mem_entry *prev = &bi->mem[bi->mem_count - 1];
		if (prev->type == type && prev->addr + prev->len == start) {
			prev->len += end - start;
			return TRUE;
		}
	}
	if (bi->mem_count == BOOT_MEM_MAX)
		return FALSE;
	struct boot_mem_entry *e = &bi->mem[bi->mem_count++];
	e->addr = start;
	e->len = end - start;
	e->type = type;
	e->pad = 0;
	return TRUE;
}

/*
 * Build bi->mem from a UEFI memory map: sort by address, convert types, cut
 * the held ranges out of USABLE memory (they become RESERVED), merge. Must
 * not allocate: it runs between GetMemoryMap and ExitBootServices.
 * Returns FALSE if entries had to be dropped (more than BOOT_MEM_MAX).
 */
static BOOLEAN build_mem_map(struct boot_info *bi, UINT8 *map, UINTN n, UINTN dsize, struct mem_range *tmp)
{
	BOOLEAN complete = TRUE;

	for (UINTN i = 0; i < n; i++) {
		EFI_MEMORY_DESCRIPTOR *d = (void *)(map + i * dsize);
		struct mem_range x = {d->PhysicalStart, d->PhysicalStart + d->NumberOfPages * PAGE_SIZE,
		                      convert_type(d->Type)};
		UINTN j = i;
		while (j > 0 && tmp[j - 1].start > x.start) {
			tmp[j] = tmp[j - 1];
			j--;
		}
		tmp[j] = x;
	}
	bi->mem_count = 0;
	for (UINTN i = 0; i < n; i++) {
		UINT64 cur = tmp[i].start, end = tmp[i].end;
		if (tmp[i].type == BOOT_MEM_USABLE) {
			/* held[] is small and unsorted: repeatedly cut the lowest overlap. */
			for (;;) {
				UINT64 lo = end;
				UINTN hit = MAX_HELD;
				for (UINTN h = 0; h < held_count; h++)
					if (held[h].start < end && held[h].end > cur && held[h].start < lo) {
						lo = held[h].start < cur ? cur : held[h].start;
						hit = h;
					}
				if (hit == MAX_HELD)
					break;
				UINT64 hi = held[hit].end < end ? held[hit].end : end;
				complete &= emit(bi, cur, lo, BOOT_MEM_USABLE);
				complete &= emit(bi, lo, hi, BOOT_MEM_RESERVED);
				cur = hi;
			}
		}
		complete &= emit(bi, cur, end, tmp[i].type);
	}
	return complete;
}

/*
 * Identity-map [0, top) with 2 MiB pages (top a multiple of 1 GiB, at most
 * 512 GiB). tables points at 2 + top/GiB zeroed pages: PML5, PML4, PDPT,
 * then one page directory per GiB. With CR4.LA57 set the firmware runs on
 * 5-level paging, and so must we until the kernel loads its own tables.
 */
static UINT64 build_page_tables(UINT64 *tables, UINT64 top)
{
	const UINT64 P = 1, RW = 2, PS = 0x80;
	UINT64 *pml5 = tables, *pml4 = tables + 512, *pdpt = tables + 1024, *pd = tables + 1536;
	UINT64 cr4;

	for (UINT64 g = 0; g < top / GIB; g++) {
		pdpt[g] = (UINT64)&pd[g * 512] | P | RW;
		for (UINT64 i = 0; i < 512; i++)
			pd[g * 512 + i] = (g * GIB + i * (2ULL << 20)) | P | RW | PS;
	}
	pml4[0] = (UINT64)pdpt | P | RW;
	pml5[0] = (UINT64)pml4 | P | RW;
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	return cr4 & (1ULL << 12) ? (UINT64)pml5 : (UINT64)pml4;
}

/* The highest end of RAM in a memory map (MMIO and reserved left out). */
static UINT64 ram_top(UINT8 *map, UINTN n, UINTN dsize)
{
	UINT64 top = 0;
	for (UINTN i = 0; i < n; i++) {
		EFI_MEMORY_DESCRIPTOR *d = (void *)(map + i * dsize);
		UINT64 end = d->PhysicalStart + d->NumberOfPages * PAGE_SIZE;
		if (convert_type(d->Type) != BOOT_MEM_RESERVED && end > top)
			top = end;
	}
	return top;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	EFI_LOADED_IMAGE *li;
	EFI_STATUS st;
	UINT8 *kernel, *text;
	UINTN kernel_size, text_size;
	const CHAR16 *cmdline_from;

	InitializeLib(image, systab);
	Print(L"ringlet-efi: loading %s\n", KERNEL_PATH);

	st = uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&li);
	if (EFI_ERROR(st)) {
		Print(L"ringlet-efi: no loaded-image protocol: %r\n", st);
		return fail(st);
	}
	EFI_FILE_HANDLE root = LibOpenRoot(li->DeviceHandle);
	if (!root) {
		Print(L"ringlet-efi: cannot open the file system this loader was started from\n");
		return fail(EFI_NOT_FOUND);
	}
	st = read_file(root, KERNEL_PATH, &kernel, &kernel_size);
	if (EFI_ERROR(st)) {
		Print(L"ringlet-efi: cannot read %s from the EFI System Partition: %r\n", KERNEL_PATH, st);
		return fail(st);
	}
	if (!elf_check(kernel, kernel_size))
		return fail(EFI_LOAD_ERROR);

	/* Hand-off pages first, so that they are in held[] before anything else. */
	UINT64 hpages = page_up(sizeof(struct handoff)) / PAGE_SIZE, haddr, stack;
	st = alloc_below_4g(hpages, &haddr);
	if (!EFI_ERROR(st))
		st = alloc_below_4g(STACK_SIZE / PAGE_SIZE, &stack);
	if (EFI_ERROR(st)) {
		Print(L"ringlet-efi: cannot allocate the boot-info pages and stack: %r\n", st);
		return fail(st);
	}
	handoff = (struct handoff *)haddr;
	SetMem(handoff, hpages * PAGE_SIZE, 0);
	struct boot_info *bi = &handoff->info;
	bi->magic = BOOT_INFO_MAGIC;
	bi->source = BOOT_SOURCE_UEFI;

	/* Command line: load options if they are text, else the file. */
	text = AllocatePool(BOOT_CMDLINE_MAX);
	if (!text)
		return fail(EFI_OUT_OF_RESOURCES);
	text_size = options_text(li, text, BOOT_CMDLINE_MAX);
	cmdline_from = L"load options";
	if (!set_cmdline(bi->cmdline, text, text_size) || bi->cmdline[0] == 0) {
		FreePool(text);
		cmdline_from = CMDLINE_PATH;
		st = read_file(root, CMDLINE_PATH, &text, &text_size);
		if (st == EFI_NOT_FOUND) {
			cmdline_from = L"nowhere: no " CMDLINE_PATH;
			text_size = 0;
		} else if (EFI_ERROR(st)) {
			Print(L"ringlet-efi: cannot read %s: %r\n", CMDLINE_PATH, st);
			return fail(st);
		}
		if (!set_cmdline(bi->cmdline, text, text_size)) {
			Print(L"ringlet-efi: the command line in %s is longer than %d bytes\n", CMDLINE_PATH,
			      BOOT_CMDLINE_MAX - 1);
			return fail(EFI_BAD_BUFFER_SIZE);
		}
	}
	if (text_size)
		FreePool(text);

	st = load_kernel(kernel);
	if (EFI_ERROR(st))
		return fail(st);
	UINT64 entry = ((Elf64_Ehdr *)kernel)->e_entry;
	FreePool(kernel);
	bi->rsdp = find_rsdp();

	/* A first memory map: to size the page tables and the final map buffer. */
	UINTN n, key, dsize;
	UINT32 dver;
	UINT8 *map = (UINT8 *)LibMemoryMap(&n, &key, &dsize, &dver);
	if (!map) {
		Print(L"ringlet-efi: cannot get the memory map\n");
		return fail(EFI_DEVICE_ERROR);
	}
	UINT64 top = ram_top(map, n, dsize);
	if (top < kernel_hi)
		top = kernel_hi;
	top = (top + GIB - 1) & ~(GIB - 1);
	if (top < 4 * GIB)
		top = 4 * GIB;
	if (top > 512 * GIB)
		top = 512 * GIB; /* XXX: one PDPT; RAM above 512 GiB is not mapped at entry */
	UINT64 tables;
	UINTN tpages = 3 + top / GIB;
	st = alloc_below_4g(tpages, &tables);
	if (EFI_ERROR(st)) {
		Print(L"ringlet-efi: cannot allocate %d pages of page tables: %r\n", tpages, st);
		return fail(st);
	}
	SetMem((void *)tables, tpages * PAGE_SIZE, 0);
	UINT64 cr3 = build_page_tables((UINT64 *)tables, top);

	handoff->gdt[1] = 0x00af9a000000ffffULL; /* 0x08: 64-bit code, DPL 0 */
	handoff->gdt[2] = 0x00cf92000000ffffULL; /* 0x10: data, DPL 0 */
	handoff->gdtr.limit = sizeof(handoff->gdt) - 1;
	handoff->gdtr.base = (UINT64)handoff->gdt;

	/*
	 * The final map buffer, with room for the descriptors that allocating
	 * it (and the firmware's own timers) may add, and a sort buffer.
	 */
	FreePool(map);
	UINTN cap = n + 32, map_size;
	map = AllocatePool(cap * dsize);
	struct mem_range *tmp = AllocatePool(cap * sizeof(*tmp));
	if (!map || !tmp)
		return fail(EFI_OUT_OF_RESOURCES);

	map_size = cap * dsize;
	st = uefi_call_wrapper(BS->GetMemoryMap, 5, &map_size, (EFI_MEMORY_DESCRIPTOR *)map, &key, &dsize, &dver);
	if (EFI_ERROR(st)) {
		Print(L"ringlet-efi: cannot get the memory map: %r\n", st);
		return fail(st);
	}
	if (!build_mem_map(bi, map, map_size / dsize, dsize, tmp))
		Print(L"ringlet-efi: warning: memory map has more than %d entries; "
		      L"the rest is left out\n",
		      BOOT_MEM_MAX);
	Print(L"ringlet-efi: kernel 0x%lx-0x%lx, cmdline \"%a\" (from %s), entering\n", kernel_lo, kernel_hi,
	      bi->cmdline, cmdline_from);

	/*
	 * UEFI 2.10 §7.4.6: if the map key is stale, ExitBootServices fails
	 * with EFI_INVALID_PARAMETER and we must get the map again and retry;
	 * between the two calls only memory-map services may be used (no Print).
	 */
	for (UINTN tries = 0; tries < EBS_TRIES; tries++) {
		map_size = cap * dsize;
		st = uefi_call_wrapper(BS->GetMemoryMap, 5, &map_size, (EFI_MEMORY_DESCRIPTOR *)map, &key, &dsize,
		                       &dver);
		if (EFI_ERROR(st))
			break;
		build_mem_map(bi, map, map_size / dsize, dsize, tmp);
		st = uefi_call_wrapper(BS->ExitBootServices, 2, image, key);
		if (!EFI_ERROR(st))
			efi_enter_kernel(cr3, &handoff->gdtr, stack + STACK_SIZE, (UINT64)bi, entry);
		if (st != EFI_INVALID_PARAMETER)
			break;
	}
	/* Boot services may be half gone; try to say so anyway. */
	Print(L"ringlet-efi: ExitBootServices failed: %r\n", st);
	return fail(st);
}
