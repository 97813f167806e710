"""The ``ipmp`` command: ``ipmp demo``, ``ipmp ifconfig ...``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ipmp.core.errors import IpmpError


def _ifconfig(args: argparse.Namespace) -> int:
    from ipmp.sim.examples import example_path
    from ipmp.sim.runner import VirtualRunner

    topology = example_path(args.sim)
    with tempfile.TemporaryDirectory(prefix="ipmp-root-") as scratch:
        root = Path(args.root) if args.root else Path(scratch)
        runner = VirtualRunner.from_root(topology, root)
        runner.run_for(args.settle)
        for record in runner.logs:
            print(f"in.mpathd: {record.message}", file=sys.stderr) if args.verbose else None
        text = runner.ifconfig(args.argv, show_ether=os.geteuid() == 0)
    if text:
        print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipmp", description="IP network multipathing (Solaris 10 IPMP)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="tell the guide's story on the simulated host")
    ifc = sub.add_parser(
        "ifconfig",
        help="Solaris ifconfig on a simulated host booted from a topology",
        description="Boot the simulated host (hostname files applied, probing settled), "
        "then run one Solaris ifconfig command and print its output.",
    )
    ifc.add_argument("--sim", default="active-active", help="example name or topology file")
    ifc.add_argument("--root", help="configuration root (default: a fresh temporary one)")
    ifc.add_argument("--settle", type=float, default=45.0, help="virtual seconds to run first")
    ifc.add_argument(
        "-v", "--verbose", action="store_true", help="print the daemon's log to stderr"
    )
    ifc.add_argument(
        "argv", nargs=argparse.REMAINDER, help="ifconfig arguments, e.g. -a or hme0 group test"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from ipmp.cli.demo import run_demo

            return run_demo()
        if args.command == "ifconfig":
            if not args.argv:
                raise IpmpError("ifconfig: expected an interface name or -a")
            return _ifconfig(args)
    except IpmpError as err:
        print(err.message, file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command}")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
