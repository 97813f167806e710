"""Timelines of single benchmark runs: what happened when, recorded and drawn as PNG.

A benchmark that records a timeline (link_failover, probe_detection,
mass_failover: the first run of each FDT or phase) writes
``results/<name>-trace.json`` (``-trace-smoke.json`` in smoke mode):

* ``bins``: echo replies router1 received per ``bin_ms`` milliseconds, from the
  prober's raw reply times;
* ``events``: ``[ms, label]`` for the fault, its repair, what in.mpathd's
  snapshot showed (FAILED), and what the kernel did, taken from
  ``ip -ts monitor link address`` in the host namespace (carrier lost, the
  address added on eth1 or back on eth0).  Times are milliseconds from the
  fault; the monitor's wall-clock stamps are mapped to CLOCK_MONOTONIC with
  one offset read when the monitor starts.

``python timeline.py [--smoke]`` draws every trace it finds into
``results/<name>[-<n>].png`` (``-smoke.png`` for smoke traces).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from common import RESULTS

from ipmp.lab.lab import Lab

_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)\]\s*(.*)$")


class HostMonitor:
    """``ip -ts monitor link address`` in the lab's host namespace, stamped on CLOCK_MONOTONIC.

    ``objects`` names what to monitor (``ip monitor``'s words: link, address, route...).
    """

    def __init__(self, lab: Lab, objects: tuple[str, ...] = ("link", "address")) -> None:
        self.path = lab.run_dir / f"monitor-{time.monotonic_ns()}.txt"
        self._out = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        argv = ["ip", "-n", lab.host_ns, "-ts", "monitor", *objects]
        self.offset = time.monotonic() - time.time()
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.DEVNULL)
        time.sleep(0.05)  # let it subscribe before the fault: no event can be missed

    def stop(self) -> list[tuple[float, str]]:
        """End the monitor; its lines as ``(monotonic time, text)``."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
        self._out.close()
        lines: list[tuple[float, str]] = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            match = _STAMP.match(line)
            if match:
                wall = datetime.fromisoformat(match.group(1)).timestamp()
                lines.append((wall + self.offset, match.group(2)))
        return lines


def first(lines: list[tuple[float, str]], pattern: str, after: float) -> float | None:
    """The time of the first monitor line at or after ``after`` matching ``pattern``."""
    regex = re.compile(pattern)
    return next((t for t, text in lines if t >= after and regex.search(text)), None)


def last(
    lines: list[tuple[float, str]], pattern: str, after: float, before: float = float("inf")
) -> float | None:
    """The time of the last line from ``after`` to ``before`` matching ``pattern``."""
    regex = re.compile(pattern)
    found = [t for t, text in lines if after <= t < before and regex.search(text)]
    return found[-1] if found else None


def carrier_lost(ifname: str) -> str:
    return rf"^\d+: {ifname}(@\S+)?: <NO-CARRIER"


def address_added(ifname: str, address: str) -> str:
    return rf"^\d+: {ifname}\s+inet6? {re.escape(address)}/"


def bins(times: list[float], t0: float, start_ms: float, end_ms: float, bin_ms: float) -> list:
    """``[[ms, count], ...]``: replies per bin from ``start_ms`` to ``end_ms`` after ``t0``."""
    count = max(1, int((end_ms - start_ms) / bin_ms))
    counts = [0] * count
    for t in times:
        k = int(((t - t0) * 1000 - start_ms) // bin_ms)
        if 0 <= k < count:
            counts[k] += 1
    return [[round(start_ms + k * bin_ms, 3), c] for k, c in enumerate(counts)]


def ms(t: float | None, t0: float) -> float | None:
    return None if t is None else round((t - t0) * 1000, 3)


def write_trace(name: str, smoke: bool, traces: list[dict[str, Any]]) -> Path:
    path = RESULTS / f"{name}-trace{'-smoke' if smoke else ''}.json"
    path.write_text(json.dumps(traces, indent=1) + "\n", encoding="utf-8")
    return path


def draw(trace: dict[str, Any], png: Path) -> None:
    """One timeline: replies per bin as steps, events as labelled vertical lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=110)
    xs = [b[0] for b in trace["bins"]]
    ys = [b[1] for b in trace["bins"]]
    ax.step(xs, ys, where="post", color="tab:blue", linewidth=1.0, label="echo replies")
    ax.fill_between(xs, ys, step="post", alpha=0.25, color="tab:blue")
    top = max([*ys, 1]) * 1.35
    events = [e for e in trace["events"] if e[0] is not None]
    colours = ["tab:red", "tab:orange", "tab:purple", "tab:green", "tab:brown", "tab:gray"]
    for k, (at, label) in enumerate(sorted(events)):
        colour = colours[k % len(colours)]
        ax.axvline(at, color=colour, linestyle="--", linewidth=1.0)
        ax.text(
            at,
            top * (0.97 - 0.085 * (k % 6)),
            f" {label} ({at:g} ms)",
            color=colour,
            fontsize=8,
            va="top",
        )
    ax.set_ylim(0, top)
    ax.set_xlim(xs[0], xs[-1] + trace["bin_ms"])
    ax.set_xlabel("ms from the fault")
    ax.set_ylabel(f"replies per {trace['bin_ms']:g} ms")
    ax.set_title(trace["title"], fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="draw the smoke traces")
    parser.add_argument("traces", nargs="*", type=Path, help="trace files (default: all)")
    args = parser.parse_args()
    suffix = "-trace-smoke.json" if args.smoke else "-trace.json"
    drawn: list[str] = []
    for path in args.traces or sorted(RESULTS.glob(f"*{suffix}")):
        if not path.name.endswith(suffix):
            print(f"{path}: expected a file named <benchmark>{suffix}", file=sys.stderr)
            return 2
        name = path.name[: -len(suffix)]
        traces = json.loads(path.read_text(encoding="utf-8"))
        for k, trace in enumerate(traces):
            number = f"-{k + 1}" if len(traces) > 1 else ""
            png = RESULTS / f"{name}{number}{'-smoke' if args.smoke else ''}.png"
            draw(trace, png)
            drawn.append(png.name)
    print(json.dumps({"drawn": drawn}))
    return 0 if drawn else 1


if __name__ == "__main__":
    sys.exit(main())
