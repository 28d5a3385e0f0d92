"""virtio-scsi tests: apps/blktool against disks that are LUNs of virtio-scsi
controllers (scripts/run --scsi), under TCG.

The same data checks as test_blk.py makes for virtio-blk: the host writes
random images, the guest's SHA-256 of them must match; the guest writes,
zeroes and discards, and the image files must hold exactly those changes.
Besides: several LUNs on one controller and several controllers, each disk
its own file; a read-only LUN; blkdebug-injected errors that come back as
EIO with the sense data decoded in the log; the three machines (microvm on
virtio-mmio); a LUN unplugged while the guest runs fails its requests with
EIO instead of hanging.
"""

import json
import os
import re
import socket
import subprocess
import time
import zlib

import pytest

from ringlet import build_app, root, run_guest
from test_blk import (EIO_TEXT, EROFS_TEXT, MiB, SIZE, WRITES, apply, assert_same, blkdebug_conf, commands,
                      console, data_in, failed, info_line, make_raw, ok, punch_hole_works, sha, sha_line)


@pytest.fixture(scope="module", autouse=True)
def blktool():
    build_app("blktool")


def scsi(args, disks, machine="q35", virtio=None, extra=(), timeout=60):
    """Run blktool with these commands and --scsi specs; returns the Result."""
    opts = []
    for d in disks:
        opts += ["--scsi", str(d)]
    if virtio:
        opts += ["--virtio", virtio]
    return run_guest("blktool", args=[str(a) for a in args], machine=machine,
                     extra=opts + list(extra), timeout=timeout)


def lun_line(out, name):
    """The boot log's line for a LUN: (where, target, lun, rest)."""
    m = re.search(r"^\[[ 0-9.]+\] virtio-scsi (\S+(?: 0x[0-9a-f]+)?): target (\d+) lun (\d+) %s (.*)$" % name,
                  out, re.M)
    assert m, "no boot log line for %s:\n%s" % (name, out)
    return m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)


# ---- data ------------------------------------------------------------------------

def test_read_back(tmp_path):
    """The guest's checksums of the whole LUN and unaligned ranges match the host's;
    the boot log lists the controller with its LUN."""
    img = tmp_path / "r.img"
    data = make_raw(img, seed=111)
    ranges = [(0, SIZE), (1000, 5000), (SIZE - 700, 700), (511, 2)]
    args = ["info"]
    for off, length in ranges:
        args += ["sha256", "sda", off, length]
    out = ok(scsi(args, [img]))
    for off, length in ranges:
        assert sha_line(out, "sda", off, length) == sha(data[off:off + length]), (off, length)
    info = info_line(out, "sda")
    assert info["size"] == str(SIZE) and info["block"] == "512" and info["ro"] == "no", info
    assert info["bus"] == "pci", info
    where, target, lun, rest = lun_line(out, "sda")
    assert (target, lun) == (0, 0) and rest.startswith("16 MiB"), rest
    assert re.search(r"^\[[ 0-9.]+\] pci %s 1af4:(1004|1048) .*virtio-scsi 1 LUN: sda$" % where, out, re.M), out
    with open(img, "rb") as f:
        assert f.read() == data, "a read changed the image"


def test_writes_land_exactly(tmp_path):
    """fill/zero at known offsets + flush change exactly those bytes of the file."""
    img = tmp_path / "w.img"
    data = make_raw(img, seed=112)
    out = ok(scsi(commands(WRITES, "sda") + ["flush", "sda"], [img]))
    assert "ok flush sda" in out
    assert "ok zero sda %d %d" % (5 * MiB, 65536) in out
    assert_same(img.read_bytes(), apply(data, WRITES))


def test_write_zeroes_allocates(tmp_path):
    """write-zeroes is WRITE SAME without UNMAP: the range reads as zeros and the
    image keeps its blocks (no hole), where discard would punch one."""
    img = tmp_path / "z.img"
    data = make_raw(img, seed=113)
    off, length = 3 * MiB, MiB
    out = ok(scsi(["zero", "sda", off, length, "flush", "sda", "sha256", "sda", off, length],
                  [str(img) + ",discard"]))
    assert sha_line(out, "sda", off, length) == sha(bytes(length))
    assert_same(img.read_bytes(), apply(data, [("zero", off, length)]))


