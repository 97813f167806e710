"""Topology files: the examples, the defaults, and one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipmp.core.errors import IpmpError
from ipmp.core.model import link_local_from_mac
from ipmp.sim.topology import (
    NeighbourSpec,
    RouteSpec,
    Topology,
    load_topology,
    parse_topology,
    write_etc,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

HOST = """
[host]
name = "host1"
"""

NET0 = """
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "router1"
  role = "router"
  address = "192.168.85.1"
  address6 = "fe80::1"
"""

HME0 = """
[[nic]]
name = "hme0"
mac = "8:0:20:b9:19:fa"
link = "net0"
"""


def parse(text: str) -> Topology:
    return parse_topology(text, "test.toml")


@pytest.mark.parametrize(
    "name",
    [
        "active-active",
        "active-standby",
        "single-interface",
        "dual-stack",
        "vlans",
        "missing-at-boot",
    ],
)
def test_every_example_loads(name: str) -> None:
    topology = load_topology(EXAMPLES / f"{name}.toml")
    assert topology.name == "host1"
    assert topology.source.endswith(f"{name}.toml")
    assert topology.nics, "every example has interfaces"
    for nic in topology.nics:
        assert nic.hostname is not None, f"{nic.name} has a hostname file"


def test_examples_directory_holds_exactly_the_guide_setups() -> None:
    # lab-*.toml are the real-network lab's topologies (RFC 5737 addresses).
    guide = [p.stem for p in EXAMPLES.glob("*.toml") if not p.stem.startswith("lab-")]
    assert sorted(guide) == [
        "active-active",
        "active-standby",
        "dual-stack",
        "missing-at-boot",
        "single-interface",
        "vlans",
    ]


def test_active_active_matches_the_guide() -> None:
    topology = load_topology(EXAMPLES / "active-active.toml")
    hme0, hme1 = topology.nics
    assert (hme0.name, hme0.index, hme0.mac) == ("hme0", 2, "8:0:20:b9:19:fa")
    assert (hme1.name, hme1.index, hme1.mac) == ("hme1", 3, "8:0:20:b9:1b:fc")
    # Example 30-1 prints these link-local addresses for the two MACs.
    assert link_local_from_mac(hme0.mac) == "fe80::a00:20ff:feb9:19fa"
    assert link_local_from_mac(hme1.mac) == "fe80::a00:20ff:feb9:1bfc"
    assert hme0.modules == ("arp", "ip", "hme")
    assert (hme0.device, hme0.vlan, hme0.media, hme0.mtu) == ("hme0", 0, "ether", 1500)
    files = topology.etc_files()
    assert list(files) == [
        "etc/hostname.hme0",
        "etc/hostname6.hme0",
        "etc/hostname.hme1",
        "etc/hostname6.hme1",
        "etc/default/mpathd",
    ]
    assert files["etc/hostname.hme0"] == (
        "192.168.85.19 netmask + broadcast + group test up \\\n"
        "    addif 192.168.85.21 deprecated -failover netmask + broadcast + up\n"
    )
    assert files["etc/hostname6.hme1"] == "-failover group test up\n"
    assert "FAILURE_DETECTION_TIME=10000\n" in files["etc/default/mpathd"]
    (net0,) = topology.links
    assert [(n.name, n.role, n.address, n.address6) for n in net0.neighbours] == [
        ("router1", "router", "192.168.85.1", "fe80::1"),
        ("router2", "router", "192.168.85.2", "fe80::2"),
        ("host137", "host", "192.168.85.137", ""),
    ]


def test_active_standby_hme1_is_the_guides_standby() -> None:
    topology = load_topology(EXAMPLES / "active-standby.toml")
    assert topology.nic("hme1").hostname == (
        "192.168.85.22 netmask + broadcast + deprecated group test -failover standby up\n"
    )


def test_single_interface_uses_its_data_address_for_probes() -> None:
    topology = load_topology(EXAMPLES / "single-interface.toml")
    assert [n.name for n in topology.nics] == ["hme0"]
    assert topology.nic("hme0").hostname == (
        "192.168.85.19 netmask + broadcast + group v4test -failover up\n"
    )
    assert sum(n.role == "router" for n in topology.links[0].neighbours) == 2


def test_dual_stack_has_ipv6_data_addresses() -> None:
    topology = load_topology(EXAMPLES / "dual-stack.toml")
    assert topology.nic("hme0").hostname6 == "-failover group test up\naddif 2001:db8::19/64 up\n"
    assert topology.nic("hme1").hostname6 == "-failover group test up\naddif 2001:db8::20/64 up\n"


def test_vlan_interfaces_ride_on_their_device() -> None:
    topology = load_topology(EXAMPLES / "vlans.toml")
    by_name = {nic.name: nic for nic in topology.nics}
    assert [(n.name, n.index) for n in topology.nics] == [
        ("bge0", 2),
        ("bge1", 3),
        ("bge1000", 4),
        ("bge1001", 5),
    ]
    bge0, bge1000 = by_name["bge0"], by_name["bge1000"]
    assert (bge1000.device, bge1000.vlan, bge1000.link) == ("bge0", 1, "vlan1")
    assert (bge0.device, bge0.vlan, bge0.link) == ("bge0", 0, "net0")
    assert bge1000.is_vlan and not bge0.is_vlan
    assert bge1000.mac == bge0.mac
    assert bge1000.modules == ("arp", "ip", "bge")
    assert [n.name for n in topology.vlans_of("bge1")] == ["bge1001"]
    assert "group vlan1" in (bge1000.hostname or "")
    assert "192.168.86.21" in (bge1000.hostname or "")
    vlan1 = topology.link("vlan1")
    assert {n.address for n in vlan1.neighbours} == {"192.168.86.1", "192.168.86.2"}


def test_missing_at_boot_keeps_the_absent_nics_files() -> None:
    topology = load_topology(EXAMPLES / "missing-at-boot.toml")
    assert not topology.nic("hme0").present
    assert topology.nic("hme1").present
    assert topology.nic("hme0").index == 2
    assert "etc/hostname.hme0" in topology.etc_files()


def test_defaults() -> None:
    topology = parse(
        HOST
        + """
