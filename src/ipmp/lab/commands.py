"""Running ``ip``, ``nft`` and ``sh``: the lab's only contact with the kernel.

Every command goes through ``run``, which raises a one-line ``IpmpError``
naming the command and the tool's own complaint when it fails, so that a
refused ``ip link add`` reads like ``ip -n lab-sw link add ...: RTNETLINK
answers: File exists``.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from ipmp.core.errors import IpmpError

COMMAND_TIMEOUT = 30.0
"""Seconds any single ``ip``/``nft`` command may take before it is called hung."""

NETNS_DIR = Path("/run/netns")
"""Where ``ip netns add`` mounts the namespaces it names (iproute2's NETNS_RUN_DIR)."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def show(argv: Sequence[str]) -> str:
    """``argv`` as a shell would need it typed, for messages."""
    return " ".join(shlex.quote(a) for a in argv)


def run(
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    check: bool = True,
    timeout: float = COMMAND_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``, capturing its output as text.

    Raises:
        IpmpError: the program is missing, timed out, or (with ``check``)
            exited non-zero; the message holds the command and its stderr.
    """
    try:
        result = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise IpmpError(
            f"{argv[0]}: command not found (the lab needs iproute2 and nftables)"
        ) from None
    except subprocess.TimeoutExpired:
        raise IpmpError(f"{show(argv)}: no answer after {timeout:g} s") from None
    if check and result.returncode != 0:
        detail = _one_line(result.stderr) or _one_line(result.stdout) or "no message"
        raise IpmpError(f"{show(argv)}: exit status {result.returncode}: {detail}")
    return result


def ip(netns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``ip -n NETNS ARGS...``."""
    return run(["ip", "-n", netns, *args], check=check)


def in_netns(netns: str, argv: Sequence[str]) -> list[str]:
    """The argument vector that runs ``argv`` inside ``netns``."""
    return ["ip", "netns", "exec", netns, *argv]


def nft_load(netns: str, script: str) -> None:
    """Load an nftables ``script`` (one atomic transaction) inside ``netns``."""
    run(in_netns(netns, ["nft", "-f", "-"]), stdin=script)


def write_sysctls(netns: str, settings: Mapping[str, str]) -> None:
    """Set sysctls (``net.ipv4.ip_forward`` -> ``"1"``) inside ``netns``, in one process.

    Written straight to ``/proc/sys`` with ``sh`` so that procps is not needed.
    """
    if not settings:
        return
    pairs = [f"{key.replace('.', '/')}={value}" for key, value in settings.items()]
    script = 'for kv; do printf "%s\\n" "${kv#*=}" > "/proc/sys/${kv%%=*}" || exit 1; done'
    run(in_netns(netns, ["sh", "-c", script, "sh", *pairs]))


def list_netns() -> list[str]:
    """The names of the namespaces ``ip netns`` knows, in its order."""
    result = run(["ip", "netns", "list"])
    names: list[str] = []
    for line in result.stdout.splitlines():
        words = line.split()
        if words:
            names.append(words[0])
    return names


def netns_exists(name: str) -> bool:
    """Whether ``ip netns`` has a namespace called ``name``."""
    return (NETNS_DIR / name).exists() or name in list_netns()


def netns_pids(name: str) -> list[int]:
    """The processes living in namespace ``name`` (empty if it is gone)."""
    result = run(["ip", "netns", "pids", name], check=False)
    return [int(word) for word in result.stdout.split() if word.isdigit()]


def link_exists(netns: str, ifname: str) -> bool:
    """Whether interface ``ifname`` exists in ``netns``."""
    return ip(netns, "link", "show", "dev", ifname, check=False).returncode == 0
