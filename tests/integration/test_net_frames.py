"""virtio-net and lwIP, frame by frame: a test peer on a `-netdev dgram` unix socket speaks raw
Ethernet (built and parsed with scapy) and checks every field of the guest's ARP and ICMP
answers: MACs, IP addresses, ids, sequence numbers, payload, checksums.

The guest runs apps/netinfo with a static address and keeps the network going for a while;
QEMU binds PATH.guest and sends the guest's frames to PATH, where the peer listens.
"""

import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from ringlet import build_app, root

# Debian's python3-scapy, installed by `scripts/deps test` (make test runs it first).
from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, Raw

PEER_MAC = "02:00:00:00:00:01"
GUEST_MACS = ["52:54:00:12:34:56", "52:54:00:12:34:57"]


@pytest.fixture(scope="module", autouse=True)
def built():
    build_app("netinfo")


class Guest:
    """netinfo in QEMU, in the background, with its console collected."""

    def __init__(self, extra, serve_seconds=60, machine="q35"):
        accel = os.environ.get("RINGLET_ACCEL", "tcg")
        cmd = [os.path.join(root(), "scripts", "run"), "-q", "--accel", accel, "-M", machine,
               "--timeout", str(serve_seconds + 30)] + extra + ["netinfo", "--", str(serve_seconds)]
        self.proc = subprocess.Popen(cmd, cwd=root(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.output = ""
        self.serving = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode(errors="replace")
            self.output += line
            if line.startswith("serving for"):
                self.serving.set()

    def wait_serving(self, timeout=60):
        if not self.serving.wait(timeout):
            raise AssertionError("guest did not start serving\n--- console:\n" + self.output)

    def wait_exit(self, timeout=60):
        """Waits for the guest to finish by itself; its status."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("guest did not finish\n--- console:\n" + self.output)
        self.reader.join(5)
        return status

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.reader.join(5)


class Peer:
    """The other end of a dgram netdev: raw Ethernet frames as datagrams."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.5)

    def send(self, frame):
        self.sock.sendto(bytes(frame), self.path + ".guest")

    def recv_until(self, match, timeout=20, answer_arp=None):
        """The first frame for which match(Ether) is true. answer_arp=(ip, mac): also answer
        the guest's ARP requests for ip, as a real neighbour would."""
        end = time.monotonic() + timeout
        seen = []
        while time.monotonic() < end:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            frame = Ether(data)
            seen.append(frame.summary())
            if answer_arp and ARP in frame and frame[ARP].op == 1 and frame[ARP].pdst == answer_arp[0]:
                self.send(Ether(dst=frame.src, src=answer_arp[1]) /
                          ARP(op=2, hwsrc=answer_arp[1], psrc=answer_arp[0],
                              hwdst=frame[ARP].hwsrc, pdst=frame[ARP].psrc))
            if match(frame):
                return frame, data
        raise AssertionError("no matching frame in %g s; saw: %s" % (timeout, seen))

    def close(self):
        self.sock.close()
        for p in (self.path, self.path + ".guest"):
            if os.path.exists(p):
                os.unlink(p)


@pytest.fixture
def sockdir():
    # Unix socket paths are limited to 108 bytes: a short directory in /tmp.
    d = tempfile.mkdtemp(prefix="rl-net-", dir="/tmp")
    yield d
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)


def arp_exchange(peer, guest_ip, guest_mac, peer_ip):
    peer.send(Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER_MAC) /
              ARP(op=1, hwsrc=PEER_MAC, psrc=peer_ip, hwdst="00:00:00:00:00:00", pdst=guest_ip))
    frame, _ = peer.recv_until(lambda f: ARP in f and f[ARP].op == 2 and f[ARP].psrc == guest_ip)
    assert frame.dst == PEER_MAC and frame.src == guest_mac
    assert frame.type == 0x0806
    a = frame[ARP]
    assert (a.hwtype, a.ptype, a.hwlen, a.plen) == (1, 0x0800, 6, 4)
    assert a.hwsrc == guest_mac and a.psrc == guest_ip
    assert a.hwdst == PEER_MAC and a.pdst == peer_ip


