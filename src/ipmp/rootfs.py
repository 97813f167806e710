"""Reading the Solaris configuration files under a root directory.

Everything Solaris keeps in /etc lives under one configurable root
(``--root DIR`` / ``IPMP_ROOT``, default ``/``): etc/default/mpathd,
etc/hostname.<if>, etc/hostname6.<if>, etc/inet/netmasks, etc/inet/hosts and
etc/defaultrouter.
This module does the I/O; the parsing is pure and lives in ``ipmp.core``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import stat
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
    digests: dict[str, str] = field(default_factory=dict)
    """Hostname file name -> SHA-256 of its bytes as read (unparsable files too)."""
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


MAX_CONFIG_BYTES = 1 << 20
"""The largest configuration file read (1 MiB: 1000 ``addif`` lines take about 60 KiB)."""


def read_config_bytes(path: Path) -> bytes | None:
    """The content of a configuration file, or None if there is none.

    Never blocks and never reads without bound: the file is opened
    non-blocking and must be a regular file (a FIFO or a device planted in
    its place would hang the daemon's loop) of at most ``MAX_CONFIG_BYTES``.
    Raises ``IpmpError`` with one line naming the file otherwise.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise IpmpError(f"{path}: cannot read it: {err.strerror}; skipped") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IpmpError(f"{path}: not a regular file; skipped")
        chunks: list[bytes] = []
        left = MAX_CONFIG_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as err:
        raise IpmpError(f"{path}: cannot read it: {err.strerror}; skipped") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_CONFIG_BYTES:
        raise IpmpError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes; skipped")
    return data


def read_mpathd(root: Path, previous: MpathdConfig | None = None) -> tuple[MpathdConfig, list[Log]]:
    """Parse etc/default/mpathd; a missing file means the defaults.

    A file that cannot be read keeps ``previous`` (or the defaults) in force.
    """
    path = root / "etc" / "default" / "mpathd"
    try:
        data = read_config_bytes(path)
    except IpmpError as err:
        return previous or MpathdConfig(), [Log(3, err.message)]
    if data is None:
        return previous or MpathdConfig(), []
    parsed = parse_mpathd(data.decode("utf-8", errors="replace"), previous or MpathdConfig())
    return parsed.config, list(parsed.messages)


def read_root(root: Path) -> RootConfig:
    """Read every configuration file under ``root``.

    A hostname file that does not parse is reported in ``messages`` and
    skipped, as the boot scripts would carry on with the other interfaces.
    """
    mpathd, messages = read_mpathd(root)
    files: list[HostnameFile] = []
    digests: dict[str, str] = {}
    etc = root / "etc"
    if etc.is_dir():
        for path in sorted(etc.iterdir()):
            if not path.name.startswith(("hostname.", "hostname6.")):
                continue
            try:
                data = read_config_bytes(path)
            except IpmpError as err:
                messages.append(Log(3, err.message))
                continue
            if data is None:
                continue  # gone since the directory was listed
            # One read gives both the digest a restart compares (what was
            # applied) and the text (newlines as read_text would give them).
            digests[path.name] = hashlib.sha256(data).hexdigest()
            try:
                text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
                files.append(load_hostname_file(text, path.name))
            except IpmpError as err:
                messages.append(Log(3, err.message))
            except UnicodeDecodeError:
                messages.append(Log(3, f"{path.name}: not UTF-8 text; skipped"))
    config = RootConfig(mpathd, files, messages=messages, digests=digests)
    config.netmasks = _read_netmasks(root)
    config.hosts = _read_hosts(root)
    config.defaultrouters = _read_defaultrouter(root, config, messages)
    return config


def _read_defaultrouter(
    root: Path, config: RootConfig, messages: list[Log]
) -> tuple[tuple[Family, str], ...]:
    """etc/defaultrouter: the routers of the boot-time default routes (bad lines reported)."""
    try:
        data = read_config_bytes(root / "etc" / "defaultrouter")
    except IpmpError as err:
        messages.append(Log(3, err.message))
        return ()
    if data is None:
        return ()
    parsed = parse_defaultrouter(data.decode("utf-8", errors="replace"), config.resolve_host)
    messages.extend(parsed.messages)
    return parsed.routers


def _lines(path: Path) -> list[list[str]]:
    try:
        data = read_config_bytes(path)
    except IpmpError:
        return []  # netmasks and hosts are optional databases: as if absent
    if data is None:
        return []
    text = data.decode("utf-8", errors="replace")
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
