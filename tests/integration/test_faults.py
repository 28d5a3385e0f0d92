"""Fault reports: apps/selftest triggers one fault per run (its argv[1]).

Each must end the guest with status 127 within seconds (no hang, no reboot
loop) and print a report with the right vector, error code and CR2, and a
backtrace whose frames name the faulting function. Addresses are checked
against the image's own symbol table (build/selftest/ringlet.sym).
"""

import bisect
import os
import re

import pytest

from ringlet import build_app, root, run_guest

PF = (14, "#PF", "page fault")
DE = (0, "#DE", "divide error")

EXCEPTION = re.compile(r"^\*\*\* CPU exception (\d+) \((#\w+) ([^)]*)\), error code 0x([0-9a-f]+)$",
                       re.M)
RIP = re.compile(r"^RIP 0x0008:0x([0-9a-f]{16})(?: <([^>+]+)\+0x([0-9a-f]+)>)?$", re.M)
CR2 = re.compile(r"^CR2 0x([0-9a-f]{16}): (.*)$", re.M)
FRAME = re.compile(r"^  #(\d+) +0x([0-9a-f]{16})(?: <([^>+]+)\+0x([0-9a-f]+)>)?$", re.M)


@pytest.fixture(scope="module", autouse=True)
def selftest():
    build_app("selftest")


class Symbols:
    """The kernel image's symbol map (nm output, sorted by address)."""

    def __init__(self, path):
        self.addrs = {}     # name -> addresses (static names may repeat)
        rows = []
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    a = int(parts[0], 16)
                    self.addrs.setdefault(parts[2], set()).add(a)
                    if parts[1] in "tTwW":
                        rows.append((a, parts[2]))
        rows.sort()
        self.starts = [a for a, _ in rows]
        self.names = [n for _, n in rows]

    def one(self, name):
        """The address of a symbol that the image must hold exactly once."""
        found = self.addrs.get(name, set())
        assert len(found) == 1, (name, found)
        return next(iter(found))

    def function_at(self, addr):
        i = bisect.bisect_right(self.starts, addr) - 1
        return self.names[i] if i >= 0 else None


@pytest.fixture(scope="module")
def syms():
    return Symbols(os.path.join(root(), "build", "selftest", "ringlet.sym"))


def base(name):
    """fault_divide.constprop.0 -> fault_divide (names the compiler made)."""
    return name.split(".")[0] if name else name


def run_fault(fault, machine="q35"):
    result = run_guest("selftest", args=[fault], machine=machine, timeout=30)
    out = result.output.replace("\r\n", "\n")
    assert result.status == 127, out + result.launcher_stderr
    assert "selftest: %s\n" % fault in out, out
    # One boot: a triple fault would reboot (or stop with 125 under -no-reboot).
    assert out.count("Ringlet via PVH") == 1, out
    assert "did not fault" not in out, out
    return out


def frames(out, syms):
    """The backtrace as [(number, address, function or None)], checked."""
    assert out.count("Backtrace:\n") == 1, out
    found = FRAME.findall(out.split("Backtrace:\n", 1)[1])
    assert found, out
    result = []
    for i, (num, addr, name, off) in enumerate(found):
        assert int(num) == i, out
        addr = int(addr, 16)
        if name:
            # The kernel's symbolizer agrees with the link map.
            assert syms.function_at(addr) == name, (hex(addr), name, out)
            assert addr - int(off, 16) in syms.addrs[name], (hex(addr), name, out)
        result.append((i, addr, name or None))
    return result


def exception(out, vector):
    found = EXCEPTION.findall(out)
    assert len(found) == 1, out
    num, mnemonic, name, code = found[0]
    assert (int(num), mnemonic, name) == vector, out
    n, m, text = vector
    assert out.rstrip("\n").endswith("*** guest stopped by CPU exception %d (%s %s)" % (n, m, text)), out
    return int(code, 16)


def rip(out, syms):
    found = RIP.findall(out)
    assert len(found) == 1, out
    addr, name, off = found[0]
    addr = int(addr, 16)
    if name:
        assert syms.function_at(addr) == name, out
        assert addr - int(off, 16) in syms.addrs[name], out
    return addr, name or None


def cr2(out):
    found = CR2.findall(out)
    assert len(found) == 1, out
    return int(found[0][0], 16), found[0][1]


# ---- page faults ----------------------------------------------------------------

@pytest.mark.parametrize("machine", ["q35", "microvm", "pc"])
def test_null(machine, syms):
    out = run_fault("null", machine)
    assert exception(out, PF) == 0x0               # read, page not present, kernel mode
    assert cr2(out) == (0, "read of an unmapped page (NULL pointer dereference)")
    addr, name = rip(out, syms)
    assert name == "fault_null"
    bt = frames(out, syms)
    assert bt[0] == (0, addr, "fault_null")
    assert bt[1][2] == "main"


