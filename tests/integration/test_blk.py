"""Disk tests: apps/blktool against real image files under TCG.

The host makes every image itself (raw files written by Python, qcow2 through
qemu-img), so it knows each byte. The guest reads them back and reports
SHA-256 checksums that the test recomputes with hashlib; the guest writes,
zeroes and discards ranges, and the test reads the image file afterwards and
checks that exactly those bytes changed. Error paths (read-only drives,
blkdebug-injected EIO, ranges past the end) must give `error:` lines and a
non-zero status, never a hang or a crash report. A crash test kills QEMU with
SIGKILL right after the guest says its flush completed and checks that the
flushed data is in the image.
"""

import ctypes
import ctypes.util
import hashlib
import os
import random
import re
import selectors
import shlex
import signal
import subprocess
import time
import zlib

import pytest

from ringlet import build_app, root, run_guest

MiB = 1 << 20
SIZE = 16 * MiB
EIO_TEXT = "I/O error"              # newlib's strerror(EIO)
EINVAL_TEXT = "Invalid argument"    # newlib's strerror(EINVAL)
EROFS_TEXT = "Read-only file system"


@pytest.fixture(scope="module", autouse=True)
def blktool():
    build_app("blktool")


# ---- helpers -------------------------------------------------------------------

def pattern(size, seed):
    """size pseudo-random bytes, the same for the same seed."""
    return random.Random(seed).randbytes(size)


def make_raw(path, size=SIZE, seed=1):
    data = pattern(size, seed)
    with open(path, "wb") as f:
        f.write(data)
    return data


def make_qcow2(tmp_path, name, size=SIZE, seed=1):
    """A qcow2 image holding the pattern (converted from a raw file)."""
    raw = tmp_path / (name + ".src.raw")
    data = make_raw(raw, size, seed)
    path = tmp_path / (name + ".qcow2")
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(path)],
                   check=True)
    raw.unlink()
    return path, data


def qcow2_bytes(tmp_path, path):
    """The guest-visible contents of a qcow2 image."""
    out = tmp_path / (path.name + ".check.raw")
    subprocess.run(["qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", str(path), str(out)],
                   check=True)
    data = out.read_bytes()
    out.unlink()
    return data


def sha(data):
    return hashlib.sha256(data).hexdigest()


def console(result):
    return result.output.replace("\r\n", "\n")


def blk(args, disks, machine="q35", virtio=None, extra=(), timeout=60):
    """Run blktool with these commands and --disk specs; returns the Result."""
    opts = []
    for d in disks:
        opts += ["--disk", str(d)]
    if virtio:
        opts += ["--virtio", virtio]
    return run_guest("blktool", args=[str(a) for a in args], machine=machine,
                     extra=opts + list(extra), timeout=timeout)


def ok(result):
    """Assert a clean exit; return the console."""
    out = console(result)
    assert result.status == 0, "status %d\n%s%s" % (result.status, out, result.launcher_stderr)
    assert "***" not in out, out
    return out


def failed(result, status=1):
    """Assert `error:` and this status without a crash report; return the error line."""
    out = console(result)
    assert result.status == status, "status %d, want %d\n%s%s" % (
        result.status, status, out, result.launcher_stderr)
    assert "***" not in out, out
    errors = [l for l in out.splitlines() if l.startswith("error: ")]
    assert errors, "no error line:\n" + out
    return errors[0]


def sha_line(out, dev, off, length):
    m = re.search(r"^sha256 %s %d %d ([0-9a-f]{64})$" % (dev, off, length), out, re.M)
    assert m, "no sha256 line for %s %d %d:\n%s" % (dev, off, length, out)
    return m.group(1)


def info_line(out, dev):
    m = re.search(r"^info %s (.*)$" % dev, out, re.M)
    assert m, "no info line for %s:\n%s" % (dev, out)
    return dict(kv.split("=", 1) for kv in m.group(1).split())


def apply(data, ops):
    """What the image must hold after blktool's fill/zero/discard commands."""
    data = bytearray(data)
    for op in ops:
        if op[0] == "fill":
            _, off, length, byte = op
            data[off:off + length] = bytes([byte]) * length
        elif op[0] in ("zero", "discard"):   # discard: punched holes read as zeros
            _, off, length = op
            data[off:off + length] = bytes(length)
    return bytes(data)


