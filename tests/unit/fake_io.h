/*
 * fake_io.h: kernel/io.h for host-side tests, pre-included (gcc -include) so
 * that its guard turns the real header into nothing. MMIO stays a plain
 * volatile access (the test's "BARs" are heap buffers, so ASan sees every
 * stray one); port I/O goes to fake_port_read/fake_port_write, which the
 * test defines to play a legacy device's I/O BAR; cpu_relax does nothing.
 */
#ifndef RINGLET_IO_H
#define RINGLET_IO_H

#include <stdint.h>

uint32_t fake_port_read(uint16_t port, int width);
void fake_port_write(uint16_t port, int width, uint32_t v);

static inline void outb(uint16_t port, uint8_t v) { fake_port_write(port, 1, v); }
static inline void outw(uint16_t port, uint16_t v) { fake_port_write(port, 2, v); }
static inline void outl(uint16_t port, uint32_t v) { fake_port_write(port, 4, v); }
static inline uint8_t inb(uint16_t port) { return (uint8_t)fake_port_read(port, 1); }
static inline uint16_t inw(uint16_t port) { return (uint16_t)fake_port_read(port, 2); }
static inline uint32_t inl(uint16_t port) { return fake_port_read(port, 4); }

static inline uint8_t mmio_read8(const volatile void *p) { return *(const volatile uint8_t *)p; }
static inline uint16_t mmio_read16(const volatile void *p) { return *(const volatile uint16_t *)p; }
static inline uint32_t mmio_read32(const volatile void *p) { return *(const volatile uint32_t *)p; }
static inline void mmio_write8(volatile void *p, uint8_t v) { *(volatile uint8_t *)p = v; }
static inline void mmio_write16(volatile void *p, uint16_t v) { *(volatile uint16_t *)p = v; }
static inline void mmio_write32(volatile void *p, uint32_t v) { *(volatile uint32_t *)p = v; }
static inline void mmio_write64(volatile void *p, uint64_t v)
{
	mmio_write32(p, (uint32_t)v);
	mmio_write32((volatile uint8_t *)p + 4, (uint32_t)(v >> 32));
}

static inline void cpu_relax(void) {}
/* No interrupts on the host: nothing to turn off. */
static inline uint64_t irq_save(void) { return 0; }
static inline void irq_restore(uint64_t f) { (void)f; }

#endif
