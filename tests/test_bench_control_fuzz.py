"""The control-plane fuzz smoke (300 hostile requests to in.mpathd --sim) finds nothing.

No root needed: without it there is no nobody sender, and the JSON says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from benchtools import BENCHMARKS

KINDS = {
    "bad_json",
    "wrong_types",
    "unknown_keys",
    "huge",
    "control_chars",
    "unicode",
    "deep",
    "versions",
    "ops",
}


def test_control_fuzz_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "control_fuzz.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=BENCHMARKS,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["benchmark"] == "control_fuzz" and data["mode"] == "smoke"
    written = json.loads((BENCHMARKS / "results" / "control_fuzz-smoke.json").read_text())
    assert written == data
    assert data["inputs"] == 300 == data["accepted"] + data["refused"]
    assert set(data["by_kind"]) == KINDS
    assert all(sum(by.values()) > 0 for by in data["by_kind"].values())
    # Every finding is zero, with the samples empty (they show what went wrong otherwise).
    bad = {k: v for k, v in data["must_be_zero"].items() if v}
    samples = {k: data.get(f"{k}_samples") for k in bad}
    assert bad == {}, samples
    assert data["passed"] is True
    assert data["refused"] > data["accepted"] > 0
    if os.geteuid() == 0:
        assert data["nobody_sender"] is True
        assert data["by_sender"]["nobody"]["refused"] > 0
        assert data["nobody_permission_denied"] > 0
    else:
        assert data["nobody_sender"] is False
