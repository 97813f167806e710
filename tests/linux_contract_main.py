"""Run the stack contract against the Linux stack; executed inside a lab namespace.

Usage: python tests/linux_contract_main.py NIC SIBLING MAC ADDRESS TEST_ADDRESS TARGET
Exits 0 when every check holds.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ipmp.linux.stack import LinuxStack
from stack_contract import Harness, Setup, check_contract, check_other_writers


def kernel() -> set[tuple[str, str]]:
    out = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout
    return {
        (link["ifname"], info["local"])
        for link in json.loads(out)
        for info in link.get("addr_info", [])
    }


async def main(argv: list[str]) -> None:
    nic, sibling, mac, address, test_address, target = argv
    stack = LinuxStack()
    await stack.open()
    loop = asyncio.get_running_loop()
    harness = Harness(stack, loop.time, asyncio.sleep)
    try:

        def add_default_route() -> None:
            subprocess.run(["ip", "route", "replace", "default", "via", target], check=True)

        def writer(op: str, ifname: str, address: str, prefixlen: int) -> None:
            # Deleted without a prefix length, as admins often do: whatever
            # prefix the stack gave it (a test address is a /32).
            spec = f"{address}/{prefixlen}" if op == "add" else address
            subprocess.run(["ip", "addr", op, spec, "dev", ifname], check=True, capture_output=True)

        setup = Setup(nic, sibling, mac, address, 24, test_address, target, "")
        await check_contract(harness, setup, kernel, add_default_route)
        await check_other_writers(harness, setup, kernel, writer)
    finally:
        await stack.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
    print("contract ok")
