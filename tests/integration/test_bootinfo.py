"""Boot-information tests through QEMU: what the VMM hands over reaches the app intact or cut cleanly.

The hostile cases (tag sizes that wrap, maps past their end, pointers
outside memory) are not something QEMU produces; they are in the host unit
tests (tests/unit/test_bootinfo.c) and the fuzzers (tests/fuzz/fuzz_pvh.c,
fuzz_mb2.c). Here the PVH start info QEMU really builds carries a command
line at and over the kernel's limit (BOOT_CMDLINE_MAX - 1 = 2047 bytes):
it must come through byte for byte up to the limit and be cut there.
"""

import pytest

from ringlet import build_app, run_guest

CMDLINE_KEPT = 2047       # BOOT_CMDLINE_MAX - 1 (boot/bootinfo.h)


@pytest.fixture(scope="module", autouse=True)
def hello():
    build_app("hello")


def console(result):
    return result.output.replace("\r\n", "\n")


def words_of_length(total):
    """Plain words whose command line `-- w1 w2 ...` (scripts/run) is exactly total bytes."""
    words, length = [], 2          # "--"
    i = 0
    while length < total:
        room = total - length - 1  # the space before the word
        w = ("w%03d" % i + "x" * 200)[:max(1, min(204, room))]
        if room - len(w) == 1:     # never leave room for only a space
            w = w[:-1]
        words.append(w)
        length += 1 + len(w)
        i += 1
    return words


@pytest.mark.parametrize("total", [CMDLINE_KEPT, CMDLINE_KEPT + 1, 3000])
def test_command_line_at_and_over_the_limit(total):
    args = words_of_length(total)
    cmdline = "-- " + " ".join(args)
    assert len(cmdline) == total
    kept = cmdline[:CMDLINE_KEPT]
    result = run_guest("hello", args=args)
    out = console(result)
    assert result.status == 0, out
    argv = kept.split()[1:]
    expected = "argc=%d\n" % (len(argv) + 1) + "argv[0]=[hello]\n" + "".join(
        "argv[%d]=[%s]\n" % (i + 1, a) for i, a in enumerate(argv))
    assert expected in out, out
