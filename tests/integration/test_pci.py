"""PCI and device mappings a device or firmware must not be able to steer.

apps/selftest's `mmio` mode asks the kernel's mmio_map() for memory that is
not device space (a heap buffer, the kernel image's data, an address beyond
the CPU's physical address width): each must be refused, with a log line
naming the range and the reason, and the heap buffer must be untouched. The
IOAPIC's page, a fixed device address the kernel maps itself, must still be
mapped: its version register is read back and checked against QEMU's IOAPIC.
"""

import re

import pytest

from ringlet import build_app, run_guest


@pytest.fixture(scope="module", autouse=True)
def selftest():
    build_app("selftest")


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_mmio_map_refuses_ram_and_the_kernel(machine):
    r = run_guest("selftest", args=["mmio"], machine=machine)
    out = r.output.replace("\r", "")
    assert r.status == 0, out
    tried = dict((name, (int(addr, 16), verdict))
                 for name, addr, verdict in re.findall(r"^mmio (\w+) 0x([0-9a-f]+) (\w+)$", out, re.M))
    assert set(tried) == {"ram", "kernel", "beyond", "ioapic"}, out
    reasons = {"ram": "usable RAM", "kernel": "the kernel image",
               "beyond": "beyond the CPU's physical address width"}
    for name, why in reasons.items():
        addr, verdict = tried[name]
        assert verdict == "refused", (name, out)
        # The kernel's own line names the same range and says why.
        assert re.search(r"mmio_map: refused 0x%x-0x[0-9a-f]+: %s$" % (addr, re.escape(why)), out, re.M), (name, out)
    assert tried["ioapic"] == (0xfec00000, "mapped"), out
    # IOAPICVER: QEMU's IOAPIC is version 0x20 (0x11 on old machine types)
    # with 24 redirection entries (the field holds the highest index, 23).
    ver = int(re.search(r"^mmio ioapic version 0x([0-9a-f]{8})$", out, re.M).group(1), 16)
    assert ver & 0xff in (0x11, 0x20) and (ver >> 16) & 0xff == 23, hex(ver)
    assert "mmio heap intact" in out, out


def test_hostile_bars_are_moved():
    # q35's AHCI controller (no Ringlet driver) gets its register BAR pointed
    # at a heap page and its I/O BAR at COM1, then the kernel probes it.
    r = run_guest("selftest", args=["pcibar"], machine="q35")
    out = r.output.replace("\r", "")
    assert r.status == 0, out
    ram = int(re.search(r"^pcibar ram 0x([0-9a-f]+)$", out, re.M).group(1), 16)
    bars = {int(i): (int(a, 16), int(size), int(reg, 16)) for i, a, size, reg in
            re.findall(r"^pcibar BAR(\d) 0x([0-9a-f]+) size (\d+) register 0x([0-9a-f]{8})$", out, re.M)}
    assert set(bars) == {4, 5}, out

    # The register BAR: refused where it was (RAM), moved, and the device
    # holds the new address.
    assert re.search(r"pci 00:1f\.2 BAR5 at 0x%x \(4096 bytes\): usable RAM$" % ram, out, re.M), out
    addr, size, reg = bars[5]
    assert size == 4096 and addr not in (0, ram) and addr % 4096 == 0, out
    assert reg == addr, out
    assert re.search(r"pci 00:1f\.2 BAR5 moved to 0x%x$" % addr, out, re.M), out
    # ... and the controller answers there: AHCI's VS register (version 1.0).
    assert re.search(r"^pcibar AHCI version 0x00010000$", out, re.M), out
    # The heap page was never the device's.
    assert "pcibar ram intact" in out, out

    # The I/O BAR: off COM1 (0x3f8 falls in its 32-byte block at 0x3e0),
    # into the port window, and the register says so.
    assert re.search(r"pci 00:1f\.2 BAR4 at 0x3e0 \(32 bytes\): COM1$", out, re.M), out
    addr, size, reg = bars[4]
    assert size == 32 and 0xc000 <= addr <= 0x10000 - 32 and addr % 32 == 0, out
    assert reg == addr | 1, out
