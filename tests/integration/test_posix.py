"""POSIX edge cases of the file calls: Ringlet against Linux, line by line.

apps/posixedge runs the same cases (lseek overflows, invalid open flags,
descriptors closed, reused and never opened, reads and writes against the
access mode, pread/pwrite at odd offsets) and prints one line per case: the
return value, errno's name and a hash of any bytes read. The test builds it
twice, with the host's gcc and as a Ringlet application, runs it on a file
(Linux) and on a disk with the same bytes (Ringlet), and compares the lines.
Linux is the reference; where Ringlet differs on purpose, DIFFERENCES says
so and both sides are checked against what each must print.
"""

import os
import random
import re
import subprocess

from ringlet import build_app, root, run_guest

SIZE = 1 << 20
LINE = re.compile(r"^(\w+) (ret=-?\d+ errno=[\w#]+(?: data=[0-9a-f]{8})?)$", re.M)

# Case -> (Linux's line, Ringlet's line); None: the case prints nothing there.
DIFFERENCES = {
    # O_RDONLY|O_WRONLY|O_RDWR: POSIX says EINVAL; Linux opens a descriptor
    # that can neither read nor write (its "mode 3", for ioctl-only tools).
    "open_accmode3": ("ret=4 errno=0", "ret=-1 errno=EINVAL"),
    "accmode3_read": ("ret=-1 errno=EBADF", None),
    "accmode3_write": ("ret=-1 errno=EBADF", None),
}


def fnv1a(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return "%08x" % h


def cases(text):
    """The case lines of an output, in order, as (name, result)."""
    found = LINE.findall(text.replace("\r\n", "\n"))
    names = [name for name, _ in found]
    assert len(names) == len(set(names)), "a case printed twice:\n" + text
    return found


def test_posix_edge_cases_match_linux(tmp_path):
    build_app("posixedge")
    host = tmp_path / "posixedge-linux"
    subprocess.run(["gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(host),
                    os.path.join(root(), "apps", "posixedge", "main.c")], check=True)
    data = random.Random(70).randbytes(SIZE)
    linux_file, disk = tmp_path / "linux.img", tmp_path / "disk.img"
    linux_file.write_bytes(data)
    disk.write_bytes(data)

    # stderr a pipe, as the console is not seekable: lseek(2) is ESPIPE on both.
    linux = subprocess.run([str(host), str(linux_file)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                           timeout=30)
    assert linux.returncode == 0, linux.stderr
    assert linux.stdout == "", "something reached the closed descriptor 1: %r" % linux.stdout
    guest = run_guest("posixedge", args=["/dev/vda"], extra=["--disk", str(disk), "--append", "debug"])
    out = guest.output.replace("\r\n", "\n")
    assert guest.status == 0, "status %d\n%s%s" % (guest.status, out, guest.launcher_stderr)
    assert "***" not in out, out
    assert "posixedge done" in linux.stderr and "posixedge done" in out, out

    want, got = cases(linux.stderr), cases(out)
    assert len(want) > 60, linux.stderr

    same_want = [c for c in want if c[0] not in DIFFERENCES]
    same_got = [c for c in got if c[0] not in DIFFERENCES]
    differing = ["%-24s Linux: %-36s Ringlet: %s" % (w[0], w[1], g[1] if g[0] == w[0] else "%s %s" % g)
                 for w, g in zip(same_want, same_got) if w != g]
    assert not differing and len(same_want) == len(same_got), "Ringlet differs from Linux:\n" + "\n".join(
        differing + ["(%d cases on Linux, %d on Ringlet)" % (len(same_want), len(same_got))])
    # The deliberate differences, each side checked on its own.
    for name, (on_linux, on_ringlet) in DIFFERENCES.items():
        assert dict(want).get(name) == on_linux, (name, linux.stderr)
        assert dict(got).get(name) == on_ringlet, (name, out)

    # What both must say, whatever the other does: the fixed cases and the
    # bytes, against the host's own arithmetic.
    r = dict(got)
    assert r["fstat_size"] == "ret=%d errno=0" % SIZE
    for name in ("lseek_end_max", "lseek_end_min", "lseek_cur_max", "lseek_cur_min"):
        assert r[name] == "ret=-1 errno=EINVAL", (name, r[name])
    assert r["lseek_cur_unchanged"] == "ret=100 errno=0"
    assert r["open_creat_excl"] == "ret=-1 errno=EEXIST"
    assert r["close_0"] == "ret=0 errno=0" and r["open_gets_0"] == "ret=0 errno=0"
    assert r["write_1_closed"] == "ret=-1 errno=EBADF" and r["open_gets_1"] == "ret=1 errno=0"
    assert r["read_new_0"] == "ret=16 errno=0 data=" + fnv1a(data[:16])
    after = data[:4096] + b"ringlet!" + data[4096 + 8:]
    assert r["pread_4096"] == "ret=12 errno=0 data=" + fnv1a(after[4094:4106])
    assert r["pread_short"] == "ret=10 errno=0 data=" + fnv1a(data[SIZE - 10:])
    # The kernel's log still reaches the console after descriptor 1 closed.
    assert re.search(r"^\[[ 0-9.]+\] exit: status 0 after", out[out.index("close_new_0"):], re.M), out
    # The only write landed, and only there, on both.
    assert linux_file.read_bytes() == after
    assert disk.read_bytes() == after
