"""Durations as keystate writes them for people and in plan documents (pure)."""

from __future__ import annotations

from datetime import timedelta


def format_duration(value: timedelta) -> str:
    """A duration as configurations write it: ``90d``, ``36h``, ``0`` (else seconds)."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0"
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds}s"


def format_age(value: timedelta) -> str:
    """A rough age for people: whole days, else whole hours (``93d``, ``5h``)."""
    seconds = max(0, int(value.total_seconds()))
    return f"{seconds // 86400}d" if seconds >= 86400 else f"{seconds // 3600}h"


def format_left(value: timedelta) -> str:
    """Time left, rounded up: whole days from a day on, else whole hours (``7d``, ``3h``)."""
    seconds = max(0, int(value.total_seconds()))
    if seconds >= 86400:
        return f"{-(-seconds // 86400)}d"
    return f"{-(-seconds // 3600)}h"
