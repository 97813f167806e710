"""Probe-based failure detection for one interface and family (S10 phyint_inst).

This module holds the per-instance state: its probe targets with their RTT
estimators, the ring of recent probes, the send schedule.  It never decides
that a NIC failed: it reports loss and success runs, and the engine combines
them with link state and the other family (guide: Probe-Based Failure
Detection; facts §1, §2).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from ipmp.core.actions import LOG_INFO, Action, Log, SendProbe
from ipmp.core.constants import (
    FAILURE_DETECTION_QP,
    ICMP_ECHO_LENGTH,
    MAX_PROBE_TARGETS,
    MAX_RANDOM_FACTOR,
    MIN_PROBE_TARGETS,
    MIN_RANDOM_FACTOR,
    MIN_RECOVERY_TIME,
    PROBE_MULTI,
    PROBE_RTT,
    PROBE_STATS_COUNT,
    PROBE_UNI,
)
from ipmp.core.events import ProbeReplyReceived
from ipmp.core.types import ALL_HOSTS, Family, RandomSource

SEQ_MOD = 1 << 16


class TargetState(enum.Enum):
    """TG_ACTIVE, TG_UNUSED, TG_SLOW, TG_DEAD."""

    ACTIVE = 1
    UNUSED = 2
    SLOW = 3
    DEAD = 4


class ProbeState(enum.Enum):
    """PR_UNACKED, PR_ACKED, PR_LOST (PR_UNUSED is an empty ring slot)."""

    UNACKED = 1
    ACKED = 2
    LOST = 3


@dataclass
class Target:
    """One probe target with its Jacobson/Karels RTT estimator (seconds).

    ``avg`` is the smoothed RTT and ``dev4`` four times the mean deviation, so
    ``crtt = avg + dev4``; ``avg < 0`` means "no data yet" (crtt 0).
    """

    address: str
    router: bool
    state: TargetState = TargetState.ACTIVE
    state_since: float = 0.0
    avg: float = -1.0
    dev4: float = 0.0
    deferred: list[float] = field(default_factory=list)
    highest_acked_seq: int = -1
    sent: int = 0
    acked: int = 0
    lost: int = 0

    @property
    def crtt(self) -> float:
        return 0.0 if self.avg < 0 else self.avg + self.dev4

    def reset_rtt(self) -> None:
        self.avg, self.dev4 = -1.0, 0.0
        self.deferred.clear()

    def fold(self, sample: float) -> None:
        """Feed one RTT sample (seconds) into the estimator."""
        if self.avg < 0:
            # The first sample m gives avg m and 4*mdev 2m: crtt 3m.
            self.avg, self.dev4 = sample, 2.0 * sample
            return
        err = sample - self.avg
        self.avg = max(0.0, self.avg + err / 8.0)
        self.dev4 += abs(err) - self.dev4 / 4.0

    def crtt_with(self, sample: float) -> float:
        """What crtt would be after folding ``sample`` (for the suspect-sample test)."""
        probe = Target(self.address, self.router, avg=self.avg, dev4=self.dev4)
        probe.fold(sample)
        return probe.crtt


@dataclass
class Probe:
    """One sent unicast probe in the history ring."""

    seq: int
    target: Target
    sent_at: float
    state: ProbeState = ProbeState.UNACKED
    timeout_at: float = 0.0


@dataclass(frozen=True)
class Settled:
    """A probe that was answered or lost, kept for ``ipmpstat -p`` and the metrics."""

    probe: Probe
    rtt: float | None = None
    """Seconds from the send to the daemon's handling of the reply; None if lost."""
    net_rtt: float | None = None
    """Seconds from the send to the kernel's receipt of the reply, when known."""


@dataclass
class ReplyVerdict:
    """What a reply meant: accepted (maybe with an RTT sample) or ignored with a reason."""

    accepted: bool
    rtt: float | None = None
    target: Target | None = None
    new_host_target: str | None = None
    logs: list[Log] = field(default_factory=list)


def _ms(seconds: float) -> int:
    """A time as the 32-bit millisecond counter the original logs."""
    return int(seconds * 1000) & 0xFFFFFFFF


def seq_distance(snxt: int, seq: int) -> int:
    """How many sequence numbers ``seq`` lies behind ``snxt`` (mod 2^16)."""
    return (snxt - seq) % SEQ_MOD


