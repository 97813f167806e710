"""The simulated host: inventory, address table, probes, faults and queries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ipmp.core.actions import (
    Action,
    AddAddress,
    AnnounceAddress,
    Log,
    MoveAddress,
    PlumbInterface,
    RemoveAddress,
    SendProbe,
    UnplumbInterface,
    UpdateAddress,
)
from ipmp.core.constants import PROBE_MULTI, PROBE_UNI
from ipmp.core.errors import IpmpError
from ipmp.core.events import (
    ActionCompleted,
    ActionFailed,
    AddressesFound,
    Event,
    LinkCameUp,
    LinkWentDown,
    NicAppeared,
    NicRemoved,
    ProbeReplyReceived,
    Route,
    RoutesChanged,
)
from ipmp.core.types import Family
from ipmp.sim.host import SimAddress, SimHost
from ipmp.sim.topology import load_topology, parse_topology

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

HME0_LL = "fe80::a00:20ff:feb9:19fa"
HME1_LL = "fe80::a00:20ff:feb9:1bfc"


def example(name: str, seed: int | None = None) -> SimHost:
    return SimHost(load_topology(EXAMPLES / f"{name}.toml"), seed)


def run(host: SimHost, actions: Sequence[Action], now: float = 0.0) -> None:
    """Carry out actions that must all succeed."""
    for action in actions:
        assert host.execute(action, now) == [ActionCompleted(now, action)]


def configure(host: SimHost, ifname: str, data: str, test: str, link_local: str = "") -> None:
    """Plumb ``ifname`` with a data address on unit 0 and a test address on unit 1."""
    actions: list[Action] = [
        PlumbInterface(ifname, "inet"),
        AddAddress(ifname, "inet", 0, data, 24, "192.168.85.255", True, False),
        AddAddress(ifname, "inet", 1, test, 24, "192.168.85.255", True, True),
    ]
    if link_local:
        actions += [
            PlumbInterface(ifname, "inet6"),
            AddAddress(ifname, "inet6", 0, link_local, 10, "", True, False),
        ]
    run(host, actions)


def active_active() -> SimHost:
    host = example("active-active")
    host.start(0.0)
    configure(host, "hme0", "192.168.85.19", "192.168.85.21", HME0_LL)
    configure(host, "hme1", "192.168.85.20", "192.168.85.22", HME1_LL)
    return host


def probe(
    ifname: str,
    target: str,
    seq: int = 1,
    source: str = "",
    family: Family = "inet",
    kind: int = PROBE_UNI,
) -> SendProbe:
    default_source = {"hme0": "192.168.85.21", "hme1": "192.168.85.22"}.get(ifname, "")
    return SendProbe(
        ifname=ifname,
        family=family,
        source=source or default_source,
        target=target,
        icmp_id=0x1102,
        seq=seq,
        timestamp_ms=1000 + seq,
        kind=kind,
    )


def replies(events: Sequence[Event]) -> list[ProbeReplyReceived]:
    return [e for e in events if isinstance(e, ProbeReplyReceived)]


TOPOLOGY = """
[host]
name = "lab"
seed = 7

[[link]]
name = "net0"
  [[link.neighbour]]
  name = "r1"
  role = "router"
  address = "192.168.85.1"
  address6 = "fe80::1"
  rtt_ms = 2.0
  [[link.neighbour]]
  name = "lossy"
  role = "host"
  address = "192.168.85.50"
  rtt_ms = 1.0
  loss = 0.3
  [[link.neighbour]]
  name = "jittery"
  role = "host"
  address = "192.168.85.51"
  address6 = "fe80::51"
  rtt_ms = 1.0
  jitter_ms = 5.0
  [[link.neighbour]]
  name = "quiet"
  role = "host"
  address = "192.168.85.52"
  answers_multicast = false