[[link]]
name = "lan"
  [[link.neighbour]]
  name = "r"
  role = "router"
  address = "10.0.0.1"
  [[link.neighbour]]
  name = "h"
  role = "host"
  address6 = "FE80:0:0::0:5"

[[nic]]
name = "e1000g0"
mac = "00:0A:0b:C:D:E"
link = "lan"

[[nic]]
name = "qfe12"
mac = "8:0:20:0:0:1"
media = "ipib"
mtu = 9000
modules = ["arp", "ip", "ipf", "qfe"]
present = false
"""
    )
    assert topology.seed == 1
    assert topology.mpathd is None
    assert topology.routes == ()
    e1000g0, qfe12 = topology.nics
    assert e1000g0.mac == "0:a:b:c:d:e"
    assert e1000g0.modules == ("arp", "ip", "e1000g")
    assert (e1000g0.media, e1000g0.mtu, e1000g0.present) == ("ether", 1500, True)
    assert (e1000g0.hostname, e1000g0.hostname6) == (None, None)
    assert qfe12.modules == ("arp", "ip", "ipf", "qfe")
    assert (qfe12.media, qfe12.mtu, qfe12.present, qfe12.index, qfe12.link) == (
        "ipib",
        9000,
        False,
        3,
        "",
    )
    router, host = topology.links[0].neighbours
    assert router == NeighbourSpec(
        name="r",
        role="router",
        address="10.0.0.1",
        address6="",
        rtt_ms=0.5,
        jitter_ms=0.0,
        loss=0.0,
        answers_multicast=True,
        default_route=True,
    )
    assert (host.address6, host.default_route, host.answers_multicast) == ("fe80::5", False, True)
    assert topology.etc_files() == {}


def test_routes_are_read_and_normalised() -> None:
    topology = parse(
        HOST
        + NET0
        + HME0
        + """
[[route]]
destination = "192.168.85.137"
gateway = "192.168.85.137"

[[route]]
family = "inet6"
destination = "2001:db8:0::"
prefixlen = 48
gateway = "fe80::1"
ifname = "hme0"

