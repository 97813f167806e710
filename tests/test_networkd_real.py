"""in.mpathd beside the real systemd-networkd managing the same NICs (root only).

networkd configures each NIC's data address and a default route, with the
settings the README's "Running beside a network manager" names; in.mpathd
runs the same group from its hostname files.  Through a cable pull, the
repair and a networkd restart (SIGKILL, start again) during the failover and
after the failback, the invariant of tests/test_linux_real.py must hold:
every data address exactly once, on a healthy interface; the test addresses
and their policy rules where they were.  See tests/networkdtools.py for how
networkd runs without touching the machine's own /etc/systemd or /run.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

import test_linux_real
from ipmp.lab.lab import Lab
from networkdtools import AddressEvents, Networkd, missing, version
from test_linux_real import DATA, TEST_ADDRESSES, RealHost, topology_text, wait_for

pytestmark = pytest.mark.root

make_lab = test_linux_real.make_lab  # the namespace-lab fixture, built and removed per test

NETWORKD_CONF = """\
[Network]
# in.mpathd's rules "from <test address> lookup 100NN" and the routes in
# those tables are foreign to networkd: keep them.
ManageForeignRoutingPolicyRules=no
ManageForeignRoutes=no
"""


def network_file(nic: str, address: str, metric: int) -> str:
    """The .network file of one group member, as the README shows it."""
    return f"""\
[Match]
Name={nic}

[Network]
Address={address}/24
# Do not drop foreign addresses (test addresses, data addresses moved here).
KeepConfiguration=static
# Neither drop nor re-add anything when the carrier goes and comes back.
ConfigureWithoutCarrier=yes
IgnoreCarrierLoss=yes
# The kernel's link-local address is the IPv6 test address.
LinkLocalAddressing=ipv6
IPv6AcceptRA=no

[Route]
Gateway=192.0.2.1
# Installable without an address on the NIC: in.mpathd may have just
# removed the copy networkd added (else: "Nexthop has invalid gateway", and
# networkd gives up on the link).
GatewayOnLink=yes
Metric={metric}
"""


NETWORKS = {
    "10-ipmp-eth0.network": network_file("eth0", "192.0.2.19", 100),
    "10-ipmp-eth1.network": network_file("eth1", "192.0.2.20", 200),
}

OFF_LINK = "203.0.113.1"
"""A destination behind the default router (``ip route get`` only: nothing is sent)."""

DUPLICATE_GRACE = 1.0
"""Seconds a data address may be on two NICs at once: a move adds before it deletes.

networkd re-adding a moved address on its home NIC makes a copy that lasts
until someone removes it; that must be in.mpathd, well within this.
"""

HOLD = 2.0
"""Seconds the invariant is watched after networkd reports a link configured,
for anything networkd (or in.mpathd answering it) does a little later."""


class Watch:
    """Samples the kernel's addresses and fails on a copy that outlives the grace."""

    def __init__(self, host: RealHost, what: str) -> None:
        self.host = host
        self.what = what
        self.since: dict[str, float] = {}

    def sample(self) -> list[tuple[str, str, str, int]]:
        kernel = self.host.kernel()
        counts = Counter(a for _n, _f, a, _p in kernel)
        now = time.monotonic()
        for address in DATA:
            if counts[address] > 1:
                first = self.since.setdefault(address, now)
                holders = sorted(n for n, _f, a, _p in kernel if a == address)
                assert now - first <= DUPLICATE_GRACE, (
                    f"{self.what}: {address} on {' and '.join(holders)} "
                    f"for more than {DUPLICATE_GRACE} s"
                )
            else:
                self.since.pop(address, None)
        return kernel

    def until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Sample until ``predicate`` holds and no copy is left."""

        def done() -> bool:
            self.sample()
            return not self.since and predicate()

        wait_for(done, timeout, what)

    def hold(self, seconds: float) -> None:
        """Sample for ``seconds``; a copy older than the grace fails at once."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sample()
            time.sleep(0.02)
        self.until(lambda: True, DUPLICATE_GRACE + 1, f"{self.what}: no copy left")


def check(
    host: RealHost, where: dict[str, str], healthy: set[str], *, off_link: bool = True
) -> None:
    """The invariant, plus what networkd could have taken away from in.mpathd.

    ``off_link``: networkd's default routes exist, and the one in use leaves
    by a healthy NIC with a data address as its source.
    """
    host.check_invariant(where)
    assert set(where.values()) <= healthy, (where, healthy)
    for address, nic in TEST_ADDRESSES.items():
        assert host.holder(address) == nic, (address, host.kernel())
    rules = host.lab.run(["ip", "rule"]).stdout
    for address in TEST_ADDRESSES:
        assert f"from {address} lookup" in rules, rules
    if off_link:
        got = host.lab.run(["ip", "-j", "route", "get", OFF_LINK])
        assert got.returncode == 0, f"no route to {OFF_LINK}: {got.stderr.strip()}"
        route = json.loads(got.stdout)[0]
        assert route["dev"] in healthy and route["prefsrc"] in DATA, route
    for address, nic in where.items():
        wait_for(lambda a=address: host.answers_ping(a), 3, f"{address} answers on {nic}")


def restart(networkd: Networkd) -> int:
    """SIGKILL networkd, start it again, wait until it has configured both NICs.

    Returns the offset in its log where the new run starts.
    """
    networkd.kill()
    mark = len(networkd.log())
    networkd.start()
    wait_for(lambda: networkd.configured("eth0", "eth1"), 20, "networkd configured eth0, eth1")
    return mark