def checksums_right(pkt):
    """Whether the IP and ICMP checksums the guest sent are what they must be."""
    ip = pkt[IP]
    fresh = IP(bytes(ip))
    del fresh.chksum
    del fresh[ICMP].chksum
    rebuilt = IP(bytes(fresh))
    return ip.chksum == rebuilt.chksum and ip[ICMP].chksum == rebuilt[ICMP].chksum


def ping(peer, guest_ip, guest_mac, peer_ip, ident, seq, payload, corrupt=False):
    req = (Ether(dst=guest_mac, src=PEER_MAC) /
           IP(src=peer_ip, dst=guest_ip, id=0x4242, ttl=64) /
           ICMP(type=8, id=ident, seq=seq) / Raw(payload))
    data = bytearray(bytes(req))
    if corrupt:
        data[14 + 20 + 2] ^= 0xff  # the ICMP checksum's first byte
    peer.send(bytes(data))

    def is_reply(f):
        return IP in f and ICMP in f and f[ICMP].type == 0 and f[ICMP].id == ident and f[ICMP].seq == seq

    return peer.recv_until(is_reply, timeout=3 if corrupt else 20, answer_arp=(peer_ip, PEER_MAC))


def check_reply(frame, guest_ip, guest_mac, peer_ip, ident, seq, payload):
    assert frame.dst == PEER_MAC and frame.src == guest_mac and frame.type == 0x0800
    ip = frame[IP]
    assert ip.src == guest_ip and ip.dst == peer_ip
    assert ip.proto == 1 and ip.version == 4 and ip.ihl == 5
    assert ip.len == 20 + 8 + len(payload)
    icmp = frame[ICMP]
    assert (icmp.type, icmp.code, icmp.id, icmp.seq) == (0, 0, ident, seq)
    assert bytes(icmp.payload) == payload
    assert checksums_right(frame)


# (machine, --virtio): the frames test over every transport the driver has.
TRANSPORTS = [("q35", "modern"), ("q35", "legacy"), ("microvm", "mmio")]


@pytest.mark.parametrize("machine,virtio", TRANSPORTS, ids=["%s-%s" % t for t in TRANSPORTS])
def test_arp_and_icmp_echo(sockdir, machine, virtio):
    path = os.path.join(sockdir, "n0")
    peer = Peer(path)
    guest = Guest(["--virtio", virtio, "--net", "dgram:" + path, "--append", "ip=10.0.3.15/24"],
                  machine=machine)
    try:
        guest.wait_serving()
        mac = GUEST_MACS[0]
        arp_exchange(peer, "10.0.3.15", mac, "10.0.3.2")
        for seq, size in enumerate([0, 56, 1000, 1472]):
            payload = bytes((i * 7 + seq) & 0xff for i in range(size))
            frame, _ = ping(peer, "10.0.3.15", mac, "10.0.3.2", 0x1234 + seq, seq + 1, payload)
            check_reply(frame, "10.0.3.15", mac, "10.0.3.2", 0x1234 + seq, seq + 1, payload)
        # A request with a wrong checksum gets no answer (lwIP checks, the driver passes it on).
        with pytest.raises(AssertionError, match="no matching frame"):
            ping(peer, "10.0.3.15", mac, "10.0.3.2", 0x7777, 99, b"bad" * 10, corrupt=True)
        # And the guest still answers afterwards.
        frame, _ = ping(peer, "10.0.3.15", mac, "10.0.3.2", 0x7778, 100, b"after")
        check_reply(frame, "10.0.3.15", mac, "10.0.3.2", 0x7778, 100, b"after")
    finally:
        guest.stop()
        peer.close()


