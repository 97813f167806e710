"""Failure and repair detection on a virtual clock (guide: IPMP Failure Detection
and Recovery Features; facts §1, §3)."""

from __future__ import annotations

import itertools

import pytest

from ipmp.core.actions import Action, SendProbe
from ipmp.core.constants import ICMP_ECHO_LENGTH, PROBE_UNI
from ipmp.core.events import Event, ProbeReplyReceived
from simtools import RecordingHost, boot, logged, settle, where


# At 100 ms the probes are 14 ms apart: a second of CPU per seed.
@pytest.mark.parametrize("fdt_ms", [10000, 1000, pytest.param(100, marks=pytest.mark.slow)])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_probe_failure_declared_within_fdt(fdt_ms: int, seed: int) -> None:
    runner = settle(boot("active-active", seed=seed, failure_detection_time_ms=fdt_ms))
    runner.run_for(seed * 0.037 * fdt_ms / 1000)  # vary the phase of the fault
    start = runner.now
    runner.apply(lambda host, now: host.set_port_drop("hme0", True, now))
    failed_at = runner.run_until_true(
        lambda: runner.engine.table.nics["hme0"].failed, 3 * fdt_ms / 1000
    )
    assert failed_at is not None
    assert failed_at - start <= fdt_ms / 1000
    assert where(runner, "192.168.85.19") == "hme1:2"
    assert runner.host.ping("192.168.85.19") == "hme1"


def test_forged_replies_with_a_wrong_timestamp_do_not_hide_a_failure() -> None:
    """Right id, sequence and source, but not the time we stamped: not an answer."""
    runner = settle(boot("active-active", failure_detection_time_ms=1000))
    forged: list[ProbeReplyReceived] = []
    original = runner.host.execute

    def execute(action: Action, now: float) -> list[Event]:
        events = original(action, now)
        if isinstance(action, SendProbe) and action.ifname == "hme0" and action.kind == PROBE_UNI:
            reply = ProbeReplyReceived(
                now,
                action.ifname,
                action.family,
                action.target,
                action.icmp_id,
                action.seq,
                (action.timestamp_ms + 7) & 0xFFFFFFFF,
                action.kind,
                ICMP_ECHO_LENGTH,
            )
            forged.append(reply)
            events = [*events, reply]
        return events

    runner.host.execute = execute  # type: ignore[method-assign]
    start = runner.now
    runner.apply(lambda host, now: host.set_port_drop("hme0", True, now))
    failed_at = runner.run_until_true(lambda: runner.engine.table.nics["hme0"].failed, 3.0)
    assert failed_at is not None and failed_at - start <= 1.0
    assert len(forged) >= 10  # both families kept being "answered" by the forger
    assert logged(runner, "Fake probe reply")


def test_failure_needs_five_losses_not_fewer() -> None:
    runner = settle(boot("active-active"))
    rec = RecordingHost(runner)
    start = runner.now
    runner.apply(lambda host, now: host.set_port_drop("hme0", True, now))
    runner.run_until_true(lambda: runner.engine.table.nics["hme0"].failed, 30)
    lost = [p for t, p in rec.sent if p.ifname == "hme0" and p.kind == PROBE_UNI and t >= start]
    # hme0 probes on IPv4 and IPv6: each family needs 5 unanswered probes.
    for family in ("inet", "inet6"):
        assert len([p for p in lost if p.family == family]) >= 5


def test_repair_after_ten_answered_probes() -> None:
    runner = settle(boot("active-active"))
    runner.apply(lambda host, now: host.set_port_drop("hme0", True, now))
    assert runner.run_until_true(lambda: runner.engine.table.nics["hme0"].failed, 30) is not None
    runner.run_for(5)
    rec = RecordingHost(runner)
    start = runner.now
    runner.apply(lambda host, now: host.set_port_drop("hme0", False, now))
    repaired = runner.run_until_true(lambda: not runner.engine.table.nics["hme0"].failed, 60)
    assert repaired is not None
    answered = [p for t, p in rec.sent if p.ifname == "hme0" and p.kind == PROBE_UNI and t >= start]
    per_family = {fam: len([p for p in answered if p.family == fam]) for fam in ("inet", "inet6")}
    assert max(per_family.values()) >= 10
    # guide: "The minimum repair detection time is twice the failure detection
    # time" -- about 10 probe intervals of FDT/7.
    assert 9 * 10.0 / 7 * 0.5 <= repaired - start <= 2 * 10.0 + 1
    assert where(runner, "192.168.85.19") == "hme0"
    assert logged(runner, "Successfully failed back to NIC hme0")


