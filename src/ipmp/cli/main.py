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
        if args.verbose:
            for record in runner.logs:
                print(f"in.mpathd: {record.message}", file=sys.stderr)
        text = runner.ifconfig(args.argv, show_ether=os.geteuid() == 0)
    if text:
        print(text)
    return 0


IFCONFIG_USAGE = (
    "usage: ipmp ifconfig [--sim TOPOLOGY] [--root DIR] [--settle SECONDS] [-v] "
    "<interface>|-a [ifconfig arguments]"
)


def _ifconfig_options(argv: Sequence[str]) -> argparse.Namespace:
    """Split our own leading options from the ifconfig arguments.

    argparse cannot be told that ``-a`` after them belongs to ifconfig, so the
    leading options are taken by hand and everything after is ifconfig's.
    """
    args = argparse.Namespace(sim="active-active", root=None, settle=45.0, verbose=False)
    rest = list(argv)
    while rest and rest[0] in ("--sim", "--root", "--settle", "-v", "--verbose", "--"):
        flag = rest.pop(0)
        if flag == "--":
            break
        if flag in ("-v", "--verbose"):
            args.verbose = True
            continue
        if not rest:
            raise IpmpError(f"ipmp ifconfig: {flag} needs a value; {IFCONFIG_USAGE}")
        value = rest.pop(0)
        if flag == "--settle":
            try:
                args.settle = float(value)
            except ValueError:
                raise IpmpError(f"ipmp ifconfig: --settle {value!r}: expected seconds") from None
            if not 0 <= args.settle <= 86400:
                raise IpmpError(f"ipmp ifconfig: --settle {value}: expected 0 to 86400 seconds")
        else:
            setattr(args, flag[2:], value)
    if not rest:
        raise IpmpError(f"ipmp ifconfig: expected an interface name or -a; {IFCONFIG_USAGE}")
    args.argv = rest
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipmp", description="IP network multipathing (Solaris 10 IPMP)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="tell the guide's story on the simulated host")
    sub.add_parser(
        "ifconfig",
        help="Solaris ifconfig on a simulated host booted from a topology",
        description="Boot the simulated host (hostname files applied, probing settled), "
        "then run one Solaris ifconfig command and print its output.  " + IFCONFIG_USAGE,
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        if arguments[:1] == ["ifconfig"]:
            return _ifconfig(_ifconfig_options(arguments[1:]))
        args = build_parser().parse_args(arguments)
        if args.command == "demo":
            from ipmp.cli.demo import run_demo

            return run_demo()
    except IpmpError as err:
        print(err.message, file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
