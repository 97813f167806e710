"""Routes follow the group (issue 10 item 1): the engine against the simulated host.

A route bound to a member (as every Linux route is: ``default via R dev
ens3``) moves to a healthy member when its member fails, fails back with
the addresses, stays put in a group failure, and keeps its home across a
restart.  /etc/defaultrouter is read at boot.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ipmp.core.actions import MoveRoute
from ipmp.core.engine import Engine
from ipmp.core.errors import IpmpError
from ipmp.core.events import Route
from ipmp.core.persist import table_from_state
from ipmp.core.routes import RouteFollower, parse_defaultrouter
from ipmp.rootfs import read_root
from ipmp.sim.examples import example_path
from ipmp.sim.runner import VirtualRunner
from simtools import boot, logged, settle, where

OFF_LINK = Route("inet", "203.0.113.0", 24, "192.168.85.1", "hme0")
DEVICE = Route("inet", "198.18.0.0", 15, "", "hme0")
HOST_ROUTE = Route("inet", "192.168.85.137", 32, "192.168.85.137", "hme0")


def _bound(runner: VirtualRunner, route: Route) -> set[str]:
    """The members ``route`` is bound to in the host's table."""
    return {
        r.ifname
        for r in runner.host.routes
        if (r.family, r.destination, r.prefixlen, r.gateway)
        == (route.family, route.destination, route.prefixlen, route.gateway)
    }


def _v6_default(runner: VirtualRunner) -> set[str]:
    return {r.ifname for r in runner.host.routes if r.family == "inet6" and r.prefixlen == 0}


def _with_routes(*routes: Route) -> VirtualRunner:
    runner = settle(boot("active-active"))
    for route in routes:
        runner.apply(lambda host, now, r=route: host.add_route(r, now))
    runner.run_for(1)
    return runner


def test_routes_of_a_failed_member_move_and_come_back_on_repair() -> None:
    runner = _with_routes(OFF_LINK, DEVICE, HOST_ROUTE)
    assert _v6_default(runner) == {"hme0"}  # the sim binds the IPv6 default to hme0
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    runner.run_for(1)
    assert where(runner, "192.168.85.19") == "hme1:2"
    for route in (OFF_LINK, DEVICE, HOST_ROUTE):
        assert _bound(runner, route) == {"hme1"}, route
    assert _v6_default(runner) == {"hme1"}
    runner.apply(lambda host, now: host.set_link("hme0", True, now))
    runner.run_for(30)
    assert where(runner, "192.168.85.19") == "hme0"
    for route in (OFF_LINK, DEVICE, HOST_ROUTE):
        assert _bound(runner, route) == {"hme0"}, route
    assert _v6_default(runner) == {"hme0"}


def test_routes_move_in_the_same_step_as_the_addresses() -> None:
    runner = _with_routes(OFF_LINK)
    steps: list[list[str]] = []
    original = runner.driver.execute

    def execute(actions: list, now: float) -> None:  # type: ignore[type-arg]
        steps.append([type(a).__name__ for a in actions])
        original(actions, now)

    runner.driver.execute = execute  # type: ignore[method-assign]
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    runner.run_for(1)
    failover = next(s for s in steps if "MoveAddress" in s)
    assert "MoveRoute" in failover
    assert failover.index("MoveRoute") > max(
        i for i, name in enumerate(failover) if name == "MoveAddress"
    )


def test_probe_failure_moves_routes_too() -> None:
    runner = _with_routes(OFF_LINK)
    runner.apply(lambda host, now: host.set_port_drop("hme0", True, now))
    runner.run_for(30)
    assert where(runner, "192.168.85.19") == "hme1:2"
    assert _bound(runner, OFF_LINK) == {"hme1"}
    runner.apply(lambda host, now: host.set_port_drop("hme0", False, now))
    runner.run_for(60)
    assert where(runner, "192.168.85.19") == "hme0"
    assert _bound(runner, OFF_LINK) == {"hme0"}


def test_a_route_added_while_its_member_is_failed_moves_at_once() -> None:
    runner = settle(boot("active-active"))
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    runner.run_for(1)
    runner.apply(lambda host, now: host.add_route(OFF_LINK, now))
    runner.run_for(1)
    assert _bound(runner, OFF_LINK) == {"hme1"}
    runner.apply(lambda host, now: host.set_link("hme0", True, now))
    runner.run_for(30)
    assert _bound(runner, OFF_LINK) == {"hme0"}


def test_routes_stay_in_a_group_failure() -> None:
    runner = _with_routes(OFF_LINK)
    runner.apply(lambda host, now: host.set_link("hme1", False, now))
    runner.run_for(1)
    assert _bound(runner, OFF_LINK) == {"hme0"}
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    runner.run_for(1)
    assert _bound(runner, OFF_LINK) == {"hme0"}  # no healthy member: nothing moves
    runner.apply(lambda host, now: host.set_link("hme1", True, now))
    runner.run_for(30)
    assert _bound(runner, OFF_LINK) == {"hme1"}  # hme1 repaired first: it takes them


def test_offline_and_online_move_routes() -> None:
    runner = _with_routes(OFF_LINK)
    runner.execute(runner.engine.offline("hme0", runner.now))
    runner.run_for(1)
    assert _bound(runner, OFF_LINK) == {"hme1"}
    runner.execute(runner.engine.online("hme0", runner.now))
    runner.run_for(30)
    assert _bound(runner, OFF_LINK) == {"hme0"}


def test_kernel_routes_are_never_moved() -> None:
    own = Route("inet", "192.168.85.0", 24, "", "hme0", automatic=True)
    inside = Route("inet", "192.168.85.0", 25, "", "hme0")  # a spreading half
    runner = _with_routes(own, inside)
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    runner.run_for(1)
    assert _bound(runner, own) == {"hme0"}
    assert _bound(runner, inside) == {"hme0"}