def test_mtu_is_honoured(sockdir):
    """With VIRTIO_NET_F_MTU 1400 the guest's reply to a 1500-byte ping comes in fragments
    no larger than 1400 bytes, which reassemble to the payload."""
    path = os.path.join(sockdir, "n0")
    peer = Peer(path)
    guest = Guest(["--net", "dgram:%s,mtu=1400" % path, "--append", "ip=10.0.3.15/24"])
    try:
        guest.wait_serving()
        assert re.search(r"netif eth0 .* mtu=1400 ", guest.output), guest.output
        mac = GUEST_MACS[0]
        arp_exchange(peer, "10.0.3.15", mac, "10.0.3.2")
        payload = bytes(range(256)) * 5 + bytes(192)  # 1472: a 1500-byte IP packet
        peer.send(Ether(dst=mac, src=PEER_MAC) / IP(src="10.0.3.2", dst="10.0.3.15", id=99) /
                  ICMP(type=8, id=0x55, seq=1) / Raw(payload))
        frags = []

        def last_fragment(f):
            if IP in f and f[IP].proto == 1 and f[IP].src == "10.0.3.15":
                frags.append(f)
                return f[IP].flags.MF == 0
            return False

        peer.recv_until(last_fragment, answer_arp=("10.0.3.2", PEER_MAC))
        assert len(frags) >= 2, [f.summary() for f in frags]
        assert all(f[IP].len <= 1400 for f in frags)
        assert len({f[IP].id for f in frags}) == 1
        data = b"".join(bytes(f[IP].payload) for f in sorted(frags, key=lambda f: f[IP].frag))
        icmp = ICMP(data)
        assert (icmp.type, icmp.id, icmp.seq) == (0, 0x55, 1)
        assert bytes(icmp.payload) == payload
    finally:
        guest.stop()
        peer.close()


def test_two_nics_on_two_netdevs(sockdir):
    """eth0 on QEMU user networking (DHCP), eth1 on a dgram socket (static): both work at once,
    each with its own MAC."""
    path = os.path.join(sockdir, "n1")
    peer = Peer(path)
    guest = Guest(["--net", "user", "--net", "dgram:" + path, "--append", "ip=dhcp,10.0.4.15/24"])
    try:
        guest.wait_serving()
        assert re.search(r"netif eth0 mac=%s ipv4=10\.0\.2\.15/24 " % GUEST_MACS[0], guest.output), guest.output
        assert re.search(r"netif eth1 mac=%s ipv4=10\.0\.4\.15/24 " % GUEST_MACS[1], guest.output), guest.output
        arp_exchange(peer, "10.0.4.15", GUEST_MACS[1], "10.0.4.2")
        payload = b"second nic " * 20
        frame, _ = ping(peer, "10.0.4.15", GUEST_MACS[1], "10.0.4.2", 0x4321, 5, payload)
        check_reply(frame, "10.0.4.15", GUEST_MACS[1], "10.0.4.2", 0x4321, 5, payload)
    finally:
        guest.stop()
        peer.close()


def l4_checksum_right(frame, layer):
    """Whether the guest's TCP or UDP checksum is what RFC 793/768 says (scapy recomputes)."""
    ip = IP(bytes(frame[IP]))
    sent = ip[layer].chksum
    del ip[layer].chksum
    return IP(bytes(ip))[layer].chksum == sent


