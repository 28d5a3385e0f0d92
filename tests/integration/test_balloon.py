"""virtio-balloon: a 256 MiB guest running apps/memhog, driven through QMP.

Each test boots memhog with a balloon and a QMP socket, sets targets with
scripts/qmp's client and checks three views against each other: what QEMU
says (`query-balloon` actual, guest-stats), what the guest says (memhog's
`stat` line: pages in the balloon, free memory) and what memhog can still
allocate. Times are generous limits, never measurements.
"""

import importlib.machinery
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from ringlet import build_app, root

MiB = 1 << 20
MEM = 256 * MiB
PAGE = 4096
TRANSPORTS = [("q35", "modern"), ("q35", "legacy"), ("microvm", "mmio")]


def load_qmp():
    path = os.path.join(root(), "scripts", "qmp")
    loader = importlib.machinery.SourceFileLoader("ringlet_qmp", path)
    spec = importlib.util.spec_from_loader("ringlet_qmp", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


qmp = load_qmp()


class Guest:
    """memhog under scripts/run, its console a pipe, its QMP socket open."""

    def __init__(self, machine="q35", virtio="modern", props=()):
        build_app("memhog")
        self.dir = tempfile.mkdtemp(prefix="rbal")  # short: a unix socket path has 108 bytes
        sock = os.path.join(self.dir, "qmp.sock")
        cmd = [os.path.join(root(), "scripts", "run"), "-q", "--accel", os.environ.get("RINGLET_ACCEL", "tcg"),
               "-M", machine, "-m", "256M", "--virtio", virtio, "--balloon", "--qmp", sock, "--timeout", "600"]
        for p in props:
            cmd += ["--balloon-prop", p]
        cmd += ["memhog"]
        self.proc = subprocess.Popen(cmd, cwd=root(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._reader, daemon=True).start()
        self.q = None
        self.wait_line(r"^memhog ready", 60)
        self.q = qmp.QMP(sock)

    def _reader(self):
        for raw in self.proc.stdout:
            with self.cv:
                self.lines.append(raw.decode(errors="replace").rstrip("\r\n"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)  # the end
            self.cv.notify_all()

    @property
    def output(self):
        with self.cv:
            return "\n".join(l for l in self.lines if l is not None)

    def wait_line(self, pattern, timeout, start=0):
        """The first console line from index `start` on matching pattern."""
        end = time.monotonic() + timeout
        with self.cv:
            i = start
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        raise AssertionError("guest ended while waiting for %r:\n%s" % (pattern, self.output))
                    m = re.search(pattern, line)
                    if m:
                        return m
                    i += 1
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("no console line %r in %g s:\n%s" % (pattern, timeout, self.output))
                self.cv.wait(left)

    def command(self, line, answer, timeout=120):
        with self.cv:
            start = len(self.lines)
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        return self.wait_line(answer, timeout, start)

    def stat(self):
        m = self.command("stat", r"^stat (.*)$")
        return {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}

    def fill(self):
        return int(self.command("fill", r"^fill got (\d+)").group(1))

    def alloc(self, n):
        return self.command("alloc %d" % n, r"^alloc (ok|failed) ").group(1) == "ok"

    def free(self):
        self.command("free", r"^free ok held 0$")

    def balloon(self, size, timeout=30):
        took = self.q.balloon(size, wait=timeout)
        assert took is not None, "actual %d MiB, target %d MiB after %d s\n%s" % (
            self.q.actual() >> 20, size >> 20, timeout, self.output)
        return took

    def settle(self, quiet=1.0, timeout=30):
        """actual once it has stopped moving for `quiet` seconds."""
        end = time.monotonic() + timeout
        last, since = self.q.actual(), time.monotonic()
        while time.monotonic() < end:
            time.sleep(0.1)
            a = self.q.actual()
            if a != last:
                last, since = a, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return a
        raise AssertionError("actual still moving after %d s" % timeout)

    def qemu_rss(self):
        """VmRSS of the QEMU process (in the launcher's session), bytes."""
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    st = f.read()
                comm = st[st.index("(") + 1:st.rindex(")")]
                sid = int(st[st.rindex(")") + 2:].split()[3])
                if sid != self.proc.pid or not comm.startswith("qemu"):
                    continue
                with open("/proc/%s/status" % pid) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            return int(line.split()[1]) * 1024
            except (OSError, ValueError):
                continue
        raise AssertionError("no QEMU process found")

    def close(self):
        try:
            if self.q:
                self.q.close()
            if self.proc.poll() is None:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def guest_factory():
    made = []

    def make(**kw):
        g = Guest(**kw)
        made.append(g)
        return g

    yield make
    for g in made:
        g.close()


def check_agrees(g, st):
    """QEMU's actual and the guest's count of pages in the balloon agree."""
    assert g.q.actual() == MEM - st["balloon"] * PAGE


@pytest.mark.parametrize("machine,virtio", TRANSPORTS)
def test_inflate_then_deflate(guest_factory, machine, virtio):
    """Target 128 MiB: reached, the guest's free memory drops by 128 MiB and
    memhog can allocate only what is left; target 256 MiB: usable again."""
    g = guest_factory(machine=machine, virtio=virtio)
    before = g.stat()
    assert before["balloon"] == 0
    g.balloon(128 * MiB)
    assert g.q.actual() == 128 * MiB
    st = g.stat()
    assert st["balloon"] == 128 * MiB // PAGE and st["target"] == st["balloon"]
    assert abs((before["free"] - st["free"]) - 128 * MiB) <= 2 * MiB, (before, st)
    got = g.fill()
    # Without deflate on OOM the balloon keeps its pages: memhog gets
    # what was left, which is less than 128 MiB.
    assert 100 * MiB < got < 128 * MiB, got
    st = g.stat()
    assert st["balloon"] == 128 * MiB // PAGE and st["oom_pages"] == 0
    check_agrees(g, st)
    g.free()
    g.balloon(MEM)
    st = g.stat()
    assert st["balloon"] == 0 and st["free"] >= before["free"] - MiB
    check_agrees(g, st)
    assert g.fill() > 240 * MiB


def test_deflate_on_oom(guest_factory):
    """With deflate-on-oom=on an allocation that finds no memory takes pages
    back from the balloon; actual and the log say so."""
    g = guest_factory(props=["deflate-on-oom=on"])
    g.balloon(128 * MiB)
    got = g.fill()
    st = g.stat()
    assert got > 200 * MiB, (got, st)
    assert st["oom_events"] > 0 and st["oom_pages"] >= (got - 128 * MiB) // PAGE, st
    assert st["balloon"] < 128 * MiB // PAGE
    check_agrees(g, st)
    assert g.q.actual() > 128 * MiB
    assert "balloon: deflate on OOM" in g.output
    # No inflating back behind the application's back ...
    time.sleep(0.5)
    assert g.stat()["balloon"] == st["balloon"]
    # ... until the host asks again, once memory is free.
    g.free()
    g.balloon(96 * MiB)
    check_agrees(g, g.stat())


def test_freed_memory_can_be_ballooned(guest_factory):
    """After memhog allocates and frees 150 MiB (the heap trims and gives
    its pages back), a 96 MiB target is reached."""
    g = guest_factory()
    assert g.alloc(150 * MiB)
    assert g.stat()["heap"] >= 150 * MiB
    g.free()
    assert g.stat()["heap"] < MiB
    g.balloon(96 * MiB)
    st = g.stat()
    assert st["balloon"] == 160 * MiB // PAGE
    check_agrees(g, st)


@pytest.mark.parametrize("machine,virtio", TRANSPORTS)
def test_stats(guest_factory, machine, virtio):
    """guest-stats: free memory drops by what memhog holds, within a few MiB;
    total is the guest's RAM; faults are zero."""
    g = guest_factory(machine=machine, virtio=virtio)
    s0 = g.q.stats()
    assert s0 is not None, g.output
    assert g.alloc(100 * MiB)
    time.sleep(1.1)  # last-update counts seconds
    s1 = g.q.stats()
    assert s1 is not None
    free0, free1 = s0["stats"]["stat-free-memory"], s1["stats"]["stat-free-memory"]
    assert abs((free0 - free1) - 100 * MiB) <= 4 * MiB, (free0, free1)
    assert abs(s1["stats"]["stat-free-memory"] - g.stat()["free"]) <= 4 * MiB
    assert 250 * MiB <= s1["stats"]["stat-total-memory"] <= MEM
    assert s1["stats"]["stat-major-faults"] == 0 and s1["stats"]["stat-minor-faults"] == 0
    assert g.stat()["stats_sent"] >= 2


def test_follows_while_computing(guest_factory):
    """memhog computes (no call that waits in the loop) while the host sets
    a target: the timer tick runs the balloon, and the target is reached
    before the computation ends."""
    g = guest_factory()
    g.command("spin 40", r"^spin start$")
    g.balloon(128 * MiB, timeout=30)
    assert "spin done" not in g.output, g.output
    g.wait_line(r"^spin done \d+", 120)
    st = g.stat()
    assert st["balloon"] == 128 * MiB // PAGE
    check_agrees(g, st)


def test_targets_out_of_range(guest_factory):
    """A target above the guest's memory, and one below what it can give:
    no crash, and actual says what the balloon really holds."""
    g = guest_factory()
    g.q.cmd("balloon", value=4 << 30)
    time.sleep(0.5)
    assert g.q.actual() == MEM and g.stat()["balloon"] == 0
    g.q.cmd("balloon", value=1 * MiB)
    a = g.settle()
    st = g.stat()
    check_agrees(g, st)
    assert 1 * MiB < a < 32 * MiB, a        # gave nearly all, kept a floor
    assert st["target"] == (MEM - MiB) // PAGE
    assert g.alloc(1 * MiB)                  # the floor is usable
    g.free()
    g.balloon(MEM)
    assert g.fill() > 240 * MiB


def test_free_page_reporting(guest_factory):
    """free-page-reporting=on: after memhog frees 150 MiB it had written,
    QEMU's resident memory drops without any target being set."""
    g = guest_factory(props=["free-page-reporting=on"])
    assert g.alloc(150 * MiB)
    time.sleep(1)
    high = g.qemu_rss()
    g.free()
    end = time.monotonic() + 30
    low = high
    while time.monotonic() < end:
        time.sleep(0.5)
        g.stat()  # the console read waits in the loop: the driver runs
        low = g.qemu_rss()
        if low < high - 100 * MiB:
            break
    assert low < high - 100 * MiB, (high >> 20, low >> 20)
    st = g.stat()
    assert st["reported"] * 2 * MiB >= 100 * MiB, st
    assert st["balloon"] == 0
    assert g.alloc(200 * MiB)  # reported memory is usable again


def test_with_the_network():
    """apps/echo serving TCP while the host inflates and deflates the
    balloon: both are serviced from the one wait loop; every byte comes back
    and every target is reached."""
    import hashlib
    import socket

    build_app("echo")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = tempfile.mkdtemp(prefix="rbal")
    sock = os.path.join(d, "qmp.sock")
    cmd = [os.path.join(root(), "scripts", "run"), "-q", "--accel", os.environ.get("RINGLET_ACCEL", "tcg"),
           "-m", "256M", "--net", "user", "--hostfwd", "%d:7" % port, "--balloon", "--qmp", sock,
           "--timeout", "300", "echo", "--", "7"]
    proc = subprocess.Popen(cmd, cwd=root(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    lines = []
    threading.Thread(target=lambda: [lines.append(l.decode(errors="replace")) for l in proc.stdout],
                     daemon=True).start()
    q = None
    try:
        end = time.monotonic() + 120
        while not any("listening on 7" in l for l in lines):
            assert time.monotonic() < end and proc.poll() is None, "".join(lines)
            time.sleep(0.1)
        q = qmp.QMP(sock)
        data = os.urandom(4 * MiB)
        got = bytearray()
        with socket.create_connection(("127.0.0.1", port), timeout=120) as c:
            def send():
                c.sendall(data)
            t = threading.Thread(target=send, daemon=True)
            t.start()
            for size in (128 * MiB, MEM, 64 * MiB, MEM):
                assert q.balloon(size, wait=30) is not None, (size, q.actual(), "".join(lines))
            while len(got) < len(data):
                chunk = c.recv(1 << 16)
                assert chunk, "connection closed after %d bytes" % len(got)
                got += chunk
            t.join(60)
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        assert q.actual() == MEM
    finally:
        if q:
            q.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)
