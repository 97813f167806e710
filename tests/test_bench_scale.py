"""benchmarks/scale.py runs (``--smoke``: 8 NICs, FDT 1 s, 5 s window) and reports sane JSON.

The CPU and memory goals are not asserted here: they live in BENCHMARKS.md.
"""

from __future__ import annotations

import pytest

from benchtools import run_smoke

pytestmark = pytest.mark.root


def test_scale_smoke() -> None:
    data = run_smoke("scale", timeout=180)
    assert data["window_s"] == 5.0 and not data["profiled"]
    [cell] = data["cells"]
    assert (cell["nics"], cell["groups"], cell["fdt_ms"]) == (8, 4, 1000)
    assert cell["ready_before_window"] and cell["booted_at_fdt_ms"] == 1000
    # The daemon's own python process was measured, over the whole window.
    assert 4.5 <= cell["window_s"] <= 7.0
    assert 0 <= cell["cpu_percent"] < 200
    assert cell["cpu_user_percent"] + cell["cpu_system_percent"] == pytest.approx(
        cell["cpu_percent"], abs=0.05
    )
    assert cell["cpu_percent_per_second"]["n"] >= 4
    assert cell["rss_start_mb"] > 10 and 10 < cell["rss_mb"] < 1000
    assert cell["rss_mb"] <= cell["peak_rss_mb"] < 1000
    # Every NIC probed two targets, was answered in the window and stayed ok.
    end = cell["end"]
    assert end["interfaces"] == end["ok"] == end["two_targets"] == 8
    assert end["targets_min"] == end["targets_max"] == 2 and end["states"] == ["ok/ok"]
    assert end["group_fdt_ms"] == [1000]
    assert cell["all_ok_at_end"] and cell["interfaces_answered_in_window"] == 8
    assert cell["failures_in_window"] == 0 and cell["window_log"]["nic_failure"] == 0
    # About 7 probes per FDT per NIC: 8 NICs at FDT 1 s send some 56 a second.
    assert 30 < cell["probes_per_s"] < 100
    assert 0 < cell["acks"] <= cell["probes_sent"]
    assert cell["lab_build_s"] > 0 and cell["boot"]["ready"]
