"""The crash-safety benchmark's smoke: 5 SIGKILLs during failovers/failbacks of 51 addresses.

Each restart must hold the invariant, and so must the move the restarted
daemon makes next (the follow-up, not killed).
"""

from __future__ import annotations

from typing import Any

import pytest

from benchtools import run_smoke

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return run_smoke("crash_safety", timeout=240)


def test_every_kill_was_done_and_held_the_invariant(data: dict[str, Any]) -> None:
    assert data["kills_requested"] == 5
    assert data["kills"] == 5
    assert len(data["kill_details"]) == 5
    assert data["violations"] == 0, data["violation_details"]
    assert data["restarts_invariant_held"] == 5
    # After each restart the daemon made the next move, not killed, and it held too.
    assert data["follow_ups"] == data["follow_ups_held"] == 5
    assert data["log_error_lines"] == 0
    assert data["restored_from_state"] == 5
    assert data["lab_rebuilds"] == 0


def test_kills_alternate_phases_and_land_in_the_window(data: dict[str, Any]) -> None:
    details = data["kill_details"]
    assert [d["phase"] for d in details] == ["failover", "failback"] * 2 + ["failover"]
    windows = data["calibration"]["window_ms"]
    assert 0 < windows["failover"] < 1000 and 0 <= windows["failback"] < 1000
    pids = [d["pid"] for d in details]
    assert len(set(pids)) == 5  # each kill hit a new daemon
    for d in details:
        assert 0 <= d["delay_ms"] <= windows[d["phase"]]
        assert d["kill_after_anchor_ms"] >= d["delay_ms"]
        assert d["moment"] in ("not started", "on both", "partial", "done")
        assert sum(d["at_kill"].values()) == data["moving_addresses"] == 51
        assert d["settle_s"] > 0 and d["invariant_wait_s"] >= 0
        follow = d["follow_up"]
        assert follow["phase"] != d["phase"]
        assert follow["adds"] == follow["deletes"] == 51  # every address moved, once
