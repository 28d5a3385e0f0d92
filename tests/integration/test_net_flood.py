"""A flood of malformed frames, then a normal TCP echo: the guest must still answer, and what
its network holds in memory must come back to where it was.

The guest runs apps/echo with a static address on a `-netdev dgram` unix socket; the test is
the other end of the wire and speaks raw Ethernet. It sends at least 100,000 bad frames of
eight kinds (truncated headers, bad checksums, lying length fields, frames over the MTU,
random bytes, IP fragments that never complete, TCP segments with odd flag combinations, a SYN
flood), each kind built once with scapy and mutated per frame with struct/random so that
sending is fast. Then it completes a TCP handshake and an echo exchange by hand.

Before and after, it asks the echo app for its memory use (a UDP datagram "ringlet-mem" is
answered, on Ringlet only, with ringlet_net_mem()'s heap bytes and lwIP pool use, and eth0's
frame counters): after the flood, once lwIP's own timers have expired what the flood
legitimately left (half-open connections, fragments waiting for reassembly), the heap and
the pools must be back within a small bound of where they started, and the guest's frame
counter must show that the frames really arrived.
"""

import os
import queue
import random
import re
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from ringlet import build_app, root

from scapy.all import ARP, IP, TCP, UDP, Ether, Raw

PEER_MAC = "02:00:00:00:00:01"
PEER_IP = "10.0.3.2"
GUEST_IP = "10.0.3.15"
GUEST_MAC = "52:54:00:12:34:56"
FRAMES = 100000
# What may stay grown after the flood once lwIP's timers have run: the heap's small-bin
# caches and the driver's list of spare receive buffers move a little; a leak of one
# allocation per bad frame would be megabytes.
HEAP_BOUND = 256 * 1024
POOL_BOUND = 8


@pytest.fixture(scope="module", autouse=True)
def built():
    build_app("echo")


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="rl-flood-", dir="/tmp")
    yield d
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


