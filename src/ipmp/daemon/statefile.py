"""Atomic state files: write to a temporary file, fsync, rename, fsync the directory.

A reader therefore sees the old file or the new one, never a torn one, even
after SIGKILL or a power cut in the middle of a write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ipmp.core.errors import IpmpError


def write_json(path: Path, data: Any, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` as JSON, atomically (and durably unless told not to)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when there is no file.

    A file that is not valid JSON is moved aside to ``<name>.corrupt`` (kept
    for the administrator) and reported with ``IpmpError``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError as err:
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        raise IpmpError(f"{path}: not valid JSON ({err}); moved aside to {aside.name}") from None


BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
PROC_STAT = Path("/proc/stat")


def boot_id() -> str:
    """This boot's random ID (Linux), or "" where it cannot be read."""
    try:
        return BOOT_ID_PATH.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def boot_time() -> float | None:
    """When this host booted (``btime`` of /proc/stat, seconds since the epoch), if known."""
    try:
        text = PROC_STAT.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "btime" and value.strip().isdigit():
            return float(value.strip())
    return None


def written_this_boot(path: Path) -> bool:
    """Whether ``path`` was written after this host booted (True if the boot time is unknown)."""
    booted = boot_time()
    return booted is None or path.stat().st_mtime >= booted


def read_this_boot(path: Path, boot: str) -> tuple[Any | None, str | None]:
    """The JSON in ``path`` if it was written during this boot, else None and why.

    The daemon records the boot ID in what it writes; a file without one (or
    when the boot ID is unknown) is judged by its modification time against
    the boot time.  A file of an earlier boot is moved aside to
    ``<name>.stale``: what it describes died with that boot's kernel.  A file
    that is not valid JSON raises ``IpmpError`` (see ``read_json``).
    """
    data = read_json(path)
    if data is None:
        return None, None
    recorded = data.get("boot_id") if isinstance(data, dict) else None
    if isinstance(recorded, str) and recorded and boot:
        if recorded == boot:
            return data, None
        why = f"boot ID {recorded}, now {boot}"
    elif written_this_boot(path):
        return data, None
    else:
        why = "older than the boot"
    aside = path.with_name(path.name + ".stale")
    os.replace(path, aside)
    return None, f"{path}: written before this boot ({why}); moved aside to {aside.name}"
