"""Shared test settings.

Tests marked ``root`` build real network namespaces; they skip when not run as
root.  CI runs as root with IPMP_REQUIRE_ROOT_TESTS=1 (set by .ci/run): then a
skipped root test fails the run, so the real tier can never silently vanish.
Tests marked ``slow`` take seconds each; ``pytest -m "not slow and not root"``
is the quick loop while editing, and CI runs every marker.
"""

from __future__ import annotations

import os

import pytest

from ipmp.core.engine import Engine
from ipmp.daemon.main import CHECK_TIMERS_ENV

REQUIRE_ROOT = os.environ.get("IPMP_REQUIRE_ROOT_TESTS") == "1"
_root_skips: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "root: needs root and builds network namespaces")
    config.addinivalue_line(
        "markers",
        "slow: takes seconds (stateful machine, subprocess daemons, benchmark smokes); "
        'the fast loop is pytest -m "not slow and not root"',
    )
    # Every engine the tests run, in-process or as a daemon, checks its timer
    # index against a walk over all timers at every deadline.
    Engine.check_timers = True
    os.environ[CHECK_TIMERS_ENV] = "1"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "root" in report.keywords:
        _root_skips.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if REQUIRE_ROOT and _root_skips:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"IPMP_REQUIRE_ROOT_TESTS=1 but {len(_root_skips)} root test(s) were skipped: "
                + ", ".join(_root_skips[:5]),
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/*.trace from this run (review the diff before committing)",
    )
