"""The guide's commands work as written: every ```sh block of docs/*.md is run.

A block is a transcript: a line starting with "$ " is a command (continued on the
next lines while it ends in a backslash or has a quote open), the lines after it
up to the next command are the output the guide shows for it. A block with no
"$ " line is a script and runs as it is. A block's commands run in order in one
bash (so `cd`, variables and `exec 3<>` carry over) from the repository root,
with `set -e -o pipefail`: every command must exit 0.

The output the guide shows is checked: each shown line must match a line of the
command's real output (stdout and stderr together), in order, with lines in
between allowed. In a shown line:
- "..." stands for any text; a line that is only "..." says more lines come;
- a boot-log time stamp such as "[    0.017053]" matches any time stamp;
- a measured number (a decimal one, or one followed by MHz, ms, s, ...) any number;
- "0x" and 8 or more hex digits (a host pointer, an address of this build) any such;
- "  <- note" at the end is the guide's note to the reader, not output.
Everything else (sizes, counts, checksums, messages) must be as shown.

A block that cannot run here (it needs libvirt, Proxmox, a terminal, a network
beyond loopback) has the HTML comment <!-- no-test --> on the line before its
fence; keep those few. test_blocks_found checks the guide still has blocks to run,
so removing the ```sh tags cannot make this test pass by running nothing.
"""

import glob
import os
import re
import shlex
import subprocess

import pytest

from ringlet import root

DOCS = os.path.join(root(), "docs")
BLOCK_TIMEOUT = 240  # seconds for one block, builds included
STAMP = re.compile(r"\[ *[0-9]+\.[0-9]+\]")
# What a machine measures differs from run to run: in a shown line a decimal number (1.25) matches
# any decimal number, and a whole number followed by a unit of rate or time (975 MHz, 15 ms) any
# whole number; other numbers (sizes, counts, checksums) must be as shown.
MEASURED = re.compile(r"[0-9]+\.[0-9]+|[0-9]+(?= (?:MHz|GHz|ms|us|µs|ns|s|KiB/s|MiB/s|GiB/s)\b)")
# So do a host pointer or a build's address: "0x" and 8 or more hex digits matches any such.
POINTER = re.compile(r"0x[0-9a-fA-F]{8,}")
# "  <- text" at the end of a shown line is the guide's note on that line, not output.
NOTE = re.compile(r"\s+<- .*$")
MARK = "@@guide-command-%d@@"


class Block:
    def __init__(self, path, line, text, skip):
        self.path, self.line, self.text, self.skip = path, line, text, skip

    @property
    def name(self):
        return "%s:%d" % (os.path.basename(self.path), self.line)


def blocks_of(path):
    """The ```sh blocks of one Markdown file, each with its first line number."""
    found = []
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            j = i - 1
            while j >= 0 and lines[j].strip() == "":
                j -= 1
            skip = j >= 0 and lines[j].strip() == "<!-- no-test -->"
            k = i + 1
            while k < len(lines) and lines[k].strip() != "```":
                k += 1
            assert k < len(lines), "%s:%d: ```sh block never closed" % (path, i + 1)
            found.append(Block(path, i + 1, "\n".join(lines[i + 1:k]), skip))
            i = k
        i += 1
    return found


def complete(cmd):
    """Whether a command's text is whole (no trailing backslash, no quote left open)."""
    if cmd.endswith("\\"):
        return False
    try:
        shlex.split(cmd, comments=True)
    except ValueError:
        return False
    return True


def parse(text):
    """[(command, [shown output lines])]; one pseudo-command for a plain script."""
    lines = text.split("\n")
    if not any(l.startswith("$ ") for l in lines):
        return [(text, [])]
    steps = []
    cmd = None
    for l in lines:
        if cmd is not None and not complete(cmd[0]):
            cmd[0] += "\n" + l
        elif l.startswith("$ "):
            cmd = [l[2:], []]
            steps.append(cmd)
        else:
            assert cmd is not None, "output shown before the first command: %r" % l
            if l.strip():
                cmd[1].append(l)
    return [(c, out) for c, out in steps]


