"""How the guest ends when QEMU's isa-debug-exit device is not there.

Under libvirt or Proxmox there is no isa-debug-exit: the kernel must power the
machine off through ACPI (PM1a control on pc/q35, the sleep-control register of
hardware-reduced ACPI on microvm), and where neither exists it must say so and
halt. These tests run QEMU with scripts/run's command line minus that device.
"""
import os
import shlex
import subprocess

import pytest

from ringlet import build_app, root

DEBUG_EXIT = "-device isa-debug-exit,iobase=0xf4,iosize=0x04"


def qemu_without_debug_exit(machine, args, extra=()):
    """scripts/run's QEMU command for hello, without isa-debug-exit."""
    out = subprocess.run(
        [os.path.join(root(), "scripts/run"), "--dry-run", "--accel", "tcg", "-M", machine, *extra, "hello", "--", *args],
        check=True, capture_output=True, text=True, cwd=root()).stdout
    cmd = out.strip().splitlines()[-1]
    assert DEBUG_EXIT in cmd
    return shlex.split(cmd.replace(DEBUG_EXIT, ""))


@pytest.mark.parametrize("machine", ["q35", "pc", "microvm"])
def test_acpi_poweroff(machine):
    build_app("hello")
    p = subprocess.run(qemu_without_debug_exit(machine, ["--exit", "3"]), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60, cwd=root())
    # The app ran to the end, then ACPI turned the machine off: QEMU exits 0
    # by itself (a guest that halted instead would hit the timeout).
    assert "exit status: 3" in p.stdout
    assert "halting" not in p.stdout
    assert p.returncode == 0, p.stdout + p.stderr


def test_halt_without_any_way_out():
    build_app("hello")
    cmd = qemu_without_debug_exit("microvm", ["--exit", "5"])
    cmd[cmd.index("-M") + 1] += ",acpi=off"
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, cwd=root())
    try:
        lines = []
        for line in p.stdout:
            lines.append(line)
            if "halting" in line:
                break
        out = "".join(lines)
        assert "ringlet: exit status 5; no way to power off, halting" in out, out
        # Halted means still running, not rebooting: QEMU has not exited.
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()
