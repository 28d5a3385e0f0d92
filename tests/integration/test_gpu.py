"""virtio-gpu: the console on the screen, checked pixel by pixel.

Each test boots a guest with scripts/run --screen (virtio-gpu, keyboard,
tablet, console=gpu,serial) under -display none, takes QMP screendumps and
compares them with text drawn on the host from the same PSF font
(screen.py). The kernel option `hold` keeps the guest, and so its screen,
up after the application ends.
"""

import pytest

from ringlet import build_app
from screen import FG, Guest, load_font, find_text_row

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
