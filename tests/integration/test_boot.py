"""Boot tests: apps/hello on q35, pc and microvm under TCG.

What goes in must come out: the argv given to scripts/run (quoted and
unusual arguments included) is printed back by hello line by line, the
status given with `--exit N` is the launcher's exit status, and guests with
16 MiB to 3 GiB of RAM boot and report the memory QEMU gave them.
"""

import re

import pytest

from ringlet import build_app, run_guest

MACHINES = ["q35", "pc", "microvm"]
LOG_LINE = re.compile(r"^\[\s*(\d+)\.(\d{6})\] (.*)$")


@pytest.fixture(scope="module", autouse=True)
def hello():
    build_app("hello")


def console(result):
    """The guest's console with the serial line's CRLF turned into LF."""
    return result.output.replace("\r\n", "\n")


def expected_argv(args):
    """hello's argc and argv lines for these application arguments."""
    argv = ["hello"] + list(args)
    return "argc=%d\n" % len(argv) + "".join(
        "argv[%d]=[%s]\n" % (i, a) for i, a in enumerate(argv))


def argv_block(result):
    """hello's `argc=` line and the `argv[i]=` lines after it, as printed."""
    out = console(result)
    start = out.find("argc=")
    assert start >= 0, "no argc line:\n" + out
    end = out.find("boot to main:", start)
    assert end >= 0, "no `boot to main` line after argv:\n" + out
    return out[start:end]


def run_hello(args, **kw):
    result = run_guest("hello", args=args, **kw)
    assert "Hello from Ringlet!\n" in console(result), console(result)
    return result


# ---- argv ---------------------------------------------------------------------

UNUSUAL = [
    "plain",
    "two words",
    "",
    "  leading and trailing  ",
    "tab\there",
    "it's",
    "'single'",
    'say "hi"',
    '"',
    "'",
    "back\\slash",
    "\\",
    "\\\\",
    'mix\'"\\ed',
    "--",
    "--exit",          # hello's own option: with a number after it, status 0
    "0",
    "-x",
    "$HOME",
    "=,;|&*?",
    "ünïcödé ☃ 日本語",
]


@pytest.mark.parametrize("machine", MACHINES)
def test_argv_round_trip(machine):
    result = run_hello(UNUSUAL, machine=machine)
    assert result.status == 0, console(result)
    assert argv_block(result) == expected_argv(UNUSUAL)


@pytest.mark.parametrize("machine", MACHINES)
def test_no_arguments(machine):
    result = run_hello([], machine=machine)
    assert result.status == 0, console(result)
    assert argv_block(result) == "argc=1\nargv[0]=[hello]\n"


@pytest.mark.parametrize("machine", MACHINES)
def test_many_arguments(machine):
    args = ["a%02d" % i if i % 3 else "word %d" % i for i in range(60)]
    result = run_hello(args, machine=machine)
    assert result.status == 0, console(result)
    assert argv_block(result) == expected_argv(args)


def test_too_many_arguments_are_cut_with_a_message():
    # The kernel keeps 128 words: `--` and the first 127 arguments.
    args = ["x%d" % i for i in range(200)]
    result = run_hello(args)
    assert result.status == 0, console(result)
    assert argv_block(result) == expected_argv(args[:127])
    assert "ringlet: command line: too many words; the rest are ignored\n" in console(result)


# ---- exit status --------------------------------------------------------------

@pytest.mark.parametrize("status", [0, 1, 42, 127])
def test_exit_status_round_trip(status):
    result = run_hello(["--exit", str(status)])
    out = console(result)
    assert result.status == status, out
    assert "exit status: %d\n" % status in out
    assert "***" not in out           # 127 here is hello's, not a panic's


def test_exit_status_on_microvm_and_pc():
    for machine, status in (("microvm", 42), ("pc", 1)):
        result = run_hello(["--exit", str(status)], machine=machine)
        assert result.status == status, (machine, console(result))


