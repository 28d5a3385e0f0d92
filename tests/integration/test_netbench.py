"""apps/netbench speaking the harness's net-udp workload against a test peer: every datagram the
guest says it sent arrives, and the figures it prints are the peer's counts.

The peer is this test on a `-netdev dgram` unix socket, as the harness's hostnet is: it answers
ARP for 10.0.2.2, counts the UDP datagrams to the sink port by size and echoes those to the echo
port. netbench sends flat out without ever blocking; before the socket layer polled the devices
on a send, the peer's ARP reply was not read until the phase ended, and lwIP dropped nearly every
64-byte datagram while send() reported success (the harness counted 3 of 267,000).
"""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import threading

import pytest

from ringlet import build_app, root

PEER_MAC = bytes.fromhex("52550a000202")
PEER_IP = socket.inet_aton("10.0.2.2")


@pytest.fixture(scope="module", autouse=True)
def built():
    build_app("netbench")


@pytest.mark.parametrize("warmup,nonblock", [(1, 0), (0, 0), (1, 1)])
def test_net_udp_counts_match(warmup, nonblock):
    """warmup=1 (netbench's default): one echo resolves the peer's MAC first, and every datagram
    counts. warmup=0: the first datagrams race the ARP reply (lwIP keeps only the last few for
    an unresolved address, as Linux keeps a bounded queue), so a few may go; the rest must not.
    nonblock=1: the sockets are non-blocking; when the NIC's transmit ring is full send() says
    EAGAIN (it must, at this rate: the guest outruns QEMU's transmit path) and poll() says
    POLLOUT once there is room again, and still every datagram sent arrives."""
    d = tempfile.mkdtemp(prefix="rl-nb-", dir="/tmp")
    path = os.path.join(d, "peer")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(path)
    sock.settimeout(0.2)
    out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    counts = {64: 0, 1472: 0}
    echoed = [0]
    running = [True]

    def peer():
        while running[0]:
            try:
                f = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(f) >= 42 and f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x01" and f[38:42] == PEER_IP:
                out.sendto(f[6:12] + PEER_MAC + b"\x08\x06" + f[14:20] + b"\x00\x02" + PEER_MAC + PEER_IP +
                           f[22:28] + f[28:32], path + ".guest")
                continue
            if len(f) < 42 or f[12:14] != b"\x08\x00" or f[23] != 17:
                continue
            ihl = (f[14] & 15) * 4
            u = 14 + ihl
            sport, dport, ulen = struct.unpack_from("!HHH", f, u)
            if dport == 9 and ulen - 8 in counts:
                counts[ulen - 8] += 1
            elif dport == 7:
                # The echo: swap MACs, addresses and ports; the UDP checksum is left out (0).
                ip = bytearray(f[14:u])
                ip[12:16], ip[16:20] = f[30:34], f[26:30]
                ip[10:12] = b"\0\0"
                s = sum(struct.unpack("!%dH" % (len(ip) // 2), bytes(ip)))
                while s >> 16:
                    s = (s & 0xffff) + (s >> 16)
                ip[10:12] = struct.pack("!H", ~s & 0xffff)
                udp = struct.pack("!HHHH", dport, sport, ulen, 0) + f[u + 8:u + ulen]
                out.sendto(f[6:12] + f[0:6] + b"\x08\x00" + bytes(ip) + udp, path + ".guest")
                echoed[0] += 1

    t = threading.Thread(target=peer, daemon=True)
    t.start()
    cmd = [os.path.join(root(), "scripts", "run"), "-q", "--accel", os.environ.get("RINGLET_ACCEL", "tcg"),
           "--timeout", "120", "--net", "dgram:" + path, "netbench", "--",
           "bench=net-udp", "bench_secs=0.5", "bench_pings=50",
           "bench_warmup=%d" % warmup, "bench_nonblock=%d" % nonblock]
    try:
        done = subprocess.run(cmd, cwd=root(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=150)
        text = done.stdout.decode(errors="replace")
    finally:
        running[0] = False
        t.join(2)
        sock.close()
        out.close()
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        os.rmdir(d)
    assert re.search(r"^BENCH-READY \d+", text, re.M), text
    m = re.search(r"^BENCH-RESULT (\{.*\})", text, re.M)
    assert m, text
    r = json.loads(m.group(1))
    assert "error" not in r, r
    for size in (64, 1472):
        sent = r["udp%d_sent" % size]
        assert sent > 100, r
        # Every datagram send() accepted reached the wire (QEMU waits for the peer rather than
        # dropping); allow a handful still in flight when the peer stopped counting.
        if warmup or size == 1472:
            assert counts[size] >= sent - 8, (size, counts, r)
        else:
            # Without the warm-up the first datagrams go out before the peer's ARP reply is
            # in, and lwIP drops them (as Linux does past its ARP queue); how many depends on
            # how fast the host answers (5% seen on a busy host). The bug this guards against,
            # send() never reading the ARP reply, delivered 3 of 187,776.
            assert counts[size] >= sent * 0.5, (size, counts, r)
        assert counts[size] <= sent, (size, counts, r)
        if nonblock:
            assert r["udp%d_eagain" % size] > 0 and r["udp%d_poll_timeouts" % size] == 0, r
            assert r["udp%d_send_errors" % size] == 0, r
    assert r["echo_pings"] == 50 and r["echo_lost"] == 0 and echoed[0] == 50 + warmup, (r, echoed)
    assert 0 < r["echo_rtt_min_us"] <= r["echo_rtt_median_us"] <= r["echo_rtt_p99_us"], r
