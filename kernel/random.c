/*
 * kernel/random.c: the random-number generator and the C interfaces over it
 * (getentropy, getrandom, arc4random, /dev/urandom, /dev/random, /dev/hwrng).
 *
 * A virtual machine has no entropy of its own: its "hardware" is a program
 * on the host, its clock readings are the host's, and two guests booted
 * from one image start identical. So the generator is seeded from what the
 * host offers on purpose: virtio-rng (the host's /dev/urandom or getrandom),
 * and RDSEED/RDRAND where the CPU model has them. Clock jitter is mixed in
 * too, and is all there is when the others are missing: then the boot log
 * says so loudly, and everything still works, from the best there is.
 *
 * The generator is ChaCha20 with fast key erasure (kernel/chacha20.c): its
 * state is one key, replaced before each request returns, so stealing the
 * state later reveals nothing that was handed out before.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#include <ringlet/random.h>

#include "../drivers/virtio_rng.h"
#include "chacha20.h"
#include "fd.h"
#include "io.h"
#include "kernel.h"
#include "random.h"

#define SEED_BYTES 32
/* How long the device may stay silent before it counts as broken: its
 * answer normally takes microseconds (one trip through QEMU's main loop). */
#define SILENCE_NS (1000ull * 1000000ull)
/* The most one generator request makes before the key moves on. */
#define REQUEST_MAX (64u * 1024)

enum { SRC_VIRTIO = 1, SRC_RDSEED = 2, SRC_RDRAND = 4, SRC_JITTER = 8 };

static struct chacha20_rng rng;
static bool seeded;
static bool virtio_only;      /* entropy=virtio */
static unsigned cpu_sources;  /* SRC_RDSEED | SRC_RDRAND the CPU has */
static uint64_t since_reseed; /* output bytes since the last seeding */
static uint64_t reseed_ns;    /* time_ns() of the last seeding */
static uint64_t total_bytes, reseeds;
static char seeded_from[96];
static bool weak;

bool random_option(const char *w)
{
	if (strcmp(w, "entropy=virtio") != 0)
		return false;
	virtio_only = true;
	return true;
}

/* ---- the sources --------------------------------------------------------- */

static void cpu_detect(void)
{
	uint32_t r[4];
	cpuid(0, 0, r);
	uint32_t max_leaf = r[0];
	cpuid(1, 0, r);
	if (r[2] & (1u << 30))
		cpu_sources |= SRC_RDRAND;
	if (max_leaf >= 7) {
		cpuid(7, 0, r);
		if (r[1] & (1u << 18))
			cpu_sources |= SRC_RDSEED;
	}
}

/* Intel's guidance: a failed RDRAND/RDSEED (CF=0) is retried, about ten
 * times for RDRAND; RDSEED may fail for longer when drained. */
static bool rdrand64(uint64_t *v)
{
	for (int i = 0; i < 10; i++) {
		unsigned char ok;
		__asm__ volatile("rdrand %0; setc %1" : "=r"(*v), "=qm"(ok));
		if (ok)
			return true;
	}
	return false;
}

static bool rdseed64(uint64_t *v)
{
	for (int i = 0; i < 100; i++) {
		unsigned char ok;
		__asm__ volatile("rdseed %0; setc %1" : "=r"(*v), "=qm"(ok));
		if (ok)
			return true;
		__builtin_ia32_pause();
	}
	return false;
}

/* SEED_BYTES from an instruction; how many it gave (0 when it failed). */
static size_t cpu_seed(bool (*insn)(uint64_t *), uint64_t seed[SEED_BYTES / 8])
{
	for (int i = 0; i < SEED_BYTES / 8; i++)
		if (!insn(&seed[i]))
			return 0;
	return SEED_BYTES;
}

/*
 * Clock jitter: the TSC read around work whose duration varies with caches,
 * interrupts and, here, the host's scheduling of the vCPU. Under emulation
 * much of that is predictable, so it is never counted as a source when a
 * real one is there; alone, it is the "best it has".
 */
