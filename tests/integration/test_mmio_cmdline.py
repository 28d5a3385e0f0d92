"""virtio-mmio devices named on the kernel command line (virtio_mmio.device=).

`-M microvm,acpi=off` (scripts/run --no-acpi) has no ACPI tables for the
kernel to find its virtio-mmio devices in; QEMU appends one
`virtio_mmio.device=512@BASE:IRQ` word per device to the command line
instead, after the application's arguments. The kernel must take those words
out of argv wherever they are and probe the devices they name; a malformed
one is refused with a message and boot goes on.
"""

import re

import pytest

from ringlet import build_app, run_guest
from test_blk import SIZE, console, make_raw, ok, sha, sha_line


@pytest.fixture(scope="module", autouse=True)
def blktool():
    build_app("blktool")


def run(args, disks=(), scsi=(), append="", virtio="mmio"):
    extra = ["--no-acpi", "--virtio", virtio]
    for d in disks:
        extra += ["--disk", str(d)]
    for d in scsi:
        extra += ["--scsi", str(d)]
    if append:
        extra += ["--append", append]
    return run_guest("blktool", args=[str(a) for a in args], machine="microvm", extra=extra)


@pytest.mark.parametrize("virtio", ["mmio", "mmio-legacy"])
def test_devices_from_the_command_line(tmp_path, virtio):
    """A virtio-blk and a virtio-scsi device, known only from QEMU's appended
    options: blktool (which refuses any word it does not know) reads both disks,
    and the boot log names each device with the IRQ its option gave."""
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    da, db = make_raw(a, seed=201), make_raw(b, seed=202)
    out = ok(run(["info", "sha256", "vda", 0, SIZE, "sha256", "sda", 0, SIZE], [a], [b], virtio=virtio))
    assert re.search(r"^\[[ 0-9.]+\] Ringlet via PVH: .* virtio_mmio\.device=512@0x[0-9a-f]+:\d+", out, re.M), out
    assert "acpi: no RSDP found" in out, out
    assert sha_line(out, "vda", 0, SIZE) == sha(da)
    assert sha_line(out, "sda", 0, SIZE) == sha(db)
    found = re.findall(r"^\[[ 0-9.]+\] virtio mmio (0x[0-9a-f]+) irq (\d+) %s type (\d) " % virtio, out, re.M)
    assert sorted(t for _, _, t in found) == ["2", "8"], out
    # Each base and IRQ is the one QEMU's option for it gave.
    cmdline = next(l for l in out.splitlines() if "Ringlet via PVH:" in l)
    opts = dict(re.findall(r"virtio_mmio\.device=512@(0x[0-9a-f]+):(\d+)", cmdline))
    for base, irq, _ in found:
        assert opts.get(base) == irq, (base, irq, opts)
    # The option's IRQ is the devices' wake-up too (no DSDT to name one).
    for dev in ("vda", "sda"):
        assert re.search(r"^info %s .* wakeup=irq " % dev, out, re.M), out


BAD = [
    ("junk@0xfeb00e00:5", "bad size"),
    ("512", "no '@' after the size"),
    ("16@0xfeb00e00:5", "size smaller than the 0x100 bytes of registers"),
    ("512@zz:5", "bad base address"),
    ("512@0xfeb00e01:5", "bad base address"),
    ("512@0xfffffffffffff000:5", "base address and size run past physical memory"),
    ("512@0xfeb00e00", "bad IRQ (want 1 to 255)"),
    ("512@0xfeb00e00:0", "bad IRQ (want 1 to 255)"),
    ("512@0xfeb00e00:256", "bad IRQ (want 1 to 255)"),
    ("512@0xfeb00e00:12:x", "bad device ID"),
    ("512@0xfeb00e00:12z", "junk after the IRQ"),
]


def test_malformed_options_refused(tmp_path):
    """Each malformed option (before `--`, so it is a kernel option; bad size, base,
    IRQ, ID, trailing junk) gets its message; boot goes on and the device QEMU
    itself named is used."""
    img = tmp_path / "m.img"
    data = make_raw(img, seed=203)
    append = " ".join("virtio_mmio.device=" + spec for spec, _ in BAD)
    out = ok(run(["sha256", "vda", 0, 65536], [img], append=append))
    for spec, why in BAD:
        line = "ringlet: virtio_mmio.device=%s: %s (ignored)" % (spec, why)
        assert line in out.splitlines(), "no %r in:\n%s" % (line, out)
    assert sha_line(out, "vda", 0, 65536) == sha(data[:65536])


def test_option_among_the_app_arguments(tmp_path):
    """An option QEMU did not append but that stands among the app's words (after
    `--`) is taken out too: argv never sees it (blktool would refuse it), and
    with ACPI on as well, a base named twice (or an empty slot) adds no disk."""
    img = tmp_path / "o.img"
    data = make_raw(img, seed=204)
    result = run_guest("blktool", args=["info", "virtio_mmio.device=1K@0xfeb00e00:12", "sha256", "vda", "0", "4096"],
                       machine="microvm", extra=["--virtio", "mmio", "--disk", str(img)])
    out = ok(result)
    assert sha_line(out, "vda", 0, 4096) == sha(data[:4096])
    assert len(re.findall(r"^info vda ", out, re.M)) == 1, out
