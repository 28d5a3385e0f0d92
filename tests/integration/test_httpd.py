"""apps/httpd end to end: a tar made here from random files, served by the
guest from a virtio-blk disk over user networking, and the same source built
for Linux serving the same tree on 127.0.0.1; every check compares bytes
(SHA-256 of every file), statuses and header values.

The tree has nested directories, names with spaces and UTF-8, a name longer
than ustar's 100 bytes (a GNU 'L' long name in the tar), sizes from 0 to a few
MiB. Files are fetched over one keep-alive connection (http.client), over a
fresh connection each (curl), with HEAD and Range, and by 16 clients at once.
"""

import concurrent.futures
import hashlib
import http.client
import os
import random
import socket
import subprocess
import tarfile
import urllib.parse

import pytest

from ringlet import Background, build_app, free_port, root

BOOT_TIMEOUT = 120
IO_TIMEOUT = 120


class Server(Background):
    """A server process in the background: its console lines, its port."""

    def __init__(self, cmd, port, expect):
        self.port = port
        super().__init__(cmd, expect, BOOT_TIMEOUT)


def make_tree(top, seed=9):
    """Random files under top; returns {url path: sha256}."""
    rnd = random.Random(seed)
    files = {}
    dirs = ["", "a", "a/b", "a/b/c d", "ünï cödé", "deep/" + "x" * 60 + "/" + "y" * 60]
    sizes = [0, 1, 511, 512, 513, 1024, 4095, 4096, 65535, 65536, 100000, 1 << 20, (3 << 20) + 17]
    names = ["plain.txt", "with space.html", "é-ü.bin", "data.json", "pic.svg", "noext", "style.css"]
    for i, size in enumerate(sizes):
        d = dirs[i % len(dirs)]
        n = "%d-%s" % (i, names[i % len(names)])
        rel = (d + "/" if d else "") + n
        path = os.path.join(top, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = rnd.randbytes(size)
        with open(path, "wb") as f:
            f.write(data)
        files["/" + rel] = hashlib.sha256(data).hexdigest()
    with open(os.path.join(top, "a", "index.html"), "wb") as f:
        f.write(b"<h1>a's index</h1>\n")
    files["/a/index.html"] = hashlib.sha256(b"<h1>a's index</h1>\n").hexdigest()
    # Fixed mtimes: the tar and the directory agree, and If-Modified-Since has something to compare.
    for dirpath, dirnames, filenames in os.walk(top):
        for n in filenames:
            os.utime(os.path.join(dirpath, n), (1700000000, 1700000000))
    return files


def quote(p):
    return urllib.parse.quote(p, safe="/?=")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    top = str(tmp_path_factory.mktemp("site") / "www")
    os.makedirs(top)
    files = make_tree(top)
    tar = top + ".tar"
    # The ordinary tar: GNU format, so the long directory name becomes an 'L' entry.
    subprocess.run(["tar", "--format=gnu", "-cf", tar, "-C", top, "."], check=True)
    with tarfile.open(tar) as t:
        assert any(len(m.name) > 100 for m in t.getmembers())
    return top, tar, files


def ringlet_server(tar, extra_args=()):
    build_app("httpd")
    port = free_port()
    accel = os.environ.get("RINGLET_ACCEL", "tcg")
    cmd = [os.path.join(root(), "scripts", "run"), "-q", "--accel", accel, "-m", "256M",
           "--disk", tar + ",ro", "--hostfwd", "%d:80" % port, "--rng", "httpd", "--"] + list(extra_args)
    srv = Server(cmd, port, r"httpd: serving /www on port 80")
    srv.kind = "ringlet"
    return srv


def linux_build():
    out = os.path.join(root(), "build", "host")
    os.makedirs(out, exist_ok=True)
    exe = os.path.join(out, "httpd")
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", exe,
                    os.path.join(root(), "apps", "httpd", "main.c"),
                    os.path.join(root(), "apps", "httpd", "http.c")], check=True)
    return exe


def linux_server(top):
    port = free_port()
    srv = Server([linux_build(), "--port", str(port), "--root", top], port, r"httpd: serving")
    srv.kind = "linux"
    return srv


@pytest.fixture(scope="module", params=["ringlet", "linux"])
def server(request, site):
    top, tar, _ = site
    srv = ringlet_server(tar) if request.param == "ringlet" else linux_server(top)
    yield srv
    srv.stop()


def conn(srv):
    return http.client.HTTPConnection("127.0.0.1", srv.port, timeout=IO_TIMEOUT)


def get(c, path, method="GET", headers=None):
    c.request(method, quote(path), headers=headers or {})
    r = c.getresponse()
    return r, r.read()


def test_every_file_keepalive(server, site):
    _, _, files = site
    c = conn(server)
    for path, digest in sorted(files.items()):
        r, body = get(c, path)
        assert r.status == 200, path
        assert hashlib.sha256(body).hexdigest() == digest, path
        assert int(r.getheader("Content-Length")) == len(body)
        assert r.getheader("Connection") == "keep-alive"
    # Every file went over the one connection: its socket is the same.
    r, body = get(c, "/a/index.html")
    assert r.status == 200 and body == b"<h1>a's index</h1>\n"
    c.close()


def test_every_file_curl_fresh_connections(server, site, tmp_path):
    _, _, files = site
    for i, (path, digest) in enumerate(sorted(files.items())):
        out = tmp_path / ("f%d" % i)
        done = subprocess.run(["curl", "-sS", "-m", str(IO_TIMEOUT), "-o", str(out), "-w", "%{http_code}",
                               "http://127.0.0.1:%d%s" % (server.port, quote(path))],
                              stdout=subprocess.PIPE, universal_newlines=True)
        assert done.returncode == 0 and done.stdout == "200", path
        assert hashlib.sha256(out.read_bytes()).hexdigest() == digest, path