static void jitter_seed(uint64_t out[64])
{
	static volatile uint64_t scratch[256];
	out[0] = boot_tsc;
	out[1] = time_realtime_ns();
	for (int i = 2; i < 64; i++) {
		uint64_t t = rdtsc();
		for (unsigned j = 0; j < 16 + (t & 63); j++)
			scratch[((t >> 3) + j * 97) & 255] += t;
		out[i] = rdtsc() ^ t << 32;
	}
}

static void append(size_t *len, const char *what, size_t bytes)
{
	size_t n = *len;
	if (bytes)
		n += ksnprintf(seeded_from + n, sizeof(seeded_from) - n, "%s%s %lu B", n ? ", " : "", what,
		               (unsigned long)bytes);
	else
		n += ksnprintf(seeded_from + n, sizeof(seeded_from) - n, "%s%s", n ? ", " : "", what);
	*len = n < sizeof(seeded_from) ? n : sizeof(seeded_from) - 1;
}

/* Mixes every source in; returns the ones that gave something. */
static unsigned seed_all(bool boot)
{
	unsigned got = 0;
	uint64_t seed[64];
	/* A device that fails is not used again; the next one, if any, is. */
	for (int tries = 0; tries < 4 && !(got & SRC_VIRTIO) && virtio_rng_available(); tries++)
		if (virtio_rng_read(seed, SEED_BYTES, SILENCE_NS) == SEED_BYTES) {
			chacha20_rng_mix(&rng, seed, SEED_BYTES);
			got |= SRC_VIRTIO;
		}
	if (!virtio_only) {
		if ((cpu_sources & SRC_RDSEED) && cpu_seed(rdseed64, seed)) {
			chacha20_rng_mix(&rng, seed, SEED_BYTES);
			got |= SRC_RDSEED;
		}
		if ((cpu_sources & SRC_RDRAND) && cpu_seed(rdrand64, seed)) {
			chacha20_rng_mix(&rng, seed, SEED_BYTES);
			got |= SRC_RDRAND;
		}
		/* At boot, and whenever nothing better answered. */
		if (boot || !got) {
			jitter_seed(seed);
			chacha20_rng_mix(&rng, seed, sizeof(seed));
			got |= SRC_JITTER;
		}
	}
	memset(seed, 0, sizeof(seed));
	__asm__ volatile("" ::"r"(seed) : "memory");
	since_reseed = 0;
	reseed_ns = time_ns();
	return got;
}

static void seed_early(void)
{
	/* Before random_init() (nothing draws that early today): the CPU and
	 * the clock, and random_init() mixes in the rest. */
	cpu_detect();
	uint64_t seed[64];
	jitter_seed(seed);
	chacha20_rng_mix(&rng, seed, sizeof(seed));
	uint64_t v;
	if ((cpu_sources & SRC_RDRAND) && rdrand64(&v))
		chacha20_rng_mix(&rng, &v, sizeof(v));
	seeded = true;
}

/* ---- the generator ------------------------------------------------------- */

void random_bytes(void *buf, size_t n)
{
	uint8_t *p = buf;
	if (!seeded)
		seed_early();
	while (n) {
		size_t take = n < REQUEST_MAX ? n : REQUEST_MAX;
		chacha20_rng_generate(&rng, p, take);
		p += take;
		n -= take;
		since_reseed += take;
		total_bytes += take;
	}
}

void random_read(void *buf, size_t n)
{
	if (since_reseed >= RANDOM_RESEED_BYTES || time_ns() - reseed_ns >= RANDOM_RESEED_NS) {
		unsigned got = seed_all(false);
		if (got & SRC_VIRTIO)
			reseeds++;
	}
	random_bytes(buf, n);
}

void random_info(struct random_info *info)
{
	memset(info, 0, sizeof(*info));
	memcpy(info->seeded_from, seeded_from, sizeof(info->seeded_from));
	info->weak = weak;
	info->virtio_rng = virtio_rng_available();
	info->reseeds = reseeds;
	info->bytes = total_bytes;
}

/* ---- the C interfaces ---------------------------------------------------- */

/* <unistd.h>, as glibc and OpenBSD: at most 256 bytes, else EIO. Never
 * blocks: the generator is seeded before main(). */
int getentropy(void *buf, size_t n)
{
	if (n > 256) {
		errno = EIO;
		return -1;
	}
	random_read(buf, n);
	return 0;
}

