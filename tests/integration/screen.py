"""Helpers for the screen and keyboard tests (test_gpu.py, test_input.py).

A guest is booted with scripts/run --screen (a virtio GPU, keyboard and
tablet, console=gpu,serial) and a QMP socket, and left running while the
test talks to it: QMP `screendump` gives the screen as a PPM file, QMP
`send-key` and `input-send-event` type on the virtio keyboard, and the
serial console is read as it arrives.

What the screen must show is drawn here, on the host, from the same PSF
font the kernel was built with (scripts/psf2c's loader), so a comparison
can be pixel-exact.
"""

import importlib.machinery
import importlib.util
import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import zlib

from ringlet import root

FONT = os.environ.get("FONT", "/usr/share/consolefonts/Lat15-Terminus16.psf.gz")
FG, BG = (0xaa, 0xaa, 0xaa), (0, 0, 0)   # kernel/fbcon.c's default colours


def load_font():
    """The console font, through scripts/psf2c's own loader."""
    path = os.path.join(root(), "scripts", "psf2c")
    loader = importlib.machinery.SourceFileLoader("psf2c", path)
    spec = importlib.util.spec_from_loader("psf2c", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod.load(FONT)


# ---------------------------------------------------------------- images

class Image:
    """An RGB image: width, height and bytes, 3 per pixel."""

    def __init__(self, width, height, rgb):
        self.width, self.height, self.rgb = width, height, rgb

    def pixel(self, x, y):
        i = (y * self.width + x) * 3
        return tuple(self.rgb[i:i + 3])

    def crop(self, x, y, w, h):
        rows = [self.rgb[((y + r) * self.width + x) * 3:((y + r) * self.width + x + w) * 3]
                for r in range(h)]
        return Image(w, h, b"".join(rows))

    def save_png(self, path):
        raw = b"".join(b"\0" + self.rgb[y * self.width * 3:(y + 1) * self.width * 3]
                       for y in range(self.height))

        def chunk(kind, body):
            return (struct.pack(">I", len(body)) + kind + body
                    + struct.pack(">I", zlib.crc32(kind + body)))
        with open(path, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n"
                    + chunk(b"IHDR", struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0))
                    + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def read_ppm(path):
    """A binary PPM (P6, maxval 255), as QEMU's screendump writes it."""
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    pos += 1
    assert fields[0] == b"P6" and fields[3] == b"255", fields
    w, h = int(fields[1]), int(fields[2])
    rgb = data[pos:pos + w * h * 3]
    assert len(rgb) == w * h * 3, "short PPM"
    return Image(w, h, rgb)


def render_text(font, text, cols, fg=FG, bg=BG):
    """One line of the console: `text` then blanks to `cols` cells. text is
    a string, or a list of (string, fg) pieces for coloured text."""
    pieces = [(text, fg)] if isinstance(text, str) else list(text)
    cells = [(ch, colour) for piece, colour in pieces for ch in piece]
    cells = (cells + [(" ", fg)] * cols)[:cols]
    glyphs = [(font.glyph_rows(ch.encode("latin-1")[0]), bytes(colour)) for ch, colour in cells]
    bgb = bytes(bg)
    rows = []
    for y in range(font.height):
        rows.append(b"".join(fgb if on else bgb for g, fgb in glyphs for on in g[y]))
    return Image(cols * font.width, font.height, b"".join(rows))


def find_text_row(font, shot, text):
    """The console row (0-based) whose pixels are exactly `text` on a line of
    its own (render_text's text), or None."""
    cols = shot.width // font.width
    want = render_text(font, text, cols).rgb
    for row in range(shot.height // font.height):
        if shot.crop(0, row * font.height, cols * font.width, font.height).rgb == want:
            return row
    return None


# ---------------------------------------------------------------- QMP

class Qmp:
    """A small QMP client over a unix socket."""

    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(timeout)
        self.file = self.sock.makefile("rw")
        greeting = json.loads(self.file.readline())
        assert "QMP" in greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.file.write(json.dumps(msg) + "\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise AssertionError("QMP %s: %s" % (name, reply["error"]))
            # an event: ignore

    def screendump(self):
        fd, path = tempfile.mkstemp(suffix=".ppm")
        os.close(fd)
        try:
            self.cmd("screendump", filename=path)
            return read_ppm(path)
        finally:
            os.unlink(path)

    def close(self):
        self.sock.close()


# Host key names (QEMU's qcodes) for the characters the tests type.
_SHIFTED = {'!': '1', '@': '2', '#': '3', '$': '4', '%': '5', '^': '6', '&': '7', '*': '8',
            '(': '9', ')': '0', '_': 'minus', '+': 'equal', '{': 'bracket_left',
            '}': 'bracket_right', ':': 'semicolon', '"': 'apostrophe', '~': 'grave_accent',
            '|': 'backslash', '<': 'comma', '>': 'dot', '?': 'slash'}
_PLAIN = {' ': 'spc', '-': 'minus', '=': 'equal', '[': 'bracket_left', ']': 'bracket_right',
          ';': 'semicolon', "'": 'apostrophe', '`': 'grave_accent', '\\': 'backslash',
          ',': 'comma', '.': 'dot', '/': 'slash', '\n': 'ret', '\b': 'backspace'}


def qcodes(ch):
    """The keys to press together for one character."""
    if ch.isalpha() and ch.isupper():
        return ["shift", ch.lower()]
    if ch in _SHIFTED:
        return ["shift", _SHIFTED[ch]]
    if ch in _PLAIN:
        return [_PLAIN[ch]]
    return [ch]


def send_keys(qmp, text):
    """Types text with QMP send-key, one chord per character."""
    for ch in text:
        qmp.cmd("send-key", keys=[{"type": "qcode", "data": k} for k in qcodes(ch)])


def send_events(qmp, text):
    """Types text with QMP input-send-event: press and release events."""
    for ch in text:
        keys = qcodes(ch)
        down = [{"type": "key", "data": {"down": True, "key": {"type": "qcode", "data": k}}} for k in keys]
        up = [{"type": "key", "data": {"down": False, "key": {"type": "qcode", "data": k}}}
              for k in reversed(keys)]
        qmp.cmd("input-send-event", events=down)
        qmp.cmd("input-send-event", events=up)


# ---------------------------------------------------------------- VNC

def free_vnc_display():
    """A VNC display number N whose port 5900 + N on 127.0.0.1 is free now."""
    for n in range(40, 100):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", 5900 + n))
                return n
            except OSError:
                continue
    raise AssertionError("no free VNC port on 127.0.0.1")


def vnc_resize(display, width, height, timeout=30):
    """Asks QEMU's VNC server on 127.0.0.1:display, as a client would
    (RFB 3.8, no authentication), for a desktop of width x height:
    SetDesktopSize of the ExtendedDesktopSize extension. QEMU passes it to
    the GPU, which raises a display-change event in its configuration."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", 5900 + display), timeout=timeout)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)

    def recvn(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            assert c, "VNC server closed the connection"
            b += c
        return b
    with s:
        assert recvn(12).startswith(b"RFB 003.")
        s.sendall(b"RFB 003.008\n")
        types = recvn(recvn(1)[0])
        assert 1 in types, "VNC server wants authentication"
        s.sendall(b"\x01")                        # security type None
        assert recvn(4) == b"\0\0\0\0"
        s.sendall(b"\x01")                        # ClientInit: shared
        w, h = struct.unpack(">HH", recvn(4))
        recvn(16)                                  # pixel format
        recvn(struct.unpack(">I", recvn(4))[0])    # name
        s.sendall(struct.pack(">BBHii", 2, 0, 2, 0, -308))        # SetEncodings: raw, ExtendedDesktopSize
        s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))  # FramebufferUpdateRequest
        s.sendall(struct.pack(">BBHHBB", 251, 0, width, height, 1, 0)
                  + struct.pack(">IHHHHI", 0, 0, 0, width, height, 0))  # SetDesktopSize, one screen
        time.sleep(0.5)


# ---------------------------------------------------------------- a running guest

class Guest:
    """A guest started with scripts/run and left running; its serial output
    is collected by a thread. Use as a context manager."""

    def __init__(self, app, args=(), machine="q35", extra=(), timeout=120):
        self.args = list(args)
        self.dir = tempfile.mkdtemp(prefix="ringlet-screen-")
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        accel = os.environ.get("RINGLET_ACCEL", "tcg")
        cmd = [os.path.join(root(), "scripts", "run"), "-q", "--accel", accel, "-M", machine,
               "--timeout", str(timeout), "--qmp", self.qmp_path]
        cmd += list(extra) + [app, "--"] + list(args)
        self.proc = subprocess.Popen(cmd, cwd=root(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.output = ""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            self.qmp = Qmp(self.qmp_path)
        except BaseException:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError("no QMP socket from QEMU:\n" + self.text())

    def _read(self):
        while True:
            chunk = self.proc.stdout.read1(4096)
            if not chunk:
                return
            with self.lock:
                self.output += chunk.decode(errors="replace")

    def text(self):
        with self.lock:
            return self.output.replace("\r\n", "\n")

    def wait_for(self, needle, timeout=60):
        """Waits until `needle` is on the serial console; fails with the
        console so far otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError("%r not on the console within %g s:\n%s" % (needle, timeout, self.text()))

    def stop(self):
        try:
            self.qmp.cmd("quit")
        except (OSError, AssertionError, ValueError):
            pass
        self.qmp.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.reader.join(timeout=5)
        try:
            os.unlink(self.qmp_path)
        except OSError:
            pass
        os.rmdir(self.dir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