def test_bad_exit_argument():
    result = run_hello(["--exit", "x"])
    out = console(result)
    assert result.status == 2, out
    assert "hello: --exit needs a number\n" in out
    assert "exit status:" not in out


# ---- memory -------------------------------------------------------------------

def usable_ranges(out):
    """(start, end inclusive) of each `memory map: ... usable` line."""
    return [(int(a, 16), int(b, 16)) for a, b in
            re.findall(r"memory map: 0x([0-9a-f]+)-0x([0-9a-f]+) usable$", out, re.M)]


def memory_mib(out):
    found = re.findall(r"\] memory: (\d+) MiB", out)
    assert len(found) == 1, out
    return int(found[0])


@pytest.mark.parametrize("machine,memory", [
    ("q35", "16M"), ("q35", "128M"), ("q35", "3G"),
    ("microvm", "16M"), ("microvm", "3G"),
    ("pc", "16M"), ("pc", "3G"),
])
def test_memory_sizes_boot(machine, memory):
    result = run_hello(["--exit", "7"], machine=machine, memory=memory,
                       extra=["--append", "debug"])
    out = console(result)
    assert result.status == 7, out
    want_mib = int(memory[:-1]) << (10 if memory[-1] == "G" else 0)

    # What the kernel counts, and what the memory map it was given adds up to,
    # are within a few MiB of what QEMU was told (firmware and ACPI keep some).
    assert want_mib - 4 <= memory_mib(out) <= want_mib, out
    ranges = usable_ranges(out)
    assert ranges, out
    total = sum(end + 1 - start for start, end in ranges)
    assert (want_mib - 4) << 20 <= total <= want_mib << 20, out

    if machine == "q35" and memory == "3G":
        # q35 keeps 2 GiB below the PCI hole: the third GiB sits above 4 GiB.
        high = [r for r in ranges if r[0] >= 1 << 32]
        assert high == [(0x100000000, 0x13fffffff)], out


# ---- timing and the kernel log -----------------------------------------------

def test_log_timestamps_increase():
    result = run_hello([], extra=["--append", "debug"])
    out = console(result)
    assert result.status == 0, out
    stamps = [int(m.group(1)) * 1000000 + int(m.group(2))
              for m in map(LOG_LINE.match, out.split("\n")) if m]
    assert len(stamps) >= 5, out
    assert stamps == sorted(stamps), out
    assert stamps[0] < stamps[-1], out
    assert 0 < stamps[0] < 1000000, out      # the first line within a second of entry


def test_boot_to_main_time():
    result = run_hello([], extra=["--append", "debug"])
    out = console(result)
    assert result.status == 0, out
    found = re.findall(r"^boot to main: (\d+)\.(\d{3}) ms, now (\d+)\.(\d{6}) s since boot$",
                       out, re.M)
    assert len(found) == 1, out
    ms, frac, s, us = found[0]
    main_us = int(ms) * 1000 + int(frac)
    now_us = int(s) * 1000000 + int(us)
    assert 0 < main_us < 1000 * 1000, out     # a sanity bound, not a timing assertion
    assert main_us <= now_us, out
    # The kernel's own line says the same figure.
    assert "main: hello after %s.%s ms\n" % (ms, frac) in out


# ---- kernel options -----------------------------------------------------------

def test_unknown_kernel_option_is_reported_and_ignored():
    result = run_hello(["a", "--exit", "5"], extra=["--append", "frobnicate=1 debug"])
    out = console(result)
    assert result.status == 5, out
    assert "ringlet: unknown kernel option 'frobnicate=1' (ignored)\n" in out
    assert "debug" not in argv_block(result)
    assert argv_block(result) == expected_argv(["a", "--exit", "5"])
    assert "main: hello after" in out           # `debug` still took effect


def test_one_boot_per_run():
    result = run_hello([])
    assert console(result).count("Ringlet via PVH") == 1, console(result)