def commands(ops, dev="vda"):
    args = []
    for op in ops:
        args += [op[0], dev] + ["0x%x" % v if i == 3 else str(v) for i, v in enumerate(op[1:], 1)]
    return args


def assert_same(got, want, what="image"):
    """Equal bytes, or a message naming the first differing range."""
    assert len(got) == len(want), "%s: %d bytes, want %d" % (what, len(got), len(want))
    if got == want:
        return
    first = next(i for i in range(len(want)) if got[i] != want[i])
    last = next(i for i in range(len(want) - 1, -1, -1) if got[i] != want[i])
    raise AssertionError("%s differs in bytes %d..%d (got %r..., want %r...)" % (
        what, first, last, got[first:first + 8], want[first:first + 8]))


# Writes at unaligned offsets (inside one sector, across sectors, the last
# bytes of the disk) plus a write-zeroes of whole blocks.
WRITES = [
    ("fill", 1000, 5000, 0xab),
    ("fill", MiB + 3, 100, 0xcd),
    ("fill", 3 * MiB - 17, 2 * 4096 + 40, 0x00),
    ("fill", SIZE - 513, 513, 0x5e),
    ("zero", 5 * MiB, 64 * 1024),
]


# ---- reading -------------------------------------------------------------------

def test_read_back(tmp_path):
    """The guest's checksums of the whole disk and unaligned ranges match the host's."""
    img = tmp_path / "r.img"
    data = make_raw(img, seed=11)
    ranges = [(0, SIZE), (1000, 5000), (SIZE - 700, 700), (511, 2)]
    args = ["info"]
    for off, length in ranges:
        args += ["sha256", "vda", off, length]
    out = ok(blk(args, [img]))
    for off, length in ranges:
        assert sha_line(out, "vda", off, length) == sha(data[off:off + length]), (off, length)
    info = info_line(out, "vda")
    assert info["size"] == str(SIZE) and info["block"] == "512" and info["ro"] == "no", info
    # The boot log lists the disk on PCI: `pci BB:DD.F 1af4:DDDD CLASS ... virtio-blk vda`.
    assert re.search(r"^\[[ 0-9.]+\] pci [0-9a-f]{2}:[0-9a-f]{2}\.[0-7] 1af4:10(01|42) .*virtio-blk vda",
                     out, re.M), out
    with open(img, "rb") as f:
        assert f.read() == data, "a read changed the image"


# ---- writing -------------------------------------------------------------------

def test_writes_land_exactly(tmp_path):
    """fill/zero at known offsets + flush change exactly those bytes of the file."""
    img = tmp_path / "w.img"
    data = make_raw(img, seed=12)
    out = ok(blk(commands(WRITES) + ["flush", "vda"], [img]))
    assert "ok flush vda" in out
    assert "ok zero vda %d %d" % (5 * MiB, 65536) in out
    assert_same(img.read_bytes(), apply(data, WRITES))


def test_discard_punches_holes(tmp_path):
    """discard=unmap on a raw file: the range becomes a hole and reads as zeros."""
    img = tmp_path / "d.img"
    if not punch_hole_works(tmp_path):
        pytest.skip("%s cannot punch holes (fallocate PUNCH_HOLE)" % tmp_path)
    data = make_raw(img, seed=13)
    os.sync()
    blocks_before = os.stat(img).st_blocks
    off, length = 2 * MiB, 2 * MiB
    assert data_in(img, off, length), "the image has a hole before the test"
    out = ok(blk(["info", "discard", "vda", off, length, "flush", "vda",
                  "sha256", "vda", off, length], [str(img) + ",discard"]))
    assert info_line(out, "vda")["discard"] == "yes"
    assert "ok discard vda %d %d" % (off, length) in out
    assert not data_in(img, off, length), "no hole at %d..%d after discard" % (off, off + length)
    assert os.stat(img).st_blocks <= blocks_before - length // 512 + 8, "st_blocks did not drop"
    assert sha_line(out, "vda", off, length) == sha(bytes(length))
    assert_same(img.read_bytes(), apply(data, [("discard", off, length)]))


