"""The ``ipmp`` command: ``ipmp demo``, ``ipmp ifconfig ...``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ipmp import version_line
from ipmp.core.errors import IpmpError
from ipmp.core.ifconfig_grammar import parse_ifconfig
from ipmp.rootfs import default_root

if TYPE_CHECKING:
    from ipmp.client import ControlClient


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
    args = argparse.Namespace(
        sim="active-active", root=None, settle=45.0, verbose=False, sim_given=False
    )
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
            args.sim_given = args.sim_given or flag == "--sim"
    if not rest:
        raise IpmpError(f"ipmp ifconfig: expected an interface name or -a; {IFCONFIG_USAGE}")
    args.argv = rest
    return args


USAGE = """usage: ipmp [--root DIR] COMMAND ...
       ipmp --version

commands:
  demo                         the guide's story on the simulated host
  ifconfig ARGS                Solaris ifconfig through the running in.mpathd
  ifconfig --sim TOPOLOGY ARGS Solaris ifconfig on a freshly booted simulated host
  offline IF | online IF       take an interface out of use and back (if_mpadm -d / -r)
  dr detach IF [-f] | dr attach IF
                               dynamic reconfiguration: prepare a NIC for removal, reattach it
  lab up|fault|exec|status|down ...
                               a real lab in network namespaces (root): see ipmp lab --help
  sim CMD ...                  faults on the daemon's simulated host: link IF up|down,
                               loss IF PERCENT, drop IF on|off, target ADDR up|down,
                               rtt ADDR MS, unplug IF, plug IF,
                               disk full|readonly|nofiles|ok,
                               addr add IF ADDR/LEN | addr del IF ADDR (another program)"""


HELP = {
    "demo": "usage: ipmp demo\n\n"
    "The guide's story on the simulated host, on virtual time (no root,\n"
    "no NICs): configuration files, a failure, the failover, the repair and failback.",
    "ifconfig": IFCONFIG_USAGE
    + "\n\nWith --sim, boots a throw-away simulated host from TOPOLOGY (an example name or a\n"
    "TOML file), lets it settle (--settle, default 45 s of virtual time) and runs one\n"
    "command; -v shows the daemon's log.  Without --sim, asks the running in.mpathd.",
    "offline": "usage: ipmp offline IF\n\nTake IF out of use: its data addresses move to "
    "another member (if_mpadm -d IF).",
    "online": "usage: ipmp online IF\n\nPut an offline IF back in use; its addresses come "
    "back (if_mpadm -r IF).",
    "dr": "usage: ipmp dr detach IF [-f] | ipmp dr attach IF\n\ndetach: move IF's addresses "
    "away and unplumb it before the NIC is removed\n(-f: also when some cannot move); attach: "
    "configure the NIC again from its\nhostname files.",
    "sim": "usage: ipmp sim link IF up|down | loss IF PERCENT | drop IF on|off |\n"
    "                target ADDR up|down | rtt ADDR MS | unplug IF | plug IF |\n"
    "                disk full|readonly|nofiles|ok | addr add|del IF ADDR[/LEN]\n\n"
    "Faults on the simulated host of a running in.mpathd --sim (disk: the daemon's\n"
    "state writes fail as on a full or read-only disk or out of file descriptors;\n"
    "addr: another program adds or deletes an address).",
}
"""What ``ipmp COMMAND --help`` prints (``ipmp lab --help`` has its own)."""


def _client(root: Path) -> ControlClient:
    from ipmp.client import ControlClient
    from ipmp.daemon.control import socket_path

    return ControlClient(socket_path(root))


def set_offline(root: Path, name: str, offline: bool) -> None:
    """Ask in.mpathd to take ``name`` out of use or back (``ipmp offline|online``, if_mpadm).

    Raises IpmpError with the daemon's one-line refusal, which names the
    operation and the interface (``offline: hme1: Interface already offlined``).
    """
    _client(root).request("offline" if offline else "online", interface=name)


def _admin(root: Path, words: list[str]) -> int:
    verb = words[0]
    if verb in ("offline", "online"):
        if len(words) != 2:
            raise IpmpError(f"ipmp {verb}: expected one interface name; usage: ipmp {verb} IF")
        set_offline(root, words[1], verb == "offline")
        return 0
    if verb == "dr":
        if len(words) >= 3 and words[1] == "detach" and words[3:] in ([], ["-f"]):
            _client(root).request("dr_detach", interface=words[2], force=words[3:] == ["-f"])
            return 0
        if len(words) == 3 and words[1] == "attach":
            _client(root).request("dr_attach", interface=words[2])
            return 0
        raise IpmpError("ipmp dr: usage: ipmp dr detach IF [-f] | ipmp dr attach IF")
    _client(root).request("sim", command=words[1:])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (ipmp ... | head): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    root = default_root()
    try:
        if arguments[:1] == ["--root"]:
            if len(arguments) < 2:
                raise IpmpError("ipmp: --root needs a directory")
            root = Path(arguments[1])
            arguments = arguments[2:]
        if arguments[:1] == ["--version"]:
            print(version_line("ipmp"))
            return 0
        if not arguments or arguments[0] in ("-h", "--help"):
            print(USAGE, file=sys.stdout if arguments else sys.stderr)
            return 0 if arguments else 2
        command = arguments[0]
        if command in HELP and arguments[1:2] in (["-h"], ["--help"]):
            print(HELP[command])
            return 0
        if command == "demo":
            from ipmp.cli.demo import run_demo

            if len(arguments) > 1:
                raise IpmpError(
                    f"ipmp demo: unexpected argument {arguments[1]!r}; usage: ipmp demo"
                )
            return run_demo()
        if command == "ifconfig":
            options = _ifconfig_options(arguments[1:])
            if options.sim_given:
                return _ifconfig(options)
            parse_ifconfig(options.argv)  # a syntax error needs no daemon to be reported
            reply = _client(root).request(
                "ifconfig", argv=options.argv, show_ether=os.geteuid() == 0
            )
            if reply["output"]:
                print(reply["output"])
            return 0
        if command in ("offline", "online", "dr", "sim"):
            return _admin(root, arguments)
        if command == "lab":
            from ipmp.cli.lab import main as lab_main

            return lab_main(arguments[1:])
        raise IpmpError(f"ipmp: {command!r}: unknown command; see ipmp --help")
    except IpmpError as err:
        print(err.message, file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
