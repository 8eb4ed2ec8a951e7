"""What a job's arguments may be: values that come back from JSON equal to what was given.

A job's arguments are stored as JSON, so a handler receives what JSON gives back. Where
that would differ from what the caller passed, dispatch refuses the job and names the
offending value's place, instead of the handler getting something else in silence:

==========================  ===========================================================
accepted                    ``None``, ``bool``, ``int``, finite ``float``, ``str``, ``list``,
                            ``dict`` with ``str`` keys, nested; a subclass of these (an
                            ``IntEnum``, a ``StrEnum``, an ``OrderedDict``) arrives as the
                            plain value it equals
refused                     ``dict`` keys that are not ``str`` (``{1: "a"}`` would arrive as
                            ``{"1": "a"}``, ``{True: 1}`` as ``{"true": 1}``), ``tuple`` (a
                            list), NaN and infinities, ``set``, ``bytes``, ``datetime``,
                            ``Decimal``, ``UUID``, ``Path`` and every other object, a value
                            that contains itself
==========================  ===========================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from docmill.queue.errors import SerializationError

_HINTS: dict[str, str] = {
    "tuple": "it would arrive as a list; pass a list",
    "set": "pass a sorted list",
    "frozenset": "pass a sorted list",
    "bytes": "pass text (base64, or a path to a file)",
    "bytearray": "pass text (base64, or a path to a file)",
    "datetime": "pass its .isoformat() or an epoch timestamp",
    "date": "pass its .isoformat()",
    "time": "pass its .isoformat()",
    "timedelta": "pass its seconds as a number",
    "Decimal": "pass it as a string",
    "UUID": "pass str() of it",
}


class _Refused(Exception):
    """Raised at the offending value; each level it unwinds through adds its part of the path."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


def check_arguments(name: str, args: Sequence[Any], kwargs: Mapping[Any, Any]) -> None:
    """Raise ``SerializationError`` naming the first argument that JSON would not give back equal."""
    part = ""
    try:
        for index, value in enumerate(args):
            part = f"args[{index}]"
            _check(value)
        for key, value in kwargs.items():
            if not isinstance(key, str):
                part = "kwargs"
                raise _Refused(f"has the key {key!r}, {_a(type(key))}; keyword names are strings")
            part = f"kwargs[{key!r}]"
            _check(value)
    except _Refused as refused:
        where = part + "".join(reversed(refused.path))
        raise SerializationError(
            f"argument {where} of job {name!r} would not survive JSON unchanged: {refused.reason}"
        ) from None
    except RecursionError:
        raise SerializationError(
            f"argument {part} of job {name!r} is nested too deeply or contains itself; pass plain data"
        ) from None


def _check(value: Any) -> None:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Refused(f"{value!r} has no JSON form; pass None or a string")
        return
    if isinstance(value, str | int):
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            try:
                _check(item)
            except _Refused as refused:
                refused.path.append(f"[{index}]")
                raise
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Refused(
                    f"the key {key!r} is {_a(type(key))} and would arrive as the string "
                    f"{_as_json_key(key)!r}; use string keys"
                )
            try:
                _check(item)
            except _Refused as refused:
                refused.path.append(f"[{key!r}]")
                raise
        return
    hint = _HINTS.get(kind.__name__, "pass plain data (None, bool, int, float, str, list, dict)")
    raise _Refused(f"{_a(kind)} has no exact JSON form; {hint}")


def _a(kind: type) -> str:
    name = kind.__name__
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"  # "an int", "a UUID", "a Decimal"


def _as_json_key(key: Any) -> str:
    """What ``json.dumps`` turns a non-string key into (or its repr where JSON refuses it)."""
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int | float):
        return repr(float(key)) if isinstance(key, float) else str(int(key))
    return repr(key)