def test_content_type_and_validators(server, site):
    c = conn(server)
    r, body = get(c, "/a/1-with space.html")
    assert r.getheader("Content-Type").startswith("text/html")
    r, _ = get(c, "/a/b/c d/3-data.json")
    assert r.getheader("Content-Type") == "application/json"
    noext = [p for p in site[2] if p.endswith("5-noext")][0]  # 1024 bytes, in the long-named directory
    r, _ = get(c, noext)
    assert r.status == 200 and r.getheader("Content-Type") == "application/octet-stream"
    assert r.getheader("Last-Modified") == "Tue, 14 Nov 2023 22:13:20 GMT"  # mtime 1700000000
    etag = r.getheader("ETag")
    assert etag and etag.startswith('"')
    r, body = get(c, noext, headers={"If-None-Match": etag})
    assert r.status == 304 and body == b""
    r, body = get(c, noext, headers={"If-Modified-Since": "Tue, 14 Nov 2023 22:13:20 GMT"})
    assert r.status == 304 and body == b""
    r, body = get(c, noext, headers={"If-Modified-Since": "Tue, 14 Nov 2023 22:13:19 GMT"})
    assert r.status == 200 and len(body) == 1024
    c.close()


def test_head_and_range(server, site):
    top, _, files = site
    path = "/ünï cödé/4-pic.svg"  # 513 bytes
    big = "/12-noext"  # 3 MiB + 17
    data = open(os.path.join(top, big[1:]), "rb").read()
    c = conn(server)
    r, body = get(c, big, "HEAD")
    assert r.status == 200 and body == b"" and int(r.getheader("Content-Length")) == len(data)
    rnd = random.Random(1)
    for _ in range(10):
        a = rnd.randrange(len(data))
        b = rnd.randrange(a, len(data))
        r, body = get(c, big, headers={"Range": "bytes=%d-%d" % (a, b)})
        assert r.status == 206
        assert body == data[a:b + 1]
        assert r.getheader("Content-Range") == "bytes %d-%d/%d" % (a, b, len(data))
    r, body = get(c, big, headers={"Range": "bytes=-100"})
    assert r.status == 206 and body == data[-100:]
    r, body = get(c, big, headers={"Range": "bytes=%d-" % (len(data) - 5)})
    assert r.status == 206 and body == data[-5:]
    r, body = get(c, path, headers={"Range": "bytes=513-"})
    assert r.status == 416 and r.getheader("Content-Range") == "bytes */513"
    r, body = get(c, path, headers={"Range": "bytes=0-1,5-6"})  # several ranges: the whole file
    assert r.status == 200 and len(body) == 513
    c.close()


def test_directories(server, site):
    c = conn(server)
    r, body = get(c, "/a")
    assert r.status == 301 and r.getheader("Location") == "/a/"
    r, body = get(c, "/a/")
    assert r.status == 200 and body == b"<h1>a's index</h1>\n"
    r, body = get(c, "/a/b/")
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/html")
    text = body.decode()
    assert 'href="c%20d/"' in text and "c d/" in text
    r, body = get(c, "/")
    text = body.decode()
    assert 'href="%C3%BCn%C3%AF%20c%C3%B6d%C3%A9/"' in text
    r, body = get(c, "/nope.txt")
    assert r.status == 404 and body == b"404 Not Found\n"
    c.close()


def test_pipelining(server, site):
    _, _, files = site
    paths = ["/0-plain.txt", "/a/index.html", "/6-style.css", "/a/index.html"]
    s = socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT)
    s.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % quote(p).encode() for p in paths))
    f = s.makefile("rb")
    for p in paths:
        status = f.readline()
        assert status.startswith(b"HTTP/1.1 200"), (p, status)
        length = None
        while True:
            line = f.readline()
            if line == b"\r\n":
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = f.read(length)
        assert hashlib.sha256(body).hexdigest() == files[p]
    s.close()


def test_sixteen_parallel_clients(server, site):
    _, _, files = site
    items = sorted(files.items())

    def client(k):
        c = conn(server)
        order = items[k % len(items):] + items[:k % len(items)]
        for path, digest in order:
            r, body = get(c, path)
            assert r.status == 200 and hashlib.sha256(body).hexdigest() == digest, path
        c.close()
        return len(order)

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        assert sum(ex.map(client, range(16))) == 16 * len(items)


def test_status_page(server):
    c = conn(server)
    r, body = get(c, "/ringlet/status?json")
    assert r.status == 200 and r.getheader("Content-Type") == "application/json"
    import json
    st = json.loads(body)
    assert st["requests"] >= 1 and st["uptime_ms"] > 0
    if server.kind == "ringlet":
        assert st["disks"][0]["name"] == "vda" and st["disks"][0]["read_only"] is True
        assert st["net"][0]["ipv4"] == "10.0.2.15/24" and st["net"][0]["rx_frames"] > 0
        assert st["entropy"]["virtio_rng"] is True
        assert st["balloon"] == "not present"  # the test guest has none (make run's has one)
        assert 0 < st["memory"]["free_bytes"] < st["memory"]["total_bytes"]
    r, body = get(c, "/ringlet/status")
    assert r.status == 200 and b"<h1>Ringlet status</h1>" in body
    c.close()


def test_log_lines(server):
    c = conn(server)
    get(c, "/a/index.html?log-me")
    c.close()
    server.wait_for(r'^\S+ - - \[\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET /a/index.html\?log-me HTTP/1.1" 200 19$',
                    30)
