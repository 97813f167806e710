"""The benchmark scripts run (``--smoke``) and report sane JSON (root only).

Each script builds its own namespace lab with a per-run prefix and removes
it.  The speed goals are not asserted here: they live in BENCHMARKS.md.
"""

from __future__ import annotations

import pytest

from benchtools import run_smoke, sane

pytestmark = pytest.mark.root


def test_link_failover_smoke() -> None:
    data = run_smoke("link_failover", "--runs", "2")
    assert data["runs"] == 2 and data["unanswered_runs"] == 0
    sane(data["outage_ms"], 2, 5000)
    sane(data["floor_ms"], 2, 5000)
    assert all(r["moved_to"] == "eth1" for r in data["daemon_runs"])


def test_mass_failover_smoke() -> None:
    data = run_smoke("mass_failover", "--addresses", "10")
    assert data["addresses"] == 10 and data["incomplete_runs"] == 0
    sane(data["all_back_ms"], 1, 60_000)
    assert data["run_details"][0]["on_eth1_after"] == 10


def test_probe_detection_smoke() -> None:
    data = run_smoke("probe_detection")
    assert [f["fdt_ms"] for f in data["fdt"]] == [1000, 100]
    for fdt in data["fdt"]:
        for key in ("failed_ms", "reachable_ms", "failback_ms"):
            sane(fdt[key], 1, 20 * fdt["fdt_ms"] + 5000)


def test_announce_cost_smoke() -> None:
    data = run_smoke("announce_cost")
    assert set(data["ms_per_frame"]) == {
        "eth_p_arp_per_frame",
        "proto_0_per_frame",
        "one_socket_per_frame",
    }
    sane(data["ms_per_frame"]["eth_p_arp_per_frame"], 10, 5000)
