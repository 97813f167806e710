"""The benchmark scripts run (``--smoke``) and report sane JSON (root only).

Each script builds its own namespace lab with a per-run prefix and removes
it.  The speed goals are not asserted here: they live in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest

from benchtools import BENCHMARKS, run_smoke, sane

pytestmark = [pytest.mark.root, pytest.mark.slow]  # each smoke runs a benchmark for seconds


def test_link_failover_smoke() -> None:
    data = run_smoke("link_failover", "--runs", "2")
    assert data["runs"] == 2 and data["unanswered_runs"] == 0
    sane(data["outage_ms"], 2, 5000)
    sane(data["floor_ms"], 2, 5000)
    assert all(r["moved_to"] == "eth1" for r in data["daemon_runs"])
    zoom, whole = json.loads(
        (BENCHMARKS / "results" / "link_failover-trace-smoke.json").read_text()
    )
    events = {label: at for at, label in zoom["events"]}
    # The monitor prints a moment after the kernel acts: the first answer may come first.
    carrier = events["eth0 carrier lost"]
    assert 0 < carrier < min(events["failover: on eth1"], events["answers again"])
    events = {label: at for at, label in whole["events"]}
    assert events["cable plugged"] < events["failback: on eth0"]
    assert_drawn("link_failover")


def test_mass_failover_smoke() -> None:
    data = run_smoke("mass_failover", "--addresses", "10", "--inet6", "10")
    assert data["addresses"] == 20 and data["incomplete_runs"] == 0
    sane(data["all_back_ms"], 1, 60_000)
    run = data["run_details"][0]
    assert run["not_back"] == 0 and run["last_unanswered_ms"] <= run["all_back_ms"]
    (trace,) = json.loads((BENCHMARKS / "results" / "mass_failover-trace-smoke.json").read_text())
    events = {label: at for at, label in trace["events"]}
    # Every event was seen, in the order it must happen in.
    order = ["cable pulled", "first address on eth1", "last address on eth1", "cable plugged"]
    assert all(events[label] is not None for label in order)
    assert [events[label] for label in order] == sorted(events[label] for label in order)
    assert sum(count for _, count in trace["bins"]) > 0
    assert_drawn("mass_failover")


def assert_drawn(name: str) -> None:
    """timeline.py turns the smoke trace into a PNG of the size it draws."""
    trace = BENCHMARKS / "results" / f"{name}-trace-smoke.json"
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "timeline.py"), "--smoke", str(trace)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BENCHMARKS,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    drawn = json.loads(result.stdout)["drawn"]
    assert drawn and all(png.startswith(name) for png in drawn)
    for png in drawn:
        head = (BENCHMARKS / "results" / png).read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", head[16:24]) == (1100, 462)  # 10 x 4.2 in at 110 dpi


def test_probe_detection_smoke() -> None:
    data = run_smoke("probe_detection")
    assert [f["fdt_ms"] for f in data["fdt"]] == [1000, 100]
    for fdt in data["fdt"]:
        for key in ("failed_ms", "reachable_ms", "failback_ms"):
            sane(fdt[key], 1, 20 * fdt["fdt_ms"] + 5000)
    traces = json.loads((BENCHMARKS / "results" / "probe_detection-trace-smoke.json").read_text())
    assert len(traces) == 2
    for trace in traces:
        # Fault, FAILED (a 5 ms poll: it may see the failover first), failover, repair, failback.
        fault, failed, failover, repair, failback = (at for at, _ in trace["events"])
        assert fault == 0 < min(failed, failover) and max(failed, failover) < repair < failback


def test_announce_cost_smoke() -> None:
    data = run_smoke("announce_cost")
    assert set(data["ms_per_frame"]) == {
        "eth_p_arp_per_frame",
        "proto_0_per_frame",
        "one_socket_per_frame",
    }
    sane(data["ms_per_frame"]["eth_p_arp_per_frame"], 10, 5000)
