"""The socket API gives the answers Linux gives: apps/netcheck's `api` mode
runs the same fixed situations (unconnected sockets, a port in use, time-outs,
a peer that closes, one that resets, one that stays silent, names and address
text) in the guest and, built with the host's gcc, on Linux; the two outputs
must be the same, line for line.
"""

import os
import socket
import struct
import subprocess
import threading

from ringlet import build_app, root, run_guest


class Peer:
    """The test peer on 127.0.0.1: one command byte per connection."""

    def __init__(self):
        # PORT + 1 must be closed: netcheck connects there for ECONNREFUSED.
        for _ in range(50):
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
            probe = socket.socket()
            try:
                probe.bind(("127.0.0.1", self.port + 1))
                break
            except OSError:
                self.sock.close()
            finally:
                probe.close()
        self.sock.listen(16)
        self.commands = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        with conn:
            cmd = conn.recv(1)
            self.commands.append(cmd)
            if cmd == b"F":
                conn.sendall(b"bye")
            elif cmd == b"R":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif cmd == b"S":
                try:
                    while conn.recv(4096):
                        pass
                except ConnectionResetError:
                    pass    # SO_LINGER 0 (QEMU's user networking passes it on as a FIN)

    def close(self):
        self.sock.close()


def linux_api_output(peer):
    exe = os.path.join(root(), "build", "host", "netcheck")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", exe,
                    os.path.join(root(), "apps", "netcheck", "main.c")], check=True)
    done = subprocess.run([exe, "api", "127.0.0.1", str(peer.port)], stdout=subprocess.PIPE,
                          universal_newlines=True, timeout=60)
    assert done.returncode == 0, done.stdout
    return done.stdout.splitlines()


def test_api_answers_like_linux():
    peer = Peer()
    try:
        expected = linux_api_output(peer)
        assert expected[-1] == "api: done"
        build_app("netcheck")
        # Without restrict, the guest reaches the host's loopback as 10.0.2.2.
        result = run_guest("netcheck", args=["api", "10.0.2.2", str(peer.port)],
                           extra=["--net", "user-open"], timeout=120)
        assert result.status == 0, result.output
        lines = [l for l in result.output.splitlines() if l and not l.startswith("[")]
        # Linux's answers first, the guest's below: the first difference shows.
        assert lines == expected
        assert peer.commands.count(b"F") == 2 and peer.commands.count(b"R") == 2
    finally:
        peer.close()


class FakeDns:
    """A DNS server on a free 127.0.0.1 port (the guest's 10.0.2.2:PORT through
    QEMU's user networking; the guest is told `dns=10.0.2.2:PORT`) that knows
    a few A records and says NXDOMAIN to the rest. Not port 53: the machine's
    own resolver may hold it."""

    def __init__(self, records):
        self.records = records
        self.queries = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                query, client = self.sock.recvfrom(512)
            except OSError:
                return
            # The question: labels from offset 12, then QTYPE and QCLASS.
            labels, i = [], 12
            while query[i]:
                labels.append(query[i + 1:i + 1 + query[i]].decode())
                i += 1 + query[i]
            question = query[12:i + 5]
            name = ".".join(labels)
            qtype = struct.unpack("!H", query[i + 1:i + 3])[0]
            self.queries.append((name, qtype))
            addr = self.records.get(name) if qtype == 1 else None
            flags = 0x8180 if addr else 0x8183          # response, RD, RA; NXDOMAIN
            reply = query[:2] + struct.pack("!HHHHH", flags, 1, 1 if addr else 0, 0, 0) + question
            if addr:
                reply += struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(addr)
            self.sock.sendto(reply, client)

    def close(self):
        self.sock.close()


def test_getaddrinfo_over_dns():
    # A static address, so DHCP does not replace the DNS server with QEMU's
    # 10.0.2.3 (which would ask the host's real resolver).
    dns = FakeDns({"echo.test": "10.9.8.7", "other.test": "192.0.2.44"})
    try:
        build_app("netcheck")
        result = run_guest("netcheck", args=["resolve", "echo.test", "other.test", "nosuch.test",
                                              "10.1.1.1", "localhost"],
                           extra=["--net", "user-open", "--append",
                                  "ip=10.0.2.15/24 gw=10.0.2.2 dns=10.0.2.2:%d" % dns.port],
                           timeout=120)
        assert result.status == 0, result.output
        assert "resolve echo.test: 10.9.8.7" in result.output
        assert "resolve other.test: 192.0.2.44" in result.output
        assert "resolve nosuch.test: Name or service not known" in result.output
        # Numbers and localhost need no server.
        assert "resolve 10.1.1.1: 10.1.1.1" in result.output
        assert "resolve localhost: 127.0.0.1" in result.output
        names = {name for name, qtype in dns.queries}
        assert names == {"echo.test", "other.test", "nosuch.test"}
        assert all(qtype == 1 for name, qtype in dns.queries)
    finally:
        dns.close()
