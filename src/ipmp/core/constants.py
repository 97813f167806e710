"""Constants of the original in.mpathd (mpd_defs.h), in the engine's units.

Times are seconds (the engine's unit) unless the name ends in ``_MS``.
"""

from __future__ import annotations

NUM_PROBE_FAILS = 5
"""Consecutive lost probes that fail an interface."""

NUM_PROBE_REPAIRS = 10
"""Consecutive answered probes that repair an interface."""

MIN_RANDOM_FACTOR = 0.5
MAX_RANDOM_FACTOR = 1.0
"""A probe leaves at a random moment in this fraction of its interval."""

MIN_PROBE_TARGETS = 3
MAX_PROBE_TARGETS = 5
"""At most this many active targets per interface and family."""

MIN_RECOVERY_TIME = 60.0
"""A slow or dead target may be used again after this long."""

MIN_SETTLING_TIME = 60.0
"""After FDT was raised, it is not lowered for this long."""

TESTADDR_CONF_TIME = 20.0
"""Grace period before saying that an interface has no test address."""

PROBE_STATS_COUNT = NUM_PROBE_REPAIRS * MAX_PROBE_TARGETS + 2
"""Size of the probe history ring and of the sequence acceptance window (52)."""

FAILURE_DETECTION_TIME_MS = 10000
MIN_FAILURE_DETECTION_TIME_MS = 100

FAILURE_DETECTION_QP = 40.0
"""Quiet period after an interface instance is created (spanning tree)."""

NEXT_FDT_MULTIPLE = 2
LOWER_FDT_TRIGGER = 4
EXCEPTION_FACTOR = 2

IF_SCAN_INTERVAL = 20.0
"""Invariants are re-checked at least this often."""

MAXDEFERREDRTT = 1
LINK_UP_PERMIN = 2
"""More link-ups than this in a minute disable failback (link flap damping)."""

PROBE_UNI = 0x1234
PROBE_MULTI = 0x5678
PROBE_RTT = 0x9ABC

ICMP_ECHO_LENGTH = 16
"""Our probes carry an 8-byte ICMP header, a 32-bit timestamp and a 32-bit type."""

GROUP_NAME_MAX = 31
"""LIFGRNAMSIZ - 1: the longest group name in bytes."""

IFNAME_MAX = 15
"""IFNAMSIZ - 1 on Linux: the longest interface name, logical unit included."""
