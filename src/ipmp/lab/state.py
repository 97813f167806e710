"""The lab's record of what it made, so that ``ipmp lab down`` works after a crash.

Each lab has a run directory (default ``/run/ipmp-lab/<prefix>/``) holding
``state.json``.  The record is written *before* each namespace is created and
each process started, and replaced atomically (write, fsync, rename), so that
whatever happens to the process that builds the lab, the file names
everything that may exist.  A lab whose run directory is elsewhere
(``--run-dir``) is reached through a symlink ``/run/ipmp-lab/<prefix>``.

The registry directory is ``/run/ipmp-lab`` unless ``IPMP_LAB_DIR`` says
otherwise (tests point it at a temporary directory).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ipmp.core.errors import IpmpError

DEFAULT_REGISTRY = Path("/run/ipmp-lab")
REGISTRY_ENV = "IPMP_LAB_DIR"
STATE_NAME = "state.json"
STATE_FORMAT = "ipmp-lab"
STATE_VERSION = 1

_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def registry_dir() -> Path:
    """Where labs are registered: ``$IPMP_LAB_DIR`` or ``/run/ipmp-lab``."""
    return Path(os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY)


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can start namespace names; else raise ``IpmpError``."""
    if not _PREFIX.match(prefix) or prefix.endswith("-"):
        raise IpmpError(
            f"lab prefix {prefix!r}: expected 1 to 40 letters, digits, '_', '.' or '-' "
            "(not starting or ending with '-'), such as ipmp-1a2b3c"
        )
    return prefix


@dataclass
class ProcessRecord:
    """A process the lab started (the daemon): enough to kill it and nothing else.

    ``start_time`` is field 22 of ``/proc/PID/stat``; a PID whose start time
    differs after a crash or reboot belongs to someone else and is left alone.
    """

    name: str
    pid: int
    start_time: int
    argv: list[str]
    log: str


@dataclass
class PortState:
    """The faults set on one switch port (a host NIC's or a neighbour's).

    ``loss`` is in percent: the chance that an exchange (request and reply)
    through the port is lost.
    """

    cable_up: bool = True
    drop: bool = False
    loss: float = 0.0

    @property
    def faulty(self) -> bool:
        return not self.cable_up or self.drop or self.loss > 0


@dataclass
class LabState:
    """Everything ``down`` and the fault verbs need to know about one lab."""

    prefix: str
    run_dir: str
    topology_source: str
    topology_text: str
    nics_up: bool = False
    namespaces: list[str] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    ports: dict[str, PortState] = field(default_factory=dict)
    targets_down: list[str] = field(default_factory=list)
    registry_link: str = ""
    complete: bool = False

    @property
    def path(self) -> Path:
        return Path(self.run_dir) / STATE_NAME

    def port(self, name: str) -> PortState:
        """The fault state of port ``name``, created clean on first use."""
        return self.ports.setdefault(name, PortState())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {"format": STATE_FORMAT, "version": STATE_VERSION, **data}


def write_state(state: LabState) -> None:
    """Replace the state file atomically.

    Raises:
        IpmpError: the file cannot be written.
    """
    path = state.path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    text = json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise IpmpError(f"{path}: cannot write the lab state: {exc.strerror or exc}") from exc


def read_state(path: Path) -> LabState:
    """Read a state file.

    Raises:
        IpmpError: it is missing, unreadable or not a lab state file.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IpmpError(f"{path}: no lab state file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IpmpError(f"{path}: unreadable lab state: {' '.join(str(exc).split())}") from None
    try:
        if data.get("format") != STATE_FORMAT or data.get("version") != STATE_VERSION:
            raise ValueError("not an ipmp-lab version 1 state file")
        return LabState(
            prefix=check_prefix(str(data["prefix"])),
            run_dir=str(data["run_dir"]),
            topology_source=str(data["topology_source"]),
            topology_text=str(data["topology_text"]),
            nics_up=bool(data.get("nics_up", False)),
            namespaces=[str(n) for n in data.get("namespaces", [])],
            processes=[
                ProcessRecord(
                    name=str(p["name"]),
                    pid=int(p["pid"]),
                    start_time=int(p["start_time"]),
                    argv=[str(a) for a in p.get("argv", [])],
                    log=str(p.get("log", "")),
                )
                for p in data.get("processes", [])
            ],
            ports={
                str(name): PortState(
                    cable_up=bool(p.get("cable_up", True)),
                    drop=bool(p.get("drop", False)),
                    loss=float(p.get("loss", 0.0)),
                )
                for name, p in data.get("ports", {}).items()
            },
            targets_down=[str(n) for n in data.get("targets_down", [])],
            registry_link=str(data.get("registry_link", "")),
            complete=bool(data.get("complete", False)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IpmpError(f"{path}: not a lab state file: {' '.join(str(exc).split())}") from None


def registered_labs(registry: Path | None = None) -> dict[str, Path]:
    """Labs recorded in the registry: prefix -> run directory (holding ``state.json``)."""
    base = registry or registry_dir()
    labs: dict[str, Path] = {}
    try:
        entries = sorted(base.iterdir())
    except FileNotFoundError:
        return labs
    except OSError as exc:
        raise IpmpError(f"{base}: cannot list labs: {exc.strerror or exc}") from exc
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if (entry / STATE_NAME).is_file():
            labs[entry.name] = entry
    return labs


def find_lab(prefix: str | None, registry: Path | None = None) -> tuple[str, Path]:
    """The lab called ``prefix``, or the only one registered when ``prefix`` is None.

    Returns its prefix and run directory (which may hold no state file yet
    when ``prefix`` was given: a lab that crashed while starting).

    Raises:
        IpmpError: no lab, or several and no ``prefix`` to choose.
    """
    base = registry or registry_dir()
    if prefix is not None:
        check_prefix(prefix)
        return prefix, base / prefix
    labs = registered_labs(base)
    if not labs:
        raise IpmpError(f"no lab is recorded under {base}; start one with: ipmp lab up TOPOLOGY")
    if len(labs) > 1:
        raise IpmpError(
            f"several labs are recorded under {base} ({', '.join(labs)}); choose one with --prefix"
        )
    ((name, path),) = labs.items()
    return name, path