@contextlib.contextmanager
def logs_on_failure(lab: Lab, networkd: Networkd) -> Iterator[None]:
    """Add the tails of both daemons' logs to a failure (the lab's run dir goes with it)."""
    try:
        yield
    except AssertionError as failure:
        mpathd = lab.run_dir / "in.mpathd.log"
        tails = [
            f"--- {path.name} (last 25 lines) ---\n"
            + "\n".join(path.read_text(errors="replace").splitlines()[-25:])
            for path in (mpathd, networkd.log_path)
            if path.exists()
        ]
        raise AssertionError("\n".join([str(failure), *tails])) from failure


def test_failover_failback_and_networkd_restarts(make_lab: Callable[[str], Lab]) -> None:
    if missing():
        pytest.skip(f"systemd-networkd cannot run here: {missing()}")
    lab = make_lab(topology_text("lab-active-active"))
    networkd = Networkd(lab, NETWORKS, NETWORKD_CONF)
    with logs_on_failure(lab, networkd):
        together(lab, networkd)


def together(lab: Lab, networkd: Networkd) -> None:
    """The whole story; see the module docstring."""
    events = AddressEvents(lab)
    networkd.start()
    wait_for(lambda: networkd.configured("eth0", "eth1"), 20, "networkd configured eth0, eth1")
    assert networkd.user() == "systemd-network", version()
    host = RealHost(lab).start()
    wait_for(host.probing, 30, "every interface probing with targets in both families")
    check(host, DATA, {"eth0", "eth1"})

    # Failover: networkd must neither drop nor re-add anything on carrier loss.
    watch = Watch(host, "failover")
    lab.set_cable("eth0", False)
    watch.until(lambda: host.holder("192.0.2.19") == "eth1", 2, "192.0.2.19 moved to eth1")
    watch.hold(HOLD)
    failed_over = {"192.0.2.19": "eth1", "192.0.2.20": "eth1"}
    check(host, failed_over, {"eth1"})

    # networkd restarts while eth0 is failed: it configures 192.0.2.19 on
    # eth0 again (its .network file says so); in.mpathd must not leave the copy.
    logged = len(host.log())
    mark = restart(networkd)
    assert "eth0: Configuring static address" in networkd.log()[mark:], "networkd re-added nothing"
    watch = Watch(host, "networkd restart during the failover")
    watch.hold(HOLD)
    assert host.state("eth0") == "failed" and host.state("eth1") == "ok"
    check(host, failed_over, {"eth1"})
    # Reconciled and logged, never silently (issue 10: other writers).
    lines = host.log()[logged:].splitlines()
    assert any("192.0.2.19" in line and "eth0" in line for line in lines), lines

    # Failback: networkd must not put 192.0.2.19 back on eth0 ahead of in.mpathd.
    watch = Watch(host, "failback")
    lab.set_cable("eth0", True)
    watch.until(lambda: host.holder("192.0.2.19") == "eth0", 15, "failback to eth0")
    watch.until(host.probing, 10, "both interfaces probing again")
    check(host, DATA, {"eth0", "eth1"})

    # networkd restarts with everything home: nothing may change.
    restart(networkd)
    watch = Watch(host, "networkd restart after the failback")
    watch.hold(HOLD)
    watch.until(host.probing, 10, "both interfaces probing")
    check(host, DATA, {"eth0", "eth1"})

    # Exactly, from the kernel's own events: every time 192.0.2.19 had two
    # holders (a move adds before it deletes; networkd re-adds), it ended soon.
    copies = events.copies("192.0.2.19")
    print(
        "copies of 192.0.2.19 (NIC added second, ms):",
        [(nic, None if lived is None else round(lived * 1000, 1)) for nic, lived in copies],
    )
    assert all(lived is not None and lived <= DUPLICATE_GRACE for _nic, lived in copies), copies


UNMANAGED = {"10-ipmp.network": "[Match]\nName=eth0 eth1\n\n[Link]\nUnmanaged=yes\n"}


def test_unmanaged_members_are_left_to_in_mpathd(make_lab: Callable[[str], Lab]) -> None:
    """The README's simplest way: networkd runs, but ignores the group's NICs."""
    if missing():
        pytest.skip(f"systemd-networkd cannot run here: {missing()}")
    lab = make_lab(topology_text("lab-active-active"))
    networkd = Networkd(lab, UNMANAGED, "")
    with logs_on_failure(lab, networkd):
        host = RealHost(lab).start()
        wait_for(host.probing, 30, "every interface probing with targets in both families")

        def unmanaged() -> bool:
            return all(
                networkd.link_state(n).get("ADMIN_STATE") == "unmanaged" for n in DATA.values()
            )

        networkd.start()
        wait_for(unmanaged, 20, "networkd leaves eth0 and eth1 unmanaged")
        watch = Watch(host, "failover beside networkd")
        lab.set_cable("eth0", False)
        watch.until(lambda: host.holder("192.0.2.19") == "eth1", 2, "192.0.2.19 moved to eth1")
        networkd.kill()
        networkd.start()
        wait_for(unmanaged, 20, "networkd leaves eth0 and eth1 unmanaged again")
        watch.hold(HOLD)
        # No default route here: nobody configures one (Unmanaged=yes).
        check(host, {"192.0.2.19": "eth1", "192.0.2.20": "eth1"}, {"eth1"}, off_link=False)
        lab.set_cable("eth0", True)
        watch.until(lambda: host.holder("192.0.2.19") == "eth0", 15, "failback to eth0")
        check(host, DATA, {"eth0", "eth1"}, off_link=False)