class ProbeInstance:
    """Probing state of one NIC in one family (a Solaris phyint instance)."""

    def __init__(self, nic: str, family: Family, icmp_id: int, created_at: float) -> None:
        self.nic = nic
        self.family = family
        self.icmp_id = icmp_id
        self.test_address: str | None = None
        self.test_network: str = ""
        self.targets: list[Target] = []
        self.targets_are_routers = False
        self.ring: deque[Probe] = deque(maxlen=PROBE_STATS_COUNT)
        self.snxt = 1
        self.rotate = 0
        self.base = 0.0
        self.next_send: float | None = None
        # guide: spanning-tree quiet period (facts §1.6)
        self.quiet_until = created_at + FAILURE_DETECTION_QP
        self.sent = 0
        self.acked = 0
        self.lost = 0
        self.ambiguous = 0
        self.missed = 0
        # Settled probes, newest last, for ipmpstat -p (bounded: nobody may drain it).
        self.settled: deque[Settled] = deque(maxlen=256)
        self.last_ack_sent_at: float | None = None

    # -- targets -------------------------------------------------------------

    def active_targets(self) -> list[Target]:
        return [t for t in self.targets if t.state is TargetState.ACTIVE]

    def find_target(self, address: str) -> Target | None:
        for target in self.targets:
            if target.address == address:
                return target
        return None

    def set_router_targets(self, addresses: list[str], now: float) -> None:
        """Make ``addresses`` (best first) the router targets; routers always win over hosts."""
        keep = {t.address: t for t in self.targets if t.router}
        fresh: list[Target] = []
        for address in addresses:
            target = keep.get(address) or Target(address, router=True, state_since=now)
            fresh.append(target)
        if not fresh and self.targets_are_routers:
            self.targets = []
            self.targets_are_routers = False
            return
        if not fresh:
            return
        self.targets = fresh
        self.targets_are_routers = True
        self.refresh_active(now)

    def add_host_target(self, address: str, now: float) -> bool:
        """Adopt a host that answered an all-hosts probe; False if not taken."""
        if self.targets_are_routers or self.find_target(address) is not None:
            return False
        if len(self.targets) >= MAX_PROBE_TARGETS:
            return False
        self.targets.append(Target(address, router=False, state_since=now))
        return True

    def flush_host_targets(self) -> None:
        """Forget host targets so that they are discovered again (group failure)."""
        if not self.targets_are_routers:
            self.targets = []

    def refresh_active(self, now: float) -> None:
        """Age DEAD/SLOW targets and keep up to MAX_PROBE_TARGETS active (facts §2)."""
        for target in self.targets:
            retired = target.state in (TargetState.DEAD, TargetState.SLOW)
            if retired and now - target.state_since >= MIN_RECOVERY_TIME:
                target.state = TargetState.UNUSED
                target.state_since = now
        active = len(self.active_targets())
        for target in self.targets:
            if active >= MAX_PROBE_TARGETS:
                break
            if target.state is TargetState.UNUSED:
                target.state = TargetState.ACTIVE
                target.state_since = now
                active += 1
        if active == 0 and self.targets:
            # No active router left: bring back up to MIN_PROBE_TARGETS, best first.
            order = {TargetState.UNUSED: 0, TargetState.SLOW: 1, TargetState.DEAD: 2}
            for target in sorted(
                self.targets, key=lambda t: (order.get(t.state, 3), t.state_since)
            ):
                if active >= MIN_PROBE_TARGETS:
                    break
                target.state = TargetState.ACTIVE
                target.state_since = now
                active += 1

    def retire_target(self, target: Target, now: float, state: TargetState) -> None:
        """A router goes DEAD or SLOW (kept, retried later); a host target is dropped."""
        target.reset_rtt()
        if target.router:
            target.state = state
            target.state_since = now
        elif target in self.targets:
            self.targets.remove(target)
        self.refresh_active(now)

    def reset_rtts(self) -> None:
        for target in self.targets:
            target.reset_rtt()

    # -- scheduling ----------------------------------------------------------

    def start(self, now: float, interval: float, rng: RandomSource) -> None:
        """(Re)start the schedule at a random point of the first interval."""
        self.base = now + rng.uniform(0.0, interval)
        self.next_send = self.base

    def stop(self) -> None:
        self.next_send = None

    def clear_history(self) -> None:
        """Forget every probe so old successes cannot count towards repair."""
        self.ring.clear()

    def _newest(self) -> list[Probe]:
        """The two newest probes, oldest first: only they can be outstanding."""
        ring = self.ring
        return [ring[-2], ring[-1]] if len(ring) >= 2 else list(ring)

    def deadline(self) -> float | None:
        due = self.next_send
        for probe in self._newest():
            if probe.state is ProbeState.UNACKED and (due is None or probe.timeout_at < due):
                due = probe.timeout_at
        return due

    def expire(self, now: float) -> None:
        """Mark as lost every outstanding probe whose timeout has passed."""
        for probe in self._newest():
            if probe.state is ProbeState.UNACKED and probe.timeout_at <= now:
                self.mark_lost(probe)

    def mark_lost(self, probe: Probe) -> None:
        probe.state = ProbeState.LOST
        probe.target.lost += 1
        self.lost += 1
        self.settled.append(Settled(probe))

    def send_due(self, now: float, interval: float, rng: RandomSource, source: str) -> list[Action]:
        """Send the probe due now, if any, and schedule the next one."""
        if self.next_send is None or now < self.next_send or self.test_address is None:
            return []
        actions: list[Action] = []
        if len(self.ring) >= 2 and self.ring[-2].state is ProbeState.UNACKED:
            # At most two probes may be outstanding: the older one is lost now.
            self.mark_lost(self.ring[-2])
        stamp = int(now * 1000) & 0xFFFFFFFF
        active = self.active_targets()
        if not active:
            actions.append(self._probe(source, ALL_HOSTS[self.family], 0, stamp, PROBE_MULTI))
        else:
            target = active[self.rotate % len(active)]
            self.rotate += 1
            timeout = target.crtt if target.crtt > 0 else interval
            probe = Probe(self.snxt, target, now, timeout_at=now + timeout)
            self.ring.append(probe)
            target.sent += 1
            self.sent += 1
            actions.append(self._probe(source, target.address, self.snxt, stamp, PROBE_UNI))
            self.snxt = (self.snxt + 1) % SEQ_MOD
            if len(self.targets) == 1 and not self.targets_are_routers:
                # One host target is too few: keep looking for more.
                actions.append(self._probe(source, ALL_HOSTS[self.family], 0, stamp, PROBE_MULTI))
        self.next_send = self.base + rng.uniform(
            MIN_RANDOM_FACTOR * interval, MAX_RANDOM_FACTOR * interval
        )
        self.base += interval
        if self.next_send <= now:
            self.next_send = now + MIN_RANDOM_FACTOR * interval
        return actions

    def _probe(self, source: str, target: str, seq: int, stamp: int, kind: int) -> SendProbe:
        return SendProbe(self.nic, self.family, source, target, self.icmp_id, seq, stamp, kind)

    def realign(self, now: float, interval: float) -> list[Log]:
        """After a long stall, push the schedule forward by whole intervals (facts §1.3)."""
        if self.next_send is None or now <= self.next_send + interval:
            return []
        missed = int((now - self.next_send) // interval)
        self.base += missed * interval
        self.next_send += missed * interval
        self.missed += missed
        return [
            Log(
                LOG_INFO,
                f"missed sending {missed} probes cur_time {_ms(now)} "
                f"snxt_time {_ms(self.next_send)} snxt_basetime {_ms(self.base)}",
            )
        ]

    # -- replies -------------------------------------------------------------

    def receive(self, reply: ProbeReplyReceived, max_rtt: float) -> ReplyVerdict:
        """Judge one echo reply (facts §1.7 reply acceptance)."""
        where = f"{reply.source} on {self.nic}"
        if reply.icmp_id != self.icmp_id:
            return ReplyVerdict(False)  # someone else's echo: not ours at all
        if reply.length < ICMP_ECHO_LENGTH:
            return self._ambiguous(f"probe reply too short: {reply.length} bytes from {where}")
        if reply.kind == PROBE_MULTI:
            return ReplyVerdict(True, new_host_target=reply.source)
        if reply.kind == PROBE_RTT:
            return ReplyVerdict(False)
        if reply.kind != PROBE_UNI:
            return self._ambiguous(f"probe reply type: {reply.kind} from {where}")
        distance = seq_distance(self.snxt, reply.seq)
        if distance == 0 or distance > PROBE_STATS_COUNT:
            return self._ambiguous(
                f"out of window probe seq {reply.seq} snxt {self.snxt} "
                f"on {self.nic} from {reply.source}"
            )
        # The ring holds consecutive sequence numbers, newest last (a cleared
        # history only shortens it): the probe is ``distance`` from the end.
        ring = self.ring
        probe = ring[-distance] if distance <= len(ring) else None
        if probe is not None and probe.seq != reply.seq:
            probe = None
        if probe is None or probe.target.address != reply.source:
            status = probe.state.value if probe is not None else 0
            return self._ambiguous(
                f"probe status {status} Fake probe reply seq {reply.seq} snxt {self.snxt} "
                f"on {self.nic} from {reply.source}"
            )
        if reply.timestamp_ms != int(probe.sent_at * 1000) & 0xFFFFFFFF:
            # Right id, sequence and source but not the time we stamped: a
            # forgery (the original only used the stamp for the RTT sample).
            return self._ambiguous(
                f"probe timestamp {reply.timestamp_ms} Fake probe reply seq {reply.seq} "
                f"snxt {self.snxt} on {self.nic} from {reply.source}"
            )
        if probe.state is ProbeState.ACKED:
            return self._ambiguous(
                f"probe status {probe.state.value} Duplicate probe reply seq {reply.seq} "
                f"snxt {self.snxt} on {self.nic} from {reply.source}"
            )
        if probe.state is ProbeState.LOST:
            self.lost -= 1
            probe.target.lost -= 1
        probe.state = ProbeState.ACKED
        probe.target.acked += 1
        self.acked += 1
        if self.last_ack_sent_at is None or probe.sent_at > self.last_ack_sent_at:
            self.last_ack_sent_at = probe.sent_at
        if any(p is probe for p in self._newest()):
            self.quiet_until = min(self.quiet_until, reply.now)
        rtt = ((int(reply.now * 1000) - reply.timestamp_ms) % (1 << 32)) / 1000.0
        usable = 0 <= rtt <= max_rtt and reply.seq != probe.target.highest_acked_seq
        if usable and probe.target.highest_acked_seq >= 0:
            usable = seq_distance(reply.seq, probe.target.highest_acked_seq) < SEQ_MOD // 2
        if usable:
            probe.target.highest_acked_seq = reply.seq
        # For ipmpstat -p: RTT up to the daemon's handling, NETRTT up to the
        # kernel's receipt (illumos' ACKPROC and ACKRECV times, facts §7.1).
        # The kernel's stamp reaches the loop's clock through the wall clock: a
        # clock step in between could put it outside [0, RTT]; it never is.
        rtt_now = max(0.0, reply.now - probe.sent_at)
        net = None
        if reply.received_at is not None:
            net = min(rtt_now, max(0.0, reply.received_at - probe.sent_at))
        self.settled.append(Settled(probe, rtt_now, net))
        return ReplyVerdict(True, rtt=rtt if usable else None, target=probe.target)

    def _ambiguous(self, message: str) -> ReplyVerdict:
        self.ambiguous += 1
        return ReplyVerdict(False, logs=[Log(LOG_INFO, message)])

    # -- runs ----------------------------------------------------------------

    def _settled(self) -> Iterator[Probe]:
        """The ring newest first, skipping the newest probes still in flight."""
        in_flight = True
        for probe in reversed(self.ring):
            if in_flight and probe.state is ProbeState.UNACKED:
                continue
            in_flight = False
            yield probe

    def _run(self, state: ProbeState) -> list[Probe]:
        """The newest settled probes that are all in ``state``, newest first."""
        run: list[Probe] = []
        for probe in self._settled():
            if probe.state is not state:
                break
            run.append(probe)
        return run

    def loss_run(self) -> int:
        """Consecutive lost probes, newest first, across all targets."""
        return len(self._run(ProbeState.LOST))

    def first_loss_time(self) -> float | None:
        """Send time of the oldest probe in the current loss run (Solaris tff)."""
        run = self._run(ProbeState.LOST)
        return run[-1].sent_at if run else None

    def ack_run(self) -> int:
        """Consecutive answered probes, newest first."""
        return len(self._run(ProbeState.ACKED))

    def current_target_ack_run(self) -> int:
        """Consecutive answers from the target of the newest settled probe (facts §1.4)."""
        newest = next(self._settled(), None)
        return 0 if newest is None else self._target_run(newest.target, ProbeState.ACKED)

    def target_loss_run(self, target: Target) -> int:
        """Consecutive losses of one target (a dead target, not a dead NIC)."""
        return self._target_run(target, ProbeState.LOST)

    def _target_run(self, target: Target, state: ProbeState) -> int:
        """The newest settled probes of ``target`` that are all in ``state``."""
        run = 0
        for probe in self._settled():
            if probe.target is not target:
                continue
            if probe.state is not state:
                break
            run += 1
        return run

    def in_quiet_period(self, now: float) -> bool:
        return now < self.quiet_until