def test_tcp_and_udp_to_closed_ports(sockdir):
    """lwIP's TCP and UDP through the driver: a SYN to a closed port gets a RST/ACK that
    acknowledges it, a datagram to one gets ICMP port unreachable quoting it, both with
    right checksums."""
    path = os.path.join(sockdir, "n0")
    peer = Peer(path)
    guest = Guest(["--net", "dgram:" + path, "--append", "ip=10.0.3.15/24"])
    mac = GUEST_MACS[0]
    try:
        guest.wait_serving()
        arp_exchange(peer, "10.0.3.15", mac, "10.0.3.2")
        peer.send(Ether(dst=mac, src=PEER_MAC) / IP(src="10.0.3.2", dst="10.0.3.15") /
                  TCP(sport=40000, dport=9, seq=1000000, flags="S", window=8192))
        frame, _ = peer.recv_until(lambda f: TCP in f and f[TCP].dport == 40000,
                                   answer_arp=("10.0.3.2", PEER_MAC))
        t = frame[TCP]
        assert frame.src == mac and frame.dst == PEER_MAC
        assert frame[IP].src == "10.0.3.15" and frame[IP].dst == "10.0.3.2"
        assert t.sport == 9 and t.flags == "RA"
        assert t.ack == 1000001 and t.seq == 0
        assert l4_checksum_right(frame, TCP)

        payload = b"to nobody" * 3
        peer.send(Ether(dst=mac, src=PEER_MAC) / IP(src="10.0.3.2", dst="10.0.3.15", id=777) /
                  UDP(sport=5555, dport=9999) / Raw(payload))
        frame, _ = peer.recv_until(lambda f: ICMP in f and f[ICMP].type == 3,
                                   answer_arp=("10.0.3.2", PEER_MAC))
        icmp = frame[ICMP]
        assert icmp.code == 3  # port unreachable
        quoted = IP(bytes(icmp.payload))
        assert quoted.id == 777 and quoted.src == "10.0.3.2" and quoted.dst == "10.0.3.15"
        assert bytes(quoted.payload)[:4] == bytes([0x15, 0xb3, 0x27, 0x0f])  # ports 5555, 9999
        assert checksums_right(frame)
    finally:
        guest.stop()
        peer.close()


def test_icmpv6_echo_on_the_link_local_address(sockdir):
    """IPv6: the guest makes fe80::5054:ff:fe12:3456 from its MAC, finds the peer by neighbour
    discovery and answers an echo request with the same id, sequence and payload."""
    from scapy.all import IPv6, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS, \
        ICMPv6NDOptDstLLAddr

    path = os.path.join(sockdir, "n0")
    peer = Peer(path)
    guest = Guest(["--net", "dgram:" + path, "--append", "ip=10.0.3.15/24"])
    mac, ll, peer_ll = GUEST_MACS[0], "fe80::5054:ff:fe12:3456", "fe80::1"
    try:
        guest.wait_serving()
        payload = bytes(range(200))

        def reply_or_ns(f):
            if ICMPv6ND_NS in f and f[ICMPv6ND_NS].tgt == peer_ll:
                peer.send(Ether(dst=f.src, src=PEER_MAC) / IPv6(src=peer_ll, dst=f[IPv6].src) /
                          ICMPv6ND_NA(tgt=peer_ll, R=0, S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr=PEER_MAC))
            return ICMPv6EchoReply in f

        # The address is usable once duplicate address detection is over (about a second):
        # ask again until it answers.
        frame = None
        for attempt in range(15):
            peer.send(Ether(dst=mac, src=PEER_MAC) / IPv6(src=peer_ll, dst=ll) /
                      ICMPv6EchoRequest(id=0x6666, seq=attempt, data=payload))
            try:
                frame, _ = peer.recv_until(reply_or_ns, timeout=1)
                break
            except AssertionError:
                continue
        assert frame is not None, guest.output
        assert frame.src == mac and frame.dst == PEER_MAC
        assert frame[IPv6].src == ll and frame[IPv6].dst == peer_ll
        echo = frame[ICMPv6EchoReply]
        assert echo.id == 0x6666 and echo.data == payload
        sent = echo.cksum
        fresh = IPv6(bytes(frame[IPv6]))
        del fresh[ICMPv6EchoReply].cksum
        assert IPv6(bytes(fresh))[ICMPv6EchoReply].cksum == sent
    finally:
        guest.stop()
        peer.close()