[[route]]
destination = "10.0.0.0"
prefixlen = 8
"""
    )
    assert topology.routes == (
        RouteSpec("inet", "192.168.85.137", 32, "192.168.85.137", ""),
        RouteSpec("inet6", "2001:db8::", 48, "fe80::1", "hme0"),
        RouteSpec("inet", "10.0.0.0", 8, "", ""),
    )


def test_vlan_may_override_its_device_mtu_and_be_declared_first() -> None:
    topology = parse(
        HOST
        + """
[[link]]
name = "v2"

[[nic]]
name = "bge2000"
link = "v2"
mtu = 1496

[[nic]]
name = "bge0"
mac = "0:14:4f:2a:10:0"
mtu = 9000
"""
    )
    vlan = topology.nic("bge2000")
    assert (vlan.device, vlan.vlan, vlan.mtu, vlan.mac, vlan.index) == (
        "bge0",
        2,
        1496,
        "0:14:4f:2a:10:0",
        2,
    )


BAD: list[tuple[str, str, str]] = [
    ("[host\nname = 1", "invalid TOML", ""),
    (NET0, "host", "missing"),
    (HOST + "[[nics]]\nname = 'hme0'\n", "nics", "unknown key"),
    (HOST + "[host2]\n", "host2", "unknown key"),
    (HOST.replace('"host1"', '"-bad-"'), "host.name", "expected a host name"),
    (HOST + "seed = 'x'\n", "host.seed", "expected an integer"),
    (HOST + "[mpathd]\n", "mpathd.text", "missing"),
    (HOST + "[mpathd]\ntext = 3\n", "mpathd.text", "expected a string"),
    ("link = 3\n" + HOST, "link", "expected an array of tables"),
    (HOST + NET0 + HME0.replace("mac =", "macc ="), "nic[0].macc", "unknown key"),
    (HOST + NET0 + HME0 + HME0, "nic[1].name", "duplicate interface name 'hme0'"),
    (HOST + NET0 + HME0.replace('"net0"', '"net9"'), "nic[0].link", "expected the name of a"),
    (HOST + NET0 + HME0.replace("8:0:20:b9:19:fa", "8:0:20:b9:19"), "nic[0].mac", "6-octet"),
    (HOST + NET0 + HME0.replace("8:0:20:b9:19:fa", "zz:0:20:b9:19:fa"), "nic[0].mac", "MAC"),
    (HOST + NET0 + HME0.replace("hme0", "averyveryverylongname0"), "nic[0].name", "15 chars"),
    (HOST + NET0 + HME0.replace('"hme0"', '"hme"'), "nic[0].name", "driver then PPA"),
    (HOST + NET0 + HME0.replace('"hme0"', '"lo0"'), "nic[0].name", "interface name"),
    (HOST + NET0 + HME0.replace("hme0", "hme01"), "nic[0].name", "interface name"),
    (HOST + NET0 + HME0 + "mtu = true\n", "nic[0].mtu", "expected an MTU"),
    (HOST + NET0 + HME0 + "mtu = 20\n", "nic[0].mtu", "expected an MTU"),
    (HOST + NET0 + HME0 + "present = 'no'\n", "nic[0].present", "expected true or false"),
    (HOST + NET0 + HME0 + "modules = []\n", "nic[0].modules", "STREAMS module"),
    (HOST + NET0 + HME0 + "modules = 'ip'\n", "nic[0].modules", "STREAMS module"),
    (HOST + NET0 + HME0 + "hostname = 3\n", "nic[0].hostname", "expected a string"),
    (
        HOST + NET0 + HME0.replace("hme0", "hme1000"),
        "nic[0].name",
        "hme1000 is VLAN 1 on hme0, which is not declared",
    ),
    (HOST + NET0.replace("192.168.85.1", "192.168.85.300"), "link[0].neighbour[0].address", "IPv4"),
    (
        HOST + NET0.replace("192.168.85.1", "224.0.0.1"),
        "link[0].neighbour[0].address",
        "IPv4 unicast",
    ),
    (HOST + NET0.replace("fe80::1", "2001:db8::1"), "link[0].neighbour[0].address6", "link-local"),
    (HOST + NET0.replace('"router"', '"switch"'), "link[0].neighbour[0].role", '"router" or'),
    (
        HOST + NET0.replace('"router"', '"host"') + "  default_route = true\n",
        "link[0].neighbour[0].default_route",
        "only a router",
    ),
    (HOST + NET0 + "  loss = 1.5\n", "link[0].neighbour[0].loss", "fraction from 0 to 1"),
    (HOST + NET0 + "  rtt_ms = -1\n", "link[0].neighbour[0].rtt_ms", "round-trip time"),
    (HOST + NET0 + "  jitter_ms = 'a'\n", "link[0].neighbour[0].jitter_ms", "jitter"),
    (
        HOST + NET0 + "  answers_multicast = 1\n",
        "link[0].neighbour[0].answers_multicast",
        "true or false",
    ),
    (
        HOST + NET0.replace('address = "192.168.85.1"\n  address6 = "fe80::1"\n', ""),
        "link[0].neighbour[0].address",
        "expected address, address6 or both",
    ),
    (
        HOST + NET0 + NET0.split('[[link]]\nname = "net0"')[1],
        "link[0].neighbour[1].name",
        "duplicate neighbour name",
    ),
    (
        HOST + NET0 + NET0.split('[[link]]\nname = "net0"')[1].replace("router1", "r2"),
        "link[0].neighbour[1].address",
        "duplicate address 192.168.85.1 on link 'net0'",
    ),
    (HOST + NET0 + NET0, "link[1].name", "duplicate link name"),
    (
        HOST + NET0 + HME0 + "[[route]]\ndestination = '192.168.85.1'\nprefixlen = 24\n",
        "route[0].destination",
        "network address for prefix length 24",
    ),
    (
        HOST + NET0 + HME0 + "[[route]]\ndestination = '10.0.0.0'\ngateway = 'fe80::1'\n",
        "route[0].gateway",
        "IPv4 address",
    ),
    (
        HOST + NET0 + HME0 + "[[route]]\nfamily = 'inet6'\ndestination = '::'\nprefixlen = 0\n"
        "gateway = 'fe80::1'\n",
        "route[0].ifname",
        "link-local gateway needs an interface",
    ),
    (
        HOST + NET0 + HME0 + "[[route]]\ndestination = '10.0.0.1'\nifname = 'hme7'\n",
        "route[0].ifname",
        "expected the name of a [[nic]]",
    ),
    (HOST + NET0 + HME0 + "[[route]]\nfamily = 'ipx'\n", "route[0].family", '"inet" or "inet6"'),
    (
        HOST + NET0 + HME0 + "[[route]]\ndestination = '10.0.0.1'\n[[route]]\n"
        "destination = '10.0.0.1'\n",
        "route[1].destination",
        "duplicate route",
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "expected"), BAD, ids=[f"{key}:{expected}" for _, key, expected in BAD]
)
def test_bad_topology_gives_one_line_naming_the_key(text: str, key: str, expected: str) -> None:
    with pytest.raises(IpmpError) as info:
        parse(text)
    message = info.value.message
    assert "\n" not in message
    assert message.startswith(f"test.toml: {key}: " if key != "invalid TOML" else "test.toml: ")
    assert key in message
    assert expected in message


def test_load_reports_an_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(IpmpError, match=r"nope\.toml: cannot read"):
        load_topology(missing)


def test_write_etc_writes_files_and_keeps_existing_ones(tmp_path: Path) -> None:
    topology = load_topology(EXAMPLES / "active-active.toml")
    written = write_etc(topology, tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in written] == list(topology.etc_files())
    assert (tmp_path / "etc/hostname6.hme0").read_text() == "-failover group test up\n"

    (tmp_path / "etc/hostname.hme0").write_text("192.168.85.99 up\n")
    assert write_etc(topology, tmp_path) == []
    assert (tmp_path / "etc/hostname.hme0").read_text() == "192.168.85.99 up\n"

    rewritten = write_etc(topology, tmp_path, overwrite=True)
    assert len(rewritten) == 5
    assert (tmp_path / "etc/hostname.hme0").read_text().startswith("192.168.85.19 ")


def test_etc_files_end_with_a_newline() -> None:
    topology = parse(HOST + NET0 + HME0 + "hostname = '192.168.85.19 up'\nhostname6 = ''\n")
    assert topology.etc_files() == {
        "etc/hostname.hme0": "192.168.85.19 up\n",
        "etc/hostname6.hme0": "",
    }
