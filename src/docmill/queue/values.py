"""Typed readers of configuration values, shared by every layer's settings.

Each takes what a TOML file, an environment variable or a flag holds (a string, a
number, a list) and returns the typed value, or raises ``ValueError`` with a short
reason ("expected a whole number"); the caller names the setting and where it came
from, so every bad value ends as one sentence naming both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_YES = frozenset({"1", "true", "yes", "on", "y"})
_NO = frozenset({"0", "false", "no", "off", "n", ""})


def as_int(value: object) -> int:
    """A whole number: ``3``, ``3.0`` or ``"3"``; never a boolean."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not true/false")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError("expected a whole number") from None
    raise ValueError("expected a whole number")


def as_float(value: object) -> float:
    """A finite number: ``2``, ``2.5`` or ``"2.5"``; never a boolean."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError("expected a number") from None
    else:
        raise ValueError("expected a number")
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("expected a finite number")
    return number


def as_str(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    raise ValueError("expected a string")


def as_bool(value: object) -> bool:
    """``true``/``false`` in TOML, or yes/no words (``1``, ``true``, ``yes``, ``on`` ...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _YES:
            return True
        if word in _NO:
            return False
    raise ValueError("expected true or false")


def as_list(value: object) -> tuple[str, ...]:
    """A list of strings, or one comma-separated string."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise ValueError("expected a list of strings or a comma-separated string")


def at_least(parse: Callable[[object], Any], minimum: float) -> Callable[[object], Any]:
    """``parse``, then refuse a value below ``minimum``."""

    def parse_bounded(value: object) -> Any:
        parsed = parse(value)
        if parsed < minimum:
            raise ValueError(f"must be at least {minimum:g}")
        return parsed

    return parse_bounded
