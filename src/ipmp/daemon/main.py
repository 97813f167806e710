"""The ``in.mpathd`` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ipmp import version_line
from ipmp.core.errors import IpmpError
from ipmp.rootfs import default_root

IGNORED_SIGNALS = (signal.SIGUSR2, signal.SIGALRM, signal.SIGQUIT)
"""Signals whose default action would end the daemon and that mean nothing to it."""

CHECK_TIMERS_ENV = "IPMP_CHECK_TIMERS"
"""Set to 1 (the test suite does) to check the engine's timer index at every step."""


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: expected ADDRESS:PORT, e.g. 127.0.0.1:9105")
    return host.strip("[]") or "127.0.0.1", int(port)


def _root(given: Path | None, sim: Path | None) -> tuple[Path, bool]:
    """``--root``, else ``$IPMP_ROOT``, else ``/``, except for the simulator; and
    whether it is a scratch directory made here (removed when the daemon ends).

    A simulated host must never write into the real /etc, /var and /run: with
    no root given it gets a fresh scratch directory, named on stderr so that
    the clients can be pointed at it.
    """
    if given is not None:
        return given, False
    if sim is None or "IPMP_ROOT" in os.environ:
        return default_root(), False
    scratch = Path(tempfile.mkdtemp(prefix="ipmp-sim-"))
    print(
        f"in.mpathd: simulated host's root is {scratch} (export IPMP_ROOT={scratch} "
        "for ipmpstat and ipmp)",
        file=sys.stderr,
    )
    return scratch, True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="in.mpathd",
        description="The IPMP daemon: failure detection, failover and failback.",
    )
    parser.add_argument("--version", action="version", version=version_line("in.mpathd"))
    parser.add_argument("-d", action="store_true", help="debug: log to stderr instead of syslog")
    parser.add_argument("--sim", type=Path, help="drive the simulated host of this topology")
    parser.add_argument(
        "--linux", action="store_true", help="drive this host's interfaces (the default)"
    )
    parser.add_argument("--root", type=Path, help="configuration root (default $IPMP_ROOT or /)")
    parser.add_argument("--group", help="group whose members may change the configuration")
    parser.add_argument("--seed", type=int, help="seed of the probe jitter (default: the pid)")
    parser.add_argument("--metrics", type=_address, help="serve Prometheus metrics on ADDR:PORT")
    parser.add_argument(
        "--metrics-remote",
        action="store_true",
        help="allow a --metrics address other hosts can reach (default: loopback only)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start the daemon; return its exit status (1 or 2, with one line on stderr, if it cannot)."""
    # Until the loop's own handlers log them, these must not end the daemon.
    for number in IGNORED_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    args = build_parser().parse_args(argv)
    if args.metrics is not None:
        from ipmp.daemon.metrics import MISSING, PROMETHEUS, is_loopback

        if not PROMETHEUS:
            print(f"in.mpathd: {MISSING}", file=sys.stderr)
            return 2
        if not args.metrics_remote and not is_loopback(args.metrics[0]):
            print(
                f"in.mpathd: --metrics {args.metrics[0]}:{args.metrics[1]}: not a loopback "
                "address; add --metrics-remote to serve metrics to other hosts",
                file=sys.stderr,
            )
            return 2
    if args.group is not None:
        from ipmp.daemon.control import resolve_group

        try:
            resolve_group(args.group)  # before anything is touched, not once the kernel is set
        except IpmpError as err:
            print(f"in.mpathd: --group: {err.message}", file=sys.stderr)
            return 2
    from ipmp.core.engine import Engine
    from ipmp.daemon.daemon import Daemon, DaemonOptions
    from ipmp.daemon.instance import take_instance_lock
    from ipmp.daemon.metrics import listen
    from ipmp.daemon.safedirs import check_root

    if os.environ.get(CHECK_TIMERS_ENV) == "1":
        Engine.check_timers = True
    root, scratch = _root(args.root, args.sim)
    lock: int | None = None
    listeners: list[socket.socket] = []
    try:
        # First of all, before any kernel, configuration, state or socket
        # access: a root nobody else can redirect, one daemon per root, and
        # the metrics port is ours.
        check_root(root)
        lock = take_instance_lock(root)
        if args.metrics is not None:
            listeners = listen(*args.metrics)
        options = DaemonOptions(
            root=root,
            sim=args.sim,
            foreground=args.d,
            debug=args.d,
            control_group=args.group,
            seed=args.seed,
            metrics=args.metrics,
            metrics_listeners=tuple(listeners),
        )
        daemon = Daemon(options)
        return asyncio.run(daemon.run())
    except IpmpError as err:
        print(f"in.mpathd: {err.message}", file=sys.stderr)
        return 1
    finally:
        for sock in listeners:
            sock.close()
        if lock is not None:
            os.close(lock)
        if scratch:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
