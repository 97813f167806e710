"""The benchmark scripts run (``--smoke``) and report sane JSON (root only).

Each script builds its own namespace lab with a per-run prefix and removes
it.  The speed goals are not asserted here: they live in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.root

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_smoke(name: str, *extra: str) -> dict[str, Any]:
    if os.geteuid() != 0:
        pytest.skip("the benchmarks build network namespaces: needs root")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), "--smoke", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BENCHMARKS,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(data, dict)
    assert data["benchmark"] == name and data["mode"] == "smoke"
    written = json.loads((BENCHMARKS / "results" / f"{name}-smoke.json").read_text())
    assert written == data
    assert set(data["machine"]) == {"nproc", "kernel", "python", "date"}
    return data


def sane(summary: dict[str, Any], n: int, upper_ms: float) -> None:
    assert summary["n"] == n
    assert 0 <= summary["min"] <= summary["median"] <= summary["p99"] <= summary["max"] < upper_ms


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
