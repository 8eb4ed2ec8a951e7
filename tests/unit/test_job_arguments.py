"""A job's arguments reach the handler exactly as dispatched, or dispatch refuses them."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import uuid
from collections import OrderedDict
from typing import Any

import pytest

from docmill.queue import Client, Dispatch, SerializationError
from docmill.queue.arguments import check_arguments
from docmill.queue.backends.memory import MemoryBackend


class Colour(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


def refusal(args: tuple[Any, ...] = (), kwargs: dict[Any, Any] | None = None) -> str:
    with pytest.raises(SerializationError) as raised:
        check_arguments("reports.build", args, kwargs or {})
    return str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"data": {1: "a"}},
            "argument kwargs['data'] of job 'reports.build' would not survive JSON unchanged: "
            "the key 1 is an int and would arrive as the string '1'; use string keys",
        ),
        (
            {"data": {"rows": [{"ok": 1}, {True: 1}]}},
            "argument kwargs['data']['rows'][1] of job 'reports.build' would not survive JSON "
            "unchanged: the key True is a bool and would arrive as the string 'true'; use string keys",
        ),
        (
            {"point": (1, 2)},
            "argument kwargs['point'] of job 'reports.build' would not survive JSON unchanged: "
            "a tuple has no exact JSON form; it would arrive as a list; pass a list",
        ),
        (
            {"ratio": [0.5, float("nan")]},
            "argument kwargs['ratio'][1] of job 'reports.build' would not survive JSON unchanged: "
            "nan has no JSON form; pass None or a string",
        ),
    ],
)
def test_a_value_json_would_change_is_refused_with_its_path(kwargs: dict[str, Any], message: str) -> None:
    assert refusal(kwargs=kwargs) == message


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ({1, 2}, "a set has no exact JSON form; pass a sorted list"),
        (b"\x00", "a bytes has no exact JSON form; pass text (base64, or a path to a file)"),
        (datetime.datetime(2026, 1, 1), "a datetime has no exact JSON form; pass its .isoformat()"),
        (decimal.Decimal("1.10"), "a Decimal has no exact JSON form; pass it as a string"),
        (uuid.UUID(int=1), "a UUID has no exact JSON form; pass str() of it"),
        (float("inf"), "inf has no JSON form"),
        (object(), "an object has no exact JSON form; pass plain data"),
    ],
)
def test_values_json_cannot_hold_are_refused_with_a_hint(value: Any, hint: str) -> None:
    message = refusal(args=("x", [value]))
    assert message.startswith("argument args[1][0] of job 'reports.build' would not survive JSON unchanged: ")
    assert hint in message


def test_a_value_that_contains_itself_is_refused_in_one_sentence() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert refusal(args=(loop,)) == (
        "argument args[0] of job 'reports.build' is nested too deeply or contains itself; pass plain data"
    )


def test_a_keyword_that_is_not_a_string_is_refused() -> None:
    assert "argument kwargs of job 'reports.build'" in refusal(kwargs={3: "x"})


def test_plain_data_passes_and_comes_back_from_json_equal() -> None:
    value = {
        "none": None,
        "flag": False,
        "big": 2**70,
        "float": -0.0,
        "text": "naïve \u2028 \ud800",
        "nested": [[{"a": [1, 2.5, "3"]}]],
        "enum": Colour.RED,
        "int_enum": Size.BIG,
        "ordered": OrderedDict(b=1, a=2),
    }
    check_arguments("reports.build", [value], {"same": value})
    assert json.loads(json.dumps(value)) == value


async def test_dispatch_refuses_before_anything_is_stored() -> None:
    backend = MemoryBackend()
    client = Client(backend)
    with pytest.raises(SerializationError, match=r"kwargs\['by_id'\]"):
        await client.dispatch("reports.build", by_id={1: "a"})
    with pytest.raises(SerializationError, match=r"args\[0\]\[1\]"):
        await client.dispatch_many([Dispatch("reports.build", [[1, (2, 3)]])])
    assert (await backend.stats("default")).size == 0
