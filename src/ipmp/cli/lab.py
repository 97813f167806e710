"""``ipmp lab``: build, break and remove a real IPMP lab of network namespaces.

::

    ipmp lab up TOPOLOGY [--prefix P] [--run-dir DIR] [--no-daemon] [--nics-up]
    ipmp lab fault cable NAME up|down        [--prefix P]
    ipmp lab fault drop NAME on|off          [--prefix P]
    ipmp lab fault loss NAME PERCENT         [--prefix P]
    ipmp lab fault target NEIGHBOUR up|down  [--prefix P]
    ipmp lab fault delete NIC | create NIC   [--prefix P]
    ipmp lab exec [--prefix P] CMD...
    ipmp lab down [--prefix P]
    ipmp lab status [--prefix P]

TOPOLOGY is a topology file or the name of a shipped example
(``lab-active-active``, ``lab-active-standby``).  Without ``--prefix`` the
commands act on the only lab recorded under ``/run/ipmp-lab`` (or
``$IPMP_LAB_DIR``).  Everything needs root.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ipmp.core.errors import IpmpError

USAGE = """usage: ipmp lab up TOPOLOGY [--prefix P] [--run-dir DIR] [--no-daemon] [--nics-up]
       ipmp lab fault VERB ARGS... [--prefix P]
           cable NAME up|down, drop NAME on|off, loss NAME PERCENT,
           target NEIGHBOUR up|down, delete NIC, create NIC
       ipmp lab exec [--prefix P] CMD...
       ipmp lab down [--prefix P]
       ipmp lab status [--prefix P]"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipmp lab",
        usage=USAGE.removeprefix("usage: "),
        description="A real IPMP lab of Linux network namespaces, built from a topology file.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    prefix = argparse.ArgumentParser(add_help=False)
    prefix.add_argument("--prefix", help="the lab's prefix (default: the only lab recorded)")

    up = sub.add_parser("up", parents=[prefix], help="build a lab and start in.mpathd in it")
    up.add_argument("topology", help="a topology file or a shipped example name")
    up.add_argument("--run-dir", type=Path, help="where the lab keeps its state and logs")
    up.add_argument("--no-daemon", action="store_true", help="do not start in.mpathd")
    up.add_argument(
        "--nics-up", action="store_true", help="set the host NICs up (default: left down)"
    )

    fault = sub.add_parser("fault", parents=[prefix], help="break or repair something")
    fault.add_argument("words", nargs="+", metavar="VERB ARGS")

    run = sub.add_parser("exec", parents=[prefix], help="run a command in the host namespace")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD")

    sub.add_parser("down", parents=[prefix], help="remove the lab (also after a crash)")
    sub.add_parser("status", parents=[prefix], help="show the recorded labs")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run ``ipmp lab ARGS``; return the exit status (errors are one line on stderr)."""
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:  # argparse has printed the usage
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if os.geteuid() != 0:
            raise IpmpError(
                f"ipmp lab {args.command}: must be run as root (the lab builds network namespaces)"
            )
        if args.command == "up":
            return _up(args)
        if args.command == "fault":
            return _fault(args)
        if args.command == "exec":
            return _exec(args)
        if args.command == "down":
            return _down(args)
        return _status(args)
    except IpmpError as err:
        print(err.message, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _up(args: argparse.Namespace) -> int:
    from ipmp.lab.lab import Lab
    from ipmp.sim.examples import example_path
    from ipmp.sim.topology import load_topology

    topology = load_topology(example_path(args.topology))
    lab = Lab.up(topology, prefix=args.prefix, run_dir=args.run_dir, nics_up=args.nics_up)
    print(f"lab {lab.prefix} is up (run dir {lab.run_dir})")
    print(f"  host:   {lab.host_ns}")
    for name, plan in lab.nics.items():
        where = f"switch port {plan.port} on {plan.bridge}" if plan.bridge else "no link"
        state = "" if plan.spec.present else " (not present: ipmp lab fault create " + name + ")"
        print(f"    {name}  {plan.spec.mac}  {where}{state}")
    print(f"  switch: {lab.switch_ns}")
    for name, neighbour in lab.neighbours.items():
        addresses = ", ".join(a for a in (neighbour.spec.address, neighbour.spec.address6) if a)
        print(f"  {neighbour.spec.role} {name}: {neighbour.netns} ({addresses})")
    if not args.no_daemon:
        try:
            pid = lab.start_daemon([])
        except IpmpError as err:
            print(err.message, file=sys.stderr)
            print(f"the lab stays up; remove it with: ipmp lab down --prefix {lab.prefix}")
            return 1
        print(f"in.mpathd: pid {pid} in {lab.host_ns}, root {lab.root}")
        print(f"  log: {lab.run_dir / 'in.mpathd.log'}")
    print(f"remove it with: ipmp lab down --prefix {lab.prefix}")
    return 0


def _fault(args: argparse.Namespace) -> int:
    from ipmp.lab.lab import Lab

    lab = Lab.open(args.prefix)
    print(f"{lab.prefix}: {lab.fault(args.words)}")
    return 0


def _exec(args: argparse.Namespace) -> int:
    from ipmp.lab.lab import Lab

    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise IpmpError("ipmp lab exec: expected a command to run in the host namespace")
    return Lab.open(args.prefix).exec(argv)


def _down(args: argparse.Namespace) -> int:
    from ipmp.lab.lab import teardown
    from ipmp.lab.state import find_lab

    prefix, _directory = find_lab(args.prefix)
    report = teardown(prefix)
    for name in report.stopped:
        print(f"{prefix}: stopped {name}")
    if report.namespaces:
        print(f"{prefix}: deleted namespaces {' '.join(report.namespaces)}")
    for path in report.removed:
        print(f"{prefix}: removed {path}")
    for warning in report.warnings:
        print(f"{prefix}: warning: {warning}", file=sys.stderr)
    if report.nothing:
        print(f"{prefix}: nothing to remove")
    return 0


def _status(args: argparse.Namespace) -> int:
    from ipmp.lab.lab import Lab
    from ipmp.lab.state import registered_labs, registry_dir

    prefixes = [args.prefix] if args.prefix else list(registered_labs())
    if not prefixes:
        print(f"no lab is recorded under {registry_dir()}")
        return 0
    for prefix in prefixes:
        status = Lab.open(prefix).status()
        built = "" if status.complete else " (incomplete: ipmp lab down removes it)"
        print(f"{status.prefix}: {status.topology}{built}")
        print(f"  run dir: {status.run_dir}")
        missing = [n for n, ok in status.namespaces.items() if not ok]
        print(
            f"  namespaces: {' '.join(status.namespaces)}"
            + (f" (missing: {' '.join(missing)})" if missing else "")
        )
        nics = [f"{n}{'' if ok else ' (absent)'}" for n, ok in status.nics.items()]
        print(f"  host NICs: {', '.join(nics) or 'none'}")
        for process in status.processes:
            state = "running" if process.alive else "not running"
            print(f"  {process.record.name}: pid {process.record.pid} {state}")
            print(f"    log: {process.record.log}")
        if not status.processes:
            print("  in.mpathd: not started")
        print(f"  faults: {'; '.join(status.faults) or 'none'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
