"""The stack contract on the simulated host (the Linux run is in test_linux_real.py)."""

from __future__ import annotations

from ipmp.core.events import Route
from ipmp.sim.host import SimHost
from ipmp.sim.topology import parse_topology
from stack_contract import Harness, Setup, check_contract, check_other_writers, run_sim

TOPOLOGY = """
[host]
name = "contract"
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "r1"
  role = "router"
  address = "192.0.2.1"
  default_route = false
[[nic]]
name = "eth0"
mac = "2:0:0:0:0:1"
link = "net0"
[[nic]]
name = "eth1"
mac = "2:0:0:0:0:2"
link = "net0"
"""

SETUP = Setup("eth0", "eth1", "2:0:0:0:0:1", "192.0.2.10", 24, "192.0.2.20", "192.0.2.1", "")


def test_simulated_host_keeps_the_stack_contract() -> None:
    host = SimHost(parse_topology(TOPOLOGY, "<contract>"))

    def kernel() -> set[tuple[str, str]]:
        return {(a.ifname, a.address) for a in host.addresses() if a.up}

    def add_default_route() -> None:
        host.add_route(Route("inet", "0.0.0.0", 0, "192.0.2.1"), 0.0)

    def writer(op: str, ifname: str, address: str, prefixlen: int) -> None:
        if op == "add":
            host.other_writer_add(ifname, "inet", address, prefixlen, 0.0)
        else:
            host.other_writer_delete(ifname, "inet", address, 0.0)

    async def body(h: Harness) -> None:
        await check_contract(h, SETUP, kernel, add_default_route)
        await check_other_writers(h, SETUP, kernel, writer)

    run_sim(body, host)
