"""The spoofing benchmark's smoke: one run per variant at FDT 1 s.

Slack: ``failed_ms`` is measured from just before the fault is loaded, so it
includes loading the nftables fault (``fault_setup_ms``, a few ms to tens of
ms), the 5 ms polling of the snapshot and its control-socket round trip; and
the smoke shares two cores with whatever else the suite runs.  200 ms (1.4
probe intervals at FDT 1 s) covers that; by design the rule fires within
about 5.5 probe intervals (786 ms) of the fault.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchtools import run_smoke

pytestmark = pytest.mark.root

SLACK_MS = 200


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[str, Any]]:
    data = run_smoke("spoofing", timeout=150)
    assert [f["fdt_ms"] for f in data["fdt"]] == [1000]
    details = data["fdt"][0]["run_details"]
    assert [r["variant"] for r in details] == ["none", "id", "seq", "timestamp"]
    return {r["variant"]: r for r in details}


def arrived(run: dict[str, Any]) -> int:
    return sum(run["forged_arrived_at_host_nic"].values())


def test_forgeries_reach_the_host_nic(runs: dict[str, dict[str, Any]]) -> None:
    # The control forges nothing, and the host-side counter counts nothing.
    assert runs["none"]["forged_sent"] == {"inet": 0, "inet6": 0}
    assert arrived(runs["none"]) == 0
    for variant in ("id", "seq", "timestamp"):
        run = runs[variant]
        assert run["probes_seen_by_spoofer"]["inet"] > 0
        assert run["probes_seen_by_spoofer"]["inet6"] > 0
        assert run["forged_arrived_at_host_nic"]["inet"] > 0
        assert run["forged_arrived_at_host_nic"]["inet6"] > 0
        switch = run["switch_counters"]
        assert switch["forged_v4_forwarded_to_host"] > 0
        assert switch["forged_v6_forwarded_to_host"] > 0


def test_wrong_sequences_are_read_and_refused(runs: dict[str, dict[str, Any]]) -> None:
    counters = runs["seq"]["daemon_counters_during_fault"]
    assert counters["eth0 inet"]["ambiguous"] > 0 and counters["eth0 inet6"]["ambiguous"] > 0
    assert sum(runs["seq"]["daemon_refused_log_lines"].values()) > 0


@pytest.mark.parametrize("variant", ["none", "id", "seq", "timestamp"])
def test_failure_detected_within_fdt(runs: dict[str, dict[str, Any]], variant: str) -> None:
    run = runs[variant]
    assert run["failed_ms"] is not None, f"{variant}: eth0 never failed"
    assert run["failed_ms"] <= 1000 + SLACK_MS
    assert run["failure_logged"] == 1


def test_wrong_timestamps_are_read_and_refused(runs: dict[str, dict[str, Any]]) -> None:
    # The forgeries with the right sequence but the wrong stamp were read and
    # refused as fake replies (the daemon compares the echoed stamp).
    counters = runs["timestamp"]["daemon_counters_during_fault"]
    assert counters["eth0 inet"]["ambiguous"] > 0 and counters["eth0 inet6"]["ambiguous"] > 0
