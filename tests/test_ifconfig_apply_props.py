"""Property: any ifconfig command either applies cleanly or is refused with no change."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipmp.core.errors import IpmpError
from ipmp.sim.runner import VirtualRunner
from simtools import boot

NAMES = ["hme0", "hme1", "hme0:1", "hme1:1", "hme0:2", "hme9", "hme0:99", "-a"]
WORDS = [
    "plumb",
    "unplumb",
    "addif",
    "removeif",
    "group",
    "test",
    "other",
    "",
    "-failover",
    "failover",
    "deprecated",
    "-deprecated",
    "standby",
    "-standby",
    "up",
    "down",
    "netmask",
    "+",
    "broadcast",
    "inet",
    "inet6",
    "modlist",
    "modinsert",
    "modremove",
    "ipf@1",
    "mtu",
    "1500",
    "192.168.85.19",
    "192.168.85.21",
    "192.168.85.40",
    "192.168.86.5",
    "10.0.0.1",
    "2001:db8::7/64",
    "fe80::9",
    "255.255.255.0",
    "ffffff00",
    "junk",
    "hme0",
]


def snapshot(runner: VirtualRunner) -> tuple[str, str]:
    return repr(runner.engine.table), repr(sorted(map(repr, runner.host.addresses())))


def data_addresses(runner: VirtualRunner) -> Counter[tuple[str, str]]:
    return Counter(
        (li.family, li.address)
        for nic in runner.engine.table.nics.values()
        for li in nic.addresses()
        if li.is_data
    )


@pytest.mark.slow
@settings(max_examples=250, deadline=None)
@given(
    st.sampled_from(["active-active", "active-standby"]),
    st.sampled_from(NAMES),
    st.lists(st.sampled_from(WORDS), max_size=7),
)
def test_refused_commands_change_nothing(example: str, name: str, words: list[str]) -> None:
    runner = boot(example)
    before = snapshot(runner)
    try:
        runner.ifconfig([name, *words])
    except IpmpError as err:
        assert "\n" not in err.message
        assert snapshot(runner) == before
        return
    # Accepted: still no data address twice, and the kernel agrees with the table.
    assert all(count == 1 for count in data_addresses(runner).values())
    kernel = {(a.family, a.address) for a in runner.host.addresses()}
    table = {
        (li.family, li.address)
        for nic in runner.engine.table.nics.values()
        if nic.present
        for li in nic.addresses()
        if not li.placeholder and not li.unspecified
    }
    assert kernel == table