def punch_hole_works(directory):
    """Whether the filesystem under directory supports FALLOC_FL_PUNCH_HOLE."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    probe = directory / "punch-probe"
    probe.write_bytes(b"x" * (2 * MiB))
    fd = os.open(probe, os.O_RDWR)
    try:
        return libc.fallocate(fd, 0x01 | 0x02, 0, MiB) == 0   # KEEP_SIZE | PUNCH_HOLE
    finally:
        os.close(fd)
        probe.unlink()


def data_in(path, off, length):
    """Whether any byte of [off, off+length) of the file is allocated (not a hole)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            pos = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:     # ENXIO: only holes from off to the end
            return False
        return pos < off + length
    finally:
        os.close(fd)


def test_read_only_drive(tmp_path):
    """A readonly=on drive: info says ro=yes, reads work, writes fail, the file is unchanged."""
    img = tmp_path / "ro.img"
    data = make_raw(img, seed=14)
    result = blk(["info", "sha256", "vda", 0, 65536, "fill", "vda", 4096, 512, 0x11],
                 [str(img) + ",ro"])
    err = failed(result)
    out = console(result)
    assert info_line(out, "vda")["ro"] == "yes"
    assert sha_line(out, "vda", 0, 65536) == sha(data[:65536])
    assert "fill vda" in err and EROFS_TEXT in err, err
    for cmd in (["zero", "vda", 0, 4096], ["discard", "vda", 0, 4096]):
        err = failed(blk(cmd, [str(img) + ",ro"]))
        assert cmd[0] in err and "Read-only" in err, err
    assert img.read_bytes() == data


def test_qcow2(tmp_path):
    """A qcow2 image reads back the same bytes and takes writes."""
    img, data = make_qcow2(tmp_path, "q", seed=15)
    writes = WRITES[:2] + [("fill", 9 * MiB + 4095, 70000, 0x77)]
    out = ok(blk(["info", "sha256", "vda", 0, SIZE] + commands(writes) + ["flush", "vda"], [img]))
    assert info_line(out, "vda")["size"] == str(SIZE)
    assert sha_line(out, "vda", 0, SIZE) == sha(data)
    subprocess.run(["qemu-img", "check", "-q", str(img)], check=True)
    assert_same(qcow2_bytes(tmp_path, img), apply(data, writes), "qcow2 contents")


# ---- injected errors -----------------------------------------------------------

def blkdebug_conf(tmp_path, event):
    conf = tmp_path / ("%s.conf" % event)
    conf.write_text('[inject-error]\nevent = "%s"\nerrno = "5"\n' % event)
    return conf


def test_blkdebug_read_error(tmp_path):
    """EIO on every read: sha256 fails with an I/O error, quickly, no crash."""
    img = tmp_path / "e.img"
    make_raw(img, seed=16)
    conf = blkdebug_conf(tmp_path, "read_aio")
    result = blk(["info", "sha256", "vda", 0, 65536], ["%s,blkdebug=%s" % (img, conf)], timeout=20)
    err = failed(result)
    assert err.startswith("error: sha256 vda") and EIO_TEXT in err, err
    assert result.elapsed < 15, "took %.1f s" % result.elapsed


def test_blkdebug_write_error(tmp_path):
    """EIO on every write: reads still work, fill fails, the file is unchanged."""
    img = tmp_path / "e.img"
    data = make_raw(img, seed=17)
    conf = blkdebug_conf(tmp_path, "write_aio")
    result = blk(["sha256", "vda", 0, 4096, "fill", "vda", 0, 4096, 0x11],
                 ["%s,blkdebug=%s" % (img, conf)], timeout=20)
    err = failed(result)
    assert sha_line(console(result), "vda", 0, 4096) == sha(data[:4096])
    assert err.startswith("error: fill vda") and EIO_TEXT in err, err
    assert result.elapsed < 15, "took %.1f s" % result.elapsed
    assert img.read_bytes() == data


# ---- transports and machines ---------------------------------------------------

