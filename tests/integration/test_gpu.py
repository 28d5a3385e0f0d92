"""virtio-gpu: the console on the screen, checked pixel by pixel.

Each test boots a guest with scripts/run --screen (virtio-gpu, keyboard,
tablet, console=gpu,serial) under -display none, takes QMP screendumps and
compares them with text drawn on the host from the same PSF font
(screen.py). The kernel option `hold` keeps the guest, and so its screen,
up after the application ends.
"""

import time

import pytest

from ringlet import build_app
from screen import FG, Guest, load_font, find_text_row, free_vnc_display, send_keys, vnc_resize

GREETING = "Hello from Ringlet!"


def boot_hello(machine="q35", extra=(), args=()):
    build_app("hello")
    return Guest("hello", args=args, machine=machine, extra=["--screen", "--append", "hold"] + list(extra))


def check_greeting(g, width, height):
    g.wait_for("holding (kernel option hold)")
    shot = g.qmp.screendump()
    assert (shot.width, shot.height) == (width, height)
    font = load_font()
    row = find_text_row(font, shot, GREETING)
    assert row is not None, "the greeting is not on the screen:\n" + g.text()
    # The next lines are hello's too, in order.
    assert find_text_row(font, shot, "argc=%d" % (1 + len(g.args))) == row + 1
    assert find_text_row(font, shot, "argv[0]=[hello]") == row + 2
    return shot, row


def test_greeting_pixel_exact():
    with boot_hello() as g:
        check_greeting(g, 1280, 800)
        assert "virtio-gpu gpu0 1280x800, 1 scanout, msix" in g.text()


def test_text_the_font_cannot_match():
    """The comparison can fail: a line that is not on the screen is not found."""
    with boot_hello() as g:
        shot, row = check_greeting(g, 1280, 800)
        assert find_text_row(load_font(), shot, "Hello from Ringlet?") is None


@pytest.mark.parametrize("size", [(800, 600), (1024, 768)])
def test_resized_display(size):
    """-device virtio-gpu-pci,xres=W,yres=H: the guest makes a framebuffer of that size."""
    with boot_hello(extra=["--screen-size", "%dx%d" % size]) as g:
        check_greeting(g, *size)
        assert "gpu0 %dx%d" % size in g.text()


def test_virtio_vga():
    with boot_hello(extra=["--gpu", "virtio-vga"]) as g:
        check_greeting(g, 1280, 800)


def test_two_scanouts_listed():
    """max_outputs=2: the boot log lists both scanouts, the console is on the first."""
    with boot_hello(extra=["--qemu-arg=-global", "--qemu-arg=virtio-gpu-pci.max_outputs=2"]) as g:
        check_greeting(g, 1280, 800)
        assert "gpu0: scanouts: 0 1280x800, 1 off" in g.text()
        assert "virtio-gpu gpu0 1280x800, 2 scanouts" in g.text()


def test_microvm_pcie():
    """microvm with its PCIe bus: virtio-gpu-pci there."""
    with boot_hello(machine="microvm") as g:
        check_greeting(g, 1280, 800)
        assert "virtio-gpu gpu0 1280x800" in g.text()


def test_microvm_mmio():
    """microvm without PCI: virtio-gpu-device on virtio-mmio."""
    with boot_hello(machine="microvm", extra=["--virtio", "mmio"]) as g:
        check_greeting(g, 1280, 800)
        assert "virtio-gpu gpu0 1280x800" in g.text()


def test_ansi_escapes():
    """Colours (SGR), cursor movement, erase in line, as hello prints its argv."""
    arg = "\033[31mred\033[0m \033[1;34mblue\033[0m abc\033[3DXY\033[K"
    with boot_hello(args=[arg]) as g:
        shot, row = check_greeting(g, 1280, 800)
        red, bright_blue = (0xaa, 0, 0), (0x55, 0x55, 0xff)
        want = [("argv[1]=[", FG), ("red", red), (" ", FG), ("blue", bright_blue), (" XY]", FG)]
        assert find_text_row(load_font(), shot, want) == row + 3
        # Drawn in the default colour instead, it does not match.
        assert find_text_row(load_font(), shot, "argv[1]=[red blue XY]") is None