def test_a_restart_brings_displaced_routes_home() -> None:
    runner = _with_routes(OFF_LINK)
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    runner.run_for(1)
    assert _bound(runner, OFF_LINK) == {"hme1"}
    state = runner.engine.export_state()
    assert {"at": "hme1", "home": "hme0"}.items() <= state["routes"][0].items()
    # A new daemon on the same host: the state file says where the route lives.
    engine = Engine(runner.engine.config, random.Random(2))
    restarted = VirtualRunner(runner.host, engine, now=runner.now)
    restarted.feed(runner.host.start(restarted.now))
    files = list(runner.engine.files.values())
    restarted.execute(engine.restore(table_from_state(state), files, restarted.now))
    restarted.run_for(1)
    assert _bound(restarted, OFF_LINK) == {"hme1"}
    restarted.apply(lambda host, now: host.set_link("hme0", True, now))
    restarted.run_for(30)
    assert _bound(restarted, OFF_LINK) == {"hme0"}


def test_bad_saved_routes_are_refused_naming_the_field() -> None:
    state = settle(boot("active-active")).engine.export_state()
    state["routes"] = [{"family": "inet", "destination": 1}]
    with pytest.raises(IpmpError, match=r"routes\[0\]\.destination"):
        table_from_state(state)


def test_a_refused_move_is_not_repeated_until_the_table_changes() -> None:
    follower = RouteFollower()
    runner = settle(boot("active-active"))
    table = runner.engine.table
    follower.observe([OFF_LINK])
    table.nics["hme0"].failed = True
    (move,) = follower.plan(table)
    assert isinstance(move, MoveRoute) and move.to_if == "hme1"
    follower.outcome(move, ok=False)
    assert follower.plan(table) == []
    follower.observe([OFF_LINK])
    assert [type(a) for a in follower.plan(table)][:1] == [MoveRoute]


def test_defaultrouter_lines() -> None:
    hosts = {"gw": "192.168.85.1"}
    parsed = parse_defaultrouter(
        "# routers\n192.168.85.2\ngw  # by name\nnosuch\n1.2.3.4 5.6.7.8\n2001:db8::1\n",
        hosts.get,
    )
    assert parsed.routers == (
        ("inet", "192.168.85.2"),
        ("inet", "192.168.85.1"),
        ("inet6", "2001:db8::1"),
    )
    assert [m.message for m in parsed.messages] == [
        "/etc/defaultrouter: line 4: 'nosuch' is neither an address nor a name in "
        "/etc/inet/hosts; skipped",
        "/etc/defaultrouter: line 5: expected one router per line, got '1.2.3.4 5.6.7.8'; skipped",
    ]


def test_defaultrouter_is_installed_at_boot_on_the_routers_member(tmp_path: Path) -> None:
    root = tmp_path
    (root / "etc" / "inet").mkdir(parents=True)
    (root / "etc" / "inet" / "hosts").write_text("192.168.85.137 gw137\n")
    (root / "etc" / "defaultrouter").write_text("gw137\nbogus\n")
    config = read_root(root)
    assert config.defaultrouters == (("inet", "192.168.85.137"),)
    assert any("etc/defaultrouter: line 2" in m.message for m in config.messages)
    runner = VirtualRunner.from_root(example_path("active-active"), root, seed=1)
    assert logged(runner, "/etc/defaultrouter: line 2")
    runner.run_for(1)
    assert _bound(runner, Route("inet", "0.0.0.0", 0, "192.168.85.137")) >= {"hme0"}
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    runner.run_for(1)
    assert "hme0" not in _bound(runner, Route("inet", "0.0.0.0", 0, "192.168.85.137"))


def test_offlink_peers_in_a_topology() -> None:
    from ipmp.sim.topology import load_topology, parse_topology

    topo = load_topology(example_path("lab-offlink"))
    gw = next(n for link in topo.links for n in link.neighbours if n.name == "gw")
    assert gw.global6 == "2001:db8:1::1"
    assert [(p.name, p.address, p.address6) for p in gw.offlink] == [
        ("peer", "203.0.113.10", "2001:db8:2::10")
    ]
    bad = """
[host]
name = "h"
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "h1"
  role = "host"
  address = "192.0.2.5"
    [[link.neighbour.offlink]]
    name = "p"
    address = "203.0.113.10"
"""
    with pytest.raises(IpmpError, match="only a router has peers behind it"):
        parse_topology(bad, "<t>")
    with pytest.raises(IpmpError, match="global6"):
        parse_topology(
            bad.replace('role = "host"', 'role = "router"\n  global6 = "fe80::9"'), "<t>"
        )


def test_a_report_older_than_a_move_does_not_move_the_route_again() -> None:
    # The simulated host queues one report per move: the first one still
    # shows the second IPv6 default route on hme0, already moved meanwhile.
    runner = settle(boot("active-active"))
    moves: list[MoveRoute] = []
    original = runner.engine.handle

    def handle(event):  # type: ignore[no-untyped-def]
        actions = original(event)
        moves.extend(a for a in actions if isinstance(a, MoveRoute))
        return actions

    runner.engine.handle = handle  # type: ignore[method-assign]
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    runner.run_for(1)
    assert sorted(m.gateway for m in moves) == ["fe80::1", "fe80::2"]
    assert _v6_default(runner) == {"hme1"}
    runner.apply(lambda host, now: host.set_link("hme0", True, now))
    runner.run_for(30)
    assert _v6_default(runner) == {"hme0"}
    assert len(moves) == 4
