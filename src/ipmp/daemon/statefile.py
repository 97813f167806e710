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
