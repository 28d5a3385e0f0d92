"""virtio-input: a keyboard typing into stdin, driven over QMP.

apps/kbd reads lines and prints each back with its length. QMP send-key and
input-send-event press keys on the virtio keyboard (QEMU routes them to it
once the driver has set DRIVER_OK); the serial console must show the exact
line, and the screen too.
"""

import pytest

from ringlet import build_app
from screen import Guest, load_font, find_text_row, send_keys, send_events


def boot_kbd(machine="q35", extra=()):
    build_app("kbd")
    g = Guest("kbd", machine=machine, extra=["--screen"] + list(extra))
    g.wait_for("> ")
    return g


@pytest.mark.parametrize("machine,extra", [("q35", []), ("pc", []), ("microvm", ["--virtio", "mmio"])],
                         ids=["q35", "pc", "microvm-mmio"])
def test_typed_line_with_shift_and_backspace(machine, extra):
    with boot_kbd(machine, extra) as g:
        # send-key queues its keys in QEMU and returns before they are
        # delivered (each is held 100 ms); input-send-event delivers at once.
        # So wait for the echo before switching from one to the other.
        send_keys(g.qmp, "Hellp\bo, World!")       # shifted H, comma, W, !; a backspace
        g.wait_for("World!")
        send_events(g.qmp, " {x}:~\n")             # press/release events, more shifted keys
        line = "Hello, World! {x}:~"
        g.wait_for("line %d: [%s]" % (len(line), line))
        shot = g.qmp.screendump()
        font = load_font()
        echo = find_text_row(font, shot, "> " + line)
        assert echo is not None, "the echoed line is not on the screen"
        assert find_text_row(font, shot, "line %d: [%s]" % (len(line), line)) == echo + 1


def test_caps_lock_ctrl_and_quit():
    with boot_kbd() as g:
        # Caps lock on: letters upper case, digits and symbols unchanged;
        # shift inverts it for letters.
        g.qmp.cmd("send-key", keys=[{"type": "qcode", "data": "caps_lock"}])
        send_keys(g.qmp, "ab1-")
        g.qmp.cmd("send-key", keys=[{"type": "qcode", "data": "shift"}, {"type": "qcode", "data": "c"}])
        g.qmp.cmd("send-key", keys=[{"type": "qcode", "data": "caps_lock"}])
        send_keys(g.qmp, "d\n")
        g.wait_for("line 6: [AB1-cd]")
        # Ctrl-U erases the line so far in kbd; what follows stands alone.
        send_keys(g.qmp, "junk")
        g.qmp.cmd("send-key", keys=[{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "u"}])
        g.qmp.cmd("send-key", keys=[{"type": "qcode", "data": "up"}])   # ESC [ A: ignored by kbd
        send_keys(g.qmp, "ok\n")
        g.wait_for("line 2: [ok]")
        send_keys(g.qmp, "quit\n")
        g.wait_for("kbd: bye")
        assert g.proc.wait(timeout=30) == 0