def test_discard_punches_holes(tmp_path):
    """UNMAP on a raw file with discard=unmap: the range becomes a hole, reads as zeros."""
    if not punch_hole_works(tmp_path):
        pytest.skip("%s cannot punch holes (fallocate PUNCH_HOLE)" % tmp_path)
    img = tmp_path / "d.img"
    data = make_raw(img, seed=114)
    os.sync()
    off, length = 2 * MiB, 2 * MiB
    assert data_in(img, off, length), "the image has a hole before the test"
    out = ok(scsi(["info", "discard", "sda", off, length, "flush", "sda",
                   "sha256", "sda", off, length], [str(img) + ",discard"]))
    assert info_line(out, "sda")["discard"] == "yes"
    assert "ok discard sda %d %d" % (off, length) in out
    assert not data_in(img, off, length), "no hole at %d..%d after discard" % (off, off + length)
    assert sha_line(out, "sda", off, length) == sha(bytes(length))
    assert_same(img.read_bytes(), apply(data, [("discard", off, length)]))


def test_read_only_lun(tmp_path):
    """A readonly=on drive: MODE SENSE's WP bit makes it ro=yes; reads work, writes,
    zeroes and discards fail with EROFS, the file is unchanged."""
    img = tmp_path / "ro.img"
    data = make_raw(img, seed=115)
    result = scsi(["info", "sha256", "sda", 0, 65536, "fill", "sda", 4096, 512, 0x11], [str(img) + ",ro"])
    err = failed(result)
    out = console(result)
    assert info_line(out, "sda")["ro"] == "yes"
    assert ", ro," in lun_line(out, "sda")[3]
    assert sha_line(out, "sda", 0, 65536) == sha(data[:65536])
    assert "fill sda" in err and EROFS_TEXT in err, err
    for cmd in (["zero", "sda", 0, 4096], ["discard", "sda", 0, 4096]):
        err = failed(scsi(cmd, [str(img) + ",ro"]))
        assert cmd[0] in err and "Read-only" in err, err
    assert img.read_bytes() == data


# ---- several LUNs and controllers -----------------------------------------------------

def test_luns_and_controllers(tmp_path):
    """Two LUNs on controller s0 (LUN 0 and LUN 3: REPORT LUNS must find a gap),
    one on s1 (target 5, LUN 2: no LUN 0 and no target 0 there), and a virtio-blk
    disk beside them: each name reads its own file, and a write to one LUN lands in
    its file only."""
    imgs = [tmp_path / ("l%d.img" % i) for i in range(3)]
    datas = [make_raw(p, seed=120 + i) for i, p in enumerate(imgs)]
    blk_img = tmp_path / "vd.img"
    blk_data = make_raw(blk_img, seed=130)
    specs = [str(imgs[0]), "%s,lun=3" % imgs[1], "%s,ctrl=1,target=5,lun=2" % imgs[2]]
    args = ["info"] + [a for n in ("sda", "sdb", "sdc", "vda") for a in ("sha256", n, 0, SIZE)]
    args += ["fill", "sdb", 8192, 4096, 0x5a, "flush", "sdb"]
    out = ok(scsi(args, specs, extra=["--disk", str(blk_img)]))
    for name, data in zip(("sda", "sdb", "sdc", "vda"), datas + [blk_data]):
        assert sha_line(out, name, 0, SIZE) == sha(data), name
    a, b, c = (lun_line(out, n) for n in ("sda", "sdb", "sdc"))
    assert a[0] == b[0] != c[0], (a, b, c)
    assert (a[1], b[1], c[1]) == (0, 0, 5) and (a[2], b[2], c[2]) == (0, 3, 2), (a, b, c)
    assert re.search(r"virtio-scsi 2 LUNs: sda sdb$", out, re.M), out
    assert re.search(r"virtio-scsi 1 LUN: sdc$", out, re.M), out
    assert imgs[0].read_bytes() == datas[0]
    assert_same(imgs[1].read_bytes(), apply(datas[1], [("fill", 8192, 4096, 0x5a)]))
    assert imgs[2].read_bytes() == datas[2]
    assert blk_img.read_bytes() == blk_data


def test_queue_full_of_requests(tmp_path):
    """As many 4 KiB reads in flight as the request queue holds, matched back by cookie."""
    img = tmp_path / "q.img"
    data = make_raw(img, seed=116)
    count = 300
    out = ok(scsi(["info", "parallel", "sda", count, "rounds", "sda", 3], [img]))
    queue = int(info_line(out, "sda")["queue"])
    m = re.search(r"^parallel sda %d inflight=(\d+) sha256=([0-9a-f]{64})$" % count, out, re.M)
    assert m and int(m.group(1)) == queue and m.group(2) == sha(data[:count * 4096]), out
    m = re.search(r"^rounds sda 3 requests=(\d+) completed=(\d+) sha256=([0-9a-f]{64}) sync=([0-9a-f]{64})$",
                  out, re.M)
    assert m and m.group(1) == m.group(2), out
    assert m.group(3) == sha(data[:int(m.group(1)) * 4096]) and m.group(4) == sha(data[:3 * 4096]), out


