"""The soak benchmark's smoke: 60 s of random faults, the invariant and RSS after each."""

from __future__ import annotations

from typing import Any

import pytest

from benchtools import run_smoke

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return run_smoke("soak", timeout=180)


def test_faults_were_injected_and_checked(data: dict[str, Any]) -> None:
    assert data["requested_s"] == 60
    assert data["soak_s"] >= 60
    assert data["faults"] >= 5
    assert data["faults"] == sum(data["faults_by_kind"].values()) == len(data["fault_details"])
    assert data["checks"] == data["faults"]
    assert data["violations"] == 0, data["violation_details"]
    assert data["daemon_restarts"] == 0
    assert data["log_error_lines"] == 0


def test_rss_is_sane(data: dict[str, Any]) -> None:
    rss = data["rss"]
    assert rss["samples"] == data["faults"] + 1
    assert 5 < rss["start_mb"] <= rss["max_mb"] < 200
    assert rss["end_mb"] <= rss["max_mb"]
    assert rss["growth_mb"] == pytest.approx(rss["end_mb"] - rss["start_mb"], abs=0.02)
    # A minute of faults must not grow the daemon by half.
    assert rss["growth_pct"] < 50