[[nic]]
name = "hme0"
mac = "8:0:20:b9:19:fa"
link = "net0"
"""


def lab(seed: int | None = None) -> SimHost:
    host = SimHost(parse_topology(TOPOLOGY, "lab.toml"), seed)
    host.start(0.0)
    configure(host, "hme0", "192.168.85.19", "192.168.85.21", HME0_LL)
    return host


# -------------------------------------------------------------- inventory


def test_start_reports_nics_then_routes() -> None:
    host = example("active-active")
    events = host.start(5.0)
    assert events == [
        NicAppeared(
            5.0, "hme0", 2, "8:0:20:b9:19:fa", "ether", 1500, True, ("arp", "ip", "hme"), "hme0", 0
        ),
        NicAppeared(
            5.0, "hme1", 3, "8:0:20:b9:1b:fc", "ether", 1500, True, ("arp", "ip", "hme"), "hme1", 0
        ),
        AddressesFound(5.0, (), ()),
        RoutesChanged(
            5.0,
            (
                Route("inet", "0.0.0.0", 0, "192.168.85.1"),
                Route("inet", "0.0.0.0", 0, "192.168.85.2"),
                Route("inet6", "::", 0, "fe80::1", "hme0"),
                Route("inet6", "::", 0, "fe80::2", "hme0"),
            ),
        ),
    ]
    assert host.next_due() is None
    assert host.addresses() == []


def test_start_puts_static_routes_first() -> None:
    text = (EXAMPLES / "active-active.toml").read_text()
    text = text.replace("# [[route]]", "[[route]]").replace("# destination", "destination")
    text = text.replace('# gateway = "192.168.85.137"', 'gateway = "192.168.85.137"')
    host = SimHost(parse_topology(text, "x.toml"))
    routes = host.start(0.0)[-1]
    assert isinstance(routes, RoutesChanged)
    assert routes.routes[0] == Route("inet", "192.168.85.137", 32, "192.168.85.137", "")
    assert len(routes.routes) == 5


def test_missing_at_boot_reports_only_present_nics() -> None:
    host = example("missing-at-boot")
    events = host.start(0.0)
    assert [e.name for e in events if isinstance(e, NicAppeared)] == ["hme1"]
    routes = events[-1]
    assert isinstance(routes, RoutesChanged)
    assert [r.ifname for r in routes.routes if r.family == "inet6"] == ["hme1", "hme1"]
    assert not host.is_present("hme0")
    failed = host.execute(PlumbInterface("hme0", "inet"), 1.0)
    assert failed == [
        ActionFailed(1.0, PlumbInterface("hme0", "inet"), "hme0: interface not present")
    ]


def test_vlan_nics_appear_with_their_device() -> None:
    host = example("vlans")
    appeared = [e for e in host.start(0.0) if isinstance(e, NicAppeared)]
    assert [(e.name, e.index, e.device, e.vlan) for e in appeared] == [
        ("bge0", 2, "bge0", 0),
        ("bge1", 3, "bge1", 0),
        ("bge1000", 4, "bge0", 1),
        ("bge1001", 5, "bge1", 1),
    ]
    assert appeared[2].mac == appeared[0].mac


def test_seed_defaults_to_the_topologys() -> None:
    def outcome(host: SimHost) -> list[int]:
        for seq in range(200):
            host.execute(probe("hme0", "192.168.85.50", seq), seq * 0.1)
        return [r.seq for r in replies(host.take_due(100.0))]

    assert outcome(lab()) == outcome(lab(seed=7))
    assert outcome(lab()) != outcome(lab(seed=8))


# ---------------------------------------------------------- address table


def test_address_table_holds_what_was_added() -> None:
    host = active_active()
    assert host.addresses() == [
        SimAddress("hme0", "inet", 0, "192.168.85.19", 24, True, False),
        SimAddress("hme0", "inet", 1, "192.168.85.21", 24, True, True),
        SimAddress("hme0", "inet6", 0, HME0_LL, 10, True, False),
        SimAddress("hme1", "inet", 0, "192.168.85.20", 24, True, False),
        SimAddress("hme1", "inet", 1, "192.168.85.22", 24, True, True),
        SimAddress("hme1", "inet6", 0, HME1_LL, 10, True, False),
    ]
    assert host.addresses()[1].label == "hme0:1"
    assert host.plumbed("hme0") == ("inet", "inet6")


def test_update_remove_unplumb() -> None:
    host = active_active()
    run(
        host,
        [
            UpdateAddress("hme0", "inet", 1, "192.168.85.21", 25, False, False),
            RemoveAddress("hme1", "inet", 1, "192.168.85.22", 24),
            UnplumbInterface("hme1", "inet6"),
        ],
    )
    assert SimAddress("hme0", "inet", 1, "192.168.85.21", 25, False, False) in host.addresses()
    assert [a.label for a in host.addresses() if a.ifname == "hme1"] == ["hme1"]
    assert host.plumbed("hme1") == ("inet",)


def test_failover_and_failback_moves() -> None:
    host = active_active()
    out = MoveAddress(
        "inet", "192.168.85.19", 24, "192.168.85.255", "hme0", 0, "hme1", 2, True, False
    )
    run(host, [out])
    assert [(a.label, a.address) for a in host.addresses() if a.family == "inet"] == [
        ("hme0:1", "192.168.85.21"),
        ("hme1", "192.168.85.20"),
        ("hme1:1", "192.168.85.22"),
        ("hme1:2", "192.168.85.19"),
    ]
    # A placeholder 0.0.0.0 on hme0 does not stop the address coming home.
    back = MoveAddress(
        "inet", "192.168.85.19", 24, "192.168.85.255", "hme1", 2, "hme0", 0, True, False
    )
    run(host, [AddAddress("hme0", "inet", 0, "0.0.0.0", 0, "", False, False), back])
    assert SimAddress("hme0", "inet", 0, "192.168.85.19", 24, True, False) in host.addresses()
    assert [a.label for a in host.addresses() if a.ifname == "hme1" and a.family == "inet"] == [
        "hme1",
        "hme1:1",
    ]


def test_addresses_are_compared_in_canonical_form() -> None:
    host = active_active()
    run(host, [AddAddress("hme0", "inet6", 1, "2001:DB8:0::19", 64, "", True, False)])
    assert SimAddress("hme0", "inet6", 1, "2001:db8::19", 64, True, False) in host.addresses()
    run(host, [RemoveAddress("hme0", "inet6", 1, "2001:db8::19", 64)])


BAD_ACTIONS: list[tuple[Action, str]] = [
    (PlumbInterface("hme0", "inet"), "hme0: already plumbed for inet"),
    (PlumbInterface("hme9", "inet"), "hme9: no such interface"),
    (UnplumbInterface("hme9", "inet6"), "hme9: no such interface"),
    (
        AddAddress("hme0", "inet", 1, "192.168.85.30", 24, "192.168.85.255", True, False),
        "hme0:1: logical interface in use",
    ),
    (
        AddAddress("hme0", "inet", 2, "192.168.85.21", 24, "192.168.85.255", True, False),
        "192.168.85.21: already configured on hme0:1",
    ),
    (AddAddress("hme0", "inet", 2, "2001:db8::1", 64, "", True, False), "not an inet address"),
    (AddAddress("hme0", "inet", 2, "192.168.85.30", 33, "", True, False), "bad prefix length"),
    (AddAddress("hme0", "inet", -1, "192.168.85.30", 24, "", True, False), "bad logical unit"),
    (
        AddAddress("hme0", "inet", 123456789012, "192.168.85.30", 24, "", True, False),
        "longer than 15 characters",
    ),
    (AddAddress("hme0", "inet6", 1, "2001:db8::1", 64, "x", True, False), "not a broadcast"),
    (RemoveAddress("hme0", "inet", 1, "192.168.85.22", 24), "hme0:1: holds 192.168.85.21"),
    (RemoveAddress("hme0", "inet", 1, "192.168.85.21", 25), "192.168.85.21/24, not"),
    (RemoveAddress("hme0", "inet", 5, "192.168.85.21", 24), "hme0:5: no such logical interface"),
    (UpdateAddress("hme1", "inet", 3, "192.168.85.22", 24, True, True), "no such logical"),
    (
        MoveAddress("inet", "192.168.85.19", 24, "", "hme0", 1, "hme1", 2, True, False),
        "hme0:1: holds 192.168.85.21, not 192.168.85.19",
    ),
    (
        MoveAddress("inet", "192.168.85.19", 24, "", "hme0", 0, "hme1", 1, True, False),
        "hme1:1: logical interface in use",
    ),
    (
        MoveAddress("inet6", HME0_LL, 10, "", "hme0", 0, "hme1", 0, True, False),
        "hme1: logical interface in use",
    ),
    (AnnounceAddress("hme7", "inet", "192.168.85.19"), "hme7: no such interface"),
]


@pytest.mark.parametrize(("action", "reason"), BAD_ACTIONS, ids=[r for _, r in BAD_ACTIONS])
def test_refused_actions_change_nothing(action: Action, reason: str) -> None:
    host = active_active()
    before = host.addresses()
    (event,) = host.execute(action, 3.0)
    assert isinstance(event, ActionFailed)
    assert (event.now, event.action) == (3.0, action)
    assert reason in event.reason
    assert host.addresses() == before


def test_actions_on_unplumbed_families_fail() -> None:
    host = example("active-active")
    host.start(0.0)
    run(host, [PlumbInterface("hme0", "inet")])
    refused: list[Action] = [
        AddAddress("hme0", "inet6", 0, HME0_LL, 10, "", True, False),
        UnplumbInterface("hme0", "inet6"),
        RemoveAddress("hme1", "inet", 0, "192.168.85.20", 24),
        SendProbe("hme0", "inet6", HME0_LL, "fe80::1", 1, 1, 0, PROBE_UNI),
    ]
    for action in refused:
        (event,) = host.execute(action, 0.0)
        assert isinstance(event, ActionFailed)
        assert "not plumbed for" in event.reason
    assert host.addresses() == []


def test_log_actions_are_refused() -> None:
    with pytest.raises(ValueError, match="daemon"):
        example("active-active").execute(Log(3, "hello"), 0.0)


def test_announcements_are_recorded() -> None:
    host = active_active()
    run(host, [AnnounceAddress("hme1", "inet", "192.168.85.19")], now=12.5)
    assert host.announcements == [(12.5, "hme1", "192.168.85.19")]


# ------------------------------------------------------------------ probes


def test_unicast_reply_arrives_after_the_rtt() -> None:
    host = lab()
    sent = probe("hme0", "192.168.85.1", seq=9)
    assert host.execute(sent, 10.0) == [ActionCompleted(10.0, sent)]
    assert host.next_due() == pytest.approx(10.002)
    assert host.take_due(10.0019) == []
    assert host.take_due(10.002) == [
        ProbeReplyReceived(
            now=pytest.approx(10.002),  # type: ignore[arg-type]
            ifname="hme0",
            family="inet",
            source="192.168.85.1",
            icmp_id=0x1102,
            seq=9,
            timestamp_ms=1009,
            kind=PROBE_UNI,
            length=16,
            received_at=pytest.approx(10.002),  # type: ignore[arg-type]
        )
    ]
    assert host.next_due() is None
    assert host.probes_sent == {("hme0", "inet"): 1}


def test_ipv6_probe_from_the_link_local_test_address() -> None:
    host = lab()
    run(host, [probe("hme0", "fe80::1", source=HME0_LL, family="inet6")], now=1.0)
    (reply,) = replies(host.take_due(2.0))
    assert (reply.family, reply.source) == ("inet6", "fe80::1")
    assert reply.now == pytest.approx(1.002)


def test_jitter_stays_within_bounds_and_never_goes_negative() -> None:
    host = lab()
    for seq in range(500):
        run(host, [probe("hme0", "192.168.85.51", seq)], now=float(seq))
    delays = [r.now - r.seq for r in replies(host.take_due(1000.0))]
    assert len(delays) == 500
    assert min(delays) >= 0.0
    assert max(delays) <= 0.006 + 1e-9
    # rtt 1 ms +- 5 ms: about 40% of the draws fall below zero and are clamped.
    assert 150 <= sum(d == 0.0 for d in delays) <= 250
    assert len({round(d, 9) for d in delays}) > 250


def test_unknown_target_stays_silent() -> None:
    host = lab()
    run(host, [probe("hme0", "192.168.85.99"), probe("hme0", "192.168.85.19")])
    assert host.next_due() is None
    assert host.probes_sent == {("hme0", "inet"): 2}


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (probe("hme0", "192.168.85.1", source="192.168.85.22"), "not an UP inet address on hme0"),
        (probe("hme0", "192.168.85.1", source="bogus"), "not an UP inet address"),
        (probe("hme0", "not-an-address"), "not-an-address: not an inet address"),
        (probe("hme3", "192.168.85.1", source="192.168.85.21"), "hme3: no such interface"),
    ],
)
def test_probe_refused(action: SendProbe, reason: str) -> None:
    host = lab()
    (event,) = host.execute(action, 0.0)
    assert isinstance(event, ActionFailed)
    assert reason in event.reason
    assert host.probes_sent == {}


def test_probe_from_a_down_test_address_is_refused() -> None:
    host = lab()
    run(host, [UpdateAddress("hme0", "inet", 1, "192.168.85.21", 24, False, True)])
    (event,) = host.execute(probe("hme0", "192.168.85.1"), 0.0)
    assert isinstance(event, ActionFailed)


def test_seeded_neighbour_loss() -> None:
    def answered(seed: int) -> list[int]:
        host = lab(seed)
        for seq in range(2000):
            run(host, [probe("hme0", "192.168.85.50", seq)], now=seq * 0.01)
        return [r.seq for r in replies(host.take_due(100.0))]

    first = answered(3)
    # 30% loss: 1400 expected, binomial sd ~20.5; 4 sd either side.
    assert 1318 <= len(first) <= 1482
    assert first == answered(3)
    assert first != answered(4)


def test_seeded_port_loss() -> None:
    def answered(seed: int) -> int:
        host = lab(seed)
        host.set_port_loss("hme0", 0.3, 0.0)
        for seq in range(2000):
            run(host, [probe("hme0", "192.168.85.1", seq)], now=seq * 0.01)
        return len(replies(host.take_due(100.0)))

    assert 1318 <= answered(11) <= 1482
    assert answered(11) == answered(11)
    host = lab()
    host.set_port_loss("hme0", 1.0, 0.0)
    run(host, [probe("hme0", "192.168.85.1")])
    assert host.take_due(1.0) == []
    with pytest.raises(IpmpError, match="fraction"):
        host.set_port_loss("hme0", 1.5, 0.0)


def test_multicast_is_answered_by_every_answering_neighbour() -> None:
    host = lab()
    run(host, [probe("hme0", "224.0.0.1", seq=4, kind=PROBE_MULTI)], now=1.0)
    got = replies(host.take_due(2.0))
    # "quiet" does not answer multicast; "lossy" may or may not, by the seed.
    sources = {r.source for r in got}
    assert (
        {"192.168.85.1", "192.168.85.51"}
        <= sources
        <= {
            "192.168.85.1",
            "192.168.85.50",
            "192.168.85.51",
        }
    )
    assert all(r.kind == PROBE_MULTI and r.seq == 4 and r.ifname == "hme0" for r in got)
    assert [r.now for r in got] == sorted(r.now for r in got)


def test_ipv6_multicast_replies_come_from_link_local_addresses() -> None:
    host = active_active()
    run(host, [probe("hme1", "ff02::1", source=HME1_LL, family="inet6", kind=PROBE_MULTI)])
    got = replies(host.take_due(1.0))
    assert sorted(r.source for r in got) == ["fe80::1", "fe80::2"]
    assert all(r.now == pytest.approx(0.0005) for r in got)


def test_down_neighbour_does_not_answer() -> None:
    host = active_active()
    host.set_neighbour("router1", False, 0.0)
    run(host, [probe("hme0", "192.168.85.1"), probe("hme0", "224.0.0.1", kind=PROBE_MULTI)])
    assert sorted(r.source for r in replies(host.take_due(1.0))) == [
        "192.168.85.137",
        "192.168.85.2",
    ]
    host.set_neighbour("192.168.85.1", True, 1.0)
    run(host, [probe("hme0", "192.168.85.1")], now=1.0)
    assert [r.source for r in replies(host.take_due(2.0))] == ["192.168.85.1"]
    with pytest.raises(IpmpError, match="no neighbour"):
        host.set_neighbour("router9", True, 2.0)


def test_silent_drop_keeps_the_carrier_but_loses_everything() -> None:
    host = active_active()
    run(host, [probe("hme0", "192.168.85.1", seq=1)], now=0.0)
    host.set_port_drop("hme0", True, 0.0001)  # the reply is still on the wire
    run(host, [probe("hme0", "192.168.85.1", seq=2)], now=1.0)
    assert host.take_due(5.0) == []  # no reply, and no link event either
    assert host.link_up("hme0")
    assert host.probes_sent[("hme0", "inet")] == 2
    run(host, [probe("hme1", "192.168.85.1")], now=5.0)
    assert len(replies(host.take_due(6.0))) == 1
    host.set_port_drop("hme0", False, 6.0)
    run(host, [probe("hme0", "192.168.85.1", seq=3)], now=6.0)
    assert [r.seq for r in replies(host.take_due(7.0))] == [3]


def test_replies_arrive_in_time_order_across_nics() -> None:
    host = lab()
    run(host, [probe("hme0", "192.168.85.1", seq=1)], now=0.0)  # arrives at 0.002
    run(host, [probe("hme0", "192.168.85.52", seq=2)], now=0.001)  # arrives at 0.0015
    assert [r.seq for r in replies(host.take_due(1.0))] == [2, 1]


# -------------------------------------------------------------------- faults


def test_cable_pull_on_a_device_takes_its_vlans_down() -> None:
    host = example("vlans")
    host.start(0.0)
    host.set_link("bge0", False, 4.0)
    assert host.next_due() == 4.0
    assert host.take_due(4.0) == [LinkWentDown(4.0, "bge0"), LinkWentDown(4.0, "bge1000")]
    assert not host.link_up("bge1000")
    assert host.link_up("bge1001")
    host.set_link("bge0", False, 5.0)  # already out: nothing new
    assert host.take_due(5.0) == []
    host.set_link("bge0", True, 6.0)
    assert host.take_due(6.0) == [LinkCameUp(6.0, "bge0"), LinkCameUp(6.0, "bge1000")]
    with pytest.raises(IpmpError, match="no cable of its own"):
        host.set_link("bge1000", False, 7.0)


def test_vlan_probes_reach_only_their_own_link() -> None:
    host = example("vlans")
    host.start(0.0)
    run(
        host,
        [
            PlumbInterface("bge1000", "inet"),
            AddAddress("bge1000", "inet", 1, "192.168.86.21", 24, "", True, True),
        ],
    )
    source = "192.168.86.21"
    for target in ["192.168.85.1", "192.168.86.1", "224.0.0.1"]:
        run(host, [probe("bge1000", target, source=source)])
    assert sorted(r.source for r in replies(host.take_due(1.0))) == [
        "192.168.86.1",
        "192.168.86.1",
        "192.168.86.2",
    ]
    # A fault on the VLAN alone leaves the untagged traffic of bge0 alone ...
    host.set_port_drop("bge1000", True, 1.0)
    run(host, [probe("bge1000", "192.168.86.1", source=source)], now=1.0)
    assert host.take_due(2.0) == []
    # ... while the device's cable takes the VLAN with it.
    host.set_port_drop("bge1000", False, 2.0)
    host.set_link("bge0", False, 2.0)
    host.take_due(2.0)
    run(host, [probe("bge1000", "192.168.86.1", source=source)], now=2.0)
    assert host.take_due(3.0) == []


def test_reply_in_flight_across_a_cable_flap_is_lost() -> None:
    host = active_active()
    run(host, [probe("hme0", "192.168.85.1")], now=0.0)
    host.set_link("hme0", False, 0.0001)
    host.set_link("hme0", True, 0.0002)
    assert host.take_due(1.0) == [LinkWentDown(0.0001, "hme0"), LinkCameUp(0.0002, "hme0")]


def test_probe_with_the_cable_out_leaves_but_is_never_answered() -> None:
    host = active_active()
    host.set_link("hme0", False, 0.0)
    host.take_due(0.0)
    sent = probe("hme0", "192.168.85.1")
    assert host.execute(sent, 1.0) == [ActionCompleted(1.0, sent)]
    assert host.take_due(2.0) == []
    assert host.ping("192.168.85.19") is None


def test_unplug_removes_the_nic_and_its_addresses() -> None:
    host = active_active()
    run(host, [probe("hme0", "192.168.85.1")], now=0.0)
    host.unplug("hme0", 0.0001)
    events = host.take_due(1.0)
    assert events[0] == NicRemoved(0.0001, "hme0")
    assert isinstance(events[1], RoutesChanged)
    # The IPv6 default routes through hme0 went with it; the reply was lost.
    assert [r.ifname for r in events[1].routes] == ["", ""]
    assert len(events) == 2
    assert {a.ifname for a in host.addresses()} == {"hme1"}
    assert not host.is_present("hme0")
    (failed,) = host.execute(probe("hme0", "192.168.85.1"), 1.0)
    assert isinstance(failed, ActionFailed)
    with pytest.raises(IpmpError, match="not present"):
        host.unplug("hme0", 1.0)

    host.plug("hme0", 2.0)
    events = host.take_due(2.0)
    assert events[0] == NicAppeared(
        2.0, "hme0", 2, "8:0:20:b9:19:fa", "ether", 1500, True, ("arp", "ip", "hme"), "hme0", 0
    )
    assert isinstance(events[1], RoutesChanged)
    assert [r.ifname for r in events[1].routes if r.family == "inet6"] == ["hme0", "hme0"]
    assert host.plumbed("hme0") == ()
    with pytest.raises(IpmpError, match="already present"):
        host.plug("hme0", 3.0)


def test_unplugging_a_device_removes_its_vlans() -> None:
    host = example("vlans")
    host.start(0.0)
    run(host, [PlumbInterface("bge1000", "inet")])
    host.unplug("bge0", 1.0)
    events = host.take_due(1.0)
    assert events[:2] == [NicRemoved(1.0, "bge1000"), NicRemoved(1.0, "bge0")]
    assert isinstance(events[2], RoutesChanged)
    assert {r.ifname for r in events[2].routes} == {""}
    with pytest.raises(IpmpError, match="plug it first"):
        host.plug("bge1000", 2.0)
    host.plug("bge0", 2.0)
    events = host.take_due(2.0)
    assert [e.name for e in events if isinstance(e, NicAppeared)] == ["bge0", "bge1000"]
    assert isinstance(events[-1], RoutesChanged)
    assert [(r.gateway, r.ifname) for r in events[-1].routes if r.family == "inet6"] == [
        ("fe80::1", "bge0"),
        ("fe80::2", "bge0"),
        ("fe80::1", "bge1000"),
        ("fe80::2", "bge1000"),
    ]
    assert host.plumbed("bge1000") == ()


def test_unplugging_a_vlan_alone() -> None:
    host = example("vlans")
    host.start(0.0)
    host.unplug("bge1001", 1.0)
    assert host.take_due(1.0) == [NicRemoved(1.0, "bge1001")]
    assert host.is_present("bge1")
    host.plug("bge1001", 2.0)
    (appeared,) = host.take_due(2.0)
    assert isinstance(appeared, NicAppeared) and appeared.vlan == 1


def test_missing_nic_plugged_later_takes_its_cable_state() -> None:
    host = example("missing-at-boot")
    host.start(0.0)
    host.set_link("hme0", False, 1.0)  # no event: it is not in the kernel
    assert host.take_due(1.0) == []
    host.plug("hme0", 2.0)
    (appeared,) = host.take_due(2.0)
    assert isinstance(appeared, NicAppeared) and not appeared.link_up


def test_route_changes() -> None:
    host = example("single-interface")
    boot = host.start(0.0)[-1]
    assert isinstance(boot, RoutesChanged)
    target = Route("inet", "192.168.85.137", 32, "192.168.85.137")
    host.add_route(target, 1.0)
    assert host.take_due(1.0) == [RoutesChanged(1.0, (*boot.routes, target))]
    with pytest.raises(IpmpError, match="already exists"):
        host.add_route(target, 1.5)
    host.remove_route(target, 2.0)
    assert host.take_due(2.0) == [RoutesChanged(2.0, boot.routes)]
    with pytest.raises(IpmpError, match="not in table"):
        host.remove_route(target, 2.5)
    host.set_routes([Route("inet6", "2001:DB8::", 32, "fe80::1", "hme0")], 3.0)
    assert host.take_due(3.0) == [
        RoutesChanged(3.0, (Route("inet6", "2001:db8::", 32, "fe80::1", "hme0"),))
    ]
    with pytest.raises(IpmpError):
        host.add_route(Route("inet", "10.0.0.0", 8, "fe80::1"), 4.0)


def test_unknown_names_are_refused() -> None:
    host = example("active-active")
    with pytest.raises(IpmpError, match="hme7: no such interface in the topology"):
        host.set_link("hme7", False, 0.0)
    with pytest.raises(IpmpError):
        host.unplug("hme7", 0.0)


# ------------------------------------------------------------------ queries


def test_ping_finds_the_nic_that_answers() -> None:
    host = active_active()
    assert host.ping("192.168.85.19") == "hme0"
    assert host.ping("192.168.85.22") == "hme1"  # deprecated addresses still answer
    assert host.ping(HME1_LL, "inet6") == "hme1"
    assert host.ping("192.168.85.77") is None
    run(host, [MoveAddress("inet", "192.168.85.19", 24, "", "hme0", 0, "hme1", 2, True, False)])
    assert host.ping("192.168.85.19") == "hme1"
    run(host, [UpdateAddress("hme1", "inet", 2, "192.168.85.19", 24, False, False)])
    assert host.ping("192.168.85.19") is None
    host.set_port_drop("hme1", True, 0.0)
    assert host.ping("192.168.85.20") is None
    with pytest.raises(IpmpError, match="not an IP address"):
        host.ping("hme0")
    with pytest.raises(IpmpError, match="not an inet6 address"):
        host.ping("192.168.85.20", "inet6")


def test_ten_minutes_of_fast_probing() -> None:
    # A probe every 14 ms (FDT 100 ms / 7): the heap keeps this linear.
    host = active_active()
    now, sent, received = 0.0, 0, 0
    while now < 600.0:
        target = "192.168.85.1" if sent % 2 else "192.168.85.2"
        host.execute(probe("hme0", target, seq=sent & 0xFFFF), now)
        sent += 1
        now = sent * 0.014
        received += len(host.take_due(now))
    assert host.probes_sent == {("hme0", "inet"): sent}
    assert received == sent == 42858