@pytest.mark.parametrize("machine", ["q35", "pc", "microvm"])
@pytest.mark.parametrize("virtio", ["transitional", "modern", "legacy"])
def test_transport_machine(tmp_path, machine, virtio):
    """Whole-disk read-back and exact writes on each virtio-pci flavour and machine."""
    img = tmp_path / "t.img"
    if machine == "microvm" and virtio == "legacy":
        # microvm's PCIe host bridge routes no I/O ports, so a legacy-only
        # device cannot be driven: the kernel must say so, not fail silently.
        make_raw(img, seed=5)
        out = ok(blk(["info"], [img], machine=machine, virtio=virtio))
        assert "legacy-only, and this machine has no I/O port window" in out, out
        assert "info no disks" in out, out
        return
    data = make_raw(img, seed=zlib.crc32((machine + virtio).encode()))
    args = ["info", "sha256", "vda", 0, SIZE, "sha256", "vda", 1000, 5000]
    out = ok(blk(args + commands(WRITES) + ["flush", "vda"], [img], machine=machine, virtio=virtio))
    info = info_line(out, "vda")
    assert info["transport"] == ("legacy" if virtio == "legacy" else "modern"), info
    assert info["size"] == str(SIZE), info
    assert sha_line(out, "vda", 0, SIZE) == sha(data)
    assert sha_line(out, "vda", 1000, 5000) == sha(data[1000:6000])
    assert_same(img.read_bytes(), apply(data, WRITES))


@pytest.mark.parametrize("virtio", ["mmio", "mmio-legacy"])
def test_virtio_mmio(tmp_path, virtio):
    """microvm without PCI: the disk on virtio-mmio (version 2, and the legacy
    version 1), found through the ACPI DSDT. Read-back, exact writes, and a
    full queue of requests in flight."""
    img = tmp_path / "m.img"
    data = make_raw(img, seed=zlib.crc32(virtio.encode()))
    args = ["info", "sha256", "vda", 0, SIZE, "parallel", "vda", 300]
    out = ok(blk(args + commands(WRITES) + ["flush", "vda"], [img], machine="microvm", virtio=virtio))
    info = info_line(out, "vda")
    assert info["bus"] == "mmio", info
    assert info["transport"] == ("legacy" if virtio == "mmio-legacy" else "modern"), info
    assert re.search(r"^\[[ 0-9.]+\] virtio mmio 0x[0-9a-f]+ %s type 2 virtio-blk vda" % virtio, out, re.M), out
    assert sha_line(out, "vda", 0, SIZE) == sha(data)
    m = re.search(r"^parallel vda 300 inflight=(\d+) sha256=([0-9a-f]{64})$", out, re.M)
    assert m and int(m.group(1)) == int(info["queue"]) and m.group(2) == sha(data[:300 * 4096]), out
    assert_same(img.read_bytes(), apply(data, WRITES))


# ---- many requests in flight ------------------------------------------------------

@pytest.mark.parametrize("virtio", ["modern", "legacy"])
def test_queue_full_of_requests(tmp_path, virtio):
    """As many 4 KiB reads in flight as the queue has entries, matched back to
    their buffers by cookie: the data comes out in disk order."""
    img = tmp_path / "q.img"
    data = make_raw(img, seed=31)
    count = 300  # more than the queue: the rest wait for room
    out = ok(blk(["info", "parallel", "vda", count], [img], virtio=virtio))
    queue = int(info_line(out, "vda")["queue"])
    m = re.search(r"^parallel vda %d inflight=(\d+) sha256=([0-9a-f]{64})$" % count, out, re.M)
    assert m, out
    assert int(m.group(1)) == queue == 256, out
    assert m.group(2) == sha(data[:count * 4096])


