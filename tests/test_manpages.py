"""The man pages: made from docs/man/*.md, current, complete, clean roff, shipped in the wheel."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

import ipmp
from ipmp.cli import if_mpadm

REPO = Path(__file__).resolve().parent.parent
MAN = REPO / "src" / "ipmp" / "man"
PAGES = ("in.mpathd.8", "ipmpstat.8", "if_mpadm.8", "ipmp.8")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("manpages", REPO / "packaging" / "manpages.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_pages_are_what_the_sources_make() -> None:
    made = _generator().pages(ipmp.__version__)
    assert sorted(made) == sorted(PAGES)
    for name, text in made.items():
        assert (MAN / name).read_text() == text, f"run python3 packaging/manpages.py ({name})"


def test_the_check_mode_reports_a_stale_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = _generator()
    out = tmp_path / "man"
    out.mkdir()
    monkeypatch.setattr(generator, "OUTPUT", out)
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0
    (out / "ipmp.8").write_text("stale\n")
    assert generator.main(["--check"]) == 1


def _sections(name: str) -> list[str]:
    return [
        line.split('"')[1]
        for line in (MAN / name).read_text().splitlines()
        if line.startswith(".SH")
    ]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_has_the_solaris_sections(name: str) -> None:
    sections = _sections(name)
    for needed in ("NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "EXIT STATUS", "SEE ALSO"):
        assert needed in sections, f"{name} lacks {needed}"
    header = next(line for line in (MAN / name).read_text().splitlines() if line.startswith(".TH"))
    assert f'"ipmp {ipmp.__version__}"' in header


def test_in_mpathd_page_has_the_guide_sections() -> None:
    sections = _sections("in.mpathd.8")
    assert {"OPTIONS", "FAILURE DETECTION TIME", "SIGNALS", "DIAGNOSTICS"} <= set(sections)
    text = (REPO / "docs" / "man" / "in.mpathd.8.md").read_text()
    for key in ("FAILURE_DETECTION_TIME", "FAILBACK", "TRACK_INTERFACES_ONLY_WITH_GROUPS"):
        assert f"`{key}=" in text or f"`{key}`" in text


def test_if_mpadm_page_lists_the_messages_the_command_prints() -> None:
    text = (REPO / "docs" / "man" / "if_mpadm.8.md").read_text()
    for message in (*if_mpadm.SOLARIS_MESSAGES, if_mpadm.NO_DAEMON, if_mpadm.USAGE):
        assert f"`{message}`" in text


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
@pytest.mark.parametrize("name", PAGES)
def test_pages_render_without_warnings(name: str) -> None:
    done = subprocess.run(
        ["groff", "-man", "-ww", "-z", "-Tutf8", str(MAN / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.slow
def test_the_wheel_ships_the_pages_and_the_license(tmp_path: Path) -> None:
    # Built from a copy: setuptools leaves build/ behind in the tree it builds.
    tree = tmp_path / "tree"
    shutil.copytree(
        REPO,
        tree,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "*.egg-info", "__pycache__", ".venv", ".*_cache", ".hypothesis"
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path),
            str(tree),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("ipmp-*.whl")
    assert wheel.name.startswith(f"ipmp-{ipmp.__version__}-")
    names = zipfile.ZipFile(wheel).namelist()
    for page in PAGES:
        assert f"ipmp/man/{page}" in names
        assert f"ipmp-{ipmp.__version__}.data/data/share/man/man8/{page}" in names
    assert any(".dist-info/" in name and name.endswith("/LICENSE") for name in names)