def test_a_burst_of_frames_keeps_the_ring_full(sockdir):
    """More echo requests at once than the receive ring holds (256) and the spare buffers
    (1024): the ring is refilled as it empties, every request is answered or counted as
    dropped, the guest still answers afterwards, and the ring is full again at the end."""
    path = os.path.join(sockdir, "n0")
    peer = Peer(path)
    guest = Guest(["--net", "dgram:" + path, "--append", "ip=10.0.3.15/24"], serve_seconds=45)
    mac = GUEST_MACS[0]
    count = 1500
    try:
        guest.wait_serving()
        arp_exchange(peer, "10.0.3.15", mac, "10.0.3.2")
        # A reader thread keeps the peer's socket empty, so that QEMU can always hand it the
        # guest's frames; frames are parsed afterwards.
        received, done = [], threading.Event()

        def reader():
            while not done.is_set():
                try:
                    received.append(peer.sock.recv(65536))
                except socket.timeout:
                    pass

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        base = bytes(Ether(dst=mac, src=PEER_MAC) / IP(src="10.0.3.2", dst="10.0.3.15") /
                     ICMP(type=8, id=0xb00, seq=0) / Raw(bytes(200)))
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sender.settimeout(30)  # a guest that stops taking frames fails the test, not hangs it
        for seq in range(count):
            # A unix datagram socket blocks the sender while the receiver's queue is full:
            # QEMU reads it only while the guest has receive buffers, so nothing is lost here.
            req = IP(base[14:])
            req[ICMP].seq = seq
            req[Raw].load = seq.to_bytes(2, "big") * 100
            del req.chksum
            del req[ICMP].chksum
            sender.sendto(base[:14] + bytes(req), path + ".guest")
        sender.close()
        # Collect until the guest has been quiet for a while, then take the socket back.
        last, end = -1, time.monotonic() + 30
        while len(received) != last and time.monotonic() < end:
            last = len(received)
            time.sleep(2)
        done.set()
        thread.join(5)
        frame, _ = ping(peer, "10.0.3.15", mac, "10.0.3.2", 0xb01, 1, b"still there")
        check_reply(frame, "10.0.3.15", mac, "10.0.3.2", 0xb01, 1, b"still there")
        assert guest.wait_exit(90) == 0, guest.output
        replies = set()
        for data in received:
            f = Ether(data)
            if ICMP in f and f[ICMP].type == 0 and f[ICMP].id == 0xb00:
                seq = f[ICMP].seq
                assert bytes(f[ICMP].payload) == seq.to_bytes(2, "big") * 100
                assert f[IP].src == "10.0.3.15" and f.dst == PEER_MAC
                assert seq not in replies
                replies.add(seq)
        stats = re.findall(r"stats eth0 rx=(\d+) tx=(\d+) rx_dropped=(\d+) tx_dropped=(\d+) rx_posted=(\d+)",
                           guest.output)
        rx, tx, rx_dropped, tx_dropped, posted = map(int, stats[-1])
        assert rx >= count + 2 and rx_dropped == 0, guest.output  # every request arrived
        # Each request was answered, or its answer counted as dropped when the transmit
        # queue stayed full (QEMU holds the guest's frames while the peer's socket is full).
        assert len(replies) + tx_dropped == count, (len(replies), guest.output)
        assert len(replies) > 0
        assert posted == 256, guest.output  # the ring is full again
    finally:
        guest.stop()
        peer.close()


def test_fragmented_echo_request_is_reassembled(sockdir):
    """A 4000-byte echo request in 1500-byte fragments: lwIP reassembles it from the driver's
    receive buffers (pbufs over the ring's memory) and answers with the whole payload, in
    fragments of its own."""
    from scapy.all import fragment

    path = os.path.join(sockdir, "n0")
    peer = Peer(path)
    guest = Guest(["--net", "dgram:" + path, "--append", "ip=10.0.3.15/24"])
    mac = GUEST_MACS[0]
    try:
        guest.wait_serving()
        arp_exchange(peer, "10.0.3.15", mac, "10.0.3.2")
        payload = bytes((i * 11 + 3) & 0xff for i in range(4000))
        req = IP(src="10.0.3.2", dst="10.0.3.15", id=4242) / ICMP(type=8, id=0xf4a, seq=9) / Raw(payload)
        frags = fragment(req, fragsize=1480)
        assert len(frags) == 3
        for f in reversed(frags):  # out of order, too
            peer.send(Ether(dst=mac, src=PEER_MAC) / f)
        got = []

        def last(f):
            if IP in f and f[IP].proto == 1 and f[IP].src == "10.0.3.15":
                got.append(f)
                return sum(len(bytes(g[IP].payload)) for g in got) >= 8 + len(payload)
            return False

        peer.recv_until(last, answer_arp=("10.0.3.2", PEER_MAC))
        assert all(g[IP].len <= 1500 for g in got)
        data = b"".join(bytes(g[IP].payload) for g in sorted(got, key=lambda g: g[IP].frag))
        icmp = ICMP(data)
        assert (icmp.type, icmp.id, icmp.seq) == (0, 0xf4a, 9)
        assert bytes(icmp.payload) == payload
        whole = IP(src="10.0.3.15", dst="10.0.3.2") / ICMP(type=0, id=0xf4a, seq=9) / Raw(payload)
        assert icmp.chksum == IP(bytes(whole))[ICMP].chksum
    finally:
        guest.stop()
        peer.close()


