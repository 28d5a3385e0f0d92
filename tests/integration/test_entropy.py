"""Entropy: the generator's seeding, its interfaces, and virtio-rng on every
transport (apps/entropy, apps/selftest smash).

Each test boots a guest and checks what came back: the boot log's seeding
line, the 64 hex digits apps/entropy prints from getentropy(), the figures
of its `check` mode, and the exit status.
"""

import bisect
import os
import re
import struct

import pytest

from ringlet import build_app, root, run_guest

RANDOM = re.compile(r"^random: ([0-9a-f]{64})$", re.M)
SEEDED = re.compile(r"^\[ *[0-9.]+\] random: seeded from (.*)$", re.M)
WARNING = "random: *** WARNING: no entropy source"


@pytest.fixture(scope="module", autouse=True)
def apps():
    build_app("entropy")
    build_app("selftest")


def boot(args=(), extra=(), machine="q35", cpu=None):
    if cpu:
        extra = list(extra) + ["--cpu", cpu]
    result = run_guest("entropy", args=list(args), extra=list(extra), machine=machine, timeout=60)
    out = result.output.replace("\r\n", "\n")
    assert result.status == 0, out + result.launcher_stderr
    return out


def random_line(out):
    found = RANDOM.findall(out)
    assert len(found) == 1, out
    return found[0]


def seeded_from(out):
    found = SEEDED.findall(out)
    assert len(found) == 1, out
    return found[0]


def known_file(tmp_path, name, byte):
    """64 KiB of one repeated byte: QEMU's rng-random reads the device's answers from it."""
    path = tmp_path / name
    path.write_bytes(bytes([byte]) * 65536)
    return str(path)


def test_two_boots_differ():
    a, b = boot(extra=["--rng"]), boot(extra=["--rng"])
    assert seeded_from(a).startswith("virtio-rng 32 B"), a
    assert random_line(a) != random_line(b)
    assert WARNING not in a


def test_known_bytes_seed_the_generator(tmp_path):
    """rng-random on files of known bytes: with entropy=virtio the output is
    a function of the device's bytes alone (the same file twice gives the
    same line, another file another); without it, the boot log still names
    virtio-rng and the files still give different lines."""
    fa, fb = known_file(tmp_path, "a.bin", 0x11), known_file(tmp_path, "b.bin", 0x22)
    only = ["--append", "entropy=virtio"]
    a1 = boot(extra=["--rng-file", fa] + only)
    a2 = boot(extra=["--rng-file", fa] + only)
    b1 = boot(extra=["--rng-file", fb] + only)
    for out in (a1, a2, b1):
        assert seeded_from(out) == "virtio-rng 32 B", out
        assert "entropy=virtio: virtio-rng alone seeds the generator" in out
    assert random_line(a1) == random_line(a2)
    assert random_line(a1) != random_line(b1)
    # The ordinary boot mixes the CPU and the clock in too.
    a3 = boot(extra=["--rng-file", fa])
    b3 = boot(extra=["--rng-file", fb])
    assert seeded_from(a3).startswith("virtio-rng 32 B, "), a3
    assert random_line(a3) != random_line(b3)
    assert random_line(a3) != random_line(a1)


def chacha20_block(key, counter=0, nonce=bytes(12)):
    """RFC 8439 section 2.3, in Python: the host's own reference."""
    def rotl(x, n):
        return ((x << n) | (x >> (32 - n))) & 0xffffffff

    def qr(s, a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 7)

    init = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574] + list(struct.unpack("<8I", key)) + \
        [counter] + list(struct.unpack("<3I", nonce))
    s = list(init)
    for _ in range(10):
        for a, b, c, d in ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
                           (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14)):
            qr(s, a, b, c, d)
    return struct.pack("<16I", *[(x + y) & 0xffffffff for x, y in zip(s, init)])


