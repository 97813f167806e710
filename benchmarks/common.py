"""Shared helpers of the benchmark scripts: labs, the daemon, the prober, statistics."""

from __future__ import annotations

import itertools
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ipmp.client import ControlClient
from ipmp.core.errors import IpmpError
from ipmp.daemon.control import socket_path
from ipmp.lab.lab import Lab
from ipmp.sim.topology import parse_topology

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
EXAMPLES = HERE.parent / "src" / "ipmp" / "examples"
PROBER = HERE / "prober.py"


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return {
        "n": len(values),
        "min": round(ordered[0], 3),
        "median": round(median, 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(ordered[-1], 3),
    }


def write_result(name: str, result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "-smoke" if result.get("mode") == "smoke" else ""
    text = json.dumps(result, indent=1, sort_keys=True)
    (RESULTS / f"{name}{suffix}.json").write_text(text + "\n", encoding="utf-8")
    print(json.dumps(result, sort_keys=True))


def require_root() -> None:
    if os.geteuid() != 0:
        print("benchmarks build network namespaces: run them as root", file=sys.stderr)
        sys.exit(2)


def example_text(name: str, **mpathd: str) -> str:
    text = (EXAMPLES / f"{name}.toml").read_text(encoding="utf-8")
    for key, value in mpathd.items():
        text = "\n".join(
            f"{key}={value}" if line.startswith(f"{key}=") else line for line in text.splitlines()
        )
    return text + "\n"


OFFLINK_PEER = "peer"
"""The off-link peer behind router1 (``with_offlink_peer``)."""
OFFLINK_ADDRESS = "203.0.113.10"
OFFLINK_ROUTER = "192.0.2.1"


def with_offlink_peer(text: str, router: str = "router1") -> str:
    """The lab text with an off-link peer (203.0.113.10) behind ``router``.

    Issue 10: the outage an off-link client sees depends on the routes
    following the group, not only the addresses.
    """
    lines = text.splitlines()
    start = lines.index(f'  name = "{router}"')
    end = next(
        (i for i in range(start, len(lines)) if lines[i].lstrip().startswith("[")), len(lines)
    )
    block = [
        "    [[link.neighbour.offlink]]",
        f'    name = "{OFFLINK_PEER}"',
        f'    address = "{OFFLINK_ADDRESS}"',
        "",
    ]
    return "\n".join(lines[:end] + block + lines[end:]) + "\n"


def default_route_devices(lab: Lab) -> set[str]:
    """The devices of the host's IPv4 default routes."""
    out = lab.run(["ip", "-j", "-4", "route", "show", "default"]).stdout
    return {str(r.get("dev")) for r in json.loads(out or "[]")}


def add_default_route(lab: Lab, home: str) -> None:
    """``ip route add default via 192.0.2.1`` as an administrator types it; it lands on ``home``."""
    result = lab.run(["ip", "route", "add", "default", "via", OFFLINK_ROUTER])
    if result.returncode != 0:
        raise RuntimeError(f"ip route add default: {result.stderr.strip()}")
    wait_for(lambda: default_route_devices(lab) == {home}, 5, f"default route on {home}")


@contextmanager
def lab_from(text: str) -> Iterator[Lab]:
    """A lab with a fresh ``ipmpb<hex>`` prefix, always removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="ipmp-bench-") as tmp:
        prefix = f"ipmpb{secrets.token_hex(3)}"
        registry = Path(tmp) / "registry"
        lab = Lab.up(
            parse_topology(text, "<benchmark>"),
            prefix=prefix,
            run_dir=Path(tmp) / prefix,
            registry=registry,
            topology_text=text,
        )
        try:
            yield lab
        finally:
            lab.down(registry=registry)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.01) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not within {timeout} s: {what}")
        time.sleep(step)
    return time.monotonic() - start


class Daemon:
    """in.mpathd in a lab: start it, read its snapshot, find addresses."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.pid = 0

    def start(self, timeout: float = 20.0, extra_args: Sequence[str] = ()) -> Daemon:
        self.pid = self.lab.start_daemon(extra_args)
        wait_for(self.answers, timeout, "in.mpathd answers on its socket", 0.05)
        return self

    def client(self) -> ControlClient:
        return ControlClient(socket_path(self.lab.root), timeout=5.0)

    def answers(self) -> bool:
        try:
            self.client().request("ping")
        except IpmpError:
            return False
        return True

    def snapshot(self) -> dict[str, Any]:
        result: dict[str, Any] = self.client().request("snapshot")
        return result

    def states(self) -> dict[str, str]:
        return {str(r["interface"]): str(r["state"]) for r in self.snapshot()["interfaces"]}

    def probing_ok(self, family: str = "inet") -> bool:
        try:
            snap = self.snapshot()
        except IpmpError:
            return False  # busy: ask again
        rows = snap["interfaces"]
        targets = [t for t in snap["targets"] if t["mode"] != "disabled" and t["family"] == family]
        return (
            all(r["state"] == "ok" and r["probe"] == "ok" for r in rows)
            and bool(targets)
            and all(t["targets"] for t in targets)
        )

    def log(self) -> str:
        return (self.lab.run_dir / "in.mpathd.log").read_text(errors="replace")


def addresses_on(lab: Lab) -> dict[str, list[str]]:
    """Interface -> addresses (every family) in the host namespace."""
    out = lab.run(["ip", "-j", "addr"]).stdout
    return {
        str(link["ifname"]): [str(info["local"]) for info in link.get("addr_info", [])]
        for link in json.loads(out)
    }


def holder(lab: Lab, address: str) -> str | None:
    found = [name for name, addrs in addresses_on(lab).items() if address in addrs]
    return found[0] if len(found) == 1 else None


class Prober:
    """benchmarks/prober.py running in a neighbour namespace."""

    def __init__(
        self,
        lab: Lab,
        neighbour: str,
        addresses: list[str],
        interval: float,
        duration: float,
        since: float | None = None,
        raw: bool = False,
    ) -> None:
        argv = ["ip", "netns", "exec", lab.neighbour_ns(neighbour), sys.executable, str(PROBER)]
        argv += ["--interval", str(interval), "--duration", str(duration)]
        if since is not None:
            argv += ["--since", repr(since)] + (["--raw"] if raw else [])
        argv += addresses
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def result(self, timeout: float = 120.0) -> dict[str, Any]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        if self.proc.returncode != 0:
            raise RuntimeError(f"prober failed: {err.decode(errors='replace').strip()}")
        data: dict[str, Any] = json.loads(out)
        return data

    def terminate(self) -> None:
        """Ask the prober to stop sending and report (SIGTERM)."""
        if self.proc.poll() is None:
            self.proc.terminate()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def largest_gap(times: list[float], since: float) -> tuple[float, float, float]:
    """``(gap, start, end)``: the largest gap between consecutive times at or after ``since``.

    The reply just before ``since`` is included, so a gap that spans it counts.
    """
    ordered = sorted(times)
    before = [t for t in ordered if t < since]
    window = ([before[-1]] if before else []) + [t for t in ordered if t >= since]
    best = (0.0, since, since)
    for a, b in itertools.pairwise(window):
        if b - a > best[0]:
            best = (b - a, a, b)
    return best


def reply_times(data: dict[str, Any], index: int = 0) -> list[float]:
    n = len(data["addresses"])
    return [float(t) for k, t in data["replies"] if k % n == index]