def test_two_luns_in_flight_together(tmp_path):
    """Two LUNs of one controller share its request queue: with reads of both in flight
    (each LUN's share of the queue full) and a synchronous read among them, a poll of
    one LUN finds the other's completions. Each request must come back once, from its
    own disk, with its own bytes."""
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    da, db = make_raw(a, seed=160), make_raw(b, seed=161)
    count = 300
    out = ok(scsi(["info", "twin", "sda", "sdb", count, "twin", "sdb", "sda", 7], [a, b]))
    assert info_line(out, "sda")["queue"] == info_line(out, "sdb")["queue"] == "128", out
    m = re.search(r"^twin sda %d sha256=([0-9a-f]{64}) sha256=([0-9a-f]{64})$" % count, out, re.M)
    assert m and m.groups() == (sha(da[:count * 4096]), sha(db[:count * 4096])), out
    m = re.search(r"^twin sdb 7 sha256=([0-9a-f]{64}) sha256=([0-9a-f]{64})$", out, re.M)
    assert m and m.groups() == (sha(db[:7 * 4096]), sha(da[:7 * 4096])), out


# ---- errors --------------------------------------------------------------------------

SENSE_LOG = r"^\[[ 0-9.]+\] sda: command 0x%02x failed: ([A-Z ]+), asc 0x([0-9a-f]{2}) ascq 0x([0-9a-f]{2}).* -> EIO$"


def test_blkdebug_read_error(tmp_path):
    """EIO on every read: sha256 fails with an I/O error, quickly, and the log names
    the sense QEMU sent (ABORTED COMMAND, I/O process terminated: asc 0x00/0x06)."""
    img = tmp_path / "e.img"
    make_raw(img, seed=117)
    conf = blkdebug_conf(tmp_path, "read_aio")
    result = scsi(["info", "sha256", "sda", 0, 65536], ["%s,blkdebug=%s" % (img, conf)], timeout=30)
    err = failed(result)
    assert err.startswith("error: sha256 sda") and EIO_TEXT in err, err
    m = re.search(SENSE_LOG % 0x28, console(result), re.M)
    assert m, console(result)
    assert m.groups() == ("ABORTED COMMAND", "00", "06"), m.groups()


def test_blkdebug_write_error(tmp_path):
    """EIO on every write: reads still work, fill fails with EIO, the file is unchanged."""
    img = tmp_path / "e.img"
    data = make_raw(img, seed=118)
    conf = blkdebug_conf(tmp_path, "write_aio")
    result = scsi(["sha256", "sda", 0, 4096, "fill", "sda", 0, 4096, 0x11],
                  ["%s,blkdebug=%s" % (img, conf)], timeout=30)
    err = failed(result)
    assert sha_line(console(result), "sda", 0, 4096) == sha(data[:4096])
    assert err.startswith("error: fill sda") and EIO_TEXT in err, err
    assert re.search(SENSE_LOG % 0x2a, console(result), re.M), console(result)
    assert img.read_bytes() == data


def qmp(path, *commands_):
    """Send QMP commands on a unix socket; returns their replies."""
    deadline = time.monotonic() + 20
    while not os.path.exists(path):
        assert time.monotonic() < deadline, "no QMP socket"
        time.sleep(0.05)
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile("rw")
    json.loads(f.readline())                    # the greeting
    replies = []
    for cmd in (("qmp_capabilities", {}),) + commands_:
        f.write(json.dumps({"execute": cmd[0], "arguments": cmd[1]}) + "\n")
        f.flush()
        while True:
            reply = json.loads(f.readline())
            if "event" not in reply:
                break
        replies.append(reply)
    s.close()
    return replies[1:]


