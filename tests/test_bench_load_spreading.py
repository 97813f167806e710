"""benchmarks/load_spreading.py --smoke runs and reports sane JSON (root only).

The goals (each NIC within 50 % +- 10 % of the bytes, zero reordering) are
not asserted: they live in BENCHMARKS.md.  What is asserted is that the
measurement itself holds together: flows complete, bytes are counted on both
NICs, the NIC counters agree with the flows' bytes, and every flow left by
exactly the one NIC the kernel's route lookup names.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchtools import run_smoke

pytestmark = pytest.mark.root

NICS = ("eth0", "eth1")
ROUTES = {"192.0.2.0/25": list(NICS), "192.0.2.128/25": list(NICS)}


def check_run(run: dict[str, Any], flows: int) -> None:
    assert run["flows"] == flows == len(run["per_flow"])
    assert run["flows_completed"] == flows and run["unfinished_at_sink"] == []
    payload = sum(f["bytes_sent"] for f in run["per_flow"])
    assert payload == run["flow_payload_bytes"] > 0
    assert all(f["bytes_received"] == f["bytes_sent"] > 0 for f in run["per_flow"])
    # The NICs' tx bytes are the flows' payload plus headers (and a few probes).
    assert 1.0 <= run["tx_over_payload"] < 1.1
    assert sum(run["tx_bytes"].values()) >= payload
    assert sum(run["flows_per_nic"].values()) == flows
    # Every flow was seen on exactly one NIC, the one `ip route get` names.
    assert run["flows_on_both_nics"] == 0
    assert run["flows_route_get_matches_measured"] == flows
    assert run["counters_present"] == {"receiver": True, "sender": True}
    for counters in (run["receiver_counters"], run["sender_counters"]):
        assert all(isinstance(v, int) and v >= 0 for v in counters.values())
    for f in run["per_flow"]:
        assert isinstance(f["rcv_ooopack"], int) and isinstance(f["reord_seen"], int)
    assert run["daemon_states_after"] == {"eth0": "ok", "eth1": "ok"}
    assert run["spreading_routes_after"] == ROUTES


def test_load_spreading_smoke() -> None:
    data = run_smoke("load_spreading", timeout=120)
    assert data["flows"] == 8 and len(data["destinations"]) == 8
    assert data["fib_multipath_hash_policy"] == 1
    assert data["spreading_routes"] == ROUTES
    details = data["run_details"]
    assert [len(details[p]) for p in ("spread", "one_nic", "spread_rps")] == [1, 1, 1]
    for runs in details.values():
        for run in runs:
            check_run(run, 8)
    # Spread over both NICs: bytes on each (16 flows all on one NIC: p = 2**-15).
    assert all(data["spread_tx_bytes"][nic] > 0 for nic in NICS)
    assert sum(data["spread_flows_per_nic"].values()) == 16
    assert abs(sum(data["spread_tx_share"].values()) - 1) < 1e-3
    # The control pins every flow to eth0.
    (control,) = details["one_nic"]
    assert control["flows_per_nic"] == {"eth0": 8, "eth1": 0}
    assert control["tx_bytes"]["eth0"] > 100 * control["tx_bytes"]["eth1"]
    # RPS was on for the sink's eth0 and the switch ports, every CPU in the mask.
    rps = dict(entry.split("=") for entry in data["rps"])
    assert any(name.endswith(":eth0") for name in rps)
    assert all(int(mask, 16) == 2 ** data["machine"]["nproc"] - 1 for mask in rps.values())
    for summary in data["phases"].values():
        assert all(isinstance(n, int) and n >= 0 for n in summary["out_of_order_per_run"])
    assert data["goals"]["spread_runs"] == 2
    assert 0 <= data["goals"]["share_met_runs"] <= 2
    assert data["goals"]["binomial_p_share_met"] == round(70 / 256, 4)  # 4 of 8 flows only