def pattern(shown):
    """A regex for one shown output line (see the rules at the top)."""
    rx = []
    shown = POINTER.sub("0x...", NOTE.sub("", shown))
    for i, part in enumerate(STAMP.split(shown.strip())):
        if i:
            rx.append(r"\[ *[0-9]+\.[0-9]+\]")
        for j, text in enumerate(part.split("...")):
            if j:
                rx.append(".*")
            at = 0
            for m in MEASURED.finditer(text):
                rx.append(re.escape(text[at:m.start()]) + r"[0-9]+(?:\.[0-9]+)?")
                at = m.end()
            rx.append(re.escape(text[at:]))
    return re.compile("".join(rx))


def check_output(shown, actual):
    """Each shown line matches an actual line, in order; returns the first that does not."""
    actual = [a.rstrip() for a in actual.replace("\r\n", "\n").split("\n")]
    at = 0
    for s in shown:
        if s.strip() == "...":
            continue
        rx = pattern(s)
        while at < len(actual) and not rx.fullmatch(actual[at].strip()):
            at += 1
        if at == len(actual):
            return s
        at += 1
    return None


def script_for(steps):
    parts = ["exec 2>&1", "set -e -o pipefail"]
    for n, (cmd, _) in enumerate(steps):
        parts.append("echo '%s'" % (MARK % n))
        parts.append(cmd)
    return "\n".join(parts) + "\n"