@pytest.mark.parametrize("virtio", ["modern", "legacy"])
def test_jumbo_frame_over_mergeable_buffers(sockdir, virtio):
    """With an MTU of 9000 offered, an 8028-byte echo request arrives in one frame that QEMU
    spreads over several 2 KiB receive buffers (MRG_RXBUF); the guest answers it in one frame
    as large, not in fragments."""
    path = os.path.join(sockdir, "n0")
    peer = Peer(path)
    guest = Guest(["--net", "dgram:%s,%s,mtu=9000" % (path, virtio), "--append", "ip=10.0.3.15/24"])
    mac = GUEST_MACS[0]
    try:
        guest.wait_serving()
        assert re.search(r"netif eth0 .* mtu=9000 .*features=.*mrg_rxbuf", guest.output), guest.output
        arp_exchange(peer, "10.0.3.15", mac, "10.0.3.2")
        payload = bytes((i * 7 + 1) & 0xff for i in range(8000))
        frame, data = ping(peer, "10.0.3.15", mac, "10.0.3.2", 0x9000, 3, payload)
        check_reply(frame, "10.0.3.15", mac, "10.0.3.2", 0x9000, 3, payload)
        assert frame[IP].flags.MF == 0 and frame[IP].frag == 0
        assert len(data) == 14 + 20 + 8 + len(payload)
    finally:
        guest.stop()
        peer.close()


@pytest.mark.parametrize("machine,virtio", TRANSPORTS, ids=["%s-%s" % t for t in TRANSPORTS])
def test_frames_wake_a_halted_guest(sockdir, machine, virtio):
    """Between pings the guest halts; each request ends the halt through the NIC's wake-up
    interrupt (MSI-X on PCI, the IOAPIC on microvm), which only comes when the network's wait
    source armed the receive queue's notifications."""
    path = os.path.join(sockdir, "n0")
    peer = Peer(path)
    guest = Guest(["--virtio", virtio, "--net", "dgram:" + path, "--append", "ip=10.0.3.15/24"],
                  machine=machine, serve_seconds=8)
    mac = GUEST_MACS[0]
    try:
        guest.wait_serving()
        arp_exchange(peer, "10.0.3.15", mac, "10.0.3.2")
        for seq in range(8):
            time.sleep(0.2)  # the guest halts within a fraction of a millisecond of going idle
            frame, _ = ping(peer, "10.0.3.15", mac, "10.0.3.2", 0x3a3a, seq, b"wake up")
            check_reply(frame, "10.0.3.15", mac, "10.0.3.2", 0x3a3a, seq, b"wake up")
        assert guest.wait_exit(60) == 0, guest.output
        stats = re.findall(r"stats eth0 .* wake=(.+) wakeups=(\d+)", guest.output)
        wake, wakeups = stats[-1][0], int(stats[-1][1])
        assert wake == "msix" or wake.startswith("irq "), guest.output
        # One interrupt per request that found the guest halted: nearly all of the eight. Without
        # the arm, only the queue's first used entry (EVENT_IDX's initial used_event) raises one.
        assert wakeups >= 5, guest.output
    finally:
        guest.stop()
        peer.close()
