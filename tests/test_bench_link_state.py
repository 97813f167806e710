"""The link-state benchmark's smoke: two runs of each way a link goes away.

Whether the move is within the goal is the benchmark's figure, not asserted
here (the smoke shares two cores with the rest of the suite).  What is
asserted: every run saw the link event and the move in the monitor, in that
order, the daemon logged each link failure, and the figures are sane.
"""

from __future__ import annotations

import pytest

from benchtools import run_smoke, sane

pytestmark = pytest.mark.root


def test_link_state_smoke() -> None:
    data = run_smoke("link_state", timeout=180)
    assert data["runs_per_way"] == 2
    assert set(data["ways"]) == {"admin", "cable", "dormant"}
    for way, result in data["ways"].items():
        assert [r["way"] for r in result["runs"]] == [way, way]
        assert result["event_to_move_unmeasured"] == 0
        sane(result["event_to_move_ms"], 2, 1000.0)
        for run in result["runs"]:
            assert run["command_to_event_ms"] >= 0
    # One link failure logged per run, each also a NIC failure.
    assert data["log_counts"] == {"link_down": 6, "nic_failure": 6}
    # The stack alone: each fault and each repair reported.
    assert set(data["stack"]) == {"admin", "cable", "dormant"}
    for result in data["stack"].values():
        assert result["lost"] == 0
        sane(result["to_link_went_down_ms"], 2, 1000.0)
        sane(result["to_link_came_up_ms"], 2, 1000.0)
