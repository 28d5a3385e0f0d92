"""Helpers for Ringlet's QEMU integration tests (pytest).

A test builds an application, boots it through scripts/run and checks what
came back: the exit status the guest wrote to isa-debug-exit and the text on
its serial console.

    from ringlet import build_app, run_guest

    def test_hello():
        build_app("hello")
        result = run_guest("hello", args=["world"])
        assert result.status == 0
        assert "hello, world" in result.output

Guests run under TCG unless the environment says otherwise
(RINGLET_ACCEL=auto lets scripts/run probe KVM, RINGLET_ACCEL=kvm forces it),
so the tests pass on machines without KVM.
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

_built = set()      # apps already built in this test session


def root():
    """The repository root (two folders above this file)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_app(name):
    """Run `make -s APP=name` in the repository root, once per session."""
    if name in _built:
        return
    done = subprocess.run(["make", "-s", "APP=" + name], cwd=root(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    if done.returncode != 0:
        raise AssertionError("make APP=%s failed (status %d):\n%s"
                             % (name, done.returncode, done.stdout))
    _built.add(name)


@dataclass
class Result:
    """How one guest run ended."""
    status: int             # scripts/run's exit status: the guest's 0..127, or 124/125
    output: str             # the guest's serial console
    launcher_stderr: str    # scripts/run's and QEMU's messages
    elapsed: float          # seconds, wall clock


def run_guest(app_or_path, args=(), machine="q35", memory="128M", extra=(), timeout=30):
    """Boot an app (name) or a kernel ELF/disk image (path) and wait for it.

    args are the application's argv (after `--`); extra are more scripts/run
    options, e.g. ["--disk", "disk.img", "--net", "user"].  A guest still
    running after `timeout` seconds is killed and the test fails with its
    console output in the message.
    """
    accel = os.environ.get("RINGLET_ACCEL", "tcg")
    cmd = [os.path.join(root(), "scripts", "run"), "-q", "--accel", accel,
           "-M", machine, "-m", memory, "--timeout", str(timeout)]
    cmd += list(extra) + [app_or_path, "--"] + list(args)

    start = time.monotonic()
    # A session of its own, so that a hung launcher can be killed with its QEMU.
    proc = subprocess.Popen(cmd, cwd=root(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout + 15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    result = Result(proc.returncode, out.decode(errors="replace"),
                    err.decode(errors="replace"), time.monotonic() - start)

    if result.status in (124, -signal.SIGKILL):
        raise AssertionError("guest %s did not finish within %g s\n--- console:\n%s"
                             "--- launcher:\n%s" % (app_or_path, timeout,
                                                     result.output, result.launcher_stderr))
    return result


def free_port(kind=socket.SOCK_STREAM):
    """A port nothing on 127.0.0.1 uses right now (TCP, or UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Background:
    """A process left running in the background (a server in a guest, or its Linux build):
    every line it prints is kept; wait_for() waits for one, stop() kills its process group."""

    def __init__(self, cmd, expect, timeout):
        self.lines = []
        self.proc = subprocess.Popen(cmd, cwd=root(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.wait_for(expect, timeout)

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\r\n"))

    def output(self):
        return "\n".join(self.lines)

    def wait_for(self, pattern, timeout):
        """Waits until a line matches pattern; returns the match."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in list(self.lines):
                m = re.search(pattern, line)
                if m:
                    return m
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError("no %r from the server within %d s; console:\n%s"
                             % (pattern, timeout, self.output()))

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
