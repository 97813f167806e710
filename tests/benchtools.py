"""Running a benchmark script's ``--smoke`` mode from a test, and checking its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_smoke(name: str, *extra: str, timeout: float = 120) -> dict[str, Any]:
    if os.geteuid() != 0:
        pytest.skip("the benchmarks build network namespaces: needs root")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), "--smoke", *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
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
