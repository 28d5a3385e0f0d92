"""virtio-net and lwIP over QEMU user networking (restrict=on): DHCP, on every transport.

Each test boots apps/netinfo, which prints one `netif` line per interface after the kernel
waited for DHCP, and checks the address QEMU's DHCP server gave (10.0.2.15/24: slirp with
restrict=on offers no router and no name server), the MAC and the boot log line.
"""

import re

import pytest

from ringlet import build_app, run_guest

MAC0 = "52:54:00:12:34:56"


def netifs(output):
    """{name: {key: value}} from netinfo's last `netif` lines."""
    found = {}
    for line in output.splitlines():
        m = re.match(r"netif (\S+) (.*) features=(.*)$", line.strip())
        if m:
            words = dict(w.split("=", 1) for w in m.group(2).split(" ") if "=" in w)
            words["features"] = m.group(3).split()
            found[m.group(1)] = words
    return found


@pytest.fixture(scope="module", autouse=True)
def built():
    build_app("netinfo")


# (machine, --virtio, the transport name the boot log gives)
TRANSPORTS = [
    ("q35", "modern", "pci"),
    ("q35", "legacy", "pci-legacy"),
    ("pc", "transitional", "pci"),
    ("microvm", "mmio", "mmio"),
    ("microvm", "mmio-legacy", "mmio-legacy"),
]


@pytest.mark.parametrize("machine,virtio,transport", TRANSPORTS,
                         ids=["%s-%s" % (m, v) for m, v, _ in TRANSPORTS])
def test_dhcp_gives_10_0_2_15(machine, virtio, transport):
    r = run_guest("netinfo", machine=machine,
                  extra=["--net", "user", "--virtio", virtio], timeout=60)
    assert r.status == 0, r.output
    nif = netifs(r.output)
    assert list(nif) == ["eth0"], r.output
    eth0 = nif["eth0"]
    assert eth0["ipv4"] == "10.0.2.15/24", r.output
    assert eth0["mac"] == MAC0
    assert eth0["dhcp"] == "yes" and eth0["link"] == "up"
    assert eth0["mtu"] == "1500"
    # The boot log: the NIC with its transport and MAC, the features, the DHCP address.
    assert re.search(r"eth0: %s \S+( \S+)?, mtu 1500, %s\r?\n" % (re.escape(transport), MAC0), r.output), r.output
    feats = re.search(r"eth0: features: (.*?)\r?\n", r.output).group(1).split()
    assert "mac" in feats and "status" in feats and "mrg_rxbuf" in feats
    assert feats == eth0["features"]
    assert ("v1" in feats) == (virtio in ("modern", "transitional", "mmio"))
    assert "eth0: 10.0.2.15/24 gateway 0.0.0.0 dns none (DHCP)" in r.output


def test_static_configuration_from_kernel_options():
    r = run_guest("netinfo", extra=["--net", "user", "--append",
                                    "ip=10.0.2.20/26 gw=10.0.2.2 dns=10.0.2.3"])
    assert r.status == 0, r.output
    eth0 = netifs(r.output)["eth0"]
    assert eth0["ipv4"] == "10.0.2.20/26"
    assert eth0["gw"] == "10.0.2.2"
    assert eth0["dhcp"] == "no"
    assert "eth0: 10.0.2.20/26 gateway 10.0.2.2 dns 10.0.2.3 (static)" in r.output


def test_bad_static_address_falls_back_to_dhcp():
    r = run_guest("netinfo", extra=["--net", "user", "--append", "ip=10.0.2.300/24"])
    assert r.status == 0, r.output
    assert "ip=10.0.2.300/24 is not ADDR/PREFIX: asking DHCP instead" in r.output
    assert netifs(r.output)["eth0"]["ipv4"] == "10.0.2.15/24"


def test_mtu_from_config_space():
    r = run_guest("netinfo", extra=["--net", "user,mtu=1400"])
    assert r.status == 0, r.output
    eth0 = netifs(r.output)["eth0"]
    assert eth0["mtu"] == "1400"
    assert "mtu" in eth0["features"]
    assert "eth0: pci 00:01.0, mtu 1400, " + MAC0 in r.output


def test_slaac_gives_an_ipv6_address_from_the_mac():
    # slirp advertises fec0::/64; SLAAC makes the address from the MAC (EUI-64).
    r = run_guest("netinfo", args=["4"], extra=["--net", "user"], timeout=60)
    assert r.status == 0, r.output
    assert "eth0: FE80::5054:FF:FE12:3456 (IPv6 link-local)" in r.output
    assert "eth0: FEC0::5054:FF:FE12:3456 (IPv6 SLAAC)" in r.output


def test_no_nic_no_network():
    r = run_guest("netinfo")
    assert r.status == 1, r.output  # netinfo exits 1 without interfaces
    assert "netifs 0" in r.output