def test_output_is_chacha20_of_the_device_bytes(tmp_path):
    """With entropy=virtio the first getentropy() is computable on the host:
    the 32 device bytes XORed into the zero key, the key replaced by a
    ChaCha20 block under it (kernel/chacha20.c's mix); the canary's 8-byte
    request moves the key on once (fast key erasure); getentropy(32) is
    then bytes 32..63 of the block under that key.
    (If the kernel ever draws more before main(), count its requests here.)"""
    out = boot(extra=["--rng-file", known_file(tmp_path, "a.bin", 0x11), "--append", "entropy=virtio"])
    key = chacha20_block(bytes([0x11]) * 32)[:32]  # the seed mixed in
    key = chacha20_block(key)[:32]                 # the stack canary's request
    assert random_line(out) == chacha20_block(key)[32:64].hex(), out


def test_canary_comes_from_the_generator(tmp_path):
    """The canary main() runs with is the generator's first request (8 bytes,
    low byte zeroed), not the early RDRAND/TSC value: with entropy=virtio
    it is computable from the device's bytes, and another file changes it."""
    def guard(path):
        result = run_guest("selftest", args=["guard"], extra=["--rng-file", path, "--append", "entropy=virtio"],
                           timeout=30)
        out = result.output.replace("\r\n", "\n")
        assert result.status == 0, out
        m = re.search(r"^selftest guard 0x([0-9a-f]{16})$", out, re.M)
        assert m, out
        return int(m.group(1), 16)

    key = chacha20_block(bytes([0x11]) * 32)[:32]
    want = struct.unpack("<Q", chacha20_block(key)[32:40])[0] & ~0xff
    assert guard(known_file(tmp_path, "a.bin", 0x11)) == want
    assert guard(known_file(tmp_path, "b.bin", 0x22)) != want


def test_no_entropy_source_still_runs():
    """No virtio-rng and a CPU without RDRAND/RDSEED: a loud warning, and
    getentropy() still gives 32 bytes that differ from boot to boot."""
    a = boot(cpu="qemu64")
    b = boot(cpu="qemu64")
    assert seeded_from(a) == "clock jitter", a
    assert WARNING in a, a
    assert "entropy: weak yes, virtio-rng no" in a, a
    assert random_line(a) != random_line(b)


def test_silent_device_is_given_up(tmp_path):
    """A virtio-rng device that never answers (rng-random on a FIFO whose
    writer never writes: QEMU's reads get EAGAIN and it waits) is reset
    after its deadline and not used again; the guest boots, is seeded from
    RDRAND, and /dev/hwrng says ENODEV. (A file that runs out is no such
    test: at its end QEMU 7.2 retries the read in a busy loop that starves
    the vCPU.)"""
    fifo = str(tmp_path / "silent")
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # keeps the FIFO open: reads see EAGAIN, not EOF
    try:
        out = boot(args=["check"], extra=["--rng-file", fifo])
    finally:
        os.close(writer)
    assert re.search(r"^\[ *[0-9.]+\] rng0: no random bytes for 1000 ms; the device is reset and not used again$",
                     out, re.M), out
    assert seeded_from(out) == "rdrand 32 B, clock jitter", out
    assert "/dev/hwrng: open ENODEV" in out, out
    assert "entropy: weak no, virtio-rng no" in out, out
    assert RANDOM.search(out) is None  # check mode; but the interfaces still work:
    assert "getentropy x8: 8 distinct" in out, out


def test_rdrand_without_device():
    """-cpu max has RDRAND under TCG: no warning without a device."""
    out = boot()
    assert "rdrand 32 B" in seeded_from(out), out
    assert "virtio-rng" not in seeded_from(out), out
    assert WARNING not in out


@pytest.mark.parametrize("machine,virtio", [("q35", "modern"), ("q35", "legacy"), ("q35", "transitional"),
                                            ("microvm", "mmio"), ("microvm", "mmio-legacy")])