def test_rodata(syms):
    out = run_fault("rodata")
    assert exception(out, PF) == 0x3               # write, page present
    address, text = cr2(out)
    assert text == "write not allowed on this page (it is mapped)"
    # The string constant selftest writes to, inside the kernel's .rodata.
    assert address in syms.addrs["message"], out
    assert syms.one("__rodata_start") <= address < syms.one("__rodata_end"), out
    addr, name = rip(out, syms)
    assert name == "fault_rodata"
    bt = frames(out, syms)
    assert bt[0] == (0, addr, "fault_rodata")
    assert bt[1][2] == "main"


@pytest.mark.parametrize("machine", ["q35", "microvm", "pc"])
def test_stack_overflow(machine, syms):
    out = run_fault("stack", machine)
    assert exception(out, PF) == 0x2               # write, page not present
    address, text = cr2(out)
    assert text == "write of an unmapped page"
    assert "\nCR2 is in the guard page of the main stack: stack overflow\n" in out
    # The faulting write was to the stack pointer's own page.
    rsp = int(re.search(r"\bRSP ([0-9a-f]{16})\b", out).group(1), 16)
    assert address // 4096 == rsp // 4096, out
    addr, name = rip(out, syms)
    assert base(name) == "fault_stack"
    bt = frames(out, syms)
    assert bt[0] == (0, addr, name)
    # The recursion shows: every frame printed is fault_stack (the report is cut short).
    assert len(bt) >= 8, out
    assert all(base(f[2]) == "fault_stack" for f in bt), out


def test_exec_data_page(syms):
    out = run_fault("exec")
    assert exception(out, PF) == 0x11              # instruction fetch, page present
    address, text = cr2(out)
    assert text == "instruction fetch not allowed on this page (it is mapped)"
    assert address in syms.addrs["data_page"], out
    addr, name = rip(out, syms)
    assert (addr, name) == (address, None)         # data has no function name
    bt = frames(out, syms)
    assert bt[0] == (0, address, None)
    assert bt[1][2] == "main"                      # fault_exec jumped (a tail call) from main's frame


# ---- other exceptions -----------------------------------------------------------

def test_divide(syms):
    out = run_fault("divide")
    assert exception(out, DE) == 0
    assert CR2.search(out) is None, out            # CR2 only means something for #PF
    addr, name = rip(out, syms)
    assert base(name) == "fault_divide"
    bt = frames(out, syms)
    assert bt[0] == (0, addr, name)


# ---- signals and the stack protector --------------------------------------------

def signal_report(out):
    assert "\n*** signal 6 (SIGABRT, abort()) raised by the application\n" in out, out
    assert EXCEPTION.search(out) is None, out
    assert out.rstrip("\n").endswith("*** guest stopped by signal 6"), out


def test_abort(syms):
    out = run_fault("abort")
    signal_report(out)
    names = [f[2] for f in frames(out, syms)]
    assert "abort" in names, out
    assert names[names.index("abort") + 1] == "main", out


def test_assert(syms):
    out = run_fault("assert")
    # The line of the assert() in the source, so that edits above it do not break the test.
    with open(os.path.join(root(), "apps", "selftest", "main.c")) as f:
        line = next(n for n, text in enumerate(f, 1) if "assert(argc == 42);" in text)
    assert ('assertion "argc == 42" failed: file "apps/selftest/main.c", line %d, '
            'function: main\n' % line) in out
    signal_report(out)
    names = [f[2] for f in frames(out, syms)]
    assert "abort" in names, out
    i = names.index("abort")
    assert names[i + 1:i + 3] == ["__assert_func", "main"], out


def test_canary(syms):
    out = run_fault("canary")
    assert "\n*** stack smashing detected: a function's canary was overwritten\n" in out, out
    assert EXCEPTION.search(out) is None, out
    bt = frames(out, syms)
    # __stack_chk_fail was called from the function whose canary broke.
    assert base(bt[0][2]) == "fault_canary", out


def test_ok():
    result = run_guest("selftest", args=["ok"])
    out = result.output.replace("\r\n", "\n")
    assert result.status == 0, out
    assert "selftest: ok\nselftest ok\n" in out
    assert "***" not in out


def test_unknown_fault_is_a_usage_error():
    result = run_guest("selftest", args=["no-such-fault"])
    out = result.output.replace("\r\n", "\n")
    assert result.status == 2, out
    assert "selftest: unknown fault 'no-such-fault'\n" in out