@pytest.mark.parametrize("virtio", ["modern", "legacy"])
def test_held_completions_many_rounds(tmp_path, virtio):
    """Fill the queue, make a synchronous call, and again, without reaping:
    the synchronous calls hold ever more completions for their owner (more
    than the queue has entries). Every request must come back exactly once,
    with its own block's bytes, and the synchronous reads with theirs."""
    img = tmp_path / "h.img"
    data = make_raw(img, seed=32)
    rounds = 6
    out = ok(blk(["info", "rounds", "vda", rounds], [img], virtio=virtio))
    queue = int(info_line(out, "vda")["queue"])
    m = re.search(r"^rounds vda %d requests=(\d+) completed=(\d+) sha256=([0-9a-f]{64}) sync=([0-9a-f]{64})$"
                  % rounds, out, re.M)
    assert m, out
    requests = int(m.group(1))
    # Each round after the first finds the queue emptied by the synchronous
    # call before it, so more requests went out than the queue holds.
    assert requests > 2 * queue, out
    assert int(m.group(2)) == requests, out
    assert m.group(3) == sha(data[:requests * 4096])
    assert m.group(4) == sha(data[:rounds * 4096])


# ---- the end of the disk --------------------------------------------------------

@pytest.mark.parametrize("block", [512, 4096])
def test_size_is_what_can_be_read(tmp_path, block):
    """A disk of 16 MiB + 1536 bytes. With 4 KiB logical blocks the device
    takes only whole 4 KiB requests, so the last 1536 bytes cannot be read:
    fstat's size must be the 16 MiB that read() actually returns, and a read
    there gives 0. With 512-byte blocks every byte can be read."""
    img = tmp_path / "e.img"
    data = make_raw(img, SIZE + 1536, seed=60)
    readable = SIZE if block == 4096 else SIZE + 1536
    out = ok(blk(["info", "eof", "vda", "sha256", "vda", readable - block, block],
                 ["%s,block=%d" % (img, block)]))
    info = info_line(out, "vda")
    assert info["block"] == str(block) and info["size"] == str(readable), info
    m = re.search(r"^eof vda size=(\d+) read=(\d+) at_end=(-?\d+) sha256=([0-9a-f]{64})$", out, re.M)
    assert m, out
    assert int(m.group(1)) == int(m.group(2)) == readable, out
    assert int(m.group(3)) == 0, out
    assert m.group(4) == sha(data[:readable])
    # The last readable block, on its own.
    assert sha_line(out, "vda", readable - block, block) == sha(data[readable - block:readable])


# ---- several disks, serial numbers ---------------------------------------------

def test_two_disks(tmp_path):
    """vda and vdb are distinct disks; writes to vdb leave vda alone."""
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    da = make_raw(a, SIZE, seed=21)
    db = make_raw(b, 2 * SIZE, seed=22)
    writes = [("fill", 7, 9000, 0x42), ("fill", 2 * SIZE - 4096, 4096, 0x43), ("zero", MiB, 8192)]
    out = ok(blk(["info", "sha256", "vda", 0, MiB, "sha256", "vdb", 0, MiB]
                 + commands(writes, "vdb") + ["flush", "vdb", "sha256", "vdb", 0, 16384], [a, b]))
    assert info_line(out, "vda")["size"] == str(SIZE)
    assert info_line(out, "vdb")["size"] == str(2 * SIZE)
    assert sha_line(out, "vda", 0, MiB) == sha(da[:MiB])
    assert sha_line(out, "vdb", 0, MiB) == sha(db[:MiB])
    want_b = apply(db, writes)
    assert sha_line(out, "vdb", 0, 16384) == sha(want_b[:16384])
    assert a.read_bytes() == da, "a write to vdb changed vda"
    assert_same(b.read_bytes(), want_b, "vdb")


def test_get_id(tmp_path):
    """get-id returns the drive's serial: a short one and one of the full 20 bytes."""
    disks = []
    for i, serial in enumerate(["RL-0042", "ABCDEFGHIJKLMNOPQRST"]):
        img = tmp_path / ("id%d.img" % i)
        make_raw(img, MiB, seed=30 + i)
        disks += ["--qemu-arg=-drive", "--qemu-arg=file=%s,if=none,id=sn%d,format=raw" % (img, i),
                  "--qemu-arg=-device", "--qemu-arg=virtio-blk-pci,drive=sn%d,serial=%s" % (i, serial)]
    out = ok(blk(["id", "vda", "id", "vdb"], [], extra=disks))
    assert re.search(r"^id vda RL-0042$", out, re.M), out
    assert re.search(r"^id vdb ABCDEFGHIJKLMNOPQRST$", out, re.M), out