def test_no_legacy_gpu_or_keyboard():
    """QEMU offers virtio-gpu and virtio-input only as modern devices: asked
    for legacy ones (disable-modern=on), it still gives modern ones (device
    IDs 0x1050 and 0x1052), and the drivers take them as such."""
    legacy = ",disable-modern=on,disable-legacy=off"
    build_app("hello")
    with Guest("hello", extra=["--append", "console=gpu,serial hold",
                               "--qemu-arg=-device", "--qemu-arg=virtio-gpu-pci" + legacy,
                               "--qemu-arg=-device", "--qemu-arg=virtio-keyboard-pci" + legacy]) as g:
        check_greeting(g, 1280, 800)
        assert "1af4:1050 0380  virtio-gpu gpu0 1280x800" in g.text()
        assert "1af4:1052 0900  virtio-input input0 keyboard" in g.text()
        assert "(legacy)" not in g.text()


def test_fbdemo_draws_and_gives_the_screen_back():
    """apps/fbdemo through <ringlet/fb.h>: the screen holds one whole frame
    of its pattern, pixel for pixel; a key ends it and the console's text
    comes back."""
    build_app("fbdemo")
    with Guest("fbdemo", extra=["--screen", "--append", "hold"]) as g:
        deadline = time.monotonic() + 60
        while True:
            shot = g.qmp.screendump()
            # Frame t has green (y + t) & 0xff at (0, y): 0 at (0, 0) means no frame yet or t = 0.
            if shot.pixel(0, 0) != (0, 0, 0) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        t = shot.pixel(0, 0)[1]  # t & 0xff; the pattern depends on no more of t
        cx, cy = shot.width // 2, shot.height // 2  # the pointer's square
        for y in range(0, shot.height, 7):
            for x in range(0, shot.width, 5):
                if abs(x - cx) <= 6 and abs(y - cy) <= 6:
                    continue
                r = ((x + 2 * t) ^ y) & 0xff
                gr = ((x >> 1) + ((y + t) & 0xff)) & 0xff
                b = ((x ^ (y + t)) >> 1) & 0xff
                assert shot.pixel(x, y) == (r, gr, b), (x, y, t)
        assert shot.pixel(cx, cy) == (255, 255, 255)
        g.qmp.cmd("send-key", keys=[{"type": "qcode", "data": "q"}])
        g.wait_for("holding (kernel option hold)")
        assert "frames of 1280x800" in g.text()
        font = load_font()
        assert find_text_row(font, g.qmp.screendump(), "ringlet: exit status 0; holding (kernel option hold)") is not None


def test_display_change_event():
    """The host resizes the display while the guest runs (a VNC client asks
    QEMU for 800x600): the GPU raises VIRTIO_GPU_EVENT_DISPLAY, the driver
    makes a framebuffer of the new size, and the console carries on in it."""
    build_app("kbd")
    n = free_vnc_display()
    with Guest("kbd", extra=["--display", "vnc:%d" % n]) as g:
        g.wait_for("> ")
        assert (g.qmp.screendump().width, g.qmp.screendump().height) == (1280, 800)
        vnc_resize(n, 800, 600)
        g.wait_for("gpu0: display resized to 800x600")
        send_keys(g.qmp, "ok\n")
        g.wait_for("line 2: [ok]")
        shot = g.qmp.screendump()
        assert (shot.width, shot.height) == (800, 600)
        font = load_font()
        row = find_text_row(font, shot, "line 2: [ok]")
        assert row is not None
        # The boot log above it survived the move to the new framebuffer.
        assert find_text_row(font, shot, "kbd: type lines; `quit` ends") is not None


