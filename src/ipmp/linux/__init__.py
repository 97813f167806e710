"""The Linux stack: pyroute2 netlink, raw ICMP probes, gratuitous ARP and unsolicited NA."""