def test_hot_unplug_fails_requests(tmp_path):
    """A LUN removed (QMP device_del) while the guest sleeps: its next read fails
    with EIO at once, never a hang; the other LUN keeps working."""
    imgs = [tmp_path / ("h%d.img" % i) for i in range(2)]
    datas = [make_raw(p, seed=140 + i) for i, p in enumerate(imgs)]
    sock = str(tmp_path / "qmp.sock")
    cmd = [os.path.join(root(), "scripts", "run"), "-q", "--accel", "tcg", "--timeout", "60",
           "--qmp", sock, "--scsi", str(imgs[0]), "--scsi", str(imgs[1]), "blktool", "--",
           "sha256", "sda", 0, 4096, "sleep", 2, "sha256", "sdb", 0, 4096, "sha256", "sda", 0, 4096]
    proc = subprocess.Popen([str(c) for c in cmd], cwd=root(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out = ""
        for raw in proc.stdout:
            out += raw.decode(errors="replace")
            if "ok sleep 2" in out:
                break
        assert "ok sleep 2" in out, out
        reply = qmp(sock, ("device_del", {"id": "sd0"}))
        assert reply == [{"return": {}}], reply
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = (out + rest.decode(errors="replace")).replace("\r\n", "\n")
    assert proc.returncode == 1, "status %d\n%s%s" % (proc.returncode, out, err.decode())
    assert "***" not in out, out
    assert sha_line(out, "sda", 0, 4096) == sha(datas[0][:4096])
    assert sha_line(out, "sdb", 0, 4096) == sha(datas[1][:4096])
    errors = [l for l in out.splitlines() if l.startswith("error: ")]
    assert errors and errors[0].startswith("error: sha256 sda") and EIO_TEXT in errors[0], out
    assert re.search(r"^\[[ 0-9.]+\] sda: (LUN 0:0 removed|the LUN is gone)", out, re.M), out


# ---- machines and transports -----------------------------------------------------------

@pytest.mark.parametrize("machine,virtio", [("q35", None), ("pc", "legacy"), ("microvm", "mmio")])
def test_machines(tmp_path, machine, virtio):
    """Whole-LUN read-back and exact writes on q35 (modern PCI), pc (legacy PCI)
    and microvm (virtio-scsi-device on virtio-mmio, found through ACPI)."""
    img = tmp_path / "t.img"
    data = make_raw(img, seed=zlib.crc32(machine.encode()))
    args = ["info", "sha256", "sda", 0, SIZE, "parallel", "sda", 64]
    out = ok(scsi(args + commands(WRITES, "sda") + ["flush", "sda"], [img], machine=machine, virtio=virtio))
    info = info_line(out, "sda")
    assert info["bus"] == ("mmio" if machine == "microvm" else "pci"), info
    assert info["transport"] == ("legacy" if virtio == "legacy" else "modern"), info
    if machine == "microvm":
        assert re.search(r"^\[[ 0-9.]+\] virtio mmio 0x[0-9a-f]+ mmio type 8 virtio-scsi 1 LUN: sda$", out, re.M), out
    assert sha_line(out, "sda", 0, SIZE) == sha(data)
    assert re.search(r"^parallel sda 64 inflight=64 sha256=%s$" % sha(data[:64 * 4096]), out, re.M), out
    assert_same(img.read_bytes(), apply(data, WRITES))


def test_serial_number(tmp_path):
    """blk_get_id() on a LUN is its unit serial number VPD page, padding trimmed, cut to
    virtio-blk's 20 bytes; a LUN without one has an empty ID, not an error."""
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    make_raw(a, seed=150)
    make_raw(b, seed=151)
    out = ok(scsi(["id", "sda", "id", "sdb"], ["%s,serial=RINGLET-SCSI-0001-LONGER-THAN-20" % a, b]))
    assert re.search(r"^id sda RINGLET-SCSI-0001-LO$", out, re.M), out
    assert re.search(r"^id sdb \(none\)$", out, re.M), out


@pytest.mark.parametrize("machine,virtio,wakeup", [("q35", None, "msix"), ("microvm", "mmio", "irq")])
def test_device_wakeups(tmp_path, machine, virtio, wakeup):
    """The controller is a wait source with a wake-up of its own: with its drive throttled
    to 20 requests a second, the guest halts while it waits and the controller's interrupt
    ends the halt (counted in blktool's wakeups=), and the data is right."""
    img = tmp_path / "w.img"
    data = make_raw(img, seed=170)
    reads = [(0, 65536), (MiB, 4096), (2 * MiB + 512, 1000), (SIZE - 8192, 8192), (12345, 4096),
             (3 * MiB, 512), (MiB + 4096, 8192), (100 * 512, 512)]
    args = [a for off, length in reads for a in ("sha256", "sda", off, length)] + ["info"]
    throttle = ["--qemu-arg=-set", "--qemu-arg=drive.sd0.throttling.iops-total=20"]
    out = ok(scsi(args, [img], machine=machine, virtio=virtio, extra=throttle, timeout=90))
    for off, length in reads:
        assert sha_line(out, "sda", off, length) == sha(data[off:off + length]), (off, length)
    info = info_line(out, "sda")
    assert info["wakeup"] == wakeup, info
    assert int(info["wakeups"]) >= 6, "too few device interrupts woke the guest:\n" + out
