"""The fault matrix smoke (10 cells, every configuration) passes and its table lists them (root)."""

from __future__ import annotations

import pytest

from benchtools import run_smoke

pytestmark = pytest.mark.root

CONFIGS = {"active-active", "active-standby", "failback-no", "single-nic", "dual-stack"}


def test_fault_matrix_smoke() -> None:
    data = run_smoke("fault_matrix", timeout=600)
    cells = data["cells"]
    assert len(cells) == 10
    assert {c["config"] for c in cells} == CONFIGS
    failed = [(c["fault"], c["config"], c["violations"]) for c in cells if c["result"] != "pass"]
    assert failed == []
    assert data["passed"] == 10 and data["failed"] == 0
    for cell in cells:
        assert cell["violations"] == []
        assert cell["lab"] in ("fresh", "reused")
        assert cell["expect"]["note"]
        # Every cell saw its fault's reaction and its recovery, within the script's deadlines.
        assert 0 <= cell["timings_ms"]["reaction"] < 15_000
        assert 0 <= cell["timings_ms"]["recovery"] < 20_000
    by = {c["fault"]: c for c in cells}
    # The state faults: the failed write was logged and the state saved again after it.
    for fault in ("state_ro", "disk_full"):
        assert "state.json" in by[fault]["details"]["write_failure_logged"][0]
        assert "nothing was changed" in by[fault]["details"]["offline_refusal"]
        assert by[fault]["timings_ms"]["saved_again"] < 30_000
    assert by["state_corrupt_fifo"]["details"]["moved_aside_to"] == ["state.json.corrupt"]
    assert by["second_daemon"]["details"]["second_exit"] != 0
    lines = data["table"].splitlines()
    header = [h.strip() for h in lines[0].split("|")[1:]]
    assert set(header) == CONFIGS
    rows = {line.split("|")[0].strip(): line for line in lines[2:]}
    for cell in cells:
        title = {
            "carrier": "carrier loss",
            "drop": "silent port drop",
            "nics_all": "all NICs dead",
            "nic_recreate": "NIC re-created",
            "sigkill": "SIGKILL + restart",
            "state_ro": "state dir read-only",
            "disk_full": "state dir full",
            "state_corrupt_fifo": "state: a FIFO",
            "second_daemon": "second in.mpathd",
        }[cell["fault"]]
        row = [part.strip() for part in rows[title].split("|")[1:]]
        row += [""] * (len(header) - len(row))
        assert row[header.index(cell["config"])] == ("pass*" if cell["transient"] else "pass")
