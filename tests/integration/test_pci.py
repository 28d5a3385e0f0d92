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
