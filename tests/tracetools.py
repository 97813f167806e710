"""One readable, stable line per engine action: the golden traces and the playbook share it."""

from __future__ import annotations

import dataclasses

from ipmp.core.actions import (
    Action,
    AddAddress,
    AnnounceAddress,
    Log,
    MoveAddress,
    RemoveAddress,
    SpreadOutbound,
    UpdateAddress,
)


def _label(ifname: str, unit: int) -> str:
    return ifname if unit == 0 else f"{ifname}:{unit}"


def _flags(**flags: bool) -> str:
    return "".join(f" {name}" for name, on in flags.items() if on)


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, tuple):
        return "(" + ",".join(_value(v) for v in value) + ")"
    return str(value)


def render_action(action: Action) -> str:
    """One readable, stable line for an action (no probes: they are counted)."""
    if isinstance(action, Log):
        return f"Log {action.priority} {action.message}"
    if isinstance(action, MoveAddress):
        return (
            f"MoveAddress {action.family} {action.address}/{action.prefixlen} "
            f"{_label(action.from_if, action.from_unit)} -> {_label(action.to_if, action.to_unit)}"
            + _flags(up=action.up, deprecated=action.deprecated)
        )
    if isinstance(action, AddAddress):
        return (
            f"AddAddress {action.family} {action.address}/{action.prefixlen} "
            f"{_label(action.ifname, action.unit)}"
            + _flags(up=action.up, deprecated=action.deprecated, test=action.test)
        )
    if isinstance(action, RemoveAddress):
        return (
            f"RemoveAddress {action.family} {action.address}/{action.prefixlen} "
            f"{_label(action.ifname, action.unit)}"
        )
    if isinstance(action, UpdateAddress):
        return (
            f"UpdateAddress {action.family} {action.address}/{action.prefixlen} "
            f"{_label(action.ifname, action.unit)}"
            + _flags(up=action.up, deprecated=action.deprecated, test=action.test)
        )
    if isinstance(action, AnnounceAddress):
        return f"AnnounceAddress {action.family} {action.address} {action.ifname}"
    if isinstance(action, SpreadOutbound):
        return f"SpreadOutbound {action.family} {action.subnet} ({','.join(action.ifnames)})"
    fields = dataclasses.fields(action)  # type: ignore[arg-type]
    values = " ".join(f"{f.name}={_value(getattr(action, f.name))}" for f in fields)
    return f"{type(action).__name__} {values}".rstrip()
