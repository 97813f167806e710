"""The start-up benchmark's smoke: 20 ``addif`` lines, simulated and in a lab.

How long start-up takes is the benchmark's figure, not asserted here (the
smoke shares two cores with the rest of the suite).  What is asserted: every
run brought every address up (the script checks the simulated kernel and
waits for the lab's), and the figures are sane.
"""

from __future__ import annotations

import pytest

from benchtools import run_smoke

pytestmark = pytest.mark.root


def test_startup_smoke() -> None:
    data = run_smoke("startup", timeout=180)
    assert (data["addresses"], data["inet6"], data["runs_each"]) == (20, 20, 2)
    assert len(data["sim"]["runs_s"]) == 2
    assert 0 < data["sim"]["best_s"] <= data["sim"]["median_s"] < 60
    runs = data["linux"]["runs"]
    assert len(runs) == 2
    for run in runs:
        assert 0 < run["all_addresses_s"] < 120
        assert 0 < run["answers_s"] < 120
