/*
 * fuzz_cmdline: libFuzzer target for kernel/cmdline.c, the kernel command
 * line's word splitter, size parser and virtio_mmio.device= parser (the
 * command line comes from whoever
 * starts the guest: QEMU's -append, a file on the ESP, a boot loader).
 *
 *	make fuzz FUZZ=cmdline FUZZ_SECONDS=300
 *
 * The input becomes a NUL-terminated buffer of exactly its own size, split in
 * place as the kernel does; every word must lie inside the buffer and be
 * NUL-terminated there, and each word is also given to the size parser and
 * (as a value) to the virtio_mmio.device= parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"

#define MAXW 128

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	char *words[MAXW];
	const char *err;
	uint64_t v;

	memcpy(buf, data, size);
	buf[size] = '\0';
	int n = cmdline_split(buf, words, MAXW, &err);
	if (n < 0 || n > MAXW)
		abort();
	for (int i = 0; i < n; i++) {
		if (words[i] < buf || words[i] > buf + size)
			abort();
		if (strnlen(words[i], (size_t)(buf + size + 1 - words[i])) > size)
			abort();
		(void)cmdline_parse_size(words[i], &v);
		struct cmdline_virtio_mmio d;
		const char *why;
		if (cmdline_virtio_mmio(words[i], &d, &why) == 0 &&
		    (d.size < 0x100 || d.base == 0 || d.base % 4 || d.irq == 0 || d.irq > 255 || why))
			abort(); /* accepted what it must refuse */
	}
	free(buf);
	return 0;
}