def test_probe_jitter_bounds() -> None:
    runner = boot("active-active", seed=7)
    rec = RecordingHost(runner)
    runner.run_for(600)
    interval = 10.0 / 7  # 10000 // 7 ms
    times = [
        t for t, p in rec.sent if p.ifname == "hme0" and p.family == "inet" and p.kind == PROBE_UNI
    ]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) > 300
    # Each send lies in the second half of its interval: gaps within 0.5I..1.5I.
    assert min(gaps) >= 0.5 * interval * 0.999
    assert max(gaps) <= 1.5 * interval * 1.001
    assert abs(sum(gaps) / len(gaps) - interval) < 0.02 * interval


def test_link_failure_is_immediate_and_repair_waits_for_probes() -> None:
    runner = settle(boot("active-active"))
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    assert runner.engine.table.nics["hme0"].failed
    assert logged(runner, "The link has gone down on hme0") == [runner.now]
    assert where(runner, "192.168.85.19") == "hme1:2"
    start = runner.now
    runner.apply(lambda host, now: host.set_link("hme0", True, now))
    assert logged(runner, "The link has come up on hme0")
    # Test addresses exist: RUNNING alone is not enough, 10 probes are needed.
    assert runner.engine.table.nics["hme0"].failed
    repaired = runner.run_until_true(lambda: not runner.engine.table.nics["hme0"].failed, 60)
    assert repaired is not None and repaired - start > 5
    assert where(runner, "192.168.85.19") == "hme0"


LINK_ONLY = """
[host]
name = "h"
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "r1"
  role = "router"
  address = "192.168.85.1"
[[nic]]
name = "hme0"
mac = "8:0:20:0:0:1"
link = "net0"
hostname = "192.168.85.19 netmask + broadcast + group test up"
[[nic]]
name = "hme1"
mac = "8:0:20:0:0:2"
link = "net0"
hostname = "192.168.85.20 netmask + broadcast + group test up"
"""


def test_link_only_interfaces_repair_on_link_up_and_flaps_are_damped() -> None:
    from simtools import boot_text

    runner = boot_text(LINK_ONLY)
    runner.run_for(25)
    assert logged(
        runner,
        "No test address configured on interface hme0; "
        "disabling probe-based failure detection on it",
    )
    for _ in range(2):
        runner.apply(lambda host, now: host.set_link("hme0", False, now))
        runner.run_for(1)
        runner.apply(lambda host, now: host.set_link("hme0", True, now))
        assert not runner.engine.table.nics["hme0"].failed  # repaired at once
        runner.run_for(1)
    # The third link-up within a minute: failback is held back.
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    runner.run_for(1)
    runner.apply(lambda host, now: host.set_link("hme0", True, now))
    assert logged(
        runner,
        "The link has come up on hme0 more than 2 times in the last minute; "
        "disabling failback until it stabilizes",
    )
    assert runner.engine.table.nics["hme0"].failed
    assert where(runner, "192.168.85.19") == "hme1:1"
    done = runner.run_until_true(lambda: not runner.engine.table.nics["hme0"].failed, 120)
    assert done is not None
    assert where(runner, "192.168.85.19") == "hme0"


def test_netrtt_stays_within_zero_and_rtt_whatever_the_kernels_stamp() -> None:
    """The stamp crosses the wall clock: a clock step must not give a NETRTT outside [0, RTT]."""
    import random as _random

    from ipmp.core.events import ProbeReplyReceived
    from ipmp.core.probing import ProbeInstance, Target

    inst = ProbeInstance("hme0", "inet", icmp_id=7, created_at=0.0)
    inst.test_address = "192.0.2.21"
    inst.targets = [Target("192.0.2.1", router=True, state_since=0.0)]
    inst.targets_are_routers = True
    for stamp in (0.5, 99.0):  # before the send; after the daemon's handling
        inst.next_send = sent = inst.base = 10.0 + stamp
        (probe,) = inst.send_due(sent, 1.0, _random.Random(1), "192.0.2.21")
        assert isinstance(probe, SendProbe)
        reply = ProbeReplyReceived(
            sent + 0.002,
            "hme0",
            "inet",
            "192.0.2.1",
            7,
            probe.seq,
            probe.timestamp_ms,
            PROBE_UNI,
            16,
            stamp,
        )
        assert inst.receive(reply, 10.0).accepted
        settled = inst.settled[-1]
        assert settled.rtt == pytest.approx(0.002)
        assert settled.net_rtt is not None and 0.0 <= settled.net_rtt <= settled.rtt
