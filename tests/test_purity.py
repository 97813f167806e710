"""ipmp.core stays pure: no I/O, no clock, no threads, no randomness of its own."""

from __future__ import annotations

import ast
from pathlib import Path

import ipmp.core

FORBIDDEN = {
    "socket",
    "asyncio",
    "threading",
    "subprocess",
    "time",
    "random",
    "os",
    "select",
    "selectors",
    "signal",
    "multiprocessing",
    "datetime",
    "pathlib",
    "io",
    "shutil",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_nothing_impure() -> None:
    core = Path(ipmp.core.__file__).parent
    files = sorted(core.glob("*.py"))
    assert len(files) > 5
    offenders = {f.name: sorted(_imports(f) & FORBIDDEN) for f in files}
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_core_calls_no_builtin_io() -> None:
    core = Path(ipmp.core.__file__).parent
    for path in sorted(core.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"open", "print", "input"}, (
                    f"{path.name} calls {node.func.id}"
                )