/* <sys/random.h>, as Linux 5.18+: one generator whatever the flags, seeded
 * before main(), so nothing ever blocks and GRND_NONBLOCK never matters;
 * GRND_RANDOM and GRND_INSECURE together, or unknown flags, are EINVAL. */
ssize_t getrandom(void *buf, size_t n, unsigned int flags)
{
	const unsigned known = GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE;
	if ((flags & ~known) || (flags & (GRND_RANDOM | GRND_INSECURE)) == (GRND_RANDOM | GRND_INSECURE)) {
		errno = EINVAL;
		return -1;
	}
	if (n > 0x7ffff000) /* Linux's MAX_RW_COUNT: a short read, as there */
		n = 0x7ffff000;
	random_read(buf, n);
	return (ssize_t)n;
}

/* newlib's own arc4random keeps a second ChaCha20 state seeded through
 * getentropy(); defining these here keeps its object out of the link, so
 * there is one generator. (newlib's arc4random_uniform() calls ours.) */
void arc4random_buf(void *buf, size_t n) { random_read(buf, n); }

uint32_t arc4random(void)
{
	uint32_t v;
	random_read(&v, sizeof(v));
	return v;
}

/* ---- the device files ---------------------------------------------------- */

static ssize_t urandom_read(void *ctx, void *buf, size_t n, uint64_t off)
{
	(void)ctx, (void)off;
	random_read(buf, n);
	return (ssize_t)n;
}

/* Writing mixes the bytes in, as Linux does; it credits nothing, and
 * nothing here counts entropy anyway. */
static ssize_t urandom_write(void *ctx, const void *buf, size_t n, uint64_t off)
{
	(void)ctx, (void)off;
	chacha20_rng_mix(&rng, buf, n);
	return (ssize_t)n;
}

static const struct fd_ops urandom_ops = {.read = urandom_read, .write = urandom_write};

/* /dev/hwrng: the device's own bytes, as Linux's, for measuring it. */
static int hwrng_open(void *ctx, int flags)
{
	(void)ctx, (void)flags;
	return virtio_rng_available() ? 0 : -ENODEV;
}

static ssize_t hwrng_read(void *ctx, void *buf, size_t n, uint64_t off)
{
	(void)ctx, (void)off;
	return virtio_rng_read(buf, n, SILENCE_NS);
}

static const struct fd_ops hwrng_ops = {.open = hwrng_open, .read = hwrng_read};

/* ---- start-up -------------------------------------------------------------- */

void random_init(void)
{
	if (!seeded)
		seed_early();
	/* entropy=virtio: start from a zero key, so that the output is a
	 * function of the device's bytes alone. */
	if (virtio_only)
		memset(&rng, 0, sizeof(rng));
	unsigned got = seed_all(true);
	if (virtio_only && !got) {
		uint64_t seed[64]; /* no device after all: not a fixed key */
		jitter_seed(seed);
		chacha20_rng_mix(&rng, seed, sizeof(seed));
		got |= SRC_JITTER;
	}
	size_t len = 0;
	seeded_from[0] = 0;
	if (got & SRC_VIRTIO)
		append(&len, "virtio-rng", SEED_BYTES);
	if (got & SRC_RDSEED)
		append(&len, "rdseed", SEED_BYTES);
	if (got & SRC_RDRAND)
		append(&len, "rdrand", SEED_BYTES);
	if (got & SRC_JITTER)
		append(&len, "clock jitter", 0);
	weak = !(got & (SRC_VIRTIO | SRC_RDSEED | SRC_RDRAND));
	if (virtio_only)
		klog("random: entropy=virtio: virtio-rng alone seeds the generator; its output repeats with the "
		     "device's bytes (for tests)");
	klog("random: seeded from %s", len ? seeded_from : "nothing");
	if (weak)
		klog("random: *** WARNING: no entropy source (no virtio-rng, no RDSEED or RDRAND): random numbers "
		     "rest on clock jitter and may be guessable; add -device virtio-rng-pci ***");

	fd_register_device("/dev/urandom", &urandom_ops, NULL);
	fd_register_device("/dev/random", &urandom_ops, NULL);
	fd_register_device("/dev/hwrng", &hwrng_ops, NULL);
}
