"""The daemon's log lines reach syslog at the original priorities (facility daemon)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ipmp.core.actions import LOG_DEBUG, LOG_ERR, LOG_INFO, LOG_NOTICE, LOG_WARNING, Log
from ipmp.daemon.logsink import emit, make_logger

DAEMON = 3  # LOG_DAEMON >> 3


@pytest.mark.parametrize(
    ("priority", "code"),
    [(LOG_ERR, 3), (LOG_WARNING, 4), (LOG_NOTICE, 5), (LOG_INFO, 6), (LOG_DEBUG, 7)],
)
def test_each_priority_reaches_syslog_as_itself(tmp_path: Path, priority: int, code: int) -> None:
    path = tmp_path / "log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sink:
        sink.bind(str(path))
        sink.settimeout(5)
        logger = make_logger(foreground=False, debug=True, syslog=str(path))
        emit(logger, Log(priority, "Successfully failed over from NIC hme0 to NIC hme1"))
        line = sink.recv(4096).decode()
        for handler in logger.handlers:
            handler.close()
    assert line.startswith(f"<{DAEMON * 8 + code}>in.mpathd[")
    assert line.rstrip("\x00").endswith("Successfully failed over from NIC hme0 to NIC hme1")
