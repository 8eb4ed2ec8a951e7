"""Jinja filters: how numbers, times, money and durations read on the dashboard."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment

NONE = "\u2013"  # an en dash: the value is unknown or absent


def ago(ts: float | datetime | None) -> str:
    if ts is None:
        return NONE
    seconds = time.time() - (ts.timestamp() if isinstance(ts, datetime) else ts)
    if seconds < 0:
        return "in " + duration(-seconds)
    return duration(seconds) + " ago"


def duration(seconds: float | None) -> str:
    """``443 ms``, ``12.5 s``, ``4 min 2 s``, ``3 h 5 min``, ``2 d 4 h``; never cut."""
    if seconds is None:
        return NONE
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def usd(value: float | None) -> str:
    if value is None:
        return NONE
    return f"${value:,.2f}" if abs(value) >= 1 or value == 0 else f"${value:,.4f}"


def number(value: float | int | None) -> str:
    if value is None:
        return NONE
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def timestamp(ts: float | datetime | None) -> str:
    if ts is None:
        return NONE
    moment = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def percent(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:.0f}%"


def option(document: Any, name: str, default: str = NONE) -> str:
    return str((document.options or {}).get(name) or default)


def install_filters(environment: Environment) -> None:
    environment.filters.update(
        ago=ago,
        duration=duration,
        usd=usd,
        number=number,
        timestamp=timestamp,
        percent=percent,
        option=option,
    )
