"""Reading configuration files under a root: never blocking, never unbounded."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ipmp.core.hostname_files import hostname_lines
from ipmp.core.mpathd_config import MpathdConfig
from ipmp.rootfs import MAX_CONFIG_BYTES, read_mpathd, read_root

FILE = "192.0.2.19 netmask + broadcast + group test up\n"


def _read_in_thread(root: Path) -> list[str]:
    """read_root in a thread, so that a hang fails the test instead of stalling it."""
    out: list[str] = []
    worker = threading.Thread(
        target=lambda: out.extend(m.message for m in read_root(root).messages), daemon=True
    )
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "read_root blocked"
    return out


def test_a_fifo_or_directory_in_place_of_a_config_file_is_skipped_not_waited_on(
    tmp_path: Path,
) -> None:
    etc = tmp_path / "etc"
    (etc / "default").mkdir(parents=True)
    (etc / "hostname.eth1").write_text(FILE)
    os.mkfifo(etc / "hostname.eth0")  # no writer: a blocking open would hang
    os.mkfifo(etc / "default" / "mpathd")
    (etc / "hostname6.eth0").mkdir()
    messages = _read_in_thread(tmp_path)
    assert f"{etc / 'hostname.eth0'}: not a regular file; skipped" in messages
    assert f"{etc / 'hostname6.eth0'}: not a regular file; skipped" in messages
    assert f"{etc / 'default' / 'mpathd'}: not a regular file; skipped" in messages
    assert [f.ifname for f in read_root(tmp_path).hostname_files] == ["eth1"]


def test_an_oversized_file_is_refused_in_one_line(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "default").mkdir(parents=True)
    (etc / "hostname.eth0").write_text("#" * (MAX_CONFIG_BYTES + 1))
    messages = _read_in_thread(tmp_path)
    assert messages == [f"{etc / 'hostname.eth0'}: larger than {MAX_CONFIG_BYTES} bytes; skipped"]


def test_an_unreadable_mpathd_keeps_the_running_configuration(tmp_path: Path) -> None:
    (tmp_path / "etc" / "default").mkdir(parents=True)
    os.mkfifo(tmp_path / "etc" / "default" / "mpathd")
    running = MpathdConfig(failure_detection_time_ms=2000)
    config, messages = read_mpathd(tmp_path, running)
    assert config == running and len(messages) == 1


@pytest.mark.parametrize(
    "text",
    ["a" * 1_000_000, "\\" * 1_000_000 + " x", '""' * 500_000, ("x\\ y " * 200_000) + "\n"],
    ids=["long-token", "backslashes", "empty-quotes", "backslash-blank-pairs"],
)
def test_the_tokenizer_is_linear(text: str) -> None:
    """A 1 MB token took 15 s with the quadratic tokenizer, a line of backslashes hours.

    Linear, each of these takes well under a second; the 30 s bound only turns
    a hang back into a failure.
    """
    out: list[int] = []

    def tokenize() -> None:
        lines = hostname_lines(text, "hostname.eth0")
        out.append(sum(len(token) for line in lines for token in line.tokens))

    worker = threading.Thread(target=tokenize, daemon=True)
    worker.start()
    worker.join(30)
    assert out and out[0] <= len(text)
