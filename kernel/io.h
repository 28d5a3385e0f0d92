/*
 * kernel/io.h: the few instructions that reach hardware: port I/O, MMIO,
 * model-specific registers, control registers, the TSC, CPUID.
 * Everything that talks to a device goes through these tiny functions.
 */
#ifndef RINGLET_IO_H
#define RINGLET_IO_H

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* MMIO: volatile accesses of exactly the given width (devices care). */
static inline uint8_t mmio_read8(const volatile void *p) { return *(const volatile uint8_t *)p; }
static inline uint16_t mmio_read16(const volatile void *p) { return *(const volatile uint16_t *)p; }
static inline uint32_t mmio_read32(const volatile void *p) { return *(const volatile uint32_t *)p; }
static inline void mmio_write8(volatile void *p, uint8_t v) { *(volatile uint8_t *)p = v; }
static inline void mmio_write16(volatile void *p, uint16_t v) { *(volatile uint16_t *)p = v; }
static inline void mmio_write32(volatile void *p, uint32_t v) { *(volatile uint32_t *)p = v; }

/* 64-bit registers are written as two 32-bit halves, low first: the virtio
 * spec allows drivers to do so, and not every device accepts 64-bit accesses. */
static inline void mmio_write64(volatile void *p, uint64_t v)
{
	mmio_write32(p, (uint32_t)v);
	mmio_write32((volatile uint8_t *)p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

#define DEFINE_CR(n)                                                                                                   \
	static inline uint64_t read_cr##n(void)                                                                        \
	{                                                                                                              \
		uint64_t v;                                                                                            \
		__asm__ volatile("mov %%cr" #n ", %0" : "=r"(v));                                                      \
		return v;                                                                                              \
	}                                                                                                              \
	static inline void write_cr##n(uint64_t v) { __asm__ volatile("mov %0, %%cr" #n ::"r"(v) : "memory"); }
DEFINE_CR(0)
DEFINE_CR(2)
DEFINE_CR(3)
DEFINE_CR(4)
#undef DEFINE_CR

static inline void cpu_relax(void) { __asm__ volatile("pause"); }
static inline void irq_disable(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void irq_enable(void) { __asm__ volatile("sti" ::: "memory"); }
/* Interrupts off; returns RFLAGS as they were, for irq_restore(). The
 * kernel runs with interrupts off, except that the application (and the
 * kernel code it calls) may run with them on when a tick is registered
 * (time_tick_set()): code that a tick handler's work must not interrupt
 * brackets itself with these. */
static inline uint64_t irq_save(void)
{
	uint64_t f;
	__asm__ volatile("pushfq; popq %0; cli" : "=r"(f)::"memory");
	return f;
}
static inline void irq_restore(uint64_t f)
{
	if (f & (1u << 9)) /* IF */
		__asm__ volatile("sti" ::: "memory");
}
/* sti takes effect after the next instruction, so "sti; hlt" cannot miss a
 * wake-up that arrives between the two. */
static inline void irq_enable_and_halt(void) { __asm__ volatile("sti; hlt; cli" ::: "memory"); }

#endif
