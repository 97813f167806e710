"""Reading the Solaris configuration files under a root directory.

Everything Solaris keeps in /etc lives under one configurable root
(``--root DIR`` / ``IPMP_ROOT``, default ``/``): etc/default/mpathd,
etc/hostname.<if>, etc/hostname6.<if>, etc/inet/netmasks and etc/inet/hosts.
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
    unusable: set[str] = field(default_factory=set)
    """Hostname files that exist but could not be read, decoded or parsed."""

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
MAX_DATABASE_BYTES = 64 << 20
"""The largest etc/inet/hosts or netmasks read (block-list hosts files run to megabytes)."""


def read_capped(fd: int, limit: int) -> bytes:
    """What ``fd`` holds, but at most ``limit + 1`` bytes (more than ``limit``: too big)."""
    chunks: list[bytes] = []
    left = limit + 1
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_config_bytes(path: Path, limit: int = MAX_CONFIG_BYTES) -> bytes | None:
    """The content of a configuration file, or None if there is none.

    Never blocks and never reads without bound: the file is opened
    non-blocking and must be a regular file (a FIFO or a device planted in
    its place would hang the daemon's loop) of at most ``limit`` bytes.
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
        data = read_capped(fd, limit)
    except OSError as err:
        raise IpmpError(f"{path}: cannot read it: {err.strerror}; skipped") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise IpmpError(f"{path}: larger than {limit} bytes; skipped")
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
    unusable: set[str] = set()
    etc = root / "etc"
    if etc.is_dir():
        for path in sorted(etc.iterdir()):
            if path.name.startswith(("hostname.", "hostname6.")):
                _load(path, files, messages, digests, unusable)
    config = RootConfig(mpathd, files, messages=messages, digests=digests, unusable=unusable)
    config.netmasks = _read_netmasks(root, messages)
    config.hosts = _read_hosts(root, messages)
    return config


def read_hostname_files(
    root: Path, ifname: str, digests: dict[str, str] | None = None
) -> tuple[list[HostnameFile], list[str]]:
    """The hostname files of one interface as they read now, for a NIC attached at run time.

    guide (Attaching NICs): "If an /etc/hostname.interface file already exists
    when the interface is attached, then RCM automatically configures the
    interface according to the contents of this file."  A file that does not
    parse is skipped with the same one-line message as at boot.  ``digests``
    (the daemon's record of what it applied, for a restart) is brought up to
    date for this interface's files.
    """
    files: list[HostnameFile] = []
    messages: list[Log] = []
    seen: dict[str, str] = {}
    for prefix in ("hostname.", "hostname6."):
        name = f"{prefix}{ifname}"
        _load(root / "etc" / name, files, messages, seen, set())
        if digests is not None:
            digests.pop(name, None)
    if digests is not None:
        digests.update(seen)
    return files, [log.message for log in messages]


def _load(
    path: Path,
    files: list[HostnameFile],
    messages: list[Log],
    digests: dict[str, str],
    unusable: set[str],
) -> None:
    """Parse one hostname file into ``files``, or say in ``messages`` why it is skipped.

    A missing file is no message; the digest (of the bytes as read, for a
    restart to compare) goes into ``digests``, the name of a file that exists
    but cannot be used into ``unusable``.
    """
    try:
        data = read_config_bytes(path)
    except IpmpError as err:
        messages.append(Log(3, err.message))
        unusable.add(path.name)
        return
    if data is None:
        return
    # One read gives both the digest a restart compares (what was applied)
    # and the text (newlines as read_text would give them).
    digests[path.name] = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        files.append(load_hostname_file(text, path.name))
    except IpmpError as err:
        messages.append(Log(3, err.message))
        unusable.add(path.name)
    except UnicodeDecodeError:
        messages.append(Log(3, f"{path.name}: not UTF-8 text; skipped"))
        unusable.add(path.name)


def _lines(path: Path, messages: list[Log]) -> list[list[str]]:
    try:
        data = read_config_bytes(path, MAX_DATABASE_BYTES)
    except IpmpError as err:
        # netmasks and hosts are optional databases: as if absent, but said.
        messages.append(Log(3, err.message))
        return []
    if data is None:
        return []
    text = data.decode("utf-8", errors="replace")
    return [
        line.split("#", 1)[0].split() for line in text.splitlines() if line.split("#", 1)[0].strip()
    ]


def _read_netmasks(root: Path, messages: list[Log]) -> list[tuple[ipaddress.IPv4Network, int]]:
    """etc/inet/netmasks: ``network-number netmask`` lines; bad lines are ignored."""
    out: list[tuple[ipaddress.IPv4Network, int]] = []
    for fields in _lines(root / "etc" / "inet" / "netmasks", messages):
        if len(fields) < 2:
            continue
        try:
            mask = ipaddress.IPv4Network(f"0.0.0.0/{fields[1]}").prefixlen
            network = ipaddress.IPv4Network(f"{fields[0]}/{mask}", strict=False)
        except ValueError:
            continue
        out.append((network, mask))
    return out


def _read_hosts(root: Path, messages: list[Log]) -> dict[str, str]:
    """etc/inet/hosts (or etc/hosts): name -> address, first entry wins."""
    out: dict[str, str] = {}
    for name in ("inet/hosts", "hosts"):
        for fields in _lines(root / "etc" / name, messages):
            if len(fields) < 2:
                continue
            try:
                address = str(ipaddress.ip_address(fields[0]))
            except ValueError:
                continue
            for host in fields[1:]:
                out.setdefault(host, address)
    return out
