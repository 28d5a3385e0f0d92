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
                while conn.recv(4096):
                    pass

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
