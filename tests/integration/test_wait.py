"""The wait loop's wake-ups (docs/wait.md): device interrupts end the halt.

Every test runs blktool against a disk whose QEMU drive is throttled to a few
requests a second, so the guest must wait for most completions: it spins
briefly, arms the queue's notification and halts. The interrupt that ends
the halt is counted per device, and blktool's `info` line reports the count
(`wakeups=N`) and the kind of wake-up (`wakeup=msix|intx|irq|timer`). The tests
assert on those counts and on the data (checksums the host recomputes), never
on timings.
"""

import hashlib
import random
import re

import pytest

from ringlet import build_app, run_guest

MiB = 1 << 20
SIZE = 4 * MiB
# Reads at several offsets, one request at a time (at least eight), then
# eight in flight at once.
READS = [(0, 65536), (MiB, 4096), (2 * MiB + 512, 1000), (SIZE - 8192, 8192),
         (12345, 4096), (3 * MiB, 512), (MiB + 4096, 8192), (100 * 512, 512)]
# The throttle lets a burst of about two requests through at once; every
# later one waits about 50 ms, far longer than the loop spins before it
# halts. QEMU notifies once before it has seen the driver's used_event
# whether or not the driver asked, so only more than that proves the
# arming works; six is well below the eight sequential reads that wait.
MIN_WAKEUPS = 6


@pytest.fixture(scope="module", autouse=True)
def blktool():
    build_app("blktool")


def make_disk(path, seed):
    data = random.Random(seed).randbytes(SIZE)
    path.write_bytes(data)
    return data


def throttled(iops):
    """scripts/run options that throttle drive vd0 (the first --disk)."""
    return ["--qemu-arg=-set", "--qemu-arg=drive.vd0.throttling.iops-total=%d" % iops]


def run_reads(img, machine, virtio, extra=()):
    args = []
    for off, length in READS:
        args += ["sha256", "vda", str(off), str(length)]
    args += ["parallel", "vda", "8", "info"]
    opts = ["--disk", str(img), "--virtio", virtio] + throttled(20) + list(extra)
    result = run_guest("blktool", args=args, machine=machine, extra=opts, timeout=90)
    out = result.output.replace("\r\n", "\n")
    assert result.status == 0, "status %d\n%s%s" % (result.status, out, result.launcher_stderr)
    assert "***" not in out, out
    return out


def check_data(out, data):
    for off, length in READS:
        want = hashlib.sha256(data[off:off + length]).hexdigest()
        assert "sha256 vda %d %d %s" % (off, length, want) in out, out
    m = re.search(r"^parallel vda 8 inflight=\d+ sha256=([0-9a-f]{64})$", out, re.M)
    assert m, out
    assert m.group(1) == hashlib.sha256(data[:8 * 4096]).hexdigest(), out


def info(out):
    m = re.search(r"^info vda (.*)$", out, re.M)
    assert m, out
    return dict(kv.split("=", 1) for kv in m.group(1).split())


@pytest.mark.parametrize("machine,virtio,wakeup,boot_word", [
    ("q35", "modern", "msix", r"msix"),
    ("q35", "legacy", "msix", r"msix"),
    ("microvm", "modern", "msix", r"msix"),  # microvm's PCIe (pcie=on)
    ("microvm", "mmio", "irq", r"irq \d+"),
    ("microvm", "mmio-legacy", "irq", r"irq \d+"),
])
def test_device_wakeups(tmp_path, machine, virtio, wakeup, boot_word):
    """Waiting for a throttled disk ends in device interrupts, and the data is right."""
    img = tmp_path / "w.img"
    data = make_disk(img, seed=len(virtio) * 31 + len(machine))
    out = run_reads(img, machine, virtio)
    check_data(out, data)
    i = info(out)
    assert i["wakeup"] == wakeup, i
    assert int(i["wakeups"]) >= MIN_WAKEUPS, "too few device interrupts woke the guest:\n" + out
    # The boot log line of the device names its wake-up.
    assert re.search(r"virtio-blk vda .*, %s$" % boot_word, out, re.M), out


NO_MSIX = ["--qemu-arg=-global", "--qemu-arg=virtio-blk-pci.vectors=0"]


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_intx_without_msix(tmp_path, machine):
    """A virtio-pci device without MSI-X (vectors=0) wakes the guest through its INTx line."""
    img = tmp_path / "x.img"
    data = make_disk(img, seed=5)
    out = run_reads(img, machine, "modern", extra=NO_MSIX)
    check_data(out, data)
    i = info(out)
    assert i["wakeup"] == "intx", i
    assert int(i["wakeups"]) >= MIN_WAKEUPS, "too few device interrupts woke the guest:\n" + out
    assert re.search(r"virtio-blk vda .*, intx irq \d+$", out, re.M), out


def test_timer_only(tmp_path):
    """No MSI-X and no routed INTx (microvm's PCIe has no firmware to route it): the timer
    wakes the loop, and the data is the same."""
    img = tmp_path / "t.img"
    data = make_disk(img, seed=7)
    out = run_reads(img, "microvm", "modern", extra=NO_MSIX)
    check_data(out, data)
    i = info(out)
    assert i["wakeup"] == "timer" and i["wakeups"] == "0", i
    assert re.search(r"virtio-blk vda .*, timer only$", out, re.M), out