def test_small_device_limits(tmp_path):
    """A device that takes at most 1 MiB of write-zeroes and 512 KiB of
    discard per request: larger ranges are split, and the zeros land."""
    img = tmp_path / "lim.img"
    data = make_raw(img, SIZE, seed=40)
    disk = ["--qemu-arg=-drive", "--qemu-arg=file=%s,if=none,id=lim,format=raw,discard=unmap" % img,
            "--qemu-arg=-device",
            "--qemu-arg=virtio-blk-pci,drive=lim,max-write-zeroes-sectors=2048,max-discard-sectors=1024"]
    ops = [("zero", MiB, 5 * MiB), ("discard", 8 * MiB, 3 * MiB)]
    out = ok(blk(commands(ops) + ["flush", "vda"], [], extra=disk))
    assert "ok zero vda %d %d" % (MiB, 5 * MiB) in out, out
    assert "ok discard vda %d %d" % (8 * MiB, 3 * MiB) in out, out
    assert_same(img.read_bytes(), apply(data, ops))


# ---- bad input -----------------------------------------------------------------

@pytest.mark.parametrize("args,status,text", [
    (["zero", "vda", SIZE - 512, 1024], 1, EINVAL_TEXT),        # runs past the end
    (["discard", "vda", SIZE, 512], 1, EINVAL_TEXT),            # starts at the end
    (["zero", "vda", 100, 512], 1, EINVAL_TEXT),                # not block aligned
    (["sha256", "vda", SIZE - 10, 20], 1, EINVAL_TEXT),         # read past the end
    (["sha256", "vdc", 0, 512], 1, "no disk 'vdc'"),
    (["sha256", "vda", 0, "lots"], 2, "not a number"),
    (["fill", "vda", 0, 512, 256], 1, EINVAL_TEXT),             # not a byte
], ids=["zero-past-end", "discard-at-end", "zero-unaligned", "sha-past-end", "no-vdc",
        "not-a-number", "fill-byte-256"])
def test_bad_input(tmp_path, args, status, text):
    img = tmp_path / "b.img"
    data = make_raw(img, seed=40)
    err = failed(blk(args, [str(img) + ",discard"]), status)
    assert text in err, err
    assert img.read_bytes() == data


# ---- crash consistency ---------------------------------------------------------

@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_flush_survives_sigkill(tmp_path, fmt):
    """Data acknowledged by a flush is in the image after QEMU dies by SIGKILL.

    For qcow2 this also needs QEMU's cached metadata (new clusters' L2
    entries) written out by the flush.
    """
    if fmt == "raw":
        img = tmp_path / "c.img"
        data = make_raw(img, seed=50)
    else:
        img, data = make_qcow2(tmp_path, "c", seed=50)
    length = 4 * MiB
    accel = os.environ.get("RINGLET_ACCEL", "tcg")
    dry = subprocess.run([os.path.join(root(), "scripts", "run"), "--dry-run", "--accel", accel,
                          "--disk", str(img), "blktool", "--", "fill", "vda", "0", str(length),
                          "0x5a", "flush", "vda", "sleep", "60"],
                         cwd=root(), stdout=subprocess.PIPE, universal_newlines=True, check=True)
    cmd = shlex.split(dry.stdout.strip().splitlines()[-1])
    assert cmd[0].startswith("qemu-system"), dry.stdout
    proc = subprocess.Popen(cmd, cwd=root(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    seen = b""
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 60
        while b"ok flush vda" not in seen:
            left = deadline - time.monotonic()
            assert left > 0, "no `ok flush vda` within 60 s:\n" + seen.decode(errors="replace")
            if sel.select(left):
                chunk = os.read(proc.stdout.fileno(), 65536)
                assert chunk, "QEMU ended before the flush:\n" + seen.decode(errors="replace")
                seen += chunk
        os.kill(proc.pid, signal.SIGKILL)    # at once: no chance to write anything more
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    got = img.read_bytes() if fmt == "raw" else qcow2_bytes(tmp_path, img)
    assert got[:length] == b"\x5a" * length, "flushed data lost (%s)" % fmt
    assert_same(got, apply(data, [("fill", 0, length, 0x5a)]))