def run_block(block):
    steps = parse(block.text)
    proc = subprocess.Popen(["bash", "-c", script_for(steps)], cwd=root(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, _ = proc.communicate()
        raise AssertionError("%s: still running after %d s:\n%s"
                             % (block.name, BLOCK_TIMEOUT, out.decode(errors="replace")))
    finally:
        # A command left in the background (`... &`) must not outlive its block.
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
    out = out.decode(errors="replace")
    pieces = re.split(r"@@guide-command-(\d+)@@\n", out)
    outputs = {int(pieces[i]): pieces[i + 1] for i in range(1, len(pieces) - 1, 2)}
    last = max(outputs) if outputs else -1
    if proc.returncode != 0:
        raise AssertionError("%s: command failed (status %d):\n$ %s\n%s"
                             % (block.name, proc.returncode, steps[last][0] if last >= 0 else "",
                                outputs.get(last, out)))
    assert last == len(steps) - 1, "%s: not every command ran:\n%s" % (block.name, out)
    for n, (cmd, shown) in enumerate(steps):
        missing = check_output(shown, outputs[n])
        assert missing is None, ("%s: the guide shows\n  %s\nbut\n$ %s\nprinted:\n%s"
                                 % (block.name, missing, cmd, outputs[n]))


ALL = [b for p in sorted(glob.glob(os.path.join(DOCS, "*.md"))) for b in blocks_of(p)]


def test_blocks_found():
    runnable = [b for b in ALL if not b.skip]
    assert len(runnable) >= 8, [b.name for b in ALL]
    # no-test is for the few blocks that cannot run here, not a way out
    assert len(ALL) - len(runnable) <= len(runnable), [b.name for b in ALL if b.skip]


def test_parse_and_match():
    """The transcript rules themselves (so a bug here cannot pass every block)."""
    steps = parse("$ echo a \\\n    b\na b\n$ python3 -c '\nprint(1)'\n1")
    assert steps == [("echo a \\\n    b", ["a b"]), ("python3 -c '\nprint(1)'", ["1"])]
    assert check_output(["[    0.1] x ... z"], "[  12.345678] x yy z\n") is None
    assert check_output(["b", "a"], "a\nb\n") == "a"
    assert check_output(["x"], "xy\n") == "x"
    assert check_output(["TSC 2600 MHz, 5.849 ms, 64 MiB"], "TSC 2594 MHz, 45.077 ms, 64 MiB\n") is None
    assert check_output(["64 MiB"], "63 MiB\n") == "64 MiB"
    assert check_output(["vq 0x7f43c70b00a8 len 0   <- done"], "vq 0x7f5cbbdb80a8 len 0\n") is None
    assert check_output(["vq 0x7f43c70b00a8 len 0"], "vq 0x7f5cbbdb80a8 len 1\n") is not None


def untracked():
    """Files in the work tree that git does not know and does not ignore."""
    done = subprocess.run(["git", "ls-files", "--others", "--exclude-standard"], cwd=root(),
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)
    return set(done.stdout.split()) if done.returncode == 0 else set()


@pytest.mark.parametrize("block", [b for b in ALL if not b.skip], ids=lambda b: b.name)
def test_guide_block(block):
    before = untracked()
    run_block(block)
    # A command of the guide leaves its files in /tmp or build/, not in the reader's source tree.
    assert untracked() <= before, "%s left %s in the work tree" % (block.name, untracked() - before)


LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def test_index_lists_every_chapter():
    """docs/README.md is the table of contents: every chapter is in it."""
    index = open(os.path.join(DOCS, "README.md"), encoding="utf-8").read()
    listed = {m.group(1) for m in LINK.finditer(index)}
    chapters = {os.path.basename(p) for p in glob.glob(os.path.join(DOCS, "*.md"))} - {"README.md"}
    assert chapters <= listed, "not in docs/README.md: %s" % sorted(chapters - listed)


def test_relative_links_resolve():
    """Links between chapters and to drawings point at files that exist."""
    broken = []
    for p in sorted(glob.glob(os.path.join(DOCS, "*.md"))):
        text = open(p, encoding="utf-8").read()
        text = re.sub(r"```.*?```", "", text, flags=re.S)
        for m in LINK.finditer(text):
            target = m.group(1)
            if "://" in target or target.startswith("mailto:"):
                continue
            if not os.path.exists(os.path.join(DOCS, target)):
                broken.append("%s: %s" % (os.path.basename(p), target))
    assert not broken, broken


def test_driver_table_matches_the_tree():
    """drivers.md's table of Linux options: every Ringlet file it names exists, and every device
    type drivers/drivers.c gives a driver to has a row that names its file, not "not yet"."""
    rows = {}
    for line in open(os.path.join(DOCS, "drivers.md"), encoding="utf-8"):
        if not line.startswith("| `CONFIG_"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4, line
        for path in re.findall(r"`([^`]+\.c)`", cells[3]):
            assert os.path.exists(os.path.join(root(), path)), "drivers.md names %s: %s" % (path, line)
        m = re.search(r"\((\d+)\)", cells[2])
        if m:
            rows[int(m.group(1))] = cells[3]
    ids = {}
    headers = [os.path.join(root(), "drivers", "virtio", "virtio_dev.h")]  # first: its numbers win
    headers += sorted(glob.glob(os.path.join(root(), "drivers", "**", "*.h"), recursive=True))
    for h in headers:
        for line in open(h, encoding="utf-8"):
            m = re.match(r"#define (VIRTIO_ID_\w+)\s+(\d+)", line)
            if m:
                ids.setdefault(m.group(1), int(m.group(2)))
    handled = re.findall(r"case (VIRTIO_ID_\w+):", open(os.path.join(root(), "drivers", "drivers.c")).read())
    assert handled, "no driver cases found in drivers/drivers.c"
    for name in handled:
        assert name in ids, "no #define of %s under drivers/" % name
        number = ids[name]
        assert number in rows, "drivers.md has no row for device type %d (%s)" % (number, name)
        assert rows[number] != "not yet", ("drivers/drivers.c drives %s, but drivers.md says "
                                           "\"not yet\": name its file" % name)
