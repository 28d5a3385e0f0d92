"""virtio-console: named ports as files (apps/portecho) and the console port
as the kernel's console (console=virtio), on modern and legacy virtio-pci and
on virtio-mmio (microvm).

The host side of a port is a unix socket QEMU listens on; the test connects,
writes random bytes and compares what comes back by SHA-256. The console
port is a file chardev, read after the guest has stopped.
"""

import hashlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from ringlet import build_app, root, run_guest

PORT = "org.example.data"
MiB = 1024 * 1024


@pytest.fixture(scope="module", autouse=True)
def apps():
    build_app("portecho")
    build_app("hello")


class Guest:
    """A guest running in the background whose console lines can be waited for."""

    def __init__(self, app, args=(), extra=(), machine="q35", timeout=120):
        accel = os.environ.get("RINGLET_ACCEL", "tcg")
        cmd = [os.path.join(root(), "scripts", "run"), "-q", "--accel", accel, "-M", machine,
               "--timeout", str(timeout)] + list(extra) + [app, "--"] + list(args)
        self.proc = subprocess.Popen(cmd, cwd=root(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.lines = []
        self.new = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.timeout = timeout

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            self.lines.append(line)
            self.new.put(line)
        self.new.put(None)

    def output(self):
        return "\n".join(self.lines)

    def wait_line(self, pattern):
        """The first line (from now on) matching pattern; fails at the guest's end."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                line = self.new.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError("no line matching %r\n--- console:\n%s" % (pattern, self.output()))
            m = re.search(pattern, line)
            if m:
                return m

    def wait(self):
        try:
            status = self.proc.wait(timeout=self.timeout + 15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            status = self.proc.wait()
        self.reader.join(10)
        return status

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def connect(path, guest):
    """Connects to QEMU's listening socket (QEMU creates it as it starts)."""
    deadline = time.monotonic() + 60
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline or guest.proc.poll() is not None:
                raise AssertionError("cannot connect to %s\n--- console:\n%s" % (path, guest.output()))
            time.sleep(0.05)


def echo(sock, data, read_only=None, stale_max=0):
    """Sends data (from a thread) while reading the echo; returns the bytes
    read back: all of them, or the first read_only bytes, after which the
    socket is closed under the sender (a hang-up mid-stream). With stale_max,
    up to that many other bytes may come first: it reads on until what it
    has ends with data."""
    want = len(data) if read_only is None else read_only
    errors = []

    def sender():
        try:
            sock.sendall(data)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    got = bytearray()
    sock.settimeout(120)
    while len(got) < want or (stale_max and not got.endswith(data) and len(got) < want + stale_max):
        b = sock.recv(65536 if stale_max else min(65536, want - len(got)))
        if not b:
            break
        got.extend(b)
    if read_only is not None:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    t.join(120)
    assert not t.is_alive(), "the sender is stuck"
    if read_only is None:
        assert not errors, errors
    return bytes(got)


TRANSPORTS = [
    pytest.param("q35", ["--virtio", "modern"], [], id="pci-modern-blocking"),
    pytest.param("pc", ["--virtio", "legacy"], ["-n"], id="pci-legacy-nonblocking"),
    pytest.param("microvm", ["--virtio", "mmio"], ["-n"], id="mmio-nonblocking"),
    pytest.param("microvm", ["--virtio", "mmio-legacy"], [], id="mmio-legacy-blocking"),
]


@pytest.mark.parametrize("machine,virtio,mode", TRANSPORTS)
def test_port_echoes_4mib(tmp_path, machine, virtio, mode):
    path = str(tmp_path / "port.sock")
    guest = Guest("portecho", args=mode, machine=machine, extra=virtio + ["--port", "%s:%s" % (PORT, path)])
    try:
        # The boot log names the port, and the app finds it by that name.
        guest.wait_line(r"con0: port 1 /dev/vport0p1 name " + re.escape(PORT) + "$")
        guest.wait_line(r"portecho: /dev/virtio-ports/%s open" % re.escape(PORT))
        data = os.urandom(4 * MiB)
        s = connect(path, guest)
        back = echo(s, data)
        assert len(back) == len(data)
        assert hashlib.sha256(back).hexdigest() == hashlib.sha256(data).hexdigest()
        s.close()
        # Hanging up is the guest's end of file.
        guest.wait_line(r"portecho: EOF after %d bytes" % len(data))
        assert guest.wait() == 0, guest.output()
    finally:
        guest.kill()


def test_disconnect_mid_stream_is_eof_and_reconnect_works(tmp_path):
    path = str(tmp_path / "port.sock")
    guest = Guest("portecho", args=["-r", "1"], extra=["--port", "%s:%s" % (PORT, path)])
    try:
        guest.wait_line(r"portecho: .* open")
        s = connect(path, guest)
        first = os.urandom(1 * MiB)
        # Read a quarter of the echo, then hang up with the rest in flight.
        part = echo(s, first, read_only=256 * 1024)
        assert len(part) == 256 * 1024 and part == first[:len(part)]
        m = guest.wait_line(r"portecho: EOF after (\d+) bytes")
        echoed = int(m.group(1))
        assert 256 * 1024 <= echoed <= len(first), guest.output()

        # The same port, a new connection: the echo of what is sent now. QEMU
        # may first send what it held back of the guest's last write to the
        # old connection (one buffer at most: it does not drop the element it
        # was throttled on when the host hangs up); that must be a piece of
        # the first stream, nothing else.
        s = connect(path, guest)
        second = os.urandom(300 * 1024)
        back = echo(s, second, stale_max=4096)
        stale = back[:len(back) - len(second)]
        assert stale in first, "%d stale bytes that are not the first stream's" % len(stale)
        assert hashlib.sha256(back[len(stale):]).hexdigest() == hashlib.sha256(second).hexdigest()
        s.close()
        guest.wait_line(r"portecho: EOF after %d bytes" % len(second))
        guest.wait_line(r"portecho: done, %d bytes in 2 connections" % (echoed + len(second)))
        assert guest.wait() == 0, guest.output()
    finally:
        guest.kill()


@pytest.mark.parametrize("machine,virtio", [
    pytest.param("q35", [], id="pci"),
    pytest.param("microvm", ["--virtio", "mmio"], id="mmio"),
    pytest.param("microvm", ["--virtio", "mmio", "--no-acpi"], id="mmio-cmdline"),
])
def test_console_virtio_carries_boot_log_and_output(tmp_path, machine, virtio):
    path = tmp_path / "console.txt"
    result = run_guest("hello", args=["x y", "z"], machine=machine,
                       extra=virtio + ["--console", "virtio:file=%s" % path], timeout=60)
    uart = result.output.replace("\r\n", "\n")
    assert result.status == 0, uart + result.launcher_stderr
    con = path.read_text()
    # The whole boot log, the lines from before the port was up included.
    assert re.search(r"^\[ *[0-9.]+\] Ringlet via PVH: console=virtio", con, re.M), con
    assert re.search(r"^\[ *[0-9.]+\] con0: port 0 console", con, re.M), con
    # hello's output, there and only there.
    for line in ("Hello from Ringlet!", "argc=3", "argv[1]=[x y]", "argv[2]=[z]"):
        assert line + "\n" in con, con
        assert line not in uart, uart
    # The UART got nothing: the lines from before the port were held for it.
    assert "Ringlet via PVH" not in uart and "con0" not in uart, uart


def test_console_virtio_without_device_falls_back_to_uart():
    """console=virtio with no virtio console: the held lines and everything
    after go to the UART, which says why."""
    result = run_guest("hello", args=["w"], extra=["--append", "console=virtio"], timeout=60)
    uart = result.output.replace("\r\n", "\n")
    assert result.status == 0, uart + result.launcher_stderr
    assert re.search(r"^\[ *[0-9.]+\] Ringlet via PVH: console=virtio", uart, re.M), uart
    assert "console: console=virtio but no virtio console port: the UART stays\n" in uart
    assert "Hello from Ringlet!\n" in uart and "argv[1]=[w]\n" in uart


def test_console_uart_stays_default(tmp_path):
    """The device alone does not move the console: console=uart (given after
    scripts/run's console=virtio) keeps everything on the UART."""
    path = tmp_path / "console.txt"
    result = run_guest("hello", args=["q"], extra=["--console", "virtio:file=%s" % path,
                                                   "--append", "console=uart"], timeout=60)
    uart = result.output.replace("\r\n", "\n")
    assert result.status == 0, uart + result.launcher_stderr
    assert "Hello from Ringlet!\n" in uart
    assert "argv[1]=[q]\n" in uart
    assert "con0: port 0 console" in uart
    assert path.read_text() == ""


def test_libvirt_xml_virtio_console(tmp_path):
    """scripts/libvirt-xml --console virtio: libvirt's virtio console beside
    the serial one, and a domain XML libvirt's schema accepts."""
    if not shutil.which("virt-xml-validate"):
        pytest.skip("virt-xml-validate is not installed (scripts/deps libvirt)")
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * 4096)
    out = tmp_path / "domain.xml"
    log = tmp_path / "virtio-console.log"
    subprocess.run([os.path.join(root(), "scripts", "libvirt-xml"), "--name", "con", "--image", str(image),
                    "--console", "virtio", "--virtio-console-file", str(log), "--out", str(out)], check=True)
    done = subprocess.run(["virt-xml-validate", str(out), "domain"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    assert done.returncode == 0, done.stdout
    consoles = ET.parse(out).getroot().findall("./devices/console")
    targets = [(c.get("type"), c.find("target").get("type"), c.find("source")) for c in consoles]
    assert [t[:2] for t in targets] == [("pty", "serial"), ("file", "virtio")], targets
    assert targets[1][2].get("path") == str(log)


@pytest.mark.parametrize("machine,virtio", [
    pytest.param("q35", ["--virtio", "legacy"], id="pci-legacy"),
    pytest.param("microvm", ["--virtio", "mmio"], id="mmio"),
])
def test_console_virtio_is_stdin(tmp_path, machine, virtio):
    """With console=virtio, stdin comes from the console port: lines typed
    into it (a unix socket here) come back on stdout through the same port."""
    path = str(tmp_path / "console.sock")
    guest = Guest("portecho", args=["-s"], machine=machine,
                  extra=virtio + ["--console", "virtio:socket=%s" % path])
    try:
        s = connect(path, guest)
        s.settimeout(60)
        s.sendall(b"hello there\nsecond line\nquit\n")
        got = b""
        while b"stdin: second line\n" not in got:
            b = s.recv(4096)
            if not b:
                break
            got += b
        s.close()
        text = got.decode(errors="replace")
        assert "stdin: hello there\nstdin: second line\n" in text, text
        assert guest.wait() == 0, guest.output()
        # Not on the UART: the console is the port.
        assert "stdin:" not in guest.output()
    finally:
        guest.kill()


def test_libvirt_boot_virtio_console(tmp_path, request):
    """A disk image whose command line says console=virtio, booted by a real
    libvirtd (SeaBIOS, TCG) from the XML scripts/libvirt-xml --console virtio
    writes: hello's output and the boot log are on the virtio console, and
    the serial console has none of it."""
    from test_image import libvirt_run, mkimage, run_tool
    build_app("hello")
    run_tool(["make", "-s", "efi"], cwd=root())
    image = tmp_path / "hello.img"
    mkimage("hello", "console=virtio -- from libvirt --exit 5", image)
    vcon = tmp_path / "virtio-console.log"

    def make_xml(xml, serial, name):
        subprocess.run([os.path.join(root(), "scripts", "libvirt-xml"), "--name", name, "--image", str(image),
                        "--firmware", "bios", "--type", "qemu", "--net", "none", "--serial-file", str(serial),
                        "--console", "virtio", "--virtio-console-file", str(vcon), "--out", str(xml)],
                       check=True)
        return xml

    serial_out = libvirt_run(request, make_xml, tmp_path)
    con = vcon.read_text(errors="replace") if vcon.exists() else ""
    assert re.search(r"^\[ *[0-9.]+\] con0: port 0 console", con, re.M), con + serial_out
    assert "Hello from Ringlet!\n" in con and "argv[1]=[from]\nargv[2]=[libvirt]\n" in con, con
    assert "exit status: 5\n" in con, con
    assert "Hello from Ringlet!" not in serial_out


def test_console_virtio_and_serial(tmp_path):
    """console=virtio,serial: both consoles carry everything, the boot log's
    start included (the UART at once, the port once it is up)."""
    path = tmp_path / "console.txt"
    result = run_guest("hello", args=["both"], extra=["--console", "virtio:file=%s" % path,
                                                      "--append", "console=virtio,serial"], timeout=60)
    uart = result.output.replace("\r\n", "\n")
    assert result.status == 0, uart + result.launcher_stderr
    con = path.read_text()
    for out in (uart, con):
        assert re.search(r"^\[ *[0-9.]+\] Ringlet via PVH: console=virtio", out, re.M), out
        assert "con0: port 0 console" in out, out
        assert "Hello from Ringlet!\n" in out and "argv[1]=[both]\n" in out, out
