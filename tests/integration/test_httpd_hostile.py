"""httpd against hostile clients, and the tar filesystem against hostile
archives.

Requests: overlong request lines (414), heads without an end (431), bad and
unsupported methods (501, 405), bodies (413), '..', '%2e%2e' and '%00' (400),
slowloris trickling (408, then a close), clients that vanish mid-response,
1,000 connections opened at once: each gets its status or a close, and a
well-behaved client is served byte-exact before, during and after.

Archives: one guest with eight disks, each a tar broken in one way (bad
checksum, a size past the end, '..' and absolute names, duplicates, a
truncated header, too many entries, pax records that lie); the boot log
says what was refused or skipped, the guest keeps running, and what could
be mounted is served.
"""

import hashlib
import io
import os
import re
import socket
import struct
import subprocess
import tarfile
import threading
import time

import pytest

from ringlet import build_app, root
from test_httpd import IO_TIMEOUT, Server, free_port, linux_server, make_tree, ringlet_server


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    top = str(tmp_path_factory.mktemp("hsite") / "www")
    os.makedirs(top)
    files = make_tree(top, seed=11)
    tar = top + ".tar"
    subprocess.run(["tar", "--format=gnu", "-cf", tar, "-C", top, "."], check=True)
    return top, tar, files


@pytest.fixture(scope="module", params=["ringlet", "linux"])
def server(request, site):
    top, tar, _ = site
    srv = ringlet_server(tar) if request.param == "ringlet" else linux_server(top)
    yield srv
    srv.stop()


def raw(srv, data, timeout=IO_TIMEOUT):
    """Sends data, returns everything the server sends until it closes."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    try:
        s.sendall(data)
    except OSError:
        pass
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:
        pass
    s.close()
    return out


def fetch_ok(srv, files, path="/a/index.html"):
    """A well-behaved client: the file, byte-exact."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert hashlib.sha256(body).hexdigest() == files[path]


def status_of(resp):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", resp)
    return int(m.group(1)) if m else None


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"b" * 20000, 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 100 + b"\r\n", 431),
    (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 405),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 413),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 501),
    (b"\x01\x02\x03 garbage\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /a/../../x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /%2e%2e/x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /a/%2E%2E/%2e%2e/x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /a/index.html%00.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n", 400),
])
def test_bad_requests(server, site, request_bytes, status):
    resp = raw(server, request_bytes)
    assert status_of(resp) == status, resp[:200]
    head, _, body = resp.partition(b"\r\n\r\n")
    assert b"Connection: close" in head
    assert body.startswith(b"%d " % status)
    fetch_ok(server, site[2])