class Wire:
    """The peer's end of the dgram netdev. A thread reads every frame the guest sends (so
    that QEMU never waits on a full socket), answers the guest's ARP requests for PEER_IP,
    and queues the rest for whoever waits for them."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        # Sending blocks while QEMU has no room (the guest's ring is full): its own socket,
        # without the reader's timeout.
        self.out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.out.settimeout(30)  # a guest that stops taking frames: fail, don't hang
        self.frames = queue.Queue()
        self.keep = False
        self.running = True
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        peer_ip = socket.inet_aton(PEER_IP)
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            # ARP request (ethertype 0x0806, op 1) for the peer: answer it.
            if len(data) >= 42 and data[12:14] == b"\x08\x06" and data[20:22] == b"\x00\x01" \
                    and data[38:42] == peer_ip:
                reply = (data[6:12] + mac_bytes(PEER_MAC) + b"\x08\x06" + data[14:20] + b"\x00\x02" +
                         mac_bytes(PEER_MAC) + peer_ip + data[22:28] + data[28:32])
                self.send(reply)
                continue
            if self.keep:
                self.frames.put(data)

    def send(self, frame):
        self.out.sendto(bytes(frame), self.path + ".guest")

    def expect(self, match, timeout=20):
        """The first queued frame (as scapy's Ether) for which match is true."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                frame = Ether(self.frames.get(timeout=0.2))
            except queue.Empty:
                continue
            if match(frame):
                return frame
        raise AssertionError("no matching frame from the guest in %g s" % timeout)

    def close(self):
        self.running = False
        self.reader.join(2)
        self.sock.close()
        self.out.close()
        for p in (self.path, self.path + ".guest"):
            if os.path.exists(p):
                os.unlink(p)


def to_guest(ip_pkt):
    return Ether(dst=GUEST_MAC, src=PEER_MAC) / ip_pkt


def mem(wire, sport):
    """The guest's memory use, as a dict of numbers (asked over UDP port 7)."""
    wire.keep = True
    for attempt in range(5):
        wire.send(to_guest(IP(src=PEER_IP, dst=GUEST_IP) / UDP(sport=sport, dport=7) / Raw(b"ringlet-mem")))
        try:
            frame = wire.expect(lambda f: UDP in f and f[UDP].sport == 7 and f[UDP].dport == sport, timeout=5)
            break
        except AssertionError:
            if attempt == 4:
                raise
    wire.keep = False
    text = bytes(frame[UDP].payload).decode()
    stats = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", text))
    assert {"heap_used", "heap_arena", "pbuf_pool_used", "memp_used", "reass_used", "rx_frames",
            "rx_dropped"} <= set(stats), text
    # A heap in use larger than the heap itself is a misread counter, not a measurement.
    assert 0 < stats["heap_used"] <= stats["heap_arena"] < 1 << 31, text
    return stats


def syn_burst(first_port, n):
    """n SYNs to the echo port from fresh source ports: n more half-open connections."""
    return [bytes(to_guest(IP(src=PEER_IP, dst=GUEST_IP) / TCP(sport=first_port + i, dport=7, flags="S",
                                                                  seq=1000 * i)))
            for i in range(n)]


def tcp_echo(wire, payload, burst=(), tries=3):
    """A TCP handshake, payload sent, its echo read back, then a reset: the echo's bytes.
    burst: frames sent just before the SYN (a SYN flood's last wave, so that the listener's
    backlog is full of half-open connections when the SYN arrives)."""
    sport = random.randint(20000, 29999)
    wire.keep = True
    isn = random.randint(0, 2 ** 31)
    base = IP(src=PEER_IP, dst=GUEST_IP)
    mine = lambda f: TCP in f and f[TCP].sport == 7 and f[TCP].dport == sport
    for frame in burst:
        wire.send(frame)
    # Like a real client, send the SYN again when no answer comes (3 s apart).
    for attempt in range(tries):
        wire.send(to_guest(base / TCP(sport=sport, dport=7, flags="S", seq=isn, window=65535)))
        try:
            synack = wire.expect(lambda f: mine(f) and f[TCP].flags & 0x12 == 0x12, timeout=3)
            break
        except AssertionError:
            if attempt == tries - 1:
                raise AssertionError("no SYN-ACK to %d SYN(s) in %d s" % (tries, 3 * tries))
    assert synack[TCP].ack == isn + 1
    their = synack[TCP].seq + 1
    wire.send(to_guest(base / TCP(sport=sport, dport=7, flags="A", seq=isn + 1, ack=their, window=65535)))
    wire.send(to_guest(base / TCP(sport=sport, dport=7, flags="PA", seq=isn + 1, ack=their, window=65535) /
                       Raw(payload)))
    got = b""
    end = time.monotonic() + 30
    while len(got) < len(payload) and time.monotonic() < end:
        seg = wire.expect(lambda f: mine(f), timeout=max(1, end - time.monotonic()))
        data = bytes(seg[TCP].payload)
        # Only in-order data counts (a retransmission repeats what we have).
        if data and seg[TCP].seq == their + len(got):
            got += data
            wire.send(to_guest(base / TCP(sport=sport, dport=7, flags="A", seq=isn + 1 + len(payload),
                                          ack=their + len(got), window=65535)))
        assert not seg[TCP].flags & 0x04, "the guest reset the connection"
    wire.send(to_guest(base / TCP(sport=sport, dport=7, flags="R", seq=isn + 1 + len(payload))))
    wire.keep = False
    return got


def kinds(rnd):
    """One generator of bad frames per kind: each yields bytes forever."""
    gmac, pmac = mac_bytes(GUEST_MAC), mac_bytes(PEER_MAC)
    eth = gmac + pmac + b"\x08\x00"
    udp = bytes(to_guest(IP(src=PEER_IP, dst=GUEST_IP, id=1) / UDP(sport=999, dport=7) / Raw(b"u" * 32)))
    tcp = bytes(to_guest(IP(src=PEER_IP, dst=GUEST_IP) / TCP(sport=999, dport=7, flags="S") / Raw(b"t" * 16)))
    icmp_hdr = len(eth) + 20

    def put(frame, off, fmt, value):
        b = bytearray(frame)
        struct.pack_into(fmt, b, off, value)
        return bytes(b)

    def truncated():
        while True:
            base = udp if rnd.random() < 0.5 else tcp
            # Never empty: QEMU's dgram netdev takes a 0-byte datagram for the end of the
            # connection and stops reading the socket.
            yield base[:rnd.randrange(1, len(base) - 1)]

    def bad_checksums():
        while True:
            base = udp if rnd.random() < 0.5 else tcp
            if rnd.random() < 0.5:
                yield put(base, 24, "!H", rnd.randrange(0, 65536) ^ 0x5555)  # IP header checksum
            else:
                off = icmp_hdr + (6 if base is udp else 16)  # UDP or TCP checksum
                yield put(base, off, "!H", (struct.unpack_from("!H", base, off)[0] + rnd.randrange(1, 65535)) & 0xffff)

    def lying_lengths():
        while True:
            base = udp if rnd.random() < 0.5 else tcp
            pick = rnd.randrange(4)
            if pick == 0:  # IP total length past the frame's end, or shorter than the header
                yield put(base, 16, "!H", rnd.choice([rnd.randrange(len(base), 65536), rnd.randrange(0, 20)]))
            elif pick == 1:  # IHL below 5 or past the packet
                yield put(base, 14, "!B", 0x40 | rnd.choice([0, 1, 4, 15]))
            elif pick == 2 and base is udp:  # UDP length lying either way
                yield put(base, icmp_hdr + 4, "!H", rnd.choice([0, 7, rnd.randrange(60, 65536)]))
            else:  # TCP data offset lying
                yield put(tcp, icmp_hdr + 12, "!B", rnd.choice([0x00, 0x10, 0x40, 0xf0]))

    def oversized():
        while True:
            size = rnd.choice([1515, 1519, 1600, 4000, 9000, 9018])
            yield put(udp + bytes(size - len(udp)), 16, "!H", size - 14)

    def random_bytes():
        while True:
            n = rnd.randrange(1, 200)
            head = eth if rnd.random() < 0.5 else gmac + pmac
            yield head + rnd.randbytes(n)

    def fragments():
        # First fragments (MF set) of datagrams whose rest never comes, each with a new id;
        # also lone middle and last fragments.
        frag = bytes(to_guest(IP(src=PEER_IP, dst=GUEST_IP, id=7, flags="MF") / UDP(sport=999, dport=7) /
                              Raw(b"f" * 64)))
        ident = 0
        while True:
            ident = (ident + 1) & 0xffff
            f = put(frag, 18, "!H", ident)
            if rnd.random() < 0.3:
                f = put(f, 20, "!H", rnd.choice([0x2000 | 50, 100]))  # MF + offset, or a last piece
            yield bytes(to_guest(IP(f[14:])))  # scapy recomputes the header checksum

    def odd_flags():
        combos = ["SF", "SR", "FPU", "", "SFRPAUEC", "FA", "R", "PU", "SA", "RA", "F", "A"]
        built = [bytes(to_guest(IP(src=PEER_IP, dst=GUEST_IP) / TCP(sport=999, dport=p, flags=fl, seq=12345)))
                 for fl in combos for p in (7, 7, 23)]
        sport_off = icmp_hdr
        while True:
            # A fresh source port each time; the checksum goes stale, so half are fixed up.
            f = put(rnd.choice(built), sport_off, "!H", rnd.randrange(1024, 65536))
            if rnd.random() < 0.5:
                f = bytes(to_guest(IP(f[14:])))
            yield f

    def syn_flood():
        syn = bytes(to_guest(IP(src=PEER_IP, dst=GUEST_IP) / TCP(sport=999, dport=7, flags="S", seq=1)))
        pkts = []
        for sport in rnd.sample(range(30000, 60000), 512):
            pkts.append(bytes(to_guest(IP(src=PEER_IP, dst=GUEST_IP) /
                                       TCP(sport=sport, dport=7, flags="S", seq=rnd.randrange(2 ** 32)))))
        while True:
            yield rnd.choice(pkts) if rnd.random() < 0.9 else syn

    return {"truncated": truncated(), "bad_checksum": bad_checksums(), "lying_length": lying_lengths(),
            "over_mtu": oversized(), "random": random_bytes(), "fragment": fragments(),
            "odd_tcp_flags": odd_flags(), "syn_flood": syn_flood()}


def test_flood_of_malformed_frames(sockdir):
    path = os.path.join(sockdir, "peer")
    wire = Wire(path)
    cmd = [os.path.join(root(), "scripts", "run"), "-q", "--accel", os.environ.get("RINGLET_ACCEL", "tcg"),
           "--timeout", "300", "--net", "dgram:" + path, "--append", "ip=%s/24" % GUEST_IP, "echo"]
    guest = subprocess.Popen(cmd, cwd=root(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)
    console = []
    listening = threading.Event()

    def read_console():
        for raw in iter(guest.stdout.readline, b""):
            line = raw.decode(errors="replace")
            console.append(line)
            if line.startswith("listening on"):
                listening.set()

    threading.Thread(target=read_console, daemon=True).start()
    try:
        assert listening.wait(60), "echo did not start\n" + "".join(console)
        assert tcp_echo(wire, b"before the flood") == b"before the flood"
        before = mem(wire, 5001)

        rnd = random.Random(7)
        gens = kinds(rnd)
        names = list(gens)
        sent = dict.fromkeys(names, 0)
        t0 = time.monotonic()
        for i in range(FRAMES):
            # Kinds in runs of 64, in turn: the SYN flood comes as a burst, as a real one would.
            name = names[(i // 64) % len(names)]
            try:
                wire.send(next(gens[name]))
            except OSError as e:
                raise AssertionError("frame %d (%s): the guest stopped taking frames: %s; sent %s\n%s"
                                     % (i, name, e, sent, "".join(console)))
            sent[name] += 1
        flood_s = time.monotonic() - t0
        print("flood: %d frames in %.1f s: %s" % (FRAMES, flood_s, sent))

        # A real client's SYN right behind the flood's last wave of SYNs (from ports the flood
        # did not use): the listener's backlog is full of half-open connections that live 20 s;
        # one SYN, no retry, must still be answered (the oldest half-open one makes room).
        payload = bytes(rnd.randrange(256) for _ in range(1000))
        got = tcp_echo(wire, payload, burst=syn_burst(61000, 128), tries=1)
        assert got == payload, "the TCP echo after the flood came back wrong"
        during = mem(wire, 5002)
        # The frames got to the guest (QEMU waits for room on the ring rather than dropping):
        # every bad one, the echo's and the queries'.
        # (the driver counts a frame too short for an Ethernet header as dropped, not received)
        assert (during["rx_frames"] + during["rx_dropped"]) - (before["rx_frames"] + before["rx_dropped"]) >= FRAMES, \
            (before, during)

        # Half-open connections from the SYN flood and fragments waiting for the rest of
        # their datagram hold memory until lwIP's timers drop them (SYN_RCVD 20 s, IP
        # reassembly 15 s): wait for that, then compare.
        end = time.monotonic() + 60
        while True:
            after = mem(wire, 5003)
            settled = (after["heap_used"] <= before["heap_used"] + HEAP_BOUND and
                       after["pbuf_pool_used"] <= before["pbuf_pool_used"] + POOL_BOUND and
                       after["memp_used"] <= before["memp_used"] + POOL_BOUND)
            if settled or time.monotonic() > end:
                break
            time.sleep(2)
        print("memory before %s\n       during %s\n        after %s" % (before, during, after))
        assert after["heap_used"] <= before["heap_used"] + HEAP_BOUND, (before, after)
        assert after["pbuf_pool_used"] <= before["pbuf_pool_used"] + POOL_BOUND, (before, after)
        assert after["memp_used"] <= before["memp_used"] + POOL_BOUND, (before, after)
        assert after["reass_used"] == 0, after
        # And the server still serves.
        assert tcp_echo(wire, b"after the flood") == b"after the flood"
        assert guest.poll() is None, "the guest died\n" + "".join(console)
    finally:
        if guest.poll() is None:
            os.killpg(guest.pid, signal.SIGKILL)
        guest.wait()
        wire.close()
