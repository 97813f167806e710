"""Reading the Solaris configuration files under a root directory.

Everything Solaris keeps in /etc lives under one configurable root
(``--root DIR`` / ``IPMP_ROOT``, default ``/``): etc/default/mpathd,
etc/hostname.<if>, etc/hostname6.<if>, etc/inet/netmasks, etc/inet/hosts and
etc/defaultrouter.
This module does the I/O; the parsing is pure and lives in ``ipmp.core``.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from ipmp.core.actions import Log
from ipmp.core.errors import IpmpError
from ipmp.core.hostname_files import HostnameFile, load_hostname_file
from ipmp.core.mpathd_config import MpathdConfig, parse_mpathd
from ipmp.core.routes import parse_defaultrouter
from ipmp.core.types import Family


def default_root() -> Path:
    """``IPMP_ROOT`` if set, else ``/``."""
    return Path(os.environ.get("IPMP_ROOT", "/"))


@dataclass
class RootConfig:
    """The configuration read from a root, plus the messages reading it produced."""

    mpathd: MpathdConfig
    hostname_files: list[HostnameFile]
    netmasks: list[tuple[ipaddress.IPv4Network, int]] = field(default_factory=list)
    hosts: dict[str, str] = field(default_factory=dict)
    messages: list[Log] = field(default_factory=list)
    defaultrouters: tuple[tuple[Family, str], ...] = ()

    def netmask_for(self, address: str) -> int | None:
        """The netmasks database entry covering ``address`` (longest match)."""
        ip = ipaddress.IPv4Address(address)
        best: int | None = None
        for network, prefixlen in self.netmasks:
            if ip in network and (best is None or network.prefixlen >= best):
                best = prefixlen
        return best

    def resolve_host(self, name: str) -> str | None:
        return self.hosts.get(name)


def read_mpathd(root: Path, previous: MpathdConfig | None = None) -> tuple[MpathdConfig, list[Log]]:
    """Parse etc/default/mpathd; a missing file means the defaults."""
    path = root / "etc" / "default" / "mpathd"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return previous or MpathdConfig(), []
    parsed = parse_mpathd(text, previous or MpathdConfig())
    return parsed.config, list(parsed.messages)


def read_root(root: Path) -> RootConfig:
    """Read every configuration file under ``root``.

    A hostname file that does not parse is reported in ``messages`` and
    skipped, as the boot scripts would carry on with the other interfaces.
    """
    mpathd, messages = read_mpathd(root)
    files: list[HostnameFile] = []
    etc = root / "etc"
    if etc.is_dir():
        for path in sorted(etc.iterdir()):
            if not path.is_file() or not path.name.startswith(("hostname.", "hostname6.")):
                continue
            try:
                files.append(load_hostname_file(path.read_text(encoding="utf-8"), path.name))
            except IpmpError as err:
                messages.append(Log(3, err.message))
            except UnicodeDecodeError:
                messages.append(Log(3, f"{path.name}: not UTF-8 text; skipped"))
    config = RootConfig(mpathd, files, messages=messages)
    config.netmasks = _read_netmasks(root)
    config.hosts = _read_hosts(root)
    config.defaultrouters = _read_defaultrouter(root, config, messages)
    return config


def _read_defaultrouter(
    root: Path, config: RootConfig, messages: list[Log]
) -> tuple[tuple[Family, str], ...]:
    """etc/defaultrouter: the routers of the boot-time default routes (bad lines reported)."""
    path = root / "etc" / "defaultrouter"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ()
    except OSError as err:
        messages.append(Log(3, f"/etc/defaultrouter: {err.strerror}; no default routes from it"))
        return ()
    parsed = parse_defaultrouter(text, config.resolve_host)
    messages.extend(parsed.messages)
    return parsed.routers


def _lines(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [
        line.split("#", 1)[0].split() for line in text.splitlines() if line.split("#", 1)[0].strip()
    ]


def _read_netmasks(root: Path) -> list[tuple[ipaddress.IPv4Network, int]]:
    """etc/inet/netmasks: ``network-number netmask`` lines; bad lines are ignored."""
    out: list[tuple[ipaddress.IPv4Network, int]] = []
    for fields in _lines(root / "etc" / "inet" / "netmasks"):
        if len(fields) < 2:
            continue
        try:
            mask = ipaddress.IPv4Network(f"0.0.0.0/{fields[1]}").prefixlen
            network = ipaddress.IPv4Network(f"{fields[0]}/{mask}", strict=False)
        except ValueError:
            continue
        out.append((network, mask))
    return out


def _read_hosts(root: Path) -> dict[str, str]:
    """etc/inet/hosts (or etc/hosts): name -> address, first entry wins."""
    out: dict[str, str] = {}
    for name in ("inet/hosts", "hosts"):
        for fields in _lines(root / "etc" / name):
            if len(fields) < 2:
                continue
            try:
                address = str(ipaddress.ip_address(fields[0]))
            except ValueError:
                continue
            for host in fields[1:]:
                out.setdefault(host, address)
    return out
