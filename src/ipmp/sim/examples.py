"""The example topologies shipped with the package (the guide's setups)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ipmp.core.errors import IpmpError


def examples_dir() -> Path:
    """The directory holding the shipped ``*.toml`` topologies."""
    return Path(str(resources.files("ipmp") / "examples"))


def example_names() -> list[str]:
    return sorted(p.stem for p in examples_dir().glob("*.toml"))


def example_path(name: str) -> Path:
    """The path of a shipped example by name (``active-active``) or a file path."""
    candidate = Path(name)
    if candidate.suffix == ".toml" and candidate.exists():
        return candidate
    path = examples_dir() / f"{name}.toml"
    if not path.exists():
        raise IpmpError(
            f"no example topology {name!r}; expected one of: {', '.join(example_names())}"
        )
    return path