def test_transports(machine, virtio):
    """virtio-rng over modern and legacy PCI and virtio-mmio (both versions)
    seeds the generator and answers /dev/hwrng."""
    out = boot(args=["check"], extra=["--rng", "--virtio", virtio], machine=machine)
    assert seeded_from(out).startswith("virtio-rng 32 B"), out
    # The note ends with the device's wake-up (docs/wait.md).
    assert re.search(r"virtio-rng rng0 queue \d+%s, (msix|irq \d+)$" % (" \\(legacy\\)" if "legacy" in virtio else ""),
                     out, re.M), out
    hw = re.search(r"^/dev/hwrng: ([0-9a-f]{64})$", out, re.M)
    assert hw and hw.group(1) != "0" * 64, out


def test_interfaces():
    out = boot(args=["check"], extra=["--rng"])
    lines = set(out.splitlines())
    for want in ["getentropy(256): 0 ok", "getentropy(257): -1 EIO",
                 "getrandom(64, 0): 64 ok", "getrandom(64, GRND_NONBLOCK): 64 ok",
                 "getrandom(64, GRND_RANDOM): 64 ok", "getrandom(64, GRND_INSECURE): 64 ok",
                 "getrandom(64, GRND_RANDOM|GRND_INSECURE): -1 EINVAL", "getrandom(64, 0x8): -1 EINVAL",
                 "getentropy x8: 8 distinct"]:
        assert want in lines, want + "\n" + out
    devs = {}
    for path in ("/dev/urandom", "/dev/random", "/dev/hwrng"):
        m = re.search(r"^%s: ([0-9a-f]{64})$" % path, out, re.M)
        assert m, out
        devs[path] = m.group(1)
    assert len(set(devs.values())) == 3, devs
    m = re.search(r"^arc4random_uniform\(6\) x6000: (\d+) (\d+) (\d+) (\d+) (\d+) (\d+), out of range (\d+)$",
                  out, re.M)
    assert m, out
    counts = [int(x) for x in m.groups()]
    assert counts[6] == 0 and sum(counts[:6]) == 6000
    # 1000 expected each; 5 standard deviations (~29) around it.
    assert all(850 < c < 1150 for c in counts[:6]), counts
    m = re.search(r"^getrandom\(1 MiB\): 1048576 bytes, (\d+) one bits of 8388608$", out, re.M)
    assert m, out
    assert abs(int(m.group(1)) - 4194304) < 10000, m.group(0)  # ~7 standard deviations
    # Past RANDOM_RESEED_BYTES of output the kernel reseeded from virtio-rng.
    m = re.findall(r"^entropy: weak no, virtio-rng yes, reseeds (\d+), output (\d+) bytes$", out, re.M)
    assert len(m) == 2, out
    assert int(m[0][0]) == 0 and int(m[1][0]) >= 1, m
    assert int(m[1][1]) > 1048576, m


def symbols():
    """(sorted starts, names) of the functions in build/selftest/ringlet.sym."""
    rows = []
    with open(os.path.join(root(), "build", "selftest", "ringlet.sym")) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[1] in "tTwW":
                rows.append((int(parts[0], 16), parts[2]))
    rows.sort()
    return [a for a, _ in rows], [n for _, n in rows]


def test_stack_smash_is_caught():
    """A byte loop past a local buffer: the canary (from the seeded
    generator) catches it on return; the report names the caller and the
    guest ends with 127."""
    result = run_guest("selftest", args=["smash"], extra=["--rng"], timeout=30)
    out = result.output.replace("\r\n", "\n")
    assert result.status == 127, out + result.launcher_stderr
    assert seeded_from(out).startswith("virtio-rng 32 B"), out
    assert "selftest: smash\n\n*** stack smashing detected: a function's canary was overwritten\n" in out, out
    assert "*** guest stopped by the stack protector\n" in out, out
    assert "did not fault" not in out
    # Frame #0 is the return address of the call to __stack_chk_fail: the
    # call itself (one byte before) lies in fault_smash.
    m = re.search(r"^  #0 +0x([0-9a-f]{16})", out, re.M)
    assert m, out
    starts, names = symbols()
    i = bisect.bisect_right(starts, int(m.group(1), 16) - 1) - 1
    assert names[i].split(".")[0] == "fault_smash", (names[i], out)
