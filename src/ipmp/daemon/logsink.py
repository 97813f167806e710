"""Where the daemon's log lines go: syslog (facility daemon) or stderr in the foreground."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

from ipmp.core.actions import LOG_DEBUG, LOG_ERR, LOG_INFO, LOG_NOTICE, LOG_WARNING, Log

NOTICE = 25
"""A logging level between INFO and WARNING for syslog's NOTICE (Python has none)."""
logging.addLevelName(NOTICE, "NOTICE")

_LEVELS = {
    LOG_ERR: logging.ERROR,
    LOG_WARNING: logging.WARNING,
    LOG_NOTICE: NOTICE,
    LOG_INFO: logging.INFO,
    LOG_DEBUG: logging.DEBUG,
}


class _Priorities(logging.handlers.SysLogHandler):
    """Maps our levels to the original syslog priorities (NOTICE stays NOTICE)."""

    def mapPriority(self, levelName: str) -> str:
        return {
            "ERROR": "err",
            "WARNING": "warning",
            "NOTICE": "notice",
            "INFO": "info",
            "DEBUG": "debug",
        }.get(levelName, "info")


def make_logger(foreground: bool, debug: bool = False, syslog: str = "/dev/log") -> logging.Logger:
    """``in.mpathd``'s logger: stderr when in the foreground, else syslog (facility daemon)."""
    logger = logging.getLogger("in.mpathd")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    handler: logging.Handler
    if not foreground and Path(syslog).exists():
        handler = _Priorities(address=syslog, facility=logging.handlers.SysLogHandler.LOG_DAEMON)
        handler.ident = f"in.mpathd[{os.getpid()}]: "
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("in.mpathd[%(process)d]: %(message)s"))
    logger.addHandler(handler)
    return logger


def emit(logger: logging.Logger, log: Log) -> None:
    """Write one engine ``Log`` action at its priority."""
    logger.log(_LEVELS.get(log.priority, logging.INFO), log.message)
