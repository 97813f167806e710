"""``ipmp lab``: a real lab of Linux network namespaces built from a topology file.

The lab takes the simulator's TOML topology (``ipmp.sim.topology``) and builds
it with veth pairs, Linux bridges and nftables: a host namespace whose NICs
are cabled into a switch namespace, and one namespace per router or host that
answers ICMP echo.  Faults (pulled cables, silent drops, random loss, dead
targets, deleted NICs) are applied to the real kernel, so the daemon's Linux
stack can be tried out and tested.

Modules: ``lab`` (building, faults, teardown), ``checks`` (what topologies the
lab accepts), ``state`` (the crash-safe record of what was made),
``commands`` (the one place that runs ``ip``, ``nft`` and ``sh``) and ``ping``
(a tiny ICMP echo client run inside a namespace; no ``ping`` binary needed).

Nothing is imported here, so that ``python -m ipmp.lab.ping`` starts quickly.
"""