def test_libvirt_xml_screen(tmp_path):
    """scripts/libvirt-xml --screen: the devices virt-manager gives a new VM,
    and a VNC display on loopback only; the XML is valid for libvirt."""
    import shutil
    import subprocess
    import xml.etree.ElementTree as ET
    from ringlet import root
    image = tmp_path / "x.img"
    image.write_bytes(b"\0" * 4096)
    out = tmp_path / "d.xml"
    subprocess.run([root() + "/scripts/libvirt-xml", "--name", "t", "--image", str(image), "--screen",
                    "--out", str(out)], check=True)
    dev = ET.parse(out).getroot().find("devices")
    assert dev.find("video/model").attrib["type"] == "virtio"
    assert sorted((i.attrib["type"], i.attrib["bus"]) for i in dev.findall("input")) == \
        [("keyboard", "virtio"), ("tablet", "virtio")]
    assert dev.find("graphics").attrib["type"] == "vnc"
    assert dev.find("graphics/listen").attrib["address"] == "127.0.0.1"
    if shutil.which("virt-xml-validate"):
        subprocess.run(["virt-xml-validate", str(out), "domain"], check=True, stdout=subprocess.DEVNULL)
    # Without --screen: none of it.
    subprocess.run([root() + "/scripts/libvirt-xml", "--name", "t", "--image", str(image), "--out", str(out)],
                   check=True)
    dev = ET.parse(out).getroot().find("devices")
    assert dev.find("video") is None and dev.find("graphics") is None


def test_console_gpu_without_a_gpu_falls_back_to_serial():
    """console=gpu on a machine without a GPU: the whole log and the
    program's output still reach serial, with a line saying why."""
    from ringlet import run_guest
    build_app("hello")
    r = run_guest("hello", extra=["--append", "console=gpu"])
    assert r.status == 0
    assert "Ringlet via PVH: console=gpu" in r.output  # a line from before the fallback, replayed
    assert "console=gpu: no screen (no working virtio-gpu); the console stays on serial" in r.output
    assert "Hello from Ringlet!" in r.output


def test_console_gpu_only():
    """console=gpu alone: the screen shows the program's output, serial does not."""
    build_app("hello")
    with Guest("hello", extra=["--screen", "--append", "console=gpu hold"]) as g:
        font = load_font()
        deadline = time.monotonic() + 60
        row = None
        while row is None and time.monotonic() < deadline:
            row = find_text_row(font, g.qmp.screendump(), "ringlet: exit status 0; holding (kernel option hold)")
            time.sleep(0.2)
        assert row is not None
        assert find_text_row(font, g.qmp.screendump(), GREETING) is not None
        assert "Hello from Ringlet!" not in g.text()


def test_tablet_moves_fbdemo_pointer():
    """A tablet position (QMP input-send-event, absolute 0..32767) reaches
    fbdemo through <ringlet/input.h>: its white square moves there."""
    build_app("fbdemo")
    with Guest("fbdemo", extra=["--screen", "--append", "hold"]) as g:
        want_x, want_y = 320, 200
        ev = [{"type": "abs", "data": {"axis": "x", "value": want_x * 32768 // 1280}},
              {"type": "abs", "data": {"axis": "y", "value": want_y * 32768 // 800}}]
        deadline = time.monotonic() + 60
        moved = False
        while not moved and time.monotonic() < deadline:
            g.qmp.cmd("input-send-event", events=ev)
            time.sleep(0.2)
            shot = g.qmp.screendump()
            moved = all(shot.pixel(want_x + dx, want_y + dy) == (255, 255, 255)
                        for dx in (-6, 0, 6) for dy in (-6, 0, 6))
        assert moved, "no white square at (%d, %d)" % (want_x, want_y)
        # And it left the middle, where it started.
        assert not all(shot.pixel(640 + dx, 400 + dy) == (255, 255, 255) for dx in (-6, 0, 6) for dy in (-6, 0, 6))
        g.qmp.cmd("send-key", keys=[{"type": "qcode", "data": "q"}])
        g.wait_for("holding (kernel option hold)")