def test_dot_segments_inside_the_root(server, site):
    resp = raw(server, b"GET /a/b/../index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(resp) == 200 and resp.endswith(b"<h1>a's index</h1>\n")
    resp = raw(server, b"GET /a/%2e/index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(resp) == 200 and resp.endswith(b"<h1>a's index</h1>\n")


def test_slowloris(server, site):
    """A head trickled one byte a second never completes: 408 and a close
    (the limit is 10 s), while another client is served meanwhile."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT)
    s.sendall(b"GET / HTTP/1.1\r\n")
    got = b""
    served = False
    end = time.monotonic() + 90
    s.settimeout(1)
    while time.monotonic() < end:
        try:
            s.send(b"X")
        except OSError:
            break
        if not served:
            fetch_ok(server, site[2])
            served = True
        try:
            b = s.recv(4096)
            if not b:
                break
            got += b
        except socket.timeout:
            continue
        except OSError:
            break
    s.close()
    assert served
    assert status_of(got) == 408, got
    fetch_ok(server, site[2])


def test_abrupt_close_mid_response(server, site):
    top, _, files = site
    big = "/12-noext"
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % big.encode())
        s.recv(10000)
        # RST instead of FIN: SO_LINGER with a zero timeout.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    fetch_ok(server, files, big)


def test_thousand_connections(server, site):
    socks = []
    try:
        for _ in range(1000):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", server.port))
            socks.append(s)
        time.sleep(2)
        # While they are all open, a well-behaved client is still served.
        fetch_ok(server, site[2])
        fetch_ok(server, site[2], "/12-noext")
    finally:
        for s in socks:
            s.close()
    fetch_ok(server, site[2])


# ---- hostile tar images -------------------------------------------------------------------

def tar_bytes(members, fmt=tarfile.GNU_FORMAT):
    """A tar of (name, data) pairs, as Python's tarfile writes it."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=fmt) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(data))
    return bytearray(bio.getvalue())


def fix_checksum(buf, off):
    h = buf[off:off + 512]
    h[148:156] = b" " * 8
    buf[off + 148:off + 156] = b"%06o\0 " % sum(h)


def header_offsets(buf):
    """Byte offsets of the headers of a plain ustar/GNU archive."""
    offs, off = [], 0
    while off + 512 <= len(buf) and any(buf[off:off + 512]):
        offs.append(off)
        size = int(buf[off + 124:off + 136].strip(b"\0 ") or b"0", 8)
        off += 512 + (size + 511) // 512 * 512
    return offs


def hostile_images(d):
    good = b"good bytes\n"
    imgs = {}
    # vda: a bad checksum in the second header: refused.
    b = tar_bytes([("one.txt", good), ("two.txt", good)])
    b[header_offsets(b)[1] + 148] ^= 0x01
    imgs["badsum"] = b
    # vdb: the second entry claims more bytes than the disk has: refused.
    b = tar_bytes([("one.txt", good), ("huge.bin", b"z" * 10)])
    o = header_offsets(b)[1]
    b[o + 124:o + 136] = b"77777777770\0"
    fix_checksum(b, o)
    imgs["pastend"] = b
    # vdc: '..' and absolute names, skipped; the good file served.
    b = tar_bytes([("a/../../evil.txt", b"evil"), ("good.txt", good)])
    o = header_offsets(b)[0]
    # tarfile keeps the name as given; make the second one absolute by hand.
    b2 = tar_bytes([("/abs/evil.txt", b"evil")])
    imgs["names"] = b[:header_offsets(b)[1]] + b2[:1024] + b[header_offsets(b)[1]:]
    # vdd: the same name twice: the later one is kept.
    imgs["dup"] = tar_bytes([("dup.txt", b"first\n"), ("dup.txt", b"second\n"), ("x/y.txt", good)])
    # vde: a truncated header: the archive ends half-way through one (the rest is zeros).
    b = tar_bytes([("one.txt", good), ("two.txt", good)])
    o = header_offsets(b)[1]
    b[o + 256:o + 512] = bytes(256)
    imgs["truncated"] = b[:o + 512]
    # vdf: pax records that lie about their length: that entry is skipped, the next served.
    b = tar_bytes([("liar.txt", b"lie"), ("good.txt", good)], fmt=tarfile.USTAR_FORMAT)
    pax = b"99 path=somewhere-else.txt\n"
    ph = bytearray(tar_bytes([("PaxHeader", pax)], fmt=tarfile.USTAR_FORMAT)[:1024])
    ph[156] = ord("x")
    fix_checksum(ph, 0)
    imgs["paxlie"] = ph + b
    # vdg: more entries than the index takes (100,001 empty files): refused.
    hdr = bytearray(tar_bytes([("e", b"")])[:512])
    many = bytearray()
    for i in range(100001):
        h = bytearray(hdr)
        name = b"e%d" % i
        h[0:100] = name + bytes(100 - len(name))
        fix_checksum(h, 0)
        many += h
    imgs["many"] = many + bytes(1024)
    # vdh: a good archive with a pax long name, mounted at /ok.
    imgs["ok"] = tar_bytes([("p" * 150 + ".txt", good), ("index.html", b"ok\n")], fmt=tarfile.PAX_FORMAT)
    paths = {}
    for k, data in imgs.items():
        data = bytes(data)
        if len(data) % 512:
            data += bytes(512 - len(data) % 512)
        p = os.path.join(d, k + ".tar")
        with open(p, "wb") as f:
            f.write(data)
        paths[k] = p
    return paths


def test_hostile_tar_images(tmp_path):
    build_app("httpd")
    imgs = hostile_images(str(tmp_path))
    order = ["badsum", "pastend", "names", "dup", "truncated", "paxlie", "many", "ok"]
    port = free_port()
    cmd = [os.path.join(root(), "scripts", "run"), "-q", "--accel", os.environ.get("RINGLET_ACCEL", "tcg"),
           "-m", "256M", "--hostfwd", "%d:80" % port]
    for k in order:
        cmd += ["--disk", imgs[k] + ",ro"]
    mounts = ",".join("/%s:vd%s" % (k, chr(ord("a") + i)) for i, k in enumerate(order))
    cmd += ["--append", "mount=" + mounts, "httpd", "--", "--root", "/"]
    srv = Server(cmd, port, r"httpd: serving / on port 80")
    try:
        out = srv.output()
        assert re.search(r"tarfs: header 2 at byte \d+: bad checksum \(refused\)", out), out
        assert "tarfs: /badsum: vda is not mounted (error -22)" in out
        assert re.search(r"tarfs: header 2: \d+ bytes of data run past the end of the archive \(refused\)", out)
        assert "tarfs: /pastend: vdb is not mounted" in out
        assert "'..' component (skipped)" in out and "an absolute path (skipped)" in out
        assert "a duplicate name; the later entry is kept (skipped)" in out
        assert "/truncated: vde is not mounted" in out
        assert "pax records that lie about their length" in out
        assert "more than 100000 entries (refused)" in out and "/many: vdg is not mounted" in out
        assert re.search(r"tarfs: /ok: vdh mounted read-only, 2 files", out)

        def get(path):
            return raw(srv, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())

        r = get("/names/good.txt")
        assert status_of(r) == 200 and r.endswith(b"good bytes\n")
        assert status_of(get("/names/evil.txt")) == 404 and status_of(get("/evil.txt")) == 404
        assert status_of(get("/names/abs/evil.txt")) == 404
        r = get("/dup/dup.txt")
        assert status_of(r) == 200 and r.endswith(b"\r\n\r\nsecond\n")
        assert status_of(get("/paxlie/liar.txt")) == 404
        assert status_of(get("/paxlie/somewhere-else.txt")) == 404
        assert get("/paxlie/good.txt").endswith(b"good bytes\n")
        assert get("/ok/" + "p" * 150 + ".txt").endswith(b"good bytes\n")
        assert status_of(get("/badsum/one.txt")) == 404
        assert status_of(get("/ringlet/status?json")) == 200  # and the guest is still up
    finally:
        srv.stop()
